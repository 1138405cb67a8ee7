"""From bytes to text: a BOM, else UTF-8, else the most plausible legacy Chinese codec (GB18030,
Big5), judged by how much the result reads like real text; and what marks bytes as not text."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import lru_cache

# --- encodings --------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", 3),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
)
# Legacy Chinese encodings tried when the bytes are not UTF-8, and the name recorded for each.
_LEGACY = ("gb18030", "big5")
# Bytes scored to choose an encoding; long enough for any real text, cheap for big files.
_SNIFF_BYTES = 64 * 1024
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
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")


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


def plausibility(text: str) -> float:
    """How much ``text`` reads like real (Chinese or Latin) text: the share of common
    characters, ASCII and CJK punctuation among the non-space characters, less twice the share
    of replacement, control and private-use characters (what a wrong codec leaves)."""
    common = common_hanzi()
    good = bad = total = 0
    for char in text:
        if char.isspace():
            continue
        total += 1
        if char in common or char in _GOOD_SYMBOLS or " " <= char <= "~":
            good += 1
        elif _BAD_CHARS.match(char):
            bad += 1
    return (good - 2 * bad) / total if total else 0.0


def decode(data: bytes, forced: str | None = None) -> Decoded:
    """Decode bytes: a BOM decides; then UTF-8 if valid; else the most plausible of UTF-8,
    GB18030 and Big5 (both legacy codecs accept most byte strings, so the first codec that
    succeeds is often wrong). Invalid sequences become U+FFFD and are counted."""
    if forced:
        return decode_as(data, forced)
    for bom, encoding, size in _BOMS:
        if data.startswith(bom):
            return decode_as(data[size:], encoding)
    try:
        return Decoded(data.decode("utf-8"), "utf-8", 0)
    except UnicodeDecodeError:
        pass
    return decode_as(data, detect_encoding(data))


def detect_encoding(data: bytes) -> str:
    """The most plausible of UTF-8, GB18030 and Big5 for bytes that are not valid UTF-8."""
    sample = data[:_SNIFF_BYTES]
    scores = {}
    for encoding in ("utf-8", *_LEGACY):
        text = decode_as(sample, encoding).text
        # The sample may end inside a character: do not count that against the codec.
        scores[encoding] = plausibility(text[:-1] if len(sample) < len(data) else text)
    return max(scores, key=lambda e: scores[e])  # ties go to the first listed


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
