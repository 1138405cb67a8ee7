"""Stage compare: keyness, topic contrasts and trends on hand-built arrays, the choice of
columns, then the stage on the work-report fixture folder (tests/fixtures/work_reports)."""

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from pipeline import compare
from pipeline.config import CompareParams, ConfigError, params_from_dict
from pipeline.io import read_table
from pipeline.schemas import (
    COMPARE_GROUPS,
    DOCUMENTS,
    KEYNESS,
    TOPIC_CONTRASTS,
    TOPIC_KWIC,
    TOPIC_TRENDS,
)
from pipeline.topics import contrasts as ct
from pipeline.topics.keyness import adjust, group_term_counts, keyness, log_likelihood, log_ratio

# --- keyness ------------------------------------------------------------------------------------


def test_log_likelihood_and_log_ratio_by_hand():
    # 10 of 100 tokens in the group, 0 of 100 in the rest: E = 5 and 5.
    g2 = log_likelihood(np.array([10]), np.array([0]), 100.0, 100.0)
    assert g2[0] == pytest.approx(2 * 10 * math.log(2))
    # Equal relative frequencies: nothing to see.
    assert log_likelihood(np.array([5]), np.array([10]), 100.0, 200.0)[0] == pytest.approx(0)
    # Zero counts as 0.5: log2((10/100) / (0.5/100)) = log2(20).
    assert log_ratio(np.array([10]), np.array([0]), 100.0, 100.0)[0] == pytest.approx(math.log2(20))


def test_benjamini_hochberg_and_bonferroni():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert adjust(p, "bh").tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust(p, "bonferroni").tolist() == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert adjust(np.array([0.9, 0.8]), "bonferroni").tolist() == [1.0, 1.0]


def test_keyness_finds_the_terms_a_group_overuses():
    # 6 documents x 4 terms; documents 0-2 are group 0, 3-4 group 1, 5 has no value.
    counts = sp.csr_matrix(
        np.array(
            [
                [9, 1, 1, 0],
                [8, 1, 2, 0],
                [7, 1, 1, 0],
                [0, 1, 1, 9],
                [1, 1, 2, 8],
                [50, 0, 0, 50],
            ]
        )
    )
    codes = np.array([0, 0, 0, 1, 1, -1])
    by_group = group_term_counts(counts, codes, 2)
    assert by_group.tolist() == [[24, 3, 4, 0], [1, 2, 3, 17]]
    result = keyness(by_group, top_n=10)
    assert result[0].term_ids.tolist()[0] == 0 and result[1].term_ids.tolist()[0] == 3
    # Only terms used more than the rest are listed, best first.
    assert 3 not in result[0].term_ids.tolist() and (result[0].log_ratio > 0).all()
    assert list(result[0].g2) == sorted(result[0].g2, reverse=True)
    assert result[0].freq_group[0] == 24 and result[0].freq_rest[0] == 1
    assert (result[0].p_adjusted >= result[0].p).all()
    assert result[0].p[0] < 1e-4


# --- contrasts and trends ---------------------------------------------------------------------


def _shares(n0: int, n1: int, rng) -> tuple[np.ndarray, np.ndarray]:
    a = np.column_stack([rng.uniform(0.7, 0.9, n0), np.zeros(n0)])
    b = np.column_stack([rng.uniform(0.1, 0.3, n1), np.zeros(n1)])
    shares = np.vstack([a, b])
    shares[:, 1] = 1 - shares[:, 0]
    return shares, np.array([0] * n0 + [1] * n1)


