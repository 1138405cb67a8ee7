import math

import numpy as np
import pytest

from pipeline.config import TfidfParams
from pipeline.schemas import DOC_TERMS, KEYWORDS, VOCABULARY, SchemaError
from pipeline.tfidf import TfidfError, tfidf
from tests.conftest import table

TOKENS = table(
    doc_id=["d1", "d2", "d3", "d4"],
    tokens=[
        ["妇女", "权益", "权益", "保障"],
        ["妇女", "就业", "创业"],
        [],
        ["就业", "权益", "科技"],
    ],
    n_tokens=[4, 3, 0, 3],
)


def test_vocabulary_counts_and_idf():
    result = tfidf(TOKENS, TfidfParams(min_df=1, max_df=1.0, top_k=2))
    vocab = {r["term"]: r for r in VOCABULARY.conform(result.vocabulary).to_pylist()}
    assert list(vocab) == sorted(vocab)
    assert [r["term_id"] for r in vocab.values()] == list(range(len(vocab)))
    assert vocab["权益"]["df"] == 2 and vocab["科技"]["df"] == 1
    n_docs = 3  # d3 has no tokens and is not counted
    assert vocab["权益"]["idf"] == pytest.approx(math.log((1 + n_docs) / (1 + 2)) + 1)


def test_doc_terms_hold_counts_and_l2_normalised_weights():
    result = tfidf(TOKENS, TfidfParams(min_df=1, max_df=1.0))
    rows = DOC_TERMS.conform(result.doc_terms).to_pylist()
    assert {r["doc_id"] for r in rows} == {"d1", "d2", "d4"}
    terms = result.vocabulary.column("term").to_pylist()
    d1 = {terms[r["term_id"]]: r for r in rows if r["doc_id"] == "d1"}
    assert d1["权益"]["count"] == 2 and d1["妇女"]["count"] == 1
    norm = np.sqrt(sum(r["tfidf"] ** 2 for r in d1.values()))
    assert norm == pytest.approx(1.0)


def test_keywords_are_ranked_by_weight():
    result = tfidf(TOKENS, TfidfParams(min_df=1, max_df=1.0, top_k=2))
    rows = KEYWORDS.conform(result.keywords).to_pylist()
    d1 = [r for r in rows if r["doc_id"] == "d1"]
    assert [r["rank"] for r in d1] == [1, 2]
    assert d1[0]["term"] == "权益"
    assert d1[0]["weight"] >= d1[1]["weight"]
    assert len([r for r in rows if r["doc_id"] == "d4"]) == 2


def test_document_frequency_pruning():
    result = tfidf(TOKENS, TfidfParams(min_df=2, max_df=1.0))
    assert result.vocabulary.column("term").to_pylist() == sorted(["妇女", "权益", "就业"])
    result = tfidf(TOKENS, TfidfParams(min_df=1, max_df=0.5))
    assert "权益" not in result.vocabulary.column("term").to_pylist()


def test_everything_pruned_is_a_clear_error():
    with pytest.raises(TfidfError, match="min_df=3"):
        tfidf(TOKENS, TfidfParams(min_df=3, max_df=1.0))


def test_empty_corpus():
    empty = table(doc_id=["a"], tokens=[[]], n_tokens=[0])
    with pytest.raises(TfidfError, match="no document has any token"):
        tfidf(empty, TfidfParams())


def test_missing_column():
    with pytest.raises(SchemaError, match="n_tokens"):
        tfidf(table(doc_id=["a"], tokens=[["x"]]), TfidfParams())
