"""Stage robustness: do the topics survive another word segmentation, or another seed?

The topic model is refitted, at the main model's K and with its settings, on the same clean
text under alternative segmentations (jieba's HMM off, without the user dictionary, nouns and
verbs only, with collocations joined) and under other seeds. Each variant's topics are matched
one to one to the main model's (the Hungarian method, ``scipy.optimize.linear_sum_assignment``)
by the overlap of their top terms: the share of a main topic's ``top_n`` terms that are among
the matched topic's ``top_n`` (a collocation ``a_b`` counts as its parts, so that joining words
does not hide a topic). Top terms, not topic-word distributions, because the variants have
different vocabularies: a term-by-term distance would need them aligned, and the top terms are
what a reader calls the topic.

Segmentation variants are segmented through the segment stage's cache (one file per settings),
so a second run costs only the fits. Off unless ``robustness.enabled`` is true: then the stage
writes an empty table and the report says so.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.optimize import linear_sum_assignment

from pipeline.config import Params, RobustnessParams, SegmentParams
from pipeline.io import Paths, iter_tables, read_json, read_table, write_table
from pipeline.schemas import DOC_TERMS, ROBUSTNESS, TOKENS, TOPIC_TERMS, TOPICS, VOCABULARY

log = logging.getLogger(__name__)

# Variant names; "seed_<n>" for each of robustness.seeds.
NO_HMM, NO_USERDICT, NOUNS_VERBS, PHRASES = "no_hmm", "no_userdict", "nouns_verbs", "phrases"
SEGMENTATIONS = (NO_HMM, NO_USERDICT, NOUNS_VERBS, PHRASES)
PHRASE_DELIMITER = "_"


def segment_variants(segment: SegmentParams, params: RobustnessParams) -> dict[str, SegmentParams]:
    """The alternative segment settings asked for; one that equals the main settings (HMM
    already off, say) is left out, since it would refit the main model."""
    changes = {
        NO_HMM: {"hmm": False},
        NO_USERDICT: {"userdict": None},
        NOUNS_VERBS: {"pos": params.pos},
        PHRASES: {"phrases_threshold": params.phrases_threshold},
    }
    variants = {}
    for name in params.variants:
        if name not in changes:
            continue
        variant = dataclasses.replace(segment, **changes[name])
        if variant == segment:
            log.info("robustness: %s is the main segmentation; left out", name)
            continue
        variants[name] = variant
    return variants


def seed_variants(random_state: int, params: RobustnessParams) -> dict[str, int]:
    """``seed_<n>`` for each other seed, when ``seeds`` is among the variants."""
    if "seeds" not in params.variants:
        return {}
    return {f"seed_{s}": s for s in params.seeds if s != random_state}


def term_sets(topic_terms: pa.Table, top_n: int) -> list[set[str]]:
    """Each topic's ``top_n`` terms (by rank), a collocation also as its parts."""
    k = max(topic_terms.column("topic").to_pylist(), default=-1) + 1
    sets: list[set[str]] = [set() for _ in range(k)]
    for row in topic_terms.to_pylist():
        if row["rank"] <= top_n:
            sets[row["topic"]].add(row["term"])
            if PHRASE_DELIMITER in row["term"]:
                sets[row["topic"]].update(p for p in row["term"].split(PHRASE_DELIMITER) if p)
    return sets


def similarity_matrix(main: list[set[str]], other: list[set[str]], top_n: int) -> np.ndarray:
    """Share of each main topic's top terms among each other topic's (rows: main topics)."""
    out = np.zeros((len(main), len(other)))
    for i, a in enumerate(main):
        for j, b in enumerate(other):
            out[i, j] = len(a & b) / max(1, min(top_n, len(a)))
    return out


