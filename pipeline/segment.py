"""Stage segment: jieba word segmentation (Python or compiled), parallel, cached per document."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import re
import time
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.cache import TokenCache, key_function, resolve_cache_dir, trim_cache
from pipeline.config import Params, SegmentParams
from pipeline.io import Paths, TableWriter, iter_tables, row_spans, usable_cores, write_table
from pipeline.schemas import CLEAN, KEPT, NEW_WORDS, TOKENS, require_columns
from pipeline.text.new_words import Checks, Thresholds, accepted_words, discover, read_review

log = logging.getLogger(__name__)

# Numbers, dates, percentages, placeholders such as 20xx, and Chinese numerals with a unit
# (三亿多, 万件): counts, not content.
_NUMERIC = re.compile(
    r"[\d.,%‰+\-/:~xX×*—]*\d[\d.,%‰+\-/:~xX×*—]*[年月日号时分秒%]?"
    r"|[零〇一二三四五六七八九十百千万亿两几多余第]+[个件次年月日号人名元岁届位项条种家所多余]?"
)
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9._\-+&']*")
# The same rules for arrow's RE2 engine, applied to many tokens at once; \p{Nd} is what
# Python's \d means in a str pattern. A test checks both against each other.
_NUMERIC_RE2 = "^(?:" + _NUMERIC.pattern.replace(r"\d", r"\p{Nd}") + ")$"
_LATIN_RE2 = "^(?:" + _LATIN.pattern + ")$"
_WORDLIKE_RE2 = r"[\p{L}\p{N}]"
# jieba's HMM step splits a run of Latin letters, digits and symbols that is not a dictionary
# word with this pattern (jieba/finalseg); jieba-rs's version keeps 4-2, E-P1 or abc.com whole.
_FINALSEG_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")
_SYMBOL_RUN = re.compile(r"[A-Za-z0-9+#&._%\-]*[+#&._%\-][A-Za-z0-9+#&._%\-]*")
_SYMBOL_RUN_RE2 = "^" + _SYMBOL_RUN.pattern + "$"
# Words kept by their part-of-speech tag are joined by newlines to be split in bulk: no kept
# word contains one (jieba emits whitespace only as whitespace-only tokens, which are dropped).
_SEP = "\n"
# Rows read from clean.parquet at a time, text bytes per job (a slice of rows cached and
# written together, a row group of tokens.parquet), and text bytes per task sent to a worker.
BATCH_ROWS = 4096
JOB_BYTES = 8 << 20
TASK_BYTES = 1 << 20
# Jobs started (their tasks queued for the workers) before the oldest is finished.
JOBS_AHEAD = 2
# Segment this much text in the main process before starting worker processes: a small
# re-run (a few new documents) is done before a pool would have started.
INLINE_BYTES = 1 << 20
# Longer texts are segmented in pieces of about this many characters (see _pieces).
LONG_TEXT = 100_000
# Bump when the meaning of cached values changes (the module's source is hashed as well).
CACHE_FORMAT = 3


# --------------------------------------------------------------------------- dictionaries


@dataclass(frozen=True)
class UserWord:
    """One user-dictionary entry: jieba's ``word [freq] [tag]``."""

    word: str
    freq: int | None
    tag: str | None
    line: int


def read_userdict(path: Path) -> list[UserWord]:
    """Parse and validate a jieba user dictionary.

    Accepts a BOM and CRLF line endings, ``#`` comments, and entries without a frequency (jieba
    then suggests one). Words are NFKC-normalised like the clean text. A duplicate entry
    replaces the earlier one, with a warning; a malformed line stops the run naming it.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: the user dictionary must be UTF-8 ({exc})") from exc
    entries: dict[str, UserWord] = {}
    duplicates: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        word = unicodedata.normalize("NFKC", fields[0])
        freq: int | None = None
        tag: str | None = None
        rest = fields[1:]
        if rest and rest[0].isdigit():
            freq = int(rest.pop(0))
        if rest and re.fullmatch("[a-zA-Z]+", rest[0]):
            tag = rest.pop(0)
        if rest or freq == 0:
            raise ValueError(
                f"{path}:{number}: expected `word [freq >= 1] [tag]`, got {line.strip()!r}"
            )
        if word in entries:
            duplicates.append(f"{word} (lines {entries[word].line} and {number})")
            del entries[word]
        entries[word] = UserWord(word, freq, tag, number)
    if duplicates:
        log.warning("%s: duplicate entries, the last one is used: %s", path, ", ".join(duplicates))
    return list(entries.values())


def load_stopwords(params: SegmentParams) -> set[str]:
    """stopwords-iso's Chinese and English lists (if enabled) plus the project's file,
    NFKC-normalised; Latin tokens are matched case-insensitively."""
    words: set[str] = set()
    if params.stopwords_iso:
        import stopwordsiso

        # Chinese text quotes English too (headlines, product names): its function words go.
        words.update(stopwordsiso.stopwords(["zh", "en"]))
    if params.stopwords is not None:
        for line in Path(params.stopwords).read_text(encoding="utf-8-sig").splitlines():
            word = line.split("#", 1)[0].strip()
            if word:
                words.add(word)
    return {unicodedata.normalize("NFKC", w).strip() for w in words} - {""}


# --------------------------------------------------------------------------- backends


class Backend(Protocol):
    """What segmentation needs from a tokenizer; one private instance per process."""

    name: str

    def add_word(self, word: str, freq: int | None, tag: str | None) -> None: ...
    def cut(self, text: str, hmm: bool) -> list[str]: ...
    def tag(self, text: str, hmm: bool) -> list[tuple[str, str]]: ...


class JiebaBackend:
    """The reference: jieba's Python implementation, through a private ``jieba.Tokenizer``."""

    name = "jieba"

    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        self._pos = None

    def add_word(self, word: str, freq: int | None, tag: str | None) -> None:
        self._tokenizer.add_word(word, freq, tag)

    def cut(self, text: str, hmm: bool) -> list[str]:
        return self._tokenizer.lcut(text, HMM=hmm)

    def tag(self, text: str, hmm: bool) -> list[tuple[str, str]]:
        if self._pos is None:
            from jieba.posseg import POSTokenizer

            self._pos = POSTokenizer(self._tokenizer)
        return [(pair.word, pair.flag) for pair in self._pos.lcut(text, HMM=hmm)]


