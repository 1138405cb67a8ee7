import datetime as dt
import io
import json
import os
import shutil
import time
from pathlib import Path

import opencc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import ingest as ingest_module
from pipeline.clean import clean
from pipeline.config import IngestParams, Params, load_params
from pipeline.ingest import (
    IngestError,
    doc_id,
    ingest,
    list_raw_files,
    main,
    read_raw_files,
    split_paragraphs,
)
from pipeline.io import Paths, read_table
from pipeline.schemas import DOCUMENTS
from pipeline.text import decode as decode_module
from pipeline.text.decode import decode, plausibility
from pipeline.text.formats import RawFile, html_main_text, parse_date
from pipeline.text.rules import load_rules
from tests.conftest import FIXTURES, ROOT, SAMPLE_FILE

DOCUMENT = IngestParams(unit="document")
PARAGRAPH = IngestParams(unit="paragraph", paragraph_min_chars=5)


def _sample() -> RawFile:
    return RawFile("speeches.txt", SAMPLE_FILE.read_bytes())


def _paragraphs(n: int = 3) -> str:
    """Some real Simplified text: the first long paragraphs of the sample."""
    lines = SAMPLE_FILE.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line.strip() for line in lines if len(line) > 80)[: 400 * n]
    return text.replace("—", "-")  # not in GB2312


def _traditional(n: int = 3) -> str:
    """The same text in Taiwan's Traditional characters (all encodable in Big5)."""
    return opencc.OpenCC("s2tw.json").convert(_paragraphs(n))


def _one(raw: RawFile, params: IngestParams = DOCUMENT) -> dict:
    rows = ingest([raw], params).to_pylist()
    assert len(rows) == 1, rows
    return rows[0]


# --- the sample and the document model --------------------------------------------------------


def test_sample_splits_into_five_speeches_with_title_part_and_date():
    docs = ingest([_sample()], DOCUMENT)
    DOCUMENTS.conform(docs)
    assert docs.num_rows == 5
    assert docs.column("part").to_pylist() == ["1", "2", "3", "4", "5"]
    assert docs.column("record").to_pylist() == [1, 2, 3, 4, 5]
    assert set(docs.column("title").to_pylist()) == {"妇联领导工作会议讲话"}
    assert set(docs.column("date").to_pylist()) == {dt.date(2022, 9, 16)}
    assert set(docs.column("status").to_pylist()) == {"kept"}
    assert set(docs.column("encoding").to_pylist()) == {"utf-8"}
    assert set(docs.column("format").to_pylist()) == {"txt"}
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
    doc = _one(RawFile("news/a.txt", "标题在这里\n2021年3月5日\n正文第一段。\n".encode()))
    assert doc["title"] == "标题在这里"
    assert doc["date"] == dt.date(2021, 3, 5)
    assert doc["record"] == 0 and doc["part"] is None
    assert "2021" not in doc["text"]


def test_a_date_only_line_is_removed_a_date_phrase_stays_in_the_text():
    doc = _one(RawFile("a.txt", "标题\n2021年3月5日上午召开会议。\n正文。\n".encode()))
    assert doc["date"] == dt.date(2021, 3, 5) and "2021年3月5日上午召开会议" in doc["text"]
    assert (doc["date_source"], doc["date_precision"]) == ("text", "day")
    doc = _one(RawFile("b.txt", "标题\n2021-03-05 星期五\n正文。\n".encode()))
    assert doc["date"] == dt.date(2021, 3, 5) and "星期五" not in doc["text"]
    assert doc["date_source"] == "text"


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


# --- encodings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "script", "expected"),
    [
        ("utf-8", "simplified", "utf-8"),
        ("utf-8-sig", "simplified", "utf-8-sig"),
        ("utf-16", "simplified", None),  # Python writes the platform's BOM
        ("utf-16-le", "simplified", "utf-16-le"),
        ("utf-16-be", "traditional", "utf-16-be"),
        ("gb2312", "simplified", "gb18030"),
        ("gbk", "simplified", "gb18030"),
        ("gb18030", "simplified", "gb18030"),
        ("big5", "traditional", "big5"),
        ("cp950", "traditional", "big5"),
        ("big5hkscs", "traditional", "big5"),
    ],
)
def test_every_encoding_round_trips(codec, script, expected):
    text = _paragraphs() if script == "simplified" else _traditional()
    data = text.encode(codec)
    if codec in ("utf-16-le", "utf-16-be"):
        data = ("\ufeff" + text).encode(codec)  # with its BOM, as Windows writes it
    decoded = decode(data)
    assert decoded.text == text
    assert decoded.errors == 0
    assert decoded.encoding == (expected or decoded.encoding)
    doc = _one(RawFile(f"{codec}.txt", data))
    assert doc["text"] == text
    assert doc["encoding"] == decoded.encoding and doc["status"] == "kept"


