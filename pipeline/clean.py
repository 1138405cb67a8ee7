"""Stage clean: normalisation, boilerplate rules (audited), Traditional to Simplified, duplicate
and near-duplicate clusters, and the final status of every document; writes the ingest report.

Each document is cleaned, measured and MinHashed on its own, many at a time, in worker
processes when there is enough text (``prepare_batch``); duplicates are then decided in
document order in one process, against a compact index (``Deduplicator``). Normalisation,
the rules and deduplication live in ``pipeline/text/``; this module holds the stage."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from pipeline.arrays import running_offsets
from pipeline.config import CleanParams, Params
from pipeline.io import (
    Paths,
    Spool,
    TableWriter,
    iter_tables,
    row_spans,
    usable_cores,
    write_json,
    write_table,
)
from pipeline.schemas import (
    CLEAN,
    CLEAN_AUDIT,
    DECODE_ERRORS,
    DOCUMENTS,
    EMPTY,
    INGEST_REPORT,
    KEPT,
    NOT_CHINESE,
    SPUN,
    TOO_SHORT,
    require_columns,
)
from pipeline.text.dedup import Deduplicator, minhash_signatures
from pipeline.text.normalize import char_counts, clean_texts
from pipeline.text.rules import REPLACEMENTS_RULE, Rules, load_rules
from pipeline.text.spin import SpinScorer, spin_reason
from pipeline.text.worker_pool import WorkerPool, done, run_ahead

log = logging.getLogger(__name__)


# --- tables ---------------------------------------------------------------------------------------


@dataclass
class CleanResult:
    clean: pa.Table
    audit: pa.Table


@dataclass
class Prepared:
    """What clean learns from each document of a batch on its own: ``table`` (text, n_chars,
    status and reason before duplicates, a row per document), ``audit`` (row, rule, n_matches,
    chars_removed), and for the documents kept so far the 16-byte hash of the text
    (``digests``, empty otherwise) and the MinHash signature (``signatures[signature_rows[i]]``;
    -1 for none, or when an earlier document of the batch has the same text)."""

    table: pa.Table
    audit: pa.Table
    digests: np.ndarray
    signature_rows: np.ndarray
    signatures: np.ndarray


def clean(
    docs: pa.Table, params: CleanParams, rules: Rules, spin: SpinScorer | None = None
) -> CleanResult:
    """Clean a whole (small) table: statuses, clusters, spin scores and the audit of every
    rule. ``spin`` defaults to a scorer with jieba's dictionary as its reference."""
    dedup = Deduplicator(params) if params.deduplicate else None
    with dedup or contextlib.nullcontext():
        prepared = prepare_batch(docs, params, rules)
        table, audit = finish_batch(docs, prepared, dedup)
    sizes = dedup.sizes if dedup is not None else Counter()
    spin = spin or SpinScorer()
    units, swaps = spin_units(docs), replacement_counts(prepared.audit, docs.num_rows)
    counted = [s == KEPT for s in table.column("status").to_pylist()]
    texts = table.column("text").to_pylist()
    spin.gather(units, texts, counted)
    spin.count(units, texts, swaps, counted)
    table = apply_spin(fill_cluster_sizes(table, sizes), units, spin.scores(), params)
    return CleanResult(table, audit)


def spin_units(docs: pa.Table) -> list[str]:
    """The document each row is scored as part of: its parent (the whole text a paragraph
    comes from) when the table has one, else the row itself."""
    column = "parent_id" if "parent_id" in docs.column_names else "doc_id"
    require_columns(docs, [column], "clean")
    return docs.column(column).to_pylist()


def replacement_counts(audit: pa.Table, n: int) -> np.ndarray:
    """Replacements that changed each of ``n`` rows, from a prepared audit (row, rule, ...)."""
    counts = np.zeros(n, dtype=np.int64)
    rule = np.asarray(audit.column("rule").to_pylist(), dtype=object)
    mine = rule == REPLACEMENTS_RULE
    if mine.any():
        rows = audit.column("row").to_numpy()[mine]
        np.add.at(counts, rows, audit.column("n_matches").to_numpy()[mine])
    return counts


