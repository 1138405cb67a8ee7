"""Stage lda: a topic model on term counts, what each topic means, where it is prevalent.

The pieces live in ``pipeline/topics/``: counts, engines, coherence, terms, representative,
prevalence, model_store, ldavis; this module fits and describes, and ``main`` writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from pipeline.config import LdaParams, Params
from pipeline.io import (
    Paths,
    iter_tables,
    read_json,
    read_optional,
    read_table,
    release_arrow_memory,
    write_json,
    write_table,
)
from pipeline.progress import Progress
from pipeline.schemas import (
    CLEAN,
    DOC_TERMS,
    DOC_TOPICS,
    DOCUMENTS,
    NEW_WORDS,
    REPRESENTATIVE_DOCS,
    TOKENS,
    TOPIC_PREVALENCE,
    TOPIC_TERM_RANKINGS,
    TOPIC_TERMS,
    TOPICS,
    VOCABULARY,
)
from pipeline.topics import background, engines, ldavis
from pipeline.topics.coherence import coherence_scores, reference
from pipeline.topics.counts import (
    BATCH_ROWS,
    COUNT_COLUMNS,
    LdaError,
    TableOrPieces,
    build_counts,
    check_inputs,
)
from pipeline.topics.model_store import doc_topics_table, save_model, settings_snapshot
from pipeline.topics.prevalence import topic_prevalence
from pipeline.topics.representative import best_documents, representative_docs
from pipeline.topics.terms import (
    DIVERSITY_TOP_N,
    rank_terms,
    rankings_table,
    top_terms,
    topic_diversity,
    topic_terms_table,
)

log = logging.getLogger(__name__)

QUALITY_METRICS = (
    "coherence_c_npmi",
    "coherence_c_v",
    "coherence_u_mass",
    "perplexity",
    "topic_diversity",
)


@dataclass(frozen=True)
class LdaResult:
    fitted: engines.Fitted
    doc_ids: list[str]
    terms: list[str]
    topic_terms: pa.Table
    term_rankings: pa.Table
    doc_topics: pa.Table
    topics: pa.Table
    metrics: dict[str, float | int]
    counts: sp.csr_matrix  # (documents x terms), rows in doc_ids order
    left_out: tuple[str, ...] = ()  # background terms the model left out (lda.background)

    @property
    def model(self):
        """The engine's own model object (gensim ``LdaModel`` or tomotopy ``LDAModel``)."""
        return self.fitted.native


def lda(
    vocabulary: pa.Table,
    doc_terms: TableOrPieces,
    tokens: TableOrPieces,
    params: LdaParams,
    num_topics: int | None = None,
) -> LdaResult:
    """Fit the topic model deterministically (``params.random_state``) and describe its topics.

    ``num_topics`` is needed when ``params.num_topics`` is "auto" (main reads the sweep's K).
    ``doc_terms`` and ``tokens`` may be tables or their pieces (main streams the files).
    """
    check_inputs(vocabulary, doc_terms, tokens, "lda")
    k = num_topics if num_topics is not None else params.num_topics
    if not isinstance(k, int):
        raise LdaError('lda: lda.num_topics is "auto"; run lda_sweep first for its K')
    doc_ids, counts = build_counts(doc_terms, vocabulary.num_rows)
    if counts.shape[0] < 2:
        raise LdaError(f"lda: {counts.shape[0]} document(s) have terms; LDA needs at least 2")
    if vocabulary.num_rows < k:
        log.warning("lda: only %d terms for %d topics", vocabulary.num_rows, k)
    terms = np.asarray(vocabulary.column("term").to_pylist(), dtype=object)
    # Before the fit, so that the token pieces it reads are freed before the engine's data.
    ref = reference(tokens, doc_ids, terms.tolist(), counts)
    # Ranking by relevance and lift needs each term's share of the whole corpus.
    term_freq = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
    # Reading order mixes faster than grouped counts; background terms may be left out.
    drop = background.left_out(vocabulary, params, "lda")
    counts, sequences = background.drop_terms(counts, (ref.starts, ref.term_ids), drop)
    per_fit = params.iterations if params.engine == "tomotopy" else 1
    unit = "Gibbs sweep" if params.engine == "tomotopy" else "fit"
    with Progress("lda", total=per_fit, unit=unit, logger=log) as progress:
        fitted = engines.fit(
            counts, k, params, params.random_state, terms.tolist(), sequences, progress.update
        )
    phi, theta = fitted.phi, fitted.theta
    lengths = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    prevalence = (theta * lengths[:, None]).sum(axis=0) / lengths.sum()

    top = top_terms(phi, max(params.top_n, params.coherence_top_n, DIVERSITY_TOP_N))
    coherence = coherence_scores([row[: params.coherence_top_n] for row in top], ref)
    del ref, sequences
    engines.trim_heap()  # the coherence counts' freed pages
    rankings = rank_terms(phi, term_freq, params)
    metrics = {
        "num_topics": k,
        "num_documents": counts.shape[0],
        "num_terms": len(terms),
        "background_terms_left_out": 0 if drop is None else int(drop.sum()),
        "coherence_c_npmi": coherence["c_npmi"],
        "coherence_c_v": coherence["c_v"],
        "coherence_u_mass": coherence["u_mass"],
        "perplexity": float(np.exp(-engines.log_likelihood(phi, theta, counts) / lengths.sum())),
        "topic_diversity": topic_diversity(top[:, :DIVERSITY_TOP_N]),
    }
    metrics = {key: round(v, 6) if isinstance(v, float) else v for key, v in metrics.items()}

    def joined(measure: str, n: int, sep: str) -> list[str]:
        return [sep.join(terms[row[:n]]) for row in rankings[measure][0]]

    topics = pa.table(
        {
            "topic": pa.array(np.arange(k, dtype=np.int32)),
            "label": pa.array(joined("relevance", params.label_terms, "·"), pa.string()),
            "prevalence": pa.array(prevalence.astype(np.float64)),
            "coherence": pa.array(np.asarray(coherence["per_topic"], dtype=np.float64)),
        }
    )
    return LdaResult(
        fitted=fitted,
        doc_ids=doc_ids,
        terms=terms.tolist(),
        topic_terms=topic_terms_table(phi, top[:, : params.top_n], terms),
        term_rankings=rankings_table(rankings, terms),
        doc_topics=doc_topics_table(doc_ids, theta),
        topics=topics,
        metrics=metrics,
        counts=counts,
        left_out=() if drop is None else tuple(terms[drop].tolist()),
    )


