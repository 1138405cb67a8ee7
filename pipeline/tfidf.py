"""Stage tfidf: vocabulary, document-term counts and TF-IDF keywords.

The tokens come segmented already, so they are counted on the arrow columns themselves: the
tokens of a slice of documents are dictionary-encoded and the (document, term) pairs counted
with numpy, with no Python loop over tokens or documents, and the document-term matrix stays
sparse (CSR arrays) throughout. Pruning and weighting repeat scikit-learn's ``CountVectorizer``
and ``TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True)`` operation for operation, so
the numbers are scikit-learn's to the last bit (tests/test_tfidf.py checks this against
scikit-learn itself); importing scikit-learn would cost more time and memory than the counting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrays import to_arrow, to_numpy
from pipeline.config import Params, TfidfParams
from pipeline.io import Paths, iter_tables, read_table, row_spans, write_table
from pipeline.progress import Progress, count_rows
from pipeline.schemas import (
    DOC_TERMS,
    DOCUMENTS,
    KEYWORDS,
    TOKENS,
    VOCABULARY,
    require_columns,
)
from pipeline.topics import background

log = logging.getLogger(__name__)

# Documents per batch read from tokens.parquet; only the counts outlive a batch.
BATCH_ROWS = 4096
# Tokens counted at a time: bounds the working memory whatever the length of the documents.
SLICE_TOKENS = 1 << 20
# Distinct terms of slices gathered before they are merged into the corpus's terms.
MERGE_TERMS = 1 << 20


class TfidfError(ValueError):
    """The settings leave nothing to model; the message names them."""


@dataclass(frozen=True)
class TfidfResult:
    vocabulary: pa.Table
    doc_terms: pa.Table
    keywords: pa.Table
    n_docs: int  # rows of the tokens table
    n_with_tokens: int  # of them, documents with tokens: the documents counted
    n_with_terms: int  # of them, documents left with a vocabulary term


@dataclass(frozen=True)
class _Counts:
    """Sparse (CSR) document-term counts over every distinct token, before pruning.

    Row ``r`` is document ``doc_ids[r]``; its entries are ``indptr[r]:indptr[r + 1]`` of
    ``indices`` (positions in ``terms``, in no particular order within a row) and ``data``.
    """

    doc_ids: pa.Array
    terms: pa.Array  # every distinct token, in order of first appearance
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_docs: int  # rows read, with or without tokens

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1


@dataclass
class _Piece:
    """The counts of a slice of documents, as CSR rows; ``indices`` point into the slice's own
    ``terms`` until ``_merge_terms`` renumbers them into the corpus's terms."""

    doc_ids: pa.Array
    terms: pa.Array | None
    row_lengths: np.ndarray
    indices: np.ndarray
    data: np.ndarray


def tfidf(
    tokens: pa.Table | Iterable[pa.Table],
    params: TfidfParams,
    keep_terms: frozenset[str] = frozenset(),
    parents: Mapping[str, str] | None = None,
) -> TfidfResult:
    """Count terms over documents with tokens, prune by document frequency, weight by TF-IDF,
    and score each term as corpus boilerplate (``background``; ``keep_terms`` never flagged).

    ``tokens`` is a tokens table or an iterable of its consecutive pieces, which are streamed:
    only the counts are kept from one piece to the next. ``parents`` maps a doc_id to its
    parent document (ingest's parent_id), for the background flag of short units.
    """
    counts = _count_terms([tokens] if isinstance(tokens, pa.Table) else tokens)
    if counts.n_rows == 0:
        raise TfidfError("tfidf: no document has any token; check the clean and segment results")
    kept = _kept_terms(counts, params)
    terms = counts.terms.take(to_arrow(kept))
    doc_ids, n_docs, n_rows = counts.doc_ids, counts.n_docs, counts.n_rows
    indptr, indices, data = _prune(counts, kept)
    del counts
    rows = np.repeat(np.arange(n_rows, dtype=np.int32), np.diff(indptr))
    df = np.bincount(indices, minlength=len(terms))
    idf = _idf(df, n_rows)
    weights = _weigh(data, indices, rows, idf, params.sublinear_tf)
    keywords = _keywords(weights, indices, rows, indptr, doc_ids, terms, params.top_k)
    cf = np.bincount(indices, weights=data, minlength=len(terms))
    spread = background.parent_spread(
        _parent_index(doc_ids.to_pylist(), parents), rows, indices, data, len(terms)
    )
    vocabulary = vocabulary_table(
        terms,
        df,
        cf,
        idf,
        n_rows,
        params,
        keep_terms,
        spread,
        lambda candidates: background.partner_npmi(indptr, indices, candidates, len(terms)),
    )
    doc_terms = pa.table(
        {
            "doc_id": doc_ids.take(to_arrow(rows)),
            "term_id": to_arrow(indices),
            "count": to_arrow(data),
            "tfidf": to_arrow(weights),
        }
    )
    n_with_terms = int(np.count_nonzero(np.diff(indptr)))
    return TfidfResult(vocabulary, doc_terms, keywords, n_docs, n_rows, n_with_terms)


