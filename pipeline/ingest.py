"""Stage ingest: every file under the raw folder becomes documents (or paragraphs), each with a
format, an encoding and a status; a file that cannot be used gets one row that says why."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.config import IngestParams, Params
from pipeline.io import Paths, Spool, TableWriter
from pipeline.schemas import (
    DECODE_ERRORS,
    DOCUMENTS,
    EMPTY,
    KEPT,
    UNREADABLE,
    UNSUPPORTED,
)
from pipeline.text import dates
from pipeline.text.dates import FoundDate
from pipeline.text.path_fields import PathFields

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md"}
TABULAR_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}
DOCUMENT_SUFFIXES = {".docx", ".html", ".htm", ".pdf"}
SUPPORTED = TEXT_SUFFIXES | TABULAR_SUFFIXES | DOCUMENT_SUFFIXES
RESERVED = set(DOCUMENTS.columns)
# A batch of rows is written once it holds this many rows or characters of text. The
# batches are the row groups of documents.parquet, which clean reads one at a time: small
# enough that memory does not grow with the corpus (4M characters is about 12 MB of UTF-8).
BATCH_ROWS = 20_000
BATCH_CHARS = 4 * 1024 * 1024

_SENTENCE_END = tuple("。！？!?；;，,:：")
_TITLE_MAX_CHARS = 60


class IngestError(ValueError):
    """The raw folder cannot be used at all; the message says why."""


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
class _Doc:
    source: str
    record: int
    text: str
    format: str
    encoding: str | None = None
    title: str | None = None
    date: FoundDate | None = None
    # Where ``date`` came from (a DATE_SOURCES name) until the document's date is resolved.
    date_source: str | None = None
    part: str | None = None
    status: str | None = None
    reason: str | None = None
    metadata: dict[str, str | None] = field(default_factory=dict)


def ingest(files: Iterable[RawFile], params: IngestParams) -> pa.Table:
    """Turn raw files into the documents table, in file order, one row per unit."""
    return unify_batches(list(iter_ingest(files, params)))


def iter_ingest(
    files: Iterable[RawFile], params: IngestParams, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.Table]:
    """The documents table in batches (each with its own metadata columns), in file order."""
    split_re = re.compile(params.split_pattern, re.MULTILINE)
    path_fields = PathFields(params.path_pattern, params.folder_column)
    rows: list[dict] = []
    chars = 0
    for raw in tqdm(files, desc="ingest", unit="file", disable=None):
        docs = with_path_fields(parse_file(raw, params, split_re), path_fields, params)
        for row in _units(docs, params):
            rows.append(row)
            chars += len(row["text"])
        if len(rows) >= batch_rows or chars >= BATCH_CHARS:
            yield _to_table(rows)
            rows, chars = [], 0
    if rows:
        yield _to_table(rows)
    _check_path_pattern(path_fields)


def with_path_fields(docs: list[_Doc], path_fields: PathFields, params: IngestParams) -> list[_Doc]:
    """Add the path's metadata columns (columns of a record keep their own value) and resolve
    each document's date from the sources of ``ingest.date_sources``, first found wins."""
    if not docs:
        return docs
    info = path_fields.read(docs[0].source)
    for doc in docs:
        doc.metadata = {**info.fields, **doc.metadata}
        if doc.status is None:
            doc.date, doc.date_source = resolve_date(doc, info.date, params)
    return docs


def resolve_date(
    doc: _Doc, path_date: FoundDate | None, params: IngestParams
) -> tuple[FoundDate | None, str | None]:
    """The date of ``doc`` and its source: a date column, a date phrase in the first lines of
    the text, the title, then the path (a ``date``/``year`` group of the pattern, else a date
    in the file or folder names), in the order of ``ingest.date_sources``."""
    for source in params.date_sources:
        if source in ("column", "text") and doc.date_source == source:
            date = doc.date
        elif source == "text":
            date = dates.find_text_date(doc.text[: params.date_chars], params.date_lines)
        elif source == "title":
            date = dates.find_name_date(doc.title) if doc.title else None
        elif source == "path":
            date = path_date or dates.find_path_date(doc.source)
        else:
            date = None
        if date is not None:
            return date, source
    return None, None


