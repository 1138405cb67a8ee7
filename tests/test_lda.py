import datetime
import json

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from pipeline.config import ConfigError, LdaParams, TfidfParams, params_from_dict
from pipeline.lda import QUALITY_METRICS, lda
from pipeline.schemas import (
    DOC_TOPICS,
    REPRESENTATIVE_DOCS,
    TOPIC_PREVALENCE,
    TOPIC_TERM_RANKINGS,
    TOPIC_TERMS,
    TOPICS,
    SchemaError,
)
from pipeline.tfidf import tfidf
from pipeline.topics import prevalence as prevalence_module
from pipeline.topics.background import BackgroundError
from pipeline.topics.counts import LdaError
from pipeline.topics.model_store import load_model, save_model
from pipeline.topics.prevalence import topic_prevalence
from pipeline.topics.representative import representative_docs, snippet
from pipeline.topics.terms import rank_terms, topic_diversity
from tests.conftest import FIXTURES

# gensim, as before the defaults became the shipped params.yaml (tomotopy).
PARAMS = LdaParams(
    num_topics=2,
    engine="gensim",
    alpha="auto",
    eta="symmetric",
    term_weight="one",  # counts: the fixtures' shares below are token shares
    tolerance=None,
    min_token_updates=0,
    threads=1,
    passes=20,
    iterations=100,
    random_state=7,
    top_n=5,
    label_terms=2,
    coherence_top_n=3,
)


