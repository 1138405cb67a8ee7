"""The file formats ingest reads (text, CSV/TSV, JSON lines, JSON, parquet, docx, PDF, HTML):
each parser turns one raw file into parsed documents with a title, a date and metadata, or
raises ``_Unusable`` with the reason the file becomes one unusable row."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import IngestParams
from pipeline.schemas import (
    DOCUMENTS,
    EMPTY,
    UNREADABLE,
    UNSUPPORTED,
)
from pipeline.text import dates
from pipeline.text.dates import FoundDate
from pipeline.text.decode import Decoded, binary_kind, decode, decode_as

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md"}
TABULAR_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}
DOCUMENT_SUFFIXES = {".docx", ".html", ".htm", ".pdf"}
SUPPORTED = TEXT_SUFFIXES | TABULAR_SUFFIXES | DOCUMENT_SUFFIXES
RESERVED = set(DOCUMENTS.columns)

_SENTENCE_END = tuple("。！？!?；;，,:：")
_TITLE_MAX_CHARS = 60


class _Unusable(Exception):
    """A file (or the rest of it) cannot be used: it becomes one row with this reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class RawFile:
    """A file's bytes and its path relative to the raw folder (POSIX style).

    ``error`` is set instead of ``data`` when the file could not be read (permissions, a
    symlink loop); it becomes an ``unreadable`` row.
    """

    source: str
    data: bytes = b""
    error: str | None = None


@dataclass
class ParsedDoc:
    source: str
    record: int
    text: str
    format: str
    encoding: str | None = None
    title: str | None = None
    date: FoundDate | None = None
    # Where ``date`` came from (column or text) until ingest resolves the document's date
    # from every source (pipeline.ingest.resolve_date).
    date_source: str | None = None
    part: str | None = None
    status: str | None = None
    reason: str | None = None
    metadata: dict[str, str | None] = field(default_factory=dict)


def parse_file(raw: RawFile, params: IngestParams, split_re: re.Pattern[str]) -> list[ParsedDoc]:
    """One file's documents; a file that cannot be used gives one row saying why."""
    suffix = Path(raw.source).suffix.lower()
    fmt = suffix.lstrip(".") or "(none)"
    if raw.error is not None:
        return [ParsedDoc(raw.source, 0, "", fmt, status=UNREADABLE, reason=raw.error)]
    if suffix not in SUPPORTED:
        reason = f"unsupported file type {suffix or '(none)'}; supported: {sorted(SUPPORTED)}"
        return [ParsedDoc(raw.source, 0, "", fmt, status=UNSUPPORTED, reason=reason)]
    if not raw.data:
        return [ParsedDoc(raw.source, 0, "", fmt, status=EMPTY, reason="0-byte file")]
    try:
        if suffix in TEXT_SUFFIXES:
            docs = _parse_text(raw, fmt, params, split_re)
        elif suffix in TABULAR_SUFFIXES:
            docs = list(_parse_tabular(raw, fmt, params))
        elif suffix == ".docx":
            docs = _parse_docx(raw)
        elif suffix == ".pdf":
            docs = _parse_pdf(raw)
        else:
            docs = _parse_html(raw, fmt, params)
    except _Unusable as exc:
        return [ParsedDoc(raw.source, 0, "", fmt, status=exc.status, reason=exc.reason)]
    except Exception as exc:  # a library failing on a malformed file must not stop the run
        reason = f"cannot parse {suffix} file: {type(exc).__name__}: {exc}"
        return [ParsedDoc(raw.source, 0, "", fmt, status=UNREADABLE, reason=reason)]
    if not docs:
        return [ParsedDoc(raw.source, 0, "", fmt, status=EMPTY, reason="the file holds no records")]
    return docs


def parse_date(value: str | None) -> dt.date | None:
    """The date of a date column's value (2022-09-16, 2022/9/16, 2022年9月16日, 20220916, 2022-09,
    2022; a time after it is ignored); a month or a year gives its first day."""
    found = dates.parse_date_value(value)
    return found.date if found else None


def _decode_file(raw: RawFile, params: IngestParams) -> Decoded:
    decoded = decode(raw.data, params.encoding)
    kind = binary_kind(raw.data, decoded.text)
    if kind is not None:
        suffix = Path(raw.source).suffix or "(no suffix)"
        raise _Unusable(UNSUPPORTED, f"{kind}, not text, in a {suffix} file")
    if decoded.errors:
        log.warning(
            "%s: %d invalid byte sequence(s) as %s replaced with U+FFFD",
            raw.source,
            decoded.errors,
            decoded.encoding,
        )
    return decoded


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- text files -------------------------------------------------------------------------------


