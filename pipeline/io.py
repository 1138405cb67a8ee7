"""All file access of the pipeline: parquet and JSON, schema-checked, atomic and deterministic."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schemas import TableSchema

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
    def under(cls, raw: Path, out: Path) -> Paths:
        """The layout of ``zhtopics run --out DIR``: everything below one folder."""
        return cls(raw=raw, processed=out, models=out / "models", metrics=out / "metrics")

    def table(self, name: str) -> Path:
        return self.processed / f"{name}.parquet"


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that is renamed onto it only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def read_table(path: Path, schema: TableSchema) -> pa.Table:
    """Read a parquet file and check it against ``schema``; the error names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the {schema.name} table is missing; run the stage that writes it first"
        )
    return schema.conform(pq.read_table(path), where=str(path))


def write_table(table: pa.Table, path: Path, schema: TableSchema) -> None:
    """Write ``table`` atomically; same table, same bytes (no timestamps, fixed row groups)."""
    table = schema.conform(table, where=f"{path} (on write)")
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            row_group_size=ROW_GROUP_SIZE,
            compression="zstd",
            write_statistics=True,
            store_schema=True,
        )


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write small JSON (metrics, reports) atomically with sorted keys and a final newline."""
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
