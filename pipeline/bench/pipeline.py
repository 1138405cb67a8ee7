"""The whole pipeline against a plain jieba + gensim script: seconds, MB/s, peak RSS per stage.

`zhtopics bench pipeline --corpus PATH` (`make bench` runs it on ../shared/corpora/bench). In one
run, side by side:

- the whole pipeline, every stage from ingest to explorer in its own new process as a user or
  DVC runs it, with ``ingest.unit=document``, ``lda.num_topics`` K (``--auto``: "auto", so
  lda_sweep fits its models; otherwise it fits nothing), one seed and an empty segment cache,
  the ``--set`` overrides on top; beside each stage a note on what it did (encodings, fits, K,
  columns compared, charts, the explorer's size);
- the plain script a researcher would write, in one new process: every .txt/.md file whole (the
  first of UTF-8, Big5, GB18030 that decodes it) and every .tsv/.csv row's text column is a
  document; ``jieba.lcut``, the project's stopword list,
  gensim ``Dictionary`` and ``LdaModel`` (K topics, 10 passes, the seed, defaults otherwise),
  pandas to write the tokens and the topic mixes to parquet.

Per stage (and per phase of the script) it prints wall seconds, MB/s (raw corpus bytes per
second), CPU seconds (user + system, worker processes included) and peak RSS of the process tree
(sampled; PSS beside it). ``--doubled`` runs both again on the corpus doubled: every file twice,
under two folders, so every document has a second id (clean sets the copies aside as
duplicates unless ``--set clean.deduplicate=false``). Then it times a ``dvc repro`` that has
nothing to do, in a temporary DVC project on the corpus, and prints the ratios and goals last.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.bench.common import Measured, run_measured
from pipeline.io import usable_cores
from pipeline.runner import STAGES

if TYPE_CHECKING:
    from pipeline.config import Params

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("read", "segment", "dictionary", "lda", "write")
COPIES = ("copy-1", "copy-2")
MB = 1e6
# The goals of issues 7 and 18 (on 2 cores).
GOAL_SPEEDUP = 5.0
GOAL_SPEEDUP_AUTO = 2.0  # lda.num_topics: auto, the sweep fitted
GOAL_SWEEP_OVER_LDA = 2.0
GOAL_REPORT_SECONDS = 3.0
GOAL_PEAK_MB = 2000.0
GOAL_GROWTH = 1.3
GOAL_NOOP_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus",
        type=Path,
        required=True,
        help="a folder of raw documents, or one file, read in place",
    )
    parser.add_argument(
        "-k", "--k", dest="k", type=int, default=20, help="topics, both sides (default: 20)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="the random seed of both sides (default: 1)"
    )
    parser.add_argument(
        "--text-column", help="text column of .tsv/.csv files (default: ingest.text_column)"
    )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="the pipeline chooses K (lda.num_topics auto: the sweep runs); the script keeps -k",
    )
    parser.add_argument(
        "--doubled",
        action="store_true",
        help="also run both sides on the corpus doubled (every document twice, distinct ids)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["pipeline", "baseline", "dvc"],
        help="leave out a measurement; repeatable",
    )


# --------------------------------------------------------------------------- corpus


def raw_folder(corpus: Path, folder: Path) -> Path:
    """The corpus as a raw folder: itself, or for one file a folder holding a link to it."""
    corpus = corpus.resolve()
    if corpus.is_dir():
        return corpus
    if not corpus.is_file():
        raise ValueError(f"--corpus {corpus}: no such file or folder")
    folder.mkdir(parents=True)
    (folder / corpus.name).symlink_to(corpus)
    return folder


def double_corpus(raw: Path, folder: Path) -> Path:
    """A raw folder with every file of ``raw`` twice, linked under two sub-folders: every
    document comes twice, and its ids (made from the file's path) differ."""
    from pipeline.ingest import list_raw_files

    for path in list_raw_files(raw):
        if path.is_file():
            for copy in COPIES:
                link = folder / copy / path.relative_to(raw)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path.resolve())
    return folder