def apply_spin(
    table: pa.Table, units: list[str], scores: dict[str, float], params: CleanParams
) -> pa.Table:
    """``spin_score`` on every row (its unit's); a kept row at or above
    ``clean.spin_threshold`` gets ``spun`` in its reason, and status spun with
    ``clean.drop_spun``."""
    values = [scores.get(unit, 0.0) for unit in units]
    status = table.column("status").to_pylist()
    reason = table.column("reason").to_pylist()
    for i, score in enumerate(values):
        if status[i] == KEPT and score >= params.spin_threshold:
            flag = spin_reason(score, params.spin_threshold)
            reason[i] = flag if reason[i] is None else f"{reason[i]}; {flag}"
            if params.drop_spun:
                status[i] = SPUN
    table = table.set_column(
        table.schema.get_field_index("status"), "status", pa.array(status, pa.string())
    )
    table = table.set_column(
        table.schema.get_field_index("reason"), "reason", pa.array(reason, pa.string())
    )
    return table.append_column("spin_score", pa.array(values, pa.float64()))


def clean_batch(
    docs: pa.Table, params: CleanParams, rules: Rules, dedup: Deduplicator | None
) -> tuple[pa.Table, pa.Table]:
    """One batch: the clean rows (cluster sizes not yet known) and the audit rows.

    Statuses set by ingest (empty, unsupported, unreadable) stay. A document with more decode
    errors than ``max_decode_errors`` of its characters becomes ``decode_errors``. The others
    are cleaned and get empty, too_short, not_chinese, duplicate, near_duplicate or kept.
    """
    return finish_batch(docs, prepare_batch(docs, params, rules), dedup)


def prepare_batch(docs: pa.Table, params: CleanParams, rules: Rules) -> Prepared:
    """Everything about each document that does not depend on the others: the part of
    ``clean_batch`` that may run in any process."""
    require_columns(docs, ["text"], "clean")
    n = docs.num_rows
    texts = docs.column("text").to_pylist()
    status = _column(docs, "status", KEPT)
    reason = _column(docs, "reason", None)
    errors = _column(docs, "decode_errors", 0)
    rows = [i for i in range(n) if status[i] in (KEPT, DECODE_ERRORS)]
    cleaned = [""] * n
    audit: dict[str, list] = defaultdict(list)
    for i, (text, fired) in zip(
        rows, clean_texts((texts[i] for i in rows), rules, params.numbers), strict=True
    ):
        cleaned[i] = text
        for rule, matches, removed in fired:
            audit["row"].append(i)
            audit["rule"].append(rule)
            audit["n_matches"].append(matches)
            audit["chars_removed"].append(removed)
    counts = char_counts([cleaned[i] for i in rows])
    n_chars = np.zeros(n, dtype=np.int64)
    for i, (spaces, other_words, ideographs) in zip(rows, counts.tolist(), strict=True):
        n_chars[i] = size = len(cleaned[i]) - spaces
        units = ideographs + other_words  # cjk_share: a word of another script counts as one
        share = ideographs / units if units else 1.0
        status[i], reason[i] = status_after_cleaning(
            size, share, len(texts[i]), errors[i] or 0, params
        )
    digests = np.zeros(n, dtype="S16")
    first: dict[bytes, int] = {}
    if params.deduplicate:
        for i in rows:
            if status[i] == KEPT:
                digest = hashlib.blake2b(cleaned[i].encode("utf-8"), digest_size=16).digest()
                digests[i] = digest
                first.setdefault(digest, i)
    signature_rows = np.full(n, -1, dtype=np.int64)
    signature_rows[list(first.values())] = np.arange(len(first))
    table = pa.table(
        {
            "text": pa.array(cleaned, pa.string()),
            "n_chars": pa.array(n_chars, pa.int64()),
            "status": pa.array(status, pa.string()),
            "reason": pa.array(reason, pa.string()),
        }
    )
    return Prepared(
        table,
        pa.table(
            {
                "row": pa.array(audit["row"], pa.int64()),
                "rule": pa.array(audit["rule"], pa.string()),
                "n_matches": pa.array(audit["n_matches"], pa.int64()),
                "chars_removed": pa.array(audit["chars_removed"], pa.int64()),
            }
        ),
        digests,
        signature_rows,
        minhash_signatures([cleaned[i] for i in first.values()], params),
    )


