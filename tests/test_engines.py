"""The model engines (pipeline/topics/engines.py): fits, priors, fold-in, likelihood."""

import numpy as np
import pytest
import scipy.sparse as sp

from pipeline.config import LdaParams
from pipeline.topics import engines
from pipeline.topics.coherence import reference
from pipeline.topics.counts import build_counts
from pipeline.topics.engines import (
    CONVERGENCE_WINDOW,
    bag_of_words,
    converged,
    fit,
    fold_in,
    prior_vector,
    token_sequences,
)

TOMOTOPY = LdaParams(engine="tomotopy", iterations=200, alpha=0.1, eta=0.01, random_state=7)
GENSIM = LdaParams(engine="gensim", passes=20, iterations=100, random_state=7)


def _counts(two_themes) -> sp.csr_matrix:
    vocabulary, doc_terms, _ = two_themes
    return build_counts(doc_terms, vocabulary.num_rows)[1]


@pytest.mark.parametrize("params", [GENSIM, TOMOTOPY], ids=["gensim", "tomotopy"])
def test_fit_is_a_function_of_the_seed(two_themes, params):
    """Same seed, same arrays; rows of phi and theta are distributions; K x terms shapes."""
    counts = _counts(two_themes)
    one = fit(counts, 2, params, 3)
    assert one.engine == params.engine
    assert one.phi.shape == (2, counts.shape[1]) and one.theta.shape == (counts.shape[0], 2)
    np.testing.assert_allclose(one.phi.sum(axis=1), 1.0)
    np.testing.assert_allclose(one.theta.sum(axis=1), 1.0)
    again = fit(counts, 2, params, 3)
    np.testing.assert_array_equal(one.phi, again.phi)
    np.testing.assert_array_equal(one.theta, again.theta)
    # The two themes alternate (even rows sport, odd rows finance): one topic each.
    dominant = one.theta.argmax(axis=1)
    assert len(set(dominant[0::2])) == 1 and set(dominant[0::2]) != set(dominant[1::2])


def test_fold_in_recovers_the_mix_of_documents_under_fixed_topics():
    phi = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]])
    counts = sp.csr_matrix(np.array([[4, 4, 0, 0], [0, 0, 3, 5], [2, 2, 2, 2], [0, 0, 0, 0]]))
    theta = fold_in(phi, np.full(2, 1e-6), counts)
    np.testing.assert_allclose(theta.sum(axis=1), 1.0)
    np.testing.assert_allclose(theta[0], [1.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(theta[1], [0.0, 1.0], atol=1e-4)
    np.testing.assert_allclose(theta[2], [0.5, 0.5], atol=1e-4)
    np.testing.assert_allclose(theta[3], [0.5, 0.5])  # no tokens: the prior's uniform mix
    # In blocks of rows: the same mixes.
    np.testing.assert_array_equal(fold_in(phi, np.full(2, 1e-6), counts, block=1), theta)


def test_priors_follow_gensim_names():
    np.testing.assert_allclose(prior_vector("symmetric", 4), [0.25] * 4)
    np.testing.assert_allclose(prior_vector(0.1, 3), [0.1] * 3)
    asymmetric = prior_vector("asymmetric", 4)
    assert asymmetric.sum() == pytest.approx(1.0)
    assert np.all(np.diff(asymmetric) < 0)  # the first topics get the larger prior


def test_bag_of_words_is_gensims_corpus_format():
    counts = sp.csr_matrix(np.array([[0, 2, 1], [0, 0, 0], [5, 0, 0]]))
    assert bag_of_words(counts) == [[(1, 2), (2, 1)], [], [(0, 5)]]


def test_converged_compares_the_last_reading_with_the_one_a_window_before():
    params = LdaParams(tolerance=0.001, min_token_updates=100)
    trace = [
        {"iteration": 10.0 * i, "ll_per_word": ll}
        for i, ll in enumerate([-11.0, -10.0, -9.999, -9.998, -9.997, -9.996, -9.995], 1)
    ]
    assert CONVERGENCE_WINDOW == 50
    assert converged(trace, 100, params)  # 20 -> 70 sweeps: +0.05%
    assert not converged(trace, 99, params)  # too few updates yet
    assert not converged(trace[:6], 100, params)  # 10 -> 60: +9%
    assert not converged(trace[:5], 100, params)  # no reading 50 sweeps before
    assert not converged(trace, 100, LdaParams(tolerance=None))


def test_tomotopy_samples_the_given_reading_order(two_themes):
    """The reading order is checked against the counts, and changes the chain."""
    vocabulary, doc_terms, tokens = two_themes
    doc_ids, counts = build_counts(doc_terms, vocabulary.num_rows)
    grouped = token_sequences(counts, None)
    assert np.array_equal(np.diff(grouped[0]), np.asarray(counts.sum(axis=1)).ravel())
    ref = reference(tokens, doc_ids, vocabulary.column("term").to_pylist(), counts)
    assert token_sequences(counts, (ref.starts, ref.term_ids))[1] is ref.term_ids
    shifted = (ref.starts, np.roll(ref.term_ids, 1))  # same lengths, other terms per row
    with pytest.raises(ValueError, match="row for row"):
        token_sequences(counts, shifted)
    with pytest.raises(ValueError, match="row for row"):
        token_sequences(counts[1:], (ref.starts, ref.term_ids))
    short = LdaParams(**{**TOMOTOPY.__dict__, "iterations": 2})  # before both settle
    by_order = fit(counts, 2, short, 1, sequences=(ref.starts, ref.term_ids))
    assert not np.array_equal(by_order.phi, fit(counts, 2, short, 1).phi)
    again = fit(counts, 2, short, 1, sequences=(ref.starts, ref.term_ids))
    assert np.array_equal(by_order.phi, again.phi)


def test_log_likelihood_sums_log_theta_dot_phi_over_tokens():
    rng = np.random.default_rng(4)
    counts = sp.random(5000, 60, density=0.05, format="csr", random_state=4)
    counts.data = rng.integers(1, 4, counts.nnz).astype(np.float64)
    theta = rng.dirichlet(np.ones(3), size=5000)
    phi = rng.dirichlet(np.ones(60), size=3)
    dense = counts.toarray()
    expected = (dense * np.log(theta @ phi)).sum()
    assert engines.log_likelihood(phi, theta, counts) == pytest.approx(expected, rel=1e-12)
    # In blocks of rows (a row larger than a block is a block of its own): the same sum.
    for block in (1, 7, 1000):
        blocked = engines.log_likelihood(phi, theta, counts, block=block)
        assert blocked == pytest.approx(expected, rel=1e-12)