class RjiebaBackend:
    """jieba-rs (the same dictionary and algorithm, compiled) through a private ``rjieba.Jieba``."""

    name = "rjieba"

    def __init__(self) -> None:
        self._jieba = _rjieba_class()()
        # jieba-rs keeps a known word's dictionary tag when it is added again; jieba lets the
        # user dictionary's tag win, and so do we.
        self._tags: dict[str, str] = {}

    def add_word(self, word: str, freq: int | None, tag: str | None) -> None:
        self._jieba.add_word(word, freq, tag)
        if tag:
            self._tags[word] = tag

    def cut(self, text: str, hmm: bool) -> list[str]:
        words = self._jieba.cut(text, hmm)
        if not hmm:
            return words
        return [piece for w in words for piece in self.repair(w)]

    def cut_raw(self, text: str, hmm: bool) -> list[str]:
        """jieba-rs's output as it is (segment_utf8 repairs it in bulk)."""
        return self._jieba.cut(text, hmm)

    def repair(self, word: str) -> list[str]:
        """A symbol run that is not a dictionary word, split as jieba's HMM step splits it."""
        if _SYMBOL_RUN.fullmatch(word) and not self._jieba.has_word(word):
            return [x for x in _FINALSEG_SKIP.split(word) if x]
        return [word]

    def tag(self, text: str, hmm: bool) -> list[tuple[str, str]]:
        tags = self._tags
        return [(w, tags.get(w, t)) for w, t in self._jieba.tag(text, hmm)]


@functools.cache
def _rjieba_class() -> type:
    """rjieba's Jieba class, loaded from its compiled module directly: ``import rjieba`` also
    builds a module-level default instance (0.25 s and 30 MB per process) that we never use."""
    import importlib.machinery
    import importlib.util

    try:
        spec = importlib.util.find_spec("rjieba")
        folder = Path(next(iter(spec.submodule_search_locations)))
        path = next(
            p
            for p in folder.iterdir()
            if p.name.startswith("rjieba.") and p.is_file() and p.suffix in {".so", ".pyd"}
        )
        loader = importlib.machinery.ExtensionFileLoader("rjieba.rjieba", str(path))
        module = importlib.util.module_from_spec(
            importlib.util.spec_from_loader(loader.name, loader)
        )
        loader.exec_module(module)
        return module.Jieba
    except Exception:  # another layout: the ordinary import
        import rjieba

        return rjieba.Jieba


BACKENDS: dict[str, type] = {"jieba": JiebaBackend, "rjieba": RjiebaBackend}


@dataclass(frozen=True)
class Lexicon:
    """The heavy resources of segmentation, loaded once per process."""

    backend: Backend
    stopwords: frozenset[str]

    @functools.cached_property
    def stopword_array(self) -> pa.Array:
        return _string_array(sorted(self.stopwords))


def load_lexicon(
    params: SegmentParams, check: bool = True, new_words: Sequence[str] = ()
) -> Lexicon:
    """A private tokenizer with the discovered ``new_words`` and the user dictionary (added
    last, so a user word's frequency and tag win), and the stopwords segmented by it.

    With ``check``, a warning lists the user words that the tokenizer does not keep whole.
    """
    backend = BACKENDS[params.backend]()
    words = read_userdict(params.userdict) if params.userdict is not None else []
    for word in new_words:  # a frequency just high enough to keep each one whole
        backend.add_word(word, None, None)
    for entry in words:
        backend.add_word(entry.word, entry.freq, entry.tag)
    if check:
        _warn_split(params, [e.word for e in words if backend.cut(e.word, params.hmm) != [e.word]])
    return Lexicon(backend, frozenset(presegment(load_stopwords(params), backend, params.hmm)))


def _warn_split(params: SegmentParams, split: list[str]) -> None:
    if split:
        log.warning(
            "%s: %d user word(s) do not segment as one token (raise their frequency): %s",
            params.userdict,
            len(split),
            " ".join(split),
        )


