import datetime as dt
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import IngestParams
from pipeline.ingest import (
    IngestError,
    RawFile,
    doc_id,
    ingest,
    list_raw_files,
    parse_date,
    split_paragraphs,
)
from pipeline.schemas import DOCUMENTS
from tests.conftest import SAMPLE_FILE

DOCUMENT = IngestParams(unit="document")
PARAGRAPH = IngestParams(unit="paragraph", paragraph_min_chars=5)


def _sample() -> RawFile:
    return RawFile("speeches.txt", SAMPLE_FILE.read_bytes())


def test_sample_splits_into_five_speeches_with_title_part_and_date():
    docs = ingest([_sample()], DOCUMENT)
    DOCUMENTS.conform(docs)
    assert docs.num_rows == 5
    assert docs.column("part").to_pylist() == ["1", "2", "3", "4", "5"]
    assert docs.column("record").to_pylist() == [1, 2, 3, 4, 5]
    assert set(docs.column("title").to_pylist()) == {"妇联领导工作会议讲话"}
    assert set(docs.column("date").to_pylist()) == {dt.date(2022, 9, 16)}
    texts = docs.column("text").to_pylist()
    assert all("篇" not in t.splitlines()[0] for t in texts if t.strip())
    assert not any("2022-09-16" in t for t in texts)


def test_sample_text_is_kept_whole():
    """Every character of the speeches ends up in exactly one document."""
    original = SAMPLE_FILE.read_text(encoding="utf-8")
    docs = ingest([_sample()], DOCUMENT)
    body = "".join(docs.column("text").to_pylist())
    strip = lambda s: "".join(s.split())  # noqa: E731
    removed = strip("妇联领导工作会议讲话") * 1 + "2022-09-16"
    headings = "".join(f"妇联领导工作会议讲话篇{n}" for n in range(1, 6))
    assert len(strip(body)) == len(strip(original)) - len(removed) - len(headings)


def test_paragraph_unit_keeps_parent_metadata():
    docs = ingest([_sample()], IngestParams(unit="paragraph", paragraph_min_chars=40))
    rows = docs.to_pylist()
    assert len(rows) > 50
    parents = {r["parent_id"] for r in rows}
    assert len(parents) == 5
    assert all(
        r["title"] == "妇联领导工作会议讲话" and r["date"] == dt.date(2022, 9, 16) for r in rows
    )
    first = [r for r in rows if r["part"] == "2"]
    assert [r["paragraph"] for r in first] == list(range(len(first)))
    assert len({r["doc_id"] for r in rows}) == len(rows)


def test_doc_ids_are_stable():
    # Pinned: ids must not change between versions, or DVC and users lose their joins.
    assert doc_id("a.txt", 0) == "9c23a59106dadc4d"
    assert doc_id("a.txt", 0, 0) != doc_id("a.txt", 0)
    docs = ingest([_sample()], DOCUMENT)
    assert docs.column("doc_id").to_pylist() == [doc_id("speeches.txt", n) for n in range(1, 6)]


def test_split_paragraphs_joins_short_pieces_forward():
    text = "head\n\nthis is a long enough paragraph\n\nshort\n\nanother long paragraph here\n\nend"
    assert split_paragraphs(text, 10) == [
        "head\nthis is a long enough paragraph",
        "short\nanother long paragraph here\nend",
    ]
    assert split_paragraphs("one line\nsecond line", 0) == ["one line", "second line"]


def test_single_text_file_is_one_document_with_title_from_first_line():
    raw = RawFile("news/a.txt", "标题在这里\n2021年3月5日\n正文第一段。\n".encode())
    docs = ingest([raw], DOCUMENT).to_pylist()
    assert len(docs) == 1
    assert docs[0]["title"] == "标题在这里"
    assert docs[0]["date"] == dt.date(2021, 3, 5)
    assert docs[0]["record"] == 0 and docs[0]["part"] is None
    assert "2021" not in docs[0]["text"]


def test_only_a_date_only_line_is_taken_as_the_date():
    raw = RawFile("a.txt", "标题\n2021年3月5日上午召开会议。\n正文。\n".encode())
    doc = ingest([raw], DOCUMENT).to_pylist()[0]
    assert doc["date"] is None and "2021年3月5日上午召开会议" in doc["text"]
    raw = RawFile("b.txt", "标题\n2021-03-05 星期五\n正文。\n".encode())
    doc = ingest([raw], DOCUMENT).to_pylist()[0]
    assert doc["date"] == dt.date(2021, 3, 5) and "星期五" not in doc["text"]


