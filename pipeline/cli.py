"""The zhtopics command line: one sub-command per stage, plus ``run`` for the whole chain."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0] or ".").resolve() == Path(__file__).parent.resolve():
    # Run as a file (spark-submit .../pipeline/cli.py): Python put the package's own folder
    # first on the path, where its io.py and config.py would stand for other modules; the
    # folder that holds the package goes there instead.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from pipeline.config import ConfigError, load_params
from pipeline.io import Paths
from pipeline.runner import STAGE_HELP, STAGES, run_stages, stage_main

log = logging.getLogger("zhtopics")

# Benchmarks: `zhtopics bench <name>`; each module has add_arguments(parser) and run(args) -> int.
# Imported only for `zhtopics bench` (bench.ingest alone pulls in pandas through ingest).
BENCHES = {
    "compare": "pipeline.bench.compare",
    "ingest": "pipeline.bench.ingest",
    "pipeline": "pipeline.bench.pipeline",
    "quality": "pipeline.bench.quality",
    "segment": "pipeline.bench.segment",
    "spark": "pipeline.bench.spark",
    "words": "pipeline.bench.words",
}


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
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
            "ingest, clean, segment, tfidf, lda_sweep, lda, compare, robustness, report, explorer."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = Paths()
    for name in STAGES:
        p = sub.add_parser(name, help=STAGE_HELP[name], description=STAGE_HELP[name])
        _add_settings_options(p)
        p.add_argument("--raw", type=Path, default=defaults.raw)
        p.add_argument("--processed", type=Path, default=defaults.processed)
        p.add_argument("--models", type=Path, default=defaults.models)
        p.add_argument("--metrics", type=Path, default=defaults.metrics)
    p = sub.add_parser("run", help="run the stages in order on any folder, without DVC")
    _add_settings_options(p)
    p.add_argument(
        "--raw", required=True, help="folder of raw documents (with --engine spark: any URI)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder (tables; models/ and metrics/ below it); with --engine spark "
        "any URI Spark writes (hdfs://, s3a://, ...)",
    )
    p.add_argument("--until", choices=list(STAGES), help="stop after this stage")
    p.add_argument(
        "--engine",
        choices=["local", "spark"],
        default="local",
        help="local: this machine's processes; spark: Apache Spark (pip install "
        "'zhtopics[spark]'; settings in the spark: section of params.yaml)",
    )
    p.add_argument("--master", help="Spark master URL for --engine spark (default: spark.master)")
    p = sub.add_parser(
        "infer", help="give new documents topic mixes under the saved model, without refitting"
    )
    _add_settings_options(p)
    p.add_argument("path", type=Path, help="a raw file or folder of new documents")
    p.add_argument("--out", type=Path, required=True, help="doc_topics parquet file to write")
    p.add_argument("--model", type=Path, default=defaults.models / "lda", help="saved model")
    p = sub.add_parser("kwic", help="concordance lines of a term from a run's clean texts")
    _add_settings_options(p)
    from pipeline import kwic

    kwic.add_arguments(p)
    p = sub.add_parser(
        "cut", help="segment standard input line by line with the project's tokenizer"
    )
    _add_settings_options(p)
    from pipeline import cut

    cut.add_arguments(p)
    p = sub.add_parser(
        "validate", help="human validation: word and topic intrusion tasks for coders, and scores"
    )
    from pipeline import validate

    validate.add_arguments(p, _add_settings_options)
    p = sub.add_parser(
        "bench", help="benchmarks: speed, memory and topic quality against plain scripts"
    )
    bench = p.add_subparsers(dest="bench", required=True)
    for name in BENCHES if benches else ():
        module = importlib.import_module(BENCHES[name])
        b = bench.add_parser(name, help=(module.__doc__ or "").split("\n")[0])
        _add_settings_options(b)
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
        if args.command == "run" and args.engine == "spark":
            from pipeline.spark import require_pyspark

            require_pyspark()
            from pipeline.spark import stages

            stages.run(params, args.raw, args.out, args.master, args.until)
        elif args.command == "run":
            if args.master:
                raise ConfigError("--master is for --engine spark")
            run_stages(params, Paths.under(Path(args.raw), Path(args.out)), args.until)
        elif args.command == "infer":
            from pipeline import infer

            infer.run(params, args.path, args.model, args.out)
        elif args.command == "cut":
            from pipeline import cut

            cut.main(params, args)
        elif args.command == "kwic":
            from pipeline import kwic

            return kwic.run(args, Paths())
        elif args.command == "validate":
            from pipeline import validate

            return validate.run(args)
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
