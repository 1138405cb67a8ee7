"""Dates from text, titles, names and column values (pipeline/text/dates.py): the positives and,
as carefully, the numbers that must not become dates (tests/fixtures/dates.tsv)."""

import datetime as dt

import pytest

from pipeline.text import dates
from tests.conftest import FIXTURES

FUNCTIONS = {
    "phrase": dates.find_date_phrase,
    "text": dates.find_text_date,
    "value": dates.parse_date_value,
    "path": dates.find_path_date,
}


def _cases() -> list[tuple[str, str, str]]:
    rows = []
    for line in (FIXTURES / "dates.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            kind, text, expected = line.split("\t")
            rows.append((kind, text.replace("\\n", "\n"), expected))
    return rows


CASES = _cases()


def test_the_cases_cover_negatives_of_every_kind():
    negatives = {kind for kind, _, expected in CASES if expected == "-"}
    assert negatives == set(FUNCTIONS)
    assert sum(expected == "-" for _, _, expected in CASES) >= 25


@pytest.mark.parametrize(("kind", "text", "expected"), CASES, ids=lambda v: str(v)[:24])
def test_date_cases(kind: str, text: str, expected: str):
    found = FUNCTIONS[kind](text)
    got = "-" if found is None else f"{found.label}/{found.precision}"
    assert got == expected


def test_a_year_only_date_is_stored_as_its_first_day_with_year_precision():
    found = dates.parse_date_value("1958")
    assert found == dates.FoundDate(dt.date(1958, 1, 1), "year")
    assert found.label == "1958"


def test_chinese_numbers():
    assert dates.chinese_number("一九五八") == 1958
    assert dates.chinese_number("二〇一七") == 2017
    assert dates.chinese_number("十") == 10
    assert dates.chinese_number("二十一") == 21
    assert dates.chinese_number("一百零五") == 105
    assert dates.chinese_number("三十八") == 38
    assert dates.chinese_number("abc") is None


def test_text_date_looks_only_at_the_first_lines():
    text = "甲\n乙\n丙\n2019年5月1日"
    assert dates.find_text_date(text, lines=3) is None
    assert dates.find_text_date(text, lines=4).label == "2019-05-01"


def test_date_only_line():
    assert dates.is_date_only_line("2022-09-16 星期五")
    assert dates.is_date_only_line("2022年9月16日 10:30")
    assert not dates.is_date_only_line("2022年9月16日在会议上")


@pytest.mark.parametrize(
    ("precision", "bucket", "expected"),
    [
        ("day", "decade", "1950s"),
        ("day", "year", "1954"),
        ("day", "quarter", "1954-Q2"),
        ("day", "month", "1954-05"),
        ("month", "month", "1954-05"),
        ("year", "year", "1954"),
        ("year", "quarter", "(year only)"),
        ("year", "month", "(year only)"),
        (None, "month", "1954-05"),
    ],
)
def test_bucket_label_never_shows_a_year_only_date_as_january(precision, bucket, expected):
    assert dates.bucket_label(dt.date(1954, 5, 23), precision, bucket) == expected


def test_bucket_positions_order_periods_in_time():
    labels = ["1950s", "1954", "1954-Q2", "1954-05", "(year only)"]
    assert [dates.bucket_position(x) for x in labels] == [
        1955.0,
        1954.5,
        1954.375,
        1954 + 4.5 / 12,
        None,
    ]
    assert dates.bucket_label(None, None, "year") is None