def _assert_two_themes_split(result) -> None:
    """Tables in their schemas, mixes summing to 1, and each theme in a topic of its own."""
    DOC_TOPICS.conform(result.doc_topics)
    TOPIC_TERMS.conform(result.topic_terms)
    TOPICS.conform(result.topics)
    weights = np.array(result.doc_topics.column("weight").to_pylist()).reshape(40, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    dominant = weights.argmax(axis=1)
    assert set(dominant[0::2]) != set(dominant[1::2])
    assert len(set(dominant[0::2])) == 1 and len(set(dominant[1::2])) == 1


def test_two_themes_become_two_topics(two_themes):
    result = lda(*two_themes, PARAMS)
    _assert_two_themes_split(result)
    assert result.topics.column("prevalence").to_pylist() == pytest.approx([0.5, 0.5], abs=0.05)
    tops = [{r["term"] for r in result.topic_terms.to_pylist() if r["topic"] == k} for k in (0, 1)]
    assert not tops[0] & tops[1]
    assert result.metrics["coherence_c_npmi"] > 0


def test_topic_terms_and_labels(two_themes):
    result = lda(*two_themes, PARAMS)
    rows = result.topic_terms.to_pylist()
    assert len(rows) == 2 * PARAMS.top_n
    first = [r for r in rows if r["topic"] == 0]
    assert [r["rank"] for r in first] == [1, 2, 3, 4, 5]
    assert all(a["weight"] >= b["weight"] for a, b in zip(first, first[1:], strict=False))
    rankings = TOPIC_TERM_RANKINGS.conform(result.term_rankings).to_pylist()
    assert {r["measure"] for r in rankings} == {"probability", "relevance", "frex"}
    by_relevance = [r["term"] for r in rankings if r["topic"] == 0 and r["measure"] == "relevance"]
    label = result.topics.column("label").to_pylist()[0]
    assert label == "·".join(by_relevance[:2])
    probability = [r for r in rankings if r["topic"] == 0 and r["measure"] == "probability"]
    assert [r["term"] for r in probability] == [r["term"] for r in first]


def test_relevance_and_frex_prefer_exclusive_terms():
    """A term frequent in every topic ranks first by probability but not by relevance or FREX."""
    phi = np.array([[0.5, 0.3, 0.1, 0.1], [0.5, 0.1, 0.3, 0.1]])
    ranked = rank_terms(phi, np.array([100.0, 20.0, 20.0, 10.0]), LdaParams(frex_weight=0.7))
    assert ranked["probability"][0][0, 0] == 0
    assert ranked["relevance"][0][0, 0] == 1
    assert ranked["frex"][0][0, 0] == 1
    assert ranked["frex"][0][1, 0] == 2
    lam1 = rank_terms(phi, np.array([100.0, 20.0, 20.0, 10.0]), LdaParams(relevance_lambda=1.0))
    np.testing.assert_array_equal(lam1["relevance"][0], lam1["probability"][0])


def test_same_seed_same_model_other_seed_other_model(two_themes):
    a = lda(*two_themes, PARAMS)
    b = lda(*two_themes, PARAMS)
    assert a.doc_topics.equals(b.doc_topics) and a.topic_terms.equals(b.topic_terms)
    assert a.metrics == b.metrics
    c = lda(*two_themes, LdaParams(**{**PARAMS.__dict__, "random_state": 8}))
    assert not a.doc_topics.equals(c.doc_topics)


def test_metrics_are_finite(two_themes):
    metrics = lda(*two_themes, PARAMS).metrics
    for key in QUALITY_METRICS:
        assert np.isfinite(metrics[key]), key
    assert metrics["num_documents"] == 40


@pytest.mark.parametrize("engine", ["gensim", "tomotopy"])
def test_saved_model_loads(two_themes, tmp_path, engine):
    result = lda(*two_themes, LdaParams(**{**PARAMS.__dict__, "engine": engine}))
    save_model(result.fitted, result.terms, tmp_path / "lda", {"segment": {"hmm": True}})
    loaded = load_model(tmp_path / "lda")
    np.testing.assert_array_equal(loaded.phi, result.fitted.phi)
    assert loaded.terms == result.terms
    assert loaded.meta["engine"] == engine and loaded.meta["format_version"] == 1
    assert loaded.meta["settings"] == {"segment": {"hmm": True}}
    assert not list(tmp_path.glob(".lda.*"))
    native = "lda.model" if engine == "gensim" else "tomotopy.bin"
    assert (tmp_path / "lda" / native).is_file()


def test_gensim_model_file_still_loads_with_gensim(two_themes, tmp_path):
    from gensim.models import LdaModel

    result = lda(*two_themes, PARAMS)
    save_model(result.fitted, result.terms, tmp_path / "lda")
    loaded = LdaModel.load(str(tmp_path / "lda" / "lda.model"))
    np.testing.assert_allclose(loaded.get_topics(), result.fitted.phi)


def test_unknown_model_format_is_refused(two_themes, tmp_path):
    result = lda(*two_themes, PARAMS)
    save_model(result.fitted, result.terms, tmp_path / "lda")
    meta = json.loads((tmp_path / "lda" / "model.json").read_text(encoding="utf-8"))
    meta["format_version"] = 99
    (tmp_path / "lda" / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(LdaError, match="format 99"):
        load_model(tmp_path / "lda")


def test_too_few_documents(two_themes):
    vocabulary, doc_terms, tokens = two_themes
    one = doc_terms.filter(pa.compute.equal(doc_terms.column("doc_id"), "d00"))
    with pytest.raises(LdaError, match="at least 2"):
        lda(vocabulary, one, tokens, PARAMS)


def test_missing_column(two_themes):
    vocabulary, doc_terms, tokens = two_themes
    with pytest.raises(SchemaError, match="count"):
        lda(vocabulary, doc_terms.drop(["count"]), tokens, PARAMS)


def test_topic_diversity():
    assert topic_diversity(np.array([[0, 1], [2, 3]])) == 1.0
    assert topic_diversity(np.array([[0, 1], [0, 1]])) == 0.5


def test_vocabulary_ids_must_follow_row_order(two_themes):
    vocabulary, doc_terms, tokens = two_themes
    shuffled = vocabulary.take(list(range(vocabulary.num_rows))[::-1])
    with pytest.raises(LdaError, match="term_id"):
        lda(shuffled, doc_terms, tokens, PARAMS)


TOMOTOPY = LdaParams(
    **{**PARAMS.__dict__, "engine": "tomotopy", "iterations": 200, "alpha": 0.1, "eta": 0.01}
)


def test_tomotopy_engine_writes_the_same_tables(two_themes):
    result = lda(*two_themes, TOMOTOPY)
    _assert_two_themes_split(result)
    assert result.fitted.convergence and "ll_per_word" in result.fitted.convergence[-1]


@pytest.mark.parametrize("alpha", ["auto", "asymmetric", "symmetric"])
def test_tomotopy_priors(two_themes, alpha):
    result = lda(*two_themes, LdaParams(**{**TOMOTOPY.__dict__, "alpha": alpha}))
    assert result.fitted.alpha.shape == (2,)
    if alpha == "asymmetric":
        assert result.fitted.alpha[0] > result.fitted.alpha[1]


def test_same_threads_same_tables_whatever_the_workers(two_themes):
    """Workers run independent fits only; tomotopy's threads are part of the model."""
    base = lda(*two_themes, LdaParams(**{**TOMOTOPY.__dict__, "threads": 2}))
    for workers in (1, 3):
        other = lda(
            *two_themes, LdaParams(**{**TOMOTOPY.__dict__, "threads": 2, "workers": workers})
        )
        assert other.doc_topics.equals(base.doc_topics)
        assert other.topic_terms.equals(base.topic_terms)
        assert other.topics.equals(base.topics)


def test_tomotopy_stops_once_converged_but_not_before_min_token_updates(two_themes):
    """40 documents x 30 tokens: 1,200 token updates a sweep, a reading every 10 sweeps."""
    fixed = lda(*two_themes, LdaParams(**{**TOMOTOPY.__dict__, "iterations": 500}))
    assert len(fixed.fitted.convergence) == 50
    early = LdaParams(**{**TOMOTOPY.__dict__, "iterations": 500, "tolerance": 0.01})
    stopped = lda(*two_themes, early)
    assert len(stopped.fitted.convergence) < 50
    assert lda(*two_themes, early).doc_topics.equals(stopped.doc_topics)
    # The same trace until it stops: converging only cuts the chain short.
    n = len(stopped.fitted.convergence)
    assert stopped.fitted.convergence == fixed.fitted.convergence[:n]
    patient = LdaParams(**{**early.__dict__, "min_token_updates": 1200 * 400})
    assert len(lda(*two_themes, patient).fitted.convergence) >= 40


def test_tomotopy_keeps_the_trained_topics_not_the_sampler_state(two_themes):
    fitted = lda(*two_themes, TOMOTOPY).fitted
    assert len(fitted.native.docs) == 0  # the documents' state is freed after the fit
    used = np.asarray([int(w) for w in fitted.native.used_vocabs])
    for topic in range(fitted.phi.shape[0]):
        assert np.allclose(fitted.native.get_topic_word_dist(topic), fitted.phi[topic, used])


def test_auto_needs_a_k(two_themes):
    with pytest.raises(LdaError, match="lda_sweep"):
        lda(*two_themes, LdaParams(**{**PARAMS.__dict__, "num_topics": "auto"}))
    assert (
        lda(*two_themes, LdaParams(**{**PARAMS.__dict__, "num_topics": "auto"}), 3).metrics[
            "num_topics"
        ]
        == 3
    )


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"engine": "mallet"}, "lda.engine"),
        ({"num_topics": "many"}, "lda.num_topics"),
        ({"engine": "tomotopy", "eta": "auto"}, "lda.eta"),
        ({"threads": 0}, "lda.threads"),
        ({"relevance_lambda": 1.5}, "lda.relevance_lambda"),
        ({"sweep": {"k": []}}, "lda.sweep.k"),
        ({"sweep": {"k": [4, 4]}}, "lda.sweep.k"),
        ({"sweep": {"seeds": "1"}}, "lda.sweep.seeds"),
        ({"sweep": {"kk": [2]}}, "lda.sweep.kk"),
        ({"prevalence_columns": "date"}, "lda.prevalence_columns"),
        ({"date_bucket": "week"}, "lda.date_bucket"),
        ({"tolerance": 0}, "lda.tolerance"),
        ({"tolerance": "small"}, "lda.tolerance"),
        ({"min_token_updates": -1}, "lda.min_token_updates"),
        ({"term_weight": "bm25"}, "lda.term_weight"),
        ({"term_weight": "IDF"}, "lda.term_weight"),
        ({"background": "remove"}, "lda.background"),
        ({"start_method": "thread"}, "lda.start_method"),
    ],
)
def test_bad_lda_settings_name_the_key(values, needle):
    raw = {
        "clean": {"replacements": None},
        "segment": {"userdict": None, "stopwords": None},
        "lda": values,
    }
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        params_from_dict(raw)