def finish_batch(
    docs: pa.Table, prepared: Prepared, dedup: Deduplicator | None
) -> tuple[pa.Table, pa.Table]:
    """The clean and audit rows of a prepared batch, with the duplicates found in order."""
    require_columns(docs, ["doc_id"], "clean")
    ids = docs.column("doc_id")
    status = prepared.table.column("status").to_pylist()
    reason = prepared.table.column("reason").to_pylist()
    cluster: list[str | None] = [None] * docs.num_rows
    if dedup is not None:
        rows = [i for i, s in enumerate(status) if s == KEPT]
        decisions = dedup.assign(
            ids.take(rows).to_pylist(),
            prepared.digests[rows],
            prepared.signatures,
            prepared.signature_rows[rows],
        )
        for i, (duplicate, canonical) in zip(rows, decisions, strict=True):
            if duplicate is not None:
                status[i], cluster[i] = duplicate, canonical
                reason[i] = f"{duplicate.replace('_', '-')} of {canonical}"
    table = pa.table(
        {
            "doc_id": ids,
            "text": prepared.table.column("text"),
            "n_chars": prepared.table.column("n_chars"),
            "status": pa.array(status, pa.string()),
            "reason": pa.array(reason, pa.string()),
            "cluster_id": pa.array(cluster, pa.string()),
            "cluster_size": pa.nulls(docs.num_rows, pa.int64()),
        }
    )
    audit = prepared.audit
    audit = pa.table(
        {
            "doc_id": ids.take(audit.column("row")),
            **{name: audit.column(name) for name in ("rule", "n_matches", "chars_removed")},
        }
    )
    return table, CLEAN_AUDIT.conform(audit)


def _column(docs: pa.Table, name: str, default) -> list:
    if name in docs.column_names:
        return docs.column(name).to_pylist()
    return [default] * docs.num_rows


def status_after_cleaning(
    size: int, cjk: float, original_chars: int, decode_errors: int, params: CleanParams
) -> tuple[str, str | None]:
    share = decode_errors / max(1, original_chars)
    if decode_errors and share > params.max_decode_errors:
        return DECODE_ERRORS, (
            f"{decode_errors} invalid byte sequence(s), {share:.1%} of the characters, "
            f"above clean.max_decode_errors={params.max_decode_errors}"
        )
    if size == 0:
        return EMPTY, "no text left after cleaning"
    if size < params.min_chars:
        reason = f"{size} characters after cleaning, below clean.min_chars={params.min_chars}"
        return TOO_SHORT, reason
    if cjk < params.min_cjk_share:
        return NOT_CHINESE, (
            f"CJK characters are {cjk:.0%} of the text (a word of another script counts as "
            "one character), below "
            f"clean.min_cjk_share={params.min_cjk_share}"
        )
    if decode_errors:
        return KEPT, f"kept with {decode_errors} invalid byte sequence(s) replaced"
    return KEPT, None


def fill_cluster_sizes(table: pa.Table, sizes: Counter[str]) -> pa.Table:
    """Cluster id and size on every member of a cluster of two or more, canonical included."""
    ids = table.column("doc_id").to_pylist()
    clusters = table.column("cluster_id").to_pylist()
    cluster_ids, cluster_sizes = [], []
    for doc, cluster in zip(ids, clusters, strict=True):
        if cluster is None and sizes.get(doc, 0) > 1:
            cluster = doc
        cluster_ids.append(cluster)
        cluster_sizes.append(sizes[cluster] if cluster is not None else None)
    table = table.set_column(
        table.schema.get_field_index("cluster_id"), "cluster_id", pa.array(cluster_ids, pa.string())
    )
    return table.set_column(
        table.schema.get_field_index("cluster_size"),
        "cluster_size",
        pa.array(cluster_sizes, pa.int64()),
    )


# --- worker processes ---------------------------------------------------------------------------

# Characters of text per task sent to a worker, and cleaned in this process before a pool of
# workers would start (small inputs never start one).
TASK_CHARS = 1 << 20
INLINE_CHARS = 1 << 20


def _set_up_worker(params: CleanParams) -> tuple[CleanParams, Rules]:
    """Runs once in each worker process (also under spawn): its own rules and converter."""
    # Give freed arrow memory back at once: a worker's peak is one task, not the run's history.
    with contextlib.suppress(NotImplementedError, AttributeError):
        pa.jemalloc_set_decay_ms(0)
    return params, load_rules(params)


def _prepare_task(worker: tuple[CleanParams, Rules], docs: pa.Table) -> Prepared:
    params, rules = worker
    return prepare_batch(docs, params, rules)