def test_big5_bytes_that_also_decode_as_gb18030_are_read_as_big5():
    """The trap: Big5 bytes decode without error as GB18030, into nonsense."""
    text = _traditional()
    data = text.encode("big5")
    nonsense = data.decode("gb18030")  # no error ...
    assert nonsense != text
    assert plausibility(nonsense) < 0.5 < plausibility(text)  # ... but implausible
    assert decode(data).encoding == "big5"
    # And the other way round: GBK bytes that Big5 would also accept.
    simplified = _paragraphs()
    assert decode(simplified.encode("gbk")).encoding == "gb18030"


def test_short_texts_pick_the_right_legacy_encoding():
    assert decode("妇女权益".encode("gbk")).text == "妇女权益"
    assert decode("婦女權益".encode("big5")).text == "婦女權益"


def test_an_ascii_header_of_64_kb_does_not_hide_the_codec():
    """The window starts at the first non-ASCII byte: 64 KB of ASCII (all codecs agree on it)
    and then GB18030 text whose bytes Big5 would also accept."""
    header = "".join(
        f"# line {n:05d} of an ASCII header, same in every codec\n" for n in range(1300)
    )
    assert len(header) >= 64 * 1024
    text = header + _paragraphs()
    decoded = decode(text.encode("gb18030"))
    assert (decoded.encoding, decoded.errors, decoded.text) == ("gb18030", 0, text)
    traditional = header + _traditional()
    assert decode(traditional.encode("big5")).text == traditional


def test_an_ambiguous_window_is_settled_by_the_whole_file():
    """A stray Latin-1 byte early in an ASCII header: the window from it holds too few
    non-ASCII bytes to tell the codecs apart, so the whole file is compared."""
    header = "(c)\xa9 ACME " + "ascii only. " * 600
    data = header.encode("latin-1") + _paragraphs().encode("gb18030")
    assert len(header) > decode_module._SNIFF_BYTES
    decoded = decode(data)
    assert decoded.encoding == "gb18030" and decoded.text.endswith(_paragraphs())


def test_a_clear_window_decides_and_the_file_is_decoded_once(monkeypatch):
    """Only the window is decoded with every candidate codec; the file once, with the winner."""
    scored = []
    real = decode_module._decodings
    monkeypatch.setattr(
        decode_module, "_decodings", lambda data, **kw: scored.append(len(data)) or real(data, **kw)
    )
    text = _paragraphs() * 200
    data = text.encode("gb18030")
    assert decode(data).text == text
    assert scored == [decode_module._SNIFF_BYTES] and len(data) > 100 * scored[0]


def test_forced_encoding_is_used():
    data = _traditional(1).encode("big5")
    forced = decode(data, "gb18030")
    assert forced.encoding == "gb18030" and forced.text == data.decode("gb18030")
    doc = _one(RawFile("a.txt", data), IngestParams(unit="document", encoding="gb18030"))
    assert doc["encoding"] == "gb18030"


def test_invalid_bytes_are_replaced_counted_and_flagged():
    text = _paragraphs(1)
    data = text[:10].encode() + b"\xff\xfe\xff" + text[10:].encode()
    doc = _one(RawFile("bad.txt", data))
    assert doc["decode_errors"] == 3
    assert doc["status"] == "decode_errors" and "3 invalid byte" in doc["reason"]
    assert doc["encoding"] == "utf-8"
    assert doc["text"] == text[:10] + "\ufffd" * 3 + text[10:]


# --- formats ----------------------------------------------------------------------------------


def test_gb18030_text_is_decoded():
    assert _one(RawFile("gbk.txt", "妇女权益保障".encode("gb18030")))["text"] == "妇女权益保障"


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


