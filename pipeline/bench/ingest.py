"""Benchmark ingest and clean: wall time and peak memory on a folder and on half of its files.

Each stage runs in its own process (as DVC runs it), so its peak resident memory is its own
(with clean's worker processes, the largest of its processes). If ingest and clean stream,
memory barely changes from half the files to all of them (clean's duplicate index grows with the
number of distinct documents: about 150 bytes each for the hashes of the text and of the LSH
bands; the MinHash signatures go to a temporary file). Prints the ingest report of the full run
as well.

``--utf8-twin`` measures instead what legacy encodings cost: ingest on the folder against
ingest on the same texts written as UTF-8 (the twin is made by the benchmark, in a temporary
folder).
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
    parser.add_argument(
        "--utf8-twin",
        action="store_true",
        help="instead: ingest the folder and its UTF-8 twin (the same texts re-encoded, written "
        "to a temporary folder), alternately, and print the ratio (goal: at most 1.5x)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="--utf8-twin: runs of each side (default: 2)"
    )


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


def write_utf8_twin(raw: Path, folder: Path) -> tuple[int, dict[str, int]]:
    """The text files of ``raw`` decoded as ingest decodes them and written as UTF-8 under
    ``folder`` (same relative paths; other files linked). The files and encodings read."""
    from pipeline.ingest import read_raw_files
    from pipeline.text.decode import decode
    from pipeline.text.formats import TEXT_SUFFIXES

    encodings: dict[str, int] = {}
    files = 0
    for raw_file in read_raw_files(raw):
        target = folder / raw_file.source
        target.parent.mkdir(parents=True, exist_ok=True)
        files += 1
        if raw_file.data is None or Path(raw_file.source).suffix.lower() not in TEXT_SUFFIXES:
            target.symlink_to((raw / raw_file.source).resolve())
            continue
        decoded = decode(raw_file.data)
        encodings[decoded.encoding] = encodings.get(decoded.encoding, 0) + 1
        target.write_bytes(decoded.text.encode("utf-8"))
    return files, encodings


def run_twin(args: argparse.Namespace) -> int:
    """Ingest on the folder against ingest on its UTF-8 twin, each in a new process, the sides
    alternating ``--rounds`` times; the fastest run of each side is compared."""
    from pipeline.bench.common import run_measured

    raw = args.raw.resolve()
    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-") as tmp:
        twin = Path(tmp) / "utf8"
        files, encodings = write_utf8_twin(raw, twin)
        print(f"ingest on {raw} ({files} files: {encodings}) and on its UTF-8 twin", flush=True)
        print(f"{'side':<10}{'round':>6}{'seconds':>10}{'CPU s':>8}{'peak MB':>9}", flush=True)
        best: dict[str, tuple[float, float]] = {}
        for round_ in range(1, args.rounds + 1):
            for side, folder in (("legacy", raw), ("utf-8", twin)):
                out = Path(tmp) / side
                command = [sys.executable, "-m", "pipeline", "ingest", "-q"]
                command += ["--params", str(args.params), "--raw", str(folder)]
                command += ["--processed", str(out), "--metrics", str(out / "metrics")]
                for item in args.overrides:
                    command += ["--set", item]
                m = run_measured(command)
                print(
                    f"{side:<10}{round_:>6}{m.seconds:>10.2f}{m.cpu:>8.2f}{m.rss / 1e6:>9.0f}",
                    flush=True,
                )
                seconds, cpu = best.get(side, (float("inf"), float("inf")))
                best[side] = (min(seconds, m.seconds), min(cpu, m.cpu))
    ratio, cpu_ratio = (best["legacy"][i] / best["utf-8"][i] for i in (0, 1))
    verdict = "holds" if ratio <= 1.5 else "does not hold"
    print(f"legacy / UTF-8 twin, fastest of each: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU")
    print(f"goal: ingest within 1.5x of the UTF-8 twin: {verdict}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.utf8_twin:
        return run_twin(args)
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
