"""Spun text (伪原创): a score per document for machine rewriting with odd synonyms.

A spinner rewrites a whole text, swapping words for near-synonyms (平易近 for 民, 年夜 for 大,
经由过程 for 通过, 根基 for 基本, 浸染 for 作用). The score adds two kinds of evidence:

* **known swaps**: the replacements of ``clean.replacements`` that changed the text, per 100
  ideographs. One swap per 100 ideographs is 1.0.
* **a statistical signal that needs no list**: the share of the text's character bigrams that
  are *rare*, i.e. inside no word of jieba's dictionary and seen in fewer than
  ``MIN_DOCUMENTS`` documents of the corpus. Swapped words leave such bigrams at their edges
  (根基国策 has 基国). Ordinary texts differ in this share too (names, foreign words), so it
  counts only as far as it stands out from the corpus' own distribution: the robust z-score
  ``(share - median) / (1.4826 MAD)`` over the corpus' documents, less ``Z_FREE`` (ordinary
  spread), in units of ``Z_UNIT``. It is computed on the cleaned text, where the swaps that
  the list repaired are gone and only the ones it does not know are left.

Documents are scored as a whole: with ``ingest.unit = paragraph`` the paragraphs of one parent
document share its score, since a rewriting tool spins the whole text and a paragraph holds too
few bigrams for a rate.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# The CJK Unified Ideographs block: a bigram of two of them is one integer code.
_BASE, _SPAN = 0x4E00, 0x9FFF - 0x4E00 + 1
# A bigram seen in at least this many documents of the corpus is not rare.
MIN_DOCUMENTS = 2
# The statistical part needs this many documents with MIN_BIGRAMS bigrams each to estimate the
# corpus' spread; with fewer (a handful of texts), the score is the known swaps alone.
MIN_UNITS = 20
MIN_BIGRAMS = 50
# Robust z-scores up to Z_FREE are ordinary spread; each Z_UNIT beyond it adds 1.0 to the score.
Z_FREE, Z_UNIT = 3.0, 2.0
# Unique bigram codes gathered before they are merged into the running counts.
_MERGE_EVERY = 1 << 22


def bigram_codes(text: str) -> np.ndarray:
    """The codes of the adjacent ideograph pairs of ``text``, in order (int64)."""
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64) - _BASE
    ideograph = (chars >= 0) & (chars < _SPAN)
    pair = ideograph[:-1] & ideograph[1:]
    return chars[:-1][pair] * _SPAN + chars[1:][pair]


def ideograph_count(text: str) -> int:
    """Characters of ``text`` in the CJK Unified Ideographs block."""
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64) - _BASE
    return int(np.count_nonzero((chars >= 0) & (chars < _SPAN)))


def jieba_dictionary() -> Path:
    """jieba's main dictionary (``word freq tag`` lines), as installed with the package."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("jieba is not installed: its dictionary is the spin reference")
    return Path(spec.origin).parent / "dict.txt"


