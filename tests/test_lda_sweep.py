import dataclasses

import numpy as np
import pytest

from pipeline.config import LdaParams, SweepParams
from pipeline.io import Paths, read_json, read_table, usable_cores
from pipeline.lda_sweep import (
    hash_scores,
    lda_sweep,
    main,
    recommend,
    skip_reason,
    split_heldout,
    sweep_fit_params,
    sweep_workers,
    training_rows,
)
from pipeline.schemas import SWEEP
from pipeline.topics.counts import LdaError
from pipeline.topics.terms import stability

PARAMS = LdaParams(  # gensim, as before the defaults became the shipped params.yaml
    engine="gensim",
    alpha="auto",
    eta="symmetric",
    term_weight="one",
    tolerance=None,
    min_token_updates=0,
    threads=1,
    workers=1,
    passes=5,
    iterations=50,
    random_state=7,
    top_n=5,
    coherence_top_n=3,
    sweep=SweepParams(k=(2, 3), seeds=(1, 2), min_stability=0.5, holdout=0.25),
)


@pytest.mark.parametrize("engine", ["gensim", "tomotopy"])
def test_one_row_per_k_and_seed(two_themes, engine):
    params = LdaParams(**{**PARAMS.__dict__, "engine": engine})
    result = lda_sweep(*two_themes, params)
    table = SWEEP.conform(result.table)
    pairs = zip(table.column("k").to_pylist(), table.column("seed").to_pylist(), strict=True)
    assert list(pairs) == [
        (2, 1),
        (2, 2),
        (3, 1),
        (3, 2),
    ]
    for name in ("c_npmi", "c_v", "u_mass", "diversity", "perplexity", "stability"):
        assert all(np.isfinite(table.column(name).to_pylist())), name
    stab = table.column("stability").to_pylist()
    assert all(0 <= s <= 1 for s in stab)
    # Two disjoint themes: two topics come back the same whatever the seed.
    assert stab[0] == pytest.approx(1.0) and stab[1] == pytest.approx(1.0)
    assert result.summary["recommended_k"] in (2, 3)
    assert "stability" in result.summary["rule"]
    assert [row["k"] for row in result.by_k] == [2, 3]


@pytest.mark.parametrize("start_method", [None, "spawn"])
def test_workers_do_not_change_the_table(two_themes, start_method):
    """Fits dealt to two processes (started as lda.start_method says) score as in one."""
    one = lda_sweep(*two_themes, PARAMS)
    settings = {**PARAMS.__dict__, "workers": 2, "start_method": start_method}
    two = lda_sweep(*two_themes, LdaParams(**settings))
    assert one.table.equals(two.table)
    assert one.summary == two.summary


def test_score_fits_keeps_the_order_of_the_fits(two_themes, monkeypatch):
    """Round-robin shares come back in the order asked, whatever process scored them."""
    import pipeline.lda_sweep as sweep_module

    def fake(inputs, k, seed):
        return {"k": k, "seed": seed}

    monkeypatch.setattr(sweep_module, "score_fit", fake)  # forked workers see it too
    fits = [(k, seed) for k in (2, 3, 4) for seed in (1, 2)]
    params = LdaParams(**{**PARAMS.__dict__, "workers": 2, "start_method": "fork"})
    assert [(r["k"], r["seed"]) for r in sweep_module.score_fits(None, fits, params)] == fits


def test_tables_read_in_pieces_give_the_same_sweep(two_themes, tmp_path):
    """As main runs it: doc_terms and tokens read from their files a few rows at a time
    (tokens twice), the same table as from whole tables."""
    from pipeline.io import TableFile, write_table
    from pipeline.schemas import DOC_TERMS, TOKENS

    vocabulary, doc_terms, tokens = two_themes
    write_table(doc_terms, tmp_path / "doc_terms.parquet", DOC_TERMS)
    write_table(tokens, tmp_path / "tokens.parquet", TOKENS)
    pieces = lda_sweep(
        vocabulary,
        TableFile(tmp_path / "doc_terms.parquet", DOC_TERMS, 7, ["doc_id", "term_id", "count"]),
        TableFile(tmp_path / "tokens.parquet", TOKENS, 3),
        PARAMS,
    )
    whole = lda_sweep(*two_themes, PARAMS)
    assert pieces.table.equals(whole.table)
    assert pieces.summary == whole.summary


