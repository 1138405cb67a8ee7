"""The clean stage's rules: literal replacements and named boilerplate patterns (read from the
data/dict files), and what every match of a pattern must contain (``required_clauses``, read
from the regex parse tree) so that a rule is tried only on texts that hold those strings."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import CleanParams

try:  # the parser of the re module, read by required_text
    from re import _parser as _sre
except ImportError:  # Python 3.10
    import sre_parse as _sre


# Audit names of the steps that are not rules of the boilerplate file.
REPLACEMENTS_RULE, NUMBERS_RULE = "replacements", "numbers"


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
