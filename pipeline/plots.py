"""Pictures of the pipeline's tables, with Chinese text that renders on any machine.

Importing this module registers Noto Sans CJK SC, the font that the ``mplfonts`` package ships
inside its wheel, with matplotlib and makes it the default font, so that no label comes out as
empty boxes ("tofu"); word clouds get the same file through ``font_path()``. Nothing is
downloaded and no file outside the running process is changed.

Every ``plot_*`` function takes pyarrow tables as the stages write them and returns a
matplotlib ``Figure`` (built without pyplot, so nothing is shown twice in Jupyter and nothing
leaks in a long run); ``figure_png`` turns one into deterministic PNG bytes. The tables a
picture is drawn from are shaped in ``pipeline/report_tables.py``, which needs no matplotlib.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping

import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.figure import Figure

from pipeline.fonts import FONT_FAMILY, font_path
from pipeline.report_tables import (
    corpus_keywords_table,
    count_table,
    doc_topic_rows,
    period_table,
    rule_table,
    shorten,
    topic_names,
)
from pipeline.schemas import MISSING_GROUP, require_columns

# Categorical colours that stay apart in print and for common colour blindness.
PALETTE = matplotlib.colormaps["tab10"].colors
TIME_COLUMNS = ("decade", "year", "quarter", "month", "date")


def use_cjk_font() -> str:
    """Register the bundled CJK font with matplotlib and make it the default; return its name."""
    from matplotlib import font_manager

    path = font_path()
    if not any(entry.fname == str(path) for entry in font_manager.fontManager.ttflist):
        font_manager.fontManager.addfont(str(path))
    matplotlib.rcParams["font.family"] = "sans-serif"
    sans = [f for f in matplotlib.rcParams["font.sans-serif"] if f != FONT_FAMILY]
    matplotlib.rcParams["font.sans-serif"] = [FONT_FAMILY, *sans]
    matplotlib.rcParams["axes.unicode_minus"] = False
    # Same figure, same bytes: fixed ids in SVG output (PNG carries no date).
    matplotlib.rcParams["svg.hashsalt"] = "zhtopics"
    return FONT_FAMILY


use_cjk_font()


# --- output -------------------------------------------------------------------------------


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of ``fig``; no software name or date in the file, so the bytes repeat."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def warm_up() -> None:
    """Load what every picture needs (the CJK font, the Agg renderer, wordcloud) by drawing
    a tiny one: processes forked afterwards start with them loaded."""
    import wordcloud  # noqa: F401

    figure_png(_empty("预热 warm-up", "中文"), dpi=10)


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _empty(title: str, message: str) -> Figure:
    """A small figure that says why there is nothing to draw, instead of failing."""
    fig = _figure(6, 1.2)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.4, message, ha="center", va="center", color="0.4")
    return fig


def _grid(n: int, ncols: int, panel_w: float, panel_h: float, title: str = ""):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = _figure(panel_w * ncols, panel_h * nrows + (0.4 if title else 0))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig, axes[:n]


def _text_inches(text: str, size: float) -> float:
    """About how wide ``text`` is at ``size`` points: a CJK character is a square em, other
    characters about 0.6 of one."""
    ems = sum(1.0 if ord(c) >= 0x2E80 else 0.6 for c in text)
    return ems * size / 72


def _panels(
    n: int,
    ncols: int,
    axes_w: float,
    axes_h: float,
    title: str = "",
    *,
    left: float = 0.45,
    bottom: float = 0.3,
    last_bottom: float | None = None,
    top: float = 0.3,
    right: float = 0.15,
) -> tuple[Figure, list]:
    """Small multiples at fixed places: each panel's axes ``axes_w`` x ``axes_h`` inches with
    ``left`` inches for its y labels, ``bottom`` for its x labels (``last_bottom`` under the
    bottom row), ``top`` for its title. Nothing is measured after drawing: a layout engine
    over dozens of panels costs as much as drawing them, and these sizes are known."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    last_bottom = bottom if last_bottom is None else last_bottom
    cell_w, cell_h = left + axes_w + right, top + axes_h + bottom
    head = 0.4 if title else 0.05
    width = cell_w * ncols
    height = head + cell_h * (nrows - 1) + top + axes_h + last_bottom
    fig = Figure(figsize=(width, height))
    axes = []
    for i in range(n):
        row, col = divmod(i, ncols)
        x0 = col * cell_w + left
        y0 = height - head - row * cell_h - top - axes_h
        axes.append(fig.add_axes((x0 / width, y0 / height, axes_w / width, axes_h / height)))
    if title:
        fig.suptitle(title, y=1 - 0.12 / height, va="top")
    return fig, axes