def test_contrasts_measure_group_minus_rest_with_an_interval():
    shares, codes = _shares(30, 50, np.random.default_rng(0))
    codes = np.append(codes, -1)  # a document without a value: in no group, not in the rest
    shares = np.vstack([shares, [[1.0, 0.0]]])
    c = ct.contrasts(shares, codes, 2, 200, np.random.default_rng(1))
    assert c.n_docs.tolist() == [30, 50]
    assert c.diff[0, 0] == pytest.approx(shares[:30, 0].mean() - shares[30:80, 0].mean(), abs=1e-6)
    assert c.diff[1, 0] == pytest.approx(-c.diff[0, 0], abs=1e-6)
    assert c.diff_low[0, 0] < c.diff[0, 0] < c.diff_high[0, 0]
    assert c.diff_low[0, 0] > 0.5  # clearly apart: the interval is far from 0
    assert c.diff_high[0, 0] - c.diff_low[0, 0] < 0.1
    assert c.mean_low[0, 0] <= c.mean[0, 0] <= c.mean_high[0, 0]


def test_contrasts_repeat_with_the_seed():
    shares, codes = _shares(10, 12, np.random.default_rng(0))
    a = ct.contrasts(shares, codes, 2, 50, np.random.default_rng(7))
    b = ct.contrasts(shares, codes, 2, 50, np.random.default_rng(7))
    assert np.array_equal(a.diff_low, b.diff_low) and np.array_equal(a.mean_high, b.mean_high)


def test_document_shares_average_the_paragraphs():
    theta = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    shares, units = ct.document_shares(np.array([0, 0, 1]), theta, 2)
    assert shares.tolist() == [[0.5, 0.5], [0.5, 0.5]] and units.tolist() == [2, 1]


def test_smooth_keeps_a_constant_and_weights_by_documents():
    x = np.array([1950.5, 1960.5, 1970.5])
    assert ct.smooth(x, np.full((3, 1), 0.3), np.ones(3), 10).ravel().tolist() == [0.3] * 3
    y = np.array([[0.0], [1.0], [0.0]])
    light = ct.smooth(x, y, np.array([1.0, 0.01, 1.0]), 10)
    heavy = ct.smooth(x, y, np.array([1.0, 100.0, 1.0]), 10)
    assert light[1, 0] < 0.1 < 0.9 < heavy[1, 0]
    assert ct.default_bandwidth(np.array([1950.0, 1951.0, 2020.0])) == 7.0
    assert ct.default_bandwidth(np.array([2020.0, 2020.25, 2020.5])) == 0.25


# --- groups and columns ----------------------------------------------------------------------


def _documents() -> pa.Table:
    """Eight documents of one or two paragraphs with a date, a folder and an id column."""
    rows = []
    specs = [
        ("a", dt.date(1954, 5, 23), "day", "甲", 2),
        ("b", dt.date(1957, 1, 1), "year", "甲", 1),
        ("c", dt.date(1959, 4, 18), "day", "甲", 1),
        ("d", dt.date(1985, 3, 27), "day", "乙", 2),
        ("e", dt.date(1988, 3, 25), "day", "乙", 1),
        ("f", dt.date(1989, 3, 20), "day", "乙", 1),
        ("g", dt.date(2017, 3, 5), "day", "丙", 1),
        ("h", None, None, None, 1),
    ]
    for n, (parent, date, precision, folder, paragraphs) in enumerate(specs):
        for p in range(paragraphs):
            rows.append(
                {
                    "doc_id": f"{parent}{p}",
                    "parent_id": parent,
                    "source": f"{folder}/{parent}.txt" if folder else f"{parent}.txt",
                    "date": date,
                    "date_precision": precision,
                    "folder": folder,
                    "id": str(n),
                }
            )
    return pa.Table.from_pylist(rows)


def _units():
    documents = _documents()
    return compare.units_of(documents.column("doc_id").to_pylist(), documents)


def test_groups_count_documents_not_paragraphs_and_small_ones_are_not_compared():
    units, per_document = _units()
    assert units.n_documents == 8 and len(units.doc_ids) == 10
    g = compare.grouping(per_document, units, "folder", CompareParams(min_docs=3))
    rows = {r["group"]: r for r in g.summary.to_pylist()}
    assert rows["甲"]["n_docs"] == 3 and rows["甲"]["n_units"] == 4
    assert {k: r["status"] for k, r in rows.items()} == {
        "甲": "compared",
        "乙": "compared",
        "丙": "too_small",
    }
    assert g.names == ["乙", "甲"]
    assert g.codes.tolist() == [1, 1, 1, 0, 0, 0, 2, -1]  # 丙: the rest only; h: no value
    g = compare.grouping(per_document, units, "folder", CompareParams(min_docs=1, max_groups=2))
    assert {r["group"]: r["status"] for r in g.summary.to_pylist()}["丙"] == "not_shown"


