import json

import numpy as np

from pipeline.bench.quality import diversity, npmi, seed_stability
from pipeline.cli import main
from tests.conftest import FIXTURES, ROOT


def test_npmi_diversity_stability():
    texts = ["足球比赛", "足球比赛", "股票市场", "股票市场"]
    assert npmi([["足球", "比赛"]], texts, n=2) == 1.0
    assert npmi([["足球", "股票"]], texts, n=2) == -1.0
    assert diversity([["a", "b"], ["a", "c"]]) == 0.75
    runs = [{"top": [["a", "b"], ["c", "d"]]}, {"top": [["c", "d"], ["a", "b"]]}]
    assert seed_stability(runs) == 1.0
    # One topic of the second seed matches half of a first-seed topic: both directions count.
    runs = [{"top": [["a", "b"], ["c", "d"]]}, {"top": [["a", "x"], ["c", "d"]]}]
    assert seed_stability(runs) == (1 / 3 + 1) / 2
    assert np.isnan(seed_stability(runs[:1]))


def test_bench_prints_both_sides(tmp_path, capsys):
    """The command end to end on a small labelled TSV (the real stages, both sides)."""
    themes = json.loads((FIXTURES / "two_themes.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    lines = ["label\ttext"]
    for n in range(30):
        lines.append(f"{'ab'[n % 2]}\t{''.join(rng.choice(themes[n % 2], size=40))}。")
    corpus = tmp_path / "tiny.tsv"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(
        ["bench", "quality", "-q", "--corpus", str(corpus), "--label-column", "label"]
        + ["-k", "2", "--seeds", "1", "2", "--plain-passes", "2"]
        + ["--params", str(ROOT / "params.yaml"), "--set", "lda.iterations=100"]
        + ["--set", "tfidf.min_df=1", "--set", "tfidf.max_df=1.0"]
        # Two themes of ten words: each is in half the documents, as evenly as chance gives.
        + ["--set", "tfidf.background_min_df=1.0", "--set", "lda.term_weight=one"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "plain script" in out and "pipeline (tomotopy)" in out
    nmi_line = next(line for line in out.splitlines() if line.startswith("NMI"))
    assert float(nmi_line.split()[-1]) > 0.9  # two disjoint themes are found
    assert "model seconds" in out
    assert "lda.term_weight=one" in out and "tfidf.background_min_df=1.0" in out