def _barh(ax, labels: list[str], values: list, color):
    """Horizontal bars at fixed positions: labels stay text even when they look like numbers."""
    positions = list(range(len(labels)))
    bars = ax.barh(positions, values, color=color)
    ax.set_yticks(positions, labels)
    return bars


# --- corpus -------------------------------------------------------------------------------


def plot_counts(table: pa.Table, column: str, title: str | None = None, top_n: int = 30) -> Figure:
    """Horizontal bars: rows per value of ``column`` (status, source, format, ...)."""
    counts = count_table(table, column)
    title = title or f"documents by {column}"
    if counts.num_rows == 0:
        return _empty(title, "no documents")
    shown = counts.slice(0, top_n)
    labels = [shorten(v, 40) for v in shown.column("value").to_pylist()][::-1]
    values = shown.column("count").to_pylist()[::-1]
    fig = _figure(7, 0.9 + 0.3 * len(labels))
    ax = fig.add_subplot()
    bars = _barh(ax, labels, values, PALETTE[0])
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_xlabel("documents")
    more = counts.num_rows - shown.num_rows
    ax.set_title(title + (f" (top {top_n}; {more} more)" if more > 0 else ""))
    ax.margins(x=0.1)
    return fig


def plot_documents_by_date(documents: pa.Table, freq: str = "year") -> Figure:
    """Bars: documents per year or month of their date; undated documents are counted aside."""
    periods = period_table(documents, freq)
    undated = documents.column("date").null_count
    title = f"documents by {freq}" + (f" ({undated} undated)" if undated else "")
    if periods.num_rows == 0:
        return _empty(title, "no document has a date")
    labels = periods.column("period").to_pylist()
    fig = _figure(max(4.0, 0.45 * len(labels) + 1.5), 3)
    ax = fig.add_subplot()
    bars = ax.bar(range(len(labels)), periods.column("count").to_pylist(), color=PALETTE[0])
    ax.set_xticks(range(len(labels)), labels)
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_ylabel("documents")
    ax.set_title(title)
    ax.margins(y=0.12)
    ax.tick_params(axis="x", labelrotation=90 if len(labels) > 12 else 0)
    return fig


def plot_lengths(clean: pa.Table, tokens: pa.Table | None = None, bins: int = 30) -> Figure:
    """Histograms of characters per document (by clean status) and of tokens per document."""
    require_columns(clean, ["n_chars", "status"], "plot_lengths")
    panels = 2 if tokens is not None else 1
    fig = _figure(5 * panels, 3.2)
    axes = fig.subplots(1, panels, squeeze=False).ravel()
    chars = np.asarray(clean.column("n_chars").to_pylist(), dtype=float)
    statuses = clean.column("status").to_pylist()
    edges = np.histogram_bin_edges(chars, bins=bins) if len(chars) else bins
    for i, status in enumerate(sorted(set(statuses), key=lambda s: (s != "kept", s))):
        values = chars[[s == status for s in statuses]]
        axes[0].hist(values, bins=edges, color=PALETTE[i % 10], alpha=0.75, label=status)
    axes[0].set_xlabel("characters (after cleaning)")
    axes[0].set_ylabel("documents")
    axes[0].set_title("document length")
    if statuses:
        axes[0].legend(fontsize=8)
    if tokens is not None:
        require_columns(tokens, ["n_tokens"], "plot_lengths")
        counts = np.asarray(tokens.column("n_tokens").to_pylist(), dtype=float)
        axes[1].hist(counts[counts > 0], bins=bins, color=PALETTE[1])
        axes[1].set_xlabel("content tokens (documents with any)")
        axes[1].set_title("tokens per document")
    return fig


