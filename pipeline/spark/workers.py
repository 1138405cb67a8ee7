"""What runs on the Spark executors, one partition at a time (``DataFrame.mapInArrow``): the
local engine's own functions for ingest (``parse_file``, units), clean (``prepare_batch``),
segment (``segment``) and tfidf (the weighting and keywords), applied to Arrow batches.

Heavy resources (rules, tokenizer, dictionaries) are built once per Python worker and kept in
``_RESOURCES`` under a key the driver computes from the settings; the dictionary files are the
copies Spark shipped (``session.local_params``). Every function here depends only on its rows
and the settings, so a task Spark runs again gives the same rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import CleanParams, IngestParams, Params, SegmentParams
from pipeline.schemas import DOCUMENTS, KEPT

# Bits of ``_order`` below the file number: a row's place in the corpus is
# ``file_number << ROW_BITS | row_in_file``, the order of the local engine's documents table.
ROW_BITS = 40
ORDER = "_order"

# Settings key -> resources built from those settings, for the life of this Python worker.
_RESOURCES: dict[tuple[str, bytes], Any] = {}


def _cached(kind: str, key: bytes, build: Callable[[], Any]) -> Any:
    if (kind, key) not in _RESOURCES:
        _RESOURCES[(kind, key)] = build()
    return _RESOURCES[(kind, key)]


def _batches(table: pa.Table, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    table = table.cast(schema) if table.schema != schema else table
    yield from table.combine_chunks().to_batches() or [pa.RecordBatch.from_pylist([], schema)]


def _sorted(batch: pa.RecordBatch) -> pa.Table:
    """A batch as a table in corpus order (a partition's rows come in no particular order)."""
    table = pa.Table.from_batches([batch])
    return table.take(pc.sort_indices(table.column(ORDER)))


# --- ingest ---------------------------------------------------------------------------------

META = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
INGEST_SCHEMA = pa.schema([*DOCUMENTS.schema, pa.field("_meta", META), pa.field(ORDER, pa.int64())])


def relative_source(path: str, root: str) -> str:
    """A file's path relative to the raw root, as the local engine names sources."""
    if not path.startswith(root):
        raise ValueError(f"ingest: {path} is not below the raw folder {root}")
    return unquote(path[len(root) :].lstrip("/"))


def ingest_files(root: str, params: IngestParams):
    """mapInArrow function: (path, content, file_number) rows -> documents rows, with their
    metadata as (key, value) lists and their corpus order."""
    from pipeline.ingest import _units, with_path_fields
    from pipeline.text.formats import RESERVED, RawFile, parse_file
    from pipeline.text.path_fields import PathFields

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        split_re = re.compile(params.split_pattern, re.MULTILINE)
        path_fields = PathFields(params.path_pattern, params.folder_column)
        for batch in batches:
            rows: list[dict] = []
            for path, content, number in zip(
                batch.column("path").to_pylist(),
                batch.column("content").to_pylist(),
                batch.column("file_number").to_pylist(),
                strict=True,
            ):
                raw = RawFile(relative_source(path, root), content)
                docs = with_path_fields(parse_file(raw, params, split_re), path_fields, params)
                units = _units(docs, params)
                for position, row in enumerate(units):
                    row["_meta"] = [
                        {"key": k, "value": v} for k, v in row.items() if k not in RESERVED
                    ]
                    row[ORDER] = (number << ROW_BITS) | position
                    rows.append(row)
            yield from _ingest_batches(rows)

    return run


def _ingest_batches(rows: list[dict]) -> Iterator[pa.RecordBatch]:
    columns = {f.name: [r.get(f.name) for r in rows] for f in INGEST_SCHEMA}
    yield from _batches(pa.table(columns, schema=INGEST_SCHEMA), INGEST_SCHEMA)


# A record's place among a split file's rows: ``record << UNIT_BITS | unit`` (its paragraphs
# with ingest.unit paragraph), below the file number as in ``ROW_BITS``.
UNIT_BITS = 12


def split_order(number: int, record: int, unit: int, source: str) -> int:
    if unit >> UNIT_BITS or record >> (ROW_BITS - UNIT_BITS):
        raise ValueError(
            f"ingest: {source}, record {record}: more than {1 << UNIT_BITS} paragraphs in a "
            f"record or {1 << (ROW_BITS - UNIT_BITS)} records in a file cannot be split across "
            "Spark tasks; set spark.split_mb: 0 or ingest.unit: document"
        )
    return (number << ROW_BITS) | (record << UNIT_BITS) | unit


def ingest_lines(root: str, params: IngestParams, layouts: dict[str, tuple]):
    """mapInArrow function for large tables read line by line across tasks: (path,
    file_number, line, line_no, record) rows -> documents rows, as ``ingest_files`` gives for
    the whole file. ``layouts``: path -> (format, CSV columns, CSV delimiter, encoding)."""
    from pipeline.text.formats import line_doc
    from pipeline.text.path_fields import PathFields

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        path_fields = PathFields(params.path_pattern, params.folder_column)
        for batch in batches:
            rows: list[dict] = []
            for path, number, line, line_no, record in zip(
                *(batch.column(c).to_pylist() for c in LINE_COLUMNS), strict=True
            ):
                fmt, columns, delimiter, encoding = layouts[path]
                source = relative_source(path, root)
                layout = (columns, delimiter, encoding)
                doc = line_doc(source, fmt, line, line_no, record, layout, params)
                rows.extend(_record_rows(doc, number, path_fields, params))
            yield from _ingest_batches(rows)

    return run


def _record_rows(doc, number: int, path_fields, params: IngestParams) -> Iterator[dict]:
    """The documents rows of one record of a file read in pieces (its paragraphs with
    ingest.unit paragraph), with their metadata and their place in the corpus."""
    from pipeline.ingest import _units, with_path_fields
    from pipeline.text.formats import RESERVED

    units = _units(with_path_fields([doc], path_fields, params), params)
    for unit, row in enumerate(units):
        row["_meta"] = [{"key": k, "value": v} for k, v in row.items() if k not in RESERVED]
        row[ORDER] = split_order(number, doc.record, unit, doc.source)
        yield row


LINE_COLUMNS = ("path", "file_number", "line", "line_no", "record")


def ingest_parquet(root: str, params: IngestParams, path: str, number: int, columns: list[str]):
    """mapInArrow function for a large parquet table read by Spark's parquet reader across
    tasks: rows of (record, c0, c1, ...), ``record`` the row's index in the file and ``ci``
    its column ``columns[i]`` -> documents rows, as ``ingest_files`` gives for the whole file."""
    from pipeline.text.formats import parquet_row_doc
    from pipeline.text.path_fields import PathFields

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        path_fields = PathFields(params.path_pattern, params.folder_column)
        source = relative_source(path, root)
        for batch in batches:
            rows: list[dict] = []
            values = [batch.column(f"c{i}").to_pylist() for i in range(len(columns))]
            for at, record in enumerate(batch.column("record").to_pylist()):
                row = {name: value[at] for name, value in zip(columns, values, strict=True)}
                doc = parquet_row_doc(source, record, row, params)
                rows.extend(_record_rows(doc, number, path_fields, params))
            yield from _ingest_batches(rows)

    return run


def count_lines(fmt: str, delimiter: str):
    """mapPartitionsWithIndex function over a split file's lines: (piece, lines, lines holding
    a record, the first CSV line in the piece that ends inside a quoted field or None)."""
    from pipeline.text.formats import line_holds_record, line_is_closed

    def run(index: int, lines: Iterator[str]) -> Iterator[tuple]:
        n_lines = n_records = 0
        open_at = None
        for line in lines:
            if fmt != "jsonl" and open_at is None and not line_is_closed(line, delimiter):
                open_at = n_lines
            n_records += line_holds_record(fmt, line)
            n_lines += 1
        yield index, n_lines, n_records, open_at

    return run


def line_rows(
    path: str,
    number: int,
    fmt: str,
    encoding: str,
    line_start: list[int],
    record_start: list[int],
):
    """mapPartitionsWithIndex function over a split file's lines: (path, file_number, line,
    line_no, record) of each line holding a record; ``line_start`` and ``record_start``: the
    lines and records (a CSV header counted as one) before each piece."""
    from pipeline.text.formats import line_holds_record

    header = int(fmt != "jsonl")

    def run(index: int, lines: Iterator[str]) -> Iterator[tuple]:
        line_no, record = line_start[index], record_start[index]
        for line in lines:
            line_no += 1
            if line_no == 1 and encoding == "utf-8-sig":
                line = line.removeprefix("\ufeff")
            if line_holds_record(fmt, line):
                if not (line_no == 1 and header):
                    yield path, number, line, line_no, record - header
                record += 1

    return run


# --- clean ----------------------------------------------------------------------------------

AUDIT = pa.list_(
    pa.struct([("rule", pa.string()), ("n_matches", pa.int64()), ("chars_removed", pa.int64())])
)
CLEAN_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        (ORDER, pa.int64()),
        ("text", pa.string()),
        ("n_chars", pa.int64()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("digest", pa.binary()),
        ("signature", pa.binary()),
        ("audit", AUDIT),
        ("swaps", pa.int64()),
    ]
)


