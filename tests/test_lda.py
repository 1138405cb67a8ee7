import json

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import LdaParams, TfidfParams
from pipeline.lda import QUALITY_METRICS, LdaError, lda, save_model, topic_diversity
from pipeline.schemas import DOC_TOPICS, TOPIC_TERMS, TOPICS, SchemaError
from pipeline.tfidf import tfidf
from tests.conftest import FIXTURES

PARAMS = LdaParams(
    num_topics=2,
    passes=20,
    iterations=100,
    random_state=7,
    top_n=5,
    label_terms=2,
    coherence_top_n=3,
)


@pytest.fixture(scope="module")
def two_themes() -> tuple[pa.Table, pa.Table, pa.Table]:
    """Documents drawn from two disjoint word sets (sport, finance)."""
    themes = json.loads((FIXTURES / "two_themes.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    ids, docs = [], []
    for n in range(40):
        words = themes[n % 2]
        ids.append(f"d{n:02d}")
        docs.append(rng.choice(words, size=30).tolist())
    tokens = pa.table({"doc_id": ids, "tokens": docs, "n_tokens": [len(d) for d in docs]})
    result = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0))
    return result.vocabulary, result.doc_terms, tokens


def test_two_themes_become_two_topics(two_themes):
    result = lda(*two_themes, PARAMS)
    DOC_TOPICS.conform(result.doc_topics)
    TOPIC_TERMS.conform(result.topic_terms)
    TOPICS.conform(result.topics)
    weights = np.array(result.doc_topics.column("weight").to_pylist()).reshape(40, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    dominant = weights.argmax(axis=1)
    assert set(dominant[0::2]) != set(dominant[1::2])
    assert len(set(dominant[0::2])) == 1 and len(set(dominant[1::2])) == 1
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
    label = result.topics.column("label").to_pylist()[0]
    assert label == "·".join(r["term"] for r in first[:2])


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


def test_saved_model_loads(two_themes, tmp_path):
    from gensim.models import LdaModel

    result = lda(*two_themes, PARAMS)
    save_model(result.model, tmp_path / "lda")
    loaded = LdaModel.load(str(tmp_path / "lda" / "lda.model"))
    np.testing.assert_allclose(loaded.get_topics(), result.model.get_topics())
    assert not list(tmp_path.glob(".lda.*"))


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
