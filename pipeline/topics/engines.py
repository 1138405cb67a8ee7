"""Topic-model engines behind one interface: gensim (variational Bayes) and tomotopy (Gibbs).

Each engine fits a document-term count matrix and returns plain arrays (topic-word and
document-topic distributions, the priors it ended with, a convergence trace), so that every
table, the saved model and inference on new documents are the same code whatever the engine.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from pipeline.config import LdaParams
from pipeline.io import row_spans
from pipeline.precision import round_data, round_float, round_significant

log = logging.getLogger(__name__)

# Gibbs sweeps between two log-likelihood readings of tomotopy, and the span of sweeps whose
# gain decides convergence (checked at every reading).
TOMOTOPY_LOG_EVERY = 10
CONVERGENCE_WINDOW = 50


@dataclass
class Fitted:
    """A fitted model as arrays: ``phi`` (topics x terms), ``theta`` (documents x topics)."""

    engine: str
    phi: np.ndarray
    theta: np.ndarray
    alpha: np.ndarray
    eta: float
    convergence: list[dict[str, float]] = field(default_factory=list)
    native: Any = None

    def __post_init__(self) -> None:
        # Every number of a fit at the published precision: what follows (tables, rankings,
        # the saved model) starts from the same bits on any CPU (pipeline/precision.py).
        self.phi = round_significant(self.phi)
        self.theta = round_significant(self.theta)
        self.alpha = round_significant(self.alpha)
        self.eta = round_float(self.eta)
        self.convergence = round_data(self.convergence)


def fit(
    counts: sp.csr_matrix,
    num_topics: int,
    params: LdaParams,
    seed: int,
    terms: list[str] | None = None,
    sequences: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> Fitted:
    """Fit LDA with ``params.engine`` on a (documents x terms) count matrix, seeded by ``seed``.

    ``progress`` is called with the work done since its last call: Gibbs sweeps (tomotopy,
    every ``TOMOTOPY_LOG_EVERY``), or 1 for the whole fit (gensim).

    ``terms`` (column i is term i) only names the words inside gensim's own saved model.
    ``sequences`` (starts, term ids) are the same documents' tokens in reading order, document
    ``d`` being ``ids[starts[d]:starts[d + 1]]``: tomotopy samples them in that order. Without
    them it samples each document's tokens grouped by term, which mixes more slowly.
    ``threads``: tomotopy's threads for this fit (a sweep's ``lda.sweep.threads``); None:
    ``params.threads``.
    """
    counts = sp.csr_matrix(counts)
    if params.engine == "tomotopy":
        threads = params.threads if threads is None else threads
        fitted = _fit_tomotopy(counts, num_topics, params, seed, sequences, progress, threads)
    else:
        fitted = _fit_gensim(counts, num_topics, params, seed, terms)
        if progress is not None:
            progress(1)
    if fitted.convergence:
        log.debug("%s convergence: %s", params.engine, fitted.convergence)
    return fitted


def bag_of_words(counts: sp.csr_matrix) -> list[list[tuple[int, int]]]:
    """gensim's corpus format, one list of (term id, count) per row."""
    return [
        list(
            zip(
                counts.indices[a:b].tolist(),
                counts.data[a:b].tolist(),
                strict=True,
            )
        )
        for a, b in zip(counts.indptr[:-1], counts.indptr[1:], strict=True)
    ]


def prior_vector(value: str | float, num_topics: int) -> np.ndarray:
    """A document-topic prior as gensim defines its names (also the start of a learned one)."""
    if value == "asymmetric":
        raw = 1.0 / (np.arange(num_topics) + np.sqrt(num_topics))
        return raw / raw.sum()
    if isinstance(value, str):  # symmetric, auto
        return np.full(num_topics, 1.0 / num_topics)
    return np.full(num_topics, float(value))


