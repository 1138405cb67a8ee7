"""Metadata from where a file lies: the named groups of ``ingest.path_pattern`` matched against
its path below the raw folder, and the first folder below the raw folder (``folder``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.text.dates import FoundDate, make_date, parse_date_value

# Group names of ingest.path_pattern that fill the document's date instead of (date) or as
# well as (year) becoming a metadata column.
DATE_GROUPS = ("date", "year")


@dataclass(frozen=True)
class PathInfo:
    """What a path says: metadata columns and, from a ``date`` or ``year`` group, a date."""

    fields: dict[str, str | None]
    date: FoundDate | None = None
    matched: bool = False


@dataclass
class PathFields:
    """Matches every file's path (POSIX, relative to the raw folder) and counts the matches,
    so that a pattern that matches nothing can stop the run and a partial match be reported."""

    pattern: str | None = None
    folder_column: str | None = "folder"
    files: int = 0
    matched: int = 0
    unmatched_examples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._regex = re.compile(self.pattern) if self.pattern else None

    def read(self, source: str) -> PathInfo:
        """The fields of one file's path (and count it)."""
        self.files += 1
        fields: dict[str, str | None] = {}
        if self.folder_column and "/" in source:
            fields[self.folder_column] = source.split("/", 1)[0]
        if self._regex is None:
            return PathInfo(fields)
        match = self._regex.search(source)
        if match is None:
            if len(self.unmatched_examples) < 3:
                self.unmatched_examples.append(source)
            return PathInfo(fields)
        self.matched += 1
        groups = match.groupdict()
        fields.update({k: v for k, v in groups.items() if k != "date"})
        return PathInfo(fields, _group_date(groups), matched=True)

    def summary(self) -> str:
        """How many files the pattern matched, with examples of those it did not."""
        text = f"ingest.path_pattern {self.pattern!r} matched {self.matched} of {self.files}"
        text += " file(s)"
        if self.unmatched_examples:
            text += f"; not matched e.g. {self.unmatched_examples}"
        return text


def _group_date(groups: dict[str, str | None]) -> FoundDate | None:
    if groups.get("date"):
        date = parse_date_value(groups["date"])
        if date is not None:
            return date
    year = groups.get("year")
    if year and year.strip().isdigit():
        return make_date(int(year))
    return parse_date_value(year) if year else None