def plot_ingest_report(ingest_report: pa.Table) -> Figure:
    """One panel per dimension (status, encoding, format) of the ingest report's counts."""
    require_columns(ingest_report, ["dimension", "value", "count"], "plot_ingest_report")
    dims = sorted(set(ingest_report.column("dimension").to_pylist()))
    if not dims:
        return _empty("ingest report", "no files were read")
    fig, axes = _grid(len(dims), 3, 4, 2.8, "ingest report")
    rows = ingest_report.to_pylist()
    for ax, dim in zip(axes, dims, strict=True):
        part = sorted(
            (r for r in rows if r["dimension"] == dim), key=lambda r: (-r["count"], r["value"])
        )
        labels = [shorten(str(r["value"]), 20) for r in part][::-1]
        bars = _barh(ax, labels, [r["count"] for r in part][::-1], PALETTE[2])
        ax.bar_label(bars, padding=2, fontsize=8)
        ax.set_title(dim)
        ax.margins(x=0.15)
    return fig


def plot_clean_audit(clean_audit: pa.Table) -> Figure:
    """Per cleaning rule: documents it changed and characters it removed."""
    require_columns(clean_audit, ["doc_id", "rule", "chars_removed"], "plot_clean_audit")
    if clean_audit.num_rows == 0:
        return _empty("cleaning rules", "no rule changed any document")
    agg = rule_table(clean_audit)
    rules = agg.column("rule").to_pylist()[::-1]
    fig = _figure(9, 0.9 + 0.3 * len(rules))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, column, xlabel, colour in (
        (axes[0], "documents", "documents changed", PALETTE[0]),
        (axes[1], "chars_removed", "characters removed", PALETTE[3]),
    ):
        bars = _barh(ax, rules, agg.column(column).to_pylist()[::-1], colour)
        ax.bar_label(bars, padding=2, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.margins(x=0.15)
    fig.suptitle("cleaning rules")
    return fig


# --- terms, keywords, word clouds -----------------------------------------------------------


def plot_term_bars(
    table: pa.Table,
    facet: str,
    titles: Mapping | None = None,
    top_n: int = 10,
    ncols: int = 3,
    title: str = "",
    value: str = "weight",
) -> Figure:
    """Small multiples: one horizontal bar chart of terms per value of ``facet``.

    Works for topic_terms (facet ``topic``), keywords (``doc_id``) and group keywords
    (``group``); bars are ordered by ``value``, largest on top.
    """
    require_columns(table, [facet, "term", value], "plot_term_bars")
    keys = sorted(set(table.column(facet).to_pylist()))
    if not keys:
        return _empty(title or "terms", "no terms")
    by_key: dict = {}
    for row in table.select([facet, "term", value]).to_pylist():
        by_key.setdefault(row[facet], []).append(row)
    shown = {
        key: sorted(rows, key=lambda r: (-r[value], r["term"]))[:top_n][::-1]
        for key, rows in by_key.items()
    }
    label_w = max(_text_inches(str(r["term"]), 9) for rows in shown.values() for r in rows)
    fig, axes = _panels(
        len(keys), ncols, 2.4, 0.24 * top_n, title, left=label_w + 0.15, bottom=0.3, top=0.3
    )
    titles = titles or {}
    for i, (ax, key) in enumerate(zip(axes, keys, strict=True)):
        part = shown[key]
        _barh(ax, [r["term"] for r in part], [r[value] for r in part], PALETTE[i % 10])
        ax.set_title(shorten(str(titles.get(key, key)), 22), fontsize=10)
        ax.tick_params(axis="x", labelsize=7)
        ax.tick_params(axis="y", labelsize=9)
    return fig


def plot_corpus_keywords(keywords: pa.Table, top_n: int = 20) -> Figure:
    """Bars: how many documents have each term among their TF-IDF keywords (the most first)."""
    table = corpus_keywords_table(keywords, top_n)
    title = f"the {top_n} most frequent keywords"
    if table.num_rows == 0:
        return _empty(title, "no keywords")
    fig = _figure(6, 0.9 + 0.28 * table.num_rows)
    ax = fig.add_subplot()
    bars = _barh(
        ax,
        table.column("term").to_pylist()[::-1],
        table.column("n_docs").to_pylist()[::-1],
        PALETTE[0],
    )
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_xlabel("documents that have the term among their keywords")
    ax.set_title(title)
    ax.margins(x=0.1)
    return fig


def wordcloud_image(
    weights: Mapping[str, float],
    width: int = 400,
    height: int = 260,
    max_words: int = 50,
    random_state: int = 0,
) -> np.ndarray:
    """An RGB word cloud of ``weights`` (term -> positive weight) in the CJK font."""
    from wordcloud import WordCloud

    weights = {t: float(w) for t, w in weights.items() if w > 0}
    cloud = WordCloud(
        font_path=str(font_path()),
        width=width,
        height=height,
        max_words=max_words,
        background_color="white",
        colormap="tab10",
        prefer_horizontal=1.0,
        min_font_size=9,
        # A fixed largest size spares wordcloud a trial layout (and many font loads).
        max_font_size=int(height * 0.42),
        random_state=random_state,
    )
    if not weights:
        return np.full((height, width, 3), 255, dtype=np.uint8)
    return cloud.generate_from_frequencies(weights).to_array()


def plot_wordclouds(
    table: pa.Table,
    facet: str,
    titles: Mapping | None = None,
    max_words: int = 50,
    ncols: int = 3,
    title: str = "",
    random_state: int = 0,
) -> Figure:
    """One word cloud per value of ``facet`` (a topic, a group), sized by ``weight``."""
    require_columns(table, [facet, "term", "weight"], "plot_wordclouds")
    keys = sorted(set(table.column(facet).to_pylist()))
    if not keys:
        return _empty(title or "word clouds", "no terms")
    fig, axes = _panels(len(keys), ncols, 3.4, 2.21, title, left=0.1, bottom=0.05, right=0.1)
    rows = table.select([facet, "term", "weight"]).to_pylist()
    titles = titles or {}
    for ax, key in zip(axes, keys, strict=True):
        weights: dict[str, float] = {}
        for r in rows:
            if r[facet] == key:
                weights[r["term"]] = weights.get(r["term"], 0.0) + r["weight"]
        ax.imshow(wordcloud_image(weights, max_words=max_words, random_state=random_state))
        ax.set_axis_off()
        ax.set_title(shorten(str(titles.get(key, key)), 22), fontsize=10)
    return fig


# --- topics -------------------------------------------------------------------------------


def plot_topic_prevalence(topics: pa.Table) -> Figure:
    """Each topic's share of the corpus (token-weighted), largest on top, with its label."""
    require_columns(topics, ["topic", "label", "prevalence"], "plot_topic_prevalence")
    rows = sorted(topics.to_pylist(), key=lambda r: (r["prevalence"], -r["topic"]))
    names = topic_names(topics, width=30)
    fig = _figure(7, 0.9 + 0.35 * len(rows))
    ax = fig.add_subplot()
    bars = _barh(
        ax,
        [names[r["topic"]] for r in rows],
        [100 * r["prevalence"] for r in rows],
        [PALETTE[r["topic"] % 10] for r in rows],
    )
    ax.bar_label(bars, fmt="%.1f%%", padding=2, fontsize=8)
    ax.set_xlabel("share of the corpus (%)")
    ax.set_title("topic prevalence")
    ax.margins(x=0.12)
    return fig


def plot_doc_topic_heatmap(
    doc_topics: pa.Table,
    topics: pa.Table | None = None,
    labels: Mapping[str, str] | None = None,
    max_docs: int = 60,
) -> Figure:
    """Documents (rows, grouped by their main topic) by topics (columns), shaded by weight.

    With more than ``max_docs`` documents, evenly spaced rows of that order are shown.
    """
    rows = doc_topic_rows(doc_topics, max_docs)
    if rows.total == 0:
        return _empty("document-topic weights", "no document has a topic mix")
    k = rows.weights.shape[1]
    names = topic_names(topics, width=14) if topics is not None else {}
    labels = labels or {}
    n = len(rows.doc_ids)
    x_labels = [names.get(t, f"T{t}") for t in range(k)]
    y_labels = [labels.get(d, d) for d in rows.doc_ids]
    axes_w, axes_h = 0.75 * k, 0.21 * n
    fig, (ax,) = _panels(
        1,
        1,
        axes_w,
        axes_h,
        left=max(_text_inches(str(y), 8) for y in y_labels) + 0.15,
        bottom=max(_text_inches(x, 10) for x in x_labels) * 0.64 + 0.25,  # at 40°
        top=0.35,
        right=1.1,  # the colour bar
    )
    image = ax.imshow(rows.weights, aspect="auto", cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), x_labels, rotation=40, ha="right")
    ax.set_yticks(range(n), y_labels, fontsize=8)
    shown = f"{n} of {rows.total} documents" if n < rows.total else "documents"
    ax.set_title(f"document-topic weights ({shown}, by main topic)")
    box = ax.get_position()
    width = fig.get_figwidth()
    bar = fig.add_axes(
        (box.x1 + 0.2 / width, box.y0 + box.height / 4, 0.15 / width, box.height / 2)
    )
    fig.colorbar(image, cax=bar, label="weight")
    return fig


