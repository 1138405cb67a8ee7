"""Duplicate and near-duplicate detection: MinHash signatures of character shingles, computed
in bulk, and ``Deduplicator``, which decides in document order against an LSH index kept
compact (sorted runs in memory, signatures spilled to a temporary file)."""

from __future__ import annotations

import os
import tempfile
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from pipeline.arrays import concat_ranges
from pipeline.config import CleanParams
from pipeline.schemas import (
    DUPLICATE,
    NEAR_DUPLICATE,
)
from pipeline.text.normalize import IS_WORD, WINDOW_CHARS, char_classes, code_points, text_groups
from pipeline.text.rules import CleanError

# --- MinHash signatures -------------------------------------------------------------------------


def minhash_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The affine permutations ``a * h + b mod 2**32`` (``a`` odd) of datasketch 2.0's
    MinHash, drawn the same way, so that signatures are what they were with datasketch."""
    generator = np.random.RandomState(seed)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def minhash_signatures(texts: Sequence[str], params: CleanParams) -> np.ndarray:
    """The MinHash signature of each text's character shingles (letters and digits only), one
    row of ``num_perm`` uint32 per text, computed in bulk for groups of texts (a long text a
    window at a time): the memory is a group's, not the texts'."""
    a, b = minhash_permutations(params.num_perm, params.minhash_seed)
    k = params.shingle_size
    table = char_classes()
    out = np.full((len(texts), len(a)), np.iinfo(np.uint32).max, dtype=np.uint32)
    first = 0
    for group in text_groups(texts, WINDOW_CHARS):
        if len(group) == 1 and len(group[0]) > WINDOW_CHARS:
            for hashes in _long_text_hashes(group[0], k, table):
                _minhash_into(out[first : first + 1], hashes, np.array([len(hashes)]), a, b)
        else:
            codes = code_points("".join(group))
            word = (table[codes] & IS_WORD) != 0
            bounds = np.cumsum([0] + [len(text) for text in group])
            total = np.concatenate(([0], np.cumsum(word)))
            hashes, counts = shingle_hashes(codes[word], total[bounds[1:]] - total[bounds[:-1]], k)
            _minhash_into(out[first : first + len(group)], hashes, counts, a, b)
        first += len(group)
    return out


def shingle_hashes(codes: np.ndarray, lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The 32-bit hashes of the k-character shingles of consecutive texts, given as one array of
    character codes and the texts' lengths, and the number of hashes of each text. A text
    shorter than k is one shingle; an empty text has the one hash 0."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    counts = np.maximum(lengths - k + 1, 1)
    offsets = np.cumsum(counts) - counts
    hashes = np.zeros(int(counts.sum()), dtype=np.uint32)
    full = lengths >= k
    if full.any():
        rolling = _polynomial_hashes(codes, k)
        hashes[concat_ranges(offsets[full], counts[full])] = rolling[
            concat_ranges(starts[full], counts[full])
        ]
    for i in np.flatnonzero((lengths > 0) & ~full):
        hashes[offsets[i]] = _polynomial_hashes(
            codes[starts[i] : starts[i] + lengths[i]], lengths[i]
        )[0]
    return hashes, counts


def _polynomial_hashes(codes: np.ndarray, k: int) -> np.ndarray:
    """The hash of every run of k consecutive codes."""
    codes = codes.astype(np.uint64)
    n = len(codes) - k + 1
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h *= np.uint64(0x100000001B3)
            h += codes[j : j + n]
        # splitmix64 finaliser: spread the bits before keeping the upper 32.
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(32)).astype(np.uint32)


def _long_text_hashes(text: str, k: int, table: np.ndarray) -> Iterator[np.ndarray]:
    """The shingle hashes of one long text, a window of characters at a time."""
    tail = np.zeros(0, dtype=np.uint32)  # the last k - 1 letters and digits, for the next window
    emitted = False
    for start in range(0, len(text), WINDOW_CHARS):
        codes = code_points(text[start : start + WINDOW_CHARS])
        codes = np.concatenate((tail, codes[(table[codes] & IS_WORD) != 0]))
        if len(codes) >= k:
            yield _polynomial_hashes(codes, k)
            emitted = True
            codes = codes[len(codes) - k + 1 :]
        tail = codes
    if not emitted:  # fewer than k letters and digits in all
        yield shingle_hashes(tail, np.array([len(tail)]), k)[0]


def _minhash_into(
    out: np.ndarray, hashes: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray
) -> None:
    """Lower ``out[i]`` to the minimum over text i's hashes h of ``a * h + b`` (uint32, for
    every permutation at once). Texts follow one another in ``hashes``, ``counts[i]`` >= 1 of
    them each; the products are made a block of columns at a time, in cache."""
    bounds = np.concatenate(([0], np.cumsum(counts)))
    width = max(256, (1 << 20) // len(a))
    block = np.empty((len(a), width), dtype=np.uint32)
    for lo in range(0, int(bounds[-1]), width):
        hi = min(lo + width, int(bounds[-1]))
        first = int(np.searchsorted(bounds, lo, "right")) - 1
        last = int(np.searchsorted(bounds, hi, "left"))
        values = block[:, : hi - lo]
        np.multiply(a[:, None], hashes[None, lo:hi], out=values)
        np.add(values, b[:, None], out=values)
        starts = np.maximum(bounds[first:last], lo) - lo
        lowest = np.minimum.reduceat(values, starts, axis=1).T
        np.minimum(out[first:last], lowest, out=out[first:last])


# --- duplicates ---------------------------------------------------------------------------------


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """The LSH bands and rows per band that datasketch's MinHashLSH chooses: the least sum of
    false positive and false negative probability mass around ``threshold``. Its integrands are
    polynomials, integrated here exactly (Gauss-Legendre) rather than adaptively (scipy)."""
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    # Nodes and weights on [0, threshold] (false positives) and [threshold, 1] (negatives).
    below, above = threshold * (nodes + 1) / 2, threshold + (1 - threshold) * (nodes + 1) / 2
    below_weights, above_weights = weights * threshold / 2, weights * (1 - threshold) / 2
    best, least = (0, 0), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            # Elementwise and np.sum, not a BLAS dot (CPU-dependent order): the same choice
            # of bands everywhere.
            false_positive = float((below_weights * (1 - (1 - below**rows) ** bands)).sum())
            false_negative = float((above_weights * ((1 - above**rows) ** bands)).sum())
            error = 0.5 * false_positive + 0.5 * false_negative
            if error < least:
                best, least = (bands, rows), error
    if best[0] < 2:
        raise ValueError("the number of bands is too small (b < 2)")
    return best


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """A 64-bit hash of each LSH band (its number and values) of each signature: one row of
    ``bands`` keys per signature (the Spark engine groups documents by them)."""
    n = len(signatures)
    values = signatures[:, : bands * rows].reshape(n, bands, rows)
    keys = np.repeat(np.arange(1, bands + 1, dtype=np.uint64)[None, :], n, axis=0)
    with np.errstate(over="ignore"):
        keys *= np.uint64(0x9E3779B97F4A7C15)
        for j in range(rows):
            keys ^= values[:, :, j]
            keys *= np.uint64(0x100000001B3)
        keys ^= keys >> np.uint64(31)
    return keys


def near_scores(
    signature: np.ndarray, others: np.ndarray, bands: int, rows: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``others`` (signatures, one per row) are near duplicates of ``signature`` (a
    band of equal values and an estimated Jaccard similarity >= ``threshold``), and every
    estimate."""
    same = others == signature
    # A band hash may collide: only a band of equal values makes a candidate.
    equal_bands = same[:, : bands * rows].reshape(len(others), bands, -1)
    scores = np.count_nonzero(same, axis=1) / signature.shape[-1]
    return equal_bands.all(axis=2).any(axis=1) & (scores >= threshold), scores


