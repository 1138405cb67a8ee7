"""What the benchmarks share: a command run in a new process, measured (wall and CPU seconds,
peak memory of its process tree sampled while it runs)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# The largest share of the time PeakRss spends reading PSS (see there).
PSS_DUTY = 0.01


class PeakRss:
    """Samples the memory of this process plus all its descendants: the sum of their RSS (pages
    shared between a parent and its forked workers count once per process, so this is an upper
    bound) and, on Linux, of their PSS (shared pages split between the processes sharing them).

    RSS is a counter the kernel keeps, cheap to read at every sample. PSS is not: the kernel
    walks the process's page tables, holding its memory-map lock, which takes tens of
    milliseconds for a Python heap of 2 GB. PSS is therefore read at most ``PSS_DUTY`` of the
    time (every sample for small processes, every few seconds for large ones), so it can miss a
    short peak, while the sampler does not slow the measured processes down.
    """

    def __init__(self, root=None, interval: float = 0.1) -> None:
        import psutil

        self._proc = root or psutil.Process()
        self._interval = interval
        self.peak = 0
        self.peak_pss = 0
        self._samples = 0
        self._next_pss = 0.0
        self._tree = [self._proc]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, last: bool = False) -> None:
        import psutil

        # Listing descendants scans every process on the machine: every third sample only
        # (sampling takes CPU from the measured processes; workers start after 0.3 s or more).
        if self._samples % 3 == 0:
            with contextlib.suppress(psutil.Error):
                self._tree = [self._proc, *self._proc.children(recursive=True)]
        self._samples += 1
        sizes = []
        for proc in self._tree:
            with contextlib.suppress(psutil.Error, OSError):
                sizes.append((proc.pid, proc.memory_info().rss))
        self.peak = max(self.peak, sum(rss for _, rss in sizes))
        started = time.perf_counter()
        if last or started >= self._next_pss:
            self.peak_pss = max(self.peak_pss, sum(_pss(pid, rss) for pid, rss in sizes))
            self._next_pss = started + (time.perf_counter() - started) / PSS_DUTY

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(last=True)


def _pss(pid: int, rss: int) -> int:
    """PSS from /proc/PID/smaps_rollup (cheap, unlike psutil's full smaps walk, which would
    slow the measured processes down); RSS where it is not available."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss


@dataclasses.dataclass(frozen=True)
class Measured:
    """One process run: wall seconds from its start to its exit, CPU seconds (user + system) of
    it and the children it waited for, peak RSS and PSS of its process tree in bytes, stdout."""

    seconds: float
    cpu: float
    rss: int
    pss: int
    stdout: str


def run_measured(
    command: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Measured:
    """Run ``command`` in a new process and measure it; RuntimeError with its stderr if it fails.

    Peak RSS is the sampled sum over the tree, and at least the largest process's own peak as
    the kernel counts it (a peak shorter than the sampling interval is not missed).
    """
    import psutil

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd, text=True)
        with PeakRss(psutil.Process(process.pid)) as peak:
            # Wait for the exit without reaping, so the sampler never sees a reused pid.
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(
                f"{' '.join(map(str, command))} failed with exit code {process.returncode}:\n"
                f"{err.read()[-4000:]}"
            )
        stdout = out.read()
    maxrss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return Measured(
        seconds=seconds,
        cpu=usage.ru_utime + usage.ru_stime,
        rss=max(peak.peak, maxrss),
        pss=peak.peak_pss,
        stdout=stdout,
    )