def plot_prevalence(
    topic_prevalence: pa.Table,
    column: str,
    topics: pa.Table | None = None,
    ncols: int = 3,
) -> Figure:
    """Topic prevalence by the groups of one ``column`` with its intervals, a panel per topic.

    Over time (year, month, date) a line with a shaded interval; otherwise a point per group
    with an error bar.
    """
    require_columns(
        topic_prevalence,
        ["column", "group", "topic", "mean", "ci_low", "ci_high"],
        "plot_prevalence",
    )
    part = topic_prevalence.filter(pc.equal(topic_prevalence.column("column"), column))
    title = f"topic prevalence by {column} (mean topic weight and its interval)"
    if part.num_rows == 0:
        return _empty(title, f"no prevalence rows for column {column!r}")
    rows = part.to_pylist()
    over_time = column in TIME_COLUMNS
    if over_time:  # a line over the periods; documents without a date are not a period
        rows = [r for r in rows if r["group"] != MISSING_GROUP]
        if not rows:
            return _empty(title, f"no document has a {column}")
    groups = sorted({r["group"] for r in rows})
    keys = sorted({r["topic"] for r in rows})
    names = topic_names(topics, width=22) if topics is not None else {}
    axes_w = 2.9 if over_time else max(2.9, 0.3 * len(groups) + 0.5)
    label_h = max(_text_inches(shorten(g, 10), 7) for g in groups) * 0.71 + 0.2  # at 45°
    fig, axes = _panels(
        len(keys), ncols, axes_w, 2.0, title, left=0.55, bottom=0.15, last_bottom=label_h
    )
    x = np.arange(len(groups))
    # Every group is labelled under the bottom panel of each column, at most 8 periods of time.
    step = max(1, math.ceil(len(groups) / 8)) if over_time else 1
    labels = [shorten(g, 10) for g in groups[::step]]
    bottom = set(range(max(len(keys) - ncols, 0), len(keys)))
    for i, (ax, topic) in enumerate(zip(axes, keys, strict=True)):
        by_group = {r["group"]: r for r in rows if r["topic"] == topic}
        mean = np.array([by_group[g]["mean"] if g in by_group else np.nan for g in groups])
        low = np.array([by_group[g]["ci_low"] if g in by_group else np.nan for g in groups])
        high = np.array([by_group[g]["ci_high"] if g in by_group else np.nan for g in groups])
        colour = PALETTE[topic % 10]
        if over_time:
            ax.fill_between(x, low, high, color=colour, alpha=0.25, linewidth=0)
            ax.plot(x, mean, marker="o", color=colour, markersize=3)
        else:
            ax.vlines(x, low, high, color=colour, linewidth=1.2)
            ax.plot(x, mean, "o", color=colour, markersize=4)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        if i in bottom:
            ax.set_xticks(x[::step], labels, rotation=45, ha="right", fontsize=7)
        else:
            ax.set_xticks(x[::step], [])
        ax.set_ylim(bottom=0)
        ax.set_title(names.get(topic, f"T{topic}"), fontsize=10)
    return fig


