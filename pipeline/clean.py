"""Stage clean: normalisation, boilerplate rules (audited), Traditional to Simplified, duplicate
and near-duplicate clusters, and the final status of every document; writes the ingest report.

Each document is cleaned, measured and MinHashed on its own, many at a time, in worker
processes when there is enough text (``prepare_batch``); duplicates are then decided in
document order in one process, against a compact index (``Deduplicator``)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import multiprocessing
import os
import re
import sys
import tempfile
import unicodedata
from bisect import bisect_right
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from pipeline.config import CleanParams, Params
from pipeline.io import (
    Paths,
    Spool,
    TableWriter,
    iter_tables,
    usable_cores,
    write_json,
    write_table,
)
from pipeline.schemas import (
    CLEAN,
    CLEAN_AUDIT,
    DECODE_ERRORS,
    DOCUMENTS,
    DUPLICATE,
    EMPTY,
    INGEST_REPORT,
    KEPT,
    NEAR_DUPLICATE,
    NOT_CHINESE,
    TOO_SHORT,
    require_columns,
)

try:  # the parser of the re module, read by required_text
    from re import _parser as _sre
except ImportError:  # Python 3.10
    import sre_parse as _sre

log = logging.getLogger(__name__)

# Audit names of the steps that are not rules of the boilerplate file.
REPLACEMENTS_RULE, NUMBERS_RULE = "replacements", "numbers"

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
_NOT_WORD = re.compile(r"[\W_]+")

# Texts are handled in bulk in groups of about this many characters (a longer text a window
# at a time): numpy arrays of a group's character codes stay a few MB.
_WINDOW = 1 << 18


class CleanError(ValueError):
    """A rules file is malformed or names an unknown rule; the message names the file and line."""


# --- rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replacements:
    """Literal text replacements, applied longest match first in one pass."""

    pairs: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        keys = sorted((k for k, _ in self.pairs), key=lambda k: (-len(k), k))
        pattern = re.compile("|".join(map(re.escape, keys))) if keys else None
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_table", dict(self.pairs))

    def apply(self, text: str) -> str:
        return self.apply_counted(text)[0]

    def apply_counted(self, text: str) -> tuple[str, int]:
        """The text and the number of replacements that changed it (a word mapped to itself,
        which protects it, is not counted)."""
        if self._pattern is None:
            return text, 0
        changed = 0

        def swap(match: re.Match[str]) -> str:
            nonlocal changed
            new = self._table[match.group(0)]
            changed += new != match.group(0)
            return new

        return self._pattern.sub(swap, text), changed


@dataclass(frozen=True)
class Rule:
    """A named boilerplate pattern; every match is removed."""

    name: str
    pattern: re.Pattern[str]

    def __post_init__(self) -> None:
        # A few strings are looked for one by one (str.find is fast), more with one pattern.
        clauses = [
            c if len(c) <= 8 else re.compile("|".join(map(re.escape, c)))
            for c in required_clauses(self.pattern)
        ]
        object.__setattr__(self, "_clauses", tuple(clauses))

    def may_match(self, text: str) -> bool:
        """False when ``text`` lacks something that every match contains: a scan for a few
        literal strings spares most texts a pattern that would be tried at every position."""
        for clause in self._clauses:
            if type(clause) is tuple:
                for needed in clause:
                    if needed in text:
                        break
                else:
                    return False
            elif clause.search(text) is None:
                return False
        return True


# What every match of a pattern contains: a literal, or ("all" | "any", parts).
Needs = str | tuple[str, tuple["Needs", ...]]
# At most this many strings stand for one part of a pattern.
_MAX_STRINGS = 64


def required_clauses(pattern: re.Pattern[str]) -> list[tuple[str, ...]]:
    """Clauses that every match of ``pattern`` meets, each by containing one of its strings,
    read from the pattern's parse tree. None for a case-insensitive pattern; fewer (or none)
    where a part of the pattern is not made of literals."""
    if pattern.flags & re.IGNORECASE or not isinstance(pattern.pattern, str):
        return []
    clauses = _clauses(_needs_of_sequence(_sre.parse(pattern.pattern, pattern.flags)))
    clauses = [c for c in dict.fromkeys(tuple(sorted(set(c))) for c in clauses) if "" not in c]
    # A clause that holds whenever another does (each string of the other contains one of its
    # strings) adds nothing.
    clauses = [c for c in clauses if not any(d != c and _implies(d, c) for d in clauses)]
    return sorted(clauses, key=lambda c: (len(c), -min(map(len, c))))  # the quickest first


def _implies(clause: tuple[str, ...], other: tuple[str, ...]) -> bool:
    return all(any(s in t for s in other) for t in clause)


def _needs_of_sequence(items) -> Needs | None:
    parts: list[Needs] = []
    run: tuple[str, ...] | None = None  # the strings that adjacent literal parts match
    for op, av in items:
        strings, whole = _literals(op, av), True
        if strings is None and op in _REPEATS:
            strings, whole = _repeated_literals(*av)
        if strings is not None:
            joined = strings if run is None else tuple(a + b for a in run for b in strings)
            if len(joined) > _MAX_STRINGS:
                if run is not None:
                    parts.append(_any(run))
                joined = strings
            if whole:
                run = joined
            else:  # the node's match begins and ends with one of the strings
                parts.append(_any(joined))
                run = strings
            continue
        if run is not None:
            parts.append(_any(run))
            run = None
        needs = _needs_of_item(op, av)
        if needs is not None:
            parts.append(needs)
    if run is not None:
        parts.append(_any(run))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else ("all", tuple(parts))


def _any(strings: tuple[str, ...]) -> Needs:
    return strings[0] if len(strings) == 1 else ("any", strings)


def _literals(op, av) -> tuple[str, ...] | None:
    """All the strings a node can match, if it is made of literals only (and they are few)."""
    if op is _sre.LITERAL:
        return (chr(av),)
    if op is _sre.IN:
        if all(kind is _sre.LITERAL for kind, _ in av):
            return tuple(sorted({chr(code) for _, code in av}))
        return None
    if op is _sre.BRANCH or op is _sre.SUBPATTERN:
        if op is _sre.SUBPATTERN and av[1] & re.IGNORECASE:
            return None
        alternatives = av[1] if op is _sre.BRANCH else [av[-1]]
        out: dict[str, None] = {}
        for alternative in alternatives:
            strings: tuple[str, ...] = ("",)
            for item in alternative:
                more = _literals(*item)
                if more is None:
                    return None
                strings = tuple(a + b for a in strings for b in more)
                if len(strings) > _MAX_STRINGS:
                    return None
            out.update(dict.fromkeys(strings))
        return tuple(out) if len(out) <= _MAX_STRINGS else None
    return None


def _repeated_literals(low: int, high: int, inner) -> tuple[tuple[str, ...] | None, bool]:
    """For a repeat of literals: the strings its first (and last) ``low`` repetitions match,
    and whether they are the whole match (``low == high``)."""
    once: tuple[str, ...] | None = ("",)
    for item in inner:
        more = _literals(*item)
        once = None if more is None else tuple(a + b for a in once for b in more)
        if once is None or len(once) > _MAX_STRINGS:
            return None, True
    if low < 1:
        return None, True
    strings = once
    for _ in range(low - 1):
        if len(strings) * len(once) > _MAX_STRINGS:
            return strings, False
        strings = tuple(a + b for a in strings for b in once)
    return strings, low == high


def _needs_of_item(op, av) -> Needs | None:
    """What a node that is not made of literals only requires; an optional part, a
    negation, a class with ranges or a back reference requires nothing."""
    if op is _sre.BRANCH:
        alternatives = [_needs_of_sequence(alternative) for alternative in av[1]]
        if any(a is None for a in alternatives):
            return None
        return ("any", tuple(alternatives))
    if op is _sre.SUBPATTERN:
        _, add_flags, _, inner = av
        return None if add_flags & re.IGNORECASE else _needs_of_sequence(inner)
    if op in _REPEATS:
        low, _, inner = av
        return _needs_of_sequence(inner) if low >= 1 else None
    if op is getattr(_sre, "ATOMIC_GROUP", None):
        return _needs_of_sequence(av)
    if op is _sre.ASSERT:  # a lookahead or lookbehind: its text is in the text too
        return _needs_of_sequence(av[1])
    return None


_REPEATS = tuple(
    op
    for op in (getattr(_sre, n, None) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"))
    if op is not None
)


def _clauses(needs: Needs | None) -> list[tuple[str, ...]]:
    """``needs`` as clauses that must all hold, each met by any one of its strings."""
    if needs is None:
        return []
    if isinstance(needs, str):
        return [(needs,)]
    kind, parts = needs
    if kind == "all":
        return [clause for part in parts for clause in _clauses(part)]
    # Any one alternative: each choice of one clause per alternative, joined, holds.
    joined: list[tuple[str, ...]] = [()]
    for part in parts:
        clauses = _clauses(part)
        if not clauses:
            return []
        if len(joined) * len(clauses) > _MAX_STRINGS:
            clauses = clauses[:1]
        joined = [a + b for a in joined for b in clauses]
    return joined


@dataclass(frozen=True)
class Rules:
    """Everything clean needs besides the data, loaded once per stage."""

    replacements: Replacements = field(default_factory=Replacements)
    boilerplate: tuple[Rule, ...] = ()
    converter: object | None = None  # an opencc.OpenCC, or None for clean.convert = none


def load_replacements(path: Path | None) -> Replacements:
    """Read ``from<TAB>to`` lines; blank lines and lines starting with # are skipped."""
    if path is None:
        return Replacements()
    pairs: dict[str, str] = {}
    for line_no, line in _data_lines(path):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0]:
            raise CleanError(f"{path}: line {line_no}: expected 'from<TAB>to', got {line!r}")
        source = unicodedata.normalize("NFKC", fields[0])
        if source in pairs:
            raise CleanError(f"{path}: line {line_no}: {source!r} is listed twice")
        pairs[source] = unicodedata.normalize("NFKC", fields[1])
    return Replacements(tuple(pairs.items()))