def presegment(stopwords: Iterable[str], backend: Backend, hmm: bool) -> set[str]:
    """Stopwords as the tokenizer emits them: a stopword it splits contributes its pieces."""
    out: set[str] = set()
    for word in stopwords:
        out.add(word)
        out.update(p.strip() for p in backend.cut(word, hmm) if p.strip())
    return out


def fingerprint(params: SegmentParams, new_words: Sequence[str] = ()) -> bytes:
    """What a document's tokens depend on besides its text: settings, dictionaries, the new
    words added to the tokenizer, code and tokenizer versions. Part of every cache key."""
    settings = asdict(params)
    settings["new_words_added"] = hashlib.sha256("\n".join(new_words).encode("utf-8")).hexdigest()
    unrelated = ("workers", "start_method", "cache_dir", "cache_max_mb")
    for key in (*unrelated, "phrases_threshold", "phrases_min_count"):
        settings.pop(key)
    for key in [k for k in settings if k.startswith("new_words") and k != "new_words_added"]:
        settings.pop(key)  # what discovery finds is in new_words_added
    for key in ("userdict", "stopwords"):
        path = settings.pop(key)
        settings[key] = None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()
    packages = sorted({params.backend, "jieba", "stopwordsiso"})
    settings["versions"] = {name: importlib.metadata.version(name) for name in packages}
    settings["code"] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    settings["format"] = CACHE_FORMAT
    blob = json.dumps(settings, sort_keys=True, default=str).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=32).digest()


# --------------------------------------------------------------------------- tokens


def is_content_token(token: str, params: SegmentParams, stopwords: frozenset[str]) -> bool:
    """Keep words: no punctuation, whitespace, numbers or stopwords; single characters and
    Latin words only when the settings allow them."""
    if not token or token in stopwords or (token.isascii() and token.lower() in stopwords):
        return False
    if not any(unicodedata.category(c)[0] in "LN" for c in token):
        return False
    if not params.keep_numbers and _NUMERIC.fullmatch(token):
        return False
    if not params.keep_latin and _LATIN.fullmatch(token):
        return False
    return params.allow_single_char or len(token) > 1


def pack_lists(lists: pa.ListArray) -> list[bytes]:
    """Each list's tokens as one cache value: a byte holding the width W (2 or 4) of the
    lengths, the number of tokens N (4 bytes), N token lengths in bytes (W bytes each), then
    the tokens' UTF-8 bytes. Unpacking needs no search for separators."""
    flat = lists.flatten()
    rows = _to_numpy(lists.offsets)
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
    words = _utf8_array(data, offsets)
    # The offsets are running sums of the sizes and each value passed its checksum, so only
    # the UTF-8 is left to check, on the whole data at once: 0.02 s for the bench corpus's
    # tokens, where arrow's full validation string by string takes 0.08 s.
    _check_utf8(data)
    return _list_array(counts, words)


def _check_utf8(data: bytes) -> None:
    """Raise ValueError unless ``data`` is UTF-8 (arrow's check, on the buffer as one string)."""
    try:
        _utf8_array(data, np.array([0, len(data)])).validate(full=True)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"malformed token values: {exc}") from None


@dataclass(frozen=True, eq=False)
class Utf8Texts:
    """Texts as arrow holds them: their UTF-8 bytes end to end, and where each one starts.

    This is what goes to a worker process: two buffers, not a Python object per text.
    """

    data: bytes
    offsets: np.ndarray  # int64, one more than there are texts; offsets[0] == 0

    @classmethod
    def from_strings(cls, texts: Sequence[str]) -> Utf8Texts:
        encoded = [t.encode("utf-8") for t in texts]
        return cls(b"".join(encoded), _offsets(list(map(len, encoded))))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def strings(self) -> Iterator[str]:
        view = memoryview(self.data)
        bounds = self.offsets.tolist()
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            yield str(view[lo:hi], "utf-8")


def _offsets(sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    """Running totals of the sizes, starting at 0."""
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return offsets


def _int32_array(values: np.ndarray) -> pa.Array:
    """An arrow int32 array of numpy values. (Not pa.array: its first call in a process
    imports pandas, 0.4 s, to rule out a pandas Series.)"""
    values = np.ascontiguousarray(values, np.int32)
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def _string_array(values: Sequence[str]) -> pa.StringArray:
    """An arrow string array of Python strings (without pa.array, see _int32_array)."""
    encoded = [v.encode("utf-8") for v in values]
    return _utf8_array(b"".join(encoded), _offsets(list(map(len, encoded))))


def _utf8_array(data, offsets: np.ndarray) -> pa.StringArray:
    """The strings data[offsets[i]:offsets[i + 1]], sharing ``data`` (no copy)."""
    if offsets[-1] >= 2**31:
        raise ValueError("more than 2 GB of text in one batch")
    return pa.StringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32, copy=False)), pa.py_buffer(data)
    )


_NUMPY_TYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
}


