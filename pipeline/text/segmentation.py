"""From clean texts to content-token lists in bulk: the one path every run of the segment
stage takes (inline, in a worker process, or for a single document)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrays import (
    int32_array,
    list_array,
    running_offsets,
    string_array,
    to_numpy,
    utf8_array,
)
from pipeline.config import SegmentParams
from pipeline.text.token_cache import pack_lists
from pipeline.text.token_filters import content_mask
from pipeline.text.tokenizers import Backend, Lexicon, RjiebaBackend, repair_symbol_runs

# Words kept by their part-of-speech tag are joined by newlines to be split in bulk: no kept
# word contains one (jieba emits whitespace only as whitespace-only tokens, which are dropped).
_SEP = "\n"
# Longer texts are segmented in pieces of about this many characters (see _pieces).
LONG_TEXT = 100_000


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
        return cls(b"".join(encoded), running_offsets(list(map(len, encoded))))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def strings(self) -> Iterator[str]:
        view = memoryview(self.data)
        bounds = self.offsets.tolist()
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            yield str(view[lo:hi], "utf-8")


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
            words = words.take(int32_array(longer))
            offsets = np.searchsorted(longer, offsets)
    encoded = words.dictionary_encode()
    dictionary = encoded.dictionary
    indices = to_numpy(encoded.indices)
    if params.hmm and params.pos is None and isinstance(lexicon.backend, RjiebaBackend):
        offsets, indices, dictionary = repair_symbol_runs(
            offsets, indices, dictionary, lexicon.backend
        )
    keep = content_mask(dictionary, params, lexicon.stopword_array)
    mask = keep[indices]
    kept = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=kept[1:])
    return list_array(kept[offsets], dictionary.take(int32_array(indices[mask])))


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
    token_chars = running_offsets(chars)  # where each token starts, in characters
    offsets = running_offsets(counts)
    if not np.array_equal(token_chars[offsets], running_offsets(sizes)):
        raise RuntimeError(f"{backend.name}: the tokens do not cover the text exactly")
    # Where each character starts: at every byte but a UTF-8 continuation byte (10xxxxxx).
    data = np.frombuffer(texts.data, np.int8)
    starts = np.append(np.flatnonzero(data >= -64), len(data))
    return utf8_array(texts.data, starts[token_chars]), offsets, chars


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
    lists = pc.split_pattern(string_array(raw), _SEP)
    offsets = to_numpy(lists.offsets).astype(np.int64)
    return lists.flatten(), offsets - offsets[0]


def segment_values(texts: Sequence[str], params: SegmentParams, lexicon: Lexicon) -> list[bytes]:
    """Each text's content tokens packed as the cache holds them (see pack_lists)."""
    return pack_lists(segment_texts(texts, params, lexicon))


def tokenize(text: str, params: SegmentParams, lexicon: Lexicon) -> list[str]:
    """One document's content tokens, in order."""
    return segment_texts([text], params, lexicon).to_pylist()[0]
