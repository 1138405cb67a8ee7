"""Tables shaped for a picture or a report section: counts per value, documents per period,
readable names of documents, groups and topics, keywords per group. No drawing here
(``pipeline/plots.py`` draws): notebooks can use these tables without matplotlib."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.precision import round_significant
from pipeline.schemas import require_columns
from pipeline.text.dates import BUCKETS, bucket_label


def shorten(text: str | None, width: int = 14) -> str:
    """One line of at most ``width`` characters; a cut keeps the end too (``妇联…篇2``),
    where names that share a beginning differ."""
    text = " ".join((text or "").split())
    if len(text) <= width:
        return text
    tail = max(1, (width - 1) // 3)
    return text[: width - 1 - tail] + "…" + text[-tail:]


def count_table(table: pa.Table, column: str) -> pa.Table:
    """Rows per value of ``column`` (nulls as "(none)"), most frequent first, ties by value."""
    require_columns(table, [column], "count_table")
    values = pc.fill_null(table.column(column).cast(pa.string()), "(none)")
    counts = pa.table({"value": values}).group_by("value").aggregate([("value", "count")])
    counts = counts.rename_columns(["value", "count"])
    return counts.sort_by([("count", "descending"), ("value", "ascending")])


def period_table(documents: pa.Table, freq: str = "year") -> pa.Table:
    """Documents per decade, year (``2022``), quarter or month (``2022-09``) of their date, in
    time order; dates known only to the year count as "(year only)" by quarter or month."""
    require_columns(documents, ["date"], "period_table")
    if freq not in BUCKETS:
        raise ValueError(f"period_table: freq must be one of {list(BUCKETS)}, got {freq!r}")
    precisions = _column_or_nulls(documents, "date_precision")
    labels = [
        bucket_label(d, p, freq)
        for d, p in zip(documents.column("date").to_pylist(), precisions, strict=True)
    ]
    periods = pa.array([x for x in labels if x is not None], pa.string())
    if len(periods) == 0:
        return pa.table({"period": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
    counts = pa.table({"period": periods}).group_by("period").aggregate([("period", "count")])
    return counts.rename_columns(["period", "count"]).sort_by("period")


def document_labels(documents: pa.Table, width: int = 16, paragraph: bool = True) -> dict[str, str]:
    """A short readable name per doc_id: title (or source), part and paragraph number."""
    require_columns(documents, ["doc_id", "source", "title"], "document_labels")
    parts = _column_or_nulls(documents, "part")
    paragraphs = _column_or_nulls(documents, "paragraph") if paragraph else parts
    labels = {}
    for doc, source, title, part, para in zip(
        documents.column("doc_id").to_pylist(),
        documents.column("source").to_pylist(),
        documents.column("title").to_pylist(),
        parts,
        paragraphs,
        strict=True,
    ):
        label = shorten(title or Path(source).name, width)
        if part:
            label += f" 篇{part}"
        if paragraph and para is not None:
            label += f" ¶{para + 1}"
        labels[doc] = label
    return labels


def _column_or_nulls(table: pa.Table, column: str) -> list:
    if column in table.column_names:
        return table.column(column).to_pylist()
    return [None] * table.num_rows


def group_labels(documents: pa.Table, column: str) -> dict[str, str]:
    """The group of each doc_id by a documents column; ``year``/``month`` come from ``date``.

    ``parent_id`` groups the paragraphs of one document and is named by its title and part.
    """
    if column in BUCKETS:
        require_columns(documents, ["doc_id", "date"], "group_labels")
        dates = documents.column("date").to_pylist()
        precisions = _column_or_nulls(documents, "date_precision")
        values = [
            bucket_label(d, p, column) or "(no date)"
            for d, p in zip(dates, precisions, strict=True)
        ]
    elif column == "parent_id":
        require_columns(documents, ["doc_id", "parent_id", "title", "source"], "group_labels")
        names = document_labels(documents, width=20, paragraph=False)
        first: dict[str, str] = {}
        for doc, parent in zip(
            documents.column("doc_id").to_pylist(),
            documents.column("parent_id").to_pylist(),
            strict=True,
        ):
            first.setdefault(parent, names[doc])
        values = [first[p] for p in documents.column("parent_id").to_pylist()]
    else:
        if column not in documents.column_names:
            raise ValueError(
                f"no documents column {column!r} to group by; "
                f"choose one of {documents.column_names} or year, month"
            )
        values = ["(none)" if v is None else str(v) for v in documents.column(column).to_pylist()]
    return dict(zip(documents.column("doc_id").to_pylist(), values, strict=True))


def corpus_keywords_table(keywords: pa.Table, top_n: int = 20) -> pa.Table:
    """The terms that are keywords of most documents (ties: higher summed weight, then term)."""
    require_columns(keywords, ["doc_id", "term", "weight"], "corpus_keywords_table")
    # One thread: arrow's threaded sum adds in an order that varies from run to run, and the
    # summed weight breaks ties in the ranking (rounded, so the last bits never decide it).
    agg = keywords.group_by("term", use_threads=False).aggregate(
        [("doc_id", "count"), ("weight", "sum")]
    )
    agg = agg.rename_columns(["term", "n_docs", "weight"])
    agg = agg.set_column(2, "weight", pa.array(round_significant(agg.column("weight"))))
    agg = agg.sort_by([("n_docs", "descending"), ("weight", "descending"), ("term", "ascending")])
    return agg.slice(0, top_n)


def group_keywords_table(
    doc_terms: pa.Table, vocabulary: pa.Table, groups: Mapping[str, str], top_n: int = 10
) -> pa.Table:
    """Top terms per group by mean TF-IDF over the group's documents: group, rank, term, weight.

    ``groups`` maps doc_id to a group name (see ``group_labels``); documents without terms
    count in their group's size, so a term spread thinly over a large group ranks lower.
    """
    require_columns(doc_terms, ["doc_id", "term_id", "tfidf"], "group_keywords_table")
    require_columns(vocabulary, ["term_id", "term"], "group_keywords_table")
    # Each row's group, looked up in arrow: no Python string per row of doc_terms.
    keys = pa.array(list(groups), pa.string())
    names = pa.array([*groups.values(), "(none)"], pa.string())
    where = pc.fill_null(pc.index_in(doc_terms.column("doc_id"), value_set=keys), len(keys))
    sums = (
        pa.table({"group": names.take(where), "term_id": doc_terms.column("term_id")})
        .append_column("tfidf", doc_terms.column("tfidf"))
        .group_by(["group", "term_id"], use_threads=False)  # a fixed order of addition
        .aggregate([("tfidf", "sum")])
    )
    sizes: dict[str, int] = {}
    for g in groups.values():
        sizes[g] = sizes.get(g, 0) + 1
    group_names = sums.column("group").combine_chunks().dictionary_encode()
    size_of = np.asarray(
        [max(sizes.get(g, 1), 1) for g in group_names.dictionary.to_pylist()], dtype=np.float64
    )
    totals = sums.column("tfidf_sum").to_numpy()
    weight = totals / size_of[group_names.indices.to_numpy()] if len(totals) else totals
    weight = round_significant(weight)
    term_at = pc.index_in(sums.column("term_id"), value_set=vocabulary.column("term_id"))
    ranked = pa.table(
        {
            "group": sums.column("group"),
            "weight": pa.array(weight, pa.float64()),
            "term": vocabulary.column("term").take(term_at),
        }
    ).sort_by([("group", "ascending"), ("weight", "descending"), ("term", "ascending")])
    # The first top_n rows of each group: rank = position - the group's first position + 1.
    group_ids = ranked.column("group").combine_chunks().dictionary_encode().indices.to_numpy()
    first = np.flatnonzero(np.r_[True, group_ids[1:] != group_ids[:-1]]) if len(ranked) else []
    starts = np.repeat(first, np.diff(np.r_[first, len(ranked)]).astype(np.int64))
    rank = np.arange(len(ranked)) - starts + 1
    top = ranked.filter(pa.array(rank <= top_n))
    return pa.table(
        {
            "group": top.column("group").combine_chunks().cast(pa.string()),
            "rank": pa.array(rank[rank <= top_n].astype(np.int32), pa.int32()),
            "term": top.column("term").combine_chunks().cast(pa.string()),
            "weight": top.column("weight").combine_chunks(),
        }
    )


def topic_names(topics: pa.Table, width: int = 18) -> dict[int, str]:
    """``"T0 发展·活动·巾帼建功"`` per topic, from the topics table's labels."""
    require_columns(topics, ["topic", "label"], "topic_names")
    return {
        t: shorten(f"T{t} {label}", width)
        for t, label in zip(
            topics.column("topic").to_pylist(), topics.column("label").to_pylist(), strict=True
        )
    }


