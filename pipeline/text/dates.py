"""Dates where people write them: a date value of a column, a date phrase in the first lines
of a text or in a title, a year in a file or folder name.

Pure functions, no I/O. Every date comes with its precision (day, month or year), so that a
year-only date is never shown as 1 January. Numbers that only look like dates are refused:
``第3期``, ``19卷``, ``1999个``, ``2000多年来``, ``20世纪90年代``, phone numbers, version numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

Precision = Literal["day", "month", "year"]
PRECISIONS: tuple[Precision, ...] = ("day", "month", "year")
# Where a document's date came from, in the default order of preference.
DATE_SOURCES = ("column", "text", "title", "path")

# Years accepted in running text and names: Arabic years outside this range are rarely
# dates (populations, amounts, codes). Republic-of-China years are converted first.
MIN_YEAR, MAX_YEAR = 1800, 2100
ROC_OFFSET = 1911  # 民国元年 = 1912

_CN_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}
_CN_DIGITS.update({"零": 0, "○": 0, "Ｏ": 0, "O": 0, "o": 0, "两": 2})
_CN_DIGIT = "〇零○Ｏ一二三四五六七八九"
_CN_SMALL = "一二三四五六七八九十两"

# The numbers a date may be written with: Arabic, or Chinese digits / small numbers.
_ARABIC_YEAR = r"(?<![\d./\-])(?P<y>\d{4})"
_CN_YEAR = rf"(?P<cy>[{_CN_DIGIT}]{{4}})"
_ROC_YEAR = rf"民[国國]\s*(?P<ry>\d{{1,3}}|[{_CN_SMALL}百零〇]{{1,5}}|元)"
_MONTH = rf"\s*(?:(?P<m>\d{{1,2}})|(?P<cm>[{_CN_SMALL}]{{1,3}}))\s*月"
_DAY = rf"\s*(?:(?P<d>\d{{1,2}})|(?P<cd>[{_CN_SMALL}]{{1,3}}))\s*[日号號]"
# 年 followed by these is a span of years or a decade, not a date: 2000多年, 2000年来,
# 1990年代, 2000余年, 2000年之久, 2000年历史, 2000年前.
_NOT_AFTER_YEAR = r"(?![代来來前间間之历歷])"
# Before a year: 近2000年 (nearly 2000 years), 约, 逾, 第, 数, 上 ...
_NOT_BEFORE_YEAR = r"(?<![近约約逾余餘第数數上满滿达達过過])"
_YEAR_PHRASE = re.compile(
    rf"{_NOT_BEFORE_YEAR}(?:{_ARABIC_YEAR}|{_CN_YEAR}|{_ROC_YEAR})\s*年{_NOT_AFTER_YEAR}"
    rf"(?:{_MONTH}(?:{_DAY})?)?"
)
# 2022-09-16, 2022/9/16, 2022.9.16: the same separator twice, no digit or separator around
# (so neither a phone number 010-6512-3456 nor a version 1.2.3.4 is read as a date).
_NUMERIC = re.compile(
    r"(?<![\d./\-])(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?![\d.:/\-]|\d)"
)
_NUMERIC_HINT = re.compile(r"\d{4}[-/.]\d")
# A value of a date column: 2022-09-16 (a time may follow), 2022年9月16日, 20220916, 2022-09,
# 2022年9月, 2022.
_VALUE_DAY = re.compile(
    r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*(?:[ T].*)?$"
)
_VALUE_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_VALUE_MONTH = re.compile(r"^\s*(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*月?\s*$")
_VALUE_YEAR = re.compile(r"^\s*(\d{4})\s*年?\s*$")
# A line that is a date and nothing else (a weekday or a time may follow): removed from the text.
_DATE_ONLY_LINE = re.compile(
    r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*"
    r"(?:(?:星期|周)[一二三四五六日天]|\d{1,2}:\d{2}(?::\d{2})?)?\s*$"
)
# A year in a file or folder name: four digits not touching a letter or digit, and not a count
# (1999个问题, 2000元) or a part number (2019期).
_NAME_YEAR = re.compile(
    r"(?<![0-9A-Za-z])(?P<y>1[89]\d\d|20\d\d)"
    r"(?![0-9A-Za-z]|\s*[个個卷期号號页頁条條人元万萬亿億次名篇字项項件份届屆回章节節册冊])"
)
_NAME_COMPACT = re.compile(r"(?<![0-9A-Za-z])(\d{4})(\d{2})(\d{2})(?![0-9A-Za-z])")
_NAME_NUMERIC = re.compile(r"(?<![0-9A-Za-z])(\d{4})([-_.])(\d{1,2})\2(\d{1,2})(?![0-9A-Za-z])")


# Full-width digits, and the separators of a date around them, as ASCII (what NFKC does to them,
# at a fraction of its cost on long lines); text without full-width digits stays as it is.
_HALF_WIDTH = str.maketrans(
    {chr(0xFF10 + i): str(i) for i in range(10)} | {"／": "/", "．": ".", "－": "-"}
)


_FULL_WIDTH = re.compile("[０-９]")


def _ascii_digits(text: str) -> str:
    return text.translate(_HALF_WIDTH) if _FULL_WIDTH.search(text) else text


@dataclass(frozen=True)
class FoundDate:
    """A date and how much of it is known; a year-only date is stored as its 1 January."""

    date: dt.date
    precision: Precision

    @property
    def label(self) -> str:
        """``2022-09-16``, ``2022-09`` or ``2022``: as precise as known, never more."""
        if self.precision == "day":
            return self.date.isoformat()
        if self.precision == "month":
            return f"{self.date.year:04d}-{self.date.month:02d}"
        return f"{self.date.year:04d}"


def make_date(year: int, month: int | None = None, day: int | None = None) -> FoundDate | None:
    """The date of these numbers at the precision given, or None if it does not exist."""
    try:
        if month is None:
            return FoundDate(dt.date(year, 1, 1), "year")
        if day is None:
            return FoundDate(dt.date(year, month, 1), "month")
        return FoundDate(dt.date(year, month, day), "day")
    except ValueError:
        return None


def chinese_number(text: str) -> int | None:
    """The value of a small Chinese number (一 .. 九十九, 一百 ..) or of Chinese digits
    written one by one (一九五八, 二〇一七); None for anything else."""
    if not text:
        return None
    if all(c in _CN_DIGITS for c in text):  # digit by digit: 一九五八
        return int("".join(str(_CN_DIGITS[c]) for c in text))
    total, current = 0, 0
    for char in text:
        if char in _CN_DIGITS:
            current = _CN_DIGITS[char]
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        elif char == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current


def parse_date_value(value: str | None) -> FoundDate | None:
    """A date column's value: ``2022-09-16`` (a time after it is ignored), ``2022/9/16``,
    ``2022年9月16日``, ``20220916``, ``2022-09``, ``2022年9月``, ``2022``; else None."""
    if not value:
        return None
    value = _ascii_digits(value)
    match = _VALUE_DAY.match(value) or _VALUE_COMPACT.match(value)
    if match:
        return make_date(*(int(g) for g in match.groups()))
    match = _VALUE_MONTH.match(value)
    if match:
        return make_date(int(match.group(1)), int(match.group(2)))
    match = _VALUE_YEAR.match(value)
    if match:
        return make_date(int(match.group(1)))
    return find_date_phrase(value)  # 二〇一七年三月五日, 民国一百年


def is_date_only_line(line: str) -> bool:
    """True for a line holding a full date and nothing else (a weekday or time may follow)."""
    return bool(_DATE_ONLY_LINE.match(_ascii_digits(line)))


def find_date_phrase(text: str) -> FoundDate | None:
    """The first date phrase in ``text``: ``1954年5月23日在…会议上``, ``二〇一七年三月五日``,
    ``一九五八年``, ``民国一百年``, ``2022-09-16``, ``2022.9.16``, ``2022/9/16``; else None."""
    text = _ascii_digits(text)
    found: list[tuple[int, FoundDate]] = []
    # Cheap checks first: most lines of most texts hold neither 年 nor 2022-9 / 2022.9 / 2022/9.
    phrases = _YEAR_PHRASE.finditer(text) if "年" in text else ()
    numeric = _NUMERIC.finditer(text) if _NUMERIC_HINT.search(text) else ()
    for match in phrases:
        date = _phrase_date(match)
        if date is not None:
            found.append((match.start(), date))
            break
    for match in numeric:
        year = int(match.group("y"))
        if MIN_YEAR <= year <= MAX_YEAR:
            date = make_date(year, int(match.group("m")), int(match.group("d")))
            if date is not None:
                found.append((match.start(), date))
                break
    return min(found, key=lambda item: item[0])[1] if found else None


def _phrase_date(match: re.Match[str]) -> FoundDate | None:
    if match.group("y"):
        year = int(match.group("y"))
    elif match.group("cy"):
        year = chinese_number(match.group("cy"))
    else:
        roc = match.group("ry")
        number = 1 if roc == "元" else int(roc) if roc.isdigit() else chinese_number(roc)
        year = None if not number else ROC_OFFSET + number
    if year is None or not MIN_YEAR <= year <= MAX_YEAR:
        return None
    month = _number(match.group("m"), match.group("cm"))
    day = _number(match.group("d"), match.group("cd"))
    if month is not None and not 1 <= month <= 12:
        return make_date(year)
    date = make_date(year, month, day)
    if date is None and day is not None:  # 2月30日: keep what is certain
        return make_date(year, month)
    return date


def _number(arabic: str | None, chinese: str | None) -> int | None:
    if arabic:
        return int(arabic)
    if chinese:
        return chinese_number(chinese)
    return None


def find_text_date(text: str, lines: int = 5) -> FoundDate | None:
    """The date of a text from its first ``lines`` non-empty lines: the first date phrase,
    made more precise by a later one of the same year (a title ``1954年政府工作报告`` and a
    line ``——1954年5月23日在…会议上`` give 23 May 1954)."""
    best: FoundDate | None = None
    seen = 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        date = find_date_phrase(line)
        if date is not None:
            if best is None or (date.date.year == best.date.year and _finer(date, best)):
                best = date
            if best.precision == "day":
                return best
        seen += 1
        if seen >= lines:
            break
    return best


def _finer(a: FoundDate, b: FoundDate) -> bool:
    return PRECISIONS.index(a.precision) < PRECISIONS.index(b.precision)


def find_path_date(path: str) -> FoundDate | None:
    """A date in a file's path below the raw folder: the file name first, then its folders
    from the nearest up (``2019/03/报告.txt`` is not read as a date, ``2019/报告.txt`` is 2019)."""
    parts = path.split("/")
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else parts[-1]
    for part in (stem, *reversed(parts[:-1])):
        date = find_name_date(part)
        if date is not None:
            return date
    return None


def find_name_date(name: str) -> FoundDate | None:
    """A date in one file or folder name: a date phrase, ``2022-09-16``, ``2022_09_16``,
    ``20220916`` or a bare year (``1954政府工作报告``); counts and part numbers are refused."""
    name = _ascii_digits(name)
    for pattern in (_NAME_NUMERIC, _NAME_COMPACT):
        match = pattern.search(name)
        if match:
            groups = [g for g in match.groups() if g and g.isdigit()]
            year = int(groups[0])
            if MIN_YEAR <= year <= MAX_YEAR:
                date = make_date(year, int(groups[1]), int(groups[2]))
                if date is not None:
                    return date
    date = find_date_phrase(name)
    if date is not None:
        return date
    match = _NAME_YEAR.search(name)
    return make_date(int(match.group("y"))) if match else None


# Periods a date can be grouped by, coarsest first.
BUCKETS = ("decade", "year", "quarter", "month")
# The period of a date known less precisely than the bucket (a year-only date by month).
COARSER = {"quarter": "(year only)", "month": "(year only)"}


def bucket_label(date: dt.date | None, precision: str | None, bucket: str) -> str | None:
    """The period of a date: ``1950s``, ``1954``, ``1954-Q2``, ``1954-05``. A date known only to
    the year is ``(year only)`` by quarter or month, never January; None stays None."""
    if date is None:
        return None
    if bucket == "decade":
        return f"{date.year // 10 * 10}s"
    if bucket == "year":
        return f"{date.year:04d}"
    if precision == "year":
        return COARSER[bucket]
    if bucket == "quarter":
        return f"{date.year:04d}-Q{(date.month - 1) // 3 + 1}"
    if bucket == "month":
        return f"{date.year:04d}-{date.month:02d}"
    raise ValueError(f"bucket_label: bucket must be one of {list(BUCKETS)}, got {bucket!r}")


def bucket_position(label: str) -> float | None:
    """Where a period lies on a time axis, in years (``1954-Q2`` is 1954.375); None for a group
    that is not a period (``(year only)``)."""
    match = re.fullmatch(r"(\d{4})(?:s|-Q([1-4])|-(\d{2}))?", label)
    if not match:
        return None
    year = float(match.group(1))
    if label.endswith("s"):
        return year + 5.0
    if match.group(2):
        return year + (int(match.group(2)) - 0.5) / 4
    if match.group(3):
        return year + (int(match.group(3)) - 0.5) / 12
    return year + 0.5