def _parse_text(
    raw: RawFile, fmt: str, params: IngestParams, split_re: re.Pattern[str]
) -> list[ParsedDoc]:
    decoded = _decode_file(raw, params)
    text = _newlines(decoded.text)
    headings = list(split_re.finditer(text))
    doc = lambda record, body, **kw: ParsedDoc(  # noqa: E731
        raw.source, record, body, fmt, decoded.encoding, **kw
    )
    if not headings:
        date, body = _take_date(text)
        return [doc(0, body, title=_guess_title(body, raw.source), **date)]
    docs = []
    preamble_date, preamble = _take_date(text[: headings[0].start()])
    preamble = _drop_line(preamble, headings[0].group("title").strip())
    if preamble.strip():
        title = _guess_title(preamble, raw.source)
        docs.append(doc(0, preamble, title=title, **preamble_date))
    has_part = "part" in split_re.groupindex
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        date, body = _take_date(text[match.end() : end])
        part = match.group("part") if has_part else None
        title = match.group("title").strip()
        docs.append(doc(i + 1, body, title=title, part=part, **(date or preamble_date)))
    return docs


def _take_date(text: str, lines_to_search: int = 5) -> tuple[dict, str]:
    """Find a date-only line among the first non-empty lines; return it (as ParsedDoc fields)
    and the text without it. Date phrases in other lines stay in the text (resolve_date)."""
    lines = text.split("\n")
    seen = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        date = dates.parse_date_value(line) if dates.is_date_only_line(line) else None
        if date:
            return {"date": date, "date_source": "text"}, "\n".join(lines[:i] + lines[i + 1 :])
        seen += 1
        if seen >= lines_to_search:
            break
    return {}, text


def _drop_line(text: str, line_text: str) -> str:
    """Remove the lines equal to ``line_text`` (a compilation's title repeated in its preamble)."""
    return "\n".join(line for line in text.split("\n") if line.strip() != line_text)


def _guess_title(text: str, source: str) -> str:
    """The first line when it reads like a heading, else the file name without its suffix."""
    for line in text[:4096].split("\n"):
        line = line.strip()
        if line:
            if len(line) <= _TITLE_MAX_CHARS and not line.endswith(_SENTENCE_END):
                return line
            break
    return Path(source).stem


# --- tabular files ----------------------------------------------------------------------------

# A record as parsed: its fields, or the reason it cannot be used.
_Record = tuple[dict[str, str | None] | None, str | None]


def _parse_tabular(raw: RawFile, fmt: str, params: IngestParams) -> Iterator[ParsedDoc]:
    encoding = None
    if fmt == "parquet":
        records = _parquet_records(raw)
    else:
        decoded = _decode_file(raw, params)
        encoding = decoded.encoding
        if fmt == "jsonl":
            records = _jsonl_records(raw, decoded.text)
        elif fmt == "json":
            records = _json_records(raw, decoded.text)
        else:
            records = _csv_records(raw, decoded.text, fmt)
    for index, (row, error) in enumerate(records):
        yield record_doc(raw.source, index, row, error, fmt, encoding, params)


def record_doc(
    source: str,
    index: int,
    row: dict[str, str | None] | None,
    error: str | None,
    fmt: str,
    encoding: str | None,
    params: IngestParams,
) -> ParsedDoc:
    """The document of record ``index`` of a table (its fields, or why it cannot be used)."""
    text_column = params.text_column
    if row is None:
        return ParsedDoc(source, index, "", fmt, encoding, status=UNREADABLE, reason=error)
    if text_column not in row:
        reason = (
            f"{source}: record {index}: no text column {text_column!r} "
            f"(set ingest.text_column); its columns are {list(row)}"
        )
        if fmt not in ("json", "jsonl"):  # a table's columns are those of every row
            raise _Unusable(UNREADABLE, reason)
        return ParsedDoc(source, index, "", fmt, encoding, status=UNREADABLE, reason=reason)
    text = row[text_column]
    return ParsedDoc(
        source,
        index,
        "" if text is None else _newlines(text),
        fmt,
        encoding,
        title=row.get("title") or None,
        date=dates.parse_date_value(row.get("date")),
        date_source="column" if row.get("date") else None,
        metadata={_meta_name(k): v for k, v in row.items() if k != text_column},
    )


def _meta_name(column: str) -> str:
    """Metadata keeps its column name, unless that name is one of the table's own columns."""
    return f"meta_{column}" if column in RESERVED else column


def sniff_delimiter(text: str, default: str) -> str:
    """The delimiter of a CSV/TSV text (comma, tab, semicolon or bar), else ``default``."""
    sample = text[:16384]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return default