def vocabulary_table(
    terms: pa.Array,
    df: np.ndarray,
    cf: np.ndarray,
    idf: np.ndarray,
    n_rows: int,
    params: TfidfParams,
    keep_terms: frozenset[str],
    spread: background.ParentSpread,
    partner_npmi: Callable[[np.ndarray], np.ndarray],
) -> pa.Table:
    """The vocabulary table of the kept ``terms`` (sorted; ``df``, ``cf``, ``idf``: their
    document and corpus frequencies over the ``n_rows`` documents with tokens, their idf) with
    the background columns; ``partner_npmi(candidates)`` gives the frequent, even terms' best
    partner NPMI (``background.partner_npmi``). The Spark engine counts with Spark, then calls
    this too."""
    score = background.evenness(df, cf, n_rows)
    frequent_even = (df >= params.background_min_df * n_rows) & (
        score >= params.background_min_evenness
    )
    partner = partner_npmi(frequent_even)
    flags = background.flag_background(
        terms.to_pylist(),
        df,
        score,
        n_rows,
        params.background_min_df,
        params.background_min_evenness,
        keep_terms,
        spread,
        params.background_min_parent_share,
        partner,
        params.background_min_partner_npmi,
    )
    return pa.table(
        {
            "term_id": to_arrow(np.arange(len(terms), dtype=np.int32)),
            "term": terms,
            "df": to_arrow(np.asarray(df).astype(np.int32)),
            "idf": to_arrow(idf),
            "background": to_arrow(score),
            "parent_share": to_arrow(spread.share),
            "parent_evenness": to_arrow(spread.evenness),
            "partner_npmi": to_arrow(partner),
            "is_background": pa.array(flags, pa.bool_()),
        }
    )


def _count_terms(tables: Iterable[pa.Table]) -> _Counts:
    """The document-term counts of the documents with tokens (``n_tokens > 0``), in order."""
    pieces, unmerged, n_unmerged, terms, n_docs = [], [], 0, None, 0
    for table in tables:
        require_columns(table, ["doc_id", "tokens", "n_tokens"], "tfidf")
        for name in ("doc_id", "tokens", "n_tokens"):
            if table.column(name).null_count:
                raise TfidfError(
                    f"tfidf: column {name!r} has {table.column(name).null_count} null(s); "
                    "the tokens table is damaged, run the segment stage again"
                )
        n_docs += table.num_rows
        for part in token_slices(table, SLICE_TOKENS):
            pieces.append(_count_slice(part))
            unmerged.append(pieces[-1])
            n_unmerged += len(pieces[-1].terms)
            if n_unmerged >= max(MERGE_TERMS, 0 if terms is None else len(terms)):
                terms, unmerged, n_unmerged = _merge_terms(terms, unmerged), [], 0
    if not pieces:
        pieces.append(_count_slice(TOKENS.schema.empty_table()))
        unmerged.append(pieces[-1])
    terms = _merge_terms(terms, unmerged)
    return _Counts(
        doc_ids=pa.concat_arrays([p.doc_ids for p in pieces]),
        terms=terms,
        indptr=np.cumsum(np.concatenate([[0], *(p.row_lengths for p in pieces)]), dtype=np.int64),
        indices=np.concatenate([p.indices for p in pieces]),
        data=np.concatenate([p.data for p in pieces]),
        n_docs=n_docs,
    )