def _to_numpy(array: pa.Array) -> np.ndarray:
    """An integer or boolean arrow array without nulls, as (read-only) numpy. (Not
    Array.to_numpy, which imports pandas too, see _int32_array.)"""
    if array.null_count:
        raise ValueError("an array with nulls")
    start, stop = array.offset, array.offset + len(array)
    buffer = array.buffers()[1]
    if array.type == pa.bool_():
        if not len(array):
            return np.zeros(0, np.bool_)
        bits = np.unpackbits(np.frombuffer(buffer, np.uint8), count=stop, bitorder="little")
        return bits[start:].view(np.bool_)
    dtype = _NUMPY_TYPES[array.type]
    if not len(array):
        return np.zeros(0, dtype)
    return np.frombuffer(buffer, dtype)[start:stop]


def _list_array(offsets: np.ndarray, values: pa.Array) -> pa.ListArray:
    return pa.ListArray.from_arrays(_int32_array(offsets), values)


def content_mask(words: pa.Array, params: SegmentParams, stopwords: pa.Array) -> np.ndarray:
    """is_content_token for many tokens at once (numpy booleans): arrow tests the tokens, no
    Python runs per token. What only concerns Latin letters is tested on the ASCII tokens."""
    ascii_rows = _ascii_rows(words)
    ascii_words = words.take(_int32_array(ascii_rows))
    stopped = _to_numpy(pc.is_in(words, value_set=stopwords)).copy()
    stopped[ascii_rows] |= _to_numpy(pc.is_in(pc.utf8_lower(ascii_words), value_set=stopwords))
    keep = ~stopped & _to_numpy(pc.match_substring_regex(words, _WORDLIKE_RE2))
    if not params.keep_numbers:
        keep &= ~_to_numpy(pc.match_substring_regex(words, _NUMERIC_RE2))
    if not params.keep_latin:
        keep[ascii_rows] &= ~_to_numpy(pc.match_substring_regex(ascii_words, _LATIN_RE2))
    if not params.allow_single_char:
        keep &= _to_numpy(pc.utf8_length(words)) > 1
    return keep


def _ascii_rows(words: pa.Array) -> np.ndarray:
    return np.flatnonzero(_to_numpy(pc.string_is_ascii(words)))


def segment_texts(texts: Sequence[str], params: SegmentParams, lexicon: Lexicon) -> pa.ListArray:
    """Each text's content tokens, in order."""
    return segment_utf8(Utf8Texts.from_strings(texts), params, lexicon)


def segment_utf8(texts: Utf8Texts, params: SegmentParams, lexicon: Lexicon) -> pa.ListArray:
    """Each text's content tokens, in order; every path of the stage comes through here.

    No token is copied, encoded or tested in Python: the tokenizer's tokens cover each text
    exactly, so their lengths locate them in the UTF-8 bytes, and arrow then judges each
    distinct token of the batch once. (Joining the tokens to split them again in arrow, or
    filtering them one by one in Python, costs about as much as the segmentation itself.)
    """
    if params.pos is not None:
        words, offsets = _tagged_words(texts, params, lexicon.backend)
    else:
        words, offsets, chars = _cut_words(texts, params.hmm, lexicon.backend)
        if not params.allow_single_char:  # most tokens: dropped before they are hashed
            longer = np.flatnonzero(chars > 1)
            words = words.take(_int32_array(longer))
            offsets = np.searchsorted(longer, offsets)
    encoded = words.dictionary_encode()
    dictionary = encoded.dictionary
    indices = _to_numpy(encoded.indices)
    if params.hmm and params.pos is None and isinstance(lexicon.backend, RjiebaBackend):
        offsets, indices, dictionary = _repair_symbol_runs(
            offsets, indices, dictionary, lexicon.backend
        )
    keep = content_mask(dictionary, params, lexicon.stopword_array)
    mask = keep[indices]
    kept = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=kept[1:])
    return _list_array(kept[offsets], dictionary.take(_int32_array(indices[mask])))


def _cut_words(
    texts: Utf8Texts, hmm: bool, backend: Backend
) -> tuple[pa.StringArray, np.ndarray, np.ndarray]:
    """The tokenizer's tokens of all texts as one arrow array over ``texts.data``, the token
    offsets of the texts, and each token's length in characters."""
    cut = getattr(backend, "cut_raw", backend.cut)
    lengths = bytearray()  # of every token, in characters (0 for one in `longer`)
    longer: dict[int, int] = {}  # token number -> length, for 256 characters or more
    counts: list[int] = []  # tokens per text
    sizes: list[int] = []  # characters per text
    for text in texts.strings():
        count = 0
        for piece in _pieces(text):
            words = cut(piece, hmm)
            try:
                lengths.extend(map(len, words))
            except ValueError:  # a length of 256 or more; extend added nothing
                for word in words:
                    size = len(word)
                    if size > 255:
                        longer[len(lengths)] = size
                        size = 0
                    lengths.append(size)
            count += len(words)
        counts.append(count)
        sizes.append(len(text))
    chars = np.frombuffer(lengths, np.uint8).astype(np.int64)
    chars[list(longer)] = list(longer.values())
    token_chars = _offsets(chars)  # where each token starts, in characters
    offsets = _offsets(counts)
    if not np.array_equal(token_chars[offsets], _offsets(sizes)):
        raise RuntimeError(f"{backend.name}: the tokens do not cover the text exactly")
    # Where each character starts: at every byte but a UTF-8 continuation byte (10xxxxxx).
    data = np.frombuffer(texts.data, np.int8)
    starts = np.append(np.flatnonzero(data >= -64), len(data))
    return _utf8_array(texts.data, starts[token_chars]), offsets, chars