def test_decades_come_from_the_date_and_periods_respect_precision():
    units, per_document = _units()
    assert compare.column_values(per_document, "decade")[:3] == ["1950s"] * 3
    assert compare.column_values(per_document, "month")[1] == "(year only)"


def test_columns_worth_comparing_are_chosen_dates_first():
    units, per_document = _units()
    # decade: 1950s and 1980s hold 3 documents each; year: none; folder: 甲 and 乙; id and
    # source: one document per value.
    assert compare.choose_columns(per_document, units, CompareParams(min_docs=3)) == [
        "decade",
        "folder",
    ]
    assert compare.choose_columns(per_document, units, CompareParams(min_docs=4)) == []
    chosen = compare.choose_columns(per_document, units, CompareParams(columns=("id", "year")))
    assert chosen == ["id", "year"]
    with pytest.raises(compare.CompareError, match="compare.columns.*speaker"):
        compare.choose_columns(per_document, units, CompareParams(columns=("speaker",)))


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"min_docs": 0}, "compare.min_docs"),
        ({"correction": "holm"}, "compare.correction"),
        ({"alpha": 1.5}, "compare.alpha"),
        ({"trend_bucket": "week"}, "compare.trend_bucket"),
        ({"trend_bandwidth": 0}, "compare.trend_bandwidth"),
        ({"columns": [""]}, "compare.columns"),
        ({"typo": 1}, "compare.typo"),
    ],
)
def test_bad_compare_settings_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key):
        params_from_dict({"compare": values})


# --- the stage on the work-report folder ------------------------------------------------------


def test_every_report_gets_its_year_and_speaker(reports_run):
    docs = read_table(reports_run.table("documents"), DOCUMENTS).to_pylist()
    assert all(d["speaker"] and d["year"] == str(d["date"].year) for d in docs)
    assert {d["date_precision"] for d in docs} == {"day"}


def test_keyness_by_speaker_and_by_decade(reports_run):
    key = read_table(reports_run.table("keyness"), KEYNESS)
    rows = key.to_pylist()
    assert {(r["column"], r["group"]) for r in rows} >= {
        ("decade", "1950s"),
        ("decade", "2010s"),
        ("speaker", "周恩来"),
        ("speaker", "李克强"),
    }
    zhou = [r for r in rows if r["group"] == "周恩来"]
    # 周恩来's reports are about industrialisation and agricultural cooperatives.
    assert {"工业化", "合作社"} & {r["term"] for r in zhou[:15]}
    assert all(r["log_ratio"] > 0 and 0 <= r["p"] <= r["p_adjusted"] <= 1 for r in rows)
    groups = read_table(reports_run.table("compare_groups"), COMPARE_GROUPS).to_pylist()
    small = {r["group"] for r in groups if r["status"] == "too_small"}
    assert {"华国锋", "赵紫阳", "李鹏"} <= small
    assert not small & {r["group"] for r in rows}  # too small: listed, never compared


def test_topic_contrasts_and_trends(reports_run, reports_params):
    contrasts = read_table(reports_run.table("topic_contrasts"), TOPIC_CONTRASTS).to_pylist()
    k = reports_params.lda.num_topics
    zhou = [r for r in contrasts if r["group"] == "周恩来"]
    assert len(zhou) == k and all(r["n_docs"] == 3 for r in zhou)
    assert all(r["ci_low"] <= r["diff"] <= r["ci_high"] for r in contrasts)
    assert all(r["diff"] == pytest.approx(r["mean_group"] - r["mean_rest"], abs=2e-6) for r in zhou)
    trends = read_table(reports_run.table("topic_trends"), TOPIC_TRENDS).to_pylist()
    periods = sorted({r["period"] for r in trends})
    years = ["1954", "1957", "1959", "1978", "1985", "1998", "2008", "2010", "2015", "2017"]
    assert periods == years
    assert all(r["few_docs"] for r in trends)  # one report a year: every year is marked
    for period in periods:
        assert sum(r["mean"] for r in trends if r["period"] == period) == pytest.approx(1, abs=1e-4)


