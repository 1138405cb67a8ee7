"""From bytes to text: a BOM, else UTF-8, else the most plausible legacy Chinese codec (GB18030,
Big5), judged by how much the result reads like real text; and what marks bytes as not text."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# --- encodings --------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", 3),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
)
# Legacy Chinese encodings tried when the bytes are not UTF-8, and the name recorded for each.
_LEGACY = ("gb18030", "big5")
# Bytes scored first to choose an encoding (from the first non-ASCII byte): a few thousand
# characters, plenty for a clear decision, cheap for small and big files alike.
_SNIFF_BYTES = 4 * 1024
# The window decides when the best codec's plausibility leads the next one's by this much and
# the window holds this many non-ASCII bytes; otherwise the whole file is compared.
_CLEAR_LEAD = 0.2
_CLEAR_CHARS = 64
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_ASCII = bytes(range(0x80))
# The codec that scores a candidate (Big5 as Microsoft's CP950, the most common variant).
_SCORED_CODEC = {"big5": "cp950"}
_MAGIC = {
    b"%PDF": "a PDF",
    b"PK\x03\x04": "a ZIP archive (docx, xlsx, ...)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0": "an old Office document",
    b"\x1f\x8b": "a gzip archive",
    b"PAR1": "a parquet file",
}
# Punctuation of Chinese text (the CJK block and full-width forms).
_GOOD_SYMBOLS = frozenset(
    [chr(c) for c in range(0x3000, 0x3040)]
    + [chr(c) for c in range(0xFF01, 0xFF5F)]
    + list("“”‘’—…·")
)
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    errors: int


@lru_cache(maxsize=1)
def common_hanzi() -> frozenset[str]:
    """The common characters of both scripts: GB2312 level 1 (3,755 Simplified) and Big5
    level 1 (5,401 Traditional), enumerated from the codecs themselves."""
    chars = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            chars.add(bytes([lead, trail]).decode("gb2312", errors="ignore"))
    for lead in range(0xA4, 0xC7):
        for trail in [*range(0x40, 0x7F), *range(0xA1, 0xFF)]:
            chars.add(bytes([lead, trail]).decode("big5", errors="ignore"))
    return frozenset(chars - {""})


@lru_cache(maxsize=1)
def _char_codes() -> np.ndarray:
    """What each code point adds to the sums plausibility() needs, packed in one integer: 1 if
    it is not whitespace, plus (its weight + 2) << 32, the weight being +1 for a good
    character, -2 for a bad one, 0 otherwise. The last entry stands for every code point above
    the Basic Multilingual Plane (not space, weight 0). Exact for texts below 2**31 characters.
    """
    codes = np.full(0x10001, 1 + (2 << 32), dtype=np.int64)
    good = [*common_hanzi(), *_GOOD_SYMBOLS, *map(chr, range(0x20, 0x7F))]
    codes[[ord(c) for c in good]] = 1 + (3 << 32)
    bad = [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), *range(0x7F, 0xA0), 0xFFFD]
    codes[[*bad, *range(0xE000, 0xF900)]] = 1 + (0 << 32)
    codes[[c for c in range(0x10000) if chr(c).isspace()]] = 2 << 32  # whitespace counts not
    return codes


def plausibility(text: str) -> float:
    """How much ``text`` reads like real (Chinese or Latin) text: the share of common
    characters, ASCII and CJK punctuation among the non-space characters, less twice the share
    of replacement, control and private-use characters (what a wrong codec leaves)."""
    return _plausibilities([text])[0]


def _plausibilities(texts: list[str]) -> list[float]:
    """plausibility() of each text, summed in one pass with a lookup table over the code
    points of all of them (a few nanoseconds a character, one call for all candidates)."""
    pieces = [t for t in texts if t]  # reduceat cannot sum an empty piece
    if not pieces:
        return [0.0] * len(texts)
    joined = "".join(pieces).encode("utf-32-le", "surrogatepass")
    codes = np.take(_char_codes(), np.frombuffer(joined, dtype=np.uint32), mode="clip")
    sums = iter(np.add.reduceat(codes, np.cumsum([0, *map(len, pieces[:-1])])).tolist())
    scores = []
    for text in texts:
        packed = next(sums) if text else 0
        total, weight = packed & 0xFFFFFFFF, (packed >> 32) - 2 * len(text)
        scores.append(weight / total if total else 0.0)
    return scores


def decode(data: bytes, forced: str | None = None) -> Decoded:
    """Decode bytes: a BOM decides; then UTF-8 if valid; else the most plausible of UTF-8,
    GB18030 and Big5 (both legacy codecs accept most byte strings, so the first codec that
    succeeds is often wrong), chosen by ``detect_encoding``; the file is decoded once with it.
    Invalid sequences become U+FFFD and are counted."""
    if forced:
        return decode_as(data, forced)
    for bom, encoding, size in _BOMS:
        if data.startswith(bom):
            return decode_as(data[size:], encoding)
    try:
        return Decoded(data.decode("utf-8"), "utf-8", 0)
    except UnicodeDecodeError:
        pass
    encoding, whole = _detect(data)
    return whole if whole is not None else decode_as(data, encoding)


def detect_encoding(data: bytes) -> str:
    """The most plausible of UTF-8, GB18030 and Big5 for bytes that are not valid UTF-8.

    Only a window is scored first: ``_SNIFF_BYTES`` from the first non-ASCII byte (an ASCII
    header says nothing about the codec, and every codec starts a character there). The whole
    file is compared only when that window is ambiguous: the best codec leads the next by less
    than ``_CLEAR_LEAD``, or the window holds fewer than ``_CLEAR_CHARS`` non-ASCII bytes.
    """
    return _detect(data)[0]


def _detect(data: bytes) -> tuple[str, Decoded | None]:
    """detect_encoding(), and the whole file decoded with the winner if that was done on the
    way (a small file is its own window), so that no file is decoded twice with one codec."""
    first = _NON_ASCII.search(data)
    start = first.start() if first else 0
    window = data[start : start + _SNIFF_BYTES]
    whole = start == 0 and len(window) == len(data)
    decodings = _decodings(window, utf8=False)
    # A window may end inside a character: do not count that against the codec.
    scores = _scores(decodings, cut=start + len(window) < len(data))
    # UTF-8 is scored only if it can compete: at most 1 - 3 * bad / total (the bad characters
    # weigh -2 and cannot be good), and a quarter of the window (which may cut one character)
    # shows at least that many bad characters, less one.
    probe = window[: len(window) // 4].decode("utf-8", "replace").count("\ufffd")
    utf8_at_most = 1 - 3 * (probe - 1) / max(len(window), 1)
    if utf8_at_most > max(scores.values()) - _CLEAR_LEAD:
        decodings = {"utf-8": window.decode("utf-8", "replace"), **decodings}
        scores = _scores(decodings, cut=start + len(window) < len(data))
    else:
        scores = {"utf-8": utf8_at_most, **scores}  # an upper bound: never the winner
    best, second = sorted(scores.values(), reverse=True)[:2]
    clear = best - second >= _CLEAR_LEAD and len(window.translate(None, _ASCII)) >= _CLEAR_CHARS
    if not clear and not whole:
        decodings, whole = _decodings(data), True
        scores = _scores(decodings, cut=False)
    encoding = max(scores, key=lambda e: scores[e])  # ties go to the first listed
    text = decodings[encoding]
    # Reused only when clean: decode_as() counts the errors (and tries Big5-HKSCS for Big5).
    return encoding, Decoded(text, encoding, 0) if whole and "\ufffd" not in text else None


def _decodings(data: bytes, utf8: bool = True) -> dict[str, str]:
    """The bytes decoded with each candidate, invalid sequences replaced (one pass each)."""
    candidates = ("utf-8", *_LEGACY) if utf8 else _LEGACY
    return {e: data.decode(_SCORED_CODEC.get(e, e), "replace") for e in candidates}


def _scores(decodings: dict[str, str], cut: bool) -> dict[str, float]:
    texts = [text[:-1] if cut else text for text in decodings.values()]
    return dict(zip(decodings, _plausibilities(texts), strict=True))


def decode_as(data: bytes, encoding: str) -> Decoded:
    codecs_to_try = ("cp950", "big5hkscs") if encoding == "big5" else (encoding,)
    for codec in codecs_to_try:
        try:
            return Decoded(data.decode(codec), encoding, 0)
        except UnicodeDecodeError:
            continue
    text = data.decode(codecs_to_try[-1], errors="replace")
    return Decoded(text, encoding, text.count("\ufffd"))


def binary_kind(data: bytes, text: str) -> str | None:
    """Why bytes are not text (a known file signature, or mostly control characters), or None."""
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    sample = text[:4096]
    if sample and len(_BINARY_CHARS.findall(sample)) > 0.3 * len(sample):
        return "binary data (mostly control or invalid characters)"
    return None
