"""Tables shaped for pictures and the report (pipeline/report_tables.py), on tiny tables."""

import datetime as dt

import pyarrow as pa
import pytest

from pipeline import report_tables
from tests.conftest import table


def _documents() -> pa.Table:
    return table(
        doc_id=["a", "b", "c", "d"],
        parent_id=["p", "p", "q", "r"],
        source=["报告.txt", "报告.txt", "讲话.txt", "讲话.txt"],
        part=["1", "1", None, None],
        paragraph=pa.array([0, 1, None, None], pa.int32()),
        title=["妇联工作报告", "妇联工作报告", None, "乡村振兴"],
        date=pa.array([dt.date(2021, 3, 1), dt.date(2022, 9, 16), dt.date(2022, 9, 1), None]),
    )


def _clean() -> pa.Table:
    return table(
        doc_id=["a", "b", "c", "d"],
        n_chars=[120, 80, 5, 0],
        status=["kept", "kept", "too_short", "empty"],
    )


def _doc_terms() -> tuple[pa.Table, pa.Table]:
    vocabulary = table(term_id=pa.array([0, 1, 2], pa.int32()), term=["妇女", "儿童", "乡村"])
    doc_terms = table(
        doc_id=["a", "a", "b", "d"],
        term_id=pa.array([0, 1, 1, 2], pa.int32()),
        tfidf=[0.8, 0.6, 1.0, 1.0],
    )
    return doc_terms, vocabulary


def test_count_and_period_tables():
    counts = report_tables.count_table(_clean(), "status")
    assert counts.to_pylist()[0] == {"value": "kept", "count": 2}
    years = report_tables.period_table(_documents(), "year")
    assert years.to_pylist() == [{"period": "2021", "count": 1}, {"period": "2022", "count": 2}]
    months = report_tables.period_table(_documents(), "month").column("period").to_pylist()
    assert months == ["2021-03", "2022-09"]
    with pytest.raises(ValueError, match="freq"):
        report_tables.period_table(_documents(), "week")


def test_document_and_group_labels():
    labels = report_tables.document_labels(_documents())
    assert labels["a"] == "妇联工作报告 篇1 ¶1"
    assert labels["c"] == "讲话.txt"
    by_parent = report_tables.group_labels(_documents(), "parent_id")
    assert by_parent["a"] == by_parent["b"] == "妇联工作报告 篇1"
    assert report_tables.group_labels(_documents(), "year")["d"] == "(no date)"
    with pytest.raises(ValueError, match="no documents column 'region'"):
        report_tables.group_labels(_documents(), "region")


def test_shorten_keeps_the_end_where_similar_names_differ():
    assert report_tables.shorten("妇联领导工作会议讲话 篇2", 10).endswith("篇2")
    assert len(report_tables.shorten("妇联领导工作会议讲话 篇2", 10)) == 10
    assert report_tables.shorten(" 短\n标题 ", 10) == "短 标题"


def test_group_keywords_are_mean_tfidf_over_the_group():
    doc_terms, vocabulary = _doc_terms()
    groups = report_tables.group_labels(_documents(), "source")
    result = report_tables.group_keywords_table(doc_terms, vocabulary, groups, top_n=5).to_pylist()
    report = [(r["term"], r["weight"]) for r in result if r["group"] == "报告.txt"]
    assert report == [("儿童", pytest.approx(0.8)), ("妇女", pytest.approx(0.4))]
    speech = [(r["term"], r["weight"]) for r in result if r["group"] == "讲话.txt"]
    assert speech == [("乡村", pytest.approx(0.5))]  # c has no terms but counts in the group


def test_corpus_keywords_count_documents():
    keywords = table(doc_id=["a", "b", "b"], term=["妇女", "妇女", "儿童"], weight=[0.5, 0.2, 0.9])
    rows = report_tables.corpus_keywords_table(keywords).to_pylist()
    assert [(r["term"], r["n_docs"]) for r in rows] == [("妇女", 2), ("儿童", 1)]


def test_corpus_keywords_ties_do_not_hang_on_the_last_bit_of_a_sum():
    """0.1 + 0.2 and 0.3 differ in the last bit, which the order of addition decides: the
    ranking rounds the sums, so the term breaks the tie, as on every machine."""
    keywords = table(
        doc_id=["a", "b", "a", "b"], term=["甲", "甲", "乙", "乙"], weight=[0.1, 0.2, 0.3, 0.0]
    )
    rows = report_tables.corpus_keywords_table(keywords).to_pylist()
    assert [(r["term"], r["weight"]) for r in rows] == [("乙", 0.3), ("甲", 0.3)]


def test_rule_table_counts_documents_and_characters_per_rule():
    audit = table(
        doc_id=["a", "a", "b", "c"],
        rule=["header", "header", "header", "footer"],
        chars_removed=[3, 4, 5, 10],
    )
    assert report_tables.rule_table(audit).to_pylist() == [
        {"rule": "header", "documents": 2, "chars_removed": 12},
        {"rule": "footer", "documents": 1, "chars_removed": 10},
    ]


def test_doc_topic_rows_group_by_main_topic_heaviest_first_and_thin_evenly():
    doc_topics = table(
        doc_id=["a", "a", "b", "b", "c", "c", "d", "d"],
        topic=pa.array([0, 1] * 4, pa.int32()),
        weight=[0.4, 0.6, 0.9, 0.1, 0.2, 0.8, 0.7, 0.3],
    )
    rows = report_tables.doc_topic_rows(doc_topics)
    assert rows.doc_ids == ["b", "d", "c", "a"] and rows.total == 4
    assert rows.weights.tolist() == [[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]]
    thinned = report_tables.doc_topic_rows(doc_topics, max_docs=2)
    assert thinned.doc_ids == ["b", "a"] and thinned.total == 4
    empty = report_tables.doc_topic_rows(doc_topics.slice(0, 0))
    assert empty.doc_ids == [] and empty.total == 0


def test_periods_respect_date_precision():
    documents = _documents().append_column(
        "date_precision", pa.array(["year", "day", "month", None], pa.string())
    )
    assert report_tables.period_table(documents, "month").to_pylist() == [
        {"period": "(year only)", "count": 1},
        {"period": "2022-09", "count": 2},
    ]
    assert report_tables.group_labels(documents, "quarter") == {
        "a": "(year only)",
        "b": "2022-Q3",
        "c": "2022-Q3",
        "d": "(no date)",
    }
    assert report_tables.group_labels(documents, "decade")["a"] == "2020s"