def clean_documents(params: Params, key: bytes):
    """mapInArrow function: documents rows -> cleaned rows with the text hash and MinHash
    signature of kept documents (``clean.prepare_batch``) and each document's audit rows."""
    from pipeline.clean import prepare_batch, replacement_counts
    from pipeline.spark.session import local_params
    from pipeline.text.rules import load_rules

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        clean_params: CleanParams = local_params(params).clean
        rules = _cached("rules", key, lambda: load_rules(clean_params))
        for batch in batches:
            docs = _sorted(batch)
            prepared = prepare_batch(docs, clean_params, rules)
            status = prepared.table.column("status").to_pylist()
            n = docs.num_rows
            digests: list[bytes | None] = [None] * n
            signatures: list[bytes | None] = [None] * n
            if clean_params.deduplicate:
                for i in range(n):
                    if status[i] == KEPT:
                        digests[i] = prepared.digests[i].tobytes()
                        row = prepared.signature_rows[i]
                        if row >= 0:
                            signatures[i] = prepared.signatures[row].tobytes()
            audits: list[list[dict]] = [[] for _ in range(n)]
            for entry in prepared.audit.to_pylist():  # (row, rule, n_matches, chars_removed)
                audits[entry.pop("row")].append(entry)
            table = pa.table(
                {
                    "doc_id": docs.column("doc_id"),
                    ORDER: docs.column(ORDER),
                    **{
                        c: prepared.table.column(c) for c in ("text", "n_chars", "status", "reason")
                    },
                    "digest": pa.array(digests, pa.binary()),
                    "signature": pa.array(signatures, pa.binary()),
                    "audit": pa.array(audits, AUDIT),
                    "swaps": pa.array(replacement_counts(prepared.audit, n), pa.int64()),
                }
            )
            yield from _batches(table, CLEAN_SCHEMA)

    return run


