"""Corpus boilerplate ("background" terms) found from the corpus itself, and term weights.

A background term is one that many documents use and that is spread over them as evenly as
chance allows: the formula of a genre (本院, 代理人, 开庭审理 in court rulings; 组图, 编辑, 近日
in news), which a topic model otherwise turns into topics of the genre instead of the subject.

The score is the term's *evenness*: its document frequency against the document frequency its
occurrences would reach if they fell on documents independently (Poisson),
``df / (N * (1 - exp(-cf / N)))`` = 2 ** -RIDF (residual IDF, Church & Gale 1995). A topical
word comes in bursts: where it occurs it occurs several times, so it reaches far fewer
documents than chance (evenness 0.2 to 0.6); a formula word occurs about once in every document
that has it (evenness near or above 1). A term is flagged when it is in at least
``tfidf.background_min_df`` of the documents and its evenness is at least
``tfidf.background_min_evenness``, unless the keep-list names it.

Term weights (``lda.term_weight``) are those of Wilson & Chew (2010), as tomotopy's
``TermWeight`` implements them: ``one`` counts each token once; ``idf`` weighs each token of
term w by log(N / df_w); ``pmi`` weighs a token of w in document d by
max(0, log(P(w | d) / P(w))).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from pipeline.config import LdaParams

log = logging.getLogger(__name__)


class BackgroundError(ValueError):
    """Leaving the background terms out would leave nothing to model; the message says what
    to change."""


# Scores are published rounded, so that the same counts give the same bytes on any CPU.
SCORE_DECIMALS = 6


def evenness(df: np.ndarray, cf: np.ndarray, n_docs: int) -> np.ndarray:
    """Document frequency over the one expected if each occurrence fell on a random document.

    ``df`` and ``cf`` are per term: documents with the term and its occurrences in them.
    """
    df = np.asarray(df, dtype=np.float64)
    cf = np.asarray(cf, dtype=np.float64)
    if n_docs < 1:
        return np.zeros(len(df))
    expected = -np.expm1(-cf / n_docs) * n_docs
    score = np.divide(df, expected, out=np.zeros(len(df)), where=expected > 0)
    return np.round(score, SCORE_DECIMALS)


def flag_background(
    terms: list[str],
    df: np.ndarray,
    score: np.ndarray,
    n_docs: int,
    min_df: float,
    min_evenness: float,
    keep: frozenset[str] = frozenset(),
) -> np.ndarray:
    """Which terms are background: in at least ``min_df`` (a share) of the ``n_docs``
    documents, with evenness at least ``min_evenness``, and not named in ``keep``."""
    df = np.asarray(df, dtype=np.float64)
    flags = (df >= min_df * n_docs) & (np.asarray(score) >= min_evenness) & (df > 0)
    if keep and flags.any():
        kept = np.fromiter((t in keep for t in terms), dtype=bool, count=len(terms))
        if (flags & kept).any():
            log.info(
                "background: %d term(s) of the keep-list stay in the model: %s",
                int((flags & kept).sum()),
                " ".join(t for t, f in zip(terms, flags & kept, strict=True) if f),
            )
        flags &= ~kept
    return flags


def read_keep_terms(path: Path | None) -> frozenset[str]:
    """Words of a keep-list file: one a line, text after # a comment, blank lines ignored."""
    if path is None:
        return frozenset()
    words = set()
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            words.add(word)
    return frozenset(words)


def left_out(vocabulary: pa.Table, params: LdaParams, where: str) -> np.ndarray | None:
    """The terms the model leaves out: those flagged background when ``lda.background`` is
    "drop" (None when nothing is left out). Logs them, so that a user sees the choice."""
    if params.background != "drop" or "is_background" not in vocabulary.column_names:
        return None
    flags = vocabulary.column("is_background").to_numpy(zero_copy_only=False).astype(bool)
    if not flags.any():
        return None
    terms = vocabulary.column("term").to_pylist()
    log.info(
        "%s: %d background term(s) left out of the model (lda.background: drop): %s",
        where,
        int(flags.sum()),
        " ".join(t for t, f in zip(terms, flags, strict=True) if f),
    )
    return flags


def drop_columns(matrix: sp.csr_matrix, drop: np.ndarray) -> sp.csr_matrix:
    """``matrix`` with the entries of the columns flagged in ``drop`` removed (same shape)."""
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.data[drop[matrix.indices]] = 0
    matrix.eliminate_zeros()
    return matrix


def drop_terms(
    counts: sp.csr_matrix,
    sequences: tuple[np.ndarray, np.ndarray],
    drop: np.ndarray | None,
    where: str = "lda",
) -> tuple[sp.csr_matrix, tuple[np.ndarray, np.ndarray]]:
    """The counts and token sequences (starts, term ids) without the terms flagged in
    ``drop``. The columns stay, empty; a document may be left with no tokens, but at least two
    must keep some (else a BackgroundError says which settings to change)."""
    if drop is None or not np.any(drop):
        return counts, sequences
    counts = drop_columns(counts, np.asarray(drop, dtype=bool))
    if np.count_nonzero(np.diff(counts.indptr)) < 2:
        raise BackgroundError(
            f"{where}: the {int(np.sum(drop))} background term(s) are nearly all the corpus' "
            "tokens: fewer than 2 documents keep a term. Raise tfidf.background_min_df or "
            "tfidf.background_min_evenness, list the subject's words in tfidf.keep_terms, or "
            "set lda.background: include"
        )
    drop = np.asarray(drop, dtype=bool)
    starts, ids = sequences
    keep = ~drop[ids]
    rows = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    new_starts = np.zeros_like(starts)
    np.cumsum(np.bincount(rows[keep], minlength=len(starts) - 1), out=new_starts[1:])
    return counts, (new_starts, ids[keep])


def term_weights(counts: sp.csr_matrix, scheme: str) -> sp.csr_matrix:
    """Each count times its weight under ``scheme`` (``one``, ``idf``, ``pmi``), as
    tomotopy's TermWeight defines them: what the gensim engine fits instead of raw counts."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    if scheme == "one":
        return counts
    n_docs = counts.shape[0]
    if scheme == "idf":
        df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
        idf = np.log(n_docs / np.maximum(df, 1.0))
        weighted = counts.multiply(idf[None, :]).tocsr()
    elif scheme == "pmi":
        lengths = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
        cf = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
        rows = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
        p_wd = counts.data / lengths[rows]
        p_w = cf[counts.indices] / cf.sum()
        weights = np.maximum(np.log(p_wd / p_w), 0.0)
        weighted = sp.csr_matrix(
            (counts.data * weights, counts.indices.copy(), counts.indptr.copy()),
            shape=counts.shape,
        )
    else:
        raise ValueError(f"unknown term weighting {scheme!r}; expected one, idf or pmi")
    weighted.eliminate_zeros()
    return weighted
