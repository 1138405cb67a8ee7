"""Every output file has the same bytes whatever the CPU: the sample run again in separate
processes that emulate other machines (OpenBLAS kernel and threads, numpy's SIMD dispatch,
tomotopy's instruction set), compared file by file with the session's sample run."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.io import Paths
from tests.conftest import ROOT, SAMPLE_RAW

pytestmark = pytest.mark.slow

X86 = platform.machine().lower() in ("x86_64", "amd64")


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split()}


def _numpy_dispatch() -> list[str]:
    """The SIMD features numpy dispatches to on this CPU (beyond its compiled baseline)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]


def machines() -> dict[str, dict[str, str]]:
    """Environments that emulate other CPUs on this one. ``oldest``: any x86-64 (OpenBLAS'
    Prescott kernels, no numpy dispatch, tomotopy's SSE2 build, one BLAS thread). ``avx2``: an
    AVX2 machine without AVX-512 (Haswell kernels, numpy without its AVX-512 paths, tomotopy's
    AVX2 build, two threads). The session's own run is this CPU at its best (on an AVX-512
    CPU: SkylakeX kernels, every numpy path, tomotopy's AVX-512 build)."""
    flags = _cpu_flags()
    found = _numpy_dispatch()
    oldest = {"OPENBLAS_NUM_THREADS": "1", "NPY_DISABLE_CPU_FEATURES": " ".join(found)}
    avx2 = {
        "OPENBLAS_NUM_THREADS": "2",
        "NPY_DISABLE_CPU_FEATURES": " ".join(f for f in found if "512" in f or f == "X86_V4"),
    }
    if X86:
        oldest |= {"OPENBLAS_CORETYPE": "Prescott", "TOMOTOPY_ISA": "sse2"}
        if "avx2" in flags:
            avx2 |= {"OPENBLAS_CORETYPE": "Haswell", "TOMOTOPY_ISA": "avx2"}
    return {"oldest": oldest, "avx2": avx2}


def _run(out: Path, env_vars: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "NPY_"))}
    env.pop("TOMOTOPY_ISA", None)
    env |= env_vars
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "pipeline", "run", "-q", "--params", str(ROOT / "params.yaml")]
    cmd += ["--raw", str(SAMPLE_RAW), "--out", str(out), "--set", "segment.cache_dir=null"]
    return subprocess.Popen(
        cmd, env=env, cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _files(folder: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(folder)): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def test_machines_emulated():
    """The emulated machines differ from each other in every setting the CPU decides."""
    envs = machines()
    assert envs["oldest"]["OPENBLAS_NUM_THREADS"] != envs["avx2"]["OPENBLAS_NUM_THREADS"]
    if _numpy_dispatch():
        assert envs["oldest"]["NPY_DISABLE_CPU_FEATURES"]
    if X86 and "avx2" in _cpu_flags():
        for key in ("OPENBLAS_CORETYPE", "TOMOTOPY_ISA"):
            assert envs["oldest"][key] != envs["avx2"][key]


def test_every_output_has_the_same_bytes_on_other_cpus(sample_run: Paths, tmp_path):
    """Tables, metrics, the saved model, lda_vis.html and the report: byte for byte."""
    runs = {name: _run(tmp_path / name, env) for name, env in machines().items()}
    for name, proc in runs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {err}"
    expected = _files(sample_run.processed)
    for name in runs:
        got = _files(tmp_path / name)
        assert set(got) <= set(expected), f"{name} wrote {sorted(set(got) - set(expected))}"
        assert len(got) >= 30, sorted(got)  # every table, metrics, model files, report
        differ = [f for f, p in got.items() if p.read_bytes() != expected[f].read_bytes()]
        assert not differ, f"{name} ({machines()[name]}): other bytes in {differ}"