def signature_array(column: pa.Array, num_perm: int) -> np.ndarray:
    """Binary signatures as an (n, num_perm) uint32 array."""
    data = b"".join(column.to_pylist())
    return np.frombuffer(data, dtype=np.uint32).reshape(-1, num_perm)


BANDS_SCHEMA = pa.schema([(ORDER, pa.int64()), ("band", pa.int64())])


def band_keys_of(bands: int, rows: int, num_perm: int):
    """mapInArrow function: (order, signature) -> one (order, band key) row per LSH band."""
    from pipeline.text.dedup import band_keys

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            signatures = signature_array(batch.column("signature"), num_perm)
            keys = band_keys(signatures, bands, rows).view(np.int64)
            order = np.repeat(batch.column(ORDER).to_numpy(), bands)
            table = pa.table({ORDER: order, "band": keys.ravel()}, schema=BANDS_SCHEMA)
            yield from _batches(table, BANDS_SCHEMA)

    return run


PAIRS_SCHEMA = pa.schema(
    [("a", pa.int64()), ("a_id", pa.string()), ("b", pa.int64()), ("b_id", pa.string()),
     ("score", pa.float64())]
)  # fmt: skip


def near_pairs(bands: int, rows: int, num_perm: int, threshold: float):
    """mapInArrow function: candidate pairs (a before b, sharing a band key) -> those that are
    near duplicates as the local engine decides (``dedup.near_scores``), with their score."""
    from pipeline.text.dedup import near_scores

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            a = signature_array(batch.column("a_sig"), num_perm)
            b = signature_array(batch.column("b_sig"), num_perm)
            near, scores = near_scores(b, a, bands, rows, threshold)
            table = pa.table(
                {
                    "a": batch.column("a"),
                    "a_id": batch.column("a_id"),
                    "b": batch.column("b"),
                    "b_id": batch.column("b_id"),
                    "score": pa.array(scores, pa.float64()),
                }
            ).filter(pa.array(near))
            yield from _batches(table, PAIRS_SCHEMA)

    return run


# --- spin scores (pipeline/text/spin.py) ---------------------------------------------------

UNIT_BIGRAMS = pa.schema([("unit", pa.string()), ("code", pa.int64())])
UNIT_COUNTS = pa.schema(
    [("unit", pa.string()), ("swaps", pa.int64()), ("ideographs", pa.int64()),
     ("bigrams", pa.int64()), ("rare", pa.int64())]
)  # fmt: skip
UNIT_SCORES = pa.schema([("unit", pa.string()), ("score", pa.float64())])


