"""Stage compare: what sets a group of documents apart, and how topics change over time.

For each column worth comparing (periods of the date, the folder, path fields, metadata of
tabular input), every group of at least ``compare.min_docs`` documents is set against the rest:
its key terms (keyness.parquet) and how much more or less of each topic it has
(topic_contrasts.parquet). Topic shares per period with a smoothed trend go to
topic_trends.parquet, and concordance lines of each topic's top terms to topic_kwic.parquet.
compare_groups.parquet lists every group with its size and whether it was compared.

Groups are counted in documents (a file, or a record of a table), not paragraphs: the
paragraphs of one speech are one voice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from pipeline import kwic
from pipeline.config import CompareParams, Params
from pipeline.io import Paths, iter_tables, read_table, write_table
from pipeline.schemas import (
    COMPARE_GROUPS,
    DOC_TERMS,
    DOC_TOPICS,
    DOCUMENTS,
    KEYNESS,
    TOKENS,
    TOPIC_CONTRASTS,
    TOPIC_KWIC,
    TOPIC_TERMS,
    TOPIC_TRENDS,
    VOCABULARY,
)
from pipeline.text.dates import BUCKETS, bucket_label, bucket_position
from pipeline.topics import contrasts as ct
from pipeline.topics.keyness import group_term_counts, keyness
from pipeline.topics.prevalence import document_positions

log = logging.getLogger(__name__)

# Columns of documents.parquet that are never groups: ids, texts, per-unit bookkeeping.
NOT_GROUPS = {
    "doc_id",
    "parent_id",
    "record",
    "part",
    "paragraph",
    "title",
    "date",
    "date_source",
    "date_precision",
    "text",
    "format",
    "encoding",
    "decode_errors",
    "status",
    "reason",
}
COMPARED, TOO_SMALL, NOT_SHOWN, ALONE = "compared", "too_small", "not_shown", "alone"
AUTO_BUCKETS = ("decade", "year")


class CompareError(ValueError):
    """A compare setting names something the run does not have; the message says what."""


@dataclass(frozen=True)
class Units:
    """The modelled units (rows of theta) and the document (parent) each belongs to."""

    doc_ids: list[str]
    parent: np.ndarray  # unit -> document index
    n_documents: int


@dataclass(frozen=True)
class Grouping:
    """One column's groups: codes per document (0..G-1 compared, G other, -1 no value)."""

    column: str
    names: list[str]  # compared groups, in order
    codes: np.ndarray
    summary: pa.Table  # rows of compare_groups


def units_of(doc_ids: list[str], documents: pa.Table) -> tuple[Units, pa.Table]:
    """The units in ``doc_ids`` order and one row of ``documents`` per document (its first
    unit's metadata)."""
    rows = documents.take(document_positions(doc_ids, documents, "compare", CompareError))
    encoded = rows.column("parent_id").combine_chunks().dictionary_encode()
    parent = encoded.indices.to_numpy().astype(np.int64)
    first = np.unique(parent, return_index=True)[1] if len(parent) else np.zeros(0, np.int64)
    per_document = rows.take(pa.array(first, pa.int64()))
    return Units(doc_ids, parent, len(encoded.dictionary)), per_document


def column_values(per_document: pa.Table, column: str) -> list[str | None]:
    """Each document's group in ``column``; decade, year, quarter and month come from the date
    (by its precision) unless the table has a column of that name."""
    if column in BUCKETS and column not in _metadata(per_document):
        precisions = (
            per_document.column("date_precision").to_pylist()
            if "date_precision" in per_document.column_names
            else [None] * per_document.num_rows
        )
        return [
            bucket_label(d, p, column)
            for d, p in zip(per_document.column("date").to_pylist(), precisions, strict=True)
        ]
    values = per_document.column(column).to_pylist()
    return [None if v is None or v == "" else str(v) for v in values]


def _metadata(table: pa.Table) -> list[str]:
    return [c for c in table.column_names if c not in NOT_GROUPS and c not in DOCUMENTS.columns]