def _pieces(text: str) -> Iterator[str]:
    """The text, a long one (a novel) in pieces of about LONG_TEXT characters that end with a
    newline, to bound memory: jieba segments the text between non-Chinese characters
    independently, so the pieces have the tokens of the whole text."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + LONG_TEXT) + 1 or len(text)
        yield text[start:end]
        start = end


def _tagged_words(
    texts: Utf8Texts, params: SegmentParams, backend: Backend
) -> tuple[pa.StringArray, np.ndarray]:
    """The words whose part-of-speech tag is listed (they do not cover the text), joined by
    newlines and split in bulk; and the token offsets of the texts."""
    tags = params.pos_tags

    def words(text: str) -> Iterator[str]:
        return (w for w, t in backend.tag(text, params.hmm) if t in tags)

    raw = [_SEP.join(w for p in _pieces(x) for w in words(p)) for x in texts.strings()]
    lists = pc.split_pattern(_string_array(raw), _SEP)
    offsets = _to_numpy(lists.offsets).astype(np.int64)
    return lists.flatten(), offsets - offsets[0]


def _repair_symbol_runs(
    offsets: np.ndarray, indices: np.ndarray, dictionary: pa.Array, backend: RjiebaBackend
) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Apply RjiebaBackend.repair to the dictionary-encoded tokens of a batch, in bulk: each
    distinct token is judged once, and a repaired one is replaced by its pieces, which are
    appended to the dictionary (consecutively, so a token expands to a range of entries)."""
    candidates = _ascii_rows(dictionary)  # a symbol run is ASCII
    suspects = pc.match_substring_regex(dictionary.take(_int32_array(candidates)), _SYMBOL_RUN_RE2)
    fixed: dict[int, list[str]] = {}
    for i in candidates[_to_numpy(suspects)].tolist():
        word = dictionary[i].as_py()
        pieces = backend.repair(word)
        if pieces != [word]:
            fixed[i] = pieces
    if not fixed:
        return offsets, indices, dictionary
    size = len(dictionary)
    first = np.arange(size, dtype=np.int64)  # entry -> its first replacement entry
    length = np.ones(size, dtype=np.int64)  # entry -> how many entries replace it
    added: list[str] = []
    for i, pieces in fixed.items():
        first[i] = size + len(added)
        length[i] = len(pieces)
        added.extend(pieces)
    dictionary = pa.concat_arrays([dictionary, _string_array(added)])
    lengths = length[indices]
    ends = np.cumsum(lengths)
    # Token t becomes entries first[t], first[t] + 1, ... at positions ends[t] - lengths[t], ...
    new = np.repeat(first[indices] - (ends - lengths), lengths) + np.arange(
        ends[-1] if len(ends) else 0
    )
    bounds = np.zeros(len(ends) + 1, dtype=np.int64)
    bounds[1:] = ends
    return bounds[offsets], new, dictionary


def segment_values(texts: Sequence[str], params: SegmentParams, lexicon: Lexicon) -> list[bytes]:
    """Each text's content tokens packed as the cache holds them (see pack_lists)."""
    return pack_lists(segment_texts(texts, params, lexicon))


def tokenize(text: str, params: SegmentParams, lexicon: Lexicon) -> list[str]:
    """One document's content tokens, in order."""
    return segment_texts([text], params, lexicon).to_pylist()[0]


# --------------------------------------------------------------------------- phrases


def learn_phrases(batches: Iterable[pa.ListArray], params: SegmentParams):
    """gensim Phrases (npmi scoring) over the token lists, frozen for applying."""
    from gensim.models.phrases import Phrases

    model = Phrases(
        min_count=params.phrases_min_count,
        threshold=params.phrases_threshold,
        scoring="npmi",
        delimiter="_",
    )
    for lists in batches:
        model.add_vocab(lists.to_pylist())
    return model.freeze()


def apply_phrases(lists: pa.ListArray, phrases) -> pa.ListArray:
    """Join the learnt collocations into one token each (``a_b``)."""
    return pa.array([phrases[t] for t in lists.to_pylist()], pa.list_(pa.string()))


def _tokens_table(doc_ids: pa.ChunkedArray | pa.Array, lists: pa.ListArray) -> pa.Table:
    return pa.table(
        {
            "doc_id": doc_ids,
            "tokens": lists,
            "n_tokens": pc.list_value_length(lists).cast(pa.int32()),
        }
    )


