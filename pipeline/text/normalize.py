"""Normalising one text (NFKC, invisible characters, one form of quotes and dashes, literal
replacements, boilerplate rules, numbers, spaces), and counting character classes in bulk."""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from pipeline.arrays import running_offsets
from pipeline.io import row_spans
from pipeline.text.rules import NUMBERS_RULE, REPLACEMENTS_RULE, Replacements, Rules

# Control and format characters (zero-width spaces, BOMs, soft hyphens) except \n and \t,
# and U+FFFD left by invalid bytes (counted by ingest in decode_errors).
_INVISIBLE = re.compile(
    r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    r"\ufeff\ufffd]"
)
# One form of quotation marks and dashes: ASCII.
_PUNCTUATION = (
    (re.compile("[“”„‟〝〞〟«»「」『』]"), '"'),
    (re.compile("[‘’‚‛‹›]"), "'"),
    (re.compile("[‐‑‒–—―⁃−﹘﹣⸺⸻]"), "-"),
)
_ANY_PUNCTUATION = re.compile("|".join(pattern.pattern for pattern, _ in _PUNCTUATION))
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_CJK = r"\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}]) | (?=[{_CJK}])")
_SPACE = re.compile(r"\s")
_IDEOGRAPHS = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_NOT_LETTERS = re.compile(r"[\W\d_]+")
# A word of another script: a run of letters that are not CJK ideographs (English, pinyin,
# Cyrillic, kana ...).
_OTHER_WORD = re.compile(r"[^\W\d_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_NOT_WORD = re.compile(r"[\W_]+")

# Texts are handled in bulk in groups of about this many characters (a longer text a window
# at a time): numpy arrays of a group's character codes stay a few MB.
WINDOW_CHARS = 1 << 18


# --- one text -----------------------------------------------------------------------------------

# (rule, n_matches, chars_removed) for the rules that fired on one text.
Audit = list[tuple[str, int, int]]


def normalize_text(text: str, replacements: Replacements | None = None) -> str:
    """NFKC, invisible characters out, one form of quotes and dashes, literal repairs, spaces
    and blank lines folded (no boilerplate rules: see ``clean_text``)."""
    return clean_text(text, Rules(replacements or Replacements()))[0]


def clean_text(text: str, rules: Rules, numbers: str = "keep") -> tuple[str, Audit]:
    """NFKC, Traditional to Simplified, invisible characters out, one form of quotes and
    dashes, literal repairs, boilerplate rules, numbers masked if asked, spaces and blank lines
    folded. Returns the text and what each rule removed."""
    return next(clean_texts([text], rules, numbers))


def clean_texts(
    texts: Iterable[str], rules: Rules, numbers: str = "keep"
) -> Iterator[tuple[str, Audit]]:
    """``clean_text`` of each text, in order; NFKC runs partly in bulk."""
    for text in _nfkc(texts):
        yield _clean_normalized(text, rules, numbers)


def _clean_normalized(text: str, rules: Rules, numbers: str) -> tuple[str, Audit]:
    audit: Audit = []
    if rules.converter is not None:
        text = rules.converter.convert(text)
    text = _INVISIBLE.sub("", text)
    if _ANY_PUNCTUATION.search(text):
        for pattern, replacement in _PUNCTUATION:
            text = pattern.sub(replacement, text)
    before = len(text)
    text, n = rules.replacements.apply_counted(text)
    if n:
        audit.append((REPLACEMENTS_RULE, n, before - len(text)))
    for rule in rules.boilerplate:
        if rule.may_match(text):
            text = _apply(rule.name, rule.pattern, "", text, audit)
    if numbers == "mask":
        text = _apply(NUMBERS_RULE, _NUMBER, "#", text, audit)
    return _fold_spaces(text), audit


def _apply(name: str, pattern: re.Pattern[str], repl: str, text: str, audit: Audit) -> str:
    new, n = pattern.subn(repl, text)
    if n:
        audit.append((name, n, len(text) - len(new)))
    return new


def _fold_spaces(text: str) -> str:
    """Runs of spaces as one, none beside CJK characters, none at the ends of lines, no blank
    lines. The substitutions run on the whole text at once, which is the same as line by
    line: they never look across a line break."""
    if " " in text or "\t" in text or "\u00a0" in text or "\u3000" in text:
        text = _SPACE_NEAR_CJK.sub("", _SPACES.sub(" ", text))
    if "\n" not in text:
        return text.strip()
    return "\n".join(line for line in (part.strip() for part in text.split("\n")) if line)


def _nfkc(texts: Iterable[str]) -> Iterator[str]:
    """``unicodedata.normalize("NFKC", text)`` of each text, faster for Chinese.

    Full-width ASCII and the ideographic space, which NFKC maps one to one to ASCII, are
    folded first, in bulk; most texts then pass NFKC's quick check as they are. The others are
    normalised a line at a time (NFKC never looks across a line break), so that only the
    lines that need it pay for the full normalisation.
    """
    texts = texts if isinstance(texts, Sequence) else list(texts)
    for group in text_groups(texts, WINDOW_CHARS):
        for text in _fold_full_width(group):
            if not unicodedata.is_normalized("NFKC", text):
                text = "\n".join(unicodedata.normalize("NFKC", line) for line in text.split("\n"))
            yield text


def _fold_full_width(texts: Sequence[str]) -> Sequence[str]:
    joined = "".join(texts)
    if joined.isascii():
        return texts
    codes = code_points(joined)
    wide = (codes >= 0xFF01) & (codes <= 0xFF5E)
    space = codes == 0x3000
    if not (wide.any() or space.any()):
        return texts
    codes = codes.copy()
    codes[wide] -= 0xFF01 - 0x21
    codes[space] = 0x20
    folded = codes.tobytes().decode("utf-32-le", "surrogatepass")
    out, start = [], 0
    for text in texts:
        out.append(folded[start : start + len(text)])
        start += len(text)
    return out


def text_groups(texts: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive texts in groups of at most ``size`` characters (a longer text alone)."""
    if texts:
        offsets = running_offsets([len(text) for text in texts]).tolist()
        for start, stop in row_spans(offsets, size):
            yield texts[start:stop]


def code_points(text: str) -> np.ndarray:
    """The code points of ``text`` (read-only)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def visible_chars(text: str) -> int:
    """Non-space characters."""
    return len(text) - len(_SPACE.findall(text))


def cjk_share(text: str) -> float:
    """The share of CJK ideographs in ``text``, where a word of another script (a run of
    letters: "abstract", "Zhang") counts as one, like one ideograph: Chinese writes a word in
    one or two characters, English in five to ten letters, so counting letters would make a
    Chinese article with an English abstract and references look English. 1.0 without any."""
    ideographs = len(_IDEOGRAPHS.sub("", text))
    units = ideographs + len(_OTHER_WORD.findall(text))
    return ideographs / units if units else 1.0


# Flags of a code point in the table of char_classes.
IS_SPACE, IS_WORD, IS_LETTER, IS_IDEOGRAPH = 1, 2, 4, 8


@functools.cache
def char_classes() -> np.ndarray:
    """One byte of flags per code point, made with the very patterns that ``visible_chars``,
    ``cjk_share`` and the shingles use, so that counting in bulk gives the same numbers."""
    every = np.arange(sys.maxunicode + 1, dtype=np.uint32).tobytes()
    every = every.decode("utf-32-le", "surrogatepass")
    table = np.zeros(sys.maxunicode + 1, dtype=np.uint8)
    for flag, others in (
        (IS_SPACE, re.compile(r"\S+")),
        (IS_WORD, _NOT_WORD),
        (IS_LETTER, _NOT_LETTERS),
        (IS_IDEOGRAPH, _IDEOGRAPHS),
    ):
        table[code_points(others.sub("", every))] |= flag
    return table


def char_counts(texts: Sequence[str]) -> np.ndarray:
    """For each text, its numbers of spaces, words of other scripts and CJK ideographs
    (``visible_chars`` and ``cjk_share`` in bulk), as an int64 array of shape (len(texts), 3)."""
    table = char_classes()
    counts = np.zeros((len(texts), 3), dtype=np.int64)
    first = 0
    for group in text_groups(texts, WINDOW_CHARS):
        if len(group) == 1:  # perhaps a long text: a window at a time
            before = False  # whether the window before ended inside a word
            for start in range(0, len(group[0]), WINDOW_CHARS):
                classes = table[code_points(group[0][start : start + WINDOW_CHARS])]
                flags = _flags(classes, np.array([0]), before)
                counts[first] += [np.count_nonzero(f) for f in flags]
                before = bool(_other_letter(classes[-1:])[0])
        else:
            classes = table[code_points("".join(group))]
            bounds = np.cumsum([0] + [len(text) for text in group])
            for column, flag in enumerate(_flags(classes, bounds[:-1], False)):
                total = np.concatenate(([0], np.cumsum(flag)))
                counts[first : first + len(group), column] = total[bounds[1:]] - total[bounds[:-1]]
        first += len(group)
    return counts


def _other_letter(classes: np.ndarray) -> np.ndarray:
    return (classes & (IS_LETTER | IS_IDEOGRAPH)) == IS_LETTER


def _flags(classes: np.ndarray, starts: np.ndarray, before: bool) -> list[np.ndarray]:
    """Per character: a space; the first letter of a word of another script (no such letter
    just before it in the same text); a CJK ideograph."""
    other = _other_letter(classes)
    previous = np.concatenate(([before], other[:-1]))
    previous[starts[starts < len(previous)]] = False
    previous[0] = before
    return [(classes & IS_SPACE) != 0, other & ~previous, (classes & IS_IDEOGRAPH) != 0]