def grouping(per_document: pa.Table, units: Units, column: str, params: CompareParams) -> Grouping:
    """The groups of ``column``: those of at least min_docs documents compared (the
    max_groups largest), the others part of the rest only."""
    values = column_values(per_document, column)
    names, inverse, n_docs = np.unique(
        np.asarray([v if v is not None else "" for v in values], dtype=object),
        return_inverse=True,
        return_counts=True,
    )
    has_value = np.asarray([v is not None for v in values], dtype=bool)
    n_units_doc = np.bincount(units.parent, minlength=units.n_documents)
    n_units = np.bincount(inverse, weights=n_units_doc, minlength=len(names)).astype(np.int64)
    real = [i for i, name in enumerate(names) if name != ""]  # "" stands for no value
    valid = int(sum(n_docs[i] for i in real))
    # A group is set against the rest: both need min_docs documents.
    big = [i for i in real if n_docs[i] >= params.min_docs]
    alone = {i for i in big if valid - n_docs[i] < params.min_docs}
    big = [i for i in big if i not in alone]
    shown = sorted(sorted(big, key=lambda i: (-n_docs[i], names[i]))[: params.max_groups])
    code_of = np.full(len(names), len(shown), dtype=np.int64)
    code_of[shown] = np.arange(len(shown))
    codes = np.where(has_value, code_of[inverse], -1)
    status = {i: COMPARED for i in shown} | {i: ALONE for i in alone}
    summary = pa.table(
        {
            "column": [column] * len(real),
            "group": [str(names[i]) for i in real],
            "n_docs": pa.array([int(n_docs[i]) for i in real], pa.int64()),
            "n_units": pa.array([int(n_units[i]) for i in real], pa.int64()),
            "status": [
                status.get(i, TOO_SMALL if n_docs[i] < params.min_docs else NOT_SHOWN) for i in real
            ],
        }
    )
    return Grouping(column, [str(names[i]) for i in shown], codes, summary)


def choose_columns(per_document: pa.Table, units: Units, params: CompareParams) -> list[str]:
    """``compare.columns``, or those worth comparing: periods of the date (decade, year), then
    the folder, path fields and other metadata, then source; a column is worth comparing when
    at least two of its groups hold min_docs documents."""
    available = set(per_document.column_names) | set(BUCKETS)
    if params.columns is not None:
        unknown = [c for c in params.columns if c not in available or c in NOT_GROUPS]
        if unknown:
            raise CompareError(
                f"compare.columns: {unknown} not in documents.parquet; choose from "
                f"{sorted(set(_metadata(per_document)) | {'source'})} or {list(BUCKETS)}"
            )
        return list(params.columns)
    chosen = []
    for column in candidate_columns(per_document):
        g = grouping(per_document, units, column, params)
        if len(g.names) >= 2:
            chosen.append(column)
    return chosen


def candidate_columns(per_document: pa.Table) -> list[str]:
    """The columns compare looks at by itself: decade and year when documents have dates,
    then the folder, path fields and other metadata, then source."""
    candidates: list[str] = []
    if per_document.column("date").null_count < per_document.num_rows:
        candidates += list(AUTO_BUCKETS)
    candidates += [c for c in _metadata(per_document) if c not in candidates]
    candidates.append("source")
    return candidates


def passed_over(
    per_document: pa.Table, units: Units, params: CompareParams, chosen: list[str]
) -> list[pa.Table]:
    """compare_groups rows of the candidate columns not compared (at most max_groups groups,
    so that an id column is not listed value by value): their groups are too small, or
    ``alone`` (enough documents, but no second such group to set them against)."""
    if params.columns is not None:
        return []
    out = []
    for column in candidate_columns(per_document):
        if column in chosen:
            continue
        summary = grouping(per_document, units, column, params).summary
        if summary.num_rows > params.max_groups:
            continue
        status = [ALONE if s != TOO_SMALL else s for s in summary.column("status").to_pylist()]
        out.append(summary.set_column(4, "status", pa.array(status, pa.string())))
    return out


def keyness_table(
    counts: sp.csr_matrix, units: Units, g: Grouping, terms: np.ndarray, params: CompareParams
) -> pa.Table:
    """The key terms of each compared group of ``g`` (rows of ``counts`` are the units)."""
    n = len(g.names)
    if n == 0:
        return KEYNESS.schema.empty_table()
    unit_codes = g.codes[units.parent]
    by_group = group_term_counts(counts, unit_codes, n + 1)
    results = keyness(by_group, params.top_n, params.correction)[:n]
    parts = []
    for name, r in zip(g.names, results, strict=True):
        m = len(r.term_ids)
        parts.append(
            pa.table(
                {
                    "column": [g.column] * m,
                    "group": [name] * m,
                    "rank": pa.array(np.arange(1, m + 1), pa.int32()),
                    "term": terms[r.term_ids].tolist(),
                    "g2": r.g2,
                    "p": r.p,
                    "p_adjusted": r.p_adjusted,
                    "significant": r.p_adjusted < params.alpha,
                    "log_ratio": r.log_ratio,
                    "freq_group": r.freq_group.astype(np.int64),
                    "freq_rest": r.freq_rest.astype(np.int64),
                }
            )
        )
    return KEYNESS.conform(pa.concat_tables(parts))