class Cleaner:
    """Prepares streamed tables (``prepare_batch``), in a lazily started pool of worker
    processes once there is enough text. Results come back in input order and do not depend
    on the number of workers: every path runs ``prepare_batch`` on the same documents, a
    document's result depends on that document alone, and the pieces are put back in order."""

    def __init__(self, params: CleanParams, rules: Rules) -> None:
        self.params = params
        self.rules = rules
        self.pool = WorkerPool(
            params.workers or usable_cores(), params.start_method, _set_up_worker, INLINE_CHARS
        )

    @property
    def workers(self) -> int:
        return self.pool.workers

    @property
    def started(self) -> bool:
        """A pool of workers was started."""
        return self.pool.started

    def run(self, tables: Iterable[pa.Table]) -> Iterator[tuple[pa.Table, Prepared]]:
        """Yield each input table with what ``prepare_batch`` makes of it."""
        return run_ahead(tables, self._start, self._finish, ahead=2)

    def _start(self, docs: pa.Table) -> tuple[pa.Table, list[Future]]:
        columns = [
            c for c in ("text", "status", "reason", "decode_errors") if c in docs.column_names
        ]
        selected = docs.select(columns)
        if self.pool.takes_inline(text_chars(selected)):
            return docs, [done(prepare_batch(selected, self.params, self.rules))]
        self.pool.start(self.params)
        # take() copies a slice, so that only its own rows are sent to the worker.
        return docs, [
            self.pool.submit(_prepare_task, selected.take(np.arange(lo, hi)))
            for lo, hi in text_spans(selected, TASK_CHARS)
        ]

    def _finish(self, job: tuple[pa.Table, list[Future]]) -> tuple[pa.Table, Prepared]:
        docs, futures = job
        parts = [future.result() for future in futures]
        return docs, parts[0] if len(parts) == 1 else _concat_prepared(parts)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Cleaner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def text_chars(docs: pa.Table) -> int:
    """The characters of text in ``docs``."""
    return int(pc.sum(pc.utf8_length(docs.column("text"))).as_py() or 0)