def match_topics(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one matching of highest total similarity: for each main topic (row) its
    variant topic and similarity (-1 and 0 when the variant has fewer topics)."""
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    match = np.full(similarity.shape[0], -1, dtype=np.int64)
    value = np.zeros(similarity.shape[0])
    match[rows] = cols
    value[rows] = similarity[rows, cols]
    return match, value


def robustness_rows(
    variant: str,
    main_sets: list[set[str]],
    main_labels: list[str],
    other_terms: pa.Table,
    other_labels: list[str],
    top_n: int,
    min_similarity: float,
) -> dict[str, list]:
    """The rows of robustness.parquet for one variant."""
    similarity = similarity_matrix(main_sets, term_sets(other_terms, top_n), top_n)
    match, value = match_topics(similarity)
    return {
        "variant": [variant] * len(main_sets),
        "topic": list(range(len(main_sets))),
        "label": main_labels,
        "match": [m if m >= 0 else None for m in match.tolist()],
        "match_label": [other_labels[m] if m >= 0 else None for m in match.tolist()],
        "similarity": np.round(value, 4).tolist(),
        "survives": (np.round(value, 4) >= min_similarity).tolist(),
    }


def robustness_table(parts: list[dict[str, list]]) -> pa.Table:
    columns = {name: [v for part in parts for v in part[name]] for name in ROBUSTNESS.columns}
    return ROBUSTNESS.conform(pa.table(columns, schema=ROBUSTNESS.schema))


def survivors(table: pa.Table) -> list[int]:
    """Main topics matched at robustness.min_similarity or more under every variant."""
    survived: dict[int, bool] = {}
    for row in table.to_pylist():
        survived[row["topic"]] = survived.get(row["topic"], True) and row["survives"]
    return sorted(t for t, ok in survived.items() if ok)


# --- the stage ----------------------------------------------------------------------------------


def _fit(params: Params, paths: Paths, k: int, seed: int):
    """The lda stage's model at K topics on the tables in ``paths``, with ``seed``."""
    from pipeline.lda import lda

    vocabulary = read_table(paths.table("vocabulary"), VOCABULARY)
    doc_terms = iter_tables(
        paths.table("doc_terms"), DOC_TERMS, columns=["doc_id", "term_id", "count"]
    )
    tokens = iter_tables(paths.table("tokens"), TOKENS)
    lda_params = dataclasses.replace(params.lda, random_state=seed)
    return lda(vocabulary, doc_terms, tokens, lda_params, k)


def _segment_and_count(params: Params, paths: Paths, work: Path, segment: SegmentParams) -> Paths:
    """Tokens and term counts of the run's clean text under ``segment``, in ``work``."""
    from pipeline import segment as segment_stage
    from pipeline import tfidf as tfidf_stage

    variant = Paths(raw=paths.raw, processed=work, models=work / "models", metrics=work / "m")
    work.mkdir(parents=True, exist_ok=True)
    (work / "clean.parquet").symlink_to(paths.table("clean").resolve())
    # tfidf's background flag judges paragraphs by their parent documents.
    (work / "documents.parquet").symlink_to(paths.table("documents").resolve())
    varied = dataclasses.replace(params, segment=segment)
    segment_stage.main(varied, variant)
    tfidf_stage.main(varied, variant)
    return variant


def robustness(params: Params, paths: Paths) -> pa.Table:
    """Refit under every variant and match its topics to the run's; the table of matches."""
    settings = params.robustness
    threshold = settings.min_similarity
    k = read_json(paths.metrics / "lda.json")["num_topics"]
    top_n = settings.top_n
    main_sets = term_sets(read_table(paths.table("topic_terms"), TOPIC_TERMS), top_n)
    main_labels = read_table(paths.table("topics"), TOPICS).column("label").to_pylist()
    if len(main_sets) != k or len(main_labels) != k:
        raise ValueError(
            f"{paths.table('topic_terms')}: {len(main_sets)} topics, metrics/lda.json says {k}"
        )
    parts = []
    with tempfile.TemporaryDirectory(prefix=".robustness.", dir=paths.processed) as tmp:
        for name, segment in segment_variants(params.segment, settings).items():
            started = time.perf_counter()
            variant_paths = _segment_and_count(params, paths, Path(tmp) / name, segment)
            result = _fit(params, variant_paths, k, params.lda.random_state)
            labels = result.topics.column("label").to_pylist()
            parts.append(
                robustness_rows(
                    name, main_sets, main_labels, result.topic_terms, labels, top_n, threshold
                )
            )
            log.info("robustness: %s refitted in %.1f s", name, time.perf_counter() - started)
        for name, seed in seed_variants(params.lda.random_state, settings).items():
            started = time.perf_counter()
            result = _fit(params, paths, k, seed)
            labels = result.topics.column("label").to_pylist()
            parts.append(
                robustness_rows(
                    name, main_sets, main_labels, result.topic_terms, labels, top_n, threshold
                )
            )
            log.info("robustness: %s refitted in %.1f s", name, time.perf_counter() - started)
    return robustness_table(parts)


def main(params: Params, paths: Paths) -> None:
    out = paths.table("robustness")
    if not params.robustness.enabled:
        write_table(robustness_table([]), out, ROBUSTNESS)
        log.info("robustness: off (robustness.enabled: false); %s is empty", out)
        return
    table = robustness(params, paths)
    write_table(table, out, ROBUSTNESS)
    threshold = params.robustness.min_similarity
    kept = survivors(table)
    log.info(
        "robustness: %d of %d topics match at similarity >= %s under every variant (%s) -> %s",
        len(kept),
        len(set(table.column("topic").to_pylist())),
        threshold,
        ", ".join(dict.fromkeys(table.column("variant").to_pylist())),
        out,
    )
