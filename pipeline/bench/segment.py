"""Segmentation speed: the segment stage against plain jieba, cold, doubled and re-run.

`zhtopics bench segment --corpus PATH`.

Side by side in one run, each measurement in a fresh process: plain single-process
``jieba.lcut`` (the baseline), then the stage as a user runs it (``zhtopics segment`` in a new
process, start-up included: read clean.parquet, segment with the configured backend and
workers, filter, write tokens.parquet) with an empty cache, the stage on the corpus doubled
(every document twice, the copy with its own id and text, and its own empty cache), and a
re-run after adding 1% new documents. Each stage run reports what it took from the cache, and
the bench checks that against the state the row claims. Prints MB/s and peak RSS (the process
and its workers, sampled) for each, then the ratios, and last the floor of any re-run: what a
new process pays before it can read a document or segment a new one.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from pipeline.bench.common import PeakRss
from pipeline.io import Paths, read_table, write_table
from pipeline.schemas import CLEAN, TOKENS

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus", type=Path, required=True, help="a .txt/.tsv file or a folder of them"
    )
    parser.add_argument("--workers", type=int, help="override segment.workers")
    parser.add_argument("--backend", choices=["jieba", "rjieba"], help="override segment.backend")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["baseline", "doubled", "incremental"],
        help="leave out a measurement; repeatable",
    )
    parser.add_argument(
        "--userdict-effect",
        action="store_true",
        help="also count each user-dictionary word's tokens with and without the user dictionary",
    )
    parser.add_argument(
        "--parity",
        action="store_true",
        help="also report token agreement of the jieba and rjieba backends (same user dict)",
    )


# --------------------------------------------------------------------------- corpus


def read_corpus(path: Path) -> pa.Table:
    """A clean-table of the corpus: one document per .txt file, one per .tsv row. Text files
    are decoded as ingest decodes them (any of UTF-8, GB18030, Big5), and named by their path
    under the corpus folder (folders of categories often repeat file names)."""
    from pipeline.text.decode import decode

    path = Path(path)
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in {".txt", ".tsv"})
        if path.is_dir()
        else [path]
    )
    ids: list[str] = []
    texts: list[str] = []
    for file in files:
        if file.suffix == ".tsv":
            for row, text in enumerate(_tsv_texts(file)):
                ids.append(f"{file.name}:{row}")
                texts.append(text)
        else:
            ids.append(file.relative_to(path).as_posix() if path.is_dir() else file.name)
            texts.append(decode(file.read_bytes()).text)
    if not texts:
        raise ValueError(f"{path}: no .txt or .tsv documents found")
    return _clean_table(ids, texts)


def _tsv_texts(file: Path) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    with file.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        column = header.index("text") if "text" in header else len(header) - 1
        return [row[column] for row in reader if len(row) > column]


def _clean_table(ids: list[str], texts: list[str]) -> pa.Table:
    return pa.table(
        {
            "doc_id": ids,
            "text": texts,
            "n_chars": [len(t) for t in texts],
            "status": ["kept"] * len(texts),
            "reason": pa.nulls(len(texts), pa.string()),
            "cluster_id": pa.nulls(len(texts), pa.string()),
            "cluster_size": pa.nulls(len(texts), pa.int64()),
            "spin_score": pa.array([0.0] * len(texts), pa.float64()),
        }
    )


def _megabytes(table: pa.Table) -> float:
    return sum(len(t.encode("utf-8")) for t in table.column("text").to_pylist()) / 1e6


# --------------------------------------------------------------------------- measurement


def _baseline(folder: Path) -> dict:
    """Plain jieba.lcut in this one process (dictionary loaded before the clock starts)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    texts = read_table(Paths.under(folder, folder).table("clean"), CLEAN).column("text").to_pylist()
    jieba.initialize()
    with PeakRss() as rss:
        started, cpu = time.perf_counter(), _cpu_seconds()
        n_tokens = sum(len(jieba.lcut(t)) for t in texts)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rss": rss.peak,
        "pss": rss.peak_pss,
        "tokens": n_tokens,
    }


