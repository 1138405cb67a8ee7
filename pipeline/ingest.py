"""Stage ingest: every file under the raw folder becomes documents (or paragraphs) in one table."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.config import IngestParams, Params
from pipeline.io import Paths, write_table
from pipeline.schemas import DOCUMENTS

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md"}
TABULAR_SUFFIXES = {".csv", ".tsv", ".jsonl", ".parquet"}
RESERVED = set(DOCUMENTS.columns)

_DATE = r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
# A date value; anything after a space or T (a time) is ignored.
_DATE_RE = re.compile(_DATE + r"(?:[ T].*)?$")
_COMPACT_DATE_RE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
# A line that holds a date and nothing else (a weekday or a time may follow).
_DATE_LINE_RE = re.compile(
    _DATE + r"\s*(?:(?:星期|周)[一二三四五六日天]|\d{1,2}:\d{2}(?::\d{2})?)?\s*$"
)
_SENTENCE_END = tuple("。！？!?；;，,:：")
_TITLE_MAX_CHARS = 60


class IngestError(ValueError):
    """A raw file cannot be used; the message names the file and the line or row."""


@dataclass(frozen=True)
class RawFile:
    """A file's bytes and its path relative to the raw folder (POSIX style)."""

    source: str
    data: bytes


@dataclass
class _Doc:
    source: str
    record: int
    text: str
    title: str | None = None
    date: dt.date | None = None
    part: str | None = None
    metadata: dict[str, str | None] = field(default_factory=dict)


def ingest(files: Iterable[RawFile], params: IngestParams) -> pa.Table:
    """Turn raw files into the documents table, in file order, one row per unit."""
    split_re = re.compile(params.split_pattern, re.MULTILINE)
    docs: list[_Doc] = []
    for raw in tqdm(files, desc="ingest", unit="file", disable=None):
        suffix = Path(raw.source).suffix.lower()
        if suffix in TEXT_SUFFIXES:
            docs.extend(_parse_text(raw, split_re))
        elif suffix in TABULAR_SUFFIXES:
            docs.extend(_parse_tabular(raw, suffix, params.text_column))
        else:
            raise IngestError(
                f"{raw.source}: unsupported file type {suffix or '(none)'}; "
                f"supported: {sorted(TEXT_SUFFIXES | TABULAR_SUFFIXES)}"
            )
    rows = list(_units(docs, params))
    return _to_table(rows)


