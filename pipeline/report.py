"""Stage report: one self-contained HTML page of the results, for people who don't open Jupyter.

``data/processed/report/index.html`` holds the corpus summary, keywords, topics with their
terms, prevalence charts, representative documents and the K sweep, with every picture
embedded as a PNG data URI: it opens offline, from e-mail or a USB stick, and loads nothing
from the network. The same pictures are written beside it as PNG files. Same tables and
settings, same bytes.
"""

from __future__ import annotations

import base64
import concurrent.futures
import html
import importlib.util
import logging
import multiprocessing
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import report_compare as compare_sections
from pipeline import report_tables
from pipeline.config import Params, ReportParams
from pipeline.io import Paths, usable_cores, write_folder
from pipeline.results import Results, load_results

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

# Columns no picture uses: the texts and the token lists, most of a large run's memory.
UNUSED_COLUMNS = {"documents": ["text"], "clean": ["text"], "tokens": ["tokens"]}


def _import_lazily(name: str):
    """Import ``name`` on first use (the standard library's recipe): the CLI imports every
    stage, and matplotlib should load only when a report is drawn, not for every stage."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


plots = _import_lazily("pipeline.plots")

STYLE = """
body { font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f6fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
p.note { color: #666; background: #f8f8f8; border-left: 3px solid #bbb; padding: .5em 1em; }
"""


@dataclass
class _Page:
    """Collects sections and their pictures while the report is built."""

    dpi: int
    parts: list[str] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)

    def heading(self, anchor: str, title: str) -> None:
        self.parts.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')

    def text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')

    # Renders the figures in other processes while the next ones are built (None: here).
    renderer: concurrent.futures.Executor | None = None
    pending: dict[int, tuple[str, str, concurrent.futures.Future]] = field(default_factory=dict)

    def figure(self, name: str, caption: str, draw: Callable[..., Figure], *args, **kwargs):
        """The picture ``draw(*args, **kwargs)`` makes: drawn and rendered by the renderer's
        processes while the next ones are queued (the arguments are sent pickled), or here."""
        filename = f"{len(self.images) + len(self.pending) + 1:02d}-{name}.png"
        if self.renderer is not None:
            future = self.renderer.submit(_png, self.dpi, draw, args, kwargs)
            self.pending[len(self.parts)] = (filename, caption, future)
            self.parts.append("")  # filled in by finish()
            return
        self._place(len(self.parts), filename, caption, _png(self.dpi, draw, args, kwargs))

    def finish(self) -> None:
        """Wait for the figures rendered elsewhere and put them in their places."""
        for index, (filename, caption, future) in sorted(self.pending.items()):
            self._place(index, filename, caption, future.result())
        self.pending.clear()

    def _place(self, index: int, filename: str, caption: str, png: bytes) -> None:
        self.images[filename] = png
        data = base64.b64encode(png).decode("ascii")
        part = (
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)} ({filename})</figcaption></figure>"
        )
        if index == len(self.parts):
            self.parts.append(part)
        else:
            self.parts[index] = part

    def table(self, header: Sequence[str], rows: Iterable[Sequence], numeric: Sequence[int] = ()):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = []
        for row in rows:
            cells = "".join(
                f'<td class="num">{html.escape(_fmt(v))}</td>'
                if i in numeric
                else f"<td>{html.escape(_fmt(v))}</td>"
                for i, v in enumerate(row)
            )
            body.append(f"<tr>{cells}</tr>")
        self.parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")


def _png(dpi: int, draw: Callable[..., Figure], args: tuple, kwargs: dict) -> bytes:
    return plots.figure_png(draw(*args, **kwargs), dpi=dpi)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


SECTIONS = (
    ("corpus", "Corpus"),
    ("new-words", "New words"),
    ("keywords", "Keywords"),
    ("topics", "Topics"),
    ("background", "Background terms"),
    ("prevalence", "Prevalence"),
    ("time", "Topics over time"),
    ("groups", "What sets groups apart"),
    ("documents", "Representative documents"),
    ("kwic", "Words in context"),
    ("selection", "Choosing K"),
    ("robustness", "Robustness to segmentation"),
)


def report(
    results: Results,
    params: ReportParams,
    renderer: concurrent.futures.Executor | None = None,
) -> dict[str, bytes]:
    """The report's files (``index.html`` and its PNGs) from one run's tables; no file access.

    ``renderer`` (processes) turns the figures into PNGs while the next ones are built; the
    bytes are the same either way."""
    _keyword_groups(results, params)  # a wrong column stops the report before any drawing
    page = _Page(dpi=params.dpi, renderer=renderer)
    builders: dict[str, Callable[[_Page, Results, ReportParams], None]] = {
        "corpus": _corpus,
        "new-words": _new_words,
        "keywords": _keywords,
        "topics": _topics,
        "background": _background,
        "prevalence": _prevalence,
        "time": compare_sections.topics_over_time,
        "groups": compare_sections.groups_apart,
        "documents": _representative_docs,
        "kwic": compare_sections.words_in_context,
        "selection": _selection,
        "robustness": _robustness,
    }
    for anchor, title in SECTIONS:
        page.heading(anchor, title)
        builders[anchor](page, results, params)
    page.finish()
    nav = " ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in SECTIONS)
    document = (
        '<!DOCTYPE html>\n<html lang="zh-Hans">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>zhtopics report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>zhtopics report</h1>\n<nav>{nav}</nav>\n"
        + "\n".join(page.parts)
        + "\n</body>\n</html>\n"
    )
    return {"index.html": document.encode("utf-8"), **page.images}


def _corpus(page: _Page, results: Results, params: ReportParams) -> None:
    kept = pc.sum(pc.equal(results.clean.column("status"), "kept")).as_py() or 0
    modelled = len(pc.unique(results.doc_topics.column("doc_id")))
    dates = results.documents.column("date").drop_null()
    span = f"{pc.min(dates).as_py()} – {pc.max(dates).as_py()}" if len(dates) else "no dates"
    rows = [
        ("documents", results.documents.num_rows),
        ("kept after cleaning", kept),
        ("with a topic mix", modelled),
        ("source files", len(pc.unique(results.documents.column("source")))),
        ("content tokens", pc.sum(results.tokens.column("n_tokens")).as_py() or 0),
        ("vocabulary (terms)", results.vocabulary.num_rows),
        ("dates", span),
    ]
    page.table(["", "count"], rows, numeric=[1])
    page.figure(
        "status", "status", plots.plot_counts, results.clean, "status", "documents by status"
    )
    page.figure(
        "sources", "documents by source file", plots.plot_counts, results.documents, "source"
    )
    page.figure(
        "dates", "documents by year", plots.plot_documents_by_date, results.documents, "year"
    )
    page.figure(
        "lengths", "length distributions", plots.plot_lengths, results.clean, results.tokens
    )
    if results.ingest_report is not None:
        page.figure("ingest", "the ingest report", plots.plot_ingest_report, results.ingest_report)
    else:
        page.note("No ingest report (ingest_report.parquet) in this run.")
    if results.clean_audit is not None:
        page.figure(
            "cleaning", "what cleaning changed", plots.plot_clean_audit, results.clean_audit
        )
    else:
        page.note("No cleaning audit (clean_audit.parquet) in this run.")


def _new_words(page: _Page, results: Results, params: ReportParams) -> None:
    table = results.new_words
    if table is None:
        page.note("No new-word discovery (new_words.parquet) in this run.")
        return
    if table.num_rows == 0:
        page.note("New-word discovery is off (segment.new_words), or found no candidate.")
        return
    rows = table.to_pylist()
    accepted = [w for w in rows if w["accepted"]]
    whole = sum(w["token_count"] for w in accepted)
    cut = [w for w in accepted if len(w["pieces"].split()) > 1]
    split = sum(w["token_count"] for w in cut)
    pieces = sum(w["token_count"] * len(w["pieces"].split()) for w in cut)
    reasons: dict[str, int] = {}
    for w in rows:
        if not w["accepted"]:
            reasons[w["reason"]] = reasons.get(w["reason"], 0) + 1
    rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    page.text(
        f"Strings the corpus uses as words that the tokenizer's dictionary lacks: "
        f"{len(accepted)} accepted of {table.num_rows} listed"
        + (f" (not accepted: {rejected})" if rejected else "")
        + f". Accepted words are {whole:,} tokens of the corpus; {split:,} of them are "
        f"occurrences the tokenizer alone would cut into {pieces:,} tokens "
        "(0 unless segment.new_words is use). Overrule a word in "
        "data/dict/new_words_review.tsv (keep or reject)."
    )
    # The accepted words; when there are none, the best candidates with why they were not.
    shown = (accepted or rows)[: params.new_words]
    page.table(
        ["word", "verdict", "occurrences", "documents", "tokens", "without it", "example"],
        [
            (
                w["word"],
                "accepted" if w["accepted"] else w["reason"],
                w["frequency"],
                w["document_frequency"],
                w["token_count"],
                w["pieces"],
                w["example"],
            )
            for w in shown
        ],
        numeric=[2, 3, 4],
    )


def _keywords(page: _Page, results: Results, params: ReportParams) -> None:
    page.text(
        "TF-IDF keywords: the terms that are among the most distinctive of the most "
        f"documents, then the top terms of each group of documents by {params.keyword_groups} "
        "(mean TF-IDF over the group)."
    )
    page.figure(
        "keywords",
        "documents that have each term among their keywords",
        plots.plot_corpus_keywords,
        results.keywords,
        params.top_keywords,
    )
    every = _keyword_groups(results, params)
    every, singletons = drop_singletons(every)
    if not every:
        page.note(
            f"No keywords by {params.keyword_groups}: each of its {singletons:,} groups holds "
            "one document (the corpus keywords above are theirs); report.keyword_groups "
            "chooses another column."
        )
        return
    if singletons:
        page.note(f"{singletons:,} groups of one document are left out of the chart below.")
    groups = largest_groups(every, params.max_groups)
    n_groups, n_shown = len(set(every.values())), len(set(groups.values()))
    if n_shown < n_groups:
        page.note(
            f"Keywords of the {n_shown} largest of {n_groups} groups by "
            f"{params.keyword_groups} (report.max_groups)."
        )
        log.info("report: keywords of the %d largest of %d groups", n_shown, n_groups)
    doc_terms = results.doc_terms
    if n_shown < n_groups:
        doc_terms = doc_terms.filter(
            pc.is_in(doc_terms.column("doc_id"), pa.array(list(groups), pa.string()))
        )
    table = report_tables.group_keywords_table(
        doc_terms, results.vocabulary, groups, params.top_terms
    )
    page.figure(
        "group-keywords",
        f"keywords by {params.keyword_groups}",
        plots.plot_term_bars,
        table,
        "group",
        top_n=params.top_terms,
        title=f"keywords by {params.keyword_groups}",
    )


def drop_singletons(groups: dict[str, str]) -> tuple[dict[str, str], int]:
    """``groups`` (doc_id to group) without the groups of one document, and how many those
    were: a chart of one document's keywords compares nothing."""
    sizes: dict[str, int] = {}
    for g in groups.values():
        sizes[g] = sizes.get(g, 0) + 1
    single = {g for g, n in sizes.items() if n == 1}
    if not single:
        return groups, 0
    return {doc: g for doc, g in groups.items() if g not in single}, len(single)


def largest_groups(groups: dict[str, str], limit: int) -> dict[str, str]:
    """``groups`` (doc_id to group) keeping the ``limit`` groups with the most documents
    (equal sizes: by name)."""
    sizes: dict[str, int] = {}
    for g in groups.values():
        sizes[g] = sizes.get(g, 0) + 1
    if len(sizes) <= limit:
        return groups
    kept = set(compare_sections.largest(sizes, limit))
    return {doc: g for doc, g in groups.items() if g in kept}


def _keyword_groups(results: Results, params: ReportParams) -> dict[str, str]:
    try:
        return report_tables.group_labels(results.documents, params.keyword_groups)
    except ValueError as exc:
        raise ValueError(f"report.keyword_groups: {exc}") from exc


def _topics(page: _Page, results: Results, params: ReportParams) -> None:
    m = results.lda_metrics
    page.text(
        f"{results.topics.num_rows} topics. Coherence c_npmi {m.get('coherence_c_npmi')}, "
        f"c_v {m.get('coherence_c_v')}, topic diversity {m.get('topic_diversity')}."
    )
    terms: dict[int, list[str]] = {}
    for row in results.topic_terms.sort_by(
        [("topic", "ascending"), ("rank", "ascending")]
    ).to_pylist():
        if row["rank"] <= params.top_terms:
            terms.setdefault(row["topic"], []).append(row["term"])
    rows = [
        (
            t["topic"],
            t["label"],
            f"{100 * t['prevalence']:.1f}%",
            t["coherence"],
            " ".join(terms.get(t["topic"], [])),
        )
        for t in results.topics.to_pylist()
    ]
    page.table(["topic", "label", "prevalence", "c_npmi", "top terms"], rows, numeric=[0, 2, 3])
    names = report_tables.topic_names(results.topics)
    page.figure(
        "topic-terms",
        "the most probable terms of each topic",
        plots.plot_term_bars,
        results.topic_terms,
        "topic",
        names,
        params.top_terms,
        title="topic terms",
    )
    page.figure(
        "wordclouds",
        "a word cloud per topic",
        plots.plot_wordclouds,
        results.topic_terms,
        "topic",
        names,
        params.wordcloud_words,
    )
    labels = report_tables.document_labels(results.documents)
    page.figure(
        "heatmap",
        "each document's topic mix",
        plots.plot_doc_topic_heatmap,
        results.doc_topics,
        results.topics,
        labels,
        params.heatmap_docs,
    )


def _background(page: _Page, results: Results, params: ReportParams) -> None:
    """The terms the tfidf stage found to be corpus boilerplate, and what the model did."""
    vocabulary = results.vocabulary
    if "is_background" not in vocabulary.column_names:
        page.note("The vocabulary has no background scores (made by an earlier version).")
        return
    flagged = vocabulary.filter(vocabulary.column("is_background")).sort_by(
        [("df", "descending"), ("term_id", "ascending")]
    )
    left_out = results.lda_metrics.get("background_terms_left_out", 0)
    if not flagged.num_rows:
        page.text(
            "No term was found to be corpus boilerplate (tfidf.background_min_df, "
            "tfidf.background_min_evenness)."
        )
        return
    what = (
        "left out of the topic model (lda.background: drop)"
        if left_out
        else "modelled like any other term (lda.background: include)"
    )
    page.text(
        f"{flagged.num_rows} terms are in many documents and spread over them as evenly as "
        f"chance allows (the corpus' boilerplate); they were {what}. A word listed in "
        "tfidf.keep_terms (data/dict/keep_terms.txt) is never flagged. For paragraphs, "
        '"parents" is the share of their parent documents with the term (a flagged term is '
        'in nearly all of them); "partner" is its strongest document co-occurrence (NPMI) '
        "with a word outside the boilerplate (a subject word has a strong one)."
    )
    # The share is of the documents the tfidf stage counted: those with tokens.
    n_docs = max(pc.sum(pc.greater(results.tokens.column("n_tokens"), 0)).as_py() or 0, 1)
    rows = [
        (
            row["term"],
            row["df"],
            f"{100 * row['df'] / n_docs:.1f}%",
            row["background"],
            f"{100 * row.get('parent_share', 0.0):.0f}%",
            f"{row.get('partner_npmi', -1.0):.2f}",
        )
        for row in flagged.to_pylist()
    ]
    page.table(
        ["term", "documents", "share", "evenness", "parents", "partner"],
        rows,
        numeric=[1, 2, 3, 4, 5],
    )


def _prevalence(page: _Page, results: Results, params: ReportParams) -> None:
    page.figure("prevalence", "share of the corpus", plots.plot_topic_prevalence, results.topics)
    if results.topic_prevalence is None:
        page.note("No prevalence by group (topic_prevalence.parquet) in this run.")
        return
    columns = sorted(set(results.topic_prevalence.column("column").to_pylist()))
    for column in columns:
        table = results.topic_prevalence.filter(
            pc.equal(results.topic_prevalence.column("column"), column)
        )
        groups = set(table.column("group").to_pylist())
        if len(groups) < 2:
            page.note(
                f"No prevalence chart by {column}: every document is in one group "
                f"({', '.join(sorted(groups)) or 'none'}), there is nothing to compare."
            )
            continue
        if column not in plots.TIME_COLUMNS:
            table = compare_sections.groups_of_several(page, table, column, results.documents)
            if table is None:
                continue
            table = _largest_prevalence_groups(page, table, column, params.max_groups)
        page.figure(
            f"prevalence-{_slug(column)}",
            f"prevalence by {column}, with intervals",
            plots.plot_prevalence,
            table,
            column,
            results.topics,
        )


def _largest_prevalence_groups(page: _Page, table: pa.Table, column: str, limit: int) -> pa.Table:
    """The prevalence rows of the ``limit`` groups with the most documents (ties by name)."""
    groups, n_docs = table.column("group").to_pylist(), table.column("n_docs").to_pylist()
    sizes = dict(zip(groups, n_docs, strict=True))
    if len(sizes) <= limit:
        return table
    kept = compare_sections.largest(sizes, limit)
    page.note(
        f"Prevalence by {column}: the {limit} largest of {len(sizes)} groups (report.max_groups)."
    )
    log.info("report: prevalence by %s for the %d largest of %d groups", column, limit, len(sizes))
    return table.filter(pc.is_in(table.column("group"), pa.array(kept, pa.string())))


def _representative_docs(page: _Page, results: Results, params: ReportParams) -> None:
    if results.representative_docs is None:
        page.note("No representative documents (representative_docs.parquet) in this run.")
        return
    names = report_tables.topic_names(results.topics, width=40)
    rows = sorted(
        results.representative_docs.to_pylist(), key=lambda row: (row["topic"], row["rank"])
    )
    table = [
        (
            names.get(row["topic"], row["topic"]),
            row["rank"],
            row["weight"],
            row["title"],
            row["snippet"],
        )
        for row in rows
        if row["rank"] <= params.docs_per_topic
    ]
    page.table(["topic", "rank", "weight", "title", "snippet"], table, numeric=[1, 2])


def _selection(page: _Page, results: Results, params: ReportParams) -> None:
    if results.sweep is None:
        page.note("No K sweep (sweep.parquet) in this run.")
        return
    metrics = results.sweep_metrics or {}
    if results.sweep.num_rows == 0:
        reason = metrics.get("skipped", "the sweep table is empty")
        page.note(f"No K sweep was fitted in this run: {reason}.")
        return
    k = metrics.get("recommended_k")
    if k is not None:
        page.text(f"Recommended K = {k} ({metrics.get('rule', 'rule not recorded')}).")
    page.figure("sweep", "quality measures against K", plots.plot_sweep, results.sweep, k)


def _robustness(page: _Page, results: Results, params: ReportParams) -> None:
    if results.robustness is None:
        page.note("No robustness table (robustness.parquet) in this run.")
        return
    if results.robustness.num_rows == 0:
        page.note(
            "Robustness refits are off (robustness.enabled: false); "
            "`zhtopics robustness --set robustness.enabled=true` runs them."
        )
        return
    rows = results.robustness.to_pylist()
    topics = sorted({row["topic"] for row in rows})
    kept = [t for t in topics if all(x["survives"] for x in rows if x["topic"] == t)]
    variants = ", ".join(dict.fromkeys(row["variant"] for row in rows))
    page.text(
        f"The model refitted under other segmentations and seeds ({variants}); each variant's "
        f"topics matched one to one to these by their shared top terms. {len(kept)} of "
        f"{len(topics)} topics survive every variant."
    )
    page.figure(
        "robustness",
        "similarity of each topic's match under each variant",
        plots.plot_robustness,
        results.robustness,
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-") or "column"


def _renderer() -> concurrent.futures.Executor | None:
    """Processes that render figures beside the one that builds them: every usable core, by
    fork (a figure is sent pickled; a new interpreter would first import matplotlib)."""
    cores = usable_cores()
    if cores < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    plots.warm_up()  # loaded once here, every forked process has the font and the modules
    context = multiprocessing.get_context("fork")
    return concurrent.futures.ProcessPoolExecutor(cores, mp_context=context)


def main(params: Params, paths: Paths) -> None:
    results = load_results(paths, UNUSED_COLUMNS)
    renderer = _renderer()
    try:
        files = report(results, params.report, renderer)
    finally:
        if renderer is not None:
            renderer.shutdown()
    write_folder(files, paths.processed / "report")
    log.info("report: %d pictures -> %s", len(files) - 1, paths.processed / "report" / "index.html")
