"""Shared fixtures: the project's params, the sample corpus, and one pipeline run on it."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from pipeline.config import Params, TfidfParams, load_params, recording_reads
from pipeline.io import Paths
from pipeline.runner import STAGES, run_stages, stage_main
from pipeline.text.tokenizers import Lexicon, load_lexicon
from pipeline.tfidf import tfidf

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_RAW = ROOT / "data" / "raw"
SAMPLE_FILE = SAMPLE_RAW / "womens_federation_work_meeting_speeches.txt"


def _leaf_keys(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in data.items():
        if isinstance(value, dict):
            keys |= _leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


# Every leaf key of the shipped params.yaml ("lda.sweep.k").
SHIPPED_KEYS = _leaf_keys(yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def params() -> Params:
    """The shipped settings (params.yaml at the project root)."""
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def lexicon(params: Params) -> Lexicon:
    return load_lexicon(params.segment)


# The settings each stage of the sample run read (section.key), filled by ``sample_run``.
SAMPLE_READS: dict[str, set[str]] = {}


def run_recording_reads(params: Params, paths: Paths, stages=tuple(STAGES)) -> dict[str, set[str]]:
    """Run ``stages`` in order in this process; the settings each one read. The sweep's fits
    run here too (lda.workers 1: reads in worker processes are not seen; workers never change
    an output)."""
    params = dataclasses.replace(params, lda=dataclasses.replace(params.lda, workers=1))
    reads = {}
    for name in stages:
        with recording_reads() as seen:
            stage_main(name)(params, paths)
        reads[name] = set(seen)
    return reads


@pytest.fixture(scope="session")
def sample_run(params: Params, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The whole pipeline on the owner's sample corpus, run once per test session (noting
    the settings each stage reads, for tests/test_dvc.py)."""
    paths = Paths.under(SAMPLE_RAW, tmp_path_factory.mktemp("sample_run"))
    SAMPLE_READS.update(run_recording_reads(params, paths))
    return paths


@pytest.fixture
def venv_env() -> dict[str, str]:
    """Environment for subprocesses: this interpreter's bin folder first on PATH, no analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def table(**columns) -> pa.Table:
    """A small in-memory table from column lists."""
    return pa.table(columns)


@pytest.fixture(scope="session")
def bare_run(sample_run: Paths, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The sample run without its optional tables, as a partial or older run has it."""
    from tests.contract_tables import write_bare_run

    return write_bare_run(sample_run, tmp_path_factory.mktemp("bare_run"))


@pytest.fixture(scope="session")
def two_themes() -> tuple[pa.Table, pa.Table, pa.Table]:
    """Vocabulary, doc_terms and tokens of 40 documents of 30 tokens drawn alternately from two
    disjoint word sets (sport, finance): a model of two topics must split them."""
    themes = json.loads((FIXTURES / "two_themes.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    ids = [f"d{n:02d}" for n in range(40)]
    docs = [rng.choice(themes[n % 2], size=30).tolist() for n in range(40)]
    tokens = pa.table({"doc_id": ids, "tokens": docs, "n_tokens": [len(d) for d in docs]})
    # Ten words a theme drawn thirty times: each word is in half the documents, about as evenly
    # as chance spreads it, which the background score would flag; no word is in all of them.
    result = tfidf(tokens, TfidfParams(min_df=1, max_df=1.0, background_min_df=1.0))
    return result.vocabulary, result.doc_terms, tokens


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium (Debian's, via /usr/bin/chromedriver) for the session's browser
    tests; each test reads its own network and console logs (tests/browser.py)."""
    from tests.browser import start_chromium

    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


# The work-report fixture (one file per report, 1954政府工作报告_周恩来.txt ...) and the settings
# a user of such a folder sets: the path pattern; small groups for ten files; a quick sweep.
REPORTS = FIXTURES / "work_reports"
REPORTS_OVERRIDES = (
    r"ingest.path_pattern=(?P<year>\d{4})政府工作报告_(?P<speaker>[^_.]+)",
    "compare.min_docs=2",
    "compare.bootstrap=100",
    "tfidf.min_df=1",
    "lda.num_topics=4",
    "lda.sweep.k=[3, 4]",
    "lda.sweep.seeds=[1]",
)


@pytest.fixture(scope="session")
def reports_params() -> Params:
    return load_params(ROOT / "params.yaml", REPORTS_OVERRIDES)


@pytest.fixture(scope="session")
def reports_run(reports_params: Params, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The whole pipeline on the work-report fixture folder, run once per test session."""
    paths = Paths.under(REPORTS, tmp_path_factory.mktemp("reports_run"))
    run_stages(reports_params, paths)
    return paths
