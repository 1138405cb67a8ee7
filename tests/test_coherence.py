"""Coherence counted with numpy: gensim's measures, exact window counts."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from gensim.corpora import Dictionary
from gensim.models import CoherenceModel

from pipeline.topics import coherence
from pipeline.topics.coherence import Reference, coherence_scores, reference, take_sequences


def _reference(texts: list[list[int]], n_terms: int) -> Reference:
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=starts[1:])
    rows = [[i] * len(t) for i, t in enumerate(texts)]
    counts = sp.csr_matrix(
        (np.ones(int(starts[-1])), (np.concatenate(rows), np.concatenate(texts))),
        shape=(len(texts), n_terms),
    )
    counts.sum_duplicates()
    return Reference(starts, np.concatenate(texts).astype(np.int32), counts)


def test_counts_match_a_brute_force_walk_over_every_window():
    rng = np.random.default_rng(7)
    # Few distinct words, so words repeat inside windows; lengths below and above the window.
    texts = [rng.integers(0, 6, size=n).tolist() for n in (1, 2, 5, 9, 14, 30, 47)]
    ref = _reference(texts, 6)
    targets = np.arange(6)
    for window in (3, 10):
        windows = [
            set(t[s : s + window]) for t in texts for s in range(max(len(t) - window + 1, 1))
        ]
        cov = coherence._coverage(ref, targets, window)
        assert cov.n_windows == len(windows)
        for a in range(6):
            assert cov.count(a) == sum(a in w for w in windows)
        for a, b in itertools.combinations(range(6), 2):
            assert cov.joint(a, b) == cov.joint(b, a) == sum(a in w and b in w for w in windows)


def test_scores_equal_gensim_where_its_window_slide_is_exact():
    """gensim forgets a word leaving a window while it is still inside; without repeats it is
    exact, so on texts of distinct words the three measures must agree to rounding."""
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(200)]
    texts = [
        [vocab[i] for i in rng.choice(200, size=n, replace=False)]
        for n in rng.integers(5, 160, size=60)
    ]
    dictionary = Dictionary(texts)
    ids = [[dictionary.token2id[w] for w in t] for t in texts]
    ref = _reference(ids, len(dictionary))
    topics = [[dictionary.token2id[w] for w in vocab[k : k + 8]] for k in (0, 40, 120)]
    ours = coherence_scores(topics, ref)
    for measure in coherence.MEASURES:
        model = CoherenceModel(
            topics=[[dictionary[i] for i in t] for t in topics],
            texts=texts if measure != "u_mass" else None,
            corpus=[dictionary.doc2bow(t) for t in texts] if measure == "u_mass" else None,
            dictionary=dictionary,
            coherence=measure,
            processes=1,
        )
        theirs = model.get_coherence_per_topic()
        assert ours[measure] == pytest.approx(float(np.mean(theirs)), abs=1e-9), measure
        if measure == "c_npmi":
            assert ours["per_topic"] == pytest.approx(theirs, abs=1e-9)


def test_reference_keeps_vocabulary_terms_of_the_modelled_documents_in_order():
    tokens = pa.table(
        {
            "doc_id": ["a", "b", "c"],
            "tokens": [["x", "oov", "y", "x"], ["y"], ["oov"]],
        }
    )
    ref = reference(tokens, ["c", "a"], ["y", "x"], sp.csr_matrix((2, 2)))
    # In doc_ids order (c, then a); "oov" is dropped, c keeps an empty sequence (one window).
    assert ref.starts.tolist() == [0, 0, 3]
    assert ref.term_ids.tolist() == [1, 0, 1]
    # Streamed in pieces: the same reference.
    one_row = [pa.Table.from_batches([b]) for b in tokens.to_batches(max_chunksize=1)]
    pieces = reference(one_row, ["c", "a"], ["y", "x"], ref.counts)
    assert pieces.starts.tolist() == [0, 0, 3]
    assert pieces.term_ids.tolist() == [1, 0, 1]
    # In table order as it is; a document without a tokens row has no tokens.
    ordered = reference(tokens, ["a", "b", "d"], ["y", "x"], sp.csr_matrix((3, 2)))
    assert ordered.starts.tolist() == [0, 3, 4, 4]
    assert ordered.term_ids.tolist() == [1, 0, 1, 0]


def test_take_sequences_picks_documents_in_the_given_order():
    starts, ids = np.array([0, 2, 2, 5]), np.array([7, 8, 1, 2, 3])
    new_starts, new_ids = take_sequences(starts, ids, np.array([2, 1, 0, 2]))
    assert new_starts.tolist() == [0, 3, 3, 5, 8]
    assert new_ids.tolist() == [1, 2, 3, 7, 8, 1, 2, 3]