def token_slices(table: pa.Table, max_tokens: int) -> list[pa.Table]:
    """Consecutive row slices of about ``max_tokens`` tokens (more for a longer document)."""
    offsets = np.zeros(table.num_rows + 1, np.int64)
    np.cumsum(to_numpy(pc.list_value_length(_array(table.column("tokens")))), out=offsets[1:])
    return [table.slice(start, stop - start) for start, stop in row_spans(offsets, max_tokens)]


def _count_slice(table: pa.Table) -> _Piece:
    """Count the distinct tokens of each document with tokens, without a loop over either."""
    lists = _array(table.column("tokens"))
    values = lists.flatten()
    if values.null_count:
        raise TfidfError(
            f"tfidf: {values.null_count} token(s) are null; the tokens table is damaged, "
            "run the segment stage again"
        )
    encoded = pc.dictionary_encode(values)
    n_terms = max(len(encoded.dictionary), 1)
    # A key per token, row * n_terms + term: equal keys are repeats of a term in a document.
    keys = np.repeat(
        np.arange(len(lists), dtype=np.int64) * n_terms, to_numpy(pc.list_value_length(lists))
    )
    keys += to_numpy(encoded.indices)
    keys.sort()
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    del first
    counts = np.diff(starts, append=len(keys)).astype(np.int32)
    keys = keys[starts]
    rows = keys // n_terms
    with_tokens = to_numpy(_array(table.column("n_tokens"))) > 0
    entry_kept = with_tokens[rows]
    return _Piece(
        doc_ids=_array(table.column("doc_id")).take(to_arrow(np.flatnonzero(with_tokens))),
        terms=encoded.dictionary,
        row_lengths=np.bincount(rows, minlength=len(lists))[with_tokens],
        indices=(keys[entry_kept] % n_terms).astype(np.int32),
        data=counts[entry_kept],
    )


def _merge_terms(terms: pa.Array | None, pieces: list[_Piece]) -> pa.Array:
    """``terms`` followed by the pieces' new terms; the pieces' indices are renumbered into it.

    Terms keep their positions (dictionary_encode numbers values in order of first
    appearance), so pieces merged earlier stay valid; merging only when the unmerged terms
    outnumber the merged ones keeps the total work linear in the number of slices.
    """
    if not pieces:
        return terms
    parts = ([] if terms is None else [terms]) + [p.terms for p in pieces]
    if len(parts) == 1:
        pieces[0].terms = None  # one piece, numbered already
        return parts[0]
    encoded = pc.dictionary_encode(pa.concat_arrays(parts))
    positions = to_numpy(encoded.indices)
    start = 0 if terms is None else len(terms)
    for piece in pieces:
        piece.indices = positions[start : start + len(piece.terms)][piece.indices]
        start += len(piece.terms)
        piece.terms = None
    return encoded.dictionary


def _kept_terms(counts: _Counts, params: TfidfParams) -> np.ndarray:
    """The terms that pass min_df, max_df and max_features as CountVectorizer decides, as
    positions in ``counts.terms``, sorted by term (code point order, as Python sorts str)."""
    n_rows = counts.n_rows
    if len(counts.terms) == 0:
        raise TfidfError(
            f"tfidf: the {n_rows} documents with tokens have an empty token list; "
            "check the segment results"
        )
    df = np.bincount(counts.indices, minlength=len(counts.terms))
    return choose_terms(
        counts.terms,
        df,
        lambda: np.bincount(counts.indices, weights=counts.data, minlength=len(counts.terms)),
        n_rows,
        params,
    )


