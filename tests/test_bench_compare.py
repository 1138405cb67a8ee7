"""`zhtopics bench compare` on the work-report run: the parts, the goal line, the whole stage."""

import re

from pipeline.cli import main
from tests.conftest import ROOT


def test_bench_prints_each_part_the_goal_and_the_whole_stage(reports_run, capsys):
    args = ["bench", "compare", "--processed", str(reports_run.processed)]
    args += ["--params", str(ROOT / "params.yaml"), "--set", "compare.min_docs=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for part in ("read doc_topics", "read doc_terms", "keyness", "contrasts", "trends"):
        assert re.search(rf"{part}\s+\d+\.\d\d s", out), part
    assert "column speaker: 3 groups compared" in out
    assert re.search(r"keyness \+ contrasts\s+\d+\.\d\d s \(goal < 10 s: met\)", out)
    assert re.search(r"zhtopics compare\s+\d+\.\d\d s wall, \d+\.\d\d s CPU, peak RSS \d+ MB", out)
    # The run's own tables are left as they were: the stage ran on a copy.
    assert not any(reports_run.processed.glob("zhtopics-bench-compare-*"))