def test_nested_sweep_settings_and_overrides(tmp_path):
    from pipeline.config import load_params
    from tests.conftest import ROOT

    params = load_params(ROOT / "params.yaml", ["lda.sweep.k=[3, 5]", "lda.num_topics=auto"])
    assert params.lda.sweep.k == (3, 5)
    assert params.lda.num_topics == "auto"


def _meta(ids):
    documents = pa.table(
        {
            "doc_id": ids,
            "title": [f"title {i}" if i % 3 else None for i in range(len(ids))],
            "date": pa.array(
                [
                    datetime.date(2020 + i % 2, 1 + i % 12, 1) if i % 5 else None
                    for i in range(len(ids))
                ],
                pa.date32(),
            ),
            "source": ["a.txt" if i < 20 else "b.txt" for i in range(len(ids))],
        }
    )
    clean = pa.table(
        {"doc_id": ids, "text": [f"文本  {i}\n" + "字" * 200 for i in range(len(ids))]}
    )
    return documents, clean


def test_representative_docs(two_themes):
    result = lda(*two_themes, PARAMS)
    documents, clean = _meta(result.doc_ids)
    params = LdaParams(**{**PARAMS.__dict__, "representative_docs": 3, "snippet_chars": 10})
    table = REPRESENTATIVE_DOCS.conform(
        representative_docs(result.doc_ids, result.fitted.theta, documents, clean, params)
    )
    rows = table.to_pylist()
    assert len(rows) == 2 * 3
    for topic in (0, 1):
        mine = [r for r in rows if r["topic"] == topic]
        assert [r["rank"] for r in mine] == [1, 2, 3]
        assert all(a["weight"] >= b["weight"] for a, b in zip(mine, mine[1:], strict=False))
    assert rows[0]["snippet"].startswith("文本 ") and rows[0]["snippet"].endswith("…")
    assert len(rows[0]["snippet"]) == 11
    assert snippet("短", 10) == "短"