def segment(docs: pa.Table, params: SegmentParams, lexicon: Lexicon) -> pa.Table:
    """Tokens for every document; those not ``kept`` by clean get an empty list."""
    require_columns(docs, ["doc_id", "text", "status"], "segment")
    texts = docs.column("text").to_pylist()
    kept = [i for i, s in enumerate(docs.column("status").to_pylist()) if s == KEPT]
    values = [b""] * len(texts)
    segmented = segment_values([texts[i] for i in kept], params, lexicon)
    for i, value in zip(kept, segmented, strict=True):
        values[i] = value
    lists = unpack_lists(values)
    if params.phrases_threshold is not None:
        lists = apply_phrases(lists, learn_phrases([lists], params))
    return _tokens_table(docs.column("doc_id"), lists)


# --------------------------------------------------------------------------- new words


def discovery_thresholds(params: SegmentParams) -> Thresholds:
    return Thresholds(
        min_count=params.new_words_min_count,
        min_cohesion=params.new_words_min_cohesion,
        min_entropy=params.new_words_min_entropy,
        max_chars=params.new_words_max_chars,
    )


def discovery_checks(params: SegmentParams, lexicon: Lexicon) -> Checks:
    """What discovery asks the tokenizer (with the user dictionary, without new words)."""
    backend = lexicon.backend
    if isinstance(backend, RjiebaBackend):
        known = backend._jieba.has_word
    else:
        freq = backend._tokenizer.FREQ

        def known(word: str) -> bool:
            return bool(freq.get(word))

    users = read_userdict(params.userdict) if params.userdict is not None else []
    review = read_review(params.new_words_review) if params.new_words_review is not None else {}
    return Checks(
        known=known,
        cut=lambda word: backend.cut(word, False),
        stopwords=lexicon.stopwords,
        userwords=frozenset(u.word for u in users),
        review=review,
    )


def find_new_words(clean: Path, params: SegmentParams, lexicon: Lexicon) -> pa.Table:
    """The new-words table of the kept documents of clean.parquet (streamed once per level)."""

    def batches() -> Iterator[pa.Array]:
        for docs in iter_tables(clean, CLEAN, BATCH_ROWS, columns=["text", "status"]):
            kept = pc.equal(docs.column("status"), KEPT)
            yield docs.column("text").filter(kept).combine_chunks()

    return discover(batches, discovery_thresholds(params), discovery_checks(params, lexicon))


def write_new_words(clean: Path, out: Path, params: SegmentParams) -> list[str]:
    """Write new_words.parquet (empty when segment.new_words is off) and return the words to
    add to the tokenizer (the accepted ones with ``use``, else none)."""
    if params.new_words == "off":
        write_table(NEW_WORDS.schema.empty_table(), out, NEW_WORDS)
        return []
    started = time.perf_counter()
    table = find_new_words(clean, params, load_lexicon(params, check=False))
    write_table(table, out, NEW_WORDS)
    words = accepted_words(table)
    log.info(
        "segment: %d new words accepted of %d listed -> %s (%s, %.1f s)",
        len(words),
        table.num_rows,
        out,
        "added to the tokenizer" if params.new_words == "use" else "not used",
        time.perf_counter() - started,
    )
    return words if params.new_words == "use" else []


# --------------------------------------------------------------------------- the stage run

_WORKER: tuple[SegmentParams, Lexicon] | None = None


def _init_worker(
    params: SegmentParams, lexicon: Lexicon | None, new_words: tuple[str, ...] = ()
) -> None:
    """Runs once in each worker process: its own private tokenizer, inherited from the parent
    (fork) or loaded here (spawn, forkserver)."""
    global _WORKER
    if lexicon is None:
        lexicon = load_lexicon(params, check=False, new_words=new_words)
    _WORKER = (params, lexicon)
    # Arrow's default allocator (mimalloc) returns freed pages to the system after 10 ms, and
    # each task then faults them in again; the system allocator keeps them for the next task
    # (about 5% less CPU in a worker, the same peak memory).
    pa.set_memory_pool(pa.system_memory_pool())


def _split_user_words() -> list[str]:
    """A task: the user words this worker's tokenizer does not keep whole (for the warning)."""
    assert _WORKER is not None, "worker not initialised"
    params, lexicon = _WORKER
    if params.userdict is None:
        return []
    words = [e.word for e in read_userdict(params.userdict)]
    return [w for w in words if lexicon.backend.cut(w, params.hmm) != [w]]


def _segment_in_worker(texts: Utf8Texts) -> pa.ListArray:
    """A task: UTF-8 texts in (decoded here, in parallel), token lists out."""
    assert _WORKER is not None, "worker not initialised"
    params, lexicon = _WORKER
    return segment_utf8(texts, params, lexicon)


def worker_count(params: SegmentParams) -> int:
    return params.workers or usable_cores()


@dataclass
class RunStats:
    documents: int = 0
    cached: int = 0
    segmented: int = 0
    segmented_bytes: int = 0
    workers_started: int = 0


@dataclass
class _Job:
    docs: pa.Table
    rows: dict[bytes, list[int]]  # document key -> rows with that text
    hits: dict[bytes, bytes]  # document key -> cached tokens
    tasks: list[tuple[list[bytes], Future]]  # document keys -> their token lists


