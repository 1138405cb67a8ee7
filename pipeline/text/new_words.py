"""New-word discovery: character strings that behave as words in a corpus but are missing from
the tokenizer's dictionary (coined terms such as 供给侧结构性改革, 放管服, 中国制造2025).

The classic method (Sproat & Shih's mutual information, Feng et al.'s accessor variety, in its
entropy form): a string of 2 to ``max_chars`` characters is a word when it

- recurs: at least ``min_count`` occurrences;
- holds together: its *cohesion*, the smallest normalised pointwise mutual information over
  the ways of cutting it in two, ``min_k ln(p(w) / (p(w[:k]) p(w[k:]))) / -ln p(w)``, is at
  least ``min_cohesion`` (1: the parts never occur apart; 0: they meet by chance);
- is free at both edges: the entropy of the character before it (*left entropy*) and after it
  (*right entropy*) are both at least ``min_entropy`` (nats). The start or end of a text and
  punctuation count as a different neighbour each time.

Counting is level by level (1-grams, 2-grams, ... ``max_chars + 1``), one pass per level over
the texts, decoded once into a spool of code points on disk and read back memory-mapped in
batches of about BATCH_BYTES of text. Every n-gram is a 64-bit polynomial hash of its characters
computed in numpy (two distinct strings of the same length share a hash with a probability of
about 1e-5 among ten million; a string's prefix and suffix hashes follow from its own and its
end characters). An n-gram can only be frequent when its (n-1)-character prefix and suffix are,
and its neighbours only matter when its prefix or suffix is a cohesive candidate, so a pass
counts only those positions (tested against bit sets) per batch with ``np.unique``; the
(n+1)-grams counted give the neighbour counts of the n-grams. Nothing is held per character in
Python objects; the largest arrays are a level's distinct n-grams. The result does not depend
on batch sizes.

Then ``judge`` applies what statistics cannot see (the dictionary, stopwords, fragments of
longer words, compounds of dictionary words, the user dictionary, the user's review), and
``document_frequency`` makes one more pass for document counts and an example of each word.
"""

from __future__ import annotations

import logging
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrays import string_array, to_arrow, to_numpy
from pipeline.text.token_filters import NUMERIC

log = logging.getLogger(__name__)

# An odd multiplier is invertible modulo 2**64: a hash minus its last character gives its prefix.
_BASE = 0x9E3779B97F4A7C15
_BASE_INV = pow(_BASE, -1, 1 << 64)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_BLOOM_BITS = 28
# Text bytes decoded and counted at a time (about 1.4 million Chinese characters).
BATCH_BYTES = 4 << 20  # a bit set of 2**28 bits (32 MB) for "was this (n-1)-gram frequent"
# Characters that may be part of a word: Han, ASCII and full-width letters and digits, and the
# joiners + and # (互联网+, C#). A candidate holds at least one Han character and does not start
# with a joiner; any other character (punctuation, space) ends a word.
_JOINERS = (0x2B, 0x23, 0xFF0B, 0xFF03)
# Grammatical particles: a string with one inside is a phrase (讲了话, 发展的道路).
_PARTICLES = frozenset("的了着过地得之所吗呢吧啊")
# Why a listed candidate is not accepted (empty when it is).
REASONS = ("", "fragment", "stopword", "compound", "numeric", "userdict", "rejected")


@dataclass(frozen=True)
class Thresholds:
    """What makes a string a word (see the module docstring)."""

    min_count: int = 5
    min_cohesion: float = 0.7
    min_entropy: float = 1.5
    max_chars: int = 8
    # A compound (it starts or ends with a dictionary word of 2 or more characters, as in
    # 扶贫资金 or 江泽民主席) is mostly a phrase: it needs this much entropy at both edges.
    compound_entropy: float = 2.5
    # A candidate is a fragment of a longer accepted one that contains it when the longer one
    # makes up at least this share of its occurrences.
    fragment_share: float = 0.7
    # Rows of the table at most (accepted words first by score, then the rejected ones).
    max_rows: int = 2000