def _check_path_pattern(path_fields: PathFields) -> None:
    if path_fields.pattern is None or not path_fields.files:
        return
    if not path_fields.matched:
        raise IngestError(
            f"{path_fields.summary()}: the pattern is searched in each path below the raw "
            "folder (POSIX, e.g. 2019/报告_张三.txt); fix or remove ingest.path_pattern"
        )
    if path_fields.matched < path_fields.files:
        log.warning("%s; those have no path fields", path_fields.summary())
    else:
        log.info("%s", path_fields.summary())


def parse_file(raw: RawFile, params: IngestParams, split_re: re.Pattern[str]) -> list[_Doc]:
    """One file's documents; a file that cannot be used gives one row saying why."""
    suffix = Path(raw.source).suffix.lower()
    fmt = suffix.lstrip(".") or "(none)"
    if raw.error is not None:
        return [_Doc(raw.source, 0, "", fmt, status=UNREADABLE, reason=raw.error)]
    if suffix not in SUPPORTED:
        reason = f"unsupported file type {suffix or '(none)'}; supported: {sorted(SUPPORTED)}"
        return [_Doc(raw.source, 0, "", fmt, status=UNSUPPORTED, reason=reason)]
    if not raw.data:
        return [_Doc(raw.source, 0, "", fmt, status=EMPTY, reason="0-byte file")]
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
        return [_Doc(raw.source, 0, "", fmt, status=exc.status, reason=exc.reason)]
    except Exception as exc:  # a library failing on a malformed file must not stop the run
        reason = f"cannot parse {suffix} file: {type(exc).__name__}: {exc}"
        return [_Doc(raw.source, 0, "", fmt, status=UNREADABLE, reason=reason)]
    if not docs:
        return [_Doc(raw.source, 0, "", fmt, status=EMPTY, reason="the file holds no records")]
    return docs


def doc_id(source: str, record: int, paragraph: int | None = None) -> str:
    """A stable id from where the text came from: same input, same id on every machine."""
    key = f"{source}\x1f{record}\x1f{'' if paragraph is None else paragraph}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def parse_date(value: str | None) -> dt.date | None:
    """The date of a date column's value (2022-09-16, 2022/9/16, 2022年9月16日, 20220916, 2022-09,
    2022; a time after it is ignored); a month or a year gives its first day."""
    found = dates.parse_date_value(value)
    return found.date if found else None


# --- encodings --------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", 3),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
)
# Legacy Chinese encodings tried when the bytes are not UTF-8, and the name recorded for each.
_LEGACY = ("gb18030", "big5")
# Bytes scored to choose an encoding; long enough for any real text, cheap for big files.
_SNIFF_BYTES = 64 * 1024
_MAGIC = {
    b"%PDF": "a PDF",
    b"PK\x03\x04": "a ZIP archive (docx, xlsx, ...)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0": "an old Office document",
    b"\x1f\x8b": "a gzip archive",
    b"PAR1": "a parquet file",
}
# Punctuation of Chinese text (the CJK block and full-width forms).
_GOOD_SYMBOLS = frozenset(
    [chr(c) for c in range(0x3000, 0x3040)]
    + [chr(c) for c in range(0xFF01, 0xFF5F)]
    + list("“”‘’—…·")
)
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    errors: int


@lru_cache(maxsize=1)
def common_hanzi() -> frozenset[str]:
    """The common characters of both scripts: GB2312 level 1 (3,755 Simplified) and Big5
    level 1 (5,401 Traditional), enumerated from the codecs themselves."""
    chars = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            chars.add(bytes([lead, trail]).decode("gb2312", errors="ignore"))
    for lead in range(0xA4, 0xC7):
        for trail in [*range(0x40, 0x7F), *range(0xA1, 0xFF)]:
            chars.add(bytes([lead, trail]).decode("big5", errors="ignore"))
    return frozenset(chars - {""})


def plausibility(text: str) -> float:
    """How much ``text`` reads like real (Chinese or Latin) text: the share of common
    characters, ASCII and CJK punctuation among the non-space characters, less twice the share
    of replacement, control and private-use characters (what a wrong codec leaves)."""
    common = common_hanzi()
    good = bad = total = 0
    for char in text:
        if char.isspace():
            continue
        total += 1
        if char in common or char in _GOOD_SYMBOLS or " " <= char <= "~":
            good += 1
        elif _BAD_CHARS.match(char):
            bad += 1
    return (good - 2 * bad) / total if total else 0.0