def spin_bigrams():
    """mapInArrow function: kept (unit, text) rows -> each row's distinct bigram codes."""
    from pipeline.text.spin import bigram_codes

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            units, codes = [], []
            for unit, text in zip(
                batch.column("unit").to_pylist(), batch.column("text").to_pylist(), strict=True
            ):
                unique = np.unique(bigram_codes(text))
                units.extend([unit] * len(unique))
                codes.append(unique)
            code = np.concatenate(codes) if codes else np.zeros(0, np.int64)
            yield from _batches(pa.table({"unit": units, "code": code}, UNIT_BIGRAMS), UNIT_BIGRAMS)

    return run


def spin_counts(common: np.ndarray):
    """mapInArrow function: (unit, text, swaps, counted) rows -> the counts ``SpinScorer``
    adds per row (zeros for rows not counted), against the corpus' common bigrams."""
    from pipeline.text.spin import bigram_codes, ideograph_count, rare_bigrams

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            counts = np.zeros((batch.num_rows, 4), np.int64)
            rows = zip(
                batch.column("text").to_pylist(),
                batch.column("swaps").to_pylist(),
                batch.column("counted").to_pylist(),
                strict=True,
            )
            for i, (text, swaps, counted) in enumerate(rows):
                if counted:
                    codes = bigram_codes(text)
                    counts[i] = (swaps, ideograph_count(text), codes.size,
                                 rare_bigrams(codes, common))  # fmt: skip
            table = pa.table(
                {"unit": batch.column("unit"), **{f.name: counts[:, j] for j, f in
                                                 enumerate(list(UNIT_COUNTS)[1:])}},
                schema=UNIT_COUNTS,
            )  # fmt: skip
            yield from _batches(table, UNIT_COUNTS)

    return run


def spin_unit_scores(spread: tuple[float, float] | None):
    """mapInArrow function: each unit's summed counts -> its spin score (``spin_scores`` with
    the corpus' spread)."""
    from pipeline.text.spin import spin_scores

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            c = {name: batch.column(name).to_numpy() for name in UNIT_COUNTS.names[1:]}
            scores = spin_scores(c["swaps"], c["ideographs"], c["rare"], c["bigrams"], spread)
            table = pa.table({"unit": batch.column("unit"), "score": scores}, UNIT_SCORES)
            yield from _batches(table, UNIT_SCORES)

    return run


SPUN_SCHEMA = pa.schema(
    [(ORDER, pa.int64()), ("status", pa.string()), ("reason", pa.string()),
     ("spin_score", pa.float64())]
)  # fmt: skip


def apply_spin_scores(params: CleanParams):
    """mapInArrow function: rows with their unit's score -> status, reason and spin_score as
    ``clean.apply_spin`` sets them."""
    from pipeline.clean import apply_spin

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            units = batch.column("unit").to_pylist()
            scores = dict(zip(units, batch.column("score").to_pylist(), strict=True))
            table = pa.Table.from_batches([batch]).select([ORDER, "status", "reason"])
            yield from _batches(apply_spin(table, units, scores, params), SPUN_SCHEMA)

    return run


# --- segment --------------------------------------------------------------------------------

TOKENS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("tokens", pa.list_(pa.string())),
        ("n_tokens", pa.int32()),
        (ORDER, pa.int64()),
    ]
)


def segment_documents(params: Params, key: bytes, new_words: tuple[str, ...] = ()):
    """mapInArrow function: clean rows -> token rows (``segment.segment``); the tokenizer and
    its dictionaries (with the discovered ``new_words`` added) are loaded once per Python
    worker."""
    from pipeline.segment import segment
    from pipeline.spark.session import local_params
    from pipeline.text.tokenizers import load_lexicon

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        segment_params: SegmentParams = local_params(params).segment
        lexicon = _cached(
            "lexicon", key, lambda: load_lexicon(segment_params, check=False, new_words=new_words)
        )
        for batch in batches:
            docs = pa.Table.from_batches([batch])
            tokens = segment(docs, segment_params, lexicon)
            yield from _batches(tokens.append_column(ORDER, docs.column(ORDER)), TOKENS_SCHEMA)

    return run


# Kept texts per batch handed to new-word discovery on the driver.
TEXT_BATCH = 4096
WORD_COUNTS = pa.schema([("counts", pa.list_(pa.int64()))])


def count_words(words: list[str]):
    """mapInArrow function: token rows -> one row per partition with how often each of
    ``words`` is a token (``segment._WordCounter``)."""
    from pipeline.segment import _WordCounter

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        counter = _WordCounter(words)
        for batch in batches:
            counter.add(batch.column("tokens"))
        yield pa.RecordBatch.from_pylist([{"counts": counter.counts.tolist()}], WORD_COUNTS)

    return run


# --- tfidf ----------------------------------------------------------------------------------