def load_boilerplate(path: Path | None, disable: Iterable[str] = ()) -> tuple[Rule, ...]:
    """Read the named rules (``name<TAB>pattern<TAB>enabled`` after a header line), in file
    order, leaving out those disabled in the file or listed in ``disable``."""
    if path is None:
        return ()
    rules: list[Rule] = []
    names: set[str] = set()
    lines = _data_lines(path)
    header = next(lines, (0, ""))[1].split("\t")
    if header != ["name", "pattern", "enabled"]:
        raise CleanError(f"{path}: the first line must be 'name<TAB>pattern<TAB>enabled'")
    for line_no, line in lines:
        fields = line.split("\t")
        if len(fields) != 3 or not fields[0] or fields[2] not in ("true", "false"):
            raise CleanError(
                f"{path}: line {line_no}: expected 'name<TAB>pattern<TAB>true|false', got {line!r}"
            )
        name, pattern, enabled = fields
        if name in names or name in (REPLACEMENTS_RULE, NUMBERS_RULE):
            raise CleanError(f"{path}: line {line_no}: rule name {name!r} is used twice")
        names.add(name)
        try:
            compiled = re.compile(pattern, re.MULTILINE)
        except re.error as exc:
            raise CleanError(f"{path}: line {line_no}: rule {name!r}: bad pattern ({exc})") from exc
        if enabled == "true":
            rules.append(Rule(name, compiled))
    unknown = sorted(set(disable) - names)
    if unknown:
        raise CleanError(
            f"params: clean.boilerplate_disable names unknown rule(s) {unknown}; "
            f"the rules in {path} are {sorted(names)}"
        )
    return tuple(rule for rule in rules if rule.name not in set(disable))


