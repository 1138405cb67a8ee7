"""All file access of the pipeline: parquet and JSON, schema-checked, atomic and deterministic."""

from __future__ import annotations

import bisect
import glob
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.precision import round_data, round_table
from pipeline.schemas import SchemaError, TableSchema

ROW_GROUP_SIZE = 64 * 1024


@dataclass(frozen=True)
class Paths:
    """Where a run reads and writes; every stage takes its files from here."""

    raw: Path = Path("data/raw")
    processed: Path = Path("data/processed")
    models: Path = Path("models")
    metrics: Path = Path("metrics")

    def __post_init__(self) -> None:
        for name in ("raw", "processed", "models", "metrics"):
            object.__setattr__(self, name, Path(getattr(self, name)))

    @classmethod
    def under(cls, raw: Path | str, out: Path | str) -> Paths:
        """The layout of ``zhtopics run --out DIR``: everything below one folder."""
        out = Path(out)
        return cls(raw=raw, processed=out, models=out / "models", metrics=out / "metrics")

    def table(self, name: str) -> Path:
        return self.processed / f"{name}.parquet"


# Temporary files and folders of an atomic write end in this; a run that was killed leaves
# them (hidden, beside the output), and the next write of the same output deletes them.
TMP_SUFFIX = ".tmp"


def pause_point(name: str) -> None:
    """For tests of killed runs: with ``ZHTOPICS_TEST_PAUSE=name:marker`` in the environment,
    write the file ``marker`` and wait here (until the test kills the process)."""
    setting = os.environ.get("ZHTOPICS_TEST_PAUSE", "")
    point, _, marker = setting.partition(":")
    if point == name and marker:
        Path(marker).write_text(f"{os.getpid()}\n", encoding="utf-8")
        time.sleep(3600)


def _remove_leftovers(path: Path) -> None:
    """Temporary files or folders of an earlier write of ``path`` that was killed."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*{TMP_SUFFIX}"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that is renamed onto it only on success: a run
    killed at any moment leaves the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        pause_point(path.name)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _existing(path: Path, schema: TableSchema) -> Path:
    path = Path(path)
    if not path.is_file() and not (path.is_dir() and part_files(path)):
        raise FileNotFoundError(
            f"{path}: the {schema.name} table is missing; run the stage that writes it first"
        )
    return path


def part_files(path: Path) -> list[Path]:
    """The parquet files of a table: the file itself, or the part files of a dataset folder
    (as the Spark engine writes, ``part-00000.parquet``, ...) in name order, which is row
    order. Hidden and ``_``-prefixed files (``_SUCCESS``) are not parts."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.suffix == ".parquet" and not p.name.startswith(("_", "."))
    )


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A parquet file or dataset folder as one table (part files in order)."""
    parts = [pq.read_table(p, columns=columns) for p in part_files(path)]
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="default")


def read_table(path: Path, schema: TableSchema, without: Iterable[str] = ()) -> pa.Table:
    """Read a parquet file (or dataset folder) and check it against ``schema``; the error names
    the file. Columns named in ``without`` are not read (nor required).
    """
    path = _existing(path, schema)
    skip = set(without)
    if not skip:
        return schema.conform(_read_parquet(path), where=str(path))
    names = [n for n in pq.read_schema(part_files(path)[0]).names if n not in skip]
    kept = schema.subset(c for c in schema.columns if c not in skip)  # extras pass as read
    return kept.conform(_read_parquet(path, columns=names), where=str(path))


def iter_tables(
    path: Path,
    schema: TableSchema,
    batch_rows: int = ROW_GROUP_SIZE,
    columns: list[str] | None = None,
) -> Iterator[pa.Table]:
    """Stream a parquet file (or dataset folder) as schema-checked tables of at most
    ``batch_rows`` rows.

    An empty table yields one empty table, so that a stage still writes its (empty) output.
    With ``columns``, only those (the ones the file has, for metadata columns) are read.
    """
    path = _existing(path, schema)
    files = [pq.ParquetFile(p) for p in part_files(path)]
    present = None
    if columns is not None:
        present = _present(files[0].schema_arrow, columns)
        schema = schema.subset(columns)
    if sum(f.metadata.num_rows for f in files) == 0:
        empty = files[0].schema_arrow.empty_table()
        yield schema.conform(empty if present is None else empty.select(present), str(path))
        return
    for parquet in files:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
            yield schema.conform(pa.Table.from_batches([batch]), where=str(path))


@dataclass(frozen=True)
class TableFile:
    """A parquet table read in pieces (``iter_tables``) each time it is iterated: for a step
    that needs a large table more than once without holding it."""

    path: Path
    schema: TableSchema
    batch_rows: int = ROW_GROUP_SIZE
    columns: list[str] | None = None

    def __iter__(self) -> Iterator[pa.Table]:
        return iter_tables(self.path, self.schema, self.batch_rows, self.columns)


def release_arrow_memory() -> None:
    """Give the pages Arrow's allocator keeps after a large streamed read back to the system
    (mimalloc holds on to hundreds of MB of freed pieces; the next stage step may need them)."""
    pa.default_memory_pool().release_unused()


def table_pieces(source: pa.Table | Iterable[pa.Table]) -> Iterable[pa.Table]:
    """A table as the one piece of itself; pieces (e.g. from ``iter_tables``) as they are."""
    return [source] if isinstance(source, pa.Table) else source


def row_spans(offsets: Sequence[int], size: int) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges [start, stop), row i spanning ``offsets[i]:offsets[i + 1]`` (text
    bytes, tokens, stored counts), each as many rows as fit in ``size`` and at least one. No
    rows give the one empty range (0, 0), so that a table always gives a slice."""
    rows = len(offsets) - 1
    if rows <= 0:
        yield 0, 0
    start = 0
    while start < rows:
        stop = bisect.bisect_right(offsets, int(offsets[start]) + size) - 1
        stop = min(max(stop, start + 1), rows)
        yield start, stop
        start = stop


