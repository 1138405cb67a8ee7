"""Benchmark ingest and clean: wall time and peak memory on a folder and on half of its files.

Each stage runs in its own process (as DVC runs it), so its peak resident memory is its own
(with clean's worker processes, the largest of its processes). If ingest and clean stream,
memory barely changes from half the files to all of them (clean's duplicate index grows with the
number of distinct documents: about 150 bytes each for the hashes of the text and of the LSH
bands; the MinHash signatures go to a temporary file). Prints the ingest report of the full run
as well.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.ingest import list_raw_files
from pipeline.io import read_table
from pipeline.schemas import INGEST_REPORT

STAGES = ("ingest", "clean")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw",
        type=Path,
        default=Path("../shared/corpora/bench"),
        help="folder of raw documents, read in place (default: ../shared/corpora/bench)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")


def _stage(stage: str, raw: Path, out: Path, args: argparse.Namespace) -> tuple[float, float]:
    """Run one stage in a child process; its wall seconds and peak resident memory in MB."""
    command = [sys.executable, "-m", "pipeline", stage, "-q", "--params", str(args.params)]
    command += ["--raw", str(raw), "--processed", str(out), "--metrics", str(out / "metrics")]
    for item in args.overrides:
        command += ["--set", item]
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {child.returncode}")
    peak = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return seconds, peak


def _half(raw: Path, folder: Path) -> int:
    """Link the first half of the raw files (in ingest's order) into ``folder``."""
    files = list_raw_files(raw)
    for path in files[: len(files) // 2]:
        link = folder / path.relative_to(raw)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())
    return len(files) // 2


def run(args: argparse.Namespace) -> int:
    raw = args.raw.resolve()
    n_files = len(list_raw_files(raw))
    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-") as tmp:
        out = args.out or Path(tmp) / "all"
        half_raw = Path(tmp) / "half-raw"
        n_half = _half(raw, half_raw)
        results = {}
        for name, folder, files in (("half", half_raw, n_half), ("all", raw, n_files)):
            target = Path(tmp) / "half" if name == "half" else out
            for stage in STAGES:
                results[name, stage] = _stage(stage, folder, target, args)
            documents = sum(
                r["count"]
                for r in read_table(target / "ingest_report.parquet", INGEST_REPORT).to_pylist()
                if r["dimension"] == "status"
            )
            results[name, "files"] = (files, documents)
        report = read_table(out / "ingest_report.parquet", INGEST_REPORT).to_pylist()
    print(f"ingest + clean on {raw}")
    print(f"{'run':<6}{'files':>8}{'documents':>11}{'stage':>8}{'seconds':>10}{'peak MB':>10}")
    for name in ("half", "all"):
        files, documents = results[name, "files"]
        for stage in STAGES:
            seconds, peak = results[name, stage]
            print(f"{name:<6}{files:>8}{documents:>11}{stage:>8}{seconds:>10.1f}{peak:>10.0f}")
    for stage in STAGES:
        (t_half, m_half), (t_all, m_all) = results["half", stage], results["all", stage]
        print(f"all / half, {stage}: time x{t_all / t_half:.2f}, peak memory x{m_all / m_half:.2f}")
    print("ingest report (all):")
    for row in report:
        dimension, value, count, files = row.values()
        print(f"  {dimension:<9}{value:<16}{count:>9} docs {files:>6} files")
    return 0