def _stage(args: argparse.Namespace, folder: Path, cache_dir: Path) -> dict:
    """``zhtopics segment`` on folder/clean.parquet as a user runs it: a new process, timed from
    its start (interpreter, imports, dictionary) to its exit, with ``cache_dir`` as its cache.
    Returns how many documents it took from the cache and how many it segmented, from its log.
    """
    import os
    import re
    import subprocess

    import psutil

    command = [sys.executable, "-m", "pipeline", "segment", "--params", str(args.params)]
    command += ["--processed", str(folder)]
    sets = [*args.overrides, f"segment.cache_dir={cache_dir}"]
    sets += [f"segment.{k}={v}" for k, v in (("workers", args.workers), ("backend", args.backend))]
    for item in sets:
        if not item.endswith("=None"):
            command += ["--set", item]
    env = {k: v for k, v in os.environ.items() if k != "ZHTOPICS_SEGMENT_CACHE"}
    cpu = _cpu_seconds()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    with PeakRss(psutil.Process(process.pid)) as rss:
        _, err = process.communicate()
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{err}")
    found = re.search(r"\((\d+) from the cache, (\d+) segmented", err)
    if found is None:
        raise RuntimeError(f"no summary line in the stage's log:\n{err}")
    tokens = read_table(Paths.under(folder, folder).table("tokens"), TOKENS).column("n_tokens")
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rss": rss.peak,
        "pss": rss.peak_pss,
        "tokens": sum(tokens.to_pylist()),
        "cached": int(found.group(1)),
        "segmented": int(found.group(2)),
    }


# What a new process needs before it can read clean.parquet and segment the new documents: the
# interpreter, pyarrow's parquet reader, and a tokenizer with the backend's own dictionary
# (``import rjieba`` builds one; jieba builds its prefix dictionary on initialize).
FLOOR_STEPS = {
    "interpreter": "pass",
    "pyarrow.parquet": "import pyarrow.parquet",
    "dictionary": {
        "rjieba": "import rjieba",
        "jieba": "import jieba; jieba.setLogLevel(60); jieba.Tokenizer().initialize()",
    },
}


def _floor(backend: str, repeats: int = 3) -> dict[str, float]:
    """Seconds each step of the floor adds, in a fresh process, the fastest of ``repeats``: a
    lower bound for any run, however little it has to do, with these libraries."""
    import subprocess

    code, total = [], {}
    for name, step in FLOOR_STEPS.items():
        code.append(step[backend] if isinstance(step, dict) else step)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "; ".join(code)], check=True)
            times.append(time.perf_counter() - started)
        total[name] = min(times)
    steps, before = {}, 0.0
    for name, seconds in total.items():
        steps[name], before = max(seconds - before, 0.0), seconds
    return steps


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its ended, waited-for children."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child(target, args, queue) -> None:
    logging.basicConfig(level=logging.WARNING)
    queue.put(target(*args))


