"""Stage lda: a gensim LDA model on term counts, its topics, each document's topic mix, metrics."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from gensim.corpora import Dictionary
from gensim.models import CoherenceModel, LdaModel

from pipeline.config import LdaParams, Params
from pipeline.io import Paths, read_table, write_json, write_table
from pipeline.schemas import (
    DOC_TERMS,
    DOC_TOPICS,
    TOKENS,
    TOPIC_TERMS,
    TOPICS,
    VOCABULARY,
    require_columns,
)

log = logging.getLogger(__name__)

DIVERSITY_TOP_N = 25
QUALITY_METRICS = (
    "coherence_c_npmi",
    "coherence_c_v",
    "coherence_u_mass",
    "perplexity",
    "topic_diversity",
)


class LdaError(ValueError):
    """The corpus or settings cannot give a topic model; the message says why."""


@dataclass(frozen=True)
class LdaResult:
    model: LdaModel
    topic_terms: pa.Table
    doc_topics: pa.Table
    topics: pa.Table
    metrics: dict[str, float | int]


def build_corpus(doc_terms: pa.Table) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """Bag-of-words per document (term counts, not TF-IDF weights), in table order."""
    corpus: dict[str, list[tuple[int, int]]] = {}
    for doc, term, count in zip(
        doc_terms.column("doc_id").to_pylist(),
        doc_terms.column("term_id").to_pylist(),
        doc_terms.column("count").to_pylist(),
        strict=True,
    ):
        corpus.setdefault(doc, []).append((term, count))
    return list(corpus), list(corpus.values())


def build_dictionary(vocabulary: pa.Table, n_docs: int) -> Dictionary:
    """A gensim Dictionary whose ids are the tfidf stage's term ids."""
    dictionary = Dictionary()
    terms = vocabulary.column("term").to_pylist()
    ids = vocabulary.column("term_id").to_pylist()
    dictionary.token2id = dict(zip(terms, ids, strict=True))
    dictionary.id2token = dict(zip(ids, terms, strict=True))
    dictionary.dfs = dict(zip(ids, vocabulary.column("df").to_pylist(), strict=True))
    dictionary.num_docs = n_docs
    return dictionary


def lda(
    vocabulary: pa.Table, doc_terms: pa.Table, tokens: pa.Table, params: LdaParams
) -> LdaResult:
    """Fit LDA deterministically (``params.random_state``) and describe its topics."""
    require_columns(vocabulary, ["term_id", "term", "df"], "lda (vocabulary)")
    require_columns(doc_terms, ["doc_id", "term_id", "count"], "lda (doc_terms)")
    require_columns(tokens, ["doc_id", "tokens"], "lda (tokens)")
    if vocabulary.column("term_id").to_pylist() != list(range(vocabulary.num_rows)):
        raise LdaError("lda: vocabulary term_id must run 0, 1, 2, ... in row order")
    doc_ids, corpus = build_corpus(doc_terms)
    if len(corpus) < 2:
        raise LdaError(f"lda: {len(corpus)} document(s) have terms; LDA needs at least 2")
    dictionary = build_dictionary(vocabulary, len(corpus))
    if len(dictionary) < params.num_topics:
        log.warning("lda: only %d terms for lda.num_topics=%d", len(dictionary), params.num_topics)
    model = LdaModel(
        corpus=corpus,
        id2word=dictionary,
        num_topics=params.num_topics,
        passes=params.passes,
        iterations=params.iterations,
        chunksize=params.chunksize,
        alpha=params.alpha,
        eta=None if params.eta == "symmetric" else params.eta,
        random_state=params.random_state,
        eval_every=None,
        dtype=np.float64,
    )
    gamma, _ = model.inference(corpus)
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    lengths = np.array([sum(c for _, c in bow) for bow in corpus], dtype=np.float64)
    prevalence = (theta * lengths[:, None]).sum(axis=0) / lengths.sum()

    phi = model.get_topics()
    top = _top_terms(phi, max(params.top_n, params.coherence_top_n, DIVERSITY_TOP_N))
    terms = np.asarray(vocabulary.column("term").to_pylist(), dtype=object)
    texts = _texts_in_vocabulary(tokens, set(doc_ids), dictionary)
    topic_words = [terms[row[: params.coherence_top_n]].tolist() for row in top]
    coherence = _coherence(topic_words, texts, corpus, dictionary)

    metrics = {
        "num_topics": params.num_topics,
        "num_documents": len(corpus),
        "num_terms": len(dictionary),
        "coherence_c_npmi": coherence["c_npmi"],
        "coherence_c_v": coherence["c_v"],
        "coherence_u_mass": coherence["u_mass"],
        "perplexity": float(np.exp2(-model.log_perplexity(corpus))),
        "topic_diversity": topic_diversity(top[:, :DIVERSITY_TOP_N]),
    }
    metrics = {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}
    topics = pa.table(
        {
            "topic": pa.array(np.arange(params.num_topics, dtype=np.int32)),
            "label": pa.array(
                ["·".join(terms[row[: params.label_terms]]) for row in top], pa.string()
            ),
            "prevalence": pa.array(prevalence.astype(np.float64)),
            "coherence": pa.array(np.asarray(coherence["per_topic"], dtype=np.float64)),
        }
    )
    return LdaResult(
        model=model,
        topic_terms=_topic_terms_table(phi, top[:, : params.top_n], terms),
        doc_topics=_doc_topics_table(doc_ids, theta),
        topics=topics,
        metrics=metrics,
    )