@dataclass(frozen=True)
class Checks:
    """What the statistics cannot know: the tokenizer's dictionary and how it cuts a string,
    the stopwords, the user's words (they win) and the user's review (word -> keep/reject)."""

    known: Callable[[str], bool]
    cut: Callable[[str], list[str]]  # by the dictionary alone (no HMM)
    pieces: Callable[[str], list[str]]  # what the tokenizer (with its HMM setting) makes of it
    stopwords: frozenset[str] = frozenset()
    userwords: frozenset[str] = frozenset()
    review: dict[str, bool] = field(default_factory=dict)


@dataclass
class Candidates:
    """Strings that pass the statistical thresholds, one entry each (parallel lists)."""

    words: list[str]
    frequency: np.ndarray
    cohesion: np.ndarray
    left_entropy: np.ndarray
    right_entropy: np.ndarray
    keys: np.ndarray  # uint64 hash of each word
    total_chars: int = 0


# --------------------------------------------------------------------------- characters


@dataclass
class _Batch:
    """A batch of texts as code points, with a 0 between texts, and for each position the
    number of word characters from it to the end of its run (0 at a non-word character; at
    most 255); ``starts``: where each text starts."""

    codes: np.ndarray  # uint32
    run: np.ndarray  # uint8
    starts: np.ndarray  # int64

    def doc(self, positions: np.ndarray) -> np.ndarray:
        """The (batch-local) text of each position."""
        return np.searchsorted(self.starts, positions, side="right") - 1


class _Spool:
    """The texts as batches of code points, decoded once and kept in temporary files that
    the passes over the corpus read back memory-mapped (the corpus is never held at once)."""

    def __init__(self, texts: Callable[[], Iterable[pa.Array]]) -> None:
        self._texts = texts
        self._folder: tempfile.TemporaryDirectory | None = None
        self.count = 0

    def __enter__(self) -> _Spool:
        self._folder = tempfile.TemporaryDirectory(prefix="zhtopics-new-words-")
        folder = Path(self._folder.name)
        for texts in self._texts():
            for piece in _pieces(texts, BATCH_BYTES):
                batch = _batch(piece)
                for name in ("codes", "run", "starts"):
                    np.save(folder / f"{self.count}.{name}.npy", getattr(batch, name))
                self.count += 1
        return self

    def __exit__(self, *exc) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def __iter__(self) -> Iterator[_Batch]:
        assert self._folder is not None, "use the spool in a with block"
        folder = Path(self._folder.name)
        for i in range(self.count):
            arrays = [
                np.load(folder / f"{i}.{n}.npy", mmap_mode="r") for n in _Batch.__annotations__
            ]
            yield _Batch(*arrays)


