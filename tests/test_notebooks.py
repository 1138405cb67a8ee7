"""The notebooks: committed without outputs, and each runs top to bottom on a pipeline run."""

import gc
import json
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from pipeline.results import OPTIONAL as OPTIONAL_TABLES
from pipeline.results import OUT_VARIABLE
from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = [
    "1.0-corpus-overview",
    "2.0-keywords",
    "3.0-topics",
    "4.0-model-selection",
    "5.0-time-and-groups",
]
# The optional outputs each notebook draws when a run has them, and says so when not.
OPTIONAL = {
    "1.0-corpus-overview": ["ingest_report.parquet", "clean_audit.parquet"],
    "2.0-keywords": [],
    "3.0-topics": ["topic_prevalence.parquet", "representative_docs.parquet", "lda_vis.html"],
    "4.0-model-selection": ["sweep.parquet", "robustness.parquet"],
    "5.0-time-and-groups": [
        "compare_groups.parquet",
        "keyness.parquet",
        "topic_contrasts.parquet",
        "topic_trends.parquet",
        "topic_kwic.parquet",
    ],
}


def test_the_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_have_no_outputs(path: Path):
    """Fix with: jupyter nbconvert --clear-output --inplace notebooks/*.ipynb"""
    book = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(book["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name} cell {i} has outputs"
            assert cell["execution_count"] is None, f"{path.name} cell {i} has a count"
    assert set(book["metadata"]) <= {"kernelspec", "language_info"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_with_its_question(path: Path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and "**Question:" in first.source


def _execute(path: Path, out: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run the notebook in a kernel of this interpreter, in the notebooks folder."""
    monkeypatch.setenv(OUT_VARIABLE, str(out))
    book = nbformat.read(path, as_version=4)
    # Only the kernel of this environment (python3 from ipykernel, started with this
    # interpreter), whatever kernels the machine has installed elsewhere.
    specs = KernelSpecManager(kernel_dirs=[])
    kernel = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    client = NotebookClient(
        book, km=kernel, timeout=180, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    # Collect the kernel client now, while pytest still captures its logging: left for
    # interpreter exit, its __del__ logs to a closed stream.
    del client
    gc.collect()
    return book


def _outputs(book) -> list:
    return [o for cell in book.cells for o in cell.get("outputs", [])]


def _check(book, path: Path, draws: bool = True) -> None:
    outputs = _outputs(book)
    assert not [o for o in outputs if o.output_type == "error"]
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "missing from font" not in streams, f"{path.name}: tofu\n{streams}"
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert bool(pictures) == draws, f"{path.name}: {len(pictures)} pictures"


# Each notebook runs once or twice, within the suite's time budget: on the sample run as the
# pipeline writes it (every table), and on a copy without the optional tables (the notes).
# 3.0-topics draws the most and its absent-table branches are the report's, so it runs once.
RUNS = [
    ("1.0-corpus-overview", "sample_run"),
    ("2.0-keywords", "sample_run"),
    ("3.0-topics", "sample_run"),
    ("4.0-model-selection", "sample_run"),
    # The work-report fixture: dates, speakers, groups compared (the sample has none).
    ("5.0-time-and-groups", "reports_run"),
    ("1.0-corpus-overview", "bare_run"),
    ("4.0-model-selection", "bare_run"),
]


def _optional_outputs_read(path: Path) -> set[str]:
    """The optional outputs a notebook's code reads through ``results``."""
    code = "".join(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
    )
    used = {f"{name}.parquet" for name in OPTIONAL_TABLES if f"results.{name}" in code}
    return used | ({"lda_vis.html"} if "results.lda_vis" in code else set())


def test_every_notebook_is_run_and_its_optional_outputs_are_listed():
    """Each notebook in the folder runs; OPTIONAL (what a bare run lacks) is what its code reads,
    so a notebook that starts reading an optional table is checked for the note it must show."""
    assert {name for name, _ in RUNS} == {p.stem for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        assert _optional_outputs_read(path) == set(OPTIONAL[path.stem]), path.name


@pytest.mark.slow
@pytest.mark.parametrize("name,run", RUNS, ids=[f"{n}-{r}" for n, r in RUNS])
def test_notebook_runs_top_to_bottom(name: str, run: str, request, monkeypatch):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    out = request.getfixturevalue(run).processed
    book = _execute(path, out, monkeypatch)
    missing = [f for f in OPTIONAL[name] if not (out / f).is_file()]
    _check(book, path, draws=name != "4.0-model-selection" or not missing)
    streams = "".join(o.get("text", "") for o in _outputs(book) if "text" in o)
    assert ("This run has no" in streams) == bool(missing), missing
