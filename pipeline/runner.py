"""The stage table and how stages run in order: ``zhtopics run``, inference and the benchmarks
use it; the command line only parses arguments."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

from pipeline.config import Params
from pipeline.io import Paths

log = logging.getLogger("zhtopics")

# Stage name -> "module:function", imported only when the stage runs:
# `zhtopics segment` (and its worker processes) then load what segmentation needs, not gensim,
# scikit-learn or plotting.
STAGES: dict[str, str] = {
    "ingest": "pipeline.ingest:main",
    "clean": "pipeline.clean:main",
    "segment": "pipeline.segment:main",
    "tfidf": "pipeline.tfidf:main",
    "lda_sweep": "pipeline.lda_sweep:main",
    "lda": "pipeline.lda:main",
    "compare": "pipeline.compare:main",
    "robustness": "pipeline.robustness:main",
    "report": "pipeline.report:main",
    "explorer": "pipeline.explorer:main",
}

# One line per stage for `zhtopics --help`, in a researcher's words.
STAGE_HELP: dict[str, str] = {
    "ingest": "read raw files (txt, csv, json, docx, html, pdf, ...) into documents.parquet",
    "clean": "normalise text, remove boilerplate; mark short, non-Chinese, duplicate documents",
    "segment": "split each clean text into words and keep the content words (tokens.parquet)",
    "tfidf": "build the vocabulary, per-document term counts and TF-IDF keywords",
    "lda_sweep": "fit and score models for several numbers of topics K; recommend a K",
    "lda": "fit the topic model: topics, their terms, documents' topic mixes, prevalence",
    "compare": "what sets groups apart (key terms, topic differences), topics over time",
    "robustness": "refit under other segmentations and seeds: which topics survive (off: params)",
    "report": "write the HTML report (report/index.html): corpus, keywords, topics, K",
    "explorer": "write explorer.html: browse topics, documents and words offline, by group",
}


def stage_main(name: str) -> Callable[[Params, Paths], None]:
    """The ``main(params, paths)`` of a stage, importing its module."""
    module, function = STAGES[name].split(":")
    return getattr(importlib.import_module(module), function)


def run_stages(params: Params, paths: Paths, until: str | None = None) -> None:
    """Run the stages in order, stopping after ``until``."""
    for name in STAGES:
        log.info("stage %s", name)
        stage_main(name)(params, paths)
        if name == until:
            break
