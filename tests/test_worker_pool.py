"""The worker pool shared by the clean and segment stages (pipeline/text/worker_pool.py)."""

import os

import pytest

from pipeline.text.worker_pool import WorkerPool, done, run_ahead


def _setup(offset: int) -> dict:
    return {"offset": offset, "pid": os.getpid()}


def _add(state: dict, value: int) -> tuple[int, int]:
    return value + state["offset"], state["pid"]


def test_work_is_inline_until_the_limit_then_in_workers():
    with WorkerPool(2, "spawn", _setup, inline_limit=10) as pool:
        assert pool.takes_inline(6) and pool.takes_inline(4)  # 10 units done here
        assert not pool.takes_inline(1) and not pool.started
        assert pool.start(100) and not pool.start(100)  # started once
        results = [pool.submit(_add, n).result() for n in range(4)]
        assert not pool.takes_inline(0)  # once the workers run, all goes to them
    assert [value for value, _ in results] == [100, 101, 102, 103]  # setup ran in the worker
    assert {pid for _, pid in results} - {os.getpid()} == {pid for _, pid in results}
    assert pool.started  # still true after close, for the stage's log line


def test_one_worker_never_starts_a_pool_and_eager_sends_everything():
    single = WorkerPool(1, "spawn", _setup, inline_limit=0)
    assert single.takes_inline(10**9)
    eager = WorkerPool(2, "spawn", _setup, inline_limit=10**9)
    eager.eager = True
    assert not eager.takes_inline(1)


def test_submit_before_start_is_refused():
    with pytest.raises(RuntimeError, match="before start"):
        WorkerPool(2, "spawn", _setup, 0).submit(_add, 1)


def test_run_ahead_keeps_order_and_starts_jobs_ahead():
    events = []

    def start(item):
        events.append(("start", item))
        return item

    def finish(job):
        events.append(("finish", job))
        return job * 10

    assert list(run_ahead(range(4), start, finish, ahead=2)) == [0, 10, 20, 30]
    # Three jobs are started before the first is finished, then one in, one out.
    assert events[:4] == [("start", 0), ("start", 1), ("start", 2), ("finish", 0)]
    assert [e for e in events if e[0] == "finish"] == [("finish", n) for n in range(4)]
    assert done(5).result() == 5
