"""A stage killed part-way (SIGKILL, no clean-up) leaves every earlier output whole, and the
next run recovers without manual clean-up, the segment cache included."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.io import Paths
from tests.conftest import ROOT, SAMPLE_RAW

pytestmark = pytest.mark.slow

# Where each stage is stopped (io.pause_point): while its first output's temporary file is
# complete but not yet renamed into place, or inside the segment cache's write transaction.
PAUSES = {
    "ingest": "documents.parquet",
    "clean": "clean.parquet",
    "segment": "segment-cache",
    "tfidf": "vocabulary.parquet",
    "lda_sweep": "sweep.parquet",
    "lda": "lda",  # models/lda, written after the stage's tables and lda_vis.html
    "report": "report",
    "robustness": "robustness.parquet",  # off by default: writes its empty table
    "explorer": "explorer.html",
    "compare": "topic_kwic.parquet",  # the last of its five tables
}


def _files(folder: Path) -> dict[str, bytes]:
    """Every output file below ``folder`` (temporary files of writes are hidden)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


def _command(out: Path, cache: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline",
        *args,
        "-q",
        "--params",
        str(ROOT / "params.yaml"),
        "--set",
        f"segment.cache_dir={cache}",
    ]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _stage(out: Path, cache: Path, stage: str, pause: str, marker: Path) -> subprocess.Popen:
    cmd = _command(out, cache, stage)
    cmd += ["--raw", str(SAMPLE_RAW), "--processed", str(out)]
    cmd += ["--models", str(out / "models"), "--metrics", str(out / "metrics")]
    return subprocess.Popen(
        cmd,
        env=_env(ZHTOPICS_TEST_PAUSE=f"{pause}:{marker}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_stages_leave_whole_outputs_and_the_next_run_recovers(sample_run: Paths, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    shutil.copytree(sample_run.processed, out)
    before = _files(out)
    assert {"documents.parquet", "models/lda/model.json", "report/index.html"} <= set(before)
    from pipeline.runner import STAGES

    assert set(PAUSES) == set(STAGES)
    # Every stage at once (each reads only outputs the others leave whole), paused, killed.
    procs = {s: _stage(out, cache, s, p, tmp_path / f"{s}.paused") for s, p in PAUSES.items()}
    try:
        deadline = time.monotonic() + 600
        for stage, proc in procs.items():
            marker = tmp_path / f"{stage}.paused"
            while not marker.exists():
                assert proc.poll() is None, f"{stage} ended before its pause: {proc.stderr.read()}"
                assert time.monotonic() < deadline, f"{stage} never reached its pause"
                time.sleep(0.1)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stderr.close()
    for proc in procs.values():
        assert proc.returncode == -signal.SIGKILL
    # Killed while writing: each output is still the whole earlier file; the new ones were
    # never renamed into place, only hidden temporary files and the cache are left.
    assert _files(out) == before
    leftovers = [p.name for p in out.rglob(".*")]
    assert any(name.endswith(".tmp") for name in leftovers), leftovers
    assert list(cache.glob("tokens-*.sqlite")), "segment was killed inside its cache write"

    # The next run, as it is: the same outputs, and no temporary file left behind.
    cmd = _command(out, cache, "run") + ["--raw", str(SAMPLE_RAW), "--out", str(out)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _files(out) == before
    assert [p.name for p in out.rglob("*.tmp")] == []
    assert [p.name for p in out.rglob(".*-spool.*")] == []
