"""Benchmark the Spark engine: per-stage wall time of the local engine, Spark local[1] and
Spark local[2] on one corpus (ingest to tfidf), the local[2]/local[1] speed-up, the cores
each stage kept busy (CPU seconds of every process of the run over its wall seconds) with the
most local[2] can gain over local[1] on this machine, and the Spark driver's peak memory (the
Python driver process) for the corpus and for it doubled.

Each run is a child process (one Spark application each, as a user runs it). Spark's start-up
(about 10-80 s for the JVM, depending on the machine's load) is not part of any stage time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.io import raw_folder

TEXT_STAGES = ("ingest", "clean", "segment", "tfidf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path("../shared/corpora/bench"),
        help="a raw folder or one file, read in place (default: ../shared/corpora/bench)",
    )
    parser.add_argument(
        "--labels",
        metavar="COLUMN",
        help="instead of timing: on a labelled table (e.g. cnews-dev.tsv, column label), "
        "compare the Spark runs' tables with the local engine's and the NMI of each document's "
        "dominant topic against COLUMN (local, Spark sample mode, Spark mllib mode)",
    )
    parser.add_argument("-k", type=int, default=10, help="topics for --labels (default 10)")
    parser.add_argument(
        "--sample-docs", type=int, default=500, help="spark.lda_sample_docs for --labels"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one measured run (internal)


def _child(args: argparse.Namespace) -> int:
    """One run in this process: print the stage times, the CPU seconds of each stage over
    every process of the run and this process's peak memory."""
    from pipeline.config import load_params

    engine, raw, out = args.child.split("|")
    params = load_params(args.params, args.overrides)
    marks: list[tuple[str | None, float]] = []

    def checkpoint(name: str | None) -> None:
        marks.append((name, tree_cpu()))

    if engine == "local":
        from pipeline.io import Paths
        from pipeline.runner import stage_main

        seconds = {}
        paths = Paths.under(Path(raw), Path(out))
        for name in TEXT_STAGES:
            checkpoint(name)
            started = time.perf_counter()
            stage_main(name)(params, paths)
            seconds[name] = time.perf_counter() - started
        checkpoint(None)
    else:
        from pipeline.spark import stages

        seconds = stages.run(params, raw, out, master=engine, until="tfidf", checkpoint=checkpoint)
    cpu = {
        name: after - before
        for (name, before), (_, after) in zip(marks[:-1], marks[1:], strict=True)
    }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak}))
    return 0