def doc_id(source: str, record: int, paragraph: int | None = None) -> str:
    """A stable id from where the text came from: same input, same id on every machine."""
    key = f"{source}\x1f{record}\x1f{'' if paragraph is None else paragraph}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def parse_date(value: str | None) -> dt.date | None:
    """Parse 2022-09-16, 2022/9/16, 2022年9月16日 or 20220916 (a time after it is ignored)."""
    if not value:
        return None
    match = _DATE_RE.match(value) or _COMPACT_DATE_RE.match(value)
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def decode(raw: RawFile) -> str:
    """Decode UTF-8 (with or without BOM), else GB18030; otherwise UTF-8 with replacements."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.data.decode(encoding)
        except UnicodeDecodeError:
            continue
    text = raw.data.decode("utf-8", errors="replace")
    log.warning(
        "%s: not valid UTF-8 or GB18030; %d bad byte sequence(s) replaced with U+FFFD",
        raw.source,
        text.count("\ufffd"),
    )
    return text


# --- text files -------------------------------------------------------------------------------


def _parse_text(raw: RawFile, split_re: re.Pattern[str]) -> list[_Doc]:
    text = decode(raw).replace("\r\n", "\n").replace("\r", "\n")
    headings = list(split_re.finditer(text))
    if not headings:
        date, body = _take_date(text)
        return [_Doc(raw.source, 0, body, title=_guess_title(body, raw.source), date=date)]
    docs = []
    preamble_date, preamble = _take_date(text[: headings[0].start()])
    preamble = _drop_line(preamble, headings[0].group("title").strip())
    if preamble.strip():
        title = _guess_title(preamble, raw.source)
        docs.append(_Doc(raw.source, 0, preamble, title=title, date=preamble_date))
    has_part = "part" in split_re.groupindex
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        date, body = _take_date(text[match.end() : end])
        docs.append(
            _Doc(
                raw.source,
                i + 1,
                body,
                title=match.group("title").strip(),
                date=date or preamble_date,
                part=match.group("part") if has_part else None,
            )
        )
    return docs


def _take_date(text: str, lines_to_search: int = 5) -> tuple[dt.date | None, str]:
    """Find a date-only line among the first non-empty lines; return it and the text without it."""
    lines = text.split("\n")
    seen = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        date = parse_date(line) if _DATE_LINE_RE.match(line) else None
        if date:
            return date, "\n".join(lines[:i] + lines[i + 1 :])
        seen += 1
        if seen >= lines_to_search:
            break
    return None, text


def _drop_line(text: str, line_text: str) -> str:
    """Remove the lines equal to ``line_text`` (a compilation's title repeated in its preamble)."""
    return "\n".join(line for line in text.split("\n") if line.strip() != line_text)


def _guess_title(text: str, source: str) -> str:
    """The first line when it reads like a heading, else the file name without its suffix."""
    for line in text.split("\n"):
        line = line.strip()
        if line:
            if len(line) <= _TITLE_MAX_CHARS and not line.endswith(_SENTENCE_END):
                return line
            break
    return Path(source).stem


# --- tabular files ----------------------------------------------------------------------------


def _parse_tabular(raw: RawFile, suffix: str, text_column: str) -> Iterator[_Doc]:
    if suffix == ".parquet":
        rows = _parquet_rows(raw)
    elif suffix == ".jsonl":
        rows = _jsonl_rows(raw)
    else:
        rows = _csv_rows(raw, delimiter="\t" if suffix == ".tsv" else ",")
    for index, (row, columns) in enumerate(rows):
        if text_column not in row:
            raise IngestError(
                f"{raw.source}: no text column {text_column!r} (set ingest.text_column); "
                f"its columns are {columns}"
            )
        text = row[text_column]
        metadata = {_meta_name(k): v for k, v in row.items() if k != text_column}
        yield _Doc(
            raw.source,
            index,
            "" if text is None else text,
            title=row.get("title") or None,
            date=parse_date(row.get("date")),
            metadata=metadata,
        )


def _meta_name(column: str) -> str:
    """Metadata keeps its column name, unless that name is one of the table's own columns."""
    return f"meta_{column}" if column in RESERVED else column


def _csv_rows(raw: RawFile, delimiter: str) -> Iterator[tuple[dict, list[str]]]:
    csv.field_size_limit(2**31 - 1)  # the default (128 KiB) is shorter than many articles
    reader = csv.reader(io.StringIO(decode(raw), newline=""), delimiter=delimiter)
    try:
        yield from _csv_records(raw, reader)
    except csv.Error as exc:
        raise IngestError(f"{raw.source}: line {reader.line_num}: not valid CSV ({exc})") from exc


def _csv_records(raw: RawFile, reader) -> Iterator[tuple[dict, list[str]]]:
    header = next(reader, None)
    if header is None:
        return
    columns = [c.strip() for c in header]
    for row in reader:
        if not row:
            continue
        if len(row) != len(columns):
            raise IngestError(
                f"{raw.source}: line {reader.line_num} has {len(row)} field(s), "
                f"the header has {len(columns)}"
            )
        yield dict(zip(columns, row, strict=True)), columns


def _jsonl_rows(raw: RawFile) -> Iterator[tuple[dict, list[str]]]:
    for line_no, line in enumerate(decode(raw).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IngestError(f"{raw.source}: line {line_no} is not valid JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise IngestError(f"{raw.source}: line {line_no} is not a JSON object")
        yield {k: _to_str(v) for k, v in obj.items()}, list(obj)


def _parquet_rows(raw: RawFile) -> Iterator[tuple[dict, list[str]]]:
    table = pq.read_table(pa.BufferReader(raw.data))
    columns = table.column_names
    for row in table.to_pylist():
        yield {k: _to_str(v) for k, v in row.items()}, columns


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
            "date": doc.date,
            **doc.metadata,
        }
        if params.unit == "document":
            yield {"doc_id": parent, "paragraph": None, "text": doc.text, **base}
            continue
        paragraphs = split_paragraphs(doc.text, params.paragraph_min_chars) or [doc.text]
        for n, paragraph in enumerate(paragraphs):
            yield {
                "doc_id": doc_id(doc.source, doc.record, n),
                "paragraph": n,
                "text": paragraph,
                **base,
            }


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


# --- I/O ---------------------------------------------------------------------------------------


def list_raw_files(raw_dir: Path) -> list[Path]:
    """Every non-hidden file below ``raw_dir``, sorted by relative path."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise IngestError(f"raw folder {raw_dir} does not exist; put your documents there")
    found = {p.relative_to(raw_dir).as_posix(): p for p in raw_dir.rglob("*") if p.is_file()}
    files = [found[name] for name in sorted(found) if not _is_hidden(Path(name))]
    if len(files) < len(found):
        log.info("ingest: ignoring %d hidden file(s) under %s", len(found) - len(files), raw_dir)
    if not files:
        raise IngestError(f"raw folder {raw_dir} holds no files; put your documents there")
    return files


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def read_raw_files(raw_dir: Path) -> Iterator[RawFile]:
    for path in list_raw_files(raw_dir):
        yield RawFile(path.relative_to(raw_dir).as_posix(), path.read_bytes())


def main(params: Params, paths: Paths) -> None:
    table = ingest(read_raw_files(paths.raw), params.ingest)
    if table.num_rows == 0:
        raise IngestError(f"{paths.raw}: no documents found in the raw files")
    write_table(table, paths.table("documents"), DOCUMENTS)
    log.info(
        "ingest: %d %s(s) from %s -> %s",
        table.num_rows,
        params.ingest.unit,
        paths.raw,
        paths.table("documents"),
    )