WEIGHTS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        (ORDER, pa.int64()),
        ("term_ids", pa.list_(pa.int32())),
        ("counts", pa.list_(pa.int32())),
        ("tfidf", pa.list_(pa.float64())),
        ("keyword_terms", pa.list_(pa.string())),
        ("keyword_weights", pa.list_(pa.float64())),
    ]
)


def weigh_documents(terms: pa.Array, idf: np.ndarray, sublinear_tf: bool, top_k: int):
    """mapInArrow function: token rows of documents with tokens -> each document's term ids
    (ascending), counts, TF-IDF weights and top keywords, computed by tfidf's own functions
    (a row's numbers depend on the row alone, so they are the local engine's to the bit)."""
    from pipeline.tfidf import _keywords, _weigh

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield from _batches(_weigh_batch(batch, terms, idf, sublinear_tf, top_k, _weigh,
                                             _keywords), WEIGHTS_SCHEMA)  # fmt: skip

    return run


def _weigh_batch(batch, terms, idf, sublinear_tf, top_k, weigh, keywords) -> pa.Table:
    lists = batch.column("tokens")
    n = len(lists)
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    ids = pc.index_in(lists.flatten(), value_set=terms)
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    known = ids.is_valid().to_numpy(zero_copy_only=False)
    keys = rows[known] * len(terms) + ids.drop_null().to_numpy().astype(np.int64)
    keys, counts = np.unique(keys, return_counts=True)
    entry_rows = (keys // len(terms)).astype(np.int32)
    indices = (keys % len(terms)).astype(np.int32)
    counts = counts.astype(np.int32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(entry_rows, minlength=n), out=indptr[1:])
    weights = weigh(counts, indices, entry_rows, idf, sublinear_tf)
    doc_ids = batch.column("doc_id")
    top = keywords(weights, indices, entry_rows, indptr, doc_ids, terms, top_k)
    top_offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.minimum(np.diff(indptr), top_k), out=top_offsets[1:])
    offsets = pa.array(indptr.astype(np.int32))
    top_offsets = pa.array(top_offsets)
    from pipeline.precision import round_significant

    # Published floats at the precision the local engine writes (pipeline/precision.py).
    weights, top_weights = (
        round_significant(weights),
        round_significant(top.column("weight").to_numpy()),
    )
    return pa.table(
        {
            "doc_id": doc_ids,
            ORDER: batch.column(ORDER),
            "term_ids": pa.ListArray.from_arrays(offsets, pa.array(indices)),
            "counts": pa.ListArray.from_arrays(offsets, pa.array(counts)),
            "tfidf": pa.ListArray.from_arrays(offsets, pa.array(weights)),
            "keyword_terms": pa.ListArray.from_arrays(
                top_offsets, top.column("term").combine_chunks()
            ),
            "keyword_weights": pa.ListArray.from_arrays(top_offsets, pa.array(top_weights)),
        }
    )


# --- topic mixes ------------------------------------------------------------------------------

THETA_SCHEMA = pa.schema([("doc_id", pa.string()), (ORDER, pa.int64()),
                          ("weights", pa.list_(pa.float64()))])  # fmt: skip


def fold_in_documents(phi: np.ndarray, alpha: np.ndarray, left_out: np.ndarray):
    """mapInArrow function: documents' term counts -> their topic mixes under the saved model
    (``engines.fold_in``, as ``zhtopics infer``: without the terms the fit ``left_out``; a
    document with no other term gets the prior's mix), one batch of documents at a time."""
    import scipy.sparse as sp

    from pipeline.topics.background import drop_columns
    from pipeline.topics.engines import fold_in

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            docs = _sorted(batch)
            ids = docs.column("term_ids").combine_chunks()
            counts = docs.column("counts").combine_chunks()
            indptr = ids.offsets.to_numpy()
            matrix = sp.csr_matrix(
                (counts.flatten().to_numpy(), ids.flatten().to_numpy(), indptr - indptr[0]),
                shape=(docs.num_rows, phi.shape[1]),
            )
            if left_out.any():
                matrix = drop_columns(matrix, left_out)
            from pipeline.precision import round_significant

            theta = round_significant(fold_in(phi, alpha, matrix))
            k = phi.shape[0]
            offsets = pa.array(np.arange(docs.num_rows + 1, dtype=np.int32) * k)
            table = pa.table(
                {
                    "doc_id": docs.column("doc_id"),
                    ORDER: docs.column(ORDER),
                    "weights": pa.ListArray.from_arrays(offsets, pa.array(theta.ravel())),
                }
            )
            yield from _batches(table, THETA_SCHEMA)

    return run