class Segmenter:
    """Segments streamed tables with the cache and a lazily started pool of worker processes.

    Results come back in input order and do not depend on the number of workers or on what the
    cache holds: every path runs ``segment_utf8`` on the same texts.
    """

    def __init__(
        self, params: SegmentParams, cache_dir: Path | None, new_words: Sequence[str] = ()
    ) -> None:
        self.params = params
        self.new_words = tuple(new_words)
        settings = fingerprint(params, self.new_words)
        self._key = key_function(settings)
        self.cache = TokenCache(cache_dir, settings) if cache_dir is not None else None
        self.workers = worker_count(params)
        self.stats = RunStats()
        self._fork = multiprocessing.get_context(params.start_method).get_start_method() == "fork"
        self._lexicon: Lexicon | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._check: Future | None = None
        self._checked = False  # the user dictionary has been checked in this process
        self._eager = False  # every batch goes to the workers
        self._inline_bytes = 0

    @property
    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            self._lexicon = load_lexicon(
                self.params, check=not self._checked, new_words=self.new_words
            )
            self._checked = True
        return self._lexicon

    def run(self, tables: Iterable[pa.Table]) -> Iterator[tuple[pa.Table, pa.ListArray]]:
        """Yield each input table, in slices of about JOB_BYTES of text, with the token lists
        of the slice's documents."""
        pending: deque[_Job] = deque()
        for docs in tables:
            require_columns(docs, ["doc_id", "text", "status"], "segment")
            for part in _slices(docs, JOB_BYTES):
                pending.append(self._start(part))
                while len(pending) > JOBS_AHEAD:
                    yield self._finish(pending.popleft())
        while pending:
            yield self._finish(pending.popleft())

    def _start(self, docs: pa.Table) -> _Job:
        data, bounds = _text_buffers(docs.column("text"))
        statuses = docs.column("status").to_pylist()
        rows: dict[bytes, list[int]] = {}
        for i, status in enumerate(statuses):
            if status == KEPT:
                key = self._key(data[bounds[i] : bounds[i + 1]])
                rows.setdefault(key, []).append(i)
        hits = self.cache.get_many(list(rows)) if self.cache is not None else {}
        misses = [(k, r[0]) for k, r in rows.items() if k not in hits]
        # A few new documents are segmented here, before a pool of workers would have started.
        size = sum(bounds[i + 1] - bounds[i] for _, i in misses)
        inline = (
            self._pool is None
            and not self._eager
            and (self.workers <= 1 or self._inline_bytes + size <= INLINE_BYTES)
        )
        self._inline_bytes += size if inline else 0
        tasks = []
        for chunk in _chunks(misses, bounds, TASK_BYTES):
            spans = [(bounds[i], bounds[i + 1]) for _, i in chunk]
            texts = Utf8Texts(
                b"".join(data[lo:hi] for lo, hi in spans), _offsets([hi - lo for lo, hi in spans])
            )
            tasks.append(([k for k, _ in chunk], self._submit(texts, inline)))
        self.stats.documents += len(statuses)
        self.stats.cached += sum(len(rows[k]) for k in hits)
        self.stats.segmented += sum(len(rows[k]) for k, _ in misses)
        self.stats.segmented_bytes += size
        return _Job(docs, rows, hits, tasks)

    def expect(self, size: int) -> None:
        """Told that about ``size`` bytes of text are coming. If that is more than this process
        segments itself, every batch goes to the workers. When the cache holds entries, most
        documents are probably in it: the workers start now, to load their tokenizers while
        this process reads, hashes and looks up the texts. Otherwise they will all be busy at
        once, and start with the first batch (forked ones inherit this process's tokenizer,
        loaded once rather than once per worker)."""
        if self.workers <= 1 or size <= INLINE_BYTES:
            return
        self._eager = True
        if self.cache is not None and not self.cache.is_empty():
            self._ensure_pool(inherit=False)

    def _submit(self, texts: Utf8Texts, inline: bool) -> Future:
        if inline:
            future: Future = Future()
            future.set_result(segment_utf8(texts, self.params, self.lexicon))
            return future
        return self._ensure_pool(inherit=self._fork).submit(_segment_in_worker, texts)

    def _ensure_pool(self, inherit: bool) -> ProcessPoolExecutor:
        if self._pool is None:
            # The workers do the segmenting from now on. With ``inherit``, forked workers take
            # this process's tokenizer; otherwise each loads its own, and one of them checks
            # the user dictionary (once) for the warning.
            inherited = self.lexicon if inherit else None
            self._lexicon = None
            context = multiprocessing.get_context(self.params.start_method)
            self._pool = ProcessPoolExecutor(
                self.workers,
                context,
                initializer=_init_worker,
                initargs=(self.params, inherited, self.new_words),
            )
            self.stats.workers_started = self.workers
            if not self._checked:
                self._check = self._pool.submit(_split_user_words)
        return self._pool

    def _finish(self, job: _Job) -> tuple[pa.Table, pa.ListArray]:
        """Wait for a job's tasks, cache their results, and put every row's tokens in order."""
        results: list[pa.ListArray] = []
        values = job.hits  # document key -> packed tokens, when some come from the cache
        for keys, future in job.tasks:
            lists = future.result()
            results.append(lists)
            if self.cache is not None:
                packed = pack_lists(lists)
                self.cache.put_many(zip(keys, packed, strict=True))
                if values:
                    values.update(zip(keys, packed, strict=True))
        if values:  # cached and new tokens together, in row order
            rows = [b""] * job.docs.num_rows
            for key, where in job.rows.items():
                for i in where:
                    rows[i] = values[key]
            return job.docs, unpack_lists(rows)
        keys = [key for task_keys, _ in job.tasks for key in task_keys]
        return job.docs, _arrange(results, keys, job.rows, job.docs.num_rows)

    def close(self) -> None:
        check = self._check
        if check is not None and check.done() and not check.cancelled() and not check.exception():
            _warn_split(self.params, check.result())
        self._check = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self.cache is not None:
            self.cache.close()
            trim_cache(self.cache.path, self.params.cache_max_mb << 20)

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _arrange(
    results: list[pa.ListArray], keys: list[bytes], rows: dict[bytes, list[int]], size: int
) -> pa.ListArray:
    """The token lists of ``keys`` (results of consecutive tasks) placed at their rows; rows
    without a key (not kept by clean) get an empty list."""
    lists = pa.concat_arrays(results) if results else _empty_lists(0)
    index = np.full(size, -1, np.int64)
    for position, key in enumerate(keys):
        index[rows[key]] = position
    kept = index >= 0
    if np.array_equal(index[kept], np.arange(len(lists))):  # in row order: no copy
        sizes = np.zeros(size, np.int64)
        sizes[kept] = np.diff(_to_numpy(lists.offsets))
        return _list_array(_offsets(sizes), lists.flatten())
    with_empty = pa.concat_arrays([lists, _empty_lists(1)])
    return with_empty.take(_int32_array(np.where(kept, index, len(lists))))


