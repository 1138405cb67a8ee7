import logging
import time

import pytest

from pipeline.progress import Progress, count_rows


@pytest.fixture
def log_mode(monkeypatch):
    monkeypatch.setenv("ZHTOPICS_PROGRESS", "log")


def test_log_mode_reports_done_total_rate_and_time_left_while_the_work_is_silent(log_mode, caplog):
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    with Progress("fit", total=100, unit="sweep", every=0.05) as progress:
        progress.update(25)
        time.sleep(0.3)  # no update: the heartbeat still writes lines
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) >= 2
    assert lines[0].startswith("fit: 25 / 100 sweep (25%)")
    assert "sweep/s" in lines[0] and "left" in lines[0]


def test_a_counter_advanced_elsewhere_is_polled(log_mode, caplog):
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    shared = {"done": 0}
    with Progress("sweep", total=10, every=0.05, poll=lambda: shared["done"]) as progress:
        shared["done"] = 7
        time.sleep(0.2)
    assert progress.done == 7
    assert any(r.getMessage().startswith("sweep: 7 / 10") for r in caplog.records)


def test_without_a_total_only_the_time_spent_is_shown(log_mode):
    with Progress("lda", unit="pass") as progress:
        progress.update(3)
        assert progress.line().startswith("lda: 3 pass, ")
        assert "left" not in progress.line()


def test_iterate_counts_each_item_after_it_is_processed(log_mode):
    with Progress("tfidf", total=6) as progress:
        seen = []
        for _item in progress.iterate([[1, 2], [3, 4, 5, 6]], len):
            seen.append(progress.done)
    assert seen == [0, 2] and progress.done == 6


def test_off_when_logging_hides_info_and_a_bad_override_is_named(monkeypatch, caplog):
    monkeypatch.delenv("ZHTOPICS_PROGRESS", raising=False)
    logger = logging.getLogger("tests.quiet")
    logger.setLevel(logging.WARNING)
    assert Progress("x", logger=logger).mode == "off"
    monkeypatch.setenv("ZHTOPICS_PROGRESS", "loud")
    with pytest.raises(ValueError, match="ZHTOPICS_PROGRESS='loud'"):
        Progress("x")


def test_bar_mode_draws_a_tqdm_bar_on_stderr(monkeypatch, capsys):
    monkeypatch.setenv("ZHTOPICS_PROGRESS", "bar")
    with Progress("segment", total=4, unit="doc") as progress:
        progress.update(4)
    assert "segment" in capsys.readouterr().err


def test_count_rows_reads_the_footer(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1, 2, 3]}), tmp_path / "t.parquet")
    assert count_rows(tmp_path / "t.parquet") == 3
    assert count_rows(tmp_path / "missing.parquet") is None
