"""The report's sections on the compare stage's tables: topics over time, what sets groups
apart (keyness, topic contrasts) and words in context; and the rule that no chart shows groups
that each hold one document."""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ReportParams
from pipeline.results import Results

if TYPE_CHECKING:
    from pipeline.report import _Page

log = logging.getLogger(__name__)

# Key terms per group in the report's table and chart; topic differences listed per column.
KEY_TERMS = 10
TOP_CONTRASTS = 10
# Groups pictured per column (a panel each): the largest; the tables above them list all.
PICTURED_GROUPS = 12


def documents_per_group(documents: pa.Table, column: str) -> dict[str, int]:
    """Documents (distinct parent_id: a file or a record, not a paragraph) per value."""
    pairs = pa.table(
        {
            "group": pc.fill_null(documents.column(column).cast(pa.string()), "(missing)"),
            "parent": documents.column("parent_id"),
        }
    )
    counts = pairs.group_by("group").aggregate([("parent", "count_distinct")])
    return dict(zip(counts.column("group").to_pylist(), counts.column(1).to_pylist(), strict=True))


def groups_of_several(
    page: _Page, table: pa.Table, column: str, documents: pa.Table
) -> pa.Table | None:
    """The prevalence rows of ``column``'s groups that hold at least two documents, or None
    (and a note) when fewer than two groups do: a chart of one-document groups says nothing
    that the documents' own topic mixes do not."""
    if column not in documents.column_names or "parent_id" not in documents.column_names:
        return table
    sizes = documents_per_group(documents, column)
    several = sorted(g for g, n in sizes.items() if n >= 2)
    if len(several) < 2:
        page.note(
            f"Prevalence by {column} is not drawn: {len(sizes)} group(s), "
            f"{len(several)} of them with two documents or more."
        )
        log.info("report: no prevalence chart by %s (groups of one document)", column)
        return None
    if len(several) < len(sizes):
        page.note(
            f"Prevalence by {column}: the {len(several)} of {len(sizes)} groups that hold two "
            "documents or more."
        )
    return table.filter(pc.is_in(table.column("group"), pa.array(several, pa.string())))


def topics_over_time(page: _Page, results: Results, params: ReportParams) -> None:
    from pipeline import plots

    if results.topic_trends is None:
        page.note("No topic trends (topic_trends.parquet) in this run.")
        return
    if results.topic_trends.num_rows == 0:
        page.note("No document has a date (see date_source in documents.parquet).")
        return
    periods = sorted(set(results.topic_trends.column("period").to_pylist()))
    few = sorted(
        set(
            results.topic_trends.filter(results.topic_trends.column("few_docs"))
            .column("period")
            .to_pylist()
        )
    )
    page.text(
        f"Each topic's mean share per period ({len(periods)} periods, "
        f"{periods[0]} – {periods[-1]}) with its bootstrap 95% interval (band) and a kernel-"
        "smoothed trend (line). Hollow dots: periods with few documents "
        f"({len(few)} of {len(periods)}), shown but to be read with care."
    )
    page.figure(
        "topic-trends",
        "topics over time, one panel per topic",
        plots.plot_topic_trends,
        results.topic_trends,
        results.topics,
    )


