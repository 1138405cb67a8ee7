"""The chained stages on the owner's sample corpus: contracts, accounting, quality, determinism."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from pipeline.io import Paths, read_json, read_table
from pipeline.lda import QUALITY_METRICS
from pipeline.schemas import ALL, STATUSES
from pipeline.text.token_filters import NUMERIC
from tests.conftest import ROOT, SAMPLE_RAW

# robustness is empty unless robustness.enabled (tests/test_robustness.py fills it).
TABLES = [name for name in ALL if name != "robustness"]


# The sample is one file of five speeches of one date: no column has two groups to compare.
EMPTY_ON_THE_SAMPLE = ("keyness", "topic_contrasts")


@pytest.mark.parametrize("name", TABLES)
def test_every_table_matches_its_schema(sample_run: Paths, name):
    rows = read_table(sample_run.table(name), ALL[name]).num_rows
    if name in EMPTY_ON_THE_SAMPLE:
        groups = read_table(sample_run.table("compare_groups"), ALL["compare_groups"])
        assert rows == 0 and "compared" not in groups.column("status").to_pylist()
    else:
        assert rows > 0


def test_robustness_is_off_by_default(sample_run: Paths):
    assert read_table(sample_run.table("robustness"), ALL["robustness"]).num_rows == 0


def test_every_document_is_accounted_for(sample_run: Paths):
    docs = read_table(sample_run.table("documents"), ALL["documents"])
    clean = read_table(sample_run.table("clean"), ALL["clean"])
    tokens = read_table(sample_run.table("tokens"), ALL["tokens"])
    ids = docs.column("doc_id").to_pylist()
    assert len(set(ids)) == len(ids)
    assert clean.column("doc_id").to_pylist() == ids
    assert tokens.column("doc_id").to_pylist() == ids
    assert set(clean.column("status").to_pylist()) <= set(STATUSES)
    assert len(set(docs.column("parent_id").to_pylist())) == 5
    doc_topics = read_table(sample_run.table("doc_topics"), ALL["doc_topics"])
    with_terms = set(
        read_table(sample_run.table("doc_terms"), ALL["doc_terms"]).column("doc_id").to_pylist()
    )
    assert set(doc_topics.column("doc_id").to_pylist()) == with_terms


def test_topic_mixes_are_distributions(sample_run: Paths, params):
    doc_topics = read_table(sample_run.table("doc_topics"), ALL["doc_topics"])
    sums = doc_topics.group_by("doc_id").aggregate([("weight", "sum")])
    assert pc.min(sums.column("weight_sum")).as_py() == pytest.approx(1.0)
    assert pc.max(sums.column("weight_sum")).as_py() == pytest.approx(1.0)
    topics = read_table(sample_run.table("topics"), ALL["topics"])
    assert topics.num_rows == read_json(sample_run.metrics / "lda.json")["num_topics"]
    assert sum(topics.column("prevalence").to_pylist()) == pytest.approx(1.0)


def test_sample_topics_are_made_of_content_words(sample_run: Paths, lexicon):
    """No function words, numbers, placeholders or speech boilerplate among the top terms."""
    terms = read_table(sample_run.table("topic_terms"), ALL["topic_terms"])
    top = terms.filter(pc.less_equal(terms.column("rank"), 10)).column("term").to_pylist()
    assert top
    for term in top:
        assert term not in lexicon.stopwords, term
        assert len(term) > 1, term
        assert not NUMERIC.fullmatch(term), term
        assert not any(c in term for c in "xX*×"), term
    vocabulary = set(
        read_table(sample_run.table("vocabulary"), ALL["vocabulary"]).column("term").to_pylist()
    )
    for boilerplate in ("同志们", "同志", "谢谢", "20xx", "xx", "平易近"):
        assert boilerplate not in vocabulary


def test_metrics_file(sample_run: Paths, params):
    metrics = read_json(sample_run.metrics / "lda.json")
    k = params.lda.num_topics
    if k == "auto":
        k = read_json(sample_run.metrics / "sweep.json")["recommended_k"]
    assert metrics["num_topics"] == k
    for key in QUALITY_METRICS:
        assert isinstance(metrics[key], float)
    assert (sample_run.models / "lda" / "model.json").is_file()


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_two_runs_give_identical_bytes(tmp_path, venv_env):
    """Separate processes (so a different hash seed each) write the same bytes, models included."""
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline",
                "run",
                "-q",
                "--raw",
                str(SAMPLE_RAW),
                "--out",
                str(out),
                "--params",
                str(ROOT / "params.yaml"),
            ],
            check=True,
            env=venv_env,
            cwd=tmp_path,
        )
        outs.append(_digests(out))
    assert len(outs[0]) >= len(TABLES) + 2
    assert outs[0] == outs[1]