def test_stability_is_best_match_jaccard():
    a = [{1, 2}, {3, 4}]
    assert stability(a, [{3, 4}, {1, 2}]) == 1.0
    assert stability(a, [{1, 5}, {6, 7}]) == pytest.approx((1 / 3 + 0) / 2)


def test_recommendation_rule():
    means = [
        {"k": 2, "c_npmi": 0.1, "stability": 0.9},
        {"k": 3, "c_npmi": 0.3, "stability": 0.6},
        {"k": 4, "c_npmi": 0.5, "stability": 0.2},
    ]
    assert recommend(means, 0.5) == 3  # k=4 is more coherent but unstable
    assert recommend(means, 0.95) == 2  # none stable enough: the most stable
    tie = [{"k": 5, "c_npmi": 0.3, "stability": 1.0}, {"k": 6, "c_npmi": 0.3, "stability": 1.0}]
    assert recommend(tie, 0.5) == 5


def test_heldout_split_is_stable_and_never_empty():
    ids = [f"doc{i}" for i in range(50)]
    mask = split_heldout(ids, 0.2)
    assert 0 < mask.sum() < 50
    np.testing.assert_array_equal(mask, split_heldout(list(ids), 0.2))
    assert split_heldout(ids[:3], 0.01).sum() == 1
    with pytest.raises(LdaError, match="too few"):
        split_heldout(ids[:2], 0.9)


@pytest.mark.parametrize(
    ("num_topics", "run", "fits"),
    [("auto", "auto", True), (8, "auto", False), (8, "always", True), (8, "never", False)],
)
def test_the_sweep_fits_only_when_the_run_uses_it_or_is_asked_to(num_topics, run, fits):
    params = LdaParams(num_topics=num_topics, sweep=SweepParams(run=run))
    reason = skip_reason(params)
    assert (reason is None) == fits
    if num_topics == 8 and run == "auto":
        assert "lda.num_topics is 8" in reason and "lda.sweep.run: always" in reason


def test_a_skipped_sweep_writes_valid_empty_outputs_that_say_why(tmp_path, params):
    """No input is read and no model fitted; lda with num_topics auto refuses the result."""
    from pipeline.lda import resolve_num_topics

    paths = Paths.under(tmp_path / "raw", tmp_path / "out")  # no vocabulary or tokens at all
    fixed = dataclasses.replace(params, lda=dataclasses.replace(params.lda, num_topics=12))
    main(fixed, paths)
    table = read_table(paths.table("sweep"), SWEEP)
    assert table.num_rows == 0 and table.schema.names == SWEEP.columns
    summary = read_json(paths.metrics / "sweep.json")
    assert summary["recommended_k"] is None and "lda.num_topics is 12" in summary["skipped"]
    assert read_json(paths.metrics / "sweep_plot.json") == []
    with pytest.raises(LdaError, match="fitted no model"):
        resolve_num_topics(params.lda, paths)


def test_every_core_by_default_never_more_than_the_threads_allow():
    assert sweep_workers(LdaParams(workers=0)) == usable_cores()
    threads = SweepParams(threads=usable_cores() + 1)
    assert sweep_workers(LdaParams(workers=0, sweep=threads)) == 1
    assert sweep_workers(LdaParams(workers=3)) == 3


