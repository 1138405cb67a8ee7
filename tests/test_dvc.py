"""The DVC pipeline in a copy of the project: repro, no-op re-run, per-setting invalidation."""

import json
import shutil
import subprocess

import pytest
import yaml

from pipeline.io import Paths, read_table
from pipeline.schemas import ALL
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

PROJECT_FILES = [".dvc/config", ".dvcignore", "dvc.yaml", "dvc.lock", "params.yaml", ".gitignore"]
PROJECT_DIRS = ["pipeline", "data/raw", "data/dict"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project (code, dictionaries, sample, DVC files) in its own git repo."""
    dest = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def _dvc(project, env, *args) -> subprocess.CompletedProcess:
    result = subprocess.run(["dvc", *args], cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _lock(path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reproduced(project):
    import os
    import sys
    from pathlib import Path

    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    _dvc(project, env, "repro")
    return project, env


def test_repro_writes_every_table(reproduced):
    project, _ = reproduced
    paths = Paths(
        project / "data/raw", project / "data/processed", project / "models", project / "metrics"
    )
    for name, schema in ALL.items():
        rows = read_table(paths.table(name), schema).num_rows
        assert rows == 0 if name == "robustness" else rows > 0, name  # robustness is off
    assert (project / "metrics" / "lda.json").is_file()


def test_outputs_match_the_committed_lock(reproduced):
    """Outputs are byte-identical to those dvc.lock records, and dvc.lock is up to date."""
    project, _ = reproduced
    assert _lock(project / "dvc.lock") == _lock(ROOT / "dvc.lock"), (
        "dvc.lock is out of date: run `make run` and commit dvc.lock"
    )


def test_second_repro_does_nothing(reproduced):
    project, env = reproduced
    result = _dvc(project, env, "repro")
    assert "Data and pipelines are up to date" in result.stdout
    assert "Running stage" not in result.stdout


def test_metrics_show(reproduced):
    project, env = reproduced
    shown = json.loads(_dvc(project, env, "metrics", "show", "--json").stdout)
    text = json.dumps(shown)
    assert "coherence_c_npmi" in text and "coherence_c_v" in text


def _set_param(project, original: str, section: str, key: str, value) -> None:
    data = yaml.safe_load(original)
    data[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")


def test_changing_one_setting_invalidates_only_its_stage(reproduced):
    project, env = reproduced
    original = (project / "params.yaml").read_text(encoding="utf-8")
    try:
        for section, key, value in [
            ("ingest", "paragraph_min_chars", 30),
            ("clean", "min_chars", 10),
            ("segment", "hmm", False),
            ("tfidf", "top_k", 5),
            ("lda", "num_topics", 4),
            ("report", "top_terms", 5),
            ("explorer", "random_docs", 10),
        ]:
            _set_param(project, original, section, key, value)
            status = json.loads(_dvc(project, env, "status", "--json").stdout)
            assert set(status) == {section}, (section, key, status)
    finally:
        (project / "params.yaml").write_text(original, encoding="utf-8")


def test_unchanged_outputs_keep_later_stages_cached(reproduced):
    """tfidf.top_k changes only keywords: lda's inputs keep their bytes, so it is skipped."""
    project, env = reproduced
    original = (project / "params.yaml").read_text(encoding="utf-8")
    try:
        _set_param(project, original, "tfidf", "top_k", 5)
        result = _dvc(project, env, "repro")
        assert "Running stage 'tfidf'" in result.stdout
        assert "Running stage 'lda'" not in result.stdout
    finally:
        (project / "params.yaml").write_text(original, encoding="utf-8")
        _dvc(project, env, "repro")


def test_experiment_with_a_changed_setting(reproduced):
    project, env = reproduced
    git_env = dict(
        env,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
    )
    subprocess.run(["git", "add", "-A"], cwd=project, check=True, env=git_env)
    subprocess.run(["git", "commit", "-q", "-m", "baseline"], cwd=project, check=True, env=git_env)
    _dvc(project, git_env, "exp", "run", "-S", "lda.num_topics=4")
    metrics = json.loads((project / "metrics" / "lda.json").read_text(encoding="utf-8"))
    assert metrics["num_topics"] == 4
