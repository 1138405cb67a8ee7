"""What a topic's terms are: top terms, rankings (probability, relevance, FREX), the diversity of
the top terms and their stability between two fits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.config import LdaParams
from pipeline.precision import round_significant

DIVERSITY_TOP_N = 25  # top terms per topic for topic diversity
STABILITY_TOP_N = 20  # top terms per topic compared between fits for stability
RANKINGS = ("probability", "relevance", "frex")


def top_terms(scores: np.ndarray, n: int) -> np.ndarray:
    """Term ids of each topic by score, ties to the lower id: shape (topics, min(n, terms))."""
    n = min(n, scores.shape[1])
    out = np.empty((scores.shape[0], n), dtype=np.int64)
    for topic, row in enumerate(scores):
        out[topic] = _top_of_row(row, n)
    return out


def _top_of_row(row: np.ndarray, n: int) -> np.ndarray:
    """The ids of the ``n`` largest values, by value then id; only the n best and whatever
    ties the n-th are sorted."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cut = np.partition(row, len(row) - n)[len(row) - n]
    ids = np.flatnonzero(row >= cut)
    return ids[np.lexsort((ids, -row[ids]))[:n]]


def rank_terms(
    phi: np.ndarray, term_freq: np.ndarray, params: LdaParams
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Top ``params.top_n`` term ids and scores per topic by probability, relevance and FREX.

    Relevance (Sievert & Shirley 2014): lambda * log p(w|k) + (1 - lambda) * log(p(w|k) / p(w)).
    FREX (Roberts et al.): the weighted harmonic mean of a term's within-topic ECDF ranks of
    exclusivity p(w|k) / sum_j p(w|j) and of frequency p(w|k).
    A topic at a time: memory holds a few rows of the vocabulary's length, not whole tables.
    """
    lam, w = params.relevance_lambda, params.frex_weight
    k, v = phi.shape
    n = min(params.top_n, v)
    log_p_w = np.log(np.maximum(term_freq / max(term_freq.sum(), 1.0), 1e-300))
    column_sums = np.maximum(phi.sum(axis=0), 1e-300)
    ids = {name: np.empty((k, n), dtype=np.int64) for name in RANKINGS}
    scores = {name: np.empty((k, n), dtype=np.float64) for name in RANKINGS}
    for topic in range(k):
        row = phi[topic]
        logphi = np.log(np.maximum(row, 1e-300))
        excl_ecdf = _max_ranks(row / column_sums) / v
        freq_ecdf = _max_ranks(row) / v
        for name, values in (
            ("probability", row),
            # Rounded before ranking (np.log's last bit depends on the CPU's SIMD): equal
            # published scores rank by term id on every machine.
            ("relevance", round_significant(lam * logphi + (1 - lam) * (logphi - log_p_w))),
            ("frex", 1.0 / (w / excl_ecdf + (1 - w) / freq_ecdf)),
        ):
            ids[name][topic] = _top_of_row(values, n)
            scores[name][topic] = values[ids[name][topic]]
    return {name: (ids[name], scores[name]) for name in RANKINGS}


def _max_ranks(scores: np.ndarray) -> np.ndarray:
    """How many values of a row are <= each value (scipy's rankdata "max", without
    scipy.stats, whose import costs a second)."""
    order = np.argsort(scores)
    ordered = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.searchsorted(ordered, ordered, side="right")  # sorted keys: fast
    return ranks


def topic_diversity(top: np.ndarray) -> float:
    """Share of unique terms among all topics' top terms (1.0: no topic shares a top term)."""
    return float(len(np.unique(top)) / top.size)


def stability(a: list[set], b: list[set]) -> float:
    """Mean over the topics of ``a`` of the best Jaccard similarity with a topic of ``b``
    (each topic a set of its top terms): 1.0 when every topic of ``a`` recurs in ``b``."""
    return float(np.mean([max(len(x & y) / len(x | y) for y in b) for x in a]))


def topic_terms_table(phi: np.ndarray, top: np.ndarray, terms: np.ndarray) -> pa.Table:
    """The topic_terms table: each topic's ``top`` terms by rank with their probability."""
    k, n = top.shape
    return pa.table(
        {
            "topic": pa.array(np.repeat(np.arange(k, dtype=np.int32), n)),
            "rank": pa.array(np.tile(np.arange(1, n + 1, dtype=np.int32), k)),
            "term": pa.array(terms[top.ravel()].tolist(), pa.string()),
            "weight": pa.array(np.take_along_axis(phi, top, axis=1).ravel().astype(np.float64)),
        }
    )


def rankings_table(rankings: dict, terms: np.ndarray) -> pa.Table:
    """The topic_term_rankings table of :func:`rank_terms`, long: topic, measure, rank."""
    parts = []
    for measure, (ids, scores) in rankings.items():
        k, n = ids.shape
        parts.append(
            pa.table(
                {
                    "topic": pa.array(np.repeat(np.arange(k, dtype=np.int32), n)),
                    "measure": pa.array([measure] * (k * n), pa.string()),
                    "rank": pa.array(np.tile(np.arange(1, n + 1, dtype=np.int32), k)),
                    "term": pa.array(terms[ids.ravel()].tolist(), pa.string()),
                    "score": pa.array(scores.ravel().astype(np.float64)),
                }
            )
        )
    return pa.concat_tables(parts).sort_by([("topic", "ascending")])