def _top_terms(phi: np.ndarray, n: int) -> np.ndarray:
    """Term ids of each topic by weight, ties to the lower id: shape (topics, min(n, terms))."""
    n = min(n, phi.shape[1])
    ids = np.arange(phi.shape[1])
    return np.stack([np.lexsort((ids, -row))[:n] for row in phi])


def topic_diversity(top: np.ndarray) -> float:
    """Share of unique terms among all topics' top terms (1.0: no topic shares a top term)."""
    return float(len(np.unique(top)) / top.size)


def _texts_in_vocabulary(
    tokens: pa.Table, docs: set[str], dictionary: Dictionary
) -> list[list[str]]:
    vocab = dictionary.token2id
    return [
        [t for t in toks if t in vocab]
        for doc, toks in zip(
            tokens.column("doc_id").to_pylist(), tokens.column("tokens").to_pylist(), strict=True
        )
        if doc in docs
    ]


def _coherence(topic_words, texts, corpus, dictionary) -> dict:
    """c_npmi (also per topic), c_v and u_mass, single-process so that results are repeatable."""
    out = {}
    for measure in ("c_npmi", "c_v", "u_mass"):
        model = CoherenceModel(
            topics=topic_words,
            texts=texts if measure != "u_mass" else None,
            corpus=corpus if measure == "u_mass" else None,
            dictionary=dictionary,
            coherence=measure,
            processes=1,
        )
        per_topic = [float(x) for x in model.get_coherence_per_topic()]
        out[measure] = float(np.mean(per_topic))
        if measure == "c_npmi":
            out["per_topic"] = per_topic
    return out


def _topic_terms_table(phi: np.ndarray, top: np.ndarray, terms: np.ndarray) -> pa.Table:
    k, n = top.shape
    return pa.table(
        {
            "topic": pa.array(np.repeat(np.arange(k, dtype=np.int32), n)),
            "rank": pa.array(np.tile(np.arange(1, n + 1, dtype=np.int32), k)),
            "term": pa.array(terms[top.ravel()].tolist(), pa.string()),
            "weight": pa.array(np.take_along_axis(phi, top, axis=1).ravel().astype(np.float64)),
        }
    )


def _doc_topics_table(doc_ids: list[str], theta: np.ndarray) -> pa.Table:
    n, k = theta.shape
    return pa.table(
        {
            "doc_id": pa.array(
                np.repeat(np.asarray(doc_ids, dtype=object), k).tolist(), pa.string()
            ),
            "topic": pa.array(np.tile(np.arange(k, dtype=np.int32), n)),
            "weight": pa.array(theta.ravel().astype(np.float64)),
        }
    )


def save_model(model: LdaModel, directory: Path) -> None:
    """Save with gensim into a fresh folder, then swap it into place.

    For the same model to save to the same bytes, gensim's timestamped "lifecycle events" are
    dropped, and ``ignore=()`` makes gensim use its fixed list of attributes to leave out of the
    pickle (the default goes through a set, whose order changes between processes).
    """
    model.lifecycle_events = None
    model.state.lifecycle_events = None
    if hasattr(model.id2word, "lifecycle_events"):
        model.id2word.lifecycle_events = None
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model.save(str(tmp / "lda.model"), ignore=())
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def main(params: Params, paths: Paths) -> None:
    result = lda(
        read_table(paths.table("vocabulary"), VOCABULARY),
        read_table(paths.table("doc_terms"), DOC_TERMS),
        read_table(paths.table("tokens"), TOKENS),
        params.lda,
    )
    write_table(result.topic_terms, paths.table("topic_terms"), TOPIC_TERMS)
    write_table(result.doc_topics, paths.table("doc_topics"), DOC_TOPICS)
    write_table(result.topics, paths.table("topics"), TOPICS)
    save_model(result.model, paths.models / "lda")
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
