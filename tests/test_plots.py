"""Pictures: the bundled CJK font (no tofu) and every plot on tiny tables."""

import os
import warnings

import matplotlib
import numpy as np
import pyarrow as pa
import pytest
import wordcloud
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from wordcloud import WordCloud

from pipeline import plots, report_tables
from pipeline.schemas import SchemaError
from tests import contract_tables
from tests.conftest import table
from tests.test_report_tables import _clean, _doc_terms, _documents


def _render(text: str, family: str | None = None) -> np.ndarray:
    fig = Figure(figsize=(1, 1), dpi=60)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=32, family=family)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def test_the_cjk_font_ships_with_the_environment_and_is_the_default():
    path = plots.font_path()
    assert path.is_file() and "mplfonts" in path.parts
    assert matplotlib.rcParams["font.sans-serif"][0] == plots.FONT_FAMILY
    default = FontProperties(family=matplotlib.rcParams["font.family"])
    assert findfont(default, fallback_to_default=False) == str(path)


def test_two_chinese_characters_render_differently_no_tofu():
    """Missing glyphs all render as the same box, so identical images would mean tofu."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        zhong, wen = _render("中"), _render("文")
    assert (zhong != 255).any(), "nothing was drawn"
    assert not np.array_equal(zhong, wen)


def test_the_tofu_check_detects_a_font_without_chinese():
    """The same check on a font that lacks the glyphs: both characters give the same box."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zhong, wen = _render("中", "DejaVu Sans"), _render("文", "DejaVu Sans")
    assert np.array_equal(zhong, wen)
    assert not np.array_equal(_render("中"), zhong)


def test_word_clouds_get_the_cjk_font():
    china, culture = plots.wordcloud_image({"中国": 1.0}), plots.wordcloud_image({"文化": 1.0})
    assert not np.array_equal(china, culture)
    # wordcloud's own font has no Chinese: the same two words come out as identical boxes.
    droid = os.path.join(os.path.dirname(wordcloud.__file__), "DroidSansMono.ttf")

    def boxes(word):
        cloud = WordCloud(font_path=droid, width=400, height=260, random_state=0)
        return cloud.generate_from_frequencies({word: 1.0}).to_array()

    assert np.array_equal(boxes("中国"), boxes("文化"))


def test_png_bytes_repeat_and_carry_no_software_or_date():
    pngs = [plots.figure_png(plots.plot_counts(_clean(), "status")) for _ in range(2)]
    assert pngs[0] == pngs[1]
    assert pngs[0].startswith(b"\x89PNG")
    assert b"Software" not in pngs[0] and b"tIME" not in pngs[0]


# --- tiny tables ----------------------------------------------------------------------------


def _topics() -> tuple[pa.Table, pa.Table, pa.Table]:
    topics = table(
        topic=pa.array([0, 1], pa.int32()),
        label=["妇女·儿童", "乡村·振兴"],
        prevalence=[0.6, 0.4],
        coherence=[0.1, -0.1],
    )
    terms = table(
        topic=pa.array([0, 0, 1, 1], pa.int32()),
        rank=pa.array([1, 2, 1, 2], pa.int32()),
        term=["妇女", "儿童", "乡村", "振兴"],
        weight=[0.3, 0.2, 0.4, 0.1],
    )
    doc_topics = table(
        doc_id=["a", "a", "b", "b"],
        topic=pa.array([0, 1, 0, 1], pa.int32()),
        weight=[0.9, 0.1, 0.2, 0.8],
    )
    return topics, terms, doc_topics