def test_topic_kwic_lines_show_each_topics_top_terms(reports_run):
    lines = read_table(reports_run.table("topic_kwic"), TOPIC_KWIC).to_pylist()
    assert lines and {r["topic"] for r in lines} <= set(range(4))
    assert all(r["title"] for r in lines)
    texts = {
        r["doc_id"]: r["text"]
        for r in read_table(reports_run.table("clean"), compare.kwic.CLEAN).to_pylist()
    }
    for r in lines:
        text = texts[r["doc_id"]]
        assert text[r["start"] : r["start"] + len(r["term"])] == r["term"]


def test_compare_repeats_byte_for_byte(reports_run, reports_params, tmp_path):
    import shutil

    from pipeline.io import Paths

    copy = Paths.under(reports_run.raw, tmp_path)
    for name in ("documents", "clean", "tokens", "vocabulary", "doc_terms", "doc_topics"):
        shutil.copy(reports_run.table(name), copy.table(name))
    shutil.copy(reports_run.table("topic_terms"), copy.table("topic_terms"))
    compare.main(reports_params, copy)
    for name in ("compare_groups", "keyness", "topic_contrasts", "topic_trends", "topic_kwic"):
        assert copy.table(name).read_bytes() == reports_run.table(name).read_bytes(), name


def test_the_sample_has_no_column_worth_comparing(sample_run):
    """One file of five speeches, one date: nothing to set apart, and the tables say so."""
    groups = read_table(sample_run.table("compare_groups"), COMPARE_GROUPS).to_pylist()
    assert {(g["column"], g["group"], g["n_docs"], g["status"]) for g in groups} == {
        ("decade", "2020s", 5, "alone"),
        ("year", "2022", 5, "alone"),
        ("source", "womens_federation_work_meeting_speeches.txt", 5, "alone"),
    }
    assert read_table(sample_run.table("keyness"), KEYNESS).num_rows == 0
    assert read_table(sample_run.table("topic_trends"), TOPIC_TRENDS).num_rows > 0
    assert read_table(sample_run.table("topic_kwic"), TOPIC_KWIC).num_rows > 0


def test_the_fast_p_value_is_scipys():
    from scipy.stats import chi2

    from pipeline.topics.keyness import chi2_sf_1

    x = np.array([0.0, 0.5, 3.841459, 10.0, 50.0, 700.0])
    assert chi2_sf_1(x) == pytest.approx(chi2.sf(x, 1), rel=1e-12, abs=1e-300)
    assert chi2_sf_1(np.array([3.841459]))[0] == pytest.approx(0.05, abs=1e-7)


def test_a_group_without_a_rest_to_set_it_against_is_alone():
    # One document (two paragraphs) in one group: even named in compare.columns, with
    # min_docs 1, there is nothing to set it against.
    units, per_document = compare.units_of(["a0", "a1"], _documents())
    params = CompareParams(columns=("source",), min_docs=1)
    g = compare.grouping(per_document, units, "source", params)
    assert g.names == [] and g.summary.column("status").to_pylist() == ["alone"]
    assert g.codes.tolist() == [len(g.names)]  # the code of "other": in no compared group


def test_no_dates_give_no_trend():
    units, per_document = _units()
    undated = per_document.set_column(
        per_document.column_names.index("date"),
        "date",
        pa.nulls(per_document.num_rows, pa.date32()),
    )
    shares = np.full((units.n_documents, 2), 0.5)
    table = compare.trends_table(undated, shares, CompareParams(), np.random.default_rng(0))
    assert table.num_rows == 0
    assert "decade" not in compare.candidate_columns(undated)