# --- model selection ----------------------------------------------------------------------

SWEEP_METRICS = (
    ("c_npmi", "coherence c_npmi (higher is better)"),
    ("c_v", "coherence c_v (higher is better)"),
    ("u_mass", "coherence u_mass (higher is better)"),
    ("diversity", "topic diversity (higher is better)"),
    ("perplexity", "held-out perplexity (lower is better)"),
    ("stability", "stability across seeds (higher is better)"),
)


def plot_sweep(sweep: pa.Table, recommended_k: int | None = None) -> Figure:
    """Each quality measure against K: one dot per seed, the line through the seed means.

    A dashed line marks ``recommended_k`` (metrics/sweep.json) when given.
    """
    metrics = [(m, t) for m, t in SWEEP_METRICS if m in sweep.column_names]
    require_columns(sweep, ["k", "seed"], "plot_sweep")
    if sweep.num_rows == 0 or not metrics:
        return _empty("K sweep", "no sweep results")
    fig, axes = _grid(len(metrics), 3, 4, 2.8, "choosing the number of topics K")
    ks = np.asarray(sweep.column("k").to_pylist())
    grid = np.unique(ks)
    for ax, (metric, title) in zip(axes, metrics, strict=True):
        values = np.asarray(sweep.column(metric).to_pylist(), dtype=float)
        ax.scatter(ks, values, s=10, color="0.6", zorder=2)
        means = [
            np.nanmean(values[ks == k]) if np.isfinite(values[ks == k]).any() else np.nan
            for k in grid
        ]
        ax.plot(grid, means, marker="o", color=PALETTE[0], zorder=3)
        if recommended_k is not None:
            ax.axvline(recommended_k, color=PALETTE[3], linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("K")
        ax.set_xticks(grid)
    return fig


def plot_robustness(robustness: pa.Table) -> Figure:
    """Main topics (rows) by variants (columns), shaded by the similarity of each topic's
    match; the value in each cell, and the topics that survive every variant marked with *."""
    columns = ["variant", "topic", "label", "similarity", "survives"]
    require_columns(robustness, columns, "plot_robustness")
    if robustness.num_rows == 0:
        return _empty("segmentation robustness", "the robustness stage did not run")
    rows = robustness.to_pylist()
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    topics = sorted({r["topic"] for r in rows})
    labels = {r["topic"]: r["label"] for r in rows}
    grid = np.zeros((len(topics), len(variants)))
    survives = dict.fromkeys(topics, True)
    for r in rows:
        grid[topics.index(r["topic"]), variants.index(r["variant"])] = r["similarity"]
        survives[r["topic"]] = survives[r["topic"]] and r["survives"]
    fig = _figure(2.6 + 0.9 * len(variants), 1.4 + 0.38 * len(topics))
    ax = fig.add_subplot()
    image = ax.imshow(grid, aspect="auto", cmap="Greens", vmin=0, vmax=1)
    names = [f"{t}: {shorten(labels[t], 16)}{' *' if survives[t] else ''}" for t in topics]
    ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right")
    ax.set_yticks(range(len(topics)), names, fontsize=8)
    for i in range(len(topics)):
        for j in range(len(variants)):
            colour = "white" if grid[i, j] > 0.6 else "black"
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    title = "share of top terms shared with the matched topic; * = survives every variant"
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.6, label="similarity")
    return fig