@functools.lru_cache(maxsize=4)
def dictionary_bigrams(path: Path | None = None) -> np.ndarray:
    """Sorted unique codes of the bigrams inside the words of a jieba-format dictionary
    (jieba's own by default; read once per process)."""
    path = path or jieba_dictionary()
    words = [line.split(" ", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if len(w) > 1]
    # One text with a separator between words: no bigram spans two words.
    return np.unique(bigram_codes("\n".join(words)))


@dataclass
class BigramReference:
    """Document frequencies of bigrams, gathered a document at a time in bounded memory."""

    dictionary: np.ndarray
    _codes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    _counts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    _pending: list[np.ndarray] = field(default_factory=list)
    _pending_size: int = 0

    def add(self, codes: np.ndarray) -> None:
        """One document's bigram codes (repeats count once)."""
        unique = np.unique(codes)
        self._pending.append(unique)
        self._pending_size += unique.size
        if self._pending_size >= _MERGE_EVERY:
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        new, counts = np.unique(np.concatenate(self._pending), return_counts=True)
        codes = np.concatenate([self._codes, new])
        weights = np.concatenate([self._counts, counts])
        self._codes, inverse = np.unique(codes, return_inverse=True)
        self._counts = np.bincount(inverse, weights=weights).astype(np.int64)
        self._pending, self._pending_size = [], 0

    def common(self) -> np.ndarray:
        """Sorted codes that are not rare: in the dictionary or in MIN_DOCUMENTS documents."""
        self._merge()
        frequent = self._codes[self._counts >= MIN_DOCUMENTS]
        return np.union1d(self.dictionary, frequent)


def rare_bigrams(codes: np.ndarray, common: np.ndarray) -> int:
    """How many of ``codes`` are not in the sorted array ``common``."""
    if codes.size == 0 or common.size == 0:
        return int(codes.size)
    at = np.minimum(np.searchsorted(common, codes), common.size - 1)
    return int(np.count_nonzero(common[at] != codes))


_FROM_COUNTS = (-1.0, -1.0)


def spin_scores(
    swaps: Sequence[int] | np.ndarray,
    ideographs: Sequence[int] | np.ndarray,
    rare: Sequence[int] | np.ndarray,
    bigrams: Sequence[int] | np.ndarray,
    spread: tuple[float, float] | None = _FROM_COUNTS,
) -> np.ndarray:
    """The spin score of each document from its counts (see the module docstring); 0 is
    ordinary text. Rounded to 4 decimals, so that the published value is the same on any CPU.

    ``spread`` is the corpus' (median, MAD) of the rare-bigram share, taken from these counts
    by default; the Spark engine, which scores a part of the corpus at a time, passes the
    corpus' own (None when the statistical part does not apply)."""
    swaps = np.asarray(swaps, dtype=np.float64)
    ideographs = np.asarray(ideographs, dtype=np.float64)
    rare = np.asarray(rare, dtype=np.float64)
    bigrams = np.asarray(bigrams, dtype=np.float64)
    known = 100.0 * swaps / np.maximum(ideographs, 1.0)
    excess = np.zeros_like(known)
    enough = bigrams >= MIN_BIGRAMS
    share = np.divide(rare, bigrams, out=np.zeros_like(rare), where=bigrams > 0)
    if spread == _FROM_COUNTS:
        spread = None
        if np.count_nonzero(enough) >= MIN_UNITS:
            median = float(np.median(share[enough]))
            spread = (median, float(np.median(np.abs(share[enough] - median))))
    if spread is not None and spread[1] > 0:
        z = (share - spread[0]) / (1.4826 * spread[1])
        excess = np.where(enough, np.maximum(z - Z_FREE, 0.0) / Z_UNIT, 0.0)
    return np.round(known + excess, 4)


def spin_reason(score: float, threshold: float) -> str:
    """The words added to a flagged document's reason."""
    return f"spun: spin_score {score:.2f} >= clean.spin_threshold={threshold}"


class SpinScorer:
    """Spin scores of the documents of a corpus streamed twice: ``gather`` every piece (the
    bigram reference), then ``count`` every piece, then ``scores``.

    ``units`` name the document each row belongs to (the parent of a paragraph); a unit's rows
    come one after another. Only the ``counted`` rows (kept texts) enter the reference and the
    counts, so that a duplicated text does not make its own bigrams common.
    """

    def __init__(self, dictionary: np.ndarray | None = None) -> None:
        self.reference = BigramReference(dictionary_bigrams() if dictionary is None else dictionary)
        self._unit: str | None = None
        self._codes: list[np.ndarray] = []
        self._common: np.ndarray | None = None
        self._totals: dict[str, np.ndarray] = {}

    def gather(self, units: Sequence[str], texts: Sequence[str], counted: Sequence[bool]) -> None:
        """Pass one: the bigrams of each unit, for the document frequencies."""
        for unit, text, use in zip(units, texts, counted, strict=True):
            if unit != self._unit:
                self._close_unit()
                self._unit = unit
            if use:
                self._codes.append(bigram_codes(text))

    def _close_unit(self) -> None:
        if self._codes:
            self.reference.add(np.concatenate(self._codes))
        self._codes = []

    def count(
        self,
        units: Sequence[str],
        texts: Sequence[str],
        swaps: Sequence[int],
        counted: Sequence[bool],
    ) -> None:
        """Pass two: swaps, ideographs, bigrams and rare bigrams per unit."""
        if self._common is None:
            self._close_unit()
            self._common = self.reference.common()
        for unit, text, n_swaps, use in zip(units, texts, swaps, counted, strict=True):
            totals = self._totals.setdefault(unit, np.zeros(4, np.int64))
            if use:
                codes = bigram_codes(text)
                totals[:3] += (n_swaps, ideograph_count(text), codes.size)
                totals[3] += rare_bigrams(codes, self._common)

    def scores(self) -> dict[str, float]:
        """Unit -> spin score."""
        units = list(self._totals)
        if not units:
            return {}
        counts = np.stack([self._totals[u] for u in units])
        values = spin_scores(counts[:, 0], counts[:, 1], counts[:, 3], counts[:, 2])
        return dict(zip(units, values.tolist(), strict=True))
