"""Which tokens are content: no punctuation, numbers or stopwords, single characters and Latin
words only if the settings say so; one token at a time (Python) or many at once (arrow)."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrays import int32_array, to_numpy
from pipeline.config import SegmentParams

# Numbers, dates, percentages, placeholders such as 20xx, and Chinese numerals with a unit
# (三亿多, 万件): counts, not content.
NUMERIC = re.compile(
    r"[\d.,%‰+\-/:~xX×*—]*\d[\d.,%‰+\-/:~xX×*—]*[年月日号號时時分秒%]?"
    r"|[零〇一二三四五六七八九十百千万萬亿億两兩几幾多余餘第]+"
    r"[个個件次年月日号號人名元岁歲届屆位项項条條种種家所多余餘]?"
)
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9._\-+&']*")
# The same rules for arrow's RE2 engine, applied to many tokens at once; \p{Nd} is what
# Python's \d means in a str pattern. A test checks both against each other.
_NUMERIC_RE2 = "^(?:" + NUMERIC.pattern.replace(r"\d", r"\p{Nd}") + ")$"
_LATIN_RE2 = "^(?:" + _LATIN.pattern + ")$"
_WORDLIKE_RE2 = r"[\p{L}\p{N}]"


# --------------------------------------------------------------------------- tokens


def is_content_token(token: str, params: SegmentParams, stopwords: frozenset[str]) -> bool:
    """Keep words: no punctuation, whitespace, numbers or stopwords; single characters and
    Latin words only when the settings allow them."""
    if not token or token in stopwords or (token.isascii() and token.lower() in stopwords):
        return False
    if not any(unicodedata.category(c)[0] in "LN" for c in token):
        return False
    if not params.keep_numbers and NUMERIC.fullmatch(token):
        return False
    if not params.keep_latin and _LATIN.fullmatch(token):
        return False
    return params.allow_single_char or len(token) > 1


def content_mask(words: pa.Array, params: SegmentParams, stopwords: pa.Array) -> np.ndarray:
    """is_content_token for many tokens at once (numpy booleans): arrow tests the tokens, no
    Python runs per token. What only concerns Latin letters is tested on the ASCII tokens."""
    ascii = ascii_rows(words)
    ascii_words = words.take(int32_array(ascii))
    stopped = to_numpy(pc.is_in(words, value_set=stopwords)).copy()
    stopped[ascii] |= to_numpy(pc.is_in(pc.utf8_lower(ascii_words), value_set=stopwords))
    keep = ~stopped & to_numpy(pc.match_substring_regex(words, _WORDLIKE_RE2))
    if not params.keep_numbers:
        keep &= ~to_numpy(pc.match_substring_regex(words, _NUMERIC_RE2))
    if not params.keep_latin:
        keep[ascii] &= ~to_numpy(pc.match_substring_regex(ascii_words, _LATIN_RE2))
    if not params.allow_single_char:
        keep &= to_numpy(pc.utf8_length(words)) > 1
    return keep


def ascii_rows(words: pa.Array) -> np.ndarray:
    return np.flatnonzero(to_numpy(pc.string_is_ascii(words)))