# --- topics over time, groups set apart ------------------------------------------------------


def plot_topic_trends(topic_trends: pa.Table, topics: pa.Table | None = None, ncols: int = 3):
    """Small multiples, one panel per topic: each period's mean share (a dot; hollow where the
    period has few documents) with its 95% interval as a band, and the smoothed trend as a
    line. Periods are placed by time, so gaps between years stay visible."""
    require_columns(
        topic_trends,
        ["period", "position", "topic", "n_docs", "mean", "ci_low", "ci_high", "trend", "few_docs"],
        "plot_topic_trends",
    )
    title = "主题随时间的变化 topics over time (平滑趋势, 95% 区间; 空心点: 文档少的时期)"
    if topic_trends.num_rows == 0:
        return _empty(title, "no document has a date")
    rows = topic_trends.sort_by([("topic", "ascending"), ("position", "ascending")]).to_pylist()
    keys = sorted({r["topic"] for r in rows})
    names = topic_names(topics, width=22) if topics is not None else {}
    periods = sorted({(r["position"], r["period"]) for r in rows})
    step = max(1, math.ceil(len(periods) / 8))
    shown = periods[::step]
    label_h = max(_text_inches(label, 7) for _, label in shown) * 0.71 + 0.2  # at 45°
    fig, axes = _panels(
        len(keys), ncols, 3.0, 2.0, title, left=0.75, bottom=0.15, last_bottom=label_h
    )
    # The periods are labelled under the bottom panel of each column, at most 8 of them.
    bottom = set(range(max(len(keys) - ncols, 0), len(keys)))
    for i, (ax, topic) in enumerate(zip(axes, keys, strict=True)):
        part = [r for r in rows if r["topic"] == topic]
        x = np.array([r["position"] for r in part])
        colour = PALETTE[topic % 10]
        ax.fill_between(
            x,
            [r["ci_low"] for r in part],
            [r["ci_high"] for r in part],
            color=colour,
            alpha=0.2,
            linewidth=0,
            step=None,
        )
        ax.plot(x, [r["trend"] for r in part], color=colour, linewidth=2)
        many = [r for r in part if not r["few_docs"]]
        few = [r for r in part if r["few_docs"]]
        ax.scatter([r["position"] for r in many], [r["mean"] for r in many], s=12, color=colour)
        ax.scatter(
            [r["position"] for r in few],
            [r["mean"] for r in few],
            s=14,
            facecolors="white",
            edgecolors=colour,
            linewidths=1,
        )
        labels = [label for _, label in shown] if i in bottom else []
        ax.set_xticks([p for p, _ in shown], labels, rotation=45, ha="right")
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("平均主题占比", fontsize=8)
        ax.set_title(names.get(topic, f"T{topic}"), fontsize=10)
    return fig