def decode(data: bytes, forced: str | None = None) -> Decoded:
    """Decode bytes: a BOM decides; then UTF-8 if valid; else the most plausible of UTF-8,
    GB18030 and Big5 (both legacy codecs accept most byte strings, so the first codec that
    succeeds is often wrong). Invalid sequences become U+FFFD and are counted."""
    if forced:
        return _decode_as(data, forced)
    for bom, encoding, size in _BOMS:
        if data.startswith(bom):
            return _decode_as(data[size:], encoding)
    try:
        return Decoded(data.decode("utf-8"), "utf-8", 0)
    except UnicodeDecodeError:
        pass
    return _decode_as(data, detect_encoding(data))


def detect_encoding(data: bytes) -> str:
    """The most plausible of UTF-8, GB18030 and Big5 for bytes that are not valid UTF-8."""
    sample = data[:_SNIFF_BYTES]
    scores = {}
    for encoding in ("utf-8", *_LEGACY):
        text = _decode_as(sample, encoding).text
        # The sample may end inside a character: do not count that against the codec.
        scores[encoding] = plausibility(text[:-1] if len(sample) < len(data) else text)
    return max(scores, key=lambda e: scores[e])  # ties go to the first listed


def _decode_as(data: bytes, encoding: str) -> Decoded:
    codecs_to_try = ("cp950", "big5hkscs") if encoding == "big5" else (encoding,)
    for codec in codecs_to_try:
        try:
            return Decoded(data.decode(codec), encoding, 0)
        except UnicodeDecodeError:
            continue
    text = data.decode(codecs_to_try[-1], errors="replace")
    return Decoded(text, encoding, text.count("\ufffd"))


