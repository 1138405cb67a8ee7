"""The DVC pipeline in a copy of the project: repro, no-op re-run, per-setting invalidation."""

import json
import shutil
import subprocess

import pytest
import yaml

from pipeline.io import Paths, read_table
from pipeline.schemas import ALL
from tests.conftest import ROOT, SAMPLE_FILE, SHIPPED_KEYS
from tests.test_pipeline import EMPTY_ON_THE_SAMPLE

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
        # robustness is off by default; the sample has nothing to compare.
        empty = (*EMPTY_ON_THE_SAMPLE, "robustness")
        assert rows == 0 if name in empty else rows > 0, name
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
    *parents, leaf = [section, *key.split(".")]
    node = data
    for name in parents:
        node = node[name]
    node[leaf] = value
    (project / "params.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")


def _declared(stage: dict) -> set[str]:
    """The leaf keys of params.yaml a dvc.yaml stage declares (a section names all of its)."""
    keys = set()
    for entry in stage.get("params", []):
        assert isinstance(entry, str), f"params entry {entry!r}: only params.yaml keys are used"
        covered = {k for k in SHIPPED_KEYS if k == entry or k.startswith(f"{entry}.")}
        assert covered, f"dvc.yaml declares {entry!r}, which params.yaml does not have"
        keys |= covered
    return keys


@pytest.fixture(scope="module")
def stage_reads(sample_run, params, tmp_path_factory, request) -> dict[str, set[str]]:
    """The settings each stage reads: in the sample run, plus runs that take the branches the
    shipped settings skip (a CSV file: ingest.text_column; a text with invalid bytes:
    clean.max_decode_errors; the gensim engine: lda.passes, lda.chunksize; compare on the
    work reports, whose groups are compared: compare.correction, compare.alpha, ...)."""
    import dataclasses

    from tests.conftest import SAMPLE_READS, run_recording_reads

    reads = {name: set(keys) for name, keys in SAMPLE_READS.items()}
    raw = tmp_path_factory.mktemp("branches_raw")
    lines = SAMPLE_FILE.read_text(encoding="utf-8").splitlines()
    text = max(lines, key=len)[:200]
    (raw / "notes.csv").write_text(f"title,body\n一,{text}\n二,{text[::-1]}\n", "utf-8")
    (raw / "bad.txt").write_bytes(text.encode("utf-8") * 3 + b"\xff\xfe" + text.encode("utf-8"))
    out = tmp_path_factory.mktemp("branches_run")
    csv = dataclasses.replace(params, ingest=dataclasses.replace(params.ingest, text_column="body"))
    branch = run_recording_reads(csv, Paths.under(raw, out), ("ingest", "clean"))
    gensim = dataclasses.replace(
        params,
        lda=dataclasses.replace(
            params.lda,
            engine="gensim",
            passes=1,
            iterations=5,
            num_topics=2,
            bootstrap=2,
            # run: always, so the sweep fits with a fixed K (num_topics 2) too.
            sweep=dataclasses.replace(params.lda.sweep, run="always", k=(2,), seeds=(1,)),
        ),
    )
    fits = Paths.under(sample_run.raw, tmp_path_factory.mktemp("gensim_run"))
    shutil.copytree(sample_run.processed, fits.processed, dirs_exist_ok=True)
    branch.update(run_recording_reads(gensim, fits, ("lda_sweep", "lda")))
    # compare on a folder whose groups are compared (the sample has none): keyness settings.
    reports = request.getfixturevalue("reports_run")
    groups = Paths.under(reports.raw, tmp_path_factory.mktemp("compare_run"))
    shutil.copytree(reports.processed, groups.processed, dirs_exist_ok=True)
    reports_params = request.getfixturevalue("reports_params")
    compared = run_recording_reads(reports_params, groups, ("compare",))
    branch["compare"] = branch.get("compare", set()) | compared["compare"]
    for name, keys in branch.items():
        reads[name] |= keys
    return reads


def test_every_stage_declares_exactly_the_settings_it_reads(stage_reads):
    """Each dvc.yaml stage's params: are the settings its code read (recorded while it ran),
    minus those that never change an output: a setting cannot slip past DVC, and changing one
    re-runs no stage that ignores it."""
    from pipeline.config import RUN_ONLY

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert set(stages) == set(stage_reads)
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for name, stage in stages.items():
        read = {k for k in stage_reads[name] if k.rsplit(".", 1)[-1] not in RUN_ONLY}
        declared = _declared(stage)
        assert not read - declared, f"{name} reads {sorted(read - declared)}, undeclared"
        if shipped.get(name, {}).get("enabled") is False:
            continue  # a stage off by default (robustness) reads only that switch here
        assert not declared - read, f"{name} declares {sorted(declared - read)}, never read"


def test_every_setting_is_read_by_a_stage(stage_reads):
    """No setting in params.yaml is dead: some stage reads each one (a stage that is off by
    default, robustness, only its ``enabled`` switch)."""
    read = set().union(*stage_reads.values())
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    off = {f"{s}." for s, v in shipped.items() if isinstance(v, dict) and v.get("enabled") is False}
    off.add("spark.")  # read by `zhtopics run --engine spark` (tests/test_spark.py), no DVC stage
    assert {k for k in SHIPPED_KEYS - read if not k.startswith(tuple(off))} == set()


def test_changing_a_setting_makes_exactly_its_readers_stale(reproduced):
    """dvc status agrees with the declarations, checked for a few keys (the static test above
    covers every key): a shared key, a sweep-only key, an upstream key lda records, and a
    run-only key that re-runs nothing."""
    project, env = reproduced
    original = (project / "params.yaml").read_text(encoding="utf-8")
    try:
        for section, key, value, stale in [
            ("lda", "tolerance", 0.002, {"lda_sweep", "lda"}),
            ("lda", "sweep.holdout", 0.25, {"lda_sweep"}),
            ("segment", "hmm", False, {"segment", "lda"}),
            ("tfidf", "top_k", 5, {"tfidf"}),
            ("segment", "workers", 1, set()),
            # Whether the sweep fits at all follows lda.num_topics (lda.sweep.run: auto).
            ("lda", "num_topics", 4, {"lda_sweep", "lda"}),
            ("explorer", "random_docs", 10, {"explorer"}),
        ]:
            _set_param(project, original, section, key, value)
            status = json.loads(_dvc(project, env, "status", "--json").stdout)
            assert set(status) == stale, (section, key, status)
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