def _pieces(texts: pa.Array, size: int) -> Iterator[pa.Array]:
    """Consecutive slices of ``texts`` of about ``size`` bytes of text each (one text at least):
    the arrays of a pass are a few times the size of a piece."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = texts.cast(pa.string())
    _, offsets_buffer, _ = texts.buffers()
    if offsets_buffer is None or len(texts) == 0:
        return
    offsets = np.frombuffer(offsets_buffer, np.int32)[texts.offset : texts.offset + len(texts) + 1]
    start = 0
    while start < len(texts):
        stop = int(np.searchsorted(offsets, offsets[start] + size, side="right")) - 1
        stop = min(max(stop, start + 1), len(texts))
        yield texts.slice(start, stop - start)
        start = stop


def decode_utf8(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Code points of all texts end to end (uint32) and where each text starts in them."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = texts.cast(pa.string())  # a null (not in clean.parquet) reads as empty
    _, offsets_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32)[texts.offset : texts.offset + len(texts) + 1]
    data = memoryview(data_buffer)[offsets[0] : offsets[-1]] if data_buffer is not None else b""
    codes = np.frombuffer(str(data, "utf-8").encode("utf-32-le"), np.uint32)
    lengths = to_numpy(pc.utf8_length(texts)).astype(np.int64)
    starts = np.zeros(len(texts), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return codes, starts


def is_han(codes: np.ndarray) -> np.ndarray:
    return (
        ((codes >= 0x4E00) & (codes <= 0x9FFF))
        | ((codes >= 0x3400) & (codes <= 0x4DBF))
        | ((codes >= 0xF900) & (codes <= 0xFAFF))
        | ((codes >= 0x20000) & (codes <= 0x3134F))
        | (codes == 0x3007)
    )


def _is_word_char(codes: np.ndarray) -> np.ndarray:
    ascii_alnum = (
        ((codes >= 0x30) & (codes <= 0x39))
        | ((codes >= 0x41) & (codes <= 0x5A))
        | ((codes >= 0x61) & (codes <= 0x7A))
    )
    wide_alnum = (
        ((codes >= 0xFF10) & (codes <= 0xFF19))
        | ((codes >= 0xFF21) & (codes <= 0xFF3A))
        | ((codes >= 0xFF41) & (codes <= 0xFF5A))
    )
    return is_han(codes) | ascii_alnum | wide_alnum | np.isin(codes, _JOINERS)


def _batch(texts: pa.Array) -> _Batch:
    codes, starts = decode_utf8(texts)
    # A 0 (not a word character) before every text but the first keeps words within a text.
    codes = np.insert(codes, starts[1:], 0)
    starts = starts + np.arange(len(starts))
    size = len(codes)
    index = np.arange(size, dtype=np.int64)
    next_break = np.where(_is_word_char(codes), size, index)
    next_break = np.minimum.accumulate(next_break[::-1])[::-1]
    run = np.minimum(next_break - index, 255).astype(np.uint8)
    return _Batch(codes, run, starts)


def _hashes(batch: _Batch, up_to: int) -> Iterator[np.ndarray]:
    """The hash of the n characters at each position, for n = 1 .. up_to (arrays shrink by one
    each level: position i of level n covers characters i .. i + n - 1)."""
    values = batch.codes.astype(np.uint64) + np.uint64(1)
    level = values
    yield level
    base = np.uint64(_BASE)
    for n in range(2, up_to + 1):
        with np.errstate(over="ignore"):
            level = level[:-1] * base + values[n - 1 :]
        yield level


def hash_words(words: Iterable[str]) -> np.ndarray:
    """The hash each word gets from the counting (uint64)."""
    out = []
    for word in words:
        h = 0
        for char in word:
            h = (h * _BASE + ord(char) + 1) & 0xFFFFFFFFFFFFFFFF
        out.append(h)
    return np.array(out, dtype=np.uint64)


def _hash_rows(chars: np.ndarray) -> np.ndarray:
    """Hashes of the rows of a (count, n) matrix of code points."""
    h = np.zeros(len(chars), np.uint64)
    base = np.uint64(_BASE)
    with np.errstate(over="ignore"):
        for j in range(chars.shape[1]):
            h = h * base + chars[:, j].astype(np.uint64) + np.uint64(1)
    return h


class _BitSet:
    """Membership of 64-bit hashes, without false negatives (a few false positives)."""

    def __init__(self, keys: np.ndarray) -> None:
        self.bits = np.zeros(1 << (_BLOOM_BITS - 3), np.uint8)
        slots = self._slots(keys)
        np.bitwise_or.at(self.bits, slots >> 3, (1 << (slots & 7)).astype(np.uint8))

    @staticmethod
    def _slots(keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return ((keys * _MIX) >> np.uint64(64 - _BLOOM_BITS)).astype(np.int64)

    def test(self, keys: np.ndarray) -> np.ndarray:
        slots = self._slots(keys)
        return ((self.bits[slots >> 3] >> (slots & 7).astype(np.uint8)) & 1).astype(bool)


# --------------------------------------------------------------------------- counting


@dataclass
class _Level:
    """The distinct n-grams of one level that were counted, sorted by hash."""

    n: int
    keys: np.ndarray  # uint64, sorted
    counts: np.ndarray  # int64
    first: np.ndarray  # uint32 code point of the first character
    last: np.ndarray  # uint32 code point of the last character


@dataclass
class _Frequent:
    """The frequent n-grams of a level: hash, count, characters (sorted by hash)."""

    keys: np.ndarray
    counts: np.ndarray
    chars: np.ndarray  # (count, n) uint32
    cohesion: np.ndarray | None = None  # float64 (n >= 2)
    candidate: np.ndarray | None = None  # bool: may be a word (Han, cohesive): its neighbours


def _count_level(spool: _Spool, n: int, frequent: _Frequent | None) -> _Level:
    """One pass: the n-grams that may be frequent (prefix and suffix are) and those that are
    neighbours of a candidate (prefix or suffix is one); all of them for n = 1."""
    bitset = _BitSet(frequent.keys) if frequent is not None else None
    candidates = None
    if frequent is not None and frequent.candidate is not None:
        candidates = _BitSet(frequent.keys[frequent.candidate])
    parts: list[tuple[np.ndarray, ...]] = []
    for batch in spool:
        levels = deque(_hashes(batch, n), maxlen=2)
        keys = levels[-1]
        keep = batch.run[: len(keys)] >= n
        if bitset is not None:
            known = bitset.test(levels[-2])
            wanted = known[:-1] & known[1:]
            if candidates is not None:
                near = candidates.test(levels[-2])
                wanted |= near[:-1] | near[1:]
            keep &= wanted
        positions = np.flatnonzero(keep)
        unique, index, counts = np.unique(keys[positions], return_index=True, return_counts=True)
        counts = counts.astype(np.uint32)
        at = positions[index]
        parts.append((unique, counts, batch.codes[at], batch.codes[at + n - 1]))
    keys = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64)
    if not len(keys):
        empty = np.zeros(0, np.uint32)
        return _Level(n, keys, np.zeros(0, np.int64), empty, empty)
    counts = np.concatenate([p[1] for p in parts]).astype(np.int64)
    first = np.concatenate([p[2] for p in parts])
    last = np.concatenate([p[3] for p in parts])
    del parts
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return _Level(
        n,
        keys[starts],
        np.add.reduceat(counts[order], starts) if len(starts) else counts,
        first[order][starts],
        last[order][starts],
    )


def _entropy(
    groups: np.ndarray, counts: np.ndarray, keys: np.ndarray, totals: np.ndarray
) -> np.ndarray:
    """Branching entropy (nats) of each key: its neighbours are the entries of ``groups`` equal
    to it, with ``counts``; the rest of its ``totals`` occurrences are at a boundary and count as
    a different neighbour each."""
    unique, inverse = np.unique(groups, return_inverse=True)
    c = counts.astype(np.float64)
    s = np.bincount(inverse, weights=c * np.log(c), minlength=len(unique))
    where = np.searchsorted(unique, keys)
    where = np.minimum(where, max(len(unique) - 1, 0))
    found = unique[where] == keys if len(unique) else np.zeros(len(keys), bool)
    s_keys = np.where(found, s[where] if len(unique) else 0.0, 0.0)
    n = totals.astype(np.float64)
    return np.log(n) - s_keys / n


def count_candidates(
    batches: Callable[[], Iterable[pa.Array]], thresholds: Thresholds
) -> Candidates:
    """Every string of 2 to max_chars characters with at least one Han character that passes the
    frequency, cohesion and entropy thresholds, with its statistics.

    ``batches`` yields the texts as arrow string arrays (it is read once).
    """
    with _Spool(batches) as spool:
        return _count_candidates(spool, thresholds)


def _count_candidates(spool: _Spool, thresholds: Thresholds) -> Candidates:
    m = thresholds.min_count
    top = thresholds.max_chars
    base_inv = np.uint64(_BASE_INV)
    ones = np.uint64(1)
    frequent: dict[int, _Frequent] = {}
    right: dict[int, np.ndarray] = {}
    left: dict[int, np.ndarray] = {}
    previous: _Frequent | None = None
    total = 0
    for n in range(1, top + 2):
        level = _count_level(spool, n, previous)
        if n == 1:
            total = int(level.counts.sum())
        if n >= 3:  # the neighbours of the level before
            with np.errstate(over="ignore"):
                prefix = (level.keys - level.last.astype(np.uint64) - ones) * base_inv
                power = np.uint64(pow(_BASE, n - 1, 1 << 64))
                suffix = level.keys - (level.first.astype(np.uint64) + ones) * power
            prev = frequent[n - 1]
            # Only a candidate's neighbours were all counted.
            right[n - 1] = np.where(
                prev.candidate, _entropy(prefix, level.counts, prev.keys, prev.counts), 0.0
            )
            left[n - 1] = np.where(
                prev.candidate, _entropy(suffix, level.counts, prev.keys, prev.counts), 0.0
            )
        if n > top:
            break
        keep = level.counts >= m
        if n == 1:
            chars = level.first[keep][:, None]
        else:
            with np.errstate(over="ignore"):
                prefix_keys = (level.keys[keep] - level.last[keep].astype(np.uint64) - ones) * (
                    base_inv
                )
            at = np.searchsorted(previous.keys, prefix_keys)
            chars = np.hstack([previous.chars[at], level.last[keep][:, None]])
        previous = _Frequent(level.keys[keep], level.counts[keep], chars)
        frequent[n] = previous
        if n >= 2:
            previous.cohesion = _cohesion(frequent, n, total)
            previous.candidate = (
                is_han(chars).any(axis=1)
                & ~np.isin(chars[:, 0], _JOINERS)
                & (previous.cohesion >= thresholds.min_cohesion)
            )
        log.debug("new words: %d frequent %d-grams of %d counted", keep.sum(), n, len(level.keys))
        if not keep.any():
            break
    return _score(frequent, left, right, total, thresholds)


def _score(
    frequent: dict[int, _Frequent],
    left: dict[int, np.ndarray],
    right: dict[int, np.ndarray],
    total: int,
    thresholds: Thresholds,
) -> Candidates:
    words: list[str] = []
    columns: list[list[np.ndarray]] = [[], [], [], [], []]
    for n in range(2, thresholds.max_chars + 1):
        if n not in frequent or n not in left:
            continue
        level = frequent[n]
        chars = level.chars
        cohesion = level.cohesion
        ok = (
            level.candidate
            & (left[n] >= thresholds.min_entropy)
            & (right[n] >= thresholds.min_entropy)
        )
        picked = np.flatnonzero(ok)
        rows = chars[picked]
        words.extend(_strings(rows))
        columns[0].append(level.counts[picked])
        columns[1].append(cohesion[picked])
        columns[2].append(left[n][picked])
        columns[3].append(right[n][picked])
        columns[4].append(level.keys[picked])
    if not words:
        empty = np.zeros(0)
        return Candidates([], empty.astype(np.int64), empty, empty, empty, empty.astype(np.uint64))
    return Candidates(words, *(np.concatenate(c) for c in columns), total_chars=total)


def _cohesion(frequent: dict[int, _Frequent], n: int, total: int) -> np.ndarray:
    """The smallest PMI (nats) over the two-way cuts of each frequent n-gram."""
    level = frequent[n]
    chars = level.chars
    cohesion = np.full(len(level.keys), np.inf)
    joint = np.log(level.counts.astype(np.float64) * float(total))
    for k in range(1, n):
        a = _lookup(frequent[k], _hash_rows(chars[:, :k])).astype(np.float64)
        b = _lookup(frequent[n - k], _hash_rows(chars[:, k:])).astype(np.float64)
        cohesion = np.minimum(cohesion, joint - np.log(a * b))
    # Normalised by -ln p(w), the PMI of a string whose parts never occur apart: 1 for such a
    # string, 0 for parts that meet by chance, whatever the size of the corpus.
    return cohesion / (np.log(float(total)) - np.log(level.counts.astype(np.float64)))


def _lookup(frequent: _Frequent, keys: np.ndarray) -> np.ndarray:
    """Counts of keys that are frequent (every part of a frequent string is)."""
    at = np.searchsorted(frequent.keys, keys)
    at = np.minimum(at, len(frequent.keys) - 1)
    if not np.array_equal(frequent.keys[at], keys):
        raise RuntimeError("new words: a part of a frequent string was not counted")
    return frequent.counts[at]


def _strings(rows: np.ndarray) -> list[str]:
    """The strings of a (count, n) matrix of code points."""
    if not len(rows):
        return []
    data = np.ascontiguousarray(rows.astype("<u4")).tobytes().decode("utf-32-le")
    n = rows.shape[1]
    return [data[i : i + n] for i in range(0, len(data), n)]


# --------------------------------------------------------------------------- judging


def score(frequency: np.ndarray, cohesion: np.ndarray, left: np.ndarray, right: np.ndarray):
    """The ranking score: ln(frequency) times the weaker edge's entropy times the cohesion
    (each is already above its threshold; a word needs all three)."""
    return np.log(frequency) * np.minimum(left, right) * cohesion


def judge(candidates: Candidates, thresholds: Thresholds, checks: Checks) -> list[dict]:
    """The candidates that are not dictionary words, each with its verdict, best first."""
    scores = score(
        candidates.frequency, candidates.cohesion, candidates.left_entropy, candidates.right_entropy
    )
    rows = []
    for i, word in enumerate(candidates.words):
        if checks.known(word):
            continue
        rows.append(
            {
                "word": word,
                "frequency": int(candidates.frequency[i]),
                "cohesion": float(candidates.cohesion[i]),
                "left_entropy": float(candidates.left_entropy[i]),
                "right_entropy": float(candidates.right_entropy[i]),
                "score": float(scores[i]),
                "reason": _reason(word, checks),
            }
        )
        edge = min(candidates.left_entropy[i], candidates.right_entropy[i])
        compound = edge < thresholds.compound_entropy and _is_compound(word, checks)
        if compound and not rows[-1]["reason"]:
            rows[-1]["reason"] = "compound"
    _mark_fragments(rows, thresholds.fragment_share)
    for row in rows:
        verdict = checks.review.get(row["word"])
        if verdict is False:
            row["reason"] = "rejected"
        elif verdict is True and row["reason"] != "userdict":
            row["reason"] = ""
        row["accepted"] = row["reason"] == ""
    for row in rows:
        for key in ("cohesion", "left_entropy", "right_entropy", "score"):
            row[key] = round(row[key], 4)
    rows.sort(key=lambda r: (not r["accepted"], -r["score"], r["word"]))
    return rows[: thresholds.max_rows]


def _reason(word: str, checks: Checks) -> str:
    if word in checks.userwords or any(u in word for u in checks.userwords if len(u) < len(word)):
        return "userdict"
    if NUMERIC.fullmatch(word):  # filtered out of the tokens anyway
        return "numeric"
    tokens = [t for t in checks.cut(word) if t.strip()]
    edges = [t for t in (tokens[:1] + tokens[-1:]) if not _is_joiner(t)]
    if any(t in checks.stopwords for t in edges):
        return "stopword"  # at an edge: 的发展, 发展了 (a joiner may end a word: 互联网+)
    if any(t in _PARTICLES for t in tokens[1:-1]):
        return "stopword"  # a particle inside: 讲了话
    return ""


def _is_joiner(token: str) -> bool:
    return all(ord(c) in _JOINERS for c in token)


def _is_compound(word: str, checks: Checks) -> bool:
    tokens = [t for t in checks.cut(word) if t.strip()]
    if len(tokens) < 2:
        return False
    return any(len(t) >= 2 and checks.known(t) for t in (tokens[0], tokens[-1]))


def _mark_fragments(rows: list[dict], share: float) -> None:
    """A candidate inside a longer good candidate that makes up ``share`` of its occurrences
    is a fragment of it (longest first, so a fragment of a fragment is judged by the longest)."""
    good = sorted((r for r in rows if not r["reason"]), key=lambda r: (-len(r["word"]), r["word"]))
    by_word = {r["word"]: r for r in good}
    for row in good:
        if row["reason"]:
            continue
        word = row["word"]
        for size in range(2, len(word)):
            for start in range(len(word) - size + 1):
                inner = by_word.get(word[start : start + size])
                if (
                    inner is not None
                    and not inner["reason"]
                    and row["frequency"] >= share * inner["frequency"]
                ):
                    inner["reason"] = "fragment"


def document_frequency(
    spool: _Spool, words: list[str], max_chars: int, context: int = 12
) -> tuple[np.ndarray, list[str]]:
    """In how many texts each word occurs, and its first occurrence with up to ``context``
    characters of its text on either side (one more pass)."""
    examples = [""] * len(words)
    if not words:
        return np.zeros(0, np.int64), examples
    keys = hash_words(words)
    lengths = np.array([len(w) for w in words])
    df = np.zeros(len(words), np.int64)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    bitset = _BitSet(keys)
    top = min(max_chars, int(lengths.max()))
    for batch in spool:
        for n, level in enumerate(_hashes(batch, top), 1):
            if n < 2 or not (lengths == n).any():
                continue
            hits = np.flatnonzero(bitset.test(level) & (batch.run[: len(level)] >= n))
            if not len(hits):
                continue
            at = np.minimum(np.searchsorted(sorted_keys, level[hits]), len(keys) - 1)
            found = sorted_keys[at] == level[hits]
            word = order[at[found]]
            ok = lengths[word] == n
            word, where = word[ok], hits[found][ok]
            pairs = np.unique(np.stack([word, batch.doc(where)]), axis=1)
            np.add.at(df, pairs[0], 1)
            firsts, index = np.unique(word, return_index=True)
            for w, position in zip(firsts.tolist(), where[index].tolist(), strict=True):
                if not examples[w]:
                    examples[w] = _example(batch, position, n, context)
    return df, examples


def _example(batch: _Batch, position: int, n: int, context: int) -> str:
    """The text around an occurrence, within its own text, the word in 【】."""
    doc = int(batch.doc(np.array([position]))[0])
    start = int(batch.starts[doc])
    stop = int(batch.starts[doc + 1]) - 1 if doc + 1 < len(batch.starts) else len(batch.codes)
    lo, hi = max(start, position - context), min(stop, position + n + context)
    text = _strings(np.asarray(batch.codes[lo:hi])[None, :])[0]
    cut = position - lo
    left, word, right = text[:cut], text[cut : cut + n], text[cut + n :]
    left, right = " ".join(left.split()), " ".join(right.split())
    return f"{'…' if lo > start else ''}{left}【{word}】{right}{'…' if hi < stop else ''}"


def discover(
    batches: Callable[[], Iterable[pa.Array]], thresholds: Thresholds, checks: Checks
) -> pa.Table:
    """The new-words table of a corpus: word, frequency, document frequency, cohesion,
    left_entropy, right_entropy, score, accepted, reason; accepted words first, by score."""
    with _Spool(batches) as spool:
        candidates = _count_candidates(spool, thresholds)
        rows = judge(candidates, thresholds, checks)
        words = [r["word"] for r in rows]
        df, examples = document_frequency(spool, words, thresholds.max_chars)
    for row, example in zip(rows, examples, strict=True):
        row["example"] = example
        row["pieces"] = " ".join(t for t in checks.pieces(row["word"]) if t.strip())
    log.info(
        "new words: %d candidates, %d listed, %d accepted",
        len(candidates.words),
        len(rows),
        sum(r["accepted"] for r in rows),
    )
    return new_words_table(rows, df)


def new_words_table(rows: list[dict], df: np.ndarray) -> pa.Table:
    """The rows as a table of the declared new_words schema."""
    from pipeline.schemas import NEW_WORDS

    def numbers(key: str, dtype) -> pa.Array:
        return to_arrow(np.array([r[key] for r in rows], dtype))

    def strings(key: str) -> pa.Array:
        return string_array([r[key] for r in rows])

    return NEW_WORDS.conform(
        pa.table(
            {
                "word": strings("word"),
                "frequency": numbers("frequency", np.int64),
                "document_frequency": to_arrow(np.asarray(df, np.int64)),
                "cohesion": numbers("cohesion", np.float64),
                "left_entropy": numbers("left_entropy", np.float64),
                "right_entropy": numbers("right_entropy", np.float64),
                "score": numbers("score", np.float64),
                "accepted": numbers("accepted", np.uint8).cast(pa.bool_()),
                "reason": strings("reason"),
                "pieces": strings("pieces"),
                "example": strings("example"),
                "token_count": to_arrow(np.zeros(len(rows), np.int64)),
            }
        )
    )


def accepted_words(table: pa.Table) -> list[str]:
    """The accepted words of a new-words table, in its order."""
    words = table.column("word").to_pylist()
    return [w for w, ok in zip(words, table.column("accepted").to_pylist(), strict=True) if ok]


def read_review(path) -> dict[str, bool]:
    """The user's verdicts (TSV: word, keep|reject; # comments): word -> keep. A malformed line
    stops the run naming it; a word listed twice takes its last verdict."""
    import unicodedata

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: the review file must be UTF-8 ({exc})") from exc
    verdicts: dict[str, bool] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1].lower() not in ("keep", "reject"):
            raise ValueError(
                f"{path}:{number}: expected `word<TAB>keep` or `word<TAB>reject`, got {line!r}"
            )
        verdicts[unicodedata.normalize("NFKC", fields[0])] = fields[1].lower() == "keep"
    return verdicts