def rule_table(clean_audit: pa.Table) -> pa.Table:
    """Per cleaning rule: documents it changed and characters it removed, most documents first."""
    require_columns(clean_audit, ["doc_id", "rule", "chars_removed"], "rule_table")
    agg = clean_audit.group_by("rule").aggregate(
        [("doc_id", "count_distinct"), ("chars_removed", "sum")]
    )
    agg = agg.rename_columns(["rule", "documents", "chars_removed"])
    return agg.sort_by([("documents", "descending"), ("rule", "ascending")])


@dataclass(frozen=True)
class DocTopicRows:
    """The rows of a document-topic heatmap: which documents, their weights, out of how many."""

    doc_ids: list[str]
    weights: np.ndarray  # (rows, topics)
    total: int


def doc_topic_rows(doc_topics: pa.Table, max_docs: int = 60) -> DocTopicRows:
    """Documents grouped by their main topic, heaviest first within it (ties: first seen);
    with more than ``max_docs`` documents, evenly spaced rows of that order."""
    require_columns(doc_topics, ["doc_id", "topic", "weight"], "doc_topic_rows")
    # Documents in first-seen order, as arrow ids: no Python string per row.
    encoded = doc_topics.column("doc_id").combine_chunks().dictionary_encode()
    docs = encoded.dictionary
    if not len(docs):
        return DocTopicRows([], np.zeros((0, 0)), 0)
    topic_ids = doc_topics.column("topic").to_numpy().astype(np.int64)
    theta = np.zeros((len(docs), int(topic_ids.max()) + 1))
    theta[encoded.indices.to_numpy(), topic_ids] = doc_topics.column("weight").to_numpy()
    order = np.lexsort((np.arange(len(docs)), -theta.max(axis=1), theta.argmax(axis=1)))
    if len(order) > max_docs:
        order = order[np.unique(np.linspace(0, len(order) - 1, max_docs).round().astype(int))]
    return DocTopicRows(docs.take(pa.array(order, pa.int64())).to_pylist(), theta[order], len(docs))
