"""`zhtopics bench ingest` on a four-file folder: both runs, every stage, the ratios, the report."""

import json
import re

import numpy as np
import pytest

from pipeline.bench.ingest import _half
from pipeline.cli import main
from pipeline.ingest import list_raw_files
from tests.conftest import FIXTURES, ROOT


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Four text files of two paragraphs each, in words of the two_themes fixture."""
    themes = json.loads((FIXTURES / "two_themes.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("raw")
    for n in range(4):
        paragraphs = ["".join(rng.choice(themes[n % 2], size=60)) + "。" for _ in range(2)]
        (folder / f"{n}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return folder


def test_half_links_the_first_half_of_the_files_in_ingest_order(raw, tmp_path):
    assert _half(raw, tmp_path / "half") == 2
    linked = sorted(p.name for p in (tmp_path / "half").iterdir())
    assert linked == [p.name for p in list_raw_files(raw)[:2]]
    assert all((tmp_path / "half" / name).resolve() == raw / name for name in linked)


def test_bench_prints_both_runs_the_ratios_and_the_ingest_report(raw, capsys):
    code = main(["bench", "ingest", "--raw", str(raw), "--params", str(ROOT / "params.yaml")])
    assert code == 0
    out = capsys.readouterr().out
    rows = {
        (m["run"], m["stage"]): m
        for m in re.finditer(
            r"^(?P<run>half|all)\s+(?P<files>\d+)\s+(?P<docs>\d+)\s+(?P<stage>ingest|clean)\s+"
            r"(?P<seconds>[\d.]+)\s+(?P<peak>\d+)$",
            out,
            re.MULTILINE,
        )
    }
    assert set(rows) == {(r, s) for r in ("half", "all") for s in ("ingest", "clean")}
    assert rows["half", "ingest"]["files"] == "2" and rows["all", "ingest"]["files"] == "4"
    # The same kind of files: twice the files, twice the documents.
    assert int(rows["all", "clean"]["docs"]) == 2 * int(rows["half", "clean"]["docs"]) > 0
    assert all(int(m["peak"]) > 0 for m in rows.values())
    for stage in ("ingest", "clean"):
        assert re.search(rf"all / half, {stage}: time x[\d.]+, peak memory x[\d.]+", out)
    assert "ingest report (all):" in out
    assert re.search(r"^  status\s+kept\s+\d+ docs\s+4 files$", out, re.MULTILINE)


def test_utf8_twin_holds_the_same_texts_as_utf8(tmp_path):
    from pipeline.bench.ingest import write_utf8_twin

    raw = tmp_path / "raw"
    (raw / "gb").mkdir(parents=True)
    (raw / "big5").mkdir()
    simplified, traditional = "妇女权益保障法的规定。" * 20, "婦女權益保障法的規定。" * 20
    (raw / "gb" / "a.txt").write_bytes(simplified.encode("gb18030"))
    (raw / "big5" / "b.txt").write_bytes(traditional.encode("big5"))
    (raw / "t.csv").write_bytes("text\n内容\n".encode())
    files, encodings = write_utf8_twin(raw, tmp_path / "twin")
    assert files == 3 and encodings == {"gb18030": 1, "big5": 1}
    assert (tmp_path / "twin" / "gb" / "a.txt").read_text(encoding="utf-8") == simplified
    assert (tmp_path / "twin" / "big5" / "b.txt").read_text(encoding="utf-8") == traditional
    assert (tmp_path / "twin" / "t.csv").resolve() == (raw / "t.csv").resolve()


def test_bench_utf8_twin_prints_both_sides_and_the_ratio(raw, capsys):
    args = ["bench", "ingest", "--utf8-twin", "--rounds", "1", "--raw", str(raw)]
    assert main([*args, "--params", str(ROOT / "params.yaml")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^legacy\s+1\s+[\d.]+", out, re.MULTILINE)
    assert re.search(r"^utf-8\s+1\s+[\d.]+", out, re.MULTILINE)
    assert re.search(r"legacy / UTF-8 twin, fastest of each: [\d.]+x wall", out)
    assert "goal: ingest within 1.5x of the UTF-8 twin" in out
