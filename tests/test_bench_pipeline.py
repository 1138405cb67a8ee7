"""`zhtopics bench pipeline`: the doubled corpus, the DVC project, the printed report."""

import argparse
import dataclasses
import json
import re

import numpy as np
import pytest
import yaml

from pipeline.bench.common import Measured
from pipeline.bench.pipeline import (
    COPIES,
    STAGES,
    double_corpus,
    print_ratios,
    write_dvc_project,
)
from pipeline.cli import main
from pipeline.config import load_params
from pipeline.ingest import iter_ingest, read_raw_files
from tests.conftest import FIXTURES, ROOT


@pytest.fixture
def corpus(tmp_path):
    """A folder with a .txt document and a .tsv of 12 short documents on two themes."""
    themes = json.loads((FIXTURES / "two_themes.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    folder = tmp_path / "corpus"
    (folder / "essays").mkdir(parents=True)
    lines = ["id\ttext"]
    lines += [f"{n}\t{''.join(rng.choice(themes[n % 2], size=30))}。" for n in range(12)]
    (folder / "rows.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    essay = "".join(rng.choice(themes[0], size=40)) + "。\n"
    (folder / "essays" / "essay.txt").write_text(essay, encoding="utf-8")
    return folder


def _ingest(raw, params):
    settings = dataclasses.replace(params.ingest, unit="document")
    batches = iter_ingest(read_raw_files(raw), settings)
    return [row for batch in batches for row in batch.to_pylist()]


def test_doubled_corpus_has_every_document_twice_with_distinct_ids(corpus, tmp_path, params):
    single = _ingest(corpus, params)
    doubled = _ingest(double_corpus(corpus, tmp_path / "doubled"), params)
    assert len(single) == 13
    assert len(doubled) == 2 * len(single)
    assert len({row["doc_id"] for row in doubled}) == len(doubled)
    for copy in COPIES:
        rows = [row for row in doubled if row["source"].startswith(f"{copy}/")]
        assert [row["text"] for row in rows] == [row["text"] for row in single]


def test_dvc_project_has_the_bench_settings_and_every_listed_source(corpus, tmp_path):
    args = argparse.Namespace(
        params=ROOT / "params.yaml",
        overrides=["clean.deduplicate=false"],
        k=3,
        seed=7,
        text_column=None,
    )
    project = write_dvc_project(args, corpus, tmp_path / "project", tmp_path / "cache")
    params = load_params(project / "params.yaml")
    assert (params.lda.num_topics, params.lda.random_state) == (3, 7)
    assert (params.lda.sweep.k, params.lda.sweep.seeds) == ((3,), (7,))
    assert params.ingest.unit == "document"
    assert params.clean.deduplicate is False
    assert params.segment.cache_dir == str(tmp_path / "cache")
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    outputs = {o for s in stages.values() for o in s["outs"]}
    outputs |= {next(iter(m)) for s in stages.values() for m in s.get("metrics", [])}
    # A file inside an output folder (models/lda/topic_word.npy) is made, not a source.
    made = [o.rstrip("/") + "/" for o in outputs]
    deps = {d for s in stages.values() for d in s["deps"]} - outputs
    deps = {d for d in deps if not d.startswith(tuple(made))}
    assert sorted(d for d in deps if not (project / d).exists()) == []
    assert (project / ".dvc").is_dir()


def _measured(seconds: float, rss_mb: float) -> Measured:
    return Measured(seconds=seconds, cpu=seconds, rss=int(rss_mb * 1e6), pss=0, stdout="")


def test_ratios_and_goals(capsys):
    totals = {
        ("pipeline", "corpus"): {"measured": _measured(10, 1000)},
        ("plain script", "corpus"): {"measured": _measured(60, 2100)},
        ("pipeline", "corpus doubled"): {"measured": _measured(20, 1400)},
        ("plain script", "corpus doubled"): {"measured": _measured(120, 4200)},
    }
    print_ratios(totals, None)
    out = capsys.readouterr().out
    assert "speed-up on the corpus, plain script seconds / pipeline seconds: 6.00x" in out
    assert "doubled / single, pipeline: seconds 2.00x, peak RSS 1.40x" in out
    assert "doubled / single, plain script: seconds 2.00x, peak RSS 2.00x" in out
    goals = {line[:48].strip(): line[48:].split() for line in out.split("goal", 1)[1].splitlines()}
    assert goals["pipeline >= 5x faster than the plain script"] == ["6.00x", "yes"]
    assert goals["pipeline peak RSS <= 2000 MB"] == ["1000", "MB", "yes"]
    assert goals["pipeline peak RSS, doubled / single < 1.3x"] == ["1.40x", "no"]
    assert goals["no-op dvc repro <= 5 s"] == ["not", "run", "-"]
    assert goals["report < 3 s"] == ["not", "run", "-"]


def test_goals_with_k_auto_are_the_sweeps(capsys):
    stages = {"lda_sweep": _measured(12, 900), "lda": _measured(5, 400), "report": _measured(2, 1)}
    totals = {
        ("pipeline", "corpus"): {"measured": _measured(30, 1000), "stages": stages},
        ("plain script", "corpus"): {"measured": _measured(75, 2100)},
    }
    print_ratios(totals, None, auto=True)
    out = capsys.readouterr().out
    goals = {line[:48].strip(): line[48:].split() for line in out.split("goal", 1)[1].splitlines()}
    assert goals["pipeline >= 2x the plain script, K auto"] == ["2.50x", "yes"]
    assert goals["lda_sweep <= 2x the final model (lda)"] == ["2.40x", "no"]
    assert goals["report < 3 s"] == ["2.00", "s", "yes"]


@pytest.mark.slow
def test_bench_prints_every_stage_and_phase_and_the_ratios(corpus, capsys):
    """The command end to end on the tiny corpus: the real stages and the plain script."""
    code = main(
        ["bench", "pipeline", "-q", "--corpus", str(corpus), "-k", "2", "--skip", "dvc"]
        + ["--params", str(ROOT / "params.yaml")]
        + ["--set", "tfidf.min_df=1", "--set", "tfidf.max_df=1.0"]
    )
    assert code == 0
    out = capsys.readouterr().out
    number = r"\s+\d+\.\d\d\s+\d+\.\d\d"  # seconds, MB/s
    for name in [*STAGES, "start-up", "read", "dictionary", "write"]:
        assert re.search(rf"^{name}{number}", out, re.M), name
    assert len(re.findall(rf"^total{number}\s+\d+\.\d\s+\d+\s+\d+$", out, re.M)) == 2
    assert "documents: 13 ingested (kept 13); 13 modelled" in out
    # The whole pipeline as DVC runs it: compare, robustness (off) and explorer are timed too.
    assert re.search(r"^robustness\s.*off \(robustness.enabled: false\)$", out, re.M)
    assert re.search(r"^explorer\s.*\d+\.\d MB$", out, re.M)
    assert "documents: 13 read and modelled" in out
    assert re.search(r"^speed-up on the corpus, .*: \d+\.\d\dx", out, re.M)
    assert re.search(r"^pipeline >= 5x faster than the plain script\s+\S+x\s+(yes|no)$", out, re.M)
    assert re.search(r"^no-op dvc repro <= 5 s\s+not run\s+-$", out, re.M)