def _measure(target, *args) -> dict:
    """Run one measurement in a fresh process, so none inherits another's memory or caches."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(target, args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def _parity(folder: Path, params_file: Path, sets: list[str]) -> tuple[float, int, int]:
    """Token agreement of the two backends on raw segmentation (same user dictionary)."""
    from pipeline.config import load_params
    from pipeline.text.tokenizers import load_lexicon

    params = load_params(params_file, sets).segment
    texts = read_table(Paths.under(folder, folder).table("clean"), CLEAN).column("text").to_pylist()
    cuts = {}
    for name in ("jieba", "rjieba"):
        backend = load_lexicon(dataclasses.replace(params, backend=name)).backend
        cuts[name] = [backend.cut(t, params.hmm) for t in texts]
    return token_agreement(cuts["jieba"], cuts["rjieba"])


def _userdict_effect(folder: Path, params_file: Path, sets: list[str]) -> list[tuple]:
    """Per user-dictionary word: its count among the content tokens with and without the
    dictionary, on the corpus normalised as the clean stage does (NFKC, replacements)."""
    from collections import Counter

    from pipeline.config import load_params
    from pipeline.text.normalize import normalize_text
    from pipeline.text.rules import load_replacements
    from pipeline.text.segmentation import segment_texts
    from pipeline.text.tokenizers import load_lexicon, read_userdict

    everything = load_params(params_file, sets)
    params = everything.segment
    replacements = load_replacements(everything.clean.replacements)
    table = read_table(Paths.under(folder, folder).table("clean"), CLEAN)
    texts = [normalize_text(t, replacements) for t in table.column("text").to_pylist()]
    counts = {}
    for name, userdict in (("with", params.userdict), ("without", None)):
        settings = dataclasses.replace(params, userdict=userdict)
        lists = segment_texts(texts, settings, load_lexicon(settings, check=False))
        counts[name] = Counter(lists.flatten().to_pylist())
    words = [e.word for e in read_userdict(params.userdict)] if params.userdict else []
    return [(w, counts["with"][w], counts["without"][w]) for w in words]


def token_agreement(a: list[list[str]], b: list[list[str]]) -> tuple[float, int, int]:
    """Share of tokens the two segmentations agree on: same text span in the same document,
    as 2 x common / (tokens in a + tokens in b). Also returns both token counts."""
    common = total_a = total_b = 0
    for x, y in zip(a, b, strict=True):
        sx, sy = _spans(x), _spans(y)
        common += len(sx & sy)
        total_a += len(sx)
        total_b += len(sy)
    return 2 * common / max(total_a + total_b, 1), total_a, total_b


def _spans(tokens: list[str]) -> set[tuple[int, int]]:
    spans, start = set(), 0
    for t in tokens:
        spans.add((start, start + len(t)))
        start += len(t)
    return spans


# --------------------------------------------------------------------------- report


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_params
    from pipeline.segment import worker_count

    corpus = read_corpus(args.corpus)
    seg = load_params(args.params, args.overrides).segment
    overrides = {k: v for k, v in (("workers", args.workers), ("backend", args.backend)) if v}
    seg = dataclasses.replace(seg, **overrides)
    cores = worker_count(seg)
    mb = _megabytes(corpus)
    print(
        f"corpus {args.corpus}: {corpus.num_rows} documents, {mb:.1f} MB; "
        f"backend {seg.backend}, {cores} worker(s)"
    )
    rows: list[tuple[str, float, dict, int]] = []
    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-") as tmp:
        tmp = Path(tmp)
        full = _folder(tmp / "full", corpus)

        if "baseline" not in args.skip:
            rows.append(("jieba.lcut, 1 process", mb, _measure(_baseline, full), 1))
            _print_row(*rows[-1])
        # Every stage run gets its own new cache folder, so it starts from the state it claims.
        stage = _stage(args, full, tmp / "cache-full")
        _expect(stage, corpus.num_rows)
        rows.append(("stage, empty cache", mb, stage, cores))
        _print_row(*rows[-1])
        if "doubled" not in args.skip:
            doubled = doubled_corpus(corpus)
            folder = _folder(tmp / "doubled", doubled)
            result = _stage(args, folder, tmp / "cache-doubled")
            _expect(result, doubled.num_rows)
            rows.append(("stage, corpus doubled", _megabytes(doubled), result, cores))
            _print_row(*rows[-1])
        if "incremental" not in args.skip:
            keep = [i for i in range(corpus.num_rows) if i % 100 != 99]
            older = _folder(tmp / "older", corpus.take(keep))
            _stage(args, older, tmp / "cache-incremental")
            rerun = _stage(args, full, tmp / "cache-incremental")
            _expect(rerun, corpus.num_rows, corpus.num_rows - len(keep))
            rows.append(("stage, re-run after +1% documents", mb, rerun, cores))
            _print_row(*rows[-1])

        print()
        by_name = {name: result for name, _, result, _ in rows}
        base = by_name.get("jieba.lcut, 1 process")
        if base:
            print(f"speed-up over jieba.lcut: {base['seconds'] / stage['seconds']:.1f}x")
            print(f"CPU-seconds ratio (jieba.lcut / stage): {base['cpu'] / stage['cpu']:.1f}x")
        if "stage, corpus doubled" in by_name:
            doubled = by_name["stage, corpus doubled"]
            print(
                f"peak RSS, doubled / single corpus: {doubled['rss'] / stage['rss']:.2f}x "
                f"(PSS {doubled['pss'] / stage['pss']:.2f}x)"
            )
        if "stage, re-run after +1% documents" in by_name:
            ratio = by_name["stage, re-run after +1% documents"]["seconds"] / stage["seconds"]
            print(f"re-run after +1% documents / full run: {100 * ratio:.1f}%")
            steps = _floor(seg.backend)
            floor = sum(steps.values())
            parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in steps.items())
            # The two loads could overlap on two cores; the interpreter comes first either way.
            overlapped = steps["interpreter"] + max(steps["pyarrow.parquet"], steps["dictionary"])
            print(
                f"floor of any re-run in a new process ({parts}): {floor:.2f} s = "
                f"{100 * floor / stage['seconds']:.1f}% of the full run; with the two loads "
                f"side by side {overlapped:.2f} s = {100 * overlapped / stage['seconds']:.1f}%"
            )
        if args.userdict_effect:
            print("\nuser-dictionary word: content tokens with / without the user dictionary")
            for word, with_, without in _measure(
                _userdict_effect, full, args.params, args.overrides
            ):
                print(f"  {word}\t{with_}\t{without}")
        if args.parity:
            agreement, n_jieba, n_rjieba = _measure(_parity, full, args.params, args.overrides)
            print(
                f"token agreement jieba vs rjieba (same user dictionary): {100 * agreement:.3f}% "
                f"({n_jieba} and {n_rjieba} tokens)"
            )
    return 0


def doubled_corpus(corpus: pa.Table) -> pa.Table:
    """Every document twice: the copy has its own id and its own text (a suffix), so neither
    the cache nor the stage's merging of identical texts can skip the second half."""
    copy = corpus.set_column(
        0, "doc_id", pa.array([f"{i}#2" for i in corpus.column("doc_id").to_pylist()])
    )
    texts = [f"{t}\n副本" for t in corpus.column("text").to_pylist()]
    copy = copy.set_column(1, "text", pa.array(texts, pa.string()))
    copy = copy.set_column(2, "n_chars", pa.array([len(t) for t in texts], pa.int64()))
    return pa.concat_tables([corpus, copy])