def test_csv_delimiter_is_sniffed_and_quoted_newlines_are_kept():
    data = 'label;text\na;"第一行\n第二行"\nb;"含;分号"\n'
    rows = ingest([RawFile("semi.csv", data.encode("gbk"))], DOCUMENT).to_pylist()
    assert [r["text"] for r in rows] == ["第一行\n第二行", "含;分号"]
    assert [r["label"] for r in rows] == ["a", "b"]
    assert {r["encoding"] for r in rows} == {"gb18030"}
    tab = ingest([RawFile("tab.csv", "label\ttext\nx\t内容\n".encode())], DOCUMENT).to_pylist()
    assert tab[0]["text"] == "内容"


def test_tsv_jsonl_json_and_parquet():
    tsv = RawFile("a.tsv", "label\ttext\nx\t一\n".encode())
    jsonl = RawFile("b.jsonl", '{"text": "二", "n": 3, "tags": ["a"]}\n\n'.encode())
    as_json = RawFile("c.json", json.dumps([{"text": "三"}, {"text": "四"}]).encode())
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["五"], "year": [2020]}), buffer)
    parquet = RawFile("d.parquet", buffer.getvalue())
    rows = ingest([tsv, jsonl, as_json, parquet], DOCUMENT).to_pylist()
    assert [r["text"] for r in rows] == ["一", "二", "三", "四", "五"]
    assert [r["format"] for r in rows] == ["tsv", "jsonl", "json", "json", "parquet"]
    assert rows[0]["label"] == "x"
    assert rows[1]["n"] == "3" and json.loads(rows[1]["tags"]) == ["a"]
    assert rows[4]["year"] == "2020" and rows[4]["encoding"] is None
    assert rows[0]["year"] is None


