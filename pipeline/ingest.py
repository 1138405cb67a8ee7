"""Stage ingest: every file under the raw folder becomes documents (or paragraphs), each with a
format, an encoding and a status; a file that cannot be used gets one row that says why.

Decoding is in ``pipeline/text/decode.py``, the file-format parsers in
``pipeline/text/formats.py``; this module walks the raw folder, cuts units and builds the table."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from pipeline.config import IngestParams, Params
from pipeline.io import Paths, Spool, TableWriter
from pipeline.schemas import (
    DECODE_ERRORS,
    DOCUMENTS,
    EMPTY,
    KEPT,
)
from pipeline.text import dates
from pipeline.text.dates import FoundDate
from pipeline.text.formats import RESERVED, ParsedDoc, RawFile, parse_file
from pipeline.text.path_fields import PathFields

log = logging.getLogger(__name__)
# A batch of rows is written once it holds this many rows or characters of text. The
# batches are the row groups of documents.parquet, which clean reads one at a time: small
# enough that memory does not grow with the corpus (4M characters is about 12 MB of UTF-8).
BATCH_ROWS = 20_000
BATCH_CHARS = 4 * 1024 * 1024


class IngestError(ValueError):
    """The raw folder cannot be used at all; the message says why."""


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
    check_path_pattern(path_fields)


def with_path_fields(
    docs: list[ParsedDoc], path_fields: PathFields, params: IngestParams
) -> list[ParsedDoc]:
    """Add the path's metadata columns (columns of a record keep their own value) and resolve
    each document's date from the sources of ``ingest.date_sources``, first found wins."""
    if not docs:
        return docs
    info = path_fields.read(docs[0].source)
    path_date = info.date
    if path_date is None and "path" in params.date_sources:
        path_date = dates.find_path_date(docs[0].source)  # once per file, not per record
    for doc in docs:
        doc.metadata = {**info.fields, **doc.metadata}
        if doc.status is None:
            doc.date, doc.date_source = resolve_date(doc, path_date, params)
    return docs


def resolve_date(
    doc: ParsedDoc, path_date: FoundDate | None, params: IngestParams
) -> tuple[FoundDate | None, str | None]:
    """The date of ``doc`` and its source: a date column, a date phrase in the first lines of
    the text, the title, then the path (``path_date``: a ``date``/``year`` group of the
    pattern, else a date in the file or folder names), in the order of ``ingest.date_sources``."""
    for source in params.date_sources:
        if source in ("column", "text") and doc.date_source == source:
            date = doc.date
        elif source == "text":
            date = dates.find_text_date(doc.text[: params.date_chars], params.date_lines)
        elif source == "title":
            date = dates.find_name_date(doc.title) if doc.title else None
        elif source == "path":
            date = path_date
        else:
            date = None
        if date is not None:
            return date, source
    return None, None


def check_path_pattern(path_fields: PathFields) -> None:
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


def doc_id(source: str, record: int, paragraph: int | None = None) -> str:
    """A stable id from where the text came from: same input, same id on every machine."""
    key = f"{source}\x1f{record}\x1f{'' if paragraph is None else paragraph}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


# --- units and the table ----------------------------------------------------------------------


def _units(docs: list[ParsedDoc], params: IngestParams) -> Iterator[dict]:
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
                **unit_status(doc, doc.text),
            }
            continue
        paragraphs = split_paragraphs(doc.text, params.paragraph_min_chars) or [doc.text]
        for n, paragraph in enumerate(paragraphs):
            yield {
                "doc_id": doc_id(doc.source, doc.record, n),
                "paragraph": n,
                "text": paragraph,
                **base,
                **unit_status(doc, paragraph),
            }


def unit_status(doc: ParsedDoc, text: str) -> dict:
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
    return [Path(path) for _, path in _walk_raw(Path(raw_dir))]


def _walk_raw(raw_dir: Path) -> list[tuple[str, str]]:
    """(relative POSIX name, path) of every file list_raw_files() lists, in its order. Plain
    strings: a corpus of 15,000 small files should not pay for a Path object per step."""
    if not raw_dir.is_dir():
        raise IngestError(f"raw folder {raw_dir} does not exist; put your documents there")
    found: dict[str, str] = {}
    seen_dirs = {_dir_key(str(raw_dir))}
    hidden = 0
    root = os.path.join(str(raw_dir), "")  # with a trailing separator: cut from every path
    for folder, dirnames, filenames in os.walk(raw_dir, followlinks=True):
        prefix = _relative(folder, root)
        for name in sorted(dirnames):
            path = os.path.join(folder, name)
            key = _dir_key(path)
            if name.startswith(".") or key in seen_dirs:
                dirnames.remove(name)
                if not name.startswith("."):
                    found[prefix + name] = path
                else:
                    hidden += 1
            else:
                seen_dirs.add(key)
        for name in filenames:
            if name.startswith("."):
                hidden += 1
                continue
            found[prefix + name] = os.path.join(folder, name)
    if hidden:
        log.info("ingest: ignoring %d hidden file(s) or folder(s) under %s", hidden, raw_dir)
    if not found:
        raise IngestError(f"raw folder {raw_dir} holds no files; put your documents there")
    return [(name, found[name]) for name in sorted(found)]


def _relative(folder: str, root: str) -> str:
    """The POSIX prefix (``a/b/``, or empty) of the files of ``folder`` below ``root``."""
    if not folder.startswith(root):
        return ""  # the root itself
    return folder[len(root) :].replace(os.sep, "/") + "/"


def _dir_key(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def read_raw_file(path: Path | str, raw_dir: Path, source: str | None = None) -> RawFile:
    """A file's bytes, or the reason it cannot be read."""
    source = source or Path(path).relative_to(raw_dir).as_posix()
    try:
        return RawFile(source, _read_bytes(path))
    except IsADirectoryError:
        return RawFile(source, error="a link to a folder already read (a symlink loop)")
    except OSError as exc:
        return RawFile(source, error=f"cannot read the file: {exc.strerror or exc}")


def _read_bytes(path: Path | str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def read_raw_files(raw_dir: Path) -> Iterator[RawFile]:
    for source, path in _walk_raw(Path(raw_dir)):
        yield read_raw_file(path, raw_dir, source)


def require_usable(counts: Mapping[str, int], raw: object, documents: object) -> None:
    """Stop when no document of the raw files can be used (``counts``: documents per status),
    naming the raw folder and the documents table whose status and reason columns say why."""
    if not counts.get(KEPT) and not counts.get(DECODE_ERRORS):
        raise IngestError(
            f"{raw}: no usable documents in the raw files ({dict(sorted(counts.items()))}); "
            f"see the status and reason columns of {documents}"
        )


def main(params: Params, paths: Paths) -> None:
    """Ingest in batches to a spool, then write documents.parquet with the metadata columns of
    every batch, so memory holds one batch and one file, whatever the corpus size."""
    counts: Counter[str] = Counter()
    with Spool(paths.table("documents"), compression="none") as spool:  # read back at once
        for batch in iter_ingest(read_raw_files(paths.raw), params.ingest):
            spool.write(batch)
            counts.update(batch.column("status").to_pylist())
        meta = metadata_columns(spool.schemas())
        with TableWriter(paths.table("documents"), DOCUMENTS) as writer:
            for batch in spool.read():
                writer.write(conform_batch(batch, meta))
    require_usable(counts, paths.raw, paths.table("documents"))
    log.info(
        "ingest: %d %s(s) %s from %s -> %s",
        writer.num_rows,
        params.ingest.unit,
        dict(sorted(counts.items())),
        paths.raw,
        paths.table("documents"),
    )
