"""The zhtopics command line: one sub-command per stage, plus ``run`` for the whole chain."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.config import ConfigError, Params, load_params
from pipeline.io import Paths

log = logging.getLogger("zhtopics")

# Stage name -> "module:function", imported only when the stage runs: `zhtopics segment` (and
# its worker processes) then load what segmentation needs, not gensim, scikit-learn or plotting.
STAGES: dict[str, str] = {
    "ingest": "pipeline.ingest:main",
    "clean": "pipeline.clean:main",
    "segment": "pipeline.segment:main",
    "tfidf": "pipeline.tfidf:main",
    "lda_sweep": "pipeline.lda_sweep:main",
    "lda": "pipeline.lda:main",
    "report": "pipeline.report:main",
}


def stage_main(name: str) -> Callable[[Params, Paths], None]:
    """The ``main(params, paths)`` of a stage, importing its module."""
    module, function = STAGES[name].split(":")
    return getattr(importlib.import_module(module), function)


# Benchmarks: `zhtopics bench <name>`; each module has add_arguments(parser) and run(args) -> int.
# Imported only for `zhtopics bench` (bench_ingest alone pulls in pandas through ingest).
BENCHES = {
    "ingest": "pipeline.bench_ingest",
    "pipeline": "pipeline.bench_pipeline",
    "quality": "pipeline.bench_quality",
    "segment": "pipeline.bench_segment",
    "words": "pipeline.bench_words",
}


def run_stages(params: Params, paths: Paths, until: str | None = None) -> None:
    """Run the stages in order, stopping after ``until``."""
    for name in STAGES:
        log.info("stage %s", name)
        stage_main(name)(params, paths)
        if name == until:
            break


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="settings file (default: params.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting; repeatable",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def build_parser(benches: bool = True) -> argparse.ArgumentParser:
    """The argument parser; without ``benches`` the benchmark modules are not imported."""
    parser = argparse.ArgumentParser(
        prog="zhtopics",
        description=(
            "Topic modelling of Chinese text: "
            "ingest, clean, segment, tfidf, lda_sweep, lda, report."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = Paths()
    for name in STAGES:
        p = sub.add_parser(name, help=f"Stage {name}")
        _common(p)
        p.add_argument("--raw", type=Path, default=defaults.raw)
        p.add_argument("--processed", type=Path, default=defaults.processed)
        p.add_argument("--models", type=Path, default=defaults.models)
        p.add_argument("--metrics", type=Path, default=defaults.metrics)
    p = sub.add_parser("run", help="run the stages in order on any folder, without DVC")
    _common(p)
    p.add_argument("--raw", type=Path, required=True, help="folder of raw documents")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder (tables; models/ and metrics/ below it)",
    )
    p.add_argument("--until", choices=list(STAGES), help="stop after this stage")
    p = sub.add_parser("infer", help="topic mixes of new documents under the saved model")
    _common(p)
    p.add_argument("path", type=Path, help="a raw file or folder of new documents")
    p.add_argument("--out", type=Path, required=True, help="doc_topics parquet file to write")
    p.add_argument("--model", type=Path, default=defaults.models / "lda", help="saved model")
    p = sub.add_parser(
        "cut", help="segment standard input line by line with the project's tokenizer"
    )
    _common(p)
    from pipeline import cut

    cut.add_arguments(p)
    p = sub.add_parser("bench", help="benchmarks that print numbers side by side")
    bench = p.add_subparsers(dest="bench", required=True)
    for name in BENCHES if benches else ():
        module = importlib.import_module(BENCHES[name])
        b = bench.add_parser(name, help=(module.__doc__ or "").split("\n")[0])
        _common(b)
        module.add_arguments(b)
    return parser


def _configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("gensim", "jieba", "smart_open"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(benches=argv[:1] == ["bench"]).parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    try:
        params = load_params(args.params, args.overrides)
        if args.command == "run":
            run_stages(params, Paths.under(args.raw, args.out), args.until)
        elif args.command == "infer":
            from pipeline import infer

            infer.run(params, args.path, args.model, args.out)
        elif args.command == "cut":
            from pipeline import cut

            cut.main(params, args)
        elif args.command == "bench":
            return importlib.import_module(BENCHES[args.bench]).run(args)
        else:
            paths = Paths(args.raw, args.processed, args.models, args.metrics)
            stage_main(args.command)(params, paths)
    except (ConfigError, ValueError, OSError) as exc:
        # Bad input or settings: the message names the file, row or key. -v adds the traceback.
        log.error("%s", exc, exc_info=args.verbose)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