def df_bounds(n_rows: int, params: TfidfParams) -> tuple[float, float]:
    """The (lowest, highest) document frequency a term may have over ``n_rows`` documents."""
    max_df, min_df = params.max_df, params.min_df
    high = max_df if isinstance(max_df, Integral) else max_df * n_rows
    low = min_df if isinstance(min_df, Integral) else min_df * n_rows
    if high < low:
        raise TfidfError(
            f"tfidf: tfidf.max_df={max_df} allows fewer documents ({high:g}) than "
            f"tfidf.min_df={min_df} ({low:g}) over {n_rows} documents; "
            "lower min_df or raise max_df"
        )
    return low, high


def choose_terms(
    terms: pa.Array,
    df: np.ndarray,
    totals: Callable[[], np.ndarray],
    n_rows: int,
    params: TfidfParams,
) -> np.ndarray:
    """Positions in ``terms`` of the terms kept by min_df, max_df and max_features, sorted by
    term; ``df`` is each term's document frequency, ``totals()`` its count over the corpus.
    The Spark engine passes the terms it counted, which are decided the same way."""
    low, high = df_bounds(n_rows, params)
    kept = np.flatnonzero((df <= high) & (df >= low))
    if len(kept) == 0:
        raise TfidfError(
            f"tfidf: no term is left with tfidf.min_df={params.min_df} and "
            f"tfidf.max_df={params.max_df} over {n_rows} documents; lower min_df or raise max_df"
        )
    kept = kept[to_numpy(pc.array_sort_indices(terms.take(to_arrow(kept))))]
    limit = params.max_features
    if limit is not None and len(kept) > limit:
        # As scikit-learn: the most frequent terms, ties broken by the same (unstable) default
        # argsort on the same int64 totals in the same (sorted) term order.
        chosen = (-totals().astype(np.int64)[kept]).argsort()[:limit]
        kept = kept[np.sort(chosen)]
    return kept


