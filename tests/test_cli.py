import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.io import read_json
from pipeline.runner import STAGE_HELP, STAGES
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


def test_help_says_what_each_command_does(capsys, monkeypatch):
    """One line per command in a researcher's words, never a bare "Stage <name>"."""
    assert set(STAGE_HELP) == set(STAGES)
    monkeypatch.setenv("COLUMNS", "300")  # one line per command: argparse wraps at hyphens
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "Stage " not in shown
    for name in STAGES:
        assert " ".join(f"{name} {STAGE_HELP[name]}".split()) in shown, name
    for command in ("run", "infer", "bench"):
        assert f" {command} " in shown


def test_infer_and_the_benchmarks_import_the_runner_not_the_cli():
    """No backward imports: the command line sits on top, nothing below imports it."""
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if path.name in ("cli.py", "__main__.py"):
            continue
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "pipeline.cli" not in modules, path.name