def tree_cpu() -> float:
    """CPU seconds (user + system) so far of this process and every process below it (the
    JVM, Spark's Python workers, a worker pool), with the children they have reaped."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _measure(engine: str, raw: Path, out: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "pipeline", "bench", "spark", "-q"]
    command += ["--params", str(args.params), "--child", f"{engine}|{raw}|{out}"]
    for item in args.overrides:
        command += ["--set", item]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{engine}: the run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _doubled(corpus: Path, folder: Path) -> Path:
    """A raw folder holding the corpus twice (links, nothing copied)."""
    raw = folder / "doubled"
    for copy in ("a", "b"):
        (raw / copy).mkdir(parents=True)
        (raw / copy / corpus.name).symlink_to(corpus.resolve())
    return raw


def run(args: argparse.Namespace) -> int:
    if args.child:
        return _child(args)
    if args.labels:
        return _quality(args)
    corpus = args.corpus
    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-spark-") as tmp:
        tmp = Path(tmp)
        raw = raw_folder(corpus, tmp)
        runs = {}
        for engine in ("local", "local[1]", "local[2]"):
            runs[engine] = _measure(engine, raw, tmp / engine, args)
        doubled = _measure("local[2]", _doubled(corpus, tmp), tmp / "doubled-out", args)
    print(f"corpus {corpus} ({_size_mb(corpus):.1f} MB); {os.cpu_count()} cores")
    print(f"{'stage':<8} {'local':>8} {'local[1]':>9} {'local[2]':>9} {'[2]/[1]':>8}")
    for name in TEXT_STAGES:
        one, two = runs["local[1]"]["seconds"][name], runs["local[2]"]["seconds"][name]
        print(
            f"{name:<8} {runs['local']['seconds'][name]:>7.1f}s {one:>8.1f}s {two:>8.1f}s "
            f"{one / two:>7.2f}x"
        )
    cores = os.cpu_count() or 1
    print(
        "cores busy on average in each stage (CPU seconds of every process of the run over the "
        f"stage's wall seconds), and the most local[2] can gain over local[1] on {cores} cores"
    )
    print(f"{'stage':<8} {'local':>8} {'local[1]':>9} {'local[2]':>9} {'at most':>8}")
    for name in TEXT_STAGES:
        busy = {e: runs[e]["cpu"][name] / runs[e]["seconds"][name] for e in runs}
        print(
            f"{name:<8} {busy['local']:>8.2f} {busy['local[1]']:>9.2f} {busy['local[2]']:>9.2f} "
            f"{min(2.0, cores / busy['local[1]']):>7.2f}x"
        )
    single, double = runs["local[2]"]["peak_mb"], doubled["peak_mb"]
    local_peak = runs["local"]["peak_mb"]
    print(
        f"Spark driver (Python) peak memory: {single:.0f} MB for the corpus, {double:.0f} MB "
        f"for it doubled ({double / single:.2f}x); local engine peak {local_peak:.0f} MB"
    )
    return 0


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


TEXT_TABLES = (
    "documents",
    "clean",
    "clean_audit",
    "tokens",
    "new_words",
    "vocabulary",
    "doc_terms",
    "keywords",
)


def _quality(args: argparse.Namespace) -> int:
    """Parity of the text tables and NMI against the labels: local, Spark sample, Spark mllib."""
    import numpy as np
    import pyarrow as pa
    from sklearn.metrics import normalized_mutual_info_score

    from pipeline.io import read_table
    from pipeline.schemas import ALL, DOC_TOPICS, DOCUMENTS

    corpus = args.corpus
    settings = ["ingest.unit=document", f"lda.num_topics={args.k}", *args.overrides]
    runs = {
        "local": [],
        "spark sample": ["--engine", "spark", "--master", "local[2]",
                         "--set", f"spark.lda_sample_docs={args.sample_docs}"],
        "spark mllib": ["--engine", "spark", "--master", "local[2]",
                        "--set", "spark.lda_mode=mllib"],
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-spark-") as tmp:
        tmp = Path(tmp)
        raw = raw_folder(corpus, tmp)
        scores, seconds = {}, {}
        for name, extra in runs.items():
            out = tmp / name.replace(" ", "-")
            command = [sys.executable, "-m", "pipeline", "run", "-q", "--raw", str(raw)]
            command += ["--out", str(out), "--until", "lda", "--params", str(args.params), *extra]
            for item in settings:
                command += ["--set", item]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            seconds[name] = time.perf_counter() - started
            if done.returncode:
                raise RuntimeError(f"{name}: the run failed:\n{done.stderr[-3000:]}")
            documents = read_table(out / "documents.parquet", DOCUMENTS)
            label = dict(
                zip(
                    documents.column("doc_id").to_pylist(),
                    documents.column(args.labels).to_pylist(),
                    strict=True,
                )
            )
            topics = read_table(out / "doc_topics.parquet", DOC_TOPICS)
            k = int(max(topics.column("topic").to_pylist())) + 1
            ids = topics.column("doc_id").to_pylist()[::k]
            dominant = topics.column("weight").to_numpy().reshape(-1, k).argmax(axis=1)
            scores[name] = normalized_mutual_info_score([label[d] for d in ids], dominant)
        for name in ("spark sample", "spark mllib"):
            different = []
            for table in TEXT_TABLES:
                a = read_table(tmp / "local" / f"{table}.parquet", ALL[table])
                b = read_table(tmp / name.replace(" ", "-") / f"{table}.parquet", ALL[table])
                same = a.column_names == b.column_names and a.num_rows == b.num_rows
                for column in a.column_names if same else ():
                    x, y = a.column(column), b.column(column)
                    if pa.types.is_floating(x.type):
                        same &= bool(np.allclose(x.to_numpy(), y.to_numpy(), rtol=0, atol=1e-12))
                    else:
                        same &= x.to_pylist() == y.to_pylist()
                if not same:
                    different.append(table)
            print(f"{name}: text tables {different or 'identical to local'}")
    print(f"corpus {corpus}, K = {args.k}, sample mode on {args.sample_docs} documents")
    for name, value in scores.items():
        print(f"{name:<13} NMI {value:.3f}  ({seconds[name]:.0f} s, start-up included)")
    gap = abs(scores["spark sample"] - scores["local"])
    print(f"sample mode vs local: NMI difference {gap:.3f} (goal: within 0.03)")
    return 0