def test_snippet_starts_near_the_topic_terms():
    text = "开头" * 50 + "足球比赛" + "结尾" * 50
    piece = snippet(text, 20, ["股票", "足球"])
    assert "足球" in piece and piece.startswith("…") and piece.endswith("…")
    assert len(piece) == 22
    assert snippet(text, 20, ["火星"]).startswith("开头")
    assert snippet("  a\n b  ", 10) == "a b"


@pytest.mark.parametrize("bucket", ["year", "month"])
def test_topic_prevalence_by_date_and_source(two_themes, bucket):
    result = lda(*two_themes, PARAMS)
    documents, _ = _meta(result.doc_ids)
    params = LdaParams(**{**PARAMS.__dict__, "date_bucket": bucket, "bootstrap": 50})
    table = TOPIC_PREVALENCE.conform(
        topic_prevalence(result.doc_ids, result.fitted.theta, documents, params)
    )
    rows = table.to_pylist()
    assert {r["column"] for r in rows} == {bucket, "source"}
    for column in (bucket, "source"):
        mine = [r for r in rows if r["column"] == column]
        assert sum(r["n_docs"] for r in mine) == 40 * 2  # every document, once per topic
    assert "(missing)" in {r["group"] for r in rows if r["column"] == bucket}
    if bucket == "year":
        assert {r["group"] for r in rows if r["column"] == "year"} == {"2020", "2021", "(missing)"}
    else:
        assert "2021-02" in {r["group"] for r in rows}
    for r in rows:
        assert r["ci_low"] <= r["mean"] + 1e-12 and r["mean"] <= r["ci_high"] + 1e-12
    again = topic_prevalence(result.doc_ids, result.fitted.theta, documents, params)
    assert again.equals(table)


def test_prevalence_resamples_in_blocks_for_large_groups(two_themes, monkeypatch):
    """Groups too large for one draw of all resamples are resampled a block at a time:
    deterministic, and the intervals stay intervals around the mean, close to one draw's."""
    result = lda(*two_themes, PARAMS)
    documents, _ = _meta(result.doc_ids)
    params = LdaParams(**{**PARAMS.__dict__, "bootstrap": 400})
    whole = topic_prevalence(result.doc_ids, result.fitted.theta, documents, params)
    monkeypatch.setattr(prevalence_module, "BOOTSTRAP_BLOCK", 50)  # a few resamples per block
    blocks = topic_prevalence(result.doc_ids, result.fitted.theta, documents, params)
    assert blocks.equals(topic_prevalence(result.doc_ids, result.fitted.theta, documents, params))
    assert blocks.column("mean").equals(whole.column("mean"))
    for r in blocks.to_pylist():
        assert r["ci_low"] <= r["mean"] + 1e-12 and r["mean"] <= r["ci_high"] + 1e-12
    for name in ("ci_low", "ci_high"):
        a, b = (t.column(name).to_numpy() for t in (blocks, whole))
        assert np.abs(a - b).max() < 0.1