def _present(file_schema: pa.Schema, columns: list[str]) -> list[str]:
    """``columns`` that the file has. A declared one it lacks is left for ``conform`` to
    refuse, naming the file."""
    return [c for c in dict.fromkeys(columns) if c in file_schema.names]


class TableWriter:
    """Write a table in pieces (row groups) to a temporary file renamed into place on close.

    Deterministic: the same pieces give the same bytes (no timestamps, fixed row-group size).
    """

    def __init__(self, path: Path, schema: TableSchema) -> None:
        self.path = Path(path)
        self.schema = schema
        self._atomic = atomic_path(self.path)
        self._writer: pq.ParquetWriter | None = None
        self.num_rows = 0

    def __enter__(self) -> TableWriter:
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, table: pa.Table) -> None:
        table = self.schema.conform(table, where=f"{self.path} (on write)")
        # Floats at the published precision: the same bytes on any CPU (pipeline/precision.py).
        table = round_table(table.replace_schema_metadata(None))
        if self._writer is None:
            # Min/max of list elements serve no reader, and cost a tenth of writing tokens.
            flat = [f.name for f in table.schema if not pa.types.is_nested(f.type)]
            self._writer = pq.ParquetWriter(
                self._tmp, table.schema, compression="zstd", write_statistics=flat
            )
        elif not table.schema.equals(self._writer.schema):
            raise SchemaError(
                f"{self.path}: a piece has schema {table.schema}, "
                f"earlier pieces {self._writer.schema}"
            )
        self._writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self.num_rows += table.num_rows

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is None and exc_type is None:
            self.write(self.schema.schema.empty_table())
        if self._writer is not None:
            self._writer.close()
        self._atomic.__exit__(exc_type, exc, tb)


def write_table(table: pa.Table, path: Path, schema: TableSchema) -> None:
    """Write a whole table atomically; same table, same bytes."""
    with TableWriter(path, schema) as writer:
        writer.write(table)


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write small JSON (metrics, reports) atomically with sorted keys and a final newline;
    floats at the published precision (pipeline/precision.py)."""
    text = json.dumps(round_data(data), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class Spool:
    """Temporary parquet parts beside ``path``, for a stage that must see all its output
    before writing it (a column set or a count known only at the end), without holding it
    in memory. The parts are deleted on exit."""

    def __init__(self, path: Path, compression: str = "zstd", use_dictionary: bool = True) -> None:
        self.path = Path(path)
        # A spool read back at once by the same stage may trade disk space for speed.
        self.compression = compression
        self.use_dictionary = use_dictionary
        self._parts: list[Path] = []
        self._dir: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Spool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.path.name}-spool."
        for stale in self.path.parent.glob(f"{glob.escape(prefix)}*"):  # of a killed run
            shutil.rmtree(stale, ignore_errors=True)
        self._dir = tempfile.TemporaryDirectory(prefix=prefix, dir=self.path.parent)
        return self

    def write(self, table: pa.Table) -> None:
        part = Path(self._dir.name) / f"{len(self._parts):06d}.parquet"
        pq.write_table(
            table, part, compression=self.compression, use_dictionary=self.use_dictionary
        )
        self._parts.append(part)

    def schemas(self) -> Iterator[pa.Schema]:
        for part in self._parts:
            yield pq.read_schema(part)

    def read(self) -> Iterator[pa.Table]:
        """The parts in the order written, each as it was written."""
        for part in self._parts:
            yield pq.read_table(part)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._dir.cleanup()


def raw_folder(source: Path, tmp: Path) -> Path:
    """A raw folder for ``source``: the folder itself, or for one file a folder below ``tmp``
    holding a link to it (read in place, not copied)."""
    source = Path(source)
    if not source.is_file():
        return source
    raw = Path(tmp) / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / source.name).symlink_to(source.resolve())
    return raw


def read_optional(path: Path, schema: TableSchema | None) -> pa.Table | None:
    """The table at ``path``, or None when no stage of this run wrote it.

    Checked against ``schema`` when the table is declared in this version of the pipeline;
    without a schema (a table a newer stage writes) the caller checks the columns it needs.
    """
    path = Path(path)
    if not path.is_file() and not (path.is_dir() and part_files(path)):
        return None
    table = _read_parquet(path)
    return schema.conform(table, where=str(path)) if schema is not None else table


@contextmanager
def atomic_folder(directory: Path) -> Iterator[Path]:
    """A fresh folder beside ``directory`` to fill; on success it replaces ``directory`` whole.

    Nothing stale from an earlier run survives, and a failed write leaves the old folder. The
    old folder is renamed aside before the new one is renamed into place, so a run killed at
    any moment leaves the old folder whole, the new one whole, or (between the two renames)
    none; never a part. Leftovers are deleted by the next write.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(directory)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=TMP_SUFFIX, dir=directory.parent)
    )
    old = tmp.with_name(f".{directory.name}.old{TMP_SUFFIX}")
    try:
        tmp.chmod(0o755)
        yield tmp
        pause_point(directory.name)
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)


def write_folder(files: dict[str, bytes], directory: Path) -> None:
    """Replace ``directory`` by exactly ``files`` (name -> bytes)."""
    with atomic_folder(directory) as tmp:
        for name, data in sorted(files.items()):
            (tmp / name).write_bytes(data)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
