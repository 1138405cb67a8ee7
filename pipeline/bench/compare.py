"""The compare stage on a run's tables: seconds per part, and the whole stage in a new process.

`zhtopics bench compare --processed DIR` reads the tables of a run that went through lda (a
`zhtopics run --out` folder or data/processed) and prints, in one process, the seconds of each
part of the stage (reading doc_topics, documents and doc_terms; choosing the columns; keyness;
topic contrasts; trends; the topics' concordance lines), the columns compared and their groups;
then it runs `zhtopics compare` on a copy of the tables in a new process and prints its wall
and CPU seconds and peak memory. The goal of issue 19: keyness and contrasts under 10 s on the
bench corpus at paragraph unit, within the pipeline's memory.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 10.0
INPUTS = ("documents", "clean", "tokens", "vocabulary", "doc_terms", "doc_topics", "topic_terms")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--processed", type=Path, required=True, help="the tables of a run that went through lda"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from pipeline import compare
    from pipeline.config import load_params
    from pipeline.io import Paths, iter_tables, read_table
    from pipeline.schemas import DOC_TOPICS, TOKENS, TOPIC_TERMS, VOCABULARY
    from pipeline.topics import contrasts as ct

    params = load_params(args.params, args.overrides)
    p = params.compare
    paths = Paths.under(args.processed / "raw", args.processed)
    seconds: dict[str, float] = {}

    def timed(name: str, function, *arguments):
        start = time.perf_counter()
        value = function(*arguments)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        return value

    doc_topics = timed("read doc_topics", read_table, paths.table("doc_topics"), DOC_TOPICS)
    doc_ids, theta = timed("read doc_topics", compare.theta_of, doc_topics)
    documents = timed("read documents", compare._documents, paths)
    units, per_document = timed("units and documents", compare.units_of, doc_ids, documents)
    shares, _ = timed("document shares", ct.document_shares, units.parent, theta, units.n_documents)
    vocabulary = read_table(paths.table("vocabulary"), VOCABULARY)
    terms = np.asarray(vocabulary.column("term").to_pylist(), dtype=object)
    counts = timed("read doc_terms", compare._unit_counts, paths, doc_ids, len(terms))
    columns = timed("choose columns", compare.choose_columns, per_document, units, p)
    _say(
        f"{len(doc_ids)} units, {units.n_documents} documents, {len(terms)} terms, "
        f"K = {theta.shape[1]}"
    )
    for index, column in enumerate(columns):
        g = compare.grouping(per_document, units, column, p)
        key = timed("keyness", compare.keyness_table, counts, units, g, terms, p)
        rng = np.random.default_rng([p.random_state, index])
        timed("contrasts", compare.contrasts_table, shares, g, p, rng)
        _say(f"  column {column}: {len(g.names)} groups compared, {key.num_rows} key terms")
    timed("trends", compare.trends_table, per_document, shares, p, np.random.default_rng(0))
    dominant = dict(zip(doc_ids, theta.argmax(axis=1).tolist(), strict=True))
    topic_terms = read_table(paths.table("topic_terms"), TOPIC_TERMS)
    tokens = iter_tables(paths.table("tokens"), TOKENS, batch_rows=4096)
    timed("topic kwic", compare.topic_kwic, tokens, paths.table("clean"), topic_terms, dominant, p)
    for name, value in seconds.items():
        _say(f"{name:>22} {value:8.2f} s")
    both = seconds.get("keyness", 0.0) + seconds.get("contrasts", 0.0)
    verdict = "met" if both < GOAL_SECONDS else "NOT met"
    _say(f"{'keyness + contrasts':>22} {both:8.2f} s (goal < {GOAL_SECONDS:.0f} s: {verdict})")
    stage = _whole_stage(args, paths)
    _say(
        f"{'zhtopics compare':>22} {stage.seconds:8.2f} s wall, {stage.cpu:.2f} s CPU, "
        f"peak RSS {stage.rss / 1e6:.0f} MB"
    )
    return 0


def _whole_stage(args: argparse.Namespace, paths):
    """`zhtopics compare` in a new process, on a copy of the inputs (the run stays as it is)."""
    from pipeline.bench.common import run_measured
    from pipeline.bench.pipeline import _environment

    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-compare-") as folder:
        out = Path(folder)
        for name in INPUTS:
            shutil.copy(paths.table(name), out / f"{name}.parquet")
        command = [sys.executable, "-m", "pipeline", "compare", "-q", "--params", str(args.params)]
        command += ["--processed", str(out), "--raw", str(out), "--metrics", str(out)]
        for item in args.overrides:
            command += ["--set", item]
        return run_measured(command, env=_environment())


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