def test_prevalence_by_a_missing_column_names_the_setting(two_themes):
    result = lda(*two_themes, PARAMS)
    documents, _ = _meta(result.doc_ids)
    params = LdaParams(**{**PARAMS.__dict__, "prevalence_columns": ("label",)})
    with pytest.raises(LdaError, match="lda.prevalence_columns"):
        topic_prevalence(result.doc_ids, result.fitted.theta, documents, params)


def test_prevalence_by_a_label_column_of_tabular_input(two_themes):
    result = lda(*two_themes, PARAMS)
    documents, _ = _meta(result.doc_ids)
    documents = documents.append_column("label", pa.array(["体育", "财经"] * 20))
    params = LdaParams(**{**PARAMS.__dict__, "prevalence_columns": ("label",), "bootstrap": 20})
    rows = topic_prevalence(result.doc_ids, result.fitted.theta, documents, params).to_pylist()
    assert {(r["column"], r["group"]) for r in rows} == {("label", "体育"), ("label", "财经")}
    # The themes alternate like the labels: each label's documents lean to one topic.
    sport = sorted((r for r in rows if r["group"] == "体育"), key=lambda r: r["topic"])
    assert max(r["mean"] for r in sport) > 0.9


def test_max_ranks_equal_scipy_rankdata_max_with_ties():
    from scipy.stats import rankdata

    from pipeline.topics.terms import _max_ranks

    scores = np.round(np.random.default_rng(1).random((4, 500)), 2)  # many ties
    ours = np.stack([_max_ranks(row) for row in scores])
    np.testing.assert_array_equal(ours, rankdata(scores, method="max", axis=1))


def test_top_terms_sort_by_score_then_id_like_a_full_sort():
    from pipeline.topics.terms import top_terms

    scores = np.round(np.random.default_rng(2).random((5, 400)), 2)  # ties at every cut
    ids = np.arange(400)
    full = np.stack([np.lexsort((ids, -row)) for row in scores])
    for n in (1, 7, 30, 400, 999):
        np.testing.assert_array_equal(top_terms(scores, n), full[:, :n])


@pytest.fixture(scope="module")
def two_themes_in_a_genre() -> tuple[pa.Table, pa.Table, pa.Table]:
    """The two themes, each document also saying 本院 and 依法 once, and one document of
    nothing but them: the genre's formula, flagged background by the tfidf stage."""
    themes = json.loads((FIXTURES / "two_themes.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    ids, docs = [], []
    for n in range(40):
        ids.append(f"d{n:02d}")
        docs.append(["本院", *rng.choice(themes[n % 2], size=30).tolist(), "依法"])
    ids.append("d40")
    docs.append(["本院", "依法"])
    tokens = pa.table({"doc_id": ids, "tokens": docs, "n_tokens": [len(d) for d in docs]})
    result = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0, background_min_df=0.9))
    flagged = result.vocabulary.filter(result.vocabulary.column("is_background"))
    assert sorted(flagged.column("term").to_pylist()) == ["依法", "本院"]
    return result.vocabulary, result.doc_terms, tokens


