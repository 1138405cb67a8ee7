"""The per-document token cache of the segment stage: SQLite files outside git and DVC outputs.

Each segmentation fingerprint (settings, dictionaries, code) has a file of its own, and its
keys are hashes of (fingerprint, clean text), so an entry made under other settings can never
be hit. Each value carries a checksum; a corrupt entry or an unreadable file is treated as a
miss and rebuilt, so the cache never changes a result and deleting its folder is always safe.
Files of other fingerprints are deleted, least recently used first, once the folder outgrows
its budget (trim_cache). It lives beside io.py because it is file access too, but in its own
module: nothing else in the pipeline uses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.arrays import list_array, to_numpy, utf8_array
from pipeline.io import pause_point

log = logging.getLogger(__name__)

ENV_VAR = "ZHTOPICS_SEGMENT_CACHE"
# tokens-<fingerprint>.sqlite; the pattern also matches the single tokens.sqlite of before.
FILE_PATTERN = "tokens*.sqlite"
_QUERY_CHUNK = 500  # keys per SELECT (SQLite's variable limit is 999 on old builds)


def resolve_cache_dir(setting: str | None) -> Path | None:
    """The cache folder: ``$ZHTOPICS_SEGMENT_CACHE`` if set (empty disables), else the setting."""
    value = os.environ.get(ENV_VAR, setting)
    return Path(value).expanduser() if value else None


def key_function(fingerprint: bytes) -> Callable[[bytes], bytes]:
    """The 16-byte key of a clean text (UTF-8) under one segmentation fingerprint: SHA-256 of
    the fingerprint then the text. (On CPUs with SHA instructions this hashes the bench corpus
    in 0.06 s, keyed BLAKE2b in 0.10 s.)"""
    base = hashlib.sha256(fingerprint)

    def document_key(text: bytes) -> bytes:
        digest = base.copy()
        digest.update(text)
        return digest.digest()[:16]

    return document_key


def _row_id(key: bytes) -> int:
    return int.from_bytes(key[:8], "little", signed=True)


def _check(key: bytes, value: bytes) -> int:
    return zlib.crc32(value, zlib.crc32(key))


class TokenCache:
    """Maps document keys to their tokens (opaque bytes: segment.pack_lists makes them).

    Written without a journal or fsync, for speed: a torn write can only produce rows whose
    full key or checksum does not match (ignored) or an unreadable file (discarded).
    """

    def __init__(self, folder: Path, fingerprint: bytes) -> None:
        self.path = Path(folder) / f"tokens-{fingerprint.hex()[:16]}.sqlite"
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open()
        except (sqlite3.DatabaseError, OSError) as exc:
            self._discard(exc)
        with contextlib.suppress(OSError):
            os.utime(self.path)  # the time of last use, for trim_cache (a run may only read)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(
            "CREATE TABLE IF NOT EXISTS tokens "
            "(id INTEGER PRIMARY KEY, key BLOB NOT NULL, value BLOB NOT NULL, checksum INTEGER)"
        )
        db.execute("SELECT count(*) FROM (SELECT 1 FROM tokens LIMIT 1)").fetchone()
        return db

    def _discard(self, exc: Exception) -> None:
        """An unreadable cache is deleted and started afresh; if that fails it is switched off."""
        log.warning("segment cache %s is unusable (%s); rebuilding it", self.path, exc)
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        try:
            self._db = self._open()
        except (sqlite3.DatabaseError, OSError) as exc2:
            log.warning("segment cache switched off: %s", exc2)
            self._db = None

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """The cached values of those ``keys`` that have a sound entry."""
        found: dict[bytes, bytes] = {}
        if self._db is None:
            return found
        wanted = {_row_id(k): k for k in keys}
        ids = list(wanted)
        try:
            for start in range(0, len(ids), _QUERY_CHUNK):
                chunk = ids[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id, key, value, checksum FROM tokens WHERE id IN ({marks})", chunk
                )
                for row_id, key, value, checksum in rows:
                    if wanted.get(row_id) == key and _check(key, value) == checksum:
                        found[key] = value
        except sqlite3.DatabaseError as exc:
            self._discard(exc)
            return {}
        return found

    def is_empty(self) -> bool:
        """True when no entry can be found (an empty or switched-off cache)."""
        if self._db is None:
            return True
        try:
            return self._db.execute("SELECT 1 FROM tokens LIMIT 1").fetchone() is None
        except sqlite3.DatabaseError as exc:
            self._discard(exc)
            return True

    def put_many(self, items: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]]) -> None:
        if self._db is None:
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        rows = [(_row_id(key), key, value, _check(key, value)) for key, value in pairs]
        try:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?)", rows)
            pause_point("segment-cache")  # tests kill a run here, inside the transaction
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._discard(exc)

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def __enter__(self) -> TokenCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def trim_cache(keep: Path, max_bytes: int) -> list[Path]:
    """Delete the cache files beside ``keep`` (other fingerprints: older settings, dictionaries
    or code) that do not fit in ``max_bytes`` with it, least recently used first; ``keep``
    itself stays whatever its size. Returns the deleted files."""

    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in _with_siblings(path) if f.exists())

    others = []
    for path in keep.parent.glob(FILE_PATTERN):
        with contextlib.suppress(OSError):  # gone meanwhile (another run trimming)
            if path != keep:
                others.append((path.stat().st_mtime, path.name, path, size(path)))
    total = size(keep) if keep.exists() else 0
    deleted = []
    for _, _, path, bytes_ in sorted(others, reverse=True):  # most recently used first
        if total + bytes_ <= max_bytes:
            total += bytes_
            continue
        with contextlib.suppress(OSError):
            for file in _with_siblings(path):
                file.unlink(missing_ok=True)
            deleted.append(path)
    if deleted:
        log.info(
            "segment cache: deleted %d file(s) of other settings to stay within %.0f MB: %s",
            len(deleted),
            max_bytes / 2**20,
            ", ".join(p.name for p in deleted),
        )
    return deleted


def _with_siblings(path: Path) -> list[Path]:
    return [path, *(Path(f"{path}{suffix}") for suffix in ("-journal", "-wal", "-shm"))]


def pack_lists(lists: pa.ListArray) -> list[bytes]:
    """Each list's tokens as one cache value: a byte holding the width W (2 or 4) of the
    lengths, the number of tokens N (4 bytes), N token lengths in bytes (W bytes each), then
    the tokens' UTF-8 bytes. Unpacking needs no search for separators."""
    flat = lists.flatten()
    rows = to_numpy(lists.offsets)
    rows = rows - rows[0]
    _, offsets, data = flat.buffers()
    if len(flat) == 0 or offsets is None:
        bounds, data = np.zeros(1, np.int32), memoryview(b"")
    else:  # positions in the data buffer
        bounds = np.frombuffer(offsets, np.int32)[flat.offset : flat.offset + len(flat) + 1]
        data = memoryview(data) if data is not None else memoryview(b"")
    lengths = np.diff(bounds)
    width = 2 if len(lengths) == 0 or lengths.max() < 1 << 16 else 4
    sizes = lengths.astype(f"<u{width}").tobytes()
    head = width.to_bytes(1, "little")
    return [
        b"".join(
            (
                head,
                int(hi - lo).to_bytes(4, "little"),
                sizes[lo * width : hi * width],
                data[bounds[lo] : bounds[hi]],
            )
        )
        for lo, hi in zip(rows[:-1].tolist(), rows[1:].tolist(), strict=True)
    ]