def groups_apart(page: _Page, results: Results, params: ReportParams) -> None:
    from pipeline import plots

    if results.compare_groups is None or results.keyness is None or results.topic_contrasts is None:
        page.note("No comparison of groups (compare stage) in this run.")
        return
    rows = results.compare_groups.to_pylist()
    columns = list(dict.fromkeys(x["column"] for x in rows if x["status"] == "compared"))
    alone = list(dict.fromkeys(x["column"] for x in rows if x["column"] not in columns))
    if alone:
        shown = []
        for column in alone:
            sizes = ", ".join(f"{x['group']}: {x['n_docs']}" for x in rows if x["column"] == column)
            shown.append(f"{column} ({sizes})")
        page.note(
            "Not compared, fewer than two groups of compare.min_docs documents: " + "; ".join(shown)
        )
    if not columns:
        page.note(
            "No column is worth comparing: none has two groups of compare.min_docs documents "
            "(dates by decade or year, the folder, path fields, metadata). Set "
            "ingest.path_pattern, or compare.columns."
        )
        return
    page.text(
        "For each column, every group of enough documents against all other documents: its "
        "key terms (log-likelihood G², p adjusted for testing every term, log ratio as effect "
        "size) and how much more or less of each topic it has, with a bootstrap interval."
    )
    names = plots.topic_names(results.topics, width=30)
    for column in columns:
        groups = results.compare_groups.filter(
            pc.equal(results.compare_groups.column("column"), column)
        )
        rows = groups.to_pylist()
        compared = [g for g in rows if g["status"] == "compared"]
        small = [g["group"] for g in rows if g["status"] == "too_small"]
        page.parts.append(f"<h3>{html.escape(column)}</h3>")
        text = f"{len(compared)} group(s) compared."
        if small:
            text += f" Too small to compare: {', '.join(small[:30])}" + (
                " …" if len(small) > 30 else ""
            )
        page.text(text)
        pictured, of = _pictured_groups(compared), ""
        if len(pictured) < len(compared):
            of = f" (the {len(pictured)} largest of {len(compared)} groups; all in the table)"
        key = results.keyness.filter(pc.equal(results.keyness.column("column"), column))
        if key.num_rows:
            _keyness_table(page, key, compared)
            shown = pc.and_(
                pc.less_equal(key.column("rank"), KEY_TERMS),
                pc.is_in(key.column("group"), pa.array(pictured)),
            )
            page.figure(
                f"keyness-{_slug(column)}",
                f"key terms by {column}{of}",
                plots.plot_term_bars,
                key.filter(shown),
                "group",
                top_n=KEY_TERMS,
                title=f"key terms by {column} (G²)",
                value="g2",
            )
        contrasts = results.topic_contrasts.filter(
            pc.equal(results.topic_contrasts.column("column"), column)
        )
        if contrasts.num_rows:
            _contrast_rows(page, contrasts, names)
            page.figure(
                f"contrasts-{_slug(column)}",
                f"topic differences by {column}{of}",
                plots.plot_topic_contrasts,
                contrasts.filter(pc.is_in(contrasts.column("group"), pa.array(pictured))),
                column,
                results.topics,
            )


def largest(sizes: dict[str, int], limit: int) -> list[str]:
    """The ``limit`` groups with the most documents; equal sizes by name."""
    return sorted(sizes, key=lambda g: (-sizes[g], g))[:limit]


def _pictured_groups(compared: list[dict]) -> list[str]:
    """The ``PICTURED_GROUPS`` largest compared groups, in the column's order."""
    kept = set(largest({g["group"]: g["n_docs"] for g in compared}, PICTURED_GROUPS))
    return [g["group"] for g in compared if g["group"] in kept]


def _keyness_table(page: _Page, key: pa.Table, compared: list[dict]) -> None:
    by_group: dict[str, list[dict]] = {}
    for row in key.sort_by([("group", "ascending"), ("rank", "ascending")]).to_pylist():
        by_group.setdefault(row["group"], []).append(row)
    sizes = {g["group"]: g["n_docs"] for g in compared}
    table = []
    for group, rows in by_group.items():
        significant = [x for x in rows if x["significant"]]
        terms = " ".join(f"{x['term']}{'' if x['significant'] else '°'}" for x in rows[:KEY_TERMS])
        table.append((group, sizes.get(group), len(significant), terms))
    page.table(
        ["group", "documents", "significant (of top)", "key terms (° not significant)"],
        table,
        numeric=[1, 2],
    )


def _contrast_rows(page: _Page, contrasts: pa.Table, names: dict[int, str]) -> None:
    """The largest topic differences whose interval misses zero, in words."""
    rows = [x for x in contrasts.to_pylist() if x["ci_low"] > 0 or x["ci_high"] < 0]
    rows.sort(key=lambda x: (-abs(x["diff"]), x["group"], x["topic"]))
    if not rows:
        page.note("No topic differs between a group and the rest beyond its interval.")
        return
    table = [
        (
            x["group"],
            names.get(x["topic"], x["topic"]),
            f"{100 * x['diff']:+.1f}",
            f"{100 * x['ci_low']:+.1f} – {100 * x['ci_high']:+.1f}",
            f"{100 * x['mean_group']:.1f}% vs {100 * x['mean_rest']:.1f}%",
        )
        for x in rows[:TOP_CONTRASTS]
    ]
    page.table(["group", "topic", "difference (points)", "95% interval", "group vs rest"], table)


def words_in_context(page: _Page, results: Results, params: ReportParams) -> None:
    if results.topic_kwic is None:
        page.note("No concordance lines (topic_kwic.parquet) in this run.")
        return
    if results.topic_kwic.num_rows == 0:
        page.note("No concordance lines: no top term of a topic was found in its documents.")
        return
    from pipeline import plots

    names = plots.topic_names(results.topics, width=24)
    page.text(
        "Each topic's top terms in documents where that topic is the largest, matched on token "
        "boundaries. More with: zhtopics kwic TERM [--topic N] [--group column=value]."
    )
    rows = [
        (names.get(x["topic"], x["topic"]), x["left"], x["term"], x["right"], x["title"])
        for x in results.topic_kwic.to_pylist()
    ]
    page.table(["topic", "left", "term", "right", "document"], rows)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-") or "column"
