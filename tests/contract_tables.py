"""Stand-ins, in the agreed shapes, for the tables of the ingest and topic-model issues.

The report and the notebooks draw these tables when a run has them; until the stages that
write them exist, the tests write these stand-ins (with Chinese group names, to exercise the
font) beside a copy of the sample run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa

from pipeline import plots
from pipeline.io import Paths, read_table, write_json, write_table
from pipeline.schemas import ALL, TableSchema


def _s(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


INGEST_REPORT = TableSchema(
    "ingest_report",
    pa.schema([_s("dimension", pa.string()), _s("value", pa.string()), _s("count", pa.int64())]),
)
CLEAN_AUDIT = TableSchema(
    "clean_audit",
    pa.schema(
        [
            _s("doc_id", pa.string()),
            _s("rule", pa.string()),
            _s("n_matches", pa.int64()),
            _s("chars_removed", pa.int64()),
        ]
    ),
)
SWEEP = TableSchema(
    "sweep",
    pa.schema(
        [_s("k", pa.int32()), _s("seed", pa.int64())]
        + [
            _s(m, pa.float64())
            for m in ("c_npmi", "c_v", "u_mass", "diversity", "perplexity", "stability")
        ]
    ),
)
REPRESENTATIVE_DOCS = TableSchema(
    "representative_docs",
    pa.schema(
        [
            _s("topic", pa.int32()),
            _s("rank", pa.int32()),
            _s("doc_id", pa.string()),
            _s("weight", pa.float64()),
            _s("title", pa.string(), nullable=True),
            _s("snippet", pa.string()),
        ]
    ),
)
TOPIC_PREVALENCE = TableSchema(
    "topic_prevalence",
    pa.schema(
        [
            _s("column", pa.string()),
            _s("group", pa.string()),
            _s("topic", pa.int32()),
            _s("mean", pa.float64()),
            _s("ci_low", pa.float64()),
            _s("ci_high", pa.float64()),
            _s("n_docs", pa.int64()),
        ]
    ),
)
CONTRACTS = (INGEST_REPORT, CLEAN_AUDIT, SWEEP, REPRESENTATIVE_DOCS, TOPIC_PREVALENCE)


def ingest_report(documents: pa.Table) -> pa.Table:
    n = documents.num_rows
    return pa.table(
        {
            "dimension": ["status", "status", "encoding", "encoding", "format"],
            "value": ["kept", "unreadable", "utf-8", "gb18030", "txt"],
            "count": pa.array([n, 1, n - 2, 2, n + 1], pa.int64()),
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
    speech = plots.group_labels(documents, "parent_id")
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


def write_enriched_run(source: Paths, dest: Path) -> Paths:
    """A copy of the run in ``source`` plus every contract table, metrics/sweep.json and a
    stand-in lda_vis.html."""
    shutil.copytree(source.processed, dest, dirs_exist_ok=True)
    paths = Paths.under(source.raw, dest)
    documents = read_table(paths.table("documents"), ALL["documents"])
    clean = read_table(paths.table("clean"), ALL["clean"])
    doc_topics = read_table(paths.table("doc_topics"), ALL["doc_topics"])
    tables = {
        "ingest_report": ingest_report(documents),
        "clean_audit": clean_audit(documents),
        "sweep": sweep(),
        "representative_docs": representative_docs(documents, clean, doc_topics),
        "topic_prevalence": topic_prevalence(documents, doc_topics),
    }
    for schema in CONTRACTS:
        write_table(tables[schema.name], paths.table(schema.name), schema)
    write_json({"recommended_k": 6, "rule": "highest mean c_npmi"}, paths.metrics / "sweep.json")
    (paths.processed / "lda_vis.html").write_text(
        '<div id="ldavis-stand-in">pyLDAvis 主题可视化</div>', encoding="utf-8"
    )
    return paths
