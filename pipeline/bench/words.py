"""Benchmark of new-word discovery: `zhtopics bench words [--corpus PATH] [--msr DIR]`.

``--corpus``: discovery (segment.new_words) on a corpus as the segment stage runs it, over
clean.parquet in a new process: wall and CPU seconds, peak memory, words found.
``--msr``: segmentation quality with and without the discovered words on the SIGHAN 2005 MSR
test set: discovery on the raw test text, ``zhtopics cut`` (the project's tokenizer, without the
user dictionary) over the same lines, word-span precision, recall and F1 against the gold
segmentation, beside plain ``jieba.lcut`` with the same HMM setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from pipeline.bench.common import run_measured

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, help="a .txt/.tsv file or a folder of them")
    parser.add_argument(
        "--msr", type=Path, help="folder with msr_test.utf8 and msr_test_gold.utf8 (seg-msr)"
    )


# --------------------------------------------------------------------------- scoring


@dataclasses.dataclass(frozen=True)
class SpanScore:
    precision: float
    recall: float
    f1: float
    gold: int
    predicted: int
    correct: int


def _spans(tokens: Iterable[str]) -> set[tuple[int, int]]:
    spans, start = set(), 0
    for token in tokens:
        spans.add((start, start + len(token)))
        start += len(token)
    return spans


def span_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> SpanScore:
    """Word-span precision, recall and F1 of predicted segmentations against gold ones (the
    SIGHAN bakeoff measure). Spans are character offsets in the text of all lines end to end,
    so a character the gold file puts at the end of a line rather than the start of the next
    (the MSR test set does so 8 times) costs nothing; the whole text must be the same."""
    gold_spans = _spans(t for line in gold for t in line)
    pred_spans = _spans(t for line in predicted for t in line)
    gold_text = "".join(t for line in gold for t in line)
    pred_text = "".join(t for line in predicted for t in line)
    if gold_text != pred_text:
        at = next(
            (i for i, (a, b) in enumerate(zip(gold_text, pred_text, strict=False)) if a != b),
            min(len(gold_text), len(pred_text)),
        )
        raise ValueError(
            f"the segmented text differs from the gold text at character {at}: "
            f"{gold_text[at : at + 10]!r} != {pred_text[at : at + 10]!r}"
        )
    n_ok = len(gold_spans & pred_spans)
    n_gold, n_pred = len(gold_spans), len(pred_spans)
    precision = n_ok / n_pred if n_pred else 0.0
    recall = n_ok / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SpanScore(precision, recall, f1, n_gold, n_pred, n_ok)


# --------------------------------------------------------------------------- MSR


def read_lines(path: Path) -> list[str]:
    return [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8-sig").splitlines()]


def discover_lines(lines: Sequence[str], seg) -> pa.Table:
    """The new-words table of some lines of text, each line a document (no user dictionary
    when ``seg.userdict`` is None)."""
    from pipeline.segment import discovery_checks, discovery_thresholds
    from pipeline.text.new_words import discover
    from pipeline.text.tokenizers import load_lexicon

    texts = pa.array(list(lines), pa.string())

    def batches():
        for start in range(0, len(texts), 4096):
            yield texts.slice(start, 4096)

    lexicon = load_lexicon(seg, check=False)
    return discover(batches, discovery_thresholds(seg), discovery_checks(seg, lexicon))


def msr_scores(folder: Path, seg) -> list[tuple[str, SpanScore, int]]:
    """(name, score, words added) for plain jieba and the project's tokenizer without and
    with the discovered words; ``seg`` gives the backend and the HMM setting."""
    import jieba

    from pipeline.cut import cut_lines
    from pipeline.text.new_words import accepted_words

    raw = read_lines(folder / "msr_test.utf8")
    gold = [line.split() for line in read_lines(folder / "msr_test_gold.utf8")]
    jieba.setLogLevel(logging.WARNING)
    lcut = [[t for t in jieba.lcut(x, HMM=seg.hmm) if t.strip()] for x in raw]
    rows = [("jieba.lcut", span_f1(gold, lcut), 0)]
    seg = dataclasses.replace(seg, userdict=None)
    plain = [line.split() for line in cut_lines(raw, seg)]
    rows.append((f"zhtopics cut ({seg.backend})", span_f1(gold, plain), 0))
    words = accepted_words(discover_lines(raw, seg))
    used = [line.split() for line in cut_lines(raw, seg, words)]
    rows.append((f"zhtopics cut --new-words ({seg.backend})", span_f1(gold, used), len(words)))
    return rows


# --------------------------------------------------------------------------- corpus


def _discover_file(clean: str, params_file: str, out: str, *overrides: str) -> None:
    """Runs in the measured process: discovery on a clean.parquet as the segment stage does."""
    from pipeline.config import load_params
    from pipeline.io import write_table
    from pipeline.schemas import NEW_WORDS
    from pipeline.segment import find_new_words
    from pipeline.text.tokenizers import load_lexicon

    seg = load_params(params_file, overrides).segment
    table = find_new_words(Path(clean), seg, load_lexicon(seg, check=False))
    write_table(table, Path(out), NEW_WORDS)
    print(json.dumps({"rows": table.num_rows, "accepted": sum(table["accepted"].to_pylist())}))


def _corpus(args: argparse.Namespace) -> None:
    from pipeline.bench.segment import _megabytes, read_corpus
    from pipeline.io import write_table
    from pipeline.schemas import CLEAN

    corpus = read_corpus(args.corpus)
    mb = _megabytes(corpus)
    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-words-") as tmp:
        clean = Path(tmp) / "clean.parquet"
        write_table(corpus, clean, CLEAN)
        del corpus
        out = Path(tmp) / "new_words.parquet"
        code = (
            "import sys; from pipeline.bench.words import _discover_file; "
            "_discover_file(*sys.argv[1:])"
        )
        params = str(args.params.resolve())
        command = [sys.executable, "-c", code, str(clean), params, str(out), *args.overrides]
        measured = run_measured(command)
        found = json.loads(measured.stdout.strip().splitlines()[-1])
        from pipeline.io import read_table
        from pipeline.schemas import NEW_WORDS

        top = read_table(out, NEW_WORDS).slice(0, 15).column("word").to_pylist()
    print(f"corpus {args.corpus}: {mb:.1f} MB of text")
    print(
        f"discovery: {measured.seconds:.1f} s wall, {measured.cpu:.1f} s CPU, "
        f"peak RSS {measured.rss / 2**20:,.0f} MB (PSS {measured.pss / 2**20:,.0f} MB), "
        f"{found['rows']:,} words listed, {found['accepted']:,} accepted"
    )
    print("top: " + " ".join(top))


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_params

    if args.corpus is None and args.msr is None:
        raise ValueError("bench words: give --corpus PATH, --msr DIR or both")
    if args.corpus is not None:
        _corpus(args)
    if args.msr is not None:
        seg = load_params(args.params, args.overrides).segment
        print(f"MSR test set, hmm={seg.hmm}: precision recall F1 (words added)")
        for name, score, added in msr_scores(args.msr, seg):
            print(
                f"  {name:<40} {score.precision:.4f} {score.recall:.4f} {score.f1:.4f}"
                + (f"  ({added} words)" if added else "")
            )
    return 0
