"""The worker pool of the clean and segment stages: work is done in this process while it is
small, then in a pool of worker processes started on first need; results come back in order.

Each worker builds its heavy state (rules, a tokenizer) once, with the ``setup`` function given
to the pool, and every task receives that state as its first argument. ``run_ahead`` keeps a
few jobs in flight while the oldest one is finished, so reading, the workers and writing
overlap.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

Item = TypeVar("Item")
Job = TypeVar("Job")
Result = TypeVar("Result")

# What this worker process's setup made (None in the main process). Set once per worker.
_worker_state: Any = None


def _set_up_worker(setup: Callable[..., Any], args: tuple) -> None:
    global _worker_state
    _worker_state = setup(*args)


def _run_task(task: Callable[..., Any], *args: Any) -> Any:
    return task(_worker_state, *args)


def done(value: Any) -> Future:
    """A future that already holds ``value`` (work done in this process)."""
    future: Future = Future()
    future.set_result(value)
    return future


class WorkerPool:
    """A process pool started lazily, after ``inline_limit`` units of work (characters, bytes)
    have been done in this process; with one worker it is never started.

    ``setup(*args)`` runs once in each worker (under fork, spawn or forkserver alike); its
    result is the first argument of every task submitted. Tasks must be module-level functions
    (they are pickled by name).
    """

    def __init__(
        self, workers: int, start_method: str, setup: Callable[..., Any], inline_limit: int
    ) -> None:
        self.workers = workers
        self.start_method = start_method
        self.inline_limit = inline_limit
        self.eager = False  # set: all work goes to the workers, none is done in this process
        self._setup = setup
        self._inline = 0  # units of work done in this process so far
        self._executor: ProcessPoolExecutor | None = None
        self.started = False  # workers were started (and stays true after close)

    def takes_inline(self, size: int) -> bool:
        """Whether work of ``size`` units is done in this process (and counted as such):
        while no pool runs, the pool is not eager, and this process's share stays small."""
        inline = (
            self._executor is None
            and not self.eager
            and (self.workers <= 1 or self._inline + size <= self.inline_limit)
        )
        if inline:
            self._inline += size
        return inline

    def start(self, *setup_args: Any) -> bool:
        """Start the workers (``setup(*setup_args)`` in each) unless they run; True if they
        were started by this call."""
        if self._executor is not None:
            return False
        context = multiprocessing.get_context(self.start_method)
        self._executor = ProcessPoolExecutor(
            self.workers, context, initializer=_set_up_worker, initargs=(self._setup, setup_args)
        )
        self.started = True
        return True

    def submit(self, task: Callable[..., Result], *args: Any) -> Future:
        """Run ``task(state, *args)`` in a worker; the pool must have been started."""
        if self._executor is None:
            raise RuntimeError("WorkerPool.submit before start()")
        return self._executor.submit(_run_task, task, *args)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_ahead(
    items: Iterable[Item],
    start: Callable[[Item], Job],
    finish: Callable[[Job], Result],
    ahead: int,
) -> Iterator[Result]:
    """``finish(start(item))`` for each item, in order, with up to ``ahead`` jobs started
    beyond the one being finished (their tasks queued for the workers meanwhile)."""
    pending: deque[Job] = deque()
    for item in items:
        pending.append(start(item))
        while len(pending) > ahead:
            yield finish(pending.popleft())
    while pending:
        yield finish(pending.popleft())