def _docx(paragraphs: list[str], title: str | None = None) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if title:
        document.core_properties.title = title
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_paragraph_text():
    data = _docx(["第一段文字。", "第二段文字。"], title="文档标题")
    doc = _one(RawFile("报告.docx", data))
    assert doc["text"] == "第一段文字。\n第二段文字。"
    assert doc["title"] == "文档标题" and doc["format"] == "docx" and doc["status"] == "kept"
    rows = ingest([RawFile("报告.docx", data)], PARAGRAPH).to_pylist()
    assert [r["text"] for r in rows] == ["第一段文字。", "第二段文字。"]


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (Identity-H font, ToUnicode CMap)."""
    content = "BT /F1 12 Tf 14 TL 50 800 Td " + " ".join(
        f"<{line.encode('utf-16-be').hex()}> Tj T*" for line in lines
    )
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap "
        "/CMapName /Identity-UCS2 def 1 begincodespacerange <0000> <FFFF> endcodespacerange "
        "1 beginbfrange <0000> <FFFF> <0000> endbfrange endcmap "
        "CMapName currentdict /CMap defineresource pop end end"
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /Identity-H "
        "/DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>",
        f"<< /Length {len(cmap)} >>\nstream\n{cmap}\nendstream",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


def test_pdf_text_layer():
    doc = _one(RawFile("a.pdf", make_pdf(["妇女权益保障法", "第二行文字"])))
    assert "妇女权益保障法" in doc["text"] and "第二行文字" in doc["text"]
    assert doc["format"] == "pdf" and doc["status"] == "kept"


def test_html_main_text_without_scripts_styles_or_navigation():
    page = """<!DOCTYPE html><html><head><meta charset="gbk"><title>新闻标题</title>
    <style>p {color: red}</style><script>var x = "脚本";</script></head><body>
    <nav><a href="/">首页</a> <a href="/news">新闻</a></nav>
    <div class="top-menu">菜单项</div>
    <article><h1>正文标题</h1><p>第一段正文。</p><p>第二段<b>加粗</b>正文。</p>
    <!-- 注释 --></article>
    <footer>版权所有</footer></body></html>"""
    text, title = html_main_text(page)
    assert title == "新闻标题"
    assert text.split("\n") == ["正文标题", "第一段正文。", "第二段加粗正文。"]
    doc = _one(RawFile("page.html", page.encode("gbk")))
    assert doc["text"] == text and doc["encoding"] == "gb18030" and doc["format"] == "html"


# --- bad input: every case gets a row with a status and a reason, none stops the run ---------


def test_empty_and_zero_byte_files_are_empty():
    zero = _one(RawFile("zero.txt", b""))
    assert zero["status"] == "empty" and zero["reason"] == "0-byte file"
    blank = _one(RawFile("blank.txt", b"  \n\r\n\t\n"))
    assert blank["status"] == "empty" and blank["reason"]


def test_binary_file_named_txt_is_unsupported():
    png = _one(RawFile("image.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4))
    assert png["status"] == "unsupported" and "PNG" in png["reason"]
    noise = _one(RawFile("noise.txt", bytes(range(32)) * 64))
    assert noise["status"] == "unsupported" and "binary" in noise["reason"]


def test_nul_bytes_inside_text_are_kept_as_text():
    text = _paragraphs(1)
    data = text[:10].encode() + b"\x00\x00" + text[10:].encode() + b"\x00"
    doc = _one(RawFile("nul.txt", data))
    assert doc["status"] == "kept" and doc["text"].replace("\x00", "") == text
    rows = ingest([RawFile("nul.csv", b"text\n\xe5\xa6\x87\x00x\n")], DOCUMENT).to_pylist()
    assert rows[0]["status"] == "kept" and rows[0]["text"] == "妇x"


@pytest.mark.slow
def test_a_single_50_mb_line():
    line = "妇女权益保障工作，" * (50 * 1024 * 1024 // 27 + 1)
    data = line.encode("utf-8")
    assert len(data) >= 50 * 1024 * 1024
    start = time.perf_counter()
    rows = ingest([RawFile("long.txt", data)], PARAGRAPH).to_pylist()
    assert len(rows) == 1 and len(rows[0]["text"]) == len(line)
    assert rows[0]["status"] == "kept" and rows[0]["encoding"] == "utf-8"
    # clean copes too: rules, the CJK share and the MinHash signature, a window at a time.
    params = load_params(ROOT / "params.yaml").clean
    cleaned = clean(ingest([RawFile("long.txt", data)], PARAGRAPH), params, load_rules(params))
    assert cleaned.clean.column("status").to_pylist() == ["kept"]
    assert cleaned.clean.column("n_chars").to_pylist() == [len(line)]
    assert time.perf_counter() - start < 120


def test_mixed_line_endings():
    data = "第一段很长的文字\r\n\r\n第二段很长的文字\r\r第三段很长的文字\n\n第四段很长的文字"
    rows = ingest([RawFile("mixed.txt", data.encode())], PARAGRAPH).to_pylist()
    assert [r["text"] for r in rows] == [f"第{n}段很长的文字" for n in "一二三四"]
    assert not any("\r" in r["text"] for r in rows)


def test_csv_without_text_column_names_file_column_and_columns():
    doc = _one(RawFile("data/news.csv", b"id,body\n1,x\n"))
    assert doc["status"] == "unreadable"
    assert "data/news.csv" in doc["reason"] and "'text'" in doc["reason"]
    assert "['id', 'body']" in doc["reason"]
    custom = IngestParams(unit="document", text_column="body")
    assert _one(RawFile("n.csv", "id,body\n1,内容\n".encode()), custom)["text"] == "内容"


def test_malformed_jsonl_line_is_an_unreadable_record_with_its_line_number():
    raw = RawFile("b.jsonl", b'{"text": "ok"}\n{broken\n[1]\n{"text": "also ok"}\n')
    rows = ingest([raw], DOCUMENT).to_pylist()
    assert [r["status"] for r in rows] == ["kept", "unreadable", "unreadable", "kept"]
    assert "b.jsonl: line 2" in rows[1]["reason"] and "line 3" in rows[2]["reason"]
    assert rows[3]["text"] == "also ok" and rows[3]["record"] == 3


def test_jsonl_lines_end_at_line_breaks_only():
    # A JSON string may hold U+2028 or U+0085 (str.splitlines() cuts there); \r\n ends a line.
    raw = RawFile("d.jsonl", '{"text": "一\u2028二\u0085三"}\r\n{"text": "四"}\r\n'.encode())
    rows = ingest([raw], DOCUMENT).to_pylist()
    assert [(r["status"], r["record"]) for r in rows] == [("kept", 0), ("kept", 1)]
    assert rows[1]["text"] == "四"


def test_jsonl_record_without_the_text_key_is_one_unreadable_record():
    raw = RawFile("c.jsonl", '{"text": "有"}\n{"body": "无"}\n'.encode())
    rows = ingest([raw], DOCUMENT).to_pylist()
    assert [r["status"] for r in rows] == ["kept", "unreadable"]
    assert (
        "record 1: no text column 'text'" in rows[1]["reason"] and "['body']" in rows[1]["reason"]
    )


def test_csv_row_with_wrong_field_count_is_an_unreadable_record():
    rows = ingest([RawFile("c.csv", b"a,text\n1,x\n2,y,z\n3,w\n")], DOCUMENT).to_pylist()
    assert [r["status"] for r in rows] == ["kept", "unreadable", "kept"]
    assert "c.csv: line 3" in rows[1]["reason"]


def test_malformed_json_docx_and_pdf_are_unreadable_not_fatal():
    rows = ingest(
        [
            RawFile("a.json", b"{not json"),
            RawFile("b.docx", b"PK\x03\x04 not a zip"),
            RawFile("c.pdf", b"%PDF-1.4 garbage"),
            RawFile("d.txt", "正常的文字".encode()),
        ],
        DOCUMENT,
    ).to_pylist()
    assert [r["status"] for r in rows] == ["unreadable", "unreadable", "unreadable", "kept"]
    assert all(r["reason"] for r in rows[:3])


def test_unsupported_file_type_is_a_row_not_an_error():
    rows = ingest([RawFile("x.xlsx", b"PK"), RawFile("README", b"hi")], DOCUMENT).to_pylist()
    assert [r["status"] for r in rows] == ["unsupported", "unsupported"]
    assert "unsupported file type .xlsx" in rows[0]["reason"]
    assert [r["format"] for r in rows] == ["xlsx", "(none)"]


def test_paragraph_unit_on_tabular_rows():
    raw = RawFile("t.csv", 'text,label\n"第一段很长很长\n\n第二段也很长很长",a\n'.encode())
    rows = ingest([raw], PARAGRAPH).to_pylist()
    assert [r["paragraph"] for r in rows] == [0, 1]
    assert {r["label"] for r in rows} == {"a"}
    assert len({r["parent_id"] for r in rows}) == 1


# --- the raw folder ---------------------------------------------------------------------------


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


def test_file_names_with_chinese_characters_and_spaces(tmp_path):
    folder = tmp_path / "新闻 2021"
    folder.mkdir()
    (folder / "妇联 工作 报告.txt").write_text("标题\n正文内容。", encoding="utf-8")
    (raw,) = read_raw_files(tmp_path)
    assert raw.source == "新闻 2021/妇联 工作 报告.txt"
    doc = _one(raw)
    assert doc["source"] == "新闻 2021/妇联 工作 报告.txt" and doc["title"] == "标题"


def test_symlink_loop_is_reported_not_followed(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("正文内容。", encoding="utf-8")
    os.symlink(tmp_path, tmp_path / "docs" / "loop")  # a folder link back to the top
    os.symlink(tmp_path / "self.txt", tmp_path / "self.txt")  # a link to itself
    files = list(read_raw_files(tmp_path))
    assert [f.source for f in files] == ["docs/a.txt", "docs/loop", "self.txt"]
    rows = ingest(files, DOCUMENT).to_pylist()
    assert [r["status"] for r in rows] == ["kept", "unreadable", "unreadable"]
    assert "symlink loop" in rows[1]["reason"] and rows[2]["reason"]


def test_unreadable_file_gets_a_row(tmp_path, monkeypatch):
    """Tests run as root, for whom chmod 000 does not stop reading: the read itself is made
    to fail with the PermissionError a user would get."""
    (tmp_path / "locked.txt").write_text("秘密", encoding="utf-8")
    (tmp_path / "open.txt").write_text("公开的内容", encoding="utf-8")
    real_read = ingest_module._read_bytes

    def read_bytes(path):
        if os.path.basename(path) == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(ingest_module, "_read_bytes", read_bytes)
    rows = ingest(read_raw_files(tmp_path), DOCUMENT).to_pylist()
    assert [(r["source"], r["status"]) for r in rows] == [
        ("locked.txt", "unreadable"),
        ("open.txt", "kept"),
    ]
    assert "Permission denied" in rows[0]["reason"]


def test_main_streams_batches_and_accounts_for_every_file(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    for n in range(7):
        (raw / f"{n}.csv").write_text(f"text,col{n}\n内容{n},v{n}\n", encoding="utf-8")
    (raw / "bad.bin").write_bytes(b"\x00\x01")
    monkeypatch.setattr("pipeline.ingest.BATCH_ROWS", 2)
    paths = Paths.under(raw, tmp_path / "out")
    main(Params(ingest=DOCUMENT), paths)
    docs = read_table(paths.table("documents"), DOCUMENTS)
    assert docs.column("source").to_pylist() == [f"{n}.csv" for n in range(7)] + ["bad.bin"]
    assert docs.column("status").to_pylist() == ["kept"] * 7 + ["unsupported"]
    assert [f"col{n}" for n in range(7)] == docs.column_names[len(DOCUMENTS.columns) :]
    assert docs.column("col3").to_pylist() == [None] * 3 + ["v3"] + [None] * 4
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_main_fails_clearly_when_nothing_is_usable(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.xlsx").write_bytes(b"PK")
    with pytest.raises(IngestError, match="no usable documents.*unsupported"):
        main(Params(), Paths.under(raw, tmp_path / "out"))


# --- dates and fields from the documents themselves (issue 19) ---------------------------------

REPORTS = FIXTURES / "work_reports"
REPORT_PATTERN = r"(?P<year>\d{4})政府工作报告_(?P<speaker>[^_.]+)"


def _reports(tmp_path: Path, folder: str = "") -> Path:
    """The work-report fixture folder (one file per report), copied under tmp_path/raw."""
    raw = tmp_path / "raw"
    shutil.copytree(REPORTS, raw / folder if folder else raw)
    return raw


def test_work_reports_get_day_dates_from_the_line_under_the_title(tmp_path):
    docs = ingest(read_raw_files(_reports(tmp_path)), DOCUMENT).to_pylist()
    got = {d["source"][:4]: (d["date"], d["date_source"], d["date_precision"]) for d in docs}
    assert got["1954"] == (dt.date(1954, 5, 23), "text", "day")
    assert got["1978"] == (dt.date(1978, 2, 26), "text", "day")  # 一九七八年二月二十六日
    assert got["2017"] == (dt.date(2017, 3, 5), "text", "day")  # 二〇一七年三月五日
    assert all(d["title"] for d in docs)
    assert "folder" not in docs[0]  # no folder below the raw folder: no folder column


def test_path_pattern_gives_year_and_speaker_to_every_paragraph(tmp_path):
    params = IngestParams(unit="paragraph", path_pattern=REPORT_PATTERN, date_sources=("path",))
    docs = ingest(read_raw_files(_reports(tmp_path)), params).to_pylist()
    assert len(docs) > 10
    speakers = {d["source"]: d["speaker"] for d in docs}
    assert speakers["1954政府工作报告_周恩来.txt"] == "周恩来"
    assert set(speakers.values()) == {"周恩来", "华国锋", "赵紫阳", "李鹏", "温家宝", "李克强"}
    assert all(d["year"] == d["source"][:4] for d in docs)
    # A year group fills the date, at year precision (never shown as 1 January).
    assert all(d["date"] == dt.date(int(d["year"]), 1, 1) for d in docs)
    assert {(d["date_source"], d["date_precision"]) for d in docs} == {("path", "year")}


def test_the_order_of_date_sources_decides(tmp_path):
    raw = _reports(tmp_path)
    params = IngestParams(unit="document", date_sources=("path", "text"))
    docs = ingest(read_raw_files(raw), params).to_pylist()
    assert {(d["date_source"], d["date_precision"]) for d in docs} == {("path", "year")}
    params = IngestParams(unit="document", date_sources=())
    docs = ingest(read_raw_files(raw), params).to_pylist()
    assert {d["date"] for d in docs} == {None}


def test_title_then_path_when_the_text_has_no_date():
    title_only = RawFile("x/无日期.txt", "二〇一二年工作总结\n正文没有日期。\n".encode())
    path_only = RawFile("2015/无日期.txt", "工作总结\n正文没有日期。\n".encode())
    neither = RawFile("第3期/19卷.txt", "工作总结\n共1999个单位，电话010-65123456。\n".encode())
    params = IngestParams(unit="document", date_sources=("title", "path"))
    rows = ingest([title_only, path_only, neither], params).to_pylist()
    assert [(r["date"], r["date_source"], r["date_precision"]) for r in rows] == [
        (dt.date(2012, 1, 1), "title", "year"),
        (dt.date(2015, 1, 1), "path", "year"),
        (None, None, None),
    ]


def test_the_first_folder_is_the_folder_column(tmp_path):
    files = [
        RawFile("体育/1.txt", "标题\n正文。\n".encode()),
        RawFile("财经/2019/2.txt", "标题\n正文。\n".encode()),
        RawFile("top.txt", "标题\n正文。\n".encode()),
    ]
    rows = ingest(files, DOCUMENT).to_pylist()
    assert [r["folder"] for r in rows] == ["体育", "财经", None]
    rows = ingest(files, IngestParams(unit="document", folder_column=None)).to_pylist()
    assert "folder" not in rows[0]


def test_a_date_column_wins_over_text_dates():
    data = "text,date,label\n2019年5月1日召开会议。,2020-01-02,a\n2019年5月1日召开会议。,,b\n"
    rows = ingest([RawFile("2018/t.csv", data.encode())], DOCUMENT).to_pylist()
    assert [(r["date"], r["date_source"]) for r in rows] == [
        (dt.date(2020, 1, 2), "column"),
        (dt.date(2019, 5, 1), "text"),
    ]
    assert rows[0]["folder"] == "2018"


def test_a_year_column_value_is_a_year_not_the_first_of_january():
    data = "text,date\n正文。,1958\n正文。,1958-07\n"
    rows = ingest([RawFile("t.csv", data.encode())], DOCUMENT).to_pylist()
    assert [r["date_precision"] for r in rows] == ["year", "month"]


def test_a_path_pattern_that_matches_no_file_is_an_error(tmp_path):
    params = IngestParams(path_pattern=r"(?P<speaker>nobody)")
    with pytest.raises(IngestError, match=r"matched 0 of 10 file\(s\)"):
        ingest(read_raw_files(_reports(tmp_path)), params)


def test_a_path_pattern_that_matches_some_files_says_how_many(tmp_path, caplog):
    params = IngestParams(unit="document", path_pattern=r"(?P<year>19\d\d)政府")
    with caplog.at_level("WARNING"):
        rows = ingest(read_raw_files(_reports(tmp_path)), params).to_pylist()
    assert "matched 6 of 10 file(s)" in caplog.text and "2010政府工作报告_温家宝.txt" in caplog.text
    assert sum(r["year"] is not None for r in rows) == 6


def test_path_pattern_with_a_date_group_and_nested_folders(tmp_path):
    raw = _reports(tmp_path, folder="报告")
    params = IngestParams(unit="document", path_pattern=r"_(?P<speaker>[^_.]+)\.txt$")
    rows = ingest(read_raw_files(raw), params).to_pylist()
    assert {r["folder"] for r in rows} == {"报告"}
    assert rows[0]["speaker"] == "周恩来"
    params = IngestParams(unit="document", path_pattern=r"^(?P<date>\d{4})", date_sources=("path",))
    rows = ingest([RawFile("2019-03-05_讲话.txt", "正文。".encode())], params).to_pylist()
    assert rows[0]["date"] == dt.date(2019, 1, 1) and rows[0]["date_precision"] == "year"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"path_pattern": "(?P<year"}, "ingest.path_pattern"),
        ({"path_pattern": r"\d{4}"}, "ingest.path_pattern"),
        ({"path_pattern": r"(?P<source>.*)"}, "ingest.path_pattern"),
        ({"folder_column": "title"}, "ingest.folder_column"),
        ({"date_sources": ["text", "calendar"]}, "ingest.date_sources"),
        ({"date_sources": ["text", "text"]}, "ingest.date_sources"),
        ({"date_lines": 0}, "ingest.date_lines"),
    ],
)
def test_bad_date_and_path_settings_name_the_key(values, key):
    from pipeline.config import ConfigError, params_from_dict

    with pytest.raises(ConfigError, match=key):
        params_from_dict({"ingest": values})