def _prune(counts: _Counts, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR arrays of the kept terms, numbered by their order in ``kept`` and ascending
    within each row."""
    new_id = np.full(len(counts.terms), -1, dtype=np.int32)
    new_id[kept] = np.arange(len(kept), dtype=np.int32)
    indices = new_id[counts.indices]
    entry_kept = indices >= 0
    indptr = np.concatenate([[0], np.cumsum(entry_kept, dtype=np.int64)])[counts.indptr]
    indices, data = indices[entry_kept], counts.data[entry_kept]
    del entry_kept
    keys = np.repeat(np.arange(counts.n_rows, dtype=np.int64) * len(kept), np.diff(indptr))
    keys += indices
    order = np.argsort(keys)  # the keys are distinct: any sort will do
    return indptr, indices[order], data[order]


def _idf(df: np.ndarray, n_rows: int) -> np.ndarray:
    """Smoothed idf, ln((1 + n) / (1 + df)) + 1, computed as TfidfTransformer.fit does."""
    df = df.astype(np.float64)
    df += 1.0
    idf = np.full_like(df, fill_value=n_rows + 1, dtype=np.float64)
    idf /= df
    np.log(idf, out=idf)
    idf += 1.0
    return idf


def _weigh(
    counts: np.ndarray, indices: np.ndarray, rows: np.ndarray, idf: np.ndarray, sublinear_tf: bool
) -> np.ndarray:
    """TF-IDF weights with rows scaled to unit L2 norm, as TfidfTransformer.transform does.

    The squares of a row are summed in entry order (bincount adds one after the other), as
    scikit-learn's normalisation loop does, so the norms agree to the last bit.
    """
    weights = counts.astype(np.float64)
    if sublinear_tf:
        np.log(weights, out=weights)
        weights += 1.0
    scratch = np.take(idf, indices)
    weights *= scratch
    np.multiply(weights, weights, out=scratch)
    norms = np.sqrt(np.bincount(rows, weights=scratch))
    norms[norms == 0.0] = 1.0  # as scikit-learn, a row without weight is left as it is
    weights /= np.take(norms, rows, out=scratch)
    return weights


def _keywords(
    weights: np.ndarray,
    indices: np.ndarray,
    rows: np.ndarray,
    indptr: np.ndarray,
    doc_ids: pa.Array,
    terms: pa.Array,
    top_k: int,
) -> pa.Table:
    """The ``top_k`` terms of each document by weight; ties go to the earlier term.

    Entries are in (row, term) order and arrow's sort is stable, so sorting by
    (row, -weight) keeps equal weights in term order. Rows are ascending already, so the
    sorted entries of row ``r`` take the same places ``indptr[r]:indptr[r + 1]`` as before.
    """
    by = pa.table({"row": to_arrow(rows), "weight": to_arrow(weights)})
    order = to_numpy(pc.sort_indices(by, [("row", "ascending"), ("weight", "descending")]))
    del by
    rank = np.arange(len(rows), dtype=np.int64)
    rank -= indptr[rows]
    top = rank < top_k
    order, top_rows, rank = order[top], rows[top], rank[top]
    return pa.table(
        {
            "doc_id": doc_ids.take(to_arrow(top_rows)),
            "rank": to_arrow((rank + 1).astype(np.int32)),
            "term": terms.take(to_arrow(indices[order])),
            "weight": to_arrow(weights[order]),
        }
    )


def _array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array; without a copy when it has one chunk (combine_chunks copies)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _parent_index(doc_ids: list[str], parents: Mapping[str, str] | None) -> np.ndarray:
    """Each row's parent as an index 0 .. P-1 (a document without a parent is its own)."""
    parents = parents or {}
    index: dict[str, int] = {}
    return np.fromiter(
        (index.setdefault(parents.get(d, d), len(index)) for d in doc_ids),
        dtype=np.int64,
        count=len(doc_ids),
    )


def _parents(paths: Paths) -> dict[str, str]:
    """doc_id -> parent_id of the ingested documents."""
    wanted = ("doc_id", "parent_id")
    without = [name for name in DOCUMENTS.schema.names if name not in wanted]
    documents = read_table(paths.table("documents"), DOCUMENTS, without)
    return dict(
        zip(
            documents.column("doc_id").to_pylist(),
            documents.column("parent_id").to_pylist(),
            strict=True,
        )
    )


def main(params: Params, paths: Paths) -> None:
    tokens = iter_tables(paths.table("tokens"), TOKENS, BATCH_ROWS)
    keep = background.read_keep_terms(params.tfidf.keep_terms)
    parents = _parents(paths)
    with Progress("tfidf", total=count_rows(paths.table("tokens")), unit="doc", logger=log) as p:
        result = tfidf(p.iterate(tokens, lambda table: table.num_rows), params.tfidf, keep, parents)
    write_table(result.vocabulary, paths.table("vocabulary"), VOCABULARY)
    write_table(result.doc_terms, paths.table("doc_terms"), DOC_TERMS)
    write_table(result.keywords, paths.table("keywords"), KEYWORDS)
    log.info(
        "tfidf: %d terms; %d of %d documents have terms -> %s",
        result.vocabulary.num_rows,
        result.n_with_terms,
        result.n_docs,
        paths.processed,
    )
    flagged = result.vocabulary.filter(result.vocabulary.column("is_background"))
    log.info(
        "tfidf: %d background term(s) (tfidf.background_min_df, background_min_evenness): %s",
        flagged.num_rows,
        " ".join(flagged.column("term").to_pylist()[:50]),
    )
    if result.n_with_terms < result.n_with_tokens:
        log.warning(
            "tfidf: %d document(s) have tokens but none in the vocabulary "
            "(tfidf.min_df/max_df); they get no keywords and no topic mix",
            result.n_with_tokens - result.n_with_terms,
        )
