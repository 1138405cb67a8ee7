"""The segment stage's heavy resources: the user dictionary and stopword lists, the tokenizer
backends (jieba, jieba-rs through rjieba), each a private instance, and ``Lexicon``, which
holds them once per process."""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrays import concat_ranges, int32_array, running_offsets, string_array, to_numpy
from pipeline.config import SegmentParams
from pipeline.text.token_filters import ascii_rows

log = logging.getLogger(__name__)
# jieba's HMM step splits a run of Latin letters, digits and symbols that is not a dictionary
# word with this pattern (jieba/finalseg); jieba-rs's version keeps 4-2, E-P1 or abc.com whole.
_FINALSEG_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")
_SYMBOL_RUN = re.compile(r"[A-Za-z0-9+#&._%\-]*[+#&._%\-][A-Za-z0-9+#&._%\-]*")
_SYMBOL_RUN_RE2 = "^" + _SYMBOL_RUN.pattern + "$"


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
    def has_word(self, word: str) -> bool: ...
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

    def has_word(self, word: str) -> bool:
        """In the dictionary (jieba also stores every word's prefixes, with frequency 0)."""
        return bool(self._tokenizer.FREQ.get(word))

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

    def has_word(self, word: str) -> bool:
        return self._jieba.has_word(word)

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
        return string_array(sorted(self.stopwords))


def load_lexicon(
    params: SegmentParams, check: bool = True, new_words: Sequence[str] = ()
) -> Lexicon:
    """A private tokenizer with the discovered ``new_words`` (segment.new_words = use) and the
    user dictionary, added last so that a user word's frequency and tag win, and the stopwords
    segmented by it.

    With ``check``, a warning lists the user words that the tokenizer does not keep whole.
    """
    backend = BACKENDS[params.backend]()
    words = read_userdict(params.userdict) if params.userdict is not None else []
    users = {e.word for e in words}
    for word in new_words:  # with the frequency jieba suggests: just enough to stay whole
        if not _holds_any(word, users):  # a user word is never absorbed into a longer one
            backend.add_word(word, None, None)
    for entry in words:
        backend.add_word(entry.word, entry.freq, entry.tag)
    if check:
        warn_split_words(
            params, [e.word for e in words if backend.cut(e.word, params.hmm) != [e.word]]
        )
    return Lexicon(backend, frozenset(presegment(load_stopwords(params), backend, params.hmm)))


def _holds_any(word: str, words: set[str]) -> bool:
    """Whether ``word`` is or contains one of ``words`` (of two or more characters)."""
    return any(word[i:j] in words for i in range(len(word)) for j in range(i + 2, len(word) + 1))


def warn_split_words(params: SegmentParams, split: list[str]) -> None:
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


def repair_symbol_runs(
    offsets: np.ndarray, indices: np.ndarray, dictionary: pa.Array, backend: RjiebaBackend
) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Apply RjiebaBackend.repair to the dictionary-encoded tokens of a batch, in bulk: each
    distinct token is judged once, and a repaired one is replaced by its pieces, which are
    appended to the dictionary (consecutively, so a token expands to a range of entries)."""
    candidates = ascii_rows(dictionary)  # a symbol run is ASCII
    suspects = pc.match_substring_regex(dictionary.take(int32_array(candidates)), _SYMBOL_RUN_RE2)
    fixed: dict[int, list[str]] = {}
    for i in candidates[to_numpy(suspects)].tolist():
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
    dictionary = pa.concat_arrays([dictionary, string_array(added)])
    lengths = length[indices]
    # Token t becomes entries first[t], first[t] + 1, ..., first[t] + lengths[t] - 1.
    new = concat_ranges(first[indices], lengths)
    return running_offsets(lengths)[offsets], new, dictionary