def _data_lines(path: Path):
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield line_no, line


def load_rules(params: CleanParams) -> Rules:
    """The replacements, the enabled boilerplate rules and the OpenCC converter."""
    converter = None
    if params.convert != "none":
        import opencc

        converter = opencc.OpenCC(f"{params.convert}.json")
    return Rules(
        load_replacements(params.replacements),
        load_boilerplate(params.boilerplate, params.boilerplate_disable),
        converter,
    )


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
    for group in _groups(texts, _WINDOW):
        for text in _fold_full_width(group):
            if not unicodedata.is_normalized("NFKC", text):
                text = "\n".join(unicodedata.normalize("NFKC", line) for line in text.split("\n"))
            yield text


def _fold_full_width(texts: list[str]) -> list[str]:
    joined = "".join(texts)
    if joined.isascii():
        return texts
    codes = _codes(joined)
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


def _groups(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """Consecutive texts in lists of at most ``size`` characters (a longer text alone)."""
    group: list[str] = []
    total = 0
    for text in texts:
        if group and total + len(text) > size:
            yield group
            group, total = [], 0
        group.append(text)
        total += len(text)
    if group:
        yield group


def _codes(text: str) -> np.ndarray:
    """The code points of ``text`` (read-only)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def visible_chars(text: str) -> int:
    """Non-space characters."""
    return len(text) - len(_SPACE.findall(text))


def cjk_share(text: str) -> float:
    """The share of CJK ideographs among the letters of ``text`` (1.0 when it has none)."""
    letters = len(_NOT_LETTERS.sub("", text))
    return len(_IDEOGRAPHS.sub("", text)) / letters if letters else 1.0


# Flags of a code point in the table of _char_classes.
_IS_SPACE, _IS_WORD, _IS_LETTER, _IS_IDEOGRAPH = 1, 2, 4, 8


@functools.cache
def _char_classes() -> np.ndarray:
    """One byte of flags per code point, made with the very patterns that ``visible_chars``,
    ``cjk_share`` and the shingles use, so that counting in bulk gives the same numbers."""
    every = np.arange(sys.maxunicode + 1, dtype=np.uint32).tobytes()
    every = every.decode("utf-32-le", "surrogatepass")
    table = np.zeros(sys.maxunicode + 1, dtype=np.uint8)
    for flag, others in (
        (_IS_SPACE, re.compile(r"\S+")),
        (_IS_WORD, _NOT_WORD),
        (_IS_LETTER, _NOT_LETTERS),
        (_IS_IDEOGRAPH, _IDEOGRAPHS),
    ):
        table[_codes(others.sub("", every))] |= flag
    return table


def char_counts(texts: Sequence[str]) -> np.ndarray:
    """For each text, its numbers of spaces, letters and CJK ideographs (``visible_chars``
    and ``cjk_share`` in bulk), as an int64 array of shape (len(texts), 3)."""
    table = _char_classes()
    flags = (_IS_SPACE, _IS_LETTER, _IS_IDEOGRAPH)
    counts = np.zeros((len(texts), len(flags)), dtype=np.int64)
    first = 0
    for group in _groups(texts, _WINDOW):
        if len(group) == 1:  # perhaps a long text: a window at a time
            for start in range(0, len(group[0]), _WINDOW):
                classes = table[_codes(group[0][start : start + _WINDOW])]
                counts[first] += [np.count_nonzero(classes & flag) for flag in flags]
        else:
            classes = table[_codes("".join(group))]
            bounds = np.cumsum([0] + [len(text) for text in group])
            for column, flag in enumerate(flags):
                total = np.concatenate(([0], np.cumsum((classes & flag) != 0)))
                counts[first : first + len(group), column] = total[bounds[1:]] - total[bounds[:-1]]
        first += len(group)
    return counts


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
    table = _char_classes()
    out = np.full((len(texts), len(a)), np.iinfo(np.uint32).max, dtype=np.uint32)
    first = 0
    for group in _groups(texts, _WINDOW):
        if len(group) == 1 and len(group[0]) > _WINDOW:
            for hashes in _long_text_hashes(group[0], k, table):
                _minhash_into(out[first : first + 1], hashes, np.array([len(hashes)]), a, b)
        else:
            codes = _codes("".join(group))
            word = (table[codes] & _IS_WORD) != 0
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
        hashes[_ranges(offsets[full], counts[full])] = rolling[_ranges(starts[full], counts[full])]
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
    for start in range(0, len(text), _WINDOW):
        codes = _codes(text[start : start + _WINDOW])
        codes = np.concatenate((tail, codes[(table[codes] & _IS_WORD) != 0]))
        if len(codes) >= k:
            yield _polynomial_hashes(codes, k)
            emitted = True
            codes = codes[len(codes) - k + 1 :]
        tail = codes
    if not emitted:  # fewer than k letters and digits in all
        yield shingle_hashes(tail, np.array([len(tail)]), k)[0]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(start, start + count)`` for each start and count."""
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(ends[-1] if len(ends) else 0)


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
        self._exact = _SortedIndex([("number", np.int32), ("rest", np.uint64)])
        self._index = _SortedIndex(np.int32)  # band hash -> canonical number
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
        same = others == signature
        # A band hash may collide: only a band of equal values makes a candidate.
        bands = same[:, : self._bands * self._rows].reshape(len(others), self._bands, -1)
        scores = np.count_nonzero(same, axis=1) / len(signature)
        near = bands.all(axis=2).any(axis=1) & (scores >= self._params.near_duplicate_threshold)
        if not near.any():
            return -1
        tied = np.flatnonzero(near & (scores == scores[near].max())).tolist()
        return min((candidates[i] for i in tied), key=lambda n: self._id(n, base, new_ids))

    def _id(self, number: int, base: int, new_ids: list[str]) -> str:
        return new_ids[number - base] if number >= base else self._ids[number].as_py()

    def _band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """A 64-bit hash of each LSH band (its number and values) of each signature."""
        n = len(signatures)
        values = signatures[:, : self._bands * self._rows].reshape(n, self._bands, self._rows)
        keys = np.repeat(np.arange(1, self._bands + 1, dtype=np.uint64)[None, :], n, axis=0)
        with np.errstate(over="ignore"):
            keys *= np.uint64(0x9E3779B97F4A7C15)
            for j in range(self._rows):
                keys ^= values[:, :, j]
                keys *= np.uint64(0x100000001B3)
            keys ^= keys >> np.uint64(31)
        return keys

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


class _SortedIndex:
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
            values.append(stored[_ranges(lo, counts)])
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


# --- tables ---------------------------------------------------------------------------------------


@dataclass
class CleanResult:
    clean: pa.Table
    audit: pa.Table


@dataclass
class Prepared:
    """What clean learns from each document of a batch on its own: ``table`` (text, n_chars,
    status and reason before duplicates, a row per document), ``audit`` (row, rule, n_matches,
    chars_removed), and for the documents kept so far the 16-byte hash of the text
    (``digests``, empty otherwise) and the MinHash signature (``signatures[signature_rows[i]]``;
    -1 for none, or when an earlier document of the batch has the same text)."""

    table: pa.Table
    audit: pa.Table
    digests: np.ndarray
    signature_rows: np.ndarray
    signatures: np.ndarray


def clean(docs: pa.Table, params: CleanParams, rules: Rules) -> CleanResult:
    """Clean a whole (small) table: statuses, clusters and the audit of every rule."""
    dedup = Deduplicator(params) if params.deduplicate else None
    with dedup or contextlib.nullcontext():
        table, audit = clean_batch(docs, params, rules, dedup)
    sizes = dedup.sizes if dedup is not None else Counter()
    return CleanResult(fill_cluster_sizes(table, sizes), audit)


def clean_batch(
    docs: pa.Table, params: CleanParams, rules: Rules, dedup: Deduplicator | None
) -> tuple[pa.Table, pa.Table]:
    """One batch: the clean rows (cluster sizes not yet known) and the audit rows.

    Statuses set by ingest (empty, unsupported, unreadable) stay. A document with more decode
    errors than ``max_decode_errors`` of its characters becomes ``decode_errors``. The others
    are cleaned and get empty, too_short, not_chinese, duplicate, near_duplicate or kept.
    """
    return finish_batch(docs, prepare_batch(docs, params, rules), dedup)


def prepare_batch(docs: pa.Table, params: CleanParams, rules: Rules) -> Prepared:
    """Everything about each document that does not depend on the others: the part of
    ``clean_batch`` that may run in any process."""
    require_columns(docs, ["text"], "clean")
    n = docs.num_rows
    texts = docs.column("text").to_pylist()
    status = _column(docs, "status", KEPT)
    reason = _column(docs, "reason", None)
    errors = _column(docs, "decode_errors", 0)
    rows = [i for i in range(n) if status[i] in (KEPT, DECODE_ERRORS)]
    cleaned = [""] * n
    audit: dict[str, list] = defaultdict(list)
    for i, (text, fired) in zip(
        rows, clean_texts((texts[i] for i in rows), rules, params.numbers), strict=True
    ):
        cleaned[i] = text
        for rule, matches, removed in fired:
            audit["row"].append(i)
            audit["rule"].append(rule)
            audit["n_matches"].append(matches)
            audit["chars_removed"].append(removed)
    counts = char_counts([cleaned[i] for i in rows])
    n_chars = np.zeros(n, dtype=np.int64)
    for i, (spaces, letters, ideographs) in zip(rows, counts.tolist(), strict=True):
        n_chars[i] = size = len(cleaned[i]) - spaces
        share = ideographs / letters if letters else 1.0
        status[i], reason[i] = _status(size, share, len(texts[i]), errors[i] or 0, params)
    digests = np.zeros(n, dtype="S16")
    first: dict[bytes, int] = {}
    if params.deduplicate:
        for i in rows:
            if status[i] == KEPT:
                digest = hashlib.blake2b(cleaned[i].encode("utf-8"), digest_size=16).digest()
                digests[i] = digest
                first.setdefault(digest, i)
    signature_rows = np.full(n, -1, dtype=np.int64)
    signature_rows[list(first.values())] = np.arange(len(first))
    table = pa.table(
        {
            "text": pa.array(cleaned, pa.string()),
            "n_chars": pa.array(n_chars, pa.int64()),
            "status": pa.array(status, pa.string()),
            "reason": pa.array(reason, pa.string()),
        }
    )
    return Prepared(
        table,
        pa.table(
            {
                "row": pa.array(audit["row"], pa.int64()),
                "rule": pa.array(audit["rule"], pa.string()),
                "n_matches": pa.array(audit["n_matches"], pa.int64()),
                "chars_removed": pa.array(audit["chars_removed"], pa.int64()),
            }
        ),
        digests,
        signature_rows,
        minhash_signatures([cleaned[i] for i in first.values()], params),
    )


def finish_batch(
    docs: pa.Table, prepared: Prepared, dedup: Deduplicator | None
) -> tuple[pa.Table, pa.Table]:
    """The clean and audit rows of a prepared batch, with the duplicates found in order."""
    require_columns(docs, ["doc_id"], "clean")
    ids = docs.column("doc_id")
    status = prepared.table.column("status").to_pylist()
    reason = prepared.table.column("reason").to_pylist()
    cluster: list[str | None] = [None] * docs.num_rows
    if dedup is not None:
        rows = [i for i, s in enumerate(status) if s == KEPT]
        decisions = dedup.assign(
            ids.take(rows).to_pylist(),
            prepared.digests[rows],
            prepared.signatures,
            prepared.signature_rows[rows],
        )
        for i, (duplicate, canonical) in zip(rows, decisions, strict=True):
            if duplicate is not None:
                status[i], cluster[i] = duplicate, canonical
                reason[i] = f"{duplicate.replace('_', '-')} of {canonical}"
    table = pa.table(
        {
            "doc_id": ids,
            "text": prepared.table.column("text"),
            "n_chars": prepared.table.column("n_chars"),
            "status": pa.array(status, pa.string()),
            "reason": pa.array(reason, pa.string()),
            "cluster_id": pa.array(cluster, pa.string()),
            "cluster_size": pa.nulls(docs.num_rows, pa.int64()),
        }
    )
    audit = prepared.audit
    audit = pa.table(
        {
            "doc_id": ids.take(audit.column("row")),
            **{name: audit.column(name) for name in ("rule", "n_matches", "chars_removed")},
        }
    )
    return table, CLEAN_AUDIT.conform(audit)


def _column(docs: pa.Table, name: str, default) -> list:
    if name in docs.column_names:
        return docs.column(name).to_pylist()
    return [default] * docs.num_rows


def _status(
    size: int, cjk: float, original_chars: int, decode_errors: int, params: CleanParams
) -> tuple[str, str | None]:
    share = decode_errors / max(1, original_chars)
    if decode_errors and share > params.max_decode_errors:
        return DECODE_ERRORS, (
            f"{decode_errors} invalid byte sequence(s), {share:.1%} of the characters, "
            f"above clean.max_decode_errors={params.max_decode_errors}"
        )
    if size == 0:
        return EMPTY, "no text left after cleaning"
    if size < params.min_chars:
        reason = f"{size} characters after cleaning, below clean.min_chars={params.min_chars}"
        return TOO_SHORT, reason
    if cjk < params.min_cjk_share:
        return NOT_CHINESE, (
            f"CJK characters are {cjk:.0%} of the letters, below "
            f"clean.min_cjk_share={params.min_cjk_share}"
        )
    if decode_errors:
        return KEPT, f"kept with {decode_errors} invalid byte sequence(s) replaced"
    return KEPT, None


def fill_cluster_sizes(table: pa.Table, sizes: Counter[str]) -> pa.Table:
    """Cluster id and size on every member of a cluster of two or more, canonical included."""
    ids = table.column("doc_id").to_pylist()
    clusters = table.column("cluster_id").to_pylist()
    cluster_ids, cluster_sizes = [], []
    for doc, cluster in zip(ids, clusters, strict=True):
        if cluster is None and sizes.get(doc, 0) > 1:
            cluster = doc
        cluster_ids.append(cluster)
        cluster_sizes.append(sizes[cluster] if cluster is not None else None)
    table = table.set_column(
        table.schema.get_field_index("cluster_id"), "cluster_id", pa.array(cluster_ids, pa.string())
    )
    return table.set_column(
        table.schema.get_field_index("cluster_size"),
        "cluster_size",
        pa.array(cluster_sizes, pa.int64()),
    )


# --- worker processes ---------------------------------------------------------------------------

# Characters of text per task sent to a worker, and cleaned in this process before a pool of
# workers would start (small inputs never start one).
TASK_CHARS = 1 << 20
INLINE_CHARS = 1 << 20

_WORKER: tuple[CleanParams, Rules] | None = None


def _init_worker(params: CleanParams) -> None:
    """Runs once in each worker process (also under spawn): its own rules and converter."""
    global _WORKER
    _WORKER = (params, load_rules(params))
    # Give freed arrow memory back at once: a worker's peak is one task, not the run's history.
    with contextlib.suppress(NotImplementedError, AttributeError):
        pa.jemalloc_set_decay_ms(0)


def _prepare_in_worker(docs: pa.Table) -> Prepared:
    assert _WORKER is not None, "worker not initialised"
    params, rules = _WORKER
    return prepare_batch(docs, params, rules)


class Cleaner:
    """Prepares streamed tables (``prepare_batch``), in a lazily started pool of worker
    processes once there is enough text. Results come back in input order and do not depend
    on the number of workers: every path runs ``prepare_batch`` on the same documents, a
    document's result depends on that document alone, and the pieces are put back in order."""

    def __init__(self, params: CleanParams, rules: Rules) -> None:
        self.params = params
        self.rules = rules
        self.workers = params.workers or usable_cores()
        self.context = multiprocessing.get_context(params.start_method)
        self.started = False  # a pool of workers was started
        self._pool: ProcessPoolExecutor | None = None
        self._inline_chars = 0

    def run(self, tables: Iterable[pa.Table]) -> Iterator[tuple[pa.Table, Prepared]]:
        """Yield each input table with what ``prepare_batch`` makes of it."""
        pending: deque[tuple[pa.Table, list[Future]]] = deque()
        for docs in tables:
            pending.append((docs, self._start(docs)))
            while len(pending) > 2:
                yield self._finish(*pending.popleft())
        while pending:
            yield self._finish(*pending.popleft())

    def _start(self, docs: pa.Table) -> list[Future]:
        columns = [
            c for c in ("text", "status", "reason", "decode_errors") if c in docs.column_names
        ]
        docs = docs.select(columns)
        total = text_chars(docs)
        if self._pool is None and (self.workers <= 1 or self._inline_chars + total <= INLINE_CHARS):
            self._inline_chars += total
            future: Future = Future()
            future.set_result(prepare_batch(docs, self.params, self.rules))
            return [future]
        pool = self._ensure_pool()
        # take() copies a slice, so that only its own rows are sent to the worker.
        return [
            pool.submit(_prepare_in_worker, docs.take(np.arange(lo, hi)))
            for lo, hi in row_ranges(docs, TASK_CHARS)
        ]

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, self.context, initializer=_init_worker, initargs=(self.params,)
            )
            self.started = True
        return self._pool

    def _finish(self, docs: pa.Table, futures: list[Future]) -> tuple[pa.Table, Prepared]:
        parts = [future.result() for future in futures]
        return docs, parts[0] if len(parts) == 1 else _concat_prepared(parts)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Cleaner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def text_chars(docs: pa.Table) -> int:
    """The characters of text in ``docs``."""
    return int(pc.sum(pc.utf8_length(docs.column("text"))).as_py() or 0)