def _slices(docs: pa.Table, size: int) -> Iterator[pa.Table]:
    """Consecutive row slices of ``docs`` holding about ``size`` bytes of text each (at least
    one row each): the last job, written after the workers are done, stays small."""
    _, bounds = _text_buffers(docs.column("text"))  # row i is bytes bounds[i]:bounds[i + 1]
    for start, stop in row_spans(bounds, size):
        yield docs.slice(start, stop - start)


def _empty_lists(count: int) -> pa.ListArray:
    return _list_array(np.zeros(count + 1, np.int64), _string_array([]))


def _text_buffers(column: pa.ChunkedArray) -> tuple[memoryview, list[int]]:
    """The UTF-8 bytes of a string column and where each row's text starts and ends."""
    texts = column.combine_chunks()
    _, offsets, data = texts.buffers()
    bounds = np.frombuffer(offsets, np.int32)[texts.offset : texts.offset + len(texts) + 1]
    return memoryview(data if data is not None else b""), bounds.tolist()


def _chunks(
    items: list[tuple[bytes, int]], bounds: list[int], size: int
) -> Iterator[list[tuple[bytes, int]]]:
    """Consecutive runs of (key, row) holding about ``size`` bytes of text each."""
    chunk: list[tuple[bytes, int]] = []
    total = 0
    for item in items:
        chunk.append(item)
        total += bounds[item[1] + 1] - bounds[item[1]]
        if total >= size:
            yield chunk
            chunk, total = [], 0
    if chunk:
        yield chunk


def main(params: Params, paths: Paths) -> None:
    seg = params.segment
    out = paths.table("tokens")
    started = time.perf_counter()
    phrased = seg.phrases_threshold is not None
    first = paths.processed / ".tokens.unphrased.parquet" if phrased else out
    total = 0
    clean = paths.table("clean")
    added = write_new_words(clean, paths.table("new_words"), seg)
    segmenter = Segmenter(seg, resolve_cache_dir(seg.cache_dir), added)
    with segmenter, TableWriter(first, TOKENS) as writer:
        if clean.is_file():  # compressed, so less than the text it holds
            segmenter.expect(clean.stat().st_size)
        for docs, lists in segmenter.run(iter_tables(clean, CLEAN, BATCH_ROWS)):
            table = _tokens_table(docs.column("doc_id"), lists)
            writer.write(table)
            total += pc.sum(table.column("n_tokens")).as_py() or 0
    stats = segmenter.stats
    if phrased:
        _write_phrased(first, out, seg)
    log.info(
        "segment: %d tokens in %d documents -> %s (%d from the cache, %d segmented, "
        "%.1f MB, %d worker process(es), %.1f s)",
        total,
        writer.num_rows,
        out,
        stats.cached,
        stats.segmented,
        stats.segmented_bytes / 1e6,
        stats.workers_started,
        time.perf_counter() - started,
    )


def _write_phrased(first: Path, out: Path, params: SegmentParams) -> None:
    """Second and third pass: learn collocations over all tokens, then join them."""
    phrases = learn_phrases(
        (t.column("tokens").combine_chunks() for t in iter_tables(first, TOKENS)), params
    )
    with TableWriter(out, TOKENS) as writer:
        for table in iter_tables(first, TOKENS):
            lists = apply_phrases(table.column("tokens").combine_chunks(), phrases)
            writer.write(_tokens_table(table.column("doc_id"), lists))
    first.unlink()