def contrasts_table(
    shares: np.ndarray, g: Grouping, params: CompareParams, rng: np.random.Generator
) -> pa.Table:
    """Each compared group's topic shares against the rest, with bootstrap intervals."""
    n, k = len(g.names), shares.shape[1]
    if n == 0:
        return TOPIC_CONTRASTS.schema.empty_table()
    c = ct.contrasts(shares, g.codes, n + 1, params.bootstrap, rng)
    return TOPIC_CONTRASTS.conform(
        pa.table(
            {
                "column": [g.column] * (n * k),
                "group": np.repeat(g.names, k).tolist(),
                "topic": pa.array(np.tile(np.arange(k), n), pa.int32()),
                "n_docs": np.repeat(c.n_docs[:n], k).astype(np.int64),
                "mean_group": c.mean[:n].ravel(),
                "mean_rest": c.mean_rest[:n].ravel(),
                "diff": c.diff[:n].ravel(),
                "ci_low": c.diff_low[:n].ravel(),
                "ci_high": c.diff_high[:n].ravel(),
            }
        )
    )


def trends_table(
    per_document: pa.Table, shares: np.ndarray, params: CompareParams, rng: np.random.Generator
) -> pa.Table:
    """Topic shares per period with intervals and a kernel-smoothed trend; every period is
    kept, those with fewer than min_docs documents flagged."""
    labels = column_values(per_document, params.trend_bucket)
    periods = sorted(
        {x for x in labels if x is not None and bucket_position(x) is not None},
        key=lambda x: bucket_position(x),
    )
    if not periods:
        return TOPIC_TRENDS.schema.empty_table()
    code_of = {p: i for i, p in enumerate(periods)}
    codes = np.asarray([code_of.get(x, -1) if x else -1 for x in labels], dtype=np.int64)
    c = ct.contrasts(shares, codes, len(periods), params.bootstrap, rng)
    x = np.asarray([bucket_position(p) for p in periods])
    bandwidth = params.trend_bandwidth or ct.default_bandwidth(x)
    trend = ct.smooth(x, c.mean, c.n_docs.astype(np.float64), bandwidth)
    n, k = len(periods), shares.shape[1]
    return TOPIC_TRENDS.conform(
        pa.table(
            {
                "period": np.repeat(periods, k).tolist(),
                "position": np.repeat(x, k),
                "topic": pa.array(np.tile(np.arange(k), n), pa.int32()),
                "n_docs": np.repeat(c.n_docs, k).astype(np.int64),
                "mean": c.mean.ravel(),
                "ci_low": c.mean_low.ravel(),
                "ci_high": c.mean_high.ravel(),
                "trend": trend.ravel(),
                "few_docs": np.repeat(c.n_docs < params.min_docs, k),
            }
        )
    )


def theta_of(doc_topics: pa.Table) -> tuple[list[str], np.ndarray]:
    """(unit doc_ids in first-seen order, units x topics shares) of the long doc_topics table."""
    encoded = doc_topics.column("doc_id").combine_chunks().dictionary_encode()
    rows = encoded.indices.to_numpy()
    topics = doc_topics.column("topic").to_numpy()
    k = int(topics.max()) + 1 if len(topics) else 0
    theta = np.zeros((len(encoded.dictionary), k))
    theta[rows, topics] = doc_topics.column("weight").to_numpy()
    return encoded.dictionary.to_pylist(), theta


def topic_kwic(
    tokens: Iterable[pa.Table],
    texts_path: Path,
    topic_terms: pa.Table,
    dominant: dict[str, int],
    params: CompareParams,
) -> pa.Table:
    """Concordance lines of each topic's top terms, from documents where that topic is the
    largest, a document per line, in corpus order."""
    wanted: dict[int, list[str]] = {}
    for row in topic_terms.sort_by([("topic", "ascending"), ("rank", "ascending")]).to_pylist():
        if len(wanted.setdefault(row["topic"], [])) < params.kwic_terms:
            wanted[row["topic"]].append(row["term"])
    all_terms = sorted({t for terms in wanted.values() for t in terms})
    need = {(t, term): params.kwic_lines for t, terms in wanted.items() for term in terms}
    picked: list[tuple[int, str, str, list[str]]] = []
    if all_terms and params.kwic_lines:
        for doc, doc_tokens in kwic.documents_with(tokens, all_terms):
            topic = dominant.get(doc)
            present = set(doc_tokens)
            for term in wanted.get(topic, []):
                if term in present and need[(topic, term)] > 0:
                    need[(topic, term)] -= 1
                    picked.append((topic, term, doc, doc_tokens))
            if not any(need.values()):
                break
    texts = kwic.read_texts(texts_path, {doc for _, _, doc, _ in picked})
    rows = []
    for topic, term, doc, doc_tokens in picked:
        lines = kwic.concordance(texts.get(doc, ""), doc_tokens, term, params.kwic_width)
        if lines:
            rows.append(
                (topic, kwic.Line(doc, lines[0].start, lines[0].left, term, lines[0].right))
            )
    rows.sort(key=lambda r: (r[0], wanted[r[0]].index(r[1].term)))
    table = kwic.lines_table([line for _, line in rows], {}, None)
    return table.set_column(0, "topic", pa.array([t for t, _ in rows], pa.int32()))


