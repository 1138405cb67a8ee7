import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.sparse as sp

from pipeline import tfidf as tfidf_stage
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


def _reference(tokens, params: TfidfParams):
    """The tables as scikit-learn computes them: the stage's implementation before issue 7."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    tokens = tokens.filter(pc.greater(tokens.column("n_tokens"), 0))
    vectorizer = CountVectorizer(
        analyzer=lambda doc: doc,
        min_df=params.min_df,
        max_df=params.max_df,
        max_features=params.max_features,
        dtype=np.int32,
    )
    counts = sp.csr_matrix(vectorizer.fit_transform(tokens.column("tokens").to_pylist()))
    counts.sort_indices()
    transformer = TfidfTransformer(sublinear_tf=params.sublinear_tf)
    weights = sp.csr_matrix(transformer.fit_transform(counts))
    weights.sort_indices()
    terms = vectorizer.get_feature_names_out().astype(object)
    doc_ids = np.asarray(tokens.column("doc_id").to_pylist(), dtype=object)
    vocabulary = pa.table(
        {
            "term_id": np.arange(len(terms), dtype=np.int32),
            "term": pa.array(terms.tolist(), pa.string()),
            "df": np.bincount(counts.indices, minlength=len(terms)).astype(np.int32),
            "idf": transformer.idf_,
        }
    )
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    doc_terms = pa.table(
        {
            "doc_id": pa.array(doc_ids[rows].tolist(), pa.string()),
            "term_id": counts.indices.astype(np.int32),
            "count": counts.data.astype(np.int32),
            "tfidf": weights.data,
        }
    )
    keywords = {"doc_id": [], "rank": [], "term": [], "weight": []}
    for row in range(weights.shape[0]):
        cols = weights.indices[weights.indptr[row] : weights.indptr[row + 1]]
        data = weights.data[weights.indptr[row] : weights.indptr[row + 1]]
        order = np.lexsort((cols, -data))[: params.top_k]
        keywords["doc_id"] += [doc_ids[row]] * len(order)
        keywords["rank"] += list(range(1, len(order) + 1))
        keywords["term"] += terms[cols[order]].tolist()
        keywords["weight"] += data[order].tolist()
    keywords = pa.table(keywords).cast(KEYWORDS.schema)
    return vocabulary, doc_terms, keywords


def _random_tokens(seed: int, n_docs: int = 300) -> pa.Table:
    """Documents of Zipf-distributed terms (many ties in counts and weights), a few empty,
    one with tokens but n_tokens 0 (not counted, as the stage has always done)."""
    rng = np.random.default_rng(seed)
    words = [f"词{i}" for i in range(400)] + ["a", "B", "ab", "é", "😀", "", " "]
    lists = []
    for _ in range(n_docs):
        size = int(rng.integers(0, 40)) if rng.random() < 0.95 else 0
        picks = np.minimum(rng.zipf(1.3, size), len(words)) - 1
        lists.append([words[p] for p in picks])
    n_tokens = [len(t) for t in lists]
    lists[1], n_tokens[1] = ["只在这里"], 0
    return table(doc_id=[f"doc{i:04d}" for i in range(n_docs)], tokens=lists, n_tokens=n_tokens)


@pytest.mark.parametrize(
    "settings",
    [
        {"min_df": 1, "max_df": 1.0},
        {"min_df": 2, "max_df": 0.5},
        {"min_df": 0.02, "max_df": 40},
        {"min_df": 1, "max_df": 1.0, "max_features": 25, "top_k": 3},
        {"min_df": 2, "max_df": 0.9, "max_features": 60, "sublinear_tf": True},
    ],
)
def test_tables_are_scikit_learns_to_the_bit(settings):
    params = TfidfParams(**settings)
    for seed in (0, 1):
        tokens = _random_tokens(seed)
        result = tfidf(tokens, params)
        vocabulary, doc_terms, keywords = _reference(tokens, params)
        counted = VOCABULARY.subset(["term_id", "term", "df", "idf"])  # not the background
        ours = VOCABULARY.conform(result.vocabulary).select(counted.columns)
        assert ours.equals(counted.conform(vocabulary))
        assert DOC_TERMS.conform(result.doc_terms).equals(DOC_TERMS.conform(doc_terms))
        assert KEYWORDS.conform(result.keywords).equals(keywords)


def test_pieces_and_slices_give_the_same_tables(monkeypatch):
    tokens = _random_tokens(2)
    whole = tfidf(tokens, TfidfParams())
    monkeypatch.setattr(tfidf_stage, "SLICE_TOKENS", 50)
    monkeypatch.setattr(tfidf_stage, "MERGE_TERMS", 30)
    pieces = (tokens.slice(start, 37) for start in range(0, tokens.num_rows, 37))
    streamed = tfidf(pieces, TfidfParams())
    for name in ("vocabulary", "doc_terms", "keywords"):
        assert getattr(streamed, name).equals(getattr(whole, name)), name
    assert (streamed.n_docs, streamed.n_with_tokens) == (tokens.num_rows, whole.n_with_tokens)


def test_keyword_ties_go_to_the_earlier_term():
    tokens = table(doc_id=["a", "b"], tokens=[["丙", "乙", "甲"], ["丁"]], n_tokens=[3, 1])
    result = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0, top_k=2))
    rows = result.keywords.to_pylist()
    assert [(r["doc_id"], r["term"]) for r in rows] == [("a", "丙"), ("a", "乙"), ("b", "丁")]
    assert rows[0]["weight"] == rows[1]["weight"]


def test_max_df_below_min_df_is_a_clear_error():
    with pytest.raises(TfidfError, match="max_df=1 allows fewer documents"):
        tfidf(TOKENS, TfidfParams(min_df=0.9, max_df=1))


@pytest.mark.parametrize(
    ("doc_ids", "lists", "message"),
    [
        (["a", "b"], [["x", None], ["x"]], "1 token"),
        (["a", "b"], [None, ["x"]], "column 'tokens' has 1 null"),
        (["a", None], [["x"], ["x"]], "column 'doc_id' has 1 null"),
    ],
)
def test_nulls_are_a_clear_error(doc_ids, lists, message):
    tokens = table(doc_id=doc_ids, tokens=lists, n_tokens=[2, 1])
    with pytest.raises(TfidfError, match=message):
        tfidf(tokens, TfidfParams(min_df=1, max_df=1.0))


def _genre_corpus() -> pa.Table:
    """60 rulings: each says 本院 once (the genre's formula); a third are about 拆迁 and a third
    about 工商, which they repeat; 补偿 is in a few only, once each (rare, not boilerplate)."""
    ids, docs = [], []
    for n in range(60):
        theme = [["拆迁"] * 4 + ["房屋"], ["工商"] * 4 + ["登记"] * 2, ["治安"]][n % 3]
        extra = ["补偿"] if n % 12 == 0 else []
        ids.append(f"d{n:02d}")
        docs.append(["本院", *theme, *extra, f"人{n}"])
    return table(doc_id=ids, tokens=docs, n_tokens=[len(d) for d in docs])


def test_a_term_in_every_document_is_background_a_topical_one_is_not():
    result = tfidf(_genre_corpus(), TfidfParams(min_df=1, max_df=1.0))
    rows = {r["term"]: r for r in VOCABULARY.conform(result.vocabulary).to_pylist()}
    # In every document: its df is above any Poisson expectation, evenness > 1.
    assert rows["本院"]["is_background"] and rows["本院"]["background"] > 1.0
    # 拆迁: in a third of the documents, four times each: bursty, the subject.
    assert not rows["拆迁"]["is_background"] and rows["拆迁"]["background"] < 0.5
    assert not rows["工商"]["is_background"]
    # Evenly spread but in fewer than tfidf.background_min_df of the documents.
    assert rows["补偿"]["background"] > 0.9 and not rows["补偿"]["is_background"]
    # Once or twice in each document of a third (治安, 房屋, 登记): as even as chance gives a
    # term in a third of the documents. 房屋 and 登记 keep company with their subject (拆迁,
    # 工商: NPMI 1) and stay; 治安 has no partner outside the formula, like 本院.
    assert rows["房屋"]["background"] > 0.5 and rows["房屋"]["partner_npmi"] == 1.0
    assert rows["治安"]["partner_npmi"] == -1.0
    flagged = [t for t, r in rows.items() if r["is_background"]]
    assert flagged == sorted(["本院", "治安"])
    # Without the partner check the short documents' subject words look like the formula.
    off = tfidf(_genre_corpus(), TfidfParams(min_df=1, max_df=1.0, background_min_partner_npmi=2))
    flagged = off.vocabulary.filter(off.vocabulary.column("is_background"))
    assert sorted(flagged.column("term").to_pylist()) == sorted(["本院", "治安", "房屋", "登记"])


def test_background_thresholds_and_keep_list():
    tokens = _genre_corpus()
    strict = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0, background_min_df=0.9))
    flagged = strict.vocabulary.filter(strict.vocabulary.column("is_background"))
    assert flagged.column("term").to_pylist() == ["本院"]
    loose = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0, background_min_evenness=0.3))
    flagged = set(
        loose.vocabulary.filter(loose.vocabulary.column("is_background"))["term"].to_pylist()
    )
    assert {"本院", "拆迁", "工商"} <= flagged
    kept = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0), keep_terms=frozenset({"本院", "房屋"}))
    flagged = kept.vocabulary.filter(kept.vocabulary.column("is_background"))
    assert flagged.column("term").to_pylist() == ["治安"]
    # The score is published whatever the flag.
    assert kept.vocabulary.column("background") == loose.vocabulary.column("background")


def test_evenness_is_df_against_the_poisson_expectation():
    from pipeline.topics.background import evenness

    n = 100
    score = evenness(np.array([100, 20, 0]), np.array([100, 60, 0]), n)
    assert score[0] == pytest.approx(1 / (1 - math.exp(-1)), abs=1e-6)
    assert score[1] == pytest.approx(20 / (n * (1 - math.exp(-0.6))), abs=1e-6)
    assert score[2] == 0.0


def test_keep_terms_file(tmp_path):
    from pipeline.topics.background import read_keep_terms

    path = tmp_path / "keep.txt"
    path.write_text("# comment\n本院  # the court\n\n  原告\n", encoding="utf-8")
    assert read_keep_terms(path) == {"本院", "原告"}
    assert read_keep_terms(None) == frozenset()


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"background_min_df": 0}, "tfidf.background_min_df"),
        ({"background_min_df": 1.5}, "tfidf.background_min_df"),
        ({"background_min_evenness": -1}, "tfidf.background_min_evenness"),
        ({"keep_terms": "no/such/file.txt"}, "tfidf.keep_terms"),
        ({"background_min_parent_share": 1.5}, "tfidf.background_min_parent_share"),
        ({"background_min_partner_npmi": -2}, "tfidf.background_min_partner_npmi"),
    ],
)
def test_bad_background_settings_name_the_key(values, needle):
    from pipeline.config import ConfigError, params_from_dict

    raw = {
        "clean": {"replacements": None},
        "segment": {"userdict": None, "stopwords": None},
        "tfidf": values,
    }
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        params_from_dict(raw)


def _speeches() -> tuple[pa.Table, dict[str, str]]:
    """Four speeches of ten short paragraphs each. 妇联 (the organisation, the genre) is in
    half the paragraphs of every speech; 维权 (a subject) in eight paragraphs of speech 0 and
    seven of speech 1, once each, so that over the paragraphs it looks as even as 妇联."""
    ids, docs, parents = [], [], {}
    for speech in range(4):
        for n in range(10):
            doc = [f"词{speech}_{n}_{i}" for i in range(3)]
            if n % 2 == 0:
                doc.append("妇联")
            if (speech == 0 and n < 8) or (speech == 1 and n < 7):
                doc.append("维权")
            doc_id = f"s{speech}p{n}"
            ids.append(doc_id)
            docs.append(doc)
            parents[doc_id] = f"s{speech}"
    return table(doc_id=ids, tokens=docs, n_tokens=[len(d) for d in docs]), parents


def test_paragraphs_are_judged_by_their_parent_documents():
    tokens, parents = _speeches()
    params = TfidfParams(min_df=1, max_df=1.0)
    alone = tfidf(tokens, params)
    rows = {r["term"]: r for r in VOCABULARY.conform(alone.vocabulary).to_pylist()}
    # Paragraphs as if independent: both once per paragraph, in 15 or 20 of 40: both flagged.
    assert rows["妇联"]["is_background"] and rows["维权"]["is_background"]
    grouped = tfidf(tokens, params, parents=parents)
    rows = {r["term"]: r for r in VOCABULARY.conform(grouped.vocabulary).to_pylist()}
    # Speech sizes in tokens: 43, 42, 35, 35 (three words a paragraph, 妇联, 维权).
    size = np.array([43, 42, 35, 35]) / 155
    # 妇联: in every speech, 5 times each: nearly in proportion to the speeches' sizes.
    assert rows["妇联"]["parent_share"] == 1.0
    dp = 0.5 * np.abs(0.25 - size).sum()
    assert rows["妇联"]["parent_evenness"] == pytest.approx(1 - dp, abs=1e-6)
    assert rows["妇联"]["is_background"]
    # 维权: in two speeches of four (8 and 7 of its 15 occurrences): not in nearly every one.
    dp = 0.5 * (abs(8 / 15 - size[0]) + abs(7 / 15 - size[1]) + size[2] + size[3])
    assert rows["维权"]["parent_share"] == 0.5
    assert rows["维权"]["parent_evenness"] == pytest.approx(1 - dp, abs=1e-6)
    assert not rows["维权"]["is_background"]
    # A lower bar on the parents' share (and evenness) lets it through as background again.
    low = tfidf(
        tokens,
        TfidfParams(min_df=1, max_df=1.0, background_min_parent_share=0.5),
        parents=parents,
    )
    flagged = low.vocabulary.filter(low.vocabulary.column("is_background"))
    assert set(flagged.column("term").to_pylist()) == {"妇联", "维权"}


def test_one_document_per_parent_is_not_grouped():
    """Document units (each its own parent) keep the document-level flag."""
    tokens = _genre_corpus()
    ids = tokens.column("doc_id").to_pylist()
    with_parents = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0), parents={d: d for d in ids})
    without = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0))
    assert with_parents.vocabulary.equals(without.vocabulary)


def test_partner_npmi():
    from pipeline.topics.background import partner_npmi

    # Ten documents; term 0 in all of the first five, term 1 (its partner) in the same five,
    # term 2 in all ten; only term 0 is a candidate.
    docs = [[0, 1, 2]] * 5 + [[2]] * 5
    indptr = np.cumsum([0] + [len(d) for d in docs])
    indices = np.concatenate(docs)
    best = partner_npmi(indptr, indices, np.array([True, False, False]), 3)
    # With 1: p = 1/2 each, together 1/2: NPMI 1. With 2 (in every document): NPMI 0.
    assert best.tolist() == [1.0, -1.0, -1.0]
    best = partner_npmi(indptr, indices, np.array([True, True, False]), 3)
    assert best.tolist() == [0.0, 0.0, -1.0]  # the other candidate is no partner