@pytest.mark.parametrize("engine", ["gensim", "tomotopy"])
def test_background_terms_are_left_out_of_the_model(two_themes_in_a_genre, engine, tmp_path):
    params = LdaParams(**{**PARAMS.__dict__, "engine": engine})
    dropped = lda(*two_themes_in_a_genre, params)
    assert dropped.metrics["background_terms_left_out"] == 2
    save_model(dropped.fitted, dropped.terms, tmp_path / "model", left_out=dropped.left_out)
    assert sorted(load_model(tmp_path / "model").meta["left_out_terms"]) == ["依法", "本院"]
    tops = set(dropped.topic_terms.column("term").to_pylist())
    assert not tops & {"本院", "依法"}
    ranked = dropped.term_rankings.column("term").to_pylist()
    assert not set(ranked) & {"本院", "依法"}
    weights = np.array(dropped.doc_topics.column("weight").to_pylist()).reshape(41, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    dominant = weights[:40].argmax(axis=1)
    assert len(set(dominant[0::2])) == 1 and set(dominant[0::2]) != set(dominant[1::2])
    # The document of formula only keeps its row, with the prior's mix.
    assert dropped.doc_ids[-1] == "d40"
    included = lda(
        *two_themes_in_a_genre, LdaParams(**{**params.__dict__, "background": "include"})
    )
    assert included.metrics["background_terms_left_out"] == 0
    formula = [included.terms.index(t) for t in ("本院", "依法")]
    # Modelled, they take about their share of the tokens (1/32); left out, the prior's crumbs.
    assert (included.fitted.phi[:, formula].max(axis=0) > 0.01).all()
    assert (dropped.fitted.phi[:, formula].max(axis=0) < 0.001).all()


@pytest.mark.parametrize("engine", ["gensim", "tomotopy"])
@pytest.mark.parametrize("weight", ["idf", "pmi"])
def test_term_weights_still_split_the_themes(two_themes, engine, weight):
    params = LdaParams(**{**PARAMS.__dict__, "engine": engine, "term_weight": weight})
    result = lda(*two_themes, params)
    _assert_two_themes_split(result)
    plain = lda(*two_themes, LdaParams(**{**params.__dict__, "term_weight": "one"}))
    assert result.fitted.phi.tolist() != plain.fitted.phi.tolist()


def test_term_weights_are_tomotopys():
    from pipeline.topics.background import term_weights

    counts = sp.csr_matrix(np.array([[2, 1, 0], [0, 1, 3], [1, 1, 0]], dtype=np.float64))
    idf = term_weights(counts, "idf").toarray()
    np.testing.assert_allclose(idf[0], [2 * np.log(3 / 2), 0.0, 0.0])  # 1 is in every document
    pmi = term_weights(counts, "pmi").toarray()
    p_w = np.array([3, 3, 3]) / 9
    expected = counts.toarray() * np.maximum(
        np.log((counts.toarray() / counts.sum(axis=1).A) / p_w), 0
    )
    np.testing.assert_allclose(pmi, np.nan_to_num(expected, nan=0.0, neginf=0.0))
    assert term_weights(counts, "one").toarray().tolist() == counts.toarray().tolist()


def test_background_that_leaves_nothing_is_a_clear_error(two_themes):
    themes = json.loads((FIXTURES / "two_themes.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    docs = [rng.choice(themes[n % 2], size=30).tolist() for n in range(40)]
    tokens = pa.table(
        {"doc_id": [f"d{n:02d}" for n in range(40)], "tokens": docs, "n_tokens": [30] * 40}
    )
    # Every word in half the documents, spread as chance spreads it: all background.
    result = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0))
    assert all(result.vocabulary.column("is_background").to_pylist())
    with pytest.raises(BackgroundError, match="tfidf.background_min_df"):
        lda(result.vocabulary, result.doc_terms, tokens, PARAMS)


def test_prevalence_by_month_puts_year_only_dates_apart_not_in_january(two_themes):
    result = lda(*two_themes, PARAMS)
    documents, _ = _meta(result.doc_ids)
    n = documents.num_rows
    precision = ["year" if i % 2 else "day" for i in range(n)]
    documents = documents.append_column("date_precision", pa.array(precision, pa.string()))
    params = LdaParams(**{**PARAMS.__dict__, "date_bucket": "month", "bootstrap": 20})
    rows = topic_prevalence(result.doc_ids, result.fitted.theta, documents, params).to_pylist()
    sizes = {r["group"]: r["n_docs"] for r in rows}
    dated_year_only = sum(1 for i in range(n) if i % 5 and i % 2)
    assert sizes["(year only)"] == dated_year_only
    # Odd i are year-only and are the only ones dated 2021: no 2021 month is left.
    assert not any(g.startswith("2021-") for g in sizes)
    params = LdaParams(**{**PARAMS.__dict__, "date_bucket": "quarter", "bootstrap": 20})
    rows = topic_prevalence(result.doc_ids, result.fitted.theta, documents, params).to_pylist()
    assert {r["column"] for r in rows} == {"quarter", "source"}
    assert "2020-Q1" in {r["group"] for r in rows}