def _csv_records(raw: RawFile, text: str, fmt: str) -> Iterator[_Record]:
    csv.field_size_limit(2**31 - 1)  # the default (128 KiB) is shorter than many articles
    delimiter = sniff_delimiter(text, "\t" if fmt == "tsv" else ",")
    # NUL bytes stop the csv module; they are noise and go anyway (clean removes controls).
    reader = csv.reader(io.StringIO(text.replace("\x00", ""), newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _Unusable(UNREADABLE, f"{raw.source}: line 1: not valid CSV ({exc})") from exc
    if header is None:
        return
    columns = [c.strip() for c in header]
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield None, f"{raw.source}: line {reader.line_num}: not valid CSV ({exc}); rest skipped"
            return
        if row:
            yield _csv_row(raw.source, row, reader.line_num, columns)


def _csv_row(source: str, row: list[str], line_num: int, columns: list[str]) -> _Record:
    if len(row) != len(columns):
        reason = f"{source}: line {line_num} has {len(row)} field(s), the header has {len(columns)}"
        return None, reason
    return dict(zip(columns, row, strict=True)), None


# JSON Lines end at \n, \r\n or \r (as Hadoop's line reader splits them), nothing else: a JSON
# string may hold U+2028 or U+0085, where str.splitlines() would cut it.
LINE_END = re.compile(r"\r\n|\r|\n")


def _jsonl_records(raw: RawFile, text: str) -> Iterator[_Record]:
    for line_no, line in enumerate(LINE_END.split(text), start=1):
        if line.strip():
            yield _jsonl_row(raw.source, line, line_no)


def _jsonl_row(source: str, line: str, line_no: int) -> _Record:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"{source}: line {line_no} is not valid JSON ({exc})"
    if not isinstance(obj, dict):
        return None, f"{source}: line {line_no} is not a JSON object"
    return {k: _to_str(v) for k, v in obj.items()}, None


# --- a table read line by line (the Spark engine splits a large file across tasks) ------------

# Formats whose records are lines (a CSV field may still span lines: ``line_is_closed``).
LINE_FORMATS = frozenset({"csv", "tsv", "jsonl"})
# Follows a line in ``line_is_closed``: a character no CSV file of text holds.
_SENTINEL = "\ue000"


def line_holds_record(fmt: str, line: str) -> bool:
    """Whether a line (not a CSV header) is a record: what the whole-file parsers skip is not."""
    if fmt == "jsonl":
        return bool(line.strip())
    return bool(line.replace("\x00", ""))


def line_is_closed(line: str, delimiter: str) -> bool:
    """Whether a CSV line ends outside a quoted field, so that it parses alone as it does in
    the whole file (a quoted field that goes on to the next line does not)."""
    rows = list(csv.reader([line.replace("\x00", "") + "\n", _SENTINEL], delimiter=delimiter))
    return len(rows) == 2 and rows[1] == [_SENTINEL]


def csv_columns(header: str, delimiter: str) -> list[str]:
    """The columns of a CSV header line."""
    row = next(csv.reader([header.replace("\x00", "")], delimiter=delimiter), [])
    return [c.strip() for c in row]


def line_doc(
    source: str,
    fmt: str,
    line: str,
    line_no: int,
    index: int,
    layout: tuple[list[str], str, str],
    params: IngestParams,
) -> ParsedDoc:
    """Record ``index`` of a table, on line ``line_no`` (1-based) alone: the document the
    whole-file parser gives for it (``line_holds_record`` and, for CSV, ``line_is_closed``
    hold). ``layout``: the CSV columns, the CSV delimiter and the file's encoding."""
    columns, delimiter, encoding = layout
    csv.field_size_limit(2**31 - 1)
    if fmt == "jsonl":
        row, error = _jsonl_row(source, line, line_no)
    else:
        fields = next(csv.reader([line.replace("\x00", "")], delimiter=delimiter))
        row, error = _csv_row(source, fields, line_no, columns)
    try:
        return record_doc(source, index, row, error, fmt, encoding, params)
    except _Unusable as exc:  # no text column: the header says so for every record
        return ParsedDoc(source, index, "", fmt, status=exc.status, reason=exc.reason)


def _json_records(raw: RawFile, text: str) -> Iterator[_Record]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Unusable(UNREADABLE, f"{raw.source}: not valid JSON ({exc})") from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise _Unusable(UNREADABLE, f"{raw.source}: expected a list of JSON objects")
    for index, obj in enumerate(data):
        if isinstance(obj, dict):
            yield {k: _to_str(v) for k, v in obj.items()}, None
        else:
            yield None, f"{raw.source}: item {index} is not a JSON object"


def _parquet_records(raw: RawFile) -> Iterator[_Record]:
    parquet = pq.ParquetFile(pa.BufferReader(raw.data))
    for batch in parquet.iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            yield _parquet_row(row), None


def _parquet_row(row: dict) -> dict[str, str | None]:
    return {k: _to_str(v) for k, v in row.items()}


def parquet_row_doc(source: str, index: int, row: dict, params: IngestParams) -> ParsedDoc:
    """Row ``index`` of a parquet table alone (its values as Arrow gives them, the text column
    among them): the document the whole-file parser gives for it."""
    return record_doc(source, index, _parquet_row(row), None, "parquet", None, params)


def _to_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


# --- documents: docx, html, pdf ---------------------------------------------------------------


def _parse_docx(raw: RawFile) -> list[ParsedDoc]:
    import docx  # python-docx; imported here so that other formats do not pay for it

    document = docx.Document(io.BytesIO(raw.data))
    text = "\n".join(p.text for p in document.paragraphs)
    title = (document.core_properties.title or "").strip() or _guess_title(text, raw.source)
    return [ParsedDoc(raw.source, 0, text, "docx", title=title)]


def _parse_pdf(raw: RawFile) -> list[ParsedDoc]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(raw.data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise _Unusable(UNREADABLE, f"{raw.source}: the PDF is encrypted")
    pages = [page.extract_text() or "" for page in reader.pages]
    text = "\n\n".join(p.strip("\n") for p in pages)
    if not text.strip():
        raise _Unusable(EMPTY, f"{raw.source}: the PDF has no text layer (a scan?)")
    title = (reader.metadata.title if reader.metadata else None) or _guess_title(text, raw.source)
    return [ParsedDoc(raw.source, 0, text, "pdf", title=str(title).strip())]


# Elements that are not the page's main text.
_HTML_DROP = tuple(
    [
        "script",
        "style",
        "noscript",
        "template",
        "iframe",
        "svg",
        "canvas",
        "object",
        "embed",
        "form",
        "button",
        "select",
        "textarea",
        "nav",
        "header",
        "footer",
        "aside",
        "menu",
        "head",
    ]
)
_HTML_BOILERPLATE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|menu|breadcrumbs?|sidebar|footer|header|comments?|share|"
    r"copyright|advert|ads?|related|toolbar|pagination)(?:$|[\s_-])",
    re.IGNORECASE,
)
_HTML_BLOCKS = set(
    [
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "th",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "main",
        "blockquote",
        "pre",
        "table",
        "dd",
        "dt",
        "dl",
        "figcaption",
    ]
)
_HTML_MAIN = (".//article", ".//main", ".//body")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def _html_encoding(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    name = match.group(1).decode("ascii").lower()
    if name in ("gb2312", "gbk", "gb18030", "x-gbk"):
        return "gb18030"
    if name in ("big5", "big5-hkscs", "cp950"):
        return "big5"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def html_main_text(markup: str) -> tuple[str, str | None]:
    """The main text of a web page and its title: scripts, styles, navigation, headers,
    footers and elements whose class or id says they are boilerplate are dropped; the
    ``<article>`` or ``<main>`` element is used when there is one."""
    import lxml.html

    markup = re.sub(r"^\s*<\?xml[^>]*\?>", "", markup)
    root = lxml.html.document_fromstring(markup or "<html></html>")
    title_el = root.find(".//title")
    title = title_el.text_content().strip() if title_el is not None else None
    for element in list(root.iter(*_HTML_DROP)):
        _drop(element)
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            _drop(element)  # comments and processing instructions
            continue
        marker = f"{element.get('class', '')} {element.get('id', '')}"
        if element.tag not in ("html", "body") and _HTML_BOILERPLATE.search(marker):
            _drop(element)
    main = next((e for e in map(root.find, _HTML_MAIN) if e is not None), root)
    for element in main.iter():
        if isinstance(element.tag, str) and element.tag in _HTML_BLOCKS:
            element.tail = "\n" + (element.tail or "")
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in main.text_content().split("\n"))
    return "\n".join(line for line in lines if line), title or None


def _drop(element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    parent.remove(element)
    if tail:  # keep the text that follows the dropped element
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


def _parse_html(raw: RawFile, fmt: str, params: IngestParams) -> list[ParsedDoc]:
    declared = None if params.encoding else _html_encoding(raw.data)
    decoded = decode_as(raw.data, declared) if declared else _decode_file(raw, params)
    text, title = html_main_text(decoded.text)
    title = title or _guess_title(text, raw.source)
    return [ParsedDoc(raw.source, 0, text, fmt, decoded.encoding, title=title)]