def resolve_num_topics(params: LdaParams, paths: Paths) -> int:
    """``lda.num_topics``, or with "auto" the K recommended in metrics/sweep.json."""
    if isinstance(params.num_topics, int):
        return params.num_topics
    sweep = paths.metrics / "sweep.json"
    if not sweep.is_file():
        raise LdaError(f'lda.num_topics is "auto" but {sweep} is missing; run lda_sweep first')
    summary = read_json(sweep)
    if summary.get("recommended_k") is None:
        raise LdaError(
            f'lda.num_topics is "auto" but the sweep in {sweep} fitted no model '
            f"({summary.get('skipped', 'no recommendation')}); run lda_sweep again"
        )
    k = int(summary["recommended_k"])
    log.info("lda: K = %d, recommended by lda_sweep (%s)", k, sweep)
    return k


def _read_columns(
    path: Path, schema, columns: list[str], doc_ids: set[str] | None = None
) -> pa.Table:
    """Stream a table keeping only ``columns`` (those it has) and, if given, ``doc_ids``."""
    parts = []
    for batch in iter_tables(path, schema, batch_rows=BATCH_ROWS, columns=columns):
        batch = batch.select([c for c in dict.fromkeys(columns) if c in batch.column_names])
        if doc_ids is not None:
            batch = batch.filter(pc.is_in(batch.column("doc_id"), pa.array(sorted(doc_ids))))
        parts.append(batch)
    out = pa.concat_tables(parts)
    release_arrow_memory()
    return out


def _added_words(paths: Paths, params: Params) -> list[str]:
    """The discovered words segment added to the tokenizer (segment.new_words = use), saved
    with the model so that ``zhtopics infer`` segments new documents with the same words."""
    table = read_optional(paths.table("new_words"), NEW_WORDS)
    if params.segment.new_words != "use" or table is None:
        return []
    return table.filter(table.column("accepted")).column("word").to_pylist()


def main(params: Params, paths: Paths) -> None:
    vocabulary = read_table(paths.table("vocabulary"), VOCABULARY)
    # doc_terms and tokens are streamed: memory holds the model's data, not the tables.
    doc_terms = iter_tables(paths.table("doc_terms"), DOC_TERMS, columns=COUNT_COLUMNS)
    tokens = iter_tables(paths.table("tokens"), TOKENS, batch_rows=BATCH_ROWS)
    k = resolve_num_topics(params.lda, paths)
    result = lda(vocabulary, doc_terms, tokens, params.lda, k)
    write_table(result.topic_terms, paths.table("topic_terms"), TOPIC_TERMS)
    write_table(result.term_rankings, paths.table("topic_term_rankings"), TOPIC_TERM_RANKINGS)
    write_table(result.doc_topics, paths.table("doc_topics"), DOC_TOPICS)
    write_table(result.topics, paths.table("topics"), TOPICS)
    theta = result.fitted.theta
    wanted = ["doc_id", "title", "date_precision", *params.lda.prevalence_columns]
    documents = _read_columns(paths.table("documents"), DOCUMENTS, wanted)
    shown = {
        result.doc_ids[row]
        for best in best_documents(theta, params.lda.representative_docs)
        for row in best
    }
    clean = _read_columns(paths.table("clean"), CLEAN, ["doc_id", "text"], shown)
    rankings = result.term_rankings.to_pylist()
    snippet_terms = [
        [r["term"] for r in rankings if r["topic"] == k and r["measure"] == "relevance"][:5]
        for k in range(theta.shape[1])
    ]
    write_table(
        representative_docs(result.doc_ids, theta, documents, clean, params.lda, snippet_terms),
        paths.table("representative_docs"),
        REPRESENTATIVE_DOCS,
    )
    write_table(
        topic_prevalence(result.doc_ids, theta, documents, params.lda),
        paths.table("topic_prevalence"),
        TOPIC_PREVALENCE,
    )
    ldavis.write_html(
        ldavis.render(result.fitted.phi, theta, result.counts, result.terms, result.topics),
        paths.processed / "lda_vis.html",
    )
    settings = settings_snapshot(params)
    settings["new_words"] = _added_words(paths, params)
    save_model(
        result.fitted, result.terms, paths.models / "lda", settings, left_out=result.left_out
    )
    write_json(result.metrics, paths.metrics / "lda.json")
    for row in result.topics.to_pylist():
        log.info(
            "topic %d (%.1f%%, npmi %.3f): %s",
            row["topic"],
            100 * row["prevalence"],
            row["coherence"],
            row["label"],
        )
    log.info("lda: %s", result.metrics)