def _expect(result: dict, documents: int, most_segmented: int | None = None) -> None:
    """Fail rather than print a number measured on another cache state than the row claims:
    an empty cache (nothing found in it), or at most ``most_segmented`` documents not in it."""
    cached, segmented = result["cached"], result["segmented"]
    if most_segmented is None:
        ok = cached == 0 and segmented == documents
    else:
        ok = cached + segmented == documents and segmented <= most_segmented
    if not ok:
        raise RuntimeError(
            f"the stage took {cached} of {documents} documents from the cache and segmented "
            f"{segmented}: not the cache state this measurement claims"
        )


def _folder(folder: Path, table: pa.Table) -> Path:
    write_table(table, Paths.under(folder, folder).table("clean"), CLEAN)
    return folder


def _print_row(name: str, mb: float, result: dict, cores: int) -> None:
    rate = mb / result["seconds"]
    print(
        f"{name:34s} {mb:6.1f} MB {result['seconds']:7.2f} s {rate:6.2f} MB/s "
        f"({rate / cores:5.2f} MB/s per core; {mb / result['cpu']:5.2f} MB per CPU-second)  "
        f"peak RSS {result['rss'] / 2**20:5.0f} MiB (PSS {result['pss'] / 2**20:4.0f})  "
        f"{result['tokens']} tokens"
    )