def test_sweep_fits_use_the_sweep_threads_not_the_final_models(two_themes, monkeypatch):
    import pipeline.lda_sweep as sweep_module

    seen = []
    real = sweep_module.engines.fit

    def fit(counts, k, params, seed, **kw):
        seen.append(params.threads if kw.get("threads") is None else kw["threads"])
        return real(counts, k, params, seed, **kw)

    monkeypatch.setattr(sweep_module.engines, "fit", fit)
    params = LdaParams(**{**PARAMS.__dict__, "threads": 2, "engine": "tomotopy"})
    lda_sweep(*two_themes, params)
    assert seen == [1, 1, 1, 1]


def test_the_sweep_leaves_background_terms_out_and_says_so(two_themes):
    import pyarrow as pa

    vocabulary, doc_terms, tokens = two_themes
    flags = [False] * vocabulary.num_rows
    flags[0] = True  # as if the tfidf stage had flagged the first term
    flagged = vocabulary.set_column(
        vocabulary.schema.get_field_index("is_background"), "is_background", pa.array(flags)
    )
    result = lda_sweep(flagged, doc_terms, tokens, PARAMS)
    assert result.summary["background_terms_left_out"] == 1
    assert result.summary["background"] == "drop" and result.summary["term_weight"] == "one"
    table = SWEEP.conform(result.table)
    assert all(np.isfinite(table.column("perplexity").to_pylist()))
    kept = lda_sweep(
        flagged, doc_terms, tokens, LdaParams(**{**PARAMS.__dict__, "background": "include"})
    )
    assert kept.summary["background_terms_left_out"] == 0
    assert not table.equals(SWEEP.conform(kept.table))


def test_sweep_fits_sample_a_share_of_the_final_models_work_small_corpora_all_of_it():
    params = LdaParams(
        iterations=600, passes=30, min_token_updates=200_000_000, sweep=SweepParams()
    )
    big = sweep_fit_params(params, 2_000_000)  # 5e7 updates need 25 sweeps: the share rules
    assert (big.iterations, big.passes, big.min_token_updates) == (150, 8, 50_000_000)
    mid = sweep_fit_params(params, 200_000)  # 5e7 updates need 250 sweeps
    assert mid.iterations == 250
    small = sweep_fit_params(params, 5_000)  # cheap: every sweep
    assert small.iterations == 600
    floor = sweep_fit_params(dataclasses.replace(params, iterations=200), 10**9)
    assert floor.iterations == 100  # two convergence windows
    whole = dataclasses.replace(params, sweep=SweepParams(work_share=1.0))
    assert sweep_fit_params(whole, 2_000_000) is whole


def test_training_rows_take_a_hashed_sample_past_max_tokens_in_reading_order():
    ids = [f"doc{i}" for i in range(200)]
    scores = hash_scores(ids)
    heldout = split_heldout(ids, 0.2)
    tokens = np.full(200, 100)
    every = training_rows(scores, heldout, tokens, None)
    np.testing.assert_array_equal(every, np.flatnonzero(~heldout))
    np.testing.assert_array_equal(training_rows(scores, heldout, tokens, 10**6), every)
    rows = training_rows(scores, heldout, tokens, 5_000)
    assert len(rows) == 50 and np.all(np.diff(rows) > 0) and not heldout[rows].any()
    # The lowest hashes: the same documents in any corpus that holds them.
    assert set(rows) == set(every[np.argsort(scores[every], kind="stable")][:50])


@pytest.mark.parametrize(
    "key, value", [("work_share", 0.0), ("work_share", 1.5), ("max_tokens", 0)]
)
def test_bad_sweep_sampling_settings_are_named(key, value):
    with pytest.raises(ValueError, match=f"lda.sweep.{key}"):
        SweepParams(**{key: value})


def test_the_sweep_reports_its_sample_and_sampling(two_themes):
    params = dataclasses.replace(
        PARAMS, engine="tomotopy", sweep=dataclasses.replace(PARAMS.sweep, max_tokens=50)
    )
    summary = lda_sweep(*two_themes, params).summary
    assert summary["training_documents"] < summary["of_documents"]
    assert 50 <= summary["training_tokens"] < summary["of_tokens"]
    assert summary["work_share"] == 0.25 and summary["iterations"] == 50