def binary_kind(data: bytes, text: str) -> str | None:
    """Why bytes are not text (a known file signature, or mostly control characters), or None."""
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    sample = text[:4096]
    if sample and len(_BINARY_CHARS.findall(sample)) > 0.3 * len(sample):
        return "binary data (mostly control or invalid characters)"
    return None


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
) -> list[_Doc]:
    decoded = _decode_file(raw, params)
    text = _newlines(decoded.text)
    headings = list(split_re.finditer(text))
    doc = lambda record, body, **kw: _Doc(  # noqa: E731
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
    """Find a date-only line among the first non-empty lines; return it (as _Doc fields) and
    the text without it. Date phrases in other lines stay in the text (resolve_date)."""
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


def _parse_tabular(raw: RawFile, fmt: str, params: IngestParams) -> Iterator[_Doc]:
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
    text_column = params.text_column
    for index, (row, error) in enumerate(records):
        if row is None:
            yield _Doc(raw.source, index, "", fmt, encoding, status=UNREADABLE, reason=error)
            continue
        if text_column not in row:
            reason = (
                f"{raw.source}: record {index}: no text column {text_column!r} "
                f"(set ingest.text_column); its columns are {list(row)}"
            )
            if fmt not in ("json", "jsonl"):  # a table's columns are those of every row
                raise _Unusable(UNREADABLE, reason)
            yield _Doc(raw.source, index, "", fmt, encoding, status=UNREADABLE, reason=reason)
            continue
        text = row[text_column]
        yield _Doc(
            raw.source,
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
        if not row:
            continue
        if len(row) != len(columns):
            yield (
                None,
                f"{raw.source}: line {reader.line_num} has {len(row)} field(s), "
                f"the header has {len(columns)}",
            )
            continue
        yield dict(zip(columns, row, strict=True)), None


def _jsonl_records(raw: RawFile, text: str) -> Iterator[_Record]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield None, f"{raw.source}: line {line_no} is not valid JSON ({exc})"
            continue
        if not isinstance(obj, dict):
            yield None, f"{raw.source}: line {line_no} is not a JSON object"
            continue
        yield {k: _to_str(v) for k, v in obj.items()}, None


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
            yield {k: _to_str(v) for k, v in row.items()}, None


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


def _parse_docx(raw: RawFile) -> list[_Doc]:
    import docx  # python-docx; imported here so that other formats do not pay for it

    document = docx.Document(io.BytesIO(raw.data))
    text = "\n".join(p.text for p in document.paragraphs)
    title = (document.core_properties.title or "").strip() or _guess_title(text, raw.source)
    return [_Doc(raw.source, 0, text, "docx", title=title)]


def _parse_pdf(raw: RawFile) -> list[_Doc]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(raw.data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise _Unusable(UNREADABLE, f"{raw.source}: the PDF is encrypted")
    pages = [page.extract_text() or "" for page in reader.pages]
    text = "\n\n".join(p.strip("\n") for p in pages)
    if not text.strip():
        raise _Unusable(EMPTY, f"{raw.source}: the PDF has no text layer (a scan?)")
    title = (reader.metadata.title if reader.metadata else None) or _guess_title(text, raw.source)
    return [_Doc(raw.source, 0, text, "pdf", title=str(title).strip())]


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


def _parse_html(raw: RawFile, fmt: str, params: IngestParams) -> list[_Doc]:
    declared = None if params.encoding else _html_encoding(raw.data)
    decoded = _decode_as(raw.data, declared) if declared else _decode_file(raw, params)
    text, title = html_main_text(decoded.text)
    title = title or _guess_title(text, raw.source)
    return [_Doc(raw.source, 0, text, fmt, decoded.encoding, title=title)]


# --- units and the table ----------------------------------------------------------------------


def _units(docs: list[_Doc], params: IngestParams) -> Iterator[dict]:
    for doc in docs:
        parent = doc_id(doc.source, doc.record)
        base = {
            "parent_id": parent,
            "source": doc.source,
            "record": doc.record,
            "part": doc.part,
            "title": doc.title,
            "date": doc.date.date if doc.date else None,
            "date_source": doc.date_source if doc.date else None,
            "date_precision": doc.date.precision if doc.date else None,
            "format": doc.format,
            "encoding": doc.encoding,
            **doc.metadata,
        }
        if params.unit == "document" or doc.status is not None:
            paragraph = None if params.unit == "document" else 0
            yield {
                "doc_id": doc_id(doc.source, doc.record, paragraph),
                "paragraph": paragraph,
                "text": doc.text,
                **base,
                **_status(doc, doc.text),
            }
            continue
        paragraphs = split_paragraphs(doc.text, params.paragraph_min_chars) or [doc.text]
        for n, paragraph in enumerate(paragraphs):
            yield {
                "doc_id": doc_id(doc.source, doc.record, n),
                "paragraph": n,
                "text": paragraph,
                **base,
                **_status(doc, paragraph),
            }


def _status(doc: _Doc, text: str) -> dict:
    """Status, reason and decode_errors of one unit (a document or a paragraph)."""
    errors = text.count("\ufffd")
    if doc.status is not None:
        status, reason = doc.status, doc.reason
    elif not text.strip():
        status, reason = EMPTY, "no text in the record" if doc.record else "no text"
    elif errors:
        status = DECODE_ERRORS
        reason = f"{errors} invalid byte sequence(s) as {doc.encoding} replaced with U+FFFD"
    else:
        status, reason = KEPT, None
    return {"status": status, "reason": reason, "decode_errors": errors}


def split_paragraphs(text: str, min_chars: int) -> list[str]:
    """Split on blank lines (or on line breaks when there are none); join short pieces forward."""
    text = text.strip("\n")
    if re.search(r"\n[ \t\u3000]*\n", text):
        pieces = re.split(r"\n[ \t\u3000]*\n", text)
    else:
        pieces = text.split("\n")
    pieces = [p.strip("\n") for p in pieces if p.strip()]
    merged: list[str] = []
    pending = ""
    for piece in pieces:
        pending = f"{pending}\n{piece}" if pending else piece
        if _visible_len(pending) >= min_chars:
            merged.append(pending)
            pending = ""
    if pending:
        if merged:
            merged[-1] = f"{merged[-1]}\n{pending}"
        else:
            merged.append(pending)
    return merged


def _visible_len(text: str) -> int:
    return len(re.sub(r"\s", "", text))


def _to_table(rows: list[dict]) -> pa.Table:
    # Metadata columns in order of first appearance.
    meta_columns = [k for k in dict.fromkeys(k for row in rows for k in row) if k not in RESERVED]
    columns = {name: [row.get(name) for row in rows] for name in DOCUMENTS.columns}
    arrays = [pa.array(columns[f.name], type=f.type) for f in DOCUMENTS.schema]
    fields = list(DOCUMENTS.schema)
    for name in meta_columns:
        arrays.append(pa.array([row.get(name) for row in rows], type=pa.string()))
        fields.append(pa.field(name, pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def metadata_columns(batches: Iterable[pa.Schema]) -> list[str]:
    """The metadata columns of all batches, in order of first appearance."""
    names: dict[str, None] = {}
    for schema in batches:
        names.update((n, None) for n in schema.names if n not in RESERVED)
    return list(names)


def conform_batch(batch: pa.Table, meta_columns: list[str]) -> pa.Table:
    """A batch with every metadata column of the corpus (missing ones null), in one order."""
    table = DOCUMENTS.conform(batch).select(DOCUMENTS.columns)
    for name in meta_columns:
        column = batch.column(name) if name in batch.column_names else None
        if column is None:
            column = pa.nulls(batch.num_rows, pa.string())
        table = table.append_column(pa.field(name, pa.string()), column)
    return table


def unify_batches(batches: list[pa.Table]) -> pa.Table:
    if not batches:
        return conform_batch(DOCUMENTS.schema.empty_table(), [])
    meta = metadata_columns(b.schema for b in batches)
    return pa.concat_tables([conform_batch(b, meta) for b in batches])


# --- I/O ---------------------------------------------------------------------------------------


def list_raw_files(raw_dir: Path) -> list[Path]:
    """Every non-hidden file (or link) below ``raw_dir``, sorted by relative path.

    Linked folders are followed once; a link back to a folder already seen is listed (and
    later reported as unreadable) instead of being walked forever.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise IngestError(f"raw folder {raw_dir} does not exist; put your documents there")
    found: dict[str, Path] = {}
    seen_dirs = {_dir_key(raw_dir)}
    hidden = 0
    for folder, dirnames, filenames in os.walk(raw_dir, followlinks=True):
        folder_path = Path(folder)
        for name in sorted(dirnames):
            path = folder_path / name
            key = _dir_key(path)
            if name.startswith(".") or key in seen_dirs:
                dirnames.remove(name)
                if not name.startswith("."):
                    found[path.relative_to(raw_dir).as_posix()] = path
                else:
                    hidden += 1
            else:
                seen_dirs.add(key)
        for name in filenames:
            if name.startswith("."):
                hidden += 1
                continue
            path = folder_path / name
            found[path.relative_to(raw_dir).as_posix()] = path
    if hidden:
        log.info("ingest: ignoring %d hidden file(s) or folder(s) under %s", hidden, raw_dir)
    if not found:
        raise IngestError(f"raw folder {raw_dir} holds no files; put your documents there")
    return [found[name] for name in sorted(found)]


def _dir_key(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def read_raw_file(path: Path, raw_dir: Path) -> RawFile:
    """A file's bytes, or the reason it cannot be read."""
    source = path.relative_to(raw_dir).as_posix()
    try:
        if path.is_dir():
            return RawFile(source, error="a link to a folder already read (a symlink loop)")
        return RawFile(source, path.read_bytes())
    except OSError as exc:
        return RawFile(source, error=f"cannot read the file: {exc.strerror or exc}")


def read_raw_files(raw_dir: Path) -> Iterator[RawFile]:
    for path in list_raw_files(raw_dir):
        yield read_raw_file(path, raw_dir)


def main(params: Params, paths: Paths) -> None:
    """Ingest in batches to a spool, then write documents.parquet with the metadata columns of
    every batch, so memory holds one batch and one file, whatever the corpus size."""
    counts: Counter[str] = Counter()
    with Spool(paths.table("documents")) as spool:
        for batch in iter_ingest(read_raw_files(paths.raw), params.ingest):
            spool.write(batch)
            counts.update(batch.column("status").to_pylist())
        meta = metadata_columns(spool.schemas())
        with TableWriter(paths.table("documents"), DOCUMENTS) as writer:
            for batch in spool.read():
                writer.write(conform_batch(batch, meta))
    if not counts.get(KEPT) and not counts.get(DECODE_ERRORS):
        raise IngestError(
            f"{paths.raw}: no usable documents in the raw files ({dict(sorted(counts.items()))}); "
            f"see the status and reason columns of {paths.table('documents')}"
        )
    log.info(
        "ingest: %d %s(s) %s from %s -> %s",
        writer.num_rows,
        params.ingest.unit,
        dict(sorted(counts.items())),
        paths.raw,
        paths.table("documents"),
    )