class Deduplicator:
    """Exact and near-duplicate clusters over a stream of documents, in order.

    The first document of a cluster is its canonical member. Only canonical documents enter
    the index (a hash of the text, the LSH bands of the MinHash signature), with their
    signatures; the texts are not kept. A later document joins the cluster of an identical
    text (``duplicate``) or of the most similar indexed document sharing a band whose
    estimated Jaccard similarity reaches the threshold (``near_duplicate``; ties go to the
    smallest doc_id), as with datasketch's MinHashLSH. The index is sorted numpy arrays, about
    150 bytes per canonical document; the signatures wait in a temporary file until a
    candidate needs checking. ``close()`` deletes the file.
    """

    def __init__(self, params: CleanParams) -> None:
        self._params = params
        try:
            self._bands, self._rows = lsh_bands(params.near_duplicate_threshold, params.num_perm)
        except ValueError as exc:
            raise CleanError(
                f"params: clean.near_duplicate_threshold = {params.near_duplicate_threshold} "
                f"with clean.num_perm = {params.num_perm} cannot be banded ({exc}); "
                "lower the threshold or raise num_perm"
            ) from exc
        # First half of the text hash -> canonical number and second half of the hash.
        self._exact = SortedIndex([("number", np.int32), ("rest", np.uint64)])
        self._index = SortedIndex(np.int32)  # band hash -> canonical number
        self._signatures = _SpilledRows(params.num_perm)  # canonical number -> signature
        self._ids = _Chunks()  # canonical number -> doc_id
        # Cluster sizes by canonical doc_id, for clusters of two or more.
        self.sizes: Counter[str] = Counter()

    def signature(self, text: str) -> np.ndarray:
        """MinHash signature of the text's character shingles (letters and digits only)."""
        return minhash_signatures([text], self._params)[0]

    def close(self) -> None:
        self._signatures.close()

    def __enter__(self) -> Deduplicator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def assign(
        self,
        doc_ids: Sequence[str],
        digests: np.ndarray,
        signatures: np.ndarray,
        signature_rows: np.ndarray,
    ) -> list[tuple[str | None, str | None]]:
        """(status, canonical doc_id) of each document in order: a duplicate, a near-duplicate,
        or (None, None) for a new canonical document.

        ``digests`` are the 16-byte hashes of the texts; document i's signature is
        ``signatures[signature_rows[i]]``, which may be missing (-1) only when an earlier
        document of the same call has the same text.
        """
        base = len(self._ids)
        earlier = np.full(len(doc_ids), -1, dtype=np.int64)
        halves = np.ascontiguousarray(digests, dtype="S16").view(np.uint64).reshape(-1, 2)
        positions, found = self._exact.find(halves[:, 0])
        same = found["rest"] == halves[positions, 1]
        earlier[positions[same]] = found["number"][same]
        keys = self._band_keys(signatures)
        positions, numbers = self._index.find(keys.ravel())
        indexed: dict[int, list[int]] = defaultdict(list)  # signature row -> candidates
        for position, number in zip(
            (positions // self._bands).tolist(), numbers.tolist(), strict=True
        ):
            indexed[position].append(number)
        shared = _shared_keys(keys)  # signature row -> its band hashes that other rows have
        bands: dict[int, list[int]] = defaultdict(list)  # such a hash -> new canonical numbers
        exact: dict[bytes, int] = {}  # texts of this call -> canonical number
        new_rows: list[int] = []  # signature rows of the new canonical documents, in order
        new_ids: list[str] = []
        out: list[tuple[str | None, str | None]] = []
        rows = signature_rows.tolist()
        for doc_id, digest, found, row in zip(
            doc_ids, digests.tolist(), earlier.tolist(), rows, strict=True
        ):
            number = found if found >= 0 else exact.get(digest, -1)
            status = DUPLICATE
            if number < 0:
                candidates = set(indexed.get(row, ()))
                for key in shared.get(row, ()):
                    candidates.update(bands.get(key, ()))
                number = self._nearest(
                    signatures[row], sorted(candidates), base, signatures, new_rows, new_ids
                )
                status = NEAR_DUPLICATE
                if number < 0:
                    number = base + len(new_ids)
                    new_rows.append(row)
                    new_ids.append(doc_id)
                    for key in shared.get(row, ()):
                        bands[key].append(number)
                    status = None
                exact[digest] = number
            if status is None:
                out.append((None, None))
                continue
            canonical = self._id(number, base, new_ids)
            self.sizes[canonical] = self.sizes.get(canonical, 1) + 1
            out.append((status, canonical))
        self._commit(exact, keys[new_rows], signatures[new_rows], new_ids, base)
        return out

    def _nearest(
        self,
        signature: np.ndarray,
        candidates: list[int],
        base: int,
        signatures: np.ndarray,
        new_rows: list[int],
        new_ids: list[str],
    ) -> int:
        """The canonical number of the candidate with the highest estimated Jaccard similarity
        at or above the threshold (of those, the smallest doc_id), or -1."""
        if not candidates:
            return -1
        others = np.stack(
            [
                signatures[new_rows[number - base]] if number >= base else self._signatures[number]
                for number in candidates
            ]
        )
        near, scores = near_scores(
            signature, others, self._bands, self._rows, self._params.near_duplicate_threshold
        )
        if not near.any():
            return -1
        tied = np.flatnonzero(near & (scores == scores[near].max())).tolist()
        return min((candidates[i] for i in tied), key=lambda n: self._id(n, base, new_ids))

    def _id(self, number: int, base: int, new_ids: list[str]) -> str:
        return new_ids[number - base] if number >= base else self._ids[number].as_py()

    def _band_keys(self, signatures: np.ndarray) -> np.ndarray:
        return band_keys(signatures, self._bands, self._rows)

    def _commit(
        self,
        exact: dict[bytes, int],
        keys: np.ndarray,
        signatures: np.ndarray,
        new_ids: list[str],
        base: int,
    ) -> None:
        """Add what one call learnt to the index."""
        halves = np.array(list(exact), dtype="S16").view(np.uint64).reshape(-1, 2)
        values = np.zeros(len(exact), dtype=self._exact.dtype)
        values["number"] = list(exact.values())
        values["rest"] = halves[:, 1]
        self._exact.add(halves[:, 0], values)
        numbers = np.arange(base, base + len(new_ids), dtype=np.int32)
        self._index.add(keys.ravel(), np.repeat(numbers, self._bands))
        self._signatures.append(signatures)
        self._ids.append(pa.array(new_ids, pa.string()))


class SortedIndex:
    """A multimap from fixed-size keys to int32 numbers, kept as sorted runs that are merged as
    they grow (a log-structured merge): a dozen or two bytes per entry, and lookups of many
    keys at once with binary search."""

    def __init__(self, dtype: np.dtype | str) -> None:
        self.dtype = np.dtype(dtype)  # of the values
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        if len(keys):
            self._runs.append(_sorted_run(keys, values))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            newer = self._runs.pop()
            self._runs.append(_merged_runs(self._runs.pop(), newer))

    def find(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``queries``, value) of every entry whose key equals a query."""
        order = np.argsort(queries)  # sorted queries: the binary searches stay in cache
        queries = queries[order]
        positions, values = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=self.dtype)]
        for keys, stored in self._runs:
            lo = np.searchsorted(keys, queries)
            hits = np.flatnonzero(keys[np.minimum(lo, len(keys) - 1)] == queries)
            lo = lo[hits]
            counts = np.searchsorted(keys, queries[hits], "right") - lo
            positions.append(np.repeat(order[hits], counts))
            values.append(stored[concat_ranges(lo, counts)])
        return np.concatenate(positions), np.concatenate(values)


def _sorted_run(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys)
    return keys[order], values[order]


def _merged_runs(
    older: tuple[np.ndarray, np.ndarray], newer: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs as one, in linear time (the newer entries after equal older ones)."""
    at = np.searchsorted(older[0], newer[0], "right") + np.arange(len(newer[0]))
    from_older = np.ones(len(older[0]) + len(newer[0]), dtype=bool)
    from_older[at] = False
    merged = []
    for old, new in zip(older, newer, strict=True):
        out = np.empty(len(from_older), dtype=old.dtype)
        out[at] = new
        out[from_older] = old
        merged.append(out)
    return merged[0], merged[1]


def _shared_keys(keys: np.ndarray) -> dict[int, list[int]]:
    """For each row of ``keys`` that has a key in common with another row, those keys."""
    flat = keys.ravel()
    order = np.argsort(flat)
    ordered = flat[order]
    repeated = np.zeros(len(flat), dtype=bool)
    repeated[order[1:]] = ordered[1:] == ordered[:-1]
    repeated[order[:-1]] |= ordered[:-1] == ordered[1:]
    shared: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(repeated).tolist():
        shared[i // keys.shape[1]].append(int(flat[i]))
    return shared


class _SpilledRows:
    """Rows of uint32 (the signatures) appended to an unnamed temporary file and read back one
    at a time, for the few candidates of a near duplicate: memory stays flat however many
    documents there are (the operating system caches the file as it sees fit)."""

    def __init__(self, width: int) -> None:
        # Open for the life of the index; close() ends it.
        self._file = tempfile.TemporaryFile(prefix="zhtopics-clean-", buffering=0)  # noqa: SIM115
        self._row_bytes = width * 4
        self._rows = 0

    def append(self, rows: np.ndarray) -> None:
        self._file.seek(0, os.SEEK_END)
        self._file.write(np.ascontiguousarray(rows, dtype=np.uint32).tobytes())
        self._rows += len(rows)

    def __len__(self) -> int:
        return self._rows

    def __getitem__(self, number: int) -> np.ndarray:
        self._file.seek(number * self._row_bytes)
        return np.frombuffer(self._file.read(self._row_bytes), dtype=np.uint32)

    def close(self) -> None:
        self._file.close()


class _Chunks:
    """Items appended a chunk at a time (numpy rows, arrow values) and read by number."""

    def __init__(self) -> None:
        self._chunks: list = []
        self._starts: list[int] = []
        self._size = 0

    def append(self, chunk) -> None:
        if len(chunk):
            self._chunks.append(chunk)
            self._starts.append(self._size)
            self._size += len(chunk)

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, number: int):
        i = bisect_right(self._starts, number) - 1
        return self._chunks[i][number - self._starts[i]]