def plot_topic_contrasts(
    topic_contrasts: pa.Table, column: str, topics: pa.Table | None = None, ncols: int = 3
):
    """One panel per group of ``column``: for each topic, the group's share minus the rest's
    in percentage points, with its 95% bootstrap interval; a topic whose interval misses 0
    is drawn in colour, the others in grey."""
    require_columns(
        topic_contrasts,
        ["column", "group", "topic", "n_docs", "diff", "ci_low", "ci_high"],
        "plot_topic_contrasts",
    )
    part = topic_contrasts.filter(pc.equal(topic_contrasts.column("column"), column))
    title = f"{column}: 主题占比差 (组 − 其余, 百分点, 95% 区间)"
    if part.num_rows == 0:
        return _empty(title, f"no group of {column!r} was compared")
    rows = part.to_pylist()
    groups = sorted({r["group"] for r in rows})
    keys = sorted({r["topic"] for r in rows})
    names = topic_names(topics, width=18) if topics is not None else {}
    labels = [names.get(t, f"T{t}") for t in keys]
    left = max(_text_inches(label, 7) for label in labels) + 0.15
    fig, axes = _panels(len(groups), ncols, 2.6, 0.3 + 0.22 * len(keys), title, left=left)
    y = np.arange(len(keys))[::-1]
    for ax, group in zip(axes, groups, strict=True):
        by_topic = {r["topic"]: r for r in rows if r["group"] == group}
        part = [by_topic[topic] for topic in keys]
        diff, low, high = (
            100 * np.array([r[k] for r in part]) for k in ("diff", "ci_low", "ci_high")
        )
        apart = (low > 0) | (high < 0)
        colours = [PALETTE[t % 10] if a else "0.6" for t, a in zip(keys, apart, strict=True)]
        ax.hlines(y, low, high, colors=colours, linewidth=2)
        ax.scatter(diff, y, s=16, c=colours, zorder=3)
        ax.axvline(0, color="0.3", linewidth=0.8)
        ax.set_ylim(-0.7, len(keys) - 0.3)
        ax.set_yticks(y, labels, fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        n = part[0]["n_docs"]
        ax.set_title(f"{shorten(group, 16)} ({n} 篇)", fontsize=10)
    return fig