def test_gb18030_text_is_decoded():
    raw = RawFile("gbk.txt", "妇女权益保障".encode("gb18030"))
    assert ingest([raw], DOCUMENT).column("text").to_pylist() == ["妇女权益保障"]


def test_csv_rows_become_documents_with_metadata_columns():
    data = "id,text,title,date,label\n1,第一篇,甲,2020-01-02,体育\n2,第二篇,,bad,财经\n"
    docs = ingest([RawFile("t.csv", data.encode())], DOCUMENT)
    DOCUMENTS.conform(docs)
    rows = docs.to_pylist()
    assert [r["text"] for r in rows] == ["第一篇", "第二篇"]
    assert [r["record"] for r in rows] == [0, 1]
    assert [r["label"] for r in rows] == ["体育", "财经"]
    assert [r["id"] for r in rows] == ["1", "2"]
    assert rows[0]["title"] == "甲" and rows[1]["title"] is None
    assert rows[0]["date"] == dt.date(2020, 1, 2) and rows[1]["date"] is None
    # Columns named like the table's own keep their raw values under meta_.
    assert [r["meta_date"] for r in rows] == ["2020-01-02", "bad"]
    assert [r["meta_title"] for r in rows] == ["甲", ""]


def test_tsv_jsonl_and_parquet():
    tsv = RawFile("a.tsv", "label\ttext\nx\t一\n".encode())
    jsonl = RawFile("b.jsonl", '{"text": "二", "n": 3, "tags": ["a"]}\n\n'.encode())
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["三"], "year": [2020]}), buffer)
    parquet = RawFile("c.parquet", buffer.getvalue())
    rows = ingest([tsv, jsonl, parquet], DOCUMENT).to_pylist()
    assert [r["text"] for r in rows] == ["一", "二", "三"]
    assert rows[0]["label"] == "x"
    assert rows[1]["n"] == "3" and json.loads(rows[1]["tags"]) == ["a"]
    assert rows[2]["year"] == "2020"
    assert rows[0]["year"] is None


def test_csv_without_text_column_names_file_and_columns():
    raw = RawFile("data/news.csv", b"id,body\n1,x\n")
    with pytest.raises(IngestError, match=r"data/news\.csv.*'text'.*\['id', 'body'\]"):
        ingest([raw], DOCUMENT)


def test_custom_text_column():
    raw = RawFile("n.csv", "id,body\n1,内容\n".encode())
    assert ingest([raw], IngestParams(unit="document", text_column="body")).num_rows == 1


def test_malformed_jsonl_names_the_line():
    raw = RawFile("b.jsonl", b'{"text": "ok"}\n{broken\n')
    with pytest.raises(IngestError, match=r"b\.jsonl: line 2"):
        ingest([raw], DOCUMENT)


def test_csv_row_with_wrong_field_count_names_the_line():
    raw = RawFile("c.csv", b"a,text\n1,x\n2,y,z\n")
    with pytest.raises(IngestError, match=r"c\.csv: line 3"):
        ingest([raw], DOCUMENT)


def test_unsupported_file_type_is_named():
    with pytest.raises(IngestError, match=r"x\.docx.*unsupported"):
        ingest([RawFile("x.docx", b"PK")], DOCUMENT)


def test_paragraph_unit_on_tabular_rows():
    raw = RawFile("t.csv", 'text,label\n"第一段很长很长\n\n第二段也很长很长",a\n'.encode())
    rows = ingest([raw], PARAGRAPH).to_pylist()
    assert [r["paragraph"] for r in rows] == [0, 1]
    assert {r["label"] for r in rows} == {"a"}
    assert len({r["parent_id"] for r in rows}) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-09-16", dt.date(2022, 9, 16)),
        ("2022/9/6", dt.date(2022, 9, 6)),
        ("2022年9月16日", dt.date(2022, 9, 16)),
        ("20220916", dt.date(2022, 9, 16)),
        ("2022-09-16 08:30:00", dt.date(2022, 9, 16)),
        ("2022-13-01", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_date(value, expected):
    assert parse_date(value) == expected


def test_raw_folder_missing_or_empty(tmp_path):
    with pytest.raises(IngestError, match="does not exist"):
        list_raw_files(tmp_path / "nope")
    (tmp_path / ".gitkeep").write_text("")
    with pytest.raises(IngestError, match="holds no files"):
        list_raw_files(tmp_path)


def test_raw_files_are_found_recursively_in_sorted_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("x")
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / ".hidden.txt").write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_raw_files(tmp_path)]
    assert found == ["a.txt", "b/2.txt"]