def _no_tofu(figure: Figure) -> Figure:
    """Draw ``figure`` with any missing-glyph warning as an error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        plots.figure_png(figure, dpi=40)
    return figure


def test_corpus_plots_draw_chinese_labels():
    documents, clean = _documents(), _clean()
    tokens = table(doc_id=["a", "b"], n_tokens=pa.array([10, 0], pa.int32()))
    for fig in (
        plots.plot_counts(documents, "source"),
        plots.plot_counts(clean, "status"),
        plots.plot_documents_by_date(documents, "month"),
        plots.plot_lengths(clean, tokens),
        plots.plot_lengths(clean),
    ):
        assert isinstance(_no_tofu(fig), Figure)
    titles = [
        t.get_text() for t in plots.plot_counts(documents, "source").axes[0].get_yticklabels()
    ]
    assert titles == ["讲话.txt", "报告.txt"]


def test_keyword_and_topic_plots():
    doc_terms, vocabulary = _doc_terms()
    topics, terms, doc_topics = _topics()
    groups = report_tables.group_labels(_documents(), "parent_id")
    keywords = table(doc_id=["a", "b"], term=["妇女", "儿童"], weight=[0.5, 0.2])
    names = report_tables.topic_names(topics)
    assert names == {0: "T0 妇女·儿童", 1: "T1 乡村·振兴"}
    figs = [
        plots.plot_corpus_keywords(keywords),
        plots.plot_term_bars(
            report_tables.group_keywords_table(doc_terms, vocabulary, groups),
            "group",
            title="关键词",
        ),
        plots.plot_term_bars(terms, "topic", names),
        plots.plot_wordclouds(terms, "topic", names),
        plots.plot_doc_topic_heatmap(
            doc_topics, topics, report_tables.document_labels(_documents())
        ),
        plots.plot_topic_prevalence(topics),
    ]
    for fig in figs:
        _no_tofu(fig)
    bars = figs[2].axes[0]
    assert bars.get_title() == "T0 妇女·儿童"
    assert [t.get_text() for t in bars.get_yticklabels()] == ["儿童", "妇女"]


def test_heatmap_orders_documents_by_main_topic_and_limits_rows():
    _, _, doc_topics = _topics()
    ax = plots.plot_doc_topic_heatmap(doc_topics).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    many = table(
        doc_id=[f"d{i:03d}" for i in range(200) for _ in range(2)],
        topic=pa.array([0, 1] * 200, pa.int32()),
        weight=[w for i in range(200) for w in (i / 199, 1 - i / 199)],
    )
    ax = plots.plot_doc_topic_heatmap(many, max_docs=20).axes[0]
    assert len(ax.get_yticklabels()) == 20
    assert "20 of 200" in ax.get_title()


def test_prevalence_over_time_leaves_out_undated_documents_and_labels_few_periods():
    """Forty years and the undated: a line over the years only, at most 8 labelled, under the
    bottom panel of each column; a category column labels every group."""
    years = [str(1980 + i) for i in range(40)] + ["(missing)"]
    rows = [
        {"column": c, "group": g, "topic": t, "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6}
        for c in ("year", "source")
        for g in years
        for t in range(4)
    ]
    prevalence = pa.Table.from_pylist(rows)
    fig = plots.plot_prevalence(prevalence, "year", ncols=3)
    labelled = [[t.get_text() for t in ax.get_xticklabels() if t.get_text()] for ax in fig.axes]
    assert labelled[0] == []  # above panel 3; panels 1 and 2 end their columns
    assert all(0 < len(labels) <= 8 for labels in labelled[1:])
    assert all("(missing)" not in labels for labels in labelled)
    assert fig.axes[-1].get_lines()[0].get_xdata().size == 40
    fig = plots.plot_prevalence(prevalence, "source", ncols=3)
    assert len([t for t in fig.axes[-1].get_xticklabels() if t.get_text()]) == 41
    assert plots.figure_png(fig, dpi=20)[:4] == b"\x89PNG"


def test_contract_tables_draw(sample_run):
    """The tables of the ingest and topic-model issues, in their contract shapes."""
    from pipeline.results import load_results

    results = load_results(sample_run)
    prevalence = contract_tables.topic_prevalence(results.documents, results.doc_topics)
    figs = [
        plots.plot_ingest_report(contract_tables.ingest_report(results.documents)),
        plots.plot_clean_audit(contract_tables.clean_audit(results.documents)),
        plots.plot_sweep(contract_tables.sweep(), recommended_k=6),
        plots.plot_prevalence(prevalence, "month", results.topics),
        plots.plot_prevalence(prevalence, "speech", results.topics),
    ]
    for fig in figs:
        _no_tofu(fig)
    sweep_titles = [ax.get_title() for ax in figs[2].axes]
    assert len(sweep_titles) == 6 and "perplexity" in " ".join(sweep_titles)
    panels = [ax for ax in figs[3].axes if ax.get_title()]  # a grid's spare cells stay blank
    assert len(panels) == results.topics.num_rows


def test_empty_inputs_give_a_figure_that_says_so():
    empty_docs = _documents().slice(0, 0)
    shown = []
    for fig in (
        plots.plot_counts(empty_docs, "source"),
        plots.plot_documents_by_date(_documents().filter(pa.array([False, False, False, True]))),
        plots.plot_sweep(contract_tables.sweep().slice(0, 0)),
        plots.plot_clean_audit(contract_tables.clean_audit(empty_docs)),
        plots.plot_prevalence(contract_tables.topic_prevalence(_documents(), _topics()[2]), "x"),
    ):
        shown.append([t.get_text() for ax in fig.axes for t in ax.texts])
    assert shown == [
        ["no documents"],
        ["no document has a date"],
        ["no sweep results"],
        ["no rule changed any document"],
        ["no prevalence rows for column 'x'"],
    ]


def test_a_missing_column_is_named():
    with pytest.raises(SchemaError, match=r"\['ci_low'"):
        plots.plot_prevalence(
            table(column=["year"], group=["2022"], topic=[0], mean=[0.1], ci_high=[0.2]), "year"
        )
    with pytest.raises(SchemaError, match="weight"):
        plots.plot_term_bars(table(topic=[0], term=["妇女"]), "topic")


def test_topic_trends_and_contrasts_draw_in_chinese(reports_run):
    from pipeline.results import load_results
    from pipeline.schemas import TOPIC_CONTRASTS, TOPIC_TRENDS

    r = load_results(reports_run)
    fig = plots.plot_topic_trends(r.topic_trends, r.topics)
    _no_tofu(fig)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == r.topics.num_rows
    # A hollow dot per few-document period: every year of the fixture has one report.
    hollow = [c for c in panels[0].collections if len(c.get_offsets())]
    assert len(hollow[-1].get_offsets()) == 10
    fig = plots.plot_topic_contrasts(r.topic_contrasts, "speaker", r.topics)
    _no_tofu(fig)
    assert {ax.get_title() for ax in fig.axes if ax.get_title()} == {
        "周恩来 (3 篇)",
        "李克强 (2 篇)",
        "温家宝 (2 篇)",
    }
    for fig in (
        plots.plot_topic_trends(TOPIC_TRENDS.schema.empty_table()),
        plots.plot_topic_contrasts(TOPIC_CONTRASTS.schema.empty_table(), "speaker"),
    ):
        assert [t.get_text() for ax in fig.axes for t in ax.texts][0]