class _ConvergenceLog(logging.Handler):
    """Collects gensim's per-chunk "documents converged" debug records; passes on the records
    at the level that was configured before (to the root logger's handlers)."""

    def __init__(self, passthrough_level: int) -> None:
        super().__init__(logging.DEBUG)
        self.passthrough_level = passthrough_level
        self.records: list[dict[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= self.passthrough_level:
            for handler in logging.getLogger().handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
        if "documents converged within" in str(record.msg) and len(record.args) == 3:
            converged, total, iterations = record.args
            self.records.append(
                {"converged": float(converged), "documents": float(total), "iterations": iterations}
            )


def _fit_gensim(
    counts: sp.csr_matrix, k: int, params: LdaParams, seed: int, terms: list[str] | None
) -> Fitted:
    from gensim.models import LdaModel

    from pipeline.topics.background import term_weights

    corpus = bag_of_words(term_weights(counts, params.term_weight))
    id2word = (
        dict(enumerate(terms))
        if terms is not None
        else dict(enumerate(map(str, range(counts.shape[1]))))
    )
    logger = logging.getLogger("gensim.models.ldamodel")
    handler = _ConvergenceLog(logger.getEffectiveLevel())
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        model = LdaModel(
            corpus=corpus,
            id2word=id2word,
            num_topics=k,
            passes=params.passes,
            iterations=params.iterations,
            chunksize=params.chunksize,
            alpha=params.alpha,
            eta=None if params.eta == "symmetric" else params.eta,
            random_state=seed,
            eval_every=None,
            dtype=np.float64,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    gamma, _ = model.inference(corpus)
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    eta = np.asarray(model.eta, dtype=np.float64)
    if handler.records:
        last = handler.records[-1]
        log.info(
            "gensim: last chunk %d/%d documents converged within %d iterations",
            last["converged"],
            last["documents"],
            last["iterations"],
        )
    return Fitted(
        engine="gensim",
        phi=model.get_topics().astype(np.float64),
        theta=theta.astype(np.float64),
        alpha=np.asarray(model.alpha, dtype=np.float64),
        eta=float(eta.mean()),
        convergence=handler.records,
        native=model,
    )


def token_sequences(
    counts: sp.csr_matrix, sequences: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(starts, term ids) of each row's tokens: ``sequences`` once checked against ``counts``
    (same lengths and same terms per row), or the counts' terms grouped by term."""
    lengths = np.asarray(counts.sum(axis=1), dtype=np.int64).ravel()
    if sequences is None:
        starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        return starts, np.repeat(counts.indices, counts.data)
    starts, ids = sequences
    same = len(starts) == len(lengths) + 1 and np.array_equal(np.diff(starts), lengths)
    if same:  # the sum of term ids per row: a cheap check that each row holds the same terms
        rows = np.repeat(np.arange(len(lengths)), lengths)
        same = np.array_equal(
            np.bincount(rows, weights=ids, minlength=len(lengths)),
            counts @ np.arange(counts.shape[1], dtype=np.float64),
        )
    if not same:
        raise ValueError("token sequences do not match the count matrix row for row")
    return starts, ids


def _fit_tomotopy(
    counts: sp.csr_matrix,
    k: int,
    params: LdaParams,
    seed: int,
    sequences: tuple[np.ndarray, np.ndarray] | None,
    progress: Callable[[int], None] | None = None,
    threads: int = 1,
) -> Fitted:
    import tomotopy as tp

    alpha = prior_vector(params.alpha, k)
    eta = 1.0 / k if params.eta == "symmetric" else float(params.eta)
    if params.term_weight != "one":
        log.warning(
            "tomotopy: lda.term_weight %s is sampled in floating point, which tomotopy's SIMD "
            "builds round differently: this fit may differ on another CPU (one: the same)",
            params.term_weight,
        )
    model = tp.LDAModel(
        tw=getattr(tp.TermWeight, params.term_weight.upper()),
        k=k,
        alpha=alpha.tolist() if params.alpha == "asymmetric" else float(alpha[0]),
        eta=eta,
        seed=seed,
        min_cf=0,
        rm_top=0,
    )
    # Words are term ids as text; each document lists every occurrence.
    names = np.asarray([str(i) for i in range(counts.shape[1])], dtype=object)
    starts, ids = token_sequences(counts, sequences)
    words = names[ids].tolist()
    bounds = starts.tolist()
    # A document without tokens (all its terms left out as background) is not sampled;
    # its topic mix is the prior's.
    sampled = [row for row in range(len(bounds) - 1) if bounds[row + 1] > bounds[row]]
    for row in sampled:
        model.add_doc(words[bounds[row] : bounds[row + 1]])
    del words  # tomotopy keeps its own copy, as word ids
    model.optim_interval = 10 if params.alpha == "auto" else 0
    parallel = tp.ParallelScheme.PARTITION
    trace = []
    done = 0
    tokens = int(counts.sum())
    while done < params.iterations:
        step = min(TOMOTOPY_LOG_EVERY, params.iterations - done)
        with warnings.catch_warnings():
            # "may differ ... if workers != 1": PARTITION with a fixed thread count does not.
            warnings.simplefilter("ignore", RuntimeWarning)
            model.train(step, workers=threads, parallel=parallel, show_progress=False)
        done += step
        if progress is not None:
            progress(step)
        # Rounded: tomotopy's AVX-512 build sums the likelihood in another order than its
        # AVX2 and SSE2 builds (the same samples, the last digits differ).
        trace.append({"iteration": float(done), "ll_per_word": round_float(model.ll_per_word)})
        if converged(trace, done * tokens, params):
            break
    shown = [t for t in trace if t["iteration"] % CONVERGENCE_WINDOW == 0 or t is trace[-1]]
    log.info(
        "tomotopy: %d sweeps%s; log-likelihood per word %s",
        done,
        " (converged)" if done < params.iterations else "",
        " → ".join(f"{t['ll_per_word']:.3f} ({t['iteration']:.0f})" for t in shown[-4:]),
    )
    phi = np.zeros((k, counts.shape[1]), dtype=np.float64)
    used = np.asarray([int(w) for w in model.used_vocabs], dtype=np.int64)
    for topic in range(k):
        phi[topic, used] = model.get_topic_word_dist(topic)
    if len(used) < counts.shape[1]:
        # Terms absent from these documents keep only the prior's share.
        n_k = np.asarray(model.get_count_by_topics(), dtype=np.float64)
        missing = np.setdiff1d(np.arange(counts.shape[1]), used)
        phi[:, missing] = (eta / (n_k + len(used) * eta))[:, None]
    # tomotopy returns float32 rows; under idf or pmi weighting they sum to 1 only within
    # about 1e-7, so every row is made a distribution in float64.
    phi /= phi.sum(axis=1, keepdims=True)
    theta = np.tile(np.asarray(model.alpha, dtype=np.float64).reshape(-1), (counts.shape[0], 1))
    theta[sampled] = np.asarray([doc.get_topic_dist() for doc in model.docs], dtype=np.float64)
    theta /= theta.sum(axis=1, keepdims=True)
    fitted = Fitted(
        engine="tomotopy",
        phi=phi,
        theta=theta,
        alpha=np.asarray(model.alpha, dtype=np.float64).reshape(-1),
        eta=float(model.eta),
        convergence=trace,
        # The trained model without its documents (what tomotopy saves with full=False): the
        # sampler's state (about 27 bytes a token) is freed before the topics are described.
        native=tp.LDAModel.loads(model.saves(full=False)),
    )
    del model
    trim_heap()
    return fitted


def trim_heap() -> None:
    """Give freed C/C++ heap pages back to the system (glibc's malloc_trim; elsewhere nothing):
    glibc keeps what tomotopy freed, and the process's peak would carry it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def converged(trace: list[dict[str, float]], updates: int, params: LdaParams) -> bool:
    """Whether Gibbs sampling may stop: the last ``CONVERGENCE_WINDOW`` sweeps raised the
    log-likelihood per word by less than ``params.tolerance`` (relative), once
    ``params.min_token_updates`` token updates (sweeps x tokens) are done. Small corpora, cheap to
    sample, thus get every sweep."""
    if params.tolerance is None or updates < params.min_token_updates or not trace:
        return False
    now = trace[-1]
    before = [t for t in trace if t["iteration"] == now["iteration"] - CONVERGENCE_WINDOW]
    if not before:
        return False
    gain = now["ll_per_word"] - before[0]["ll_per_word"]
    return gain < params.tolerance * abs(before[0]["ll_per_word"])


def fold_in(
    phi: np.ndarray,
    alpha: np.ndarray,
    counts: sp.csr_matrix,
    iterations: int = 200,
    tol: float = 1e-8,
    block: int = 4096,
) -> np.ndarray:
    """Topic mix of new documents under fixed topics (EM for theta), for any engine.

    Deterministic (it starts from uniform mixes) and needs only the saved arrays, which is
    what ``zhtopics infer`` and held-out perplexity use.
    """
    counts = sp.csr_matrix(counts, dtype=np.float64)
    n, k = counts.shape[0], phi.shape[0]
    theta = np.full((n, k), 1.0 / k)
    phi_t = np.ascontiguousarray(phi.T)
    for start in range(0, n, block):
        part = counts[start : start + block]
        rows = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
        t = theta[start : start + block]
        for _ in range(iterations):
            denom = np.einsum("ij,ij->i", t[rows], phi_t[part.indices])
            ratio = sp.csr_matrix(
                (part.data / np.maximum(denom, 1e-300), part.indices, part.indptr),
                shape=part.shape,
            )
            new = t * (ratio @ phi_t) + alpha[None, :]
            new /= new.sum(axis=1, keepdims=True)
            delta = np.abs(new - t).max() if new.size else 0.0
            t = new
            if delta < tol:
                break
        theta[start : start + block] = t
    return theta


def log_likelihood(
    phi: np.ndarray, theta: np.ndarray, counts: sp.csr_matrix, block: int = 1 << 20
) -> float:
    """Sum over tokens of log P(term | document) = log(theta . phi).

    Rows are taken about ``block`` stored counts at a time, so the temporaries stay small.
    """
    counts = sp.csr_matrix(counts)
    indptr = counts.indptr
    total = 0.0
    for row, end in row_spans(indptr, block):
        a, b = indptr[row], indptr[end]
        per_doc, columns = np.diff(indptr[row : end + 1]), counts.indices[a:b]
        p = np.zeros(b - a, dtype=np.float64)
        # One topic at a time: gathers from one row of phi and one column of theta stay in cache.
        for topic in range(phi.shape[0]):
            p += np.repeat(theta[row:end, topic], per_doc) * phi[topic, columns]
        total += float((counts.data[a:b] * np.log(np.maximum(p, 1e-300))).sum())
    return total
