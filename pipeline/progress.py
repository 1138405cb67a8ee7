"""Progress of the long steps (segment, tfidf, lda_sweep, lda), one mechanism for all of them.

On a terminal (stderr is a TTY and logging shows INFO) a tqdm bar on stderr with the rate and
the time left; anywhere else (``dvc repro`` output, CI, a log file, ``2>log``) a log line at
INFO level at least every ``EVERY`` seconds: done / total, rate and time left, or the time
spent when the total is unknown. A background thread keeps the line (or the bar's clock) coming
even when the work reports nothing for a while, such as one long Gibbs fit. ``-q`` silences both.
``ZHTOPICS_PROGRESS=bar|log|off`` overrides the choice.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)

# Seconds between two log lines (and at most between two redraws of a bar).
EVERY = 10.0
_MODES = ("bar", "log", "off")
T = TypeVar("T")


def _mode(logger: logging.Logger) -> str:
    chosen = os.environ.get("ZHTOPICS_PROGRESS", "").strip().lower()
    if chosen:
        if chosen not in _MODES:
            raise ValueError(f"ZHTOPICS_PROGRESS={chosen!r}: one of {', '.join(_MODES)}")
        return chosen
    if not logger.isEnabledFor(logging.INFO):
        return "off"
    return "bar" if sys.stderr.isatty() else "log"


class Progress:
    """``with Progress("segment", total=rows, unit="doc") as p: ... p.update(n)``.

    ``total`` may be None (only the time spent is shown). Thread-safe ``update``; ``poll`` (a
    function returning the amount done so far) lets the heartbeat read a counter that other
    processes advance, instead of ``update`` calls.
    """

    def __init__(
        self,
        desc: str,
        total: float | None = None,
        unit: str = "it",
        logger: logging.Logger | None = None,
        every: float = EVERY,
        poll: Callable[[], float] | None = None,
    ) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.logger = logger or log
        self.every = every
        self.poll = poll
        self.done = 0.0
        self.mode = _mode(self.logger)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._bar = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total, desc=self.desc, unit=self.unit, file=sys.stderr, leave=False
            )
        if self.mode != "off":
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sync()
        if self._bar is not None:
            self._bar.close()

    def update(self, amount: float = 1) -> None:
        with self._lock:
            self.done += amount
            if self._bar is not None:
                self._bar.update(amount)

    def iterate(self, items: Iterable[T], size: Callable[[T], float] = lambda _: 1) -> Iterator[T]:
        """Yield ``items``, counting ``size(item)`` for each one once it has been processed."""
        for item in items:
            yield item
            self.update(size(item))

    def line(self) -> str:
        """The progress as one line: done / total, rate and time left, or the time spent."""
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {_amount(self.done)}"
        if self.total:
            text += f" / {_amount(self.total)} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {_amount(rate)} {self.unit}/s, {_clock(elapsed)} spent"
        if self.total and rate > 0:
            text += f", about {_clock(max(self.total - self.done, 0) / rate)} left"
        return text

    def _sync(self) -> None:
        if self.poll is not None:
            now = float(self.poll())
            self.update(now - self.done)

    def _beat(self) -> None:
        interval = 0.5 if self.mode == "bar" else self.every
        while not self._stop.wait(interval):
            self._sync()
            if self._bar is not None:
                self._bar.refresh()
            else:
                self.logger.info("%s", self.line())


def _amount(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def count_rows(path: os.PathLike | str) -> int | None:
    """Rows of a parquet file from its footer (no data read), the total of a progress; None
    when the file cannot be read (the stage itself then says why)."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, ValueError):
        return None
