"""Hand-built tables in the shapes of the optional outputs (ingest report, audit, sweep,
representative documents, prevalence), for drawing tests independent of a pipeline run, and a
copy of a run without them, for the "this run has no …" branches of the report and notebooks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa

from pipeline import report_tables
from pipeline.io import Paths
from pipeline.results import OPTIONAL

OPTIONAL_TABLES = OPTIONAL  # every optional table a run may lack
OPTIONAL_FILES = ("lda_vis.html",)
OPTIONAL_METRICS = ("sweep.json", "ingest.json")


def ingest_report(documents: pa.Table) -> pa.Table:
    n = documents.num_rows
    return pa.table(
        {
            "dimension": ["status", "status", "encoding", "encoding", "format"],
            "value": ["kept", "unreadable", "utf-8", "gb18030", "txt"],
            "count": pa.array([n, 1, n - 2, 2, n + 1], pa.int64()),
            "files": pa.array([1, 1, 1, 1, 2], pa.int64()),
        }
    )


def clean_audit(documents: pa.Table) -> pa.Table:
    ids = documents.column("doc_id").to_pylist()[:6]
    rules = ["nfkc", "invisible", "replacements", "nfkc", "spacing", "replacements"]
    return pa.table(
        {
            "doc_id": ids,
            "rule": rules[: len(ids)],
            "n_matches": pa.array([3, 1, 2, 5, 4, 1][: len(ids)], pa.int64()),
            "chars_removed": pa.array([3, 1, 0, 5, 8, 2][: len(ids)], pa.int64()),
        }
    )


def sweep() -> pa.Table:
    rows = [(k, seed) for k in (4, 6, 8, 10) for seed in (1, 2)]
    return pa.table(
        {
            "k": pa.array([k for k, _ in rows], pa.int32()),
            "seed": pa.array([s for _, s in rows], pa.int64()),
            "c_npmi": [0.01 * (k % 7) - 0.002 * s for k, s in rows],
            "c_v": [0.4 + 0.01 * k + 0.003 * s for k, s in rows],
            "u_mass": [-2.0 - 0.1 * k for k, _ in rows],
            "diversity": [1.0 - 0.03 * k for k, _ in rows],
            "perplexity": [900.0 - 20 * k + 5 * s for k, s in rows],
            "stability": [0.9 - 0.02 * k for k, _ in rows],
        }
    )


def _mixes(doc_topics: pa.Table) -> dict[str, list[float]]:
    mixes: dict[str, list[float]] = {}
    for doc, topic, weight in zip(
        *(doc_topics.column(c).to_pylist() for c in ("doc_id", "topic", "weight")), strict=True
    ):
        mix = mixes.setdefault(doc, [])
        mix.extend([0.0] * (topic + 1 - len(mix)))
        mix[topic] = weight
    return mixes


def _pairs(table: pa.Table, key: str, value: str) -> dict:
    return dict(zip(table.column(key).to_pylist(), table.column(value).to_pylist(), strict=True))


def representative_docs(documents, clean, doc_topics, per_topic: int = 3) -> pa.Table:
    mixes = _mixes(doc_topics)
    titles = _pairs(documents, "doc_id", "title")
    texts = _pairs(clean, "doc_id", "text")
    k = max(len(m) for m in mixes.values())
    out = {"topic": [], "rank": [], "doc_id": [], "weight": [], "title": [], "snippet": []}
    for topic in range(k):
        best = sorted(mixes, key=lambda d: (-mixes[d][topic], d))[:per_topic]
        for rank, doc in enumerate(best, start=1):
            out["topic"].append(topic)
            out["rank"].append(rank)
            out["doc_id"].append(doc)
            out["weight"].append(mixes[doc][topic])
            out["title"].append(titles[doc])
            out["snippet"].append(texts[doc][:60])
    return pa.table(
        {
            "topic": pa.array(out["topic"], pa.int32()),
            "rank": pa.array(out["rank"], pa.int32()),
            "doc_id": out["doc_id"],
            "weight": out["weight"],
            "title": out["title"],
            "snippet": out["snippet"],
        }
    )


def topic_prevalence(documents: pa.Table, doc_topics: pa.Table) -> pa.Table:
    """Mean topic weight per speech (column ``speech``) and per made-up month of each speech."""
    mixes = _mixes(doc_topics)
    speech = report_tables.group_labels(documents, "parent_id")
    names = sorted(set(speech.values()))
    month = {name: f"2022-{i + 1:02d}" for i, name in enumerate(names)}
    rows = []
    for column, group_of in (
        ("speech", speech),
        ("month", {d: month[g] for d, g in speech.items()}),
    ):
        groups: dict[str, list[list[float]]] = {}
        for doc, mix in mixes.items():
            groups.setdefault(group_of[doc], []).append(mix)
        for group in sorted(groups):
            members = groups[group]
            for topic in range(len(members[0])):
                values = [m[topic] if topic < len(m) else 0.0 for m in members]
                mean = sum(values) / len(values)
                rows.append(
                    (column, group, topic, mean, max(0.0, mean - 0.05), mean + 0.05, len(values))
                )
    columns = list(zip(*rows, strict=True))
    return pa.table(
        {
            "column": list(columns[0]),
            "group": list(columns[1]),
            "topic": pa.array(columns[2], pa.int32()),
            "mean": list(columns[3]),
            "ci_low": list(columns[4]),
            "ci_high": list(columns[5]),
            "n_docs": pa.array(columns[6], pa.int64()),
        }
    )


def write_bare_run(source: Paths, dest: Path) -> Paths:
    """A copy of the run in ``source`` without the optional tables (ingest report, audit, sweep,
    representative documents, prevalence, the compare stage's tables, pyLDAvis view), as an
    older or partial run has it."""
    shutil.copytree(source.processed, dest, dirs_exist_ok=True)
    paths = Paths.under(source.raw, dest)
    names = [f"{name}.parquet" for name in OPTIONAL_TABLES] + list(OPTIONAL_FILES)
    for name in names:
        (paths.processed / name).unlink(missing_ok=True)
    for name in OPTIONAL_METRICS:
        (paths.metrics / name).unlink(missing_ok=True)
    return paths
