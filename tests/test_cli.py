import subprocess
import sys

from pipeline.cli import main
from pipeline.io import read_json
from tests.conftest import ROOT, SAMPLE_RAW


def _run(out, *extra: str) -> int:
    args = ["run", "-q", "--raw", str(SAMPLE_RAW), "--out", str(out)]
    return main([*args, "--params", str(ROOT / "params.yaml"), *extra])


def test_run_until_stops_after_that_stage(tmp_path):
    assert _run(tmp_path, "--until", "segment") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clean.parquet",
        "clean_audit.parquet",
        "documents.parquet",
        "ingest_report.parquet",
        "metrics",
        "new_words.parquet",
        "tokens.parquet",
    ]


def test_set_overrides_a_setting(tmp_path):
    overrides = ["--set", "lda.num_topics=3", "--set", "lda.passes=2"]
    assert _run(tmp_path, *overrides, "--until", "lda") == 0
    assert read_json(tmp_path / "metrics" / "lda.json")["num_topics"] == 3


def test_bad_setting_fails_before_any_work_naming_the_key(tmp_path, venv_env):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "--raw",
            str(SAMPLE_RAW),
            "--out",
            str(tmp_path / "out"),
            "--params",
            str(ROOT / "params.yaml"),
            "--set",
            "lda.num_topics=0",
        ],
        capture_output=True,
        text=True,
        env=venv_env,
    )
    assert result.returncode == 2
    assert "lda.num_topics" in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_raw_folder_is_a_clear_error(tmp_path, capsys):
    code = main(
        [
            "ingest",
            "--raw",
            str(tmp_path / "nope"),
            "--processed",
            str(tmp_path),
            "--params",
            str(ROOT / "params.yaml"),
        ]
    )
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_stage_reads_the_previous_stage_output(tmp_path, capsys):
    code = main(["segment", "--processed", str(tmp_path), "--params", str(ROOT / "params.yaml")])
    assert code == 2
    assert "clean table is missing" in capsys.readouterr().err