def unpack_lists(values: Sequence[bytes]) -> pa.ListArray:
    """Token lists from values made by pack_lists (an empty value is an empty list)."""
    counts = np.zeros(len(values) + 1, np.int64)
    sizes: list[np.ndarray] = []
    pieces: list[memoryview] = []
    for i, value in enumerate(values):
        if not value:
            continue
        view = memoryview(value)
        width = view[0]
        n = int.from_bytes(view[1:5], "little")
        end = 5 + n * width
        counts[i + 1] = n
        sizes.append(np.frombuffer(view[5:end], f"<u{width}"))
        pieces.append(view[end:])
    np.cumsum(counts, out=counts)
    data = b"".join(pieces)
    if len(data) >= 2**31:
        raise ValueError("oversized token values: 2 GB or more in one batch")
    offsets = np.zeros(int(counts[-1]) + 1, np.int32)
    if sizes:  # the sizes widened first: a running sum over mixed types is 10 times slower
        np.cumsum(np.concatenate(sizes).astype(np.int32), out=offsets[1:])
    if offsets[-1] != len(data):
        raise ValueError("malformed token values")
    words = utf8_array(data, offsets)
    # The offsets are running sums of the sizes and each value passed its checksum, so only
    # the UTF-8 is left to check, on the whole data at once: 0.02 s for the bench corpus's
    # tokens, where arrow's full validation string by string takes 0.08 s.
    _check_utf8(data)
    return list_array(counts, words)


def _check_utf8(data: bytes) -> None:
    """Raise ValueError unless ``data`` is UTF-8 (arrow's check, on the buffer as one string)."""
    try:
        utf8_array(data, np.array([0, len(data)])).validate(full=True)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"malformed token values: {exc}") from None
