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

Short units (paragraphs of speeches or reports) defeat the evenness: a subject word rarely
repeats within one paragraph, so it looks as even as formula. When the units are parts of
larger parent documents (ingest's ``parent_id``; at least one parent with two or more units),
a term is background only if it is also in at least ``tfidf.background_min_parent_share`` of
the parent documents and spread over them as evenly: ``1 - DP`` at least
``tfidf.background_min_evenness``, where DP is Gries' (2008) deviation of proportions, half the
summed difference between the share of the term's occurrences in each parent and the parent's
share of all tokens (0: exactly proportional, near 1: all in one parent). Formula is in nearly
every parent, in proportion; a subject concentrates in the parents about it.

Short documents defeat the evenness in a second way: in a corpus of one-paragraph rulings
(30 tokens each) the case type's own words (房屋, 征收) occur once per document like the
formula. What sets them apart is their company: a formula word's strongest partners are other
formula words (原告 with 被告, 代理人 with 委托), a subject word has a strong partner outside the
formula (征收 with 补偿, 房屋 with 拆迁). So a frequent, even term stays in the model when its
best document co-occurrence NPMI with a term that is not itself frequent and even (in at least
1% of the documents, at least 5 of them) reaches ``tfidf.background_min_partner_npmi``.
This check is for documents without parents; paragraphs are judged by their parents.

Term weights (``lda.term_weight``) are those of Wilson & Chew (2010), as tomotopy's
``TermWeight`` implements them: ``one`` counts each token once; ``idf`` weighs each token of
term w by log(N / df_w); ``pmi`` weighs a token of w in document d by
max(0, log(P(w | d) / P(w))).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ParentSpread:
    """How each term spreads over the parent documents of the units (paragraphs)."""

    share: np.ndarray  # share of the parent documents that have the term
    evenness: np.ndarray  # 1 - DP (Gries' deviation of proportions) over the parents
    grouped: bool  # some parent has two or more units: the parent criterion applies


def parent_spread(
    parent_of_row: np.ndarray, rows: np.ndarray, indices: np.ndarray, data: np.ndarray, n_terms: int
) -> ParentSpread:
    """The terms' spread over parent documents, from the (row, term, count) entries of the
    counts and each row's parent index (``parent_of_row``, 0 .. P-1)."""
    parent_of_row = np.asarray(parent_of_row, dtype=np.int64)
    n_parents = int(parent_of_row.max()) + 1 if len(parent_of_row) else 0
    if n_parents == 0:
        empty = np.zeros(n_terms)
        return ParentSpread(empty, empty, False)
    parents = parent_of_row[np.asarray(rows, dtype=np.int64)]
    by_parent = sp.csr_matrix(
        (np.asarray(data, dtype=np.float64), (parents, np.asarray(indices, dtype=np.int64))),
        shape=(n_parents, n_terms),
    )
    grouped = bool(np.bincount(parent_of_row, minlength=n_parents).max() >= 2) and n_parents >= 2
    return spread_over_parents(by_parent, grouped)


def spread_over_parents(by_parent: sp.csr_matrix, grouped: bool) -> ParentSpread:
    """The terms' spread over parent documents from their counts per parent (one row per
    parent, in order of first appearance; ``grouped``: some parent has two or more units)."""
    by_parent = sp.csr_matrix(by_parent, dtype=np.float64)
    by_parent.sum_duplicates()
    n_parents, n_terms = by_parent.shape
    present = np.bincount(by_parent.indices, minlength=n_terms)
    share = present / n_parents
    cf = np.asarray(by_parent.sum(axis=0), dtype=np.float64).ravel()
    size = np.asarray(by_parent.sum(axis=1), dtype=np.float64).ravel()
    expected = size / max(size.sum(), 1.0)  # each parent's share of all tokens
    # DP = 0.5 * sum_p |observed_p - expected_p|; over the parents without the term the
    # difference is expected_p (summing to 1 - the expected of those with it), so only the
    # parents with the term need visiting.
    observed = by_parent.tocsc()
    column = np.repeat(np.arange(n_terms), np.diff(observed.indptr))
    where = expected[observed.indices]
    per_entry = np.abs(observed.data / np.maximum(cf, 1.0)[column] - where) - where
    summed = np.bincount(column, weights=per_entry, minlength=n_terms)
    dp = np.where(cf > 0, 0.5 * (summed + 1.0), 1.0)
    return ParentSpread(
        np.round(share, SCORE_DECIMALS), np.round(1.0 - dp, SCORE_DECIMALS), grouped
    )


# A partner must be in at least this share of the documents (and PARTNER_MIN_DOCS of them):
# rarer terms co-occur by accident with a high NPMI.
PARTNER_MIN_DF = 0.01
PARTNER_MIN_DOCS = 5


def partner_npmi(
    indptr: np.ndarray, indices: np.ndarray, candidates: np.ndarray, n_terms: int
) -> np.ndarray:
    """Per term, its best document co-occurrence NPMI with a partner outside ``candidates``
    (partners in at least PARTNER_MIN_DF of the documents); computed for the candidates only,
    -1 for every other term and for a candidate without any partner."""
    candidates = np.asarray(candidates, dtype=bool)
    best = np.full(n_terms, -1.0)
    n_docs = len(indptr) - 1
    if n_docs < 1 or not candidates.any():
        return best
    present = sp.csr_matrix(
        (np.ones(len(indices)), np.asarray(indices), np.asarray(indptr)), shape=(n_docs, n_terms)
    )
    present.sum_duplicates()
    present.data[:] = 1.0
    df = np.asarray(present.sum(axis=0), dtype=np.float64).ravel()
    partner = partner_terms(df, candidates, n_docs)
    cand_ids = np.flatnonzero(candidates)
    joint = (present[:, cand_ids].T.tocsr() @ present[:, partner]).tocoo()
    partner_ids = np.flatnonzero(partner)
    return best_npmi(cand_ids[joint.row], partner_ids[joint.col], joint.data, df, n_docs)


def partner_terms(df: np.ndarray, candidates: np.ndarray, n_docs: int) -> np.ndarray:
    """Which terms may be partners: outside ``candidates``, in at least PARTNER_MIN_DF of
    the ``n_docs`` documents (and PARTNER_MIN_DOCS of them); ``df`` per term."""
    df = np.asarray(df, dtype=np.float64)
    return ~np.asarray(candidates, dtype=bool) & (
        df >= max(PARTNER_MIN_DF * n_docs, PARTNER_MIN_DOCS)
    )


def best_npmi(
    a: np.ndarray, b: np.ndarray, together: np.ndarray, df: np.ndarray, n_docs: int
) -> np.ndarray:
    """Per term, its best NPMI over the pairs (candidate ``a``, partner ``b``) that share
    ``together`` documents (``df`` per term); -1 for a term without a pair."""
    best = np.full(len(df), -1.0)
    if len(a) == 0:
        return best
    df = np.asarray(df, dtype=np.float64)
    p_ab = np.asarray(together, dtype=np.float64) / n_docs
    p_a, p_b = df[a] / n_docs, df[b] / n_docs
    with np.errstate(divide="ignore", invalid="ignore"):
        npmi = np.where(p_ab < 1.0, np.log(p_ab / (p_a * p_b)) / -np.log(p_ab), 1.0)
    np.maximum.at(best, a, npmi)
    return np.round(best, SCORE_DECIMALS)


def flag_background(
    terms: list[str],
    df: np.ndarray,
    score: np.ndarray,
    n_docs: int,
    min_df: float,
    min_evenness: float,
    keep: frozenset[str] = frozenset(),
    parents: ParentSpread | None = None,
    min_parent_share: float = 0.8,
    partner: np.ndarray | None = None,
    min_partner_npmi: float = 0.5,
) -> np.ndarray:
    """Which terms are background: in at least ``min_df`` (a share) of the ``n_docs``
    documents, with evenness at least ``min_evenness``, and not named in ``keep``; when the
    documents are grouped under parents, also in at least ``min_parent_share`` of the parents
    with a parent evenness (1 - DP) of at least ``min_evenness``; and without a partner
    (``partner``: best NPMI with a term outside the candidates, see partner_npmi) of at least
    ``min_partner_npmi``."""
    df = np.asarray(df, dtype=np.float64)
    flags = (df >= min_df * n_docs) & (np.asarray(score) >= min_evenness) & (df > 0)
    if parents is not None and parents.grouped and flags.any():
        spread = (parents.share >= min_parent_share) & (parents.evenness >= min_evenness)
        if (flags & ~spread).any():
            log.info(
                "background: %d frequent, even term(s) not flagged: they concentrate in some "
                "parent documents (tfidf.background_min_parent_share): %s",
                int((flags & ~spread).sum()),
                " ".join(t for t, f in zip(terms, flags & ~spread, strict=True) if f),
            )
        flags &= spread
    # The parents, when there are some, are the stronger evidence; the partner check is for
    # documents without them (and in a small corpus of paragraphs it is mostly chance).
    if partner is not None and flags.any() and not (parents is not None and parents.grouped):
        company = flags & (np.asarray(partner) >= min_partner_npmi)
        if company.any():
            log.info(
                "background: %d frequent, even term(s) not flagged: a partner outside the "
                "formula (tfidf.background_min_partner_npmi): %s",
                int(company.sum()),
                " ".join(t for t, f in zip(terms, company, strict=True) if f),
            )
        flags &= ~company
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
