"""Spun text: the spin score of clean.parquet (pipeline/text/spin.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.clean import clean
from pipeline.config import CleanParams, ConfigError, params_from_dict
from pipeline.io import Paths
from pipeline.schemas import KEPT, SPUN
from pipeline.text import spin
from pipeline.text.rules import Replacements, Rules
from pipeline.text.spin import (
    BigramReference,
    SpinScorer,
    bigram_codes,
    dictionary_bigrams,
    rare_bigrams,
    spin_scores,
)
from tests.conftest import table

PARAMS = CleanParams(replacements=None, boilerplate=None, deduplicate=False, workers=1)


def test_sample_first_speech_is_flagged_and_the_others_are_not(sample_run: Paths):
    clean_table = pq.read_table(sample_run.table("clean")).to_pylist()
    parts = pq.read_table(sample_run.table("documents"), columns=["part"]).column("part")
    by_part: dict[str, list[dict]] = {}
    for row, part in zip(clean_table, parts.to_pylist(), strict=True):
        by_part.setdefault(part, []).append(row)
    assert sorted(by_part) == ["1", "2", "3", "4", "5"]
    for part, rows in by_part.items():
        flagged = [r["reason"] is not None and "spun" in r["reason"] for r in rows]
        assert all(r["status"] == KEPT for r in rows)
        if part == "1":  # 平易近 for 民, 年夜 for 大, 经由过程 for 通过 ...
            assert all(flagged) and min(r["spin_score"] for r in rows) >= 2.0
        else:
            assert not any(flagged) and max(r["spin_score"] for r in rows) == 0.0


def test_known_swaps_count_per_hundred_ideographs():
    # 400 ideographs with 2 swaps: 0.5; 100 with 2: 2.0. Too few documents for the statistics.
    assert spin_scores([2, 2, 0], [400, 100, 100], [0, 0, 90], [399, 99, 99]).tolist() == [
        0.5,
        2.0,
        0.0,
    ]


def test_statistical_signal_flags_an_outlier_without_any_list():
    rng = np.random.default_rng(0)
    shares = rng.normal(0.12, 0.02, size=40).clip(0.01, 0.3)
    bigrams = np.full(41, 1000)
    rare = np.append(np.round(shares * 1000), 400)  # the last one: 40% rare bigrams
    scores = spin_scores(np.zeros(41), np.full(41, 1001), rare, bigrams)
    assert scores[-1] >= 1.0
    assert (scores[:-1] < 1.0).all()
    # The same with fewer than MIN_UNITS documents: no spread to compare with, no signal.
    few = spin_scores(np.zeros(5), np.full(5, 1001), rare[-5:], bigrams[-5:])
    assert few.tolist() == [0.0] * 5


def test_short_documents_do_not_enter_the_statistics():
    n = spin.MIN_UNITS + 5
    bigrams = np.full(n, 1000)
    bigrams[-1] = spin.MIN_BIGRAMS - 1
    rare = np.append(np.arange(n - 1) % 7 + 100, spin.MIN_BIGRAMS - 1)  # all rare, but short
    assert spin_scores(np.zeros(n), np.full(n, 1001), rare, bigrams)[-1] == 0.0


def test_bigram_codes_skip_pairs_that_are_not_two_ideographs():
    assert bigram_codes("中文a字字").size == 2  # 中文, 字字
    assert bigram_codes("").size == 0
    assert rare_bigrams(bigram_codes("中文字"), bigram_codes("中文")) == 1


def test_dictionary_bigrams_are_inside_words_only():
    common = dictionary_bigrams()
    assert rare_bigrams(bigram_codes("基本国策"), common) == 0  # 基本 本国 国策
    assert rare_bigrams(bigram_codes("根基国策"), common) == 1  # 基国


def test_reference_merges_in_pieces_as_at_once(monkeypatch: pytest.MonkeyPatch):
    docs = [bigram_codes(t) for t in ["甲乙丙", "乙丙丁", "甲乙", "戊己", "乙丙"]]
    whole = BigramReference(np.empty(0, np.int64))
    for codes in docs:
        whole.add(codes)
    monkeypatch.setattr(spin, "_MERGE_EVERY", 1)
    pieces = BigramReference(np.empty(0, np.int64))
    for codes in docs:
        pieces.add(codes)
    assert pieces.common().tolist() == whole.common().tolist()
    assert sorted(whole.common().tolist()) == sorted(bigram_codes("甲乙丙").tolist())


def test_a_unit_split_over_two_pieces_counts_as_one_document():
    scorer = SpinScorer(np.empty(0, np.int64))
    scorer.gather(["p"], ["甲乙"], [True])
    scorer.gather(["p", "q"], ["甲乙", "丙丁"], [True, True])
    scorer.count(["p", "p", "q"], ["甲乙", "甲乙", "丙丁"], [0, 0, 0], [True] * 3)
    # 甲乙 is in one document (p, twice), so it stays rare: p has 2 rare bigrams of 2.
    assert scorer._totals["p"].tolist() == [0, 4, 2, 2]


def _spun_docs():
    words = Replacements((("年夜", "大"),))
    texts = [
        "这是一个年夜会议的年夜报告,年夜家都来了。" * 3,
        "这是一个普通的会议报告,大家都来了。" * 3,
    ]
    return table(doc_id=["a", "b"], text=texts), Rules(replacements=words)


def test_clean_flags_spun_documents_and_keeps_them():
    docs, rules = _spun_docs()
    out = clean(docs, PARAMS, rules).clean.to_pylist()
    assert [r["status"] for r in out] == [KEPT, KEPT]
    assert out[0]["spin_score"] >= 1.0 and "spun" in out[0]["reason"]
    assert out[1]["spin_score"] == 0.0 and out[1]["reason"] is None
    assert "年夜" not in out[0]["text"]


def test_drop_spun_sets_the_status_and_a_high_threshold_flags_nothing():
    docs, rules = _spun_docs()
    dropped = clean(docs, dataclasses.replace(PARAMS, drop_spun=True), rules).clean
    assert dropped.column("status").to_pylist() == [SPUN, KEPT]
    lenient = clean(docs, dataclasses.replace(PARAMS, spin_threshold=99.0), rules).clean
    assert lenient.column("reason").to_pylist() == [None, None]


def test_paragraphs_share_their_parents_score():
    docs, rules = _spun_docs()
    docs = docs.append_column("parent_id", [["p", "p"]])
    scores = clean(docs, PARAMS, rules).clean.column("spin_score").to_pylist()
    assert scores[0] == scores[1] > 0


@pytest.mark.parametrize("value", [0, -1.0])
def test_spin_threshold_must_be_positive(value):
    with pytest.raises(ConfigError, match="clean.spin_threshold"):
        params_from_dict({"clean": {"spin_threshold": value, "replacements": None}})