def main(params: Params, paths: Paths) -> None:
    p = params.compare
    doc_ids, theta = theta_of(read_table(paths.table("doc_topics"), DOC_TOPICS))
    documents = _documents(paths)
    units, per_document = units_of(doc_ids, documents)
    shares, _ = ct.document_shares(units.parent, theta, units.n_documents)
    vocabulary = read_table(paths.table("vocabulary"), VOCABULARY)
    terms = np.asarray(vocabulary.column("term").to_pylist(), dtype=object)
    counts = _unit_counts(paths, doc_ids, len(terms))
    columns = choose_columns(per_document, units, p)
    log.info(
        "compare: columns %s (%d documents, %d units)", columns, units.n_documents, len(doc_ids)
    )
    summaries, key_parts, contrast_parts = [], [], []
    for index, column in enumerate(columns):
        g = grouping(per_document, units, column, p)
        summaries.append(g.summary)
        key_parts.append(keyness_table(counts, units, g, terms, p))
        rng = np.random.default_rng([p.random_state, index])
        contrast_parts.append(contrasts_table(shares, g, p, rng))
        log.info(
            "compare: %s: %d group(s) compared of %d", column, len(g.names), g.summary.num_rows
        )
    summaries += passed_over(per_document, units, p, columns)
    write_table(_concat(summaries, COMPARE_GROUPS), paths.table("compare_groups"), COMPARE_GROUPS)
    write_table(_concat(key_parts, KEYNESS), paths.table("keyness"), KEYNESS)
    write_table(
        _concat(contrast_parts, TOPIC_CONTRASTS), paths.table("topic_contrasts"), TOPIC_CONTRASTS
    )
    rng = np.random.default_rng([p.random_state, len(columns)])
    write_table(
        trends_table(per_document, shares, p, rng), paths.table("topic_trends"), TOPIC_TRENDS
    )
    dominant = dict(zip(doc_ids, theta.argmax(axis=1).tolist(), strict=True)) if len(theta) else {}
    tokens = iter_tables(paths.table("tokens"), TOKENS, batch_rows=kwic.BATCH_ROWS)
    topic_terms = read_table(paths.table("topic_terms"), TOPIC_TERMS)
    lines = topic_kwic(tokens, paths.table("clean"), topic_terms, dominant, p)
    titles = dict(
        zip(
            documents.column("doc_id").to_pylist(),
            documents.column("title").to_pylist(),
            strict=False,
        )
    )
    lines = lines.set_column(
        3,
        "title",
        pa.array([titles.get(d) for d in lines.column("doc_id").to_pylist()], pa.string()),
    )
    write_table(lines, paths.table("topic_kwic"), TOPIC_KWIC)


def _documents(paths: Paths) -> pa.Table:
    """documents.parquet without its texts."""
    parts = []
    for batch in iter_tables(paths.table("documents"), DOCUMENTS, batch_rows=65536):
        parts.append(batch.drop_columns(["text"]))
    return pa.concat_tables(parts)


def _unit_counts(paths: Paths, doc_ids: list[str], n_terms: int) -> sp.csr_matrix:
    """(units x terms) counts in ``doc_ids`` order, streamed from doc_terms.parquet (only the
    integer ids and counts of a batch are held); units without terms have empty rows."""
    row_of = {d: i for i, d in enumerate(doc_ids)}
    rows, cols, data = [], [], []
    columns = ["doc_id", "term_id", "count"]
    for batch in iter_tables(paths.table("doc_terms"), DOC_TERMS, columns=columns):
        # A batch holds a few thousand distinct ids (rows are by document): look up those.
        encoded = batch.column("doc_id").combine_chunks().dictionary_encode()
        local = np.asarray([row_of.get(d, -1) for d in encoded.dictionary.to_pylist()], np.int64)
        unit = local[encoded.indices.to_numpy()] if len(local) else np.zeros(0, np.int64)
        keep = unit >= 0
        rows.append(unit[keep])
        cols.append(batch.column("term_id").to_numpy()[keep].astype(np.int64))
        data.append(batch.column("count").to_numpy()[keep].astype(np.int64))
    counts = sp.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(doc_ids), n_terms),
    )
    counts.sum_duplicates()
    return counts


def _concat(parts: list[pa.Table], schema) -> pa.Table:
    parts = [schema.conform(p) for p in parts if p.num_rows]
    return pa.concat_tables(parts) if parts else schema.schema.empty_table()
