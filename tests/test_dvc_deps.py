"""dvc.yaml lists, for each stage, exactly the pipeline files its module imports (files, not
folders), so that editing a module re-runs the stages that use it and no others."""

import ast
from pathlib import Path

import pytest
import yaml

from pipeline.runner import STAGES
from tests.conftest import ROOT


def _module_file(name: str) -> Path | None:
    """The file of module ``name`` of the package, or None when it is not one."""
    path = ROOT / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _imported_modules(name: str) -> set[str]:
    """``name`` and every pipeline module it imports, directly or not, at the top of a file or
    inside a function, or by name (a lazy import is still a dependency of the stage)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("pipeline.")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
                todo.append(node.module)
                todo += [f"{node.module}.{a.name}" for a in node.names]  # a submodule
            elif isinstance(node, ast.Call) and node.args:  # import_module("pipeline.plots")
                first = node.args[0]
                if isinstance(first, ast.Constant) and str(first.value).startswith("pipeline."):
                    todo.append(first.value)
    return seen


def _code_files(name: str) -> set[str]:
    """The files a stage's module imports; package __init__ files hold only docstrings (and
    the version), so they are left out."""
    files = {_module_file(m) for m in _imported_modules(name)}
    return {p.relative_to(ROOT).as_posix() for p in files if p.name != "__init__.py"}


STAGE_DEPS = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_deps_list_exactly_the_code_it_imports(stage):
    module = STAGES[stage].split(":")[0]
    listed = {d for d in STAGE_DEPS[stage]["deps"] if d.startswith("pipeline")}
    data = {d for d in listed if not d.endswith(".py")}  # package data (pipeline/templates/)
    assert all((ROOT / d).is_file() for d in data), f"{stage}: list files, not folders"
    listed -= data
    expected = _code_files(module)
    assert listed == expected, (
        f"dvc.yaml stage {stage}: missing {sorted(expected - listed)}, "
        f"not imported {sorted(listed - expected)}"
    )


def test_lazy_imports_are_followed():
    assert "pipeline/text/tokenizers.py" in _code_files("pipeline.segment")
    assert "pipeline/clean.py" not in _code_files("pipeline.segment")