def row_ranges(docs: pa.Table, chars: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of ``docs`` with at most ``chars`` characters of text each (a
    longer document alone)."""
    sizes = np.cumsum(pc.utf8_length(docs.column("text")).to_numpy(zero_copy_only=False))
    bounds = [0]
    while bounds[-1] < docs.num_rows:
        start = bounds[-1]
        limit = (sizes[start - 1] if start else 0) + chars
        bounds.append(max(start + 1, int(np.searchsorted(sizes, limit, "right"))))
    return list(zip(bounds, bounds[1:], strict=False))


def sized_batches(tables: Iterable[pa.Table], chars: int) -> Iterator[pa.Table]:
    """The tables cut where they hold more than ``chars`` characters of text."""
    for docs in tables:
        ranges = row_ranges(docs, chars)
        if len(ranges) <= 1:
            yield docs
        else:
            yield from (docs.slice(lo, hi - lo) for lo, hi in ranges)


def _concat_prepared(parts: list[Prepared]) -> Prepared:
    """The parts of one batch as one: row numbers shifted to the batch's."""
    audits, rows = [], []
    first_row = first_signature = 0
    for part in parts:
        audit = part.audit
        audits.append(
            audit.set_column(0, "row", pa.array(audit.column("row").to_numpy() + first_row))
        )
        rows.append(np.where(part.signature_rows >= 0, part.signature_rows + first_signature, -1))
        first_row += part.table.num_rows
        first_signature += len(part.signatures)
    # One chunk per column: the bytes written must not depend on how the batch was split.
    return Prepared(
        pa.concat_tables([part.table for part in parts]).combine_chunks(),
        pa.concat_tables(audits).combine_chunks(),
        np.concatenate([part.digests for part in parts]),
        np.concatenate(rows),
        np.concatenate([part.signatures for part in parts]),
    )


# --- the ingest report --------------------------------------------------------------------------

# Documents cleaned per batch, and at most this many characters of text: memory holds a few
# batches, their texts and their audit (and clean.parquet has a row group per batch).
BATCH_ROWS = 10_000
BATCH_CHARS = 1 << 22

REPORT_DIMENSIONS = ("status", "encoding", "format")


@dataclass
class IngestReport:
    """Counts of documents (and of the files they come from) by final status, encoding and
    format, accumulated batch by batch."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    files: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, docs: pa.Table, cleaned: pa.Table) -> None:
        sources = docs.column("source").to_pylist()
        values = {
            "status": cleaned.column("status").to_pylist(),
            "encoding": _column(docs, "encoding", None),
            "format": _column(docs, "format", None),
        }
        for dimension, column in values.items():
            for value, source in zip(column, sources, strict=True):
                key = (dimension, "(none)" if value is None else value)
                self.counts[key] += 1
                self.files[key].add(source)

    def table(self) -> pa.Table:
        keys = sorted(self.counts, key=lambda k: (REPORT_DIMENSIONS.index(k[0]), k[1]))
        return pa.table(
            {
                "dimension": [k[0] for k in keys],
                "value": [k[1] for k in keys],
                "count": pa.array([self.counts[k] for k in keys], pa.int64()),
                "files": pa.array([len(self.files[k]) for k in keys], pa.int64()),
            }
        )

    def metrics(self) -> dict:
        """For metrics/ingest.json: counts per dimension, the totals, the kept share."""
        data: dict = {d: {} for d in REPORT_DIMENSIONS}
        for (dimension, value), count in sorted(self.counts.items()):
            data[dimension][value] = count
        documents = sum(data["status"].values())
        data["documents"] = documents
        data["files"] = len(set().union(*self.files.values())) if self.files else 0
        data["kept_share"] = round(data["status"].get(KEPT, 0) / documents, 6) if documents else 0.0
        return data

    def lines(self) -> list[str]:
        """The report as text, one line per dimension."""
        metrics = self.metrics()
        out = [f"{metrics['files']} file(s), {metrics['documents']} document(s)"]
        for dimension in REPORT_DIMENSIONS:
            items = ", ".join(f"{k} {v}" for k, v in sorted(metrics[dimension].items()))
            out.append(f"  by {dimension}: {items}")
        return out


# --- main ---------------------------------------------------------------------------------------


def main(params: Params, paths: Paths) -> None:
    """Two passes: clean, audit and cluster the documents in batches to a spool (only a
    compact index of hashes stays in memory), then write clean.parquet with the cluster
    sizes."""
    rules = load_rules(params.clean)
    dedup = Deduplicator(params.clean) if params.clean.deduplicate else None
    report = IngestReport()
    documents = sized_batches(
        iter_tables(paths.table("documents"), DOCUMENTS, batch_rows=BATCH_ROWS), BATCH_CHARS
    )
    progress = tqdm(desc="clean", unit="doc", disable=None)
    # The spool holds the cleaned text until the cluster sizes are known: plain, it is written
    # and read back in a fraction of the time.
    spool = Spool(paths.table("clean"), compression="none", use_dictionary=False)
    with spool, progress, dedup or contextlib.nullcontext():
        audit_writer = TableWriter(paths.table("clean_audit"), CLEAN_AUDIT)
        with Cleaner(params.clean, rules) as cleaner, audit_writer:
            for docs, prepared in cleaner.run(documents):
                table, audit = finish_batch(docs, prepared, dedup)
                spool.write(table)
                audit_writer.write(audit)
                report.add(docs, table)
                progress.update(docs.num_rows)
        sizes = dedup.sizes if dedup is not None else Counter()
        with TableWriter(paths.table("clean"), CLEAN) as writer:
            for table in spool.read():
                writer.write(fill_cluster_sizes(table, sizes))
    write_table(report.table(), paths.table("ingest_report"), INGEST_REPORT)
    write_json(report.metrics(), paths.metrics / "ingest.json")
    for line in report.lines():
        log.info("ingest report: %s", line)
    log.info(
        "clean: %d documents -> %s (%d rule match row(s) in %s; %d worker process(es))",
        writer.num_rows,
        paths.table("clean"),
        audit_writer.num_rows,
        paths.table("clean_audit"),
        cleaner.workers if cleaner.started else 0,
    )