def _files_and_megabytes(raw: Path) -> tuple[int, float]:
    from pipeline.ingest import list_raw_files

    files = [p for p in list_raw_files(raw) if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / MB


# --------------------------------------------------------------------------- the two sides


def _settings(args: argparse.Namespace, cache_dir: Path, *extra: str) -> list[str]:
    """The bench's settings (K, the seed, documents as units, an empty segment cache), then
    ``extra``, then the user's --set on top."""
    k = "auto" if getattr(args, "auto", False) else args.k
    sets = ["ingest.unit=document", f"lda.num_topics={k}", f"lda.random_state={args.seed}"]
    sets.append(f"segment.cache_dir={json.dumps(str(cache_dir))}")  # a quoted YAML string
    if args.text_column:
        sets.append(f"ingest.text_column={json.dumps(args.text_column, ensure_ascii=False)}")
    return [*sets, *extra, *args.overrides]


def _environment() -> dict[str, str]:
    """For the child processes: this interpreter's bin folder first on PATH (``zhtopics`` and
    ``dvc`` are the environment's), this project's code first on PYTHONPATH, no DVC analytics,
    and no cache override from ZHTOPICS_SEGMENT_CACHE (each run's cache starts empty)."""
    env = {k: v for k, v in os.environ.items() if k != "ZHTOPICS_SEGMENT_CACHE"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run_pipeline(
    params: Path, raw: Path, out: Path, sets: list[str], mb: float
) -> tuple[dict[str, Measured], dict]:
    """Each stage, ingest to explorer, in a new process; prints a row per stage as it ends.
    Returns the measurements and the document counts the stages wrote to their metrics."""
    from pipeline.io import read_json

    results: dict[str, Measured] = {}
    for stage in STAGES:
        command = [sys.executable, "-m", "pipeline", stage, "-q", "--params", str(params)]
        command += ["--raw", str(raw), "--processed", str(out)]
        command += ["--models", str(out / "models"), "--metrics", str(out / "metrics")]
        for item in sets:
            command += ["--set", item]
        results[stage] = run_measured(command, env=_environment())
        _say(_row(stage, mb, results[stage]) + "  " + stage_note(stage, out))
    ingest = read_json(out / "metrics" / "ingest.json")
    documents = {
        "documents": ingest["documents"],
        "status": ingest["status"],
        "modelled": read_json(out / "metrics" / "lda.json")["num_documents"],
    }
    return results, documents


def run_plain(
    args: argparse.Namespace, raw: Path, out: Path, text_column: str, stopwords: Path
) -> tuple[Measured, dict]:
    """The plain script in a new process; its measurement and its own report (phases, counts)."""
    command = [sys.executable, "-m", "pipeline.bench.pipeline", str(raw), str(out)]
    command += ["-k", str(args.k), "--seed", str(args.seed)]
    command += [f"--text-column={text_column}", f"--stopwords={stopwords}"]
    measured = run_measured(command, env=_environment())
    return measured, json.loads(measured.stdout.strip().splitlines()[-1])


def stage_note(stage: str, out: Path) -> str:
    """Why a stage took its time, from what it wrote: files and encodings, documents kept,
    whether the sweep fitted (and what), K and sweeps of the model, the columns compared,
    whether robustness ran, the report's charts, the explorer's size."""
    from pipeline.io import read_json

    metrics = out / "metrics"
    try:
        if stage == "ingest":
            import pyarrow.parquet as pq

            table = pq.read_table(out / "documents.parquet", columns=["encoding"])
            encodings = table.column("encoding").value_counts().to_pylist()
            shown = ", ".join(f"{e['values']} {e['counts']:,}" for e in encodings)
            return f"{table.num_rows:,} documents ({shown})"
        if stage == "clean":
            status = read_json(metrics / "ingest.json")["status"]
            return ", ".join(f"{k} {v:,}" for k, v in sorted(status.items()))
        if stage in ("segment", "tfidf"):
            import pyarrow.parquet as pq

            if stage == "segment":
                tokens = pq.read_table(out / "tokens.parquet", columns=["n_tokens"])
                return f"{sum(tokens.column('n_tokens').to_pylist()):,} tokens"
            return f"{pq.ParquetFile(out / 'vocabulary.parquet').metadata.num_rows:,} terms"
        if stage == "lda_sweep":
            sweep = read_json(metrics / "sweep.json")
            if sweep.get("skipped"):
                return f"no fit: {sweep['skipped'].split(',')[0]}"
            fits = len(sweep["k"]) * len(sweep["seeds"])
            chosen = sweep["recommended_k"]
            return f"{fits} fits (K {sweep['k']} x seeds {sweep['seeds']}) -> K {chosen}"
        if stage == "lda":
            lda = read_json(metrics / "lda.json")
            return f"K {lda['num_topics']}, {lda['num_documents']:,} documents"
        if stage == "compare":
            import pyarrow.parquet as pq

            groups = pq.read_table(out / "compare_groups.parquet").to_pylist()
            columns = sorted({g["column"] for g in groups if g["status"] == "compared"})
            return f"columns compared: {', '.join(columns) or 'none'}"
        if stage == "robustness":
            import pyarrow.parquet as pq

            variants = set(pq.read_table(out / "robustness.parquet").column("variant").to_pylist())
            return f"{len(variants)} variants" if variants else "off (robustness.enabled: false)"
        if stage == "report":
            figures = len(list((out / "report").glob("*.png")))
            return f"{figures} charts"
        if stage == "explorer":
            return f"{(out / 'explorer.html').stat().st_size / 1e6:.1f} MB"
    except (OSError, KeyError, ValueError):
        pass
    return ""


def read_any(data: bytes) -> str:
    """How a researcher reads files of unknown encoding without a library: the first codec
    that decodes them without error (UTF-8, Big5, GB18030), else GB18030 with replacements."""
    for encoding in ("utf-8", "big5", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("gb18030", errors="replace")


def plain_script(
    raw: Path, out: Path, k: int, seed: int, text_column: str, stopwords: Path
) -> dict:
    """The baseline, written as a researcher would: no multiprocessing, no tricks. Returns the
    seconds of each phase and the counts; the imports belong to the process's start-up."""
    import csv

    import jieba
    import pandas as pd
    from gensim.corpora import Dictionary
    from gensim.models import LdaModel

    jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter
    marks = [time.perf_counter()]
    stop = {line.split("#")[0].strip() for line in stopwords.read_text("utf-8").splitlines()}
    csv.field_size_limit(sys.maxsize)  # articles are longer than the csv module's default
    ids, texts, other_files = [], [], 0
    for path in sorted(raw.rglob("*")):
        name = path.relative_to(raw).as_posix()
        if not path.is_file() or any(p.startswith(".") for p in path.relative_to(raw).parts):
            continue
        suffix = path.suffix.lower()
        if suffix in (".txt", ".md"):
            ids.append(name)
            texts.append(read_any(path.read_bytes()))
        elif suffix in (".tsv", ".csv"):
            with path.open(encoding="utf-8", errors="replace", newline="") as handle:
                rows = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
                if text_column not in (rows.fieldnames or []):
                    raise ValueError(f"{path}: no column {text_column!r}; it has {rows.fieldnames}")
                for i, row in enumerate(rows):
                    ids.append(f"{name}:{i}")
                    texts.append(row[text_column] or "")
        else:
            other_files += 1
    marks.append(time.perf_counter())
    tokens = [[w for w in jieba.lcut(t) if w.strip() and w not in stop] for t in texts]
    marks.append(time.perf_counter())
    dictionary = Dictionary(tokens)
    corpus = [dictionary.doc2bow(t) for t in tokens]
    marks.append(time.perf_counter())
    model = LdaModel(corpus, id2word=dictionary, num_topics=k, passes=10, random_state=seed)
    marks.append(time.perf_counter())
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"doc_id": ids, "tokens": tokens}).to_parquet(out / "tokens.parquet")
    mixes = [
        (doc, topic, weight)
        for doc, mix in zip(ids, model.get_document_topics(corpus), strict=True)
        for topic, weight in mix
    ]
    frame = pd.DataFrame(mixes, columns=["doc_id", "topic", "weight"])
    frame.to_parquet(out / "doc_topics.parquet")
    marks.append(time.perf_counter())
    return {
        "phases": {name: b - a for name, a, b in zip(PHASES, marks, marks[1:], strict=False)},
        "documents": len(texts),
        "other_files": other_files,
        "terms": len(dictionary),
    }


def _plain_main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.bench.pipeline RAW OUT ...``: the plain script, its report as JSON."""
    parser = argparse.ArgumentParser(description="the plain script of zhtopics bench pipeline")
    parser.add_argument("raw", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("-k", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--text-column", required=True)
    parser.add_argument("--stopwords", type=Path, required=True)
    a = parser.parse_args(argv)
    print(json.dumps(plain_script(a.raw, a.out, a.k, a.seed, a.text_column, a.stopwords)))
    return 0


def write_dvc_project(args: argparse.Namespace, raw: Path, project: Path, cache_dir: Path) -> Path:
    """A new DVC project on the corpus: dvc.yaml, the code and dictionaries it lists, data/raw
    a link to the corpus, and params.yaml with the bench's settings, the sweep cut to K and the
    seed (so that the one full repro before the no-op one does not take too long), and the
    report's keywords grouped by year: grouped by parent_id (the default), documents as units
    would give the report one keyword panel per document, thousands on a large corpus."""
    import yaml

    from pipeline.config import read_params_data

    project.mkdir(parents=True)
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    code = {d for stage in stages.values() for d in stage["deps"] if d.startswith("pipeline/")}
    for name in ["dvc.yaml", *sorted(code)]:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "data" / "dict", project / "data" / "dict")
    (project / "data" / "raw").symlink_to(raw)
    extra = (f"lda.sweep.k=[{args.k}]", f"lda.sweep.seeds=[{args.seed}]")
    settings = read_params_data(args.params, _settings(args, cache_dir, *extra))
    (project / "params.yaml").write_text(
        yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    run_measured(["dvc", "init", "--no-scm", "-q"], _environment(), project)
    return project


def run_dvc(project: Path) -> tuple[Measured, Measured]:
    """``dvc repro`` in ``project``: once for everything, then once with nothing to do."""
    env = _environment()
    everything = run_measured(["dvc", "repro"], env, project)
    nothing = run_measured(["dvc", "repro"], env, project)
    if "Running stage" in nothing.stdout:
        raise RuntimeError(f"the second dvc repro ran a stage:\n{nothing.stdout}")
    return everything, nothing


# --------------------------------------------------------------------------- report


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_params

    if args.k < 1:
        raise ValueError(f"-k {args.k}: the number of topics is an integer >= 1")
    args.params = args.params.resolve()
    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-") as tmp:
        tmp = Path(tmp)
        # Every setting is checked before any work (the cache folder need not exist yet).
        params = load_params(args.params, _settings(args, tmp / "cache"))
        raw = raw_folder(args.corpus, tmp / "raw")
        corpora = {"corpus": raw}
        if args.doubled:
            corpora["corpus doubled"] = double_corpus(raw, tmp / "raw-doubled")
        files, mb = _files_and_megabytes(raw)
        cores = usable_cores()
        _say(
            f"corpus {args.corpus}: {files} files, {mb:.1f} MB; K = {args.k}, seed {args.seed}, "
            f"{cores} core(s)"
        )
        totals: dict[tuple[str, str], dict] = {}
        for n, (name, folder) in enumerate(corpora.items()):
            totals.update(_measure_sides(args, params, name, folder, tmp / str(n)))
        dvc = None
        if "dvc" not in args.skip:
            _say("\ndvc repro in a new DVC project on the corpus (sweep cut to K and the seed)")
            try:
                dvc = run_dvc(write_dvc_project(args, raw, tmp / "dvc", tmp / "cache-dvc"))
            except RuntimeError as exc:  # the measurements above are still worth their table
                _say(f"dvc repro failed: {exc}")
            else:
                _say(f"dvc repro, everything: {dvc[0].seconds:9.2f} s")
                _say(f"dvc repro, nothing to do: {dvc[1].seconds:6.2f} s")
    _print_summary(totals)
    print_ratios(totals, dvc, auto=args.auto)
    return 0


def _measure_sides(
    args: argparse.Namespace, params: Params, name: str, raw: Path, tmp: Path
) -> dict[tuple[str, str], dict]:
    """Both sides on one corpus, each printing its table; their totals and document counts."""
    mb = _files_and_megabytes(raw)[1]
    totals = {}
    if "pipeline" not in args.skip:
        (tmp / "cache").mkdir(parents=True)
        _say(f"\npipeline, {name}: each stage in a new process")
        _say(_header("stage"))
        sets = _settings(args, tmp / "cache")
        stages, docs = run_pipeline(args.params, raw, tmp / "pipeline", sets, mb)
        totals["pipeline", name] = _print_pipeline_total(stages, docs, mb)
        shutil.rmtree(tmp / "pipeline")
    if "baseline" not in args.skip:
        _say(f"\nplain script, {name}: one new process")
        _say(_header("phase"))
        text_column, stopwords = params.ingest.text_column, params.segment.stopwords
        measured, report = run_plain(args, raw, tmp / "plain", text_column, stopwords)
        totals["plain script", name] = _print_plain(measured, report, mb)
        shutil.rmtree(tmp / "plain")
    return totals


def _say(text: str = "") -> None:
    print(text, flush=True)  # a run takes minutes: each line as soon as it is known


def _header(first: str) -> str:
    return f"{first:<14}{'seconds':>9}{'MB/s':>8}{'CPU s':>9}{'peak RSS MB':>13}{'PSS MB':>8}"


def _row(name: str, mb: float, m: Measured | None, seconds: float | None = None) -> str:
    seconds = m.seconds if m is not None else seconds
    line = f"{name:<14}{seconds:>9.2f}{mb / seconds:>8.2f}"
    if m is not None:
        line += f"{m.cpu:>9.1f}{m.rss / MB:>13.0f}{m.pss / MB:>8.0f}"
    return line


def _print_pipeline_total(stages: dict[str, Measured], docs: dict, mb: float) -> dict:
    total = Measured(
        seconds=sum(m.seconds for m in stages.values()),
        cpu=sum(m.cpu for m in stages.values()),
        rss=max(m.rss for m in stages.values()),
        pss=max(m.pss for m in stages.values()),
        stdout="",
    )
    _say(_row("total", mb, total))
    status = ", ".join(f"{k} {v:,}" for k, v in sorted(docs["status"].items()))
    _say(f"documents: {docs['documents']:,} ingested ({status}); {docs['modelled']:,} modelled")
    return {
        "measured": total,
        "stages": stages,
        "modelled": docs["modelled"],
        "documents": docs["documents"],
    }


def _print_plain(measured: Measured, report: dict, mb: float) -> dict:
    phases = report["phases"]
    _say(_row("start-up", mb, None, measured.seconds - sum(phases.values())))
    for name, seconds in phases.items():
        _say(_row(name, mb, None, seconds))
    _say(_row("total", mb, measured))
    _say(f"documents: {report['documents']:,} read and modelled, {report['terms']:,} terms")
    if report["other_files"]:
        _say(f"({report['other_files']} file(s) of other types not read by the plain script)")
    return {"measured": measured, "modelled": report["documents"], "documents": report["documents"]}


def _print_summary(totals: dict[tuple[str, str], dict]) -> None:
    if not totals:
        return
    _say("\nside by side")
    _say(f"{'':<30}{'seconds':>9}{'CPU s':>9}{'peak RSS MB':>13}{'documents':>11}{'modelled':>10}")
    for (side, corpus), t in totals.items():
        m = t["measured"]
        _say(
            f"{f'{side}, {corpus}':<30}{m.seconds:>9.1f}{m.cpu:>9.1f}{m.rss / MB:>13.0f}"
            f"{t['documents']:>11,}{t['modelled']:>10,}"
        )


def print_ratios(
    totals: dict[tuple[str, str], dict], dvc: tuple | None, auto: bool = False
) -> None:
    """The ratios, then each goal of the issues with what was measured and whether it holds
    (``auto``: the pipeline chose K, so its speed-up goal is the one for a fitted sweep)."""

    def measured(side: str, corpus: str = "corpus") -> Measured | None:
        found = totals.get((side, corpus))
        return found["measured"] if found else None

    _say("\nratios")
    speedup = growth = None
    for corpus in ("corpus", "corpus doubled"):
        pipe, plain = measured("pipeline", corpus), measured("plain script", corpus)
        if pipe and plain:
            ratio = plain.seconds / pipe.seconds
            speedup = ratio if corpus == "corpus" else speedup
            _say(
                f"speed-up on the {corpus}, plain script seconds / pipeline seconds: {ratio:.2f}x "
                f"(CPU seconds {plain.cpu / pipe.cpu:.2f}x; "
                f"peak RSS pipeline / plain script {pipe.rss / plain.rss:.2f}x)"
            )
    for side in ("pipeline", "plain script"):
        single, doubled = measured(side), measured(side, "corpus doubled")
        if single and doubled:
            _say(
                f"doubled / single, {side}: seconds {doubled.seconds / single.seconds:.2f}x, "
                f"peak RSS {doubled.rss / single.rss:.2f}x"
            )
            growth = doubled.rss / single.rss if side == "pipeline" else growth
    pipe = measured("pipeline")
    peak = pipe.rss / MB if pipe else None
    noop = dvc[1].seconds if dvc else None
    stages = totals.get(("pipeline", "corpus"), {}).get("stages", {})
    report = stages["report"].seconds if "report" in stages else None
    sweep_over_lda = (
        stages["lda_sweep"].seconds / stages["lda"].seconds
        if auto and "lda_sweep" in stages and "lda" in stages
        else None
    )
    goal = GOAL_SPEEDUP_AUTO if auto else GOAL_SPEEDUP
    goals = [
        (
            f"pipeline >= {goal:g}x faster than the plain script"
            if not auto
            else f"pipeline >= {goal:g}x the plain script, K auto",
            speedup,
            "{:.2f}x",
            speedup is not None and speedup >= goal,
        ),
        (
            f"report < {GOAL_REPORT_SECONDS:g} s",
            report,
            "{:.2f} s",
            report is not None and report < GOAL_REPORT_SECONDS,
        ),
        (
            f"pipeline peak RSS <= {GOAL_PEAK_MB:.0f} MB",
            peak,
            "{:.0f} MB",
            peak is not None and peak <= GOAL_PEAK_MB,
        ),
        (
            f"pipeline peak RSS, doubled / single < {GOAL_GROWTH:g}x",
            growth,
            "{:.2f}x",
            growth is not None and growth < GOAL_GROWTH,
        ),
        (
            f"no-op dvc repro <= {GOAL_NOOP_SECONDS:g} s",
            noop,
            "{:.2f} s",
            noop is not None and noop <= GOAL_NOOP_SECONDS,
        ),
    ]
    if auto:
        goals.append(
            (
                f"lda_sweep <= {GOAL_SWEEP_OVER_LDA:g}x the final model (lda)",
                sweep_over_lda,
                "{:.2f}x",
                sweep_over_lda is not None and sweep_over_lda <= GOAL_SWEEP_OVER_LDA,
            )
        )
    _say(f"\n{'goal':<48}{'measured':>12}  holds")
    for goal, value, form, holds in goals:
        shown, verdict = (
            ("not run", "-") if value is None else (form.format(value), "yes" if holds else "no")
        )
        _say(f"{goal:<48}{shown:>12}  {verdict}")


if __name__ == "__main__":
    sys.exit(_plain_main())