def text_spans(docs: pa.Table, chars: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of ``docs`` with at most ``chars`` characters of text each (a
    longer document alone)."""
    lengths = pc.utf8_length(docs.column("text")).to_numpy(zero_copy_only=False)
    return list(row_spans(running_offsets(lengths).tolist(), chars))


def sized_batches(tables: Iterable[pa.Table], chars: int) -> Iterator[pa.Table]:
    """The tables cut where they hold more than ``chars`` characters of text."""
    for docs in tables:
        ranges = text_spans(docs, chars)
        if len(ranges) <= 1:
            yield docs
        else:
            yield from (docs.slice(lo, hi - lo) for lo, hi in ranges)


def _concat_prepared(parts: list[Prepared]) -> Prepared:
    """The parts of one batch as one: row numbers shifted to the batch's."""
    audits, rows = [], []
    first_row = first_signature = 0
    for part in parts:
        audit = part.audit
        audits.append(
            audit.set_column(0, "row", pa.array(audit.column("row").to_numpy() + first_row))
        )
        rows.append(np.where(part.signature_rows >= 0, part.signature_rows + first_signature, -1))
        first_row += part.table.num_rows
        first_signature += len(part.signatures)
    # One chunk per column: the bytes written must not depend on how the batch was split.
    return Prepared(
        pa.concat_tables([part.table for part in parts]).combine_chunks(),
        pa.concat_tables(audits).combine_chunks(),
        np.concatenate([part.digests for part in parts]),
        np.concatenate(rows),
        np.concatenate([part.signatures for part in parts]),
    )


# --- the ingest report --------------------------------------------------------------------------

# Documents cleaned per batch, and at most this many characters of text: memory holds a few
# batches, their texts and their audit (and clean.parquet has a row group per batch).
BATCH_ROWS = 10_000
BATCH_CHARS = 1 << 22

REPORT_DIMENSIONS = ("status", "encoding", "format")
# Columns of documents.parquet the ingest report reads, carried through the spool.
_REPORTED = ("source", "encoding", "format")


@dataclass
class IngestReport:
    """Counts of documents (and of the files they come from) by final status, encoding and
    format, accumulated batch by batch."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    files: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, docs: pa.Table, cleaned: pa.Table) -> None:
        sources = docs.column("source").to_pylist()
        values = {
            "status": cleaned.column("status").to_pylist(),
            "encoding": _column(docs, "encoding", None),
            "format": _column(docs, "format", None),
        }
        for dimension, column in values.items():
            for value, source in zip(column, sources, strict=True):
                key = (dimension, "(none)" if value is None else value)
                self.counts[key] += 1
                self.files[key].add(source)

    def table(self) -> pa.Table:
        keys = sorted(self.counts, key=lambda k: (REPORT_DIMENSIONS.index(k[0]), k[1]))
        return pa.table(
            {
                "dimension": [k[0] for k in keys],
                "value": [k[1] for k in keys],
                "count": pa.array([self.counts[k] for k in keys], pa.int64()),
                "files": pa.array([len(self.files[k]) for k in keys], pa.int64()),
            }
        )

    def metrics(self) -> dict:
        """For metrics/ingest.json: counts per dimension, the totals, the kept share."""
        data: dict = {d: {} for d in REPORT_DIMENSIONS}
        for (dimension, value), count in sorted(self.counts.items()):
            data[dimension][value] = count
        documents = sum(data["status"].values())
        data["documents"] = documents
        data["files"] = len(set().union(*self.files.values())) if self.files else 0
        data["kept_share"] = round(data["status"].get(KEPT, 0) / documents, 6) if documents else 0.0
        return data

    def lines(self) -> list[str]:
        """The report as text, one line per dimension."""
        metrics = self.metrics()
        out = [f"{metrics['files']} file(s), {metrics['documents']} document(s)"]
        for dimension in REPORT_DIMENSIONS:
            items = ", ".join(f"{k} {v}" for k, v in sorted(metrics[dimension].items()))
            out.append(f"  by {dimension}: {items}")
        return out


# --- main ---------------------------------------------------------------------------------------


def main(params: Params, paths: Paths) -> None:
    """Two passes: clean, audit and cluster the documents in batches to a spool (only a
    compact index of hashes stays in memory), then write clean.parquet with the cluster
    sizes."""
    rules = load_rules(params.clean)
    dedup = Deduplicator(params.clean) if params.clean.deduplicate else None
    report = IngestReport()
    documents = sized_batches(
        iter_tables(paths.table("documents"), DOCUMENTS, batch_rows=BATCH_ROWS), BATCH_CHARS
    )
    progress = tqdm(desc="clean", unit="doc", disable=None)
    # The spool holds the cleaned text until the cluster sizes are known: plain, it is written
    # and read back in a fraction of the time.
    spool = Spool(paths.table("clean"), compression="none", use_dictionary=False)
    spin = SpinScorer()
    with spool, progress, dedup or contextlib.nullcontext():
        audit_writer = TableWriter(paths.table("clean_audit"), CLEAN_AUDIT)
        with Cleaner(params.clean, rules) as cleaner, audit_writer:
            for docs, prepared in cleaner.run(documents):
                table, audit = finish_batch(docs, prepared, dedup)
                units = spin_units(docs)
                counted = [s == KEPT for s in table.column("status").to_pylist()]
                spin.gather(units, table.column("text").to_pylist(), counted)
                extra = {
                    "_unit": pa.array(units, pa.string()),
                    "_swaps": pa.array(replacement_counts(prepared.audit, docs.num_rows)),
                    **{f"_{c}": docs.column(c) for c in _REPORTED if c in docs.column_names},
                }
                for name, column in extra.items():
                    table = table.append_column(name, column)
                spool.write(table)
                audit_writer.write(audit)
                progress.update(docs.num_rows)
        # The spin scores need the whole corpus' bigrams (pass one), then each unit's counts.
        for table in spool.read():
            counted = [s == KEPT for s in table.column("status").to_pylist()]
            spin.count(
                table.column("_unit").to_pylist(),
                table.column("text").to_pylist(),
                table.column("_swaps").to_pylist(),
                counted,
            )
        scores = spin.scores()
        sizes = dedup.sizes if dedup is not None else Counter()
        spun = 0
        with TableWriter(paths.table("clean"), CLEAN) as writer:
            for table in spool.read():
                units = table.column("_unit").to_pylist()
                meta = pa.table(
                    {c: table.column(f"_{c}") for c in _REPORTED if f"_{c}" in table.column_names}
                )
                table = table.drop_columns([c for c in table.column_names if c.startswith("_")])
                table = apply_spin(fill_cluster_sizes(table, sizes), units, scores, params.clean)
                spun += sum(1 for r in table.column("reason").to_pylist() if r and "spun:" in r)
                writer.write(table)
                report.add(meta, table)
    write_table(report.table(), paths.table("ingest_report"), INGEST_REPORT)
    write_json(report.metrics(), paths.metrics / "ingest.json")
    for line in report.lines():
        log.info("ingest report: %s", line)
    log.info(
        "clean: %d document(s) flagged as spun (clean.spin_threshold=%s, clean.drop_spun=%s)",
        spun,
        params.clean.spin_threshold,
        params.clean.drop_spun,
    )
    log.info(
        "clean: %d documents -> %s (%d rule match row(s) in %s; %d worker process(es))",
        writer.num_rows,
        paths.table("clean"),
        audit_writer.num_rows,
        paths.table("clean_audit"),
        cleaner.workers if cleaner.started else 0,
    )
