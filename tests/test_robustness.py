"""Stage robustness: refits under other segmentations and seeds, matched to the main topics."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import plots
from pipeline.config import ConfigError, Params, RobustnessParams, params_from_dict
from pipeline.io import Paths, read_table
from pipeline.report import report
from pipeline.results import load_results
from pipeline.robustness import (
    main,
    match_topics,
    robustness_rows,
    seed_variants,
    segment_variants,
    similarity_matrix,
    survivors,
    term_sets,
)
from pipeline.schemas import ROBUSTNESS, TOPIC_TERMS, TOPICS


def _terms(topics: list[list[str]]) -> pa.Table:
    rows = [(t, r + 1, w) for t, words in enumerate(topics) for r, w in enumerate(words)]
    return pa.table(
        {
            "topic": pa.array([t for t, _, _ in rows], pa.int32()),
            "rank": pa.array([r for _, r, _ in rows], pa.int32()),
            "term": [w for _, _, w in rows],
            "weight": [0.1] * len(rows),
        }
    )


def test_variants_leave_out_the_main_settings(params: Params):
    settings = RobustnessParams()
    names = segment_variants(params.segment, settings)
    assert list(names) == ["no_hmm", "no_userdict", "nouns_verbs", "phrases"]
    assert names["no_hmm"].hmm is False and names["no_userdict"].userdict is None
    assert names["nouns_verbs"].pos == settings.pos
    assert names["phrases"].phrases_threshold == settings.phrases_threshold
    no_hmm = dataclasses.replace(params.segment, hmm=False)
    assert "no_hmm" not in segment_variants(no_hmm, settings)
    assert seed_variants(1, settings) == {"seed_2": 2}
    assert seed_variants(1, RobustnessParams(variants=("no_hmm",))) == {}


def test_phrases_count_as_their_parts():
    sets = term_sets(_terms([["妇女_权益", "维权"], ["经济"]]), top_n=2)
    assert sets[0] == {"妇女_权益", "妇女", "权益", "维权"}
    main = [{"妇女", "权益"}]
    assert similarity_matrix(main, sets, top_n=2)[0].tolist() == [1.0, 0.0]


def test_matching_is_optimal_not_greedy():
    # Greedy takes 0.9 first and is left with 0.1 (total 1.0); the best total is 0.8 + 0.85.
    similarity = np.array([[0.9, 0.8], [0.85, 0.1]])
    match, value = match_topics(similarity)
    assert match.tolist() == [1, 0] and value.tolist() == [0.8, 0.85]


def test_a_variant_with_fewer_topics_leaves_a_topic_unmatched():
    main = term_sets(_terms([["a", "b"], ["c", "d"], ["e", "f"]]), 2)
    rows = robustness_rows("v", main, ["x", "y", "z"], _terms([["c", "d"]]), ["cd"], 2, 0.5)
    assert rows["match"] == [None, 0, None] and rows["similarity"] == [0.0, 1.0, 0.0]
    assert rows["survives"] == [False, True, False]
    assert ROBUSTNESS.conform(pa.table(rows)).column("match_label").to_pylist() == [
        None,
        "cd",
        None,
    ]


def test_the_main_model_matches_itself_at_one(sample_run: Paths):
    terms = read_table(sample_run.table("topic_terms"), TOPIC_TERMS)
    main = term_sets(terms, 20)
    labels = [f"t{i}" for i in range(len(main))]
    shuffled = terms.set_column(  # the same topics, numbered in reverse
        0, "topic", pa.array([len(main) - 1 - t for t in terms.column("topic").to_pylist()])
    )
    rows = robustness_rows("self", main, labels, shuffled, labels[::-1], 20, 0.5)
    assert rows["similarity"] == [1.0] * len(main)
    assert rows["match"] == list(range(len(main)))[::-1]


@pytest.fixture(scope="module")
def run_copy(sample_run: Paths, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    folder = tmp_path_factory.mktemp("robust") / "run"
    shutil.copytree(sample_run.processed, folder)
    return Paths.under(sample_run.raw, folder)


def test_stage_refits_and_reuses_the_segment_cache(
    params: Params, run_copy: Paths, tmp_path: Path, monkeypatch, caplog
):
    monkeypatch.setenv("ZHTOPICS_SEGMENT_CACHE", str(tmp_path / "cache"))
    settings = RobustnessParams(enabled=True, variants=("no_hmm", "seeds"), seeds=(7,))
    varied = dataclasses.replace(params, robustness=settings)
    with caplog.at_level(logging.INFO, logger="pipeline"):
        main(varied, run_copy)
    first = pq.read_table(run_copy.table("robustness"))
    k = read_table(run_copy.table("topics"), TOPICS).num_rows
    assert first.num_rows == 2 * k
    assert first.column("variant").to_pylist() == ["no_hmm"] * k + ["seed_7"] * k
    assert sorted(first.column("topic").to_pylist()[:k]) == list(range(k))
    assert sorted(first.column("match").to_pylist()[:k]) == list(range(k))  # one to one
    similarity = np.asarray(first.column("similarity").to_pylist())
    assert ((similarity >= 0) & (similarity <= 1)).all() and similarity.mean() > 0.3
    assert "0 from the cache" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline"):
        main(varied, run_copy)
    assert ", 0 segmented" in caplog.text  # the second time every text comes from the cache
    assert pq.read_table(run_copy.table("robustness")).equals(first)
    assert not [p for p in run_copy.processed.iterdir() if p.name.startswith(".robustness")]
    assert survivors(first) == sorted(
        t for t in range(k) if all(first.filter(pa.compute.equal(first["topic"], t))["survives"])
    )


def test_report_draws_the_heat_map(params: Params, run_copy: Paths):
    results = load_results(run_copy)
    if results.robustness is None or results.robustness.num_rows == 0:
        pytest.skip("needs test_stage_refits_and_reuses_the_segment_cache first")
    page = report(results, params.report)["index.html"].decode("utf-8")
    assert "Robustness to segmentation" in page and "survive every variant" in page
    assert "robustness.png" in page or 'alt="similarity of each topic' in page


def test_off_by_default_writes_an_empty_table(params: Params, sample_run: Paths, tmp_path: Path):
    paths = Paths.under(sample_run.raw, tmp_path)
    main(params, paths)
    table = pq.read_table(paths.table("robustness"))
    assert table.num_rows == 0 and table.schema.names == ROBUSTNESS.columns
    assert plots.plot_robustness(table) is not None


def test_plot_marks_topics_that_survive_everywhere():
    table = pa.table(
        {
            "variant": ["a", "a", "b", "b"],
            "topic": pa.array([0, 1, 0, 1], pa.int32()),
            "label": ["x", "y", "x", "y"],
            "match": pa.array([0, 1, 1, 0], pa.int32()),
            "match_label": ["x", "y", "y", "x"],
            "similarity": [0.9, 0.8, 0.7, 0.2],
            "survives": [True, True, True, False],
        }
    )
    fig = plots.plot_robustness(table)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["0: x *", "1: y"]


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"variants": ["no_hmm", "hmm_off"]}, "robustness.variants"),
        ({"seeds": [1, 1]}, "robustness.seeds"),
        ({"min_similarity": 1.5}, "robustness.min_similarity"),
        ({"pos": "n,1"}, "robustness.pos"),
    ],
)
def test_bad_settings_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key):
        params_from_dict({"robustness": values, "clean": {"replacements": None}})
