"""One run's outputs as one object, for the report and the notebooks (which fit nothing).

The tables every run writes are required; the tables of optional stages (ingest report,
cleaning audit, K sweep, representative documents, prevalence by group, the compare stage's
groups, keyness, contrasts, trends and concordance lines, the pyLDAvis page) are
None when this run did not write them, so a picture can say so instead of failing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.io import Paths, read_json, read_optional, read_table
from pipeline.schemas import ALL

# Set to a ``zhtopics run --out`` folder to explore that run instead of the project's own.
OUT_VARIABLE = "ZHTOPICS_OUT"
REQUIRED = (
    "documents",
    "clean",
    "tokens",
    "vocabulary",
    "doc_terms",
    "keywords",
    "topic_terms",
    "doc_topics",
    "topics",
)
OPTIONAL = (
    "ingest_report",
    "clean_audit",
    "sweep",
    "representative_docs",
    "topic_prevalence",
    "new_words",
    "compare_groups",
    "keyness",
    "topic_contrasts",
    "topic_trends",
    "topic_kwic",
    "robustness",
)


@dataclass(frozen=True)
class Results:
    """The tables and metrics of one pipeline run; optional ones are None when absent."""

    documents: pa.Table
    clean: pa.Table
    tokens: pa.Table
    vocabulary: pa.Table
    doc_terms: pa.Table
    keywords: pa.Table
    topic_terms: pa.Table
    doc_topics: pa.Table
    topics: pa.Table
    lda_metrics: dict[str, Any]
    ingest_report: pa.Table | None = None
    clean_audit: pa.Table | None = None
    sweep: pa.Table | None = None
    representative_docs: pa.Table | None = None
    topic_prevalence: pa.Table | None = None
    new_words: pa.Table | None = None
    compare_groups: pa.Table | None = None
    keyness: pa.Table | None = None
    topic_contrasts: pa.Table | None = None
    topic_trends: pa.Table | None = None
    topic_kwic: pa.Table | None = None
    robustness: pa.Table | None = None
    sweep_metrics: dict[str, Any] | None = None
    ingest_metrics: dict[str, Any] | None = None
    lda_vis: Path | None = None


def locate_outputs(start: Path | str | None = None) -> Paths:
    """Where to read: ``$ZHTOPICS_OUT`` (a ``zhtopics run --out`` folder) if set, else the
    DVC layout of the project that contains ``start`` (default: the working directory).
    """
    out = os.environ.get(OUT_VARIABLE)
    if out:
        return Paths.under(Path(out) / "raw", out)
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return Paths(
                folder / "data/raw",
                folder / "data/processed",
                folder / "models",
                folder / "metrics",
            )
    raise FileNotFoundError(
        f"{here}: not inside the zhtopics project (no dvc.yaml above it); "
        f"set {OUT_VARIABLE} to a `zhtopics run --out` folder"
    )


def _optional_json(path: Path) -> dict[str, Any] | None:
    return read_json(path) if path.is_file() else None


def load_results(paths: Paths, without: Mapping[str, Iterable[str]] | None = None) -> Results:
    """Read every table of a run, checking each against its schema where one is declared.

    ``without`` names columns not to read, by table (the report leaves out the texts and the
    token lists, most of the memory of a large run).
    """
    without = without or {}
    required = {
        name: read_table(paths.table(name), ALL[name], without.get(name, ())) for name in REQUIRED
    }
    optional = {name: read_optional(paths.table(name), ALL.get(name)) for name in OPTIONAL}
    lda_vis = paths.processed / "lda_vis.html"
    return Results(
        **required,
        **optional,
        lda_metrics=read_json(paths.metrics / "lda.json"),
        sweep_metrics=_optional_json(paths.metrics / "sweep.json"),
        ingest_metrics=_optional_json(paths.metrics / "ingest.json"),
        lda_vis=lda_vis if lda_vis.is_file() else None,
    )
