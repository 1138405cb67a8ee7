"""Stage lda: a topic model on term counts, what each topic means, where it is prevalent."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from pipeline import engines
from pipeline.coherence import coherence_scores, reference
from pipeline.config import LdaParams, Params
from pipeline.io import (
    Paths,
    atomic_folder,
    iter_tables,
    read_json,
    read_table,
    release_arrow_memory,
    tables,
    write_json,
    write_table,
)
from pipeline.schemas import (
    CLEAN,
    DOC_TERMS,
    DOC_TOPICS,
    DOCUMENTS,
    REPRESENTATIVE_DOCS,
    TOKENS,
    TOPIC_PREVALENCE,
    TOPIC_TERM_RANKINGS,
    TOPIC_TERMS,
    TOPICS,
    VOCABULARY,
    require_columns,
)
from pipeline.topics import background

log = logging.getLogger(__name__)

DIVERSITY_TOP_N = 25
QUALITY_METRICS = (
    "coherence_c_npmi",
    "coherence_c_v",
    "coherence_u_mass",
    "perplexity",
    "topic_diversity",
)
# Version of the saved model folder (model.json, topic_word.npy, terms.json); see README.
MODEL_FORMAT = 1
MISSING_GROUP = "(missing)"
RANKINGS = ("probability", "relevance", "frex")
COUNT_COLUMNS = ["doc_id", "term_id", "count"]
BATCH_ROWS = 4096  # rows of tokens, documents or clean held at a time while streaming
BOOTSTRAP_BLOCK = 1 << 22  # (resamples x documents) drawn at a time for prevalence intervals


class LdaError(ValueError):
    """The corpus or settings cannot give a topic model; the message says why."""


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


def build_counts(
    doc_terms: pa.Table | Iterable[pa.Table], n_terms: int | None
) -> tuple[list[str], sp.csr_matrix]:
    """The (documents x terms) count matrix, documents in their first-seen table order.

    ``doc_terms`` is a table or its pieces in order (streamed: only the ids and counts of a
    piece are held at a time, as integers, never the whole table's doc_id strings).
    """
    order: dict[str, int] = {}
    rows, cols, data = [], [], []
    for table in tables(doc_terms):
        encoded = table.column("doc_id").combine_chunks().dictionary_encode()  # first-seen
        local = encoded.dictionary.to_pylist()
        row_of = np.asarray([order.setdefault(d, len(order)) for d in local], dtype=np.int32)
        rows.append(row_of[encoded.indices.to_numpy()] if len(local) else np.zeros(0, np.int32))
        cols.append(table.column("term_id").to_numpy().astype(np.int32))
        data.append(table.column("count").to_numpy().astype(np.int64))
    cols_all = np.concatenate(cols) if cols else np.zeros(0, np.int32)
    shape = (
        len(order),
        int(n_terms if n_terms is not None else (cols_all.max() + 1 if len(cols_all) else 0)),
    )
    counts = sp.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0, np.int64),
            (np.concatenate(rows) if rows else np.zeros(0, np.int32), cols_all),
        ),
        shape=shape,
    )
    counts.sum_duplicates()
    counts.sort_indices()
    return list(order), counts


def check_inputs(
    vocabulary: pa.Table,
    doc_terms: pa.Table | Iterable[pa.Table],
    tokens: pa.Table | Iterable[pa.Table],
    where: str,
) -> None:
    """Columns of the tables given whole (streamed pieces are checked as they are read)."""
    require_columns(vocabulary, ["term_id", "term", "df"], f"{where} (vocabulary)")
    if isinstance(doc_terms, pa.Table):
        require_columns(doc_terms, ["doc_id", "term_id", "count"], f"{where} (doc_terms)")
    if isinstance(tokens, pa.Table):
        require_columns(tokens, ["doc_id", "tokens"], f"{where} (tokens)")
    if vocabulary.column("term_id").to_pylist() != list(range(vocabulary.num_rows)):
        raise LdaError(f"{where}: vocabulary term_id must run 0, 1, 2, ... in row order")


def lda(
    vocabulary: pa.Table,
    doc_terms: pa.Table | Iterable[pa.Table],
    tokens: pa.Table | Iterable[pa.Table],
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
    fitted = engines.fit(counts, k, params, params.random_state, terms.tolist(), sequences)
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
        topic_terms=_topic_terms_table(phi, top[:, : params.top_n], terms),
        term_rankings=_rankings_table(rankings, terms),
        doc_topics=doc_topics_table(doc_ids, theta),
        topics=topics,
        metrics=metrics,
        counts=counts,
        left_out=() if drop is None else tuple(terms[drop].tolist()),
    )


def top_terms(scores: np.ndarray, n: int) -> np.ndarray:
    """Term ids of each topic by score, ties to the lower id: shape (topics, min(n, terms))."""
    n = min(n, scores.shape[1])
    out = np.empty((scores.shape[0], n), dtype=np.int64)
    for topic, row in enumerate(scores):
        out[topic] = _top_of_row(row, n)
    return out


def _top_of_row(row: np.ndarray, n: int) -> np.ndarray:
    """The ids of the ``n`` largest values, by value then id; only the n best and whatever
    ties the n-th are sorted."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cut = np.partition(row, len(row) - n)[len(row) - n]
    ids = np.flatnonzero(row >= cut)
    return ids[np.lexsort((ids, -row[ids]))[:n]]


def rank_terms(
    phi: np.ndarray, term_freq: np.ndarray, params: LdaParams
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Top ``params.top_n`` term ids and scores per topic by probability, relevance and FREX.

    Relevance (Sievert & Shirley 2014): lambda * log p(w|k) + (1 - lambda) * log(p(w|k) / p(w)).
    FREX (Roberts et al.): the weighted harmonic mean of a term's within-topic ECDF ranks of
    exclusivity p(w|k) / sum_j p(w|j) and of frequency p(w|k).
    A topic at a time: memory holds a few rows of the vocabulary's length, not whole tables.
    """
    lam, w = params.relevance_lambda, params.frex_weight
    k, v = phi.shape
    n = min(params.top_n, v)
    log_p_w = np.log(np.maximum(term_freq / max(term_freq.sum(), 1.0), 1e-300))
    column_sums = np.maximum(phi.sum(axis=0), 1e-300)
    ids = {name: np.empty((k, n), dtype=np.int64) for name in RANKINGS}
    scores = {name: np.empty((k, n), dtype=np.float64) for name in RANKINGS}
    for topic in range(k):
        row = phi[topic]
        logphi = np.log(np.maximum(row, 1e-300))
        excl_ecdf = _max_ranks(row / column_sums) / v
        freq_ecdf = _max_ranks(row) / v
        for name, values in (
            ("probability", row),
            ("relevance", lam * logphi + (1 - lam) * (logphi - log_p_w)),
            ("frex", 1.0 / (w / excl_ecdf + (1 - w) / freq_ecdf)),
        ):
            ids[name][topic] = _top_of_row(values, n)
            scores[name][topic] = values[ids[name][topic]]
    return {name: (ids[name], scores[name]) for name in RANKINGS}


def _max_ranks(scores: np.ndarray) -> np.ndarray:
    """How many values of a row are <= each value (scipy's rankdata "max", without
    scipy.stats, whose import costs a second)."""
    order = np.argsort(scores)
    ordered = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.searchsorted(ordered, ordered, side="right")  # sorted keys: fast
    return ranks


def topic_diversity(top: np.ndarray) -> float:
    """Share of unique terms among all topics' top terms (1.0: no topic shares a top term)."""
    return float(len(np.unique(top)) / top.size)


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


def _rankings_table(rankings: dict, terms: np.ndarray) -> pa.Table:
    parts = []
    for measure, (ids, scores) in rankings.items():
        k, n = ids.shape
        parts.append(
            pa.table(
                {
                    "topic": pa.array(np.repeat(np.arange(k, dtype=np.int32), n)),
                    "measure": pa.array([measure] * (k * n), pa.string()),
                    "rank": pa.array(np.tile(np.arange(1, n + 1, dtype=np.int32), k)),
                    "term": pa.array(terms[ids.ravel()].tolist(), pa.string()),
                    "score": pa.array(scores.ravel().astype(np.float64)),
                }
            )
        )
    return pa.concat_tables(parts).sort_by([("topic", "ascending")])


def doc_topics_table(doc_ids: list[str], theta: np.ndarray) -> pa.Table:
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


def representative_docs(
    doc_ids: list[str],
    theta: np.ndarray,
    documents: pa.Table,
    clean: pa.Table,
    params: LdaParams,
    topic_terms: list[list[str]] | None = None,
) -> pa.Table:
    """The ``params.representative_docs`` documents of highest weight per topic, with a snippet
    that starts near the first of the topic's ``topic_terms`` found in the text."""
    require_columns(documents, ["doc_id", "title"], "lda (documents)")
    require_columns(clean, ["doc_id", "text"], "lda (clean)")
    titles = dict(
        zip(
            documents.column("doc_id").to_pylist(),
            documents.column("title").to_pylist(),
            strict=True,
        )
    )
    texts = dict(
        zip(clean.column("doc_id").to_pylist(), clean.column("text").to_pylist(), strict=True)
    )
    rows: dict[str, list] = {
        k: [] for k in ("topic", "rank", "doc_id", "weight", "title", "snippet")
    }
    for topic, best in enumerate(best_documents(theta, params.representative_docs)):
        terms = topic_terms[topic] if topic_terms else []
        for rank, row in enumerate(best, start=1):
            doc = doc_ids[row]
            rows["topic"].append(topic)
            rows["rank"].append(rank)
            rows["doc_id"].append(doc)
            rows["weight"].append(float(theta[row, topic]))
            rows["title"].append(titles.get(doc))
            rows["snippet"].append(snippet(texts.get(doc) or "", params.snippet_chars, terms))
    return REPRESENTATIVE_DOCS.conform(pa.table(rows))


def best_documents(theta: np.ndarray, n: int) -> list[np.ndarray]:
    """Row numbers of the ``n`` documents of highest weight per topic, ties to the earlier."""
    order = np.arange(theta.shape[0])
    return [np.lexsort((order, -theta[:, k]))[:n] for k in range(theta.shape[1])]


def snippet(text: str, n_chars: int, terms: list[str] = ()) -> str:
    """``n_chars`` characters of a text on one line, from a little before the first of ``terms``
    that occurs in it (or from the start), with an ellipsis where it is cut."""
    flat = " ".join(text.split())
    found = [i for i in (flat.find(t) for t in terms) if i >= 0]
    start = max(0, min(found) - n_chars // 4) if found else 0
    start = max(0, min(start, len(flat) - n_chars))
    piece = flat[start : start + n_chars].strip()
    return ("…" if start > 0 else "") + piece + ("…" if start + n_chars < len(flat) else "")


def topic_prevalence(
    doc_ids: list[str], theta: np.ndarray, documents: pa.Table, params: LdaParams
) -> pa.Table:
    """Mean topic share per group of each metadata column, with bootstrap 95% intervals.

    ``date`` is bucketed by ``params.date_bucket`` (the column is then called year or month);
    a document without a value falls in the group "(missing)", so none is dropped.
    """
    position = {doc: i for i, doc in enumerate(documents.column("doc_id").to_pylist())}
    missing_docs = [d for d in doc_ids if d not in position]
    if missing_docs:
        raise LdaError(
            f"lda: {len(missing_docs)} modelled document(s) are not in documents.parquet, "
            f"e.g. {missing_docs[0]}; re-run the pipeline from ingest"
        )
    take = pa.array([position[d] for d in doc_ids], pa.int64())
    parts = []
    for index, column in enumerate(params.prevalence_columns):
        if column not in documents.column_names:
            raise LdaError(
                f"lda.prevalence_columns: {column!r} is not a column of documents.parquet "
                f"(it has {documents.column_names})"
            )
        values = documents.column(column).take(take)
        name = column
        if column == "date" or pa.types.is_date(values.type) or pa.types.is_timestamp(values.type):
            fmt = "%Y" if params.date_bucket == "year" else "%Y-%m"
            values = pc.strftime(values.cast(pa.timestamp("s")), format=fmt)
            name = params.date_bucket if column == "date" else f"{column}_{params.date_bucket}"
        groups = [MISSING_GROUP if v is None else str(v) for v in values.to_pylist()]
        rng = np.random.default_rng([params.random_state, index])
        parts.append(_group_means(name, np.asarray(groups, dtype=object), theta, rng, params))
    if not parts:
        return TOPIC_PREVALENCE.schema.empty_table()
    return pa.concat_tables(parts)


def _group_means(
    name: str, groups: np.ndarray, theta: np.ndarray, rng: np.random.Generator, params: LdaParams
) -> pa.Table:
    """Per group (sorted): mean shares and a bootstrap interval.

    A resample's mean is (how often each document was drawn) @ shares / n, so the resamples
    cost a small matrix product per group rather than a Python loop. They are drawn a block
    at a time (all of them at once for groups under about 20,000 documents), so that memory
    stays at about BOOTSTRAP_BLOCK numbers however large a group is.
    """
    k = theta.shape[1]
    names, inverse = np.unique(groups, return_inverse=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    b = params.bootstrap
    means, lows, highs = [], [], []
    for rows in members:
        shares = theta[rows]
        n = shares.shape[0]
        resampled = np.empty((b, k), dtype=np.float64)
        block = max(1, BOOTSTRAP_BLOCK // n)
        for start in range(0, b, block):
            m = min(block, b - start)
            draws = rng.integers(0, n, size=(m, n)) + (np.arange(m) * n)[:, None]
            drawn = np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)
            resampled[start : start + m] = drawn @ shares / n
        low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
        means.append(shares.mean(axis=0))
        lows.append(low)
        highs.append(high)
    table = {
        "column": [name] * (k * len(names)),
        "group": np.repeat(names, k).tolist(),
        "topic": np.tile(np.arange(k), len(names)),
        "mean": np.concatenate(means),
        "ci_low": np.concatenate(lows),
        "ci_high": np.concatenate(highs),
        "n_docs": np.repeat([len(rows) for rows in members], k),
    }
    return TOPIC_PREVALENCE.conform(pa.table(table))


def save_model(result: LdaResult, directory: Path, settings: dict | None = None) -> None:
    """Save the model as plain arrays and JSON (any later version can read them), plus the
    engine's own file, into a fresh folder swapped into place.

    ``model.json`` (format version, engine, K, priors, the settings it was trained with),
    ``topic_word.npy`` (K x terms, float64, rows sum to 1; column i is ``terms.json``[i]).
    The engine's file: ``lda.model`` (gensim) or ``tomotopy.bin``.
    """
    fitted = result.fitted
    with atomic_folder(directory) as tmp:
        meta = {
            "format_version": MODEL_FORMAT,
            "engine": fitted.engine,
            "num_topics": int(fitted.phi.shape[0]),
            "num_terms": int(fitted.phi.shape[1]),
            "alpha": [round(float(a), 12) for a in fitted.alpha],
            "eta": round(float(fitted.eta), 12),
            "files": {"topic_word": "topic_word.npy", "terms": "terms.json"},
            "settings": settings or {},
            "convergence": fitted.convergence,
            # Terms of terms.json the model left out as background: infer ignores them too.
            "left_out_terms": list(result.left_out),
        }
        (tmp / "model.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n", "utf-8"
        )
        (tmp / "terms.json").write_text(
            json.dumps(result.terms, ensure_ascii=False) + "\n", "utf-8"
        )
        np.save(tmp / "topic_word.npy", np.ascontiguousarray(fitted.phi, dtype="<f8"))
        _save_native(fitted, tmp)


def _save_native(fitted: engines.Fitted, folder: Path) -> None:
    """The engine's own format, for users of that library (not needed by this project).

    For gensim, timestamped "lifecycle events" are dropped and ``ignore=()`` makes gensim use
    its fixed list of attributes to leave out (the default goes through an unordered set), so
    the same model saves to the same bytes.
    """
    model = fitted.native
    if model is None:
        return
    if fitted.engine == "gensim":
        model.lifecycle_events = None
        model.state.lifecycle_events = None
        if hasattr(model.id2word, "lifecycle_events"):
            model.id2word.lifecycle_events = None
        model.save(str(folder / "lda.model"), ignore=())
    else:
        model.save(str(folder / "tomotopy.bin"), full=False)


@dataclass(frozen=True)
class SavedModel:
    """A saved model as arrays: all that inference on new documents needs."""

    phi: np.ndarray
    alpha: np.ndarray
    terms: list[str]
    meta: dict


def load_model(directory: Path) -> SavedModel:
    """Read a model folder written by :func:`save_model` (format version 1)."""
    directory = Path(directory)
    meta_path = directory / "model.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: no saved model; run the lda stage first")
    meta = read_json(meta_path)
    if meta.get("format_version") != MODEL_FORMAT:
        raise LdaError(
            f"{meta_path}: model format {meta.get('format_version')!r}; "
            f"this version reads format {MODEL_FORMAT}"
        )
    phi = np.load(directory / meta["files"]["topic_word"], allow_pickle=False)
    terms = json.loads((directory / meta["files"]["terms"]).read_text(encoding="utf-8"))
    if phi.shape != (meta["num_topics"], len(terms)):
        raise LdaError(f"{directory}: topic_word.npy has shape {phi.shape}, terms {len(terms)}")
    return SavedModel(
        phi=phi, alpha=np.asarray(meta["alpha"], dtype=np.float64), terms=terms, meta=meta
    )


def resolve_num_topics(params: LdaParams, paths: Paths) -> int:
    """``lda.num_topics``, or with "auto" the K recommended in metrics/sweep.json."""
    if isinstance(params.num_topics, int):
        return params.num_topics
    sweep = paths.metrics / "sweep.json"
    if not sweep.is_file():
        raise LdaError(f'lda.num_topics is "auto" but {sweep} is missing; run lda_sweep first')
    k = int(read_json(sweep)["recommended_k"])
    log.info("lda: K = %d, recommended by lda_sweep (%s)", k, sweep)
    return k


def settings_snapshot(params: Params) -> dict:
    """The settings of every stage before lda, as plain data, stored with the model."""
    import dataclasses

    def plain(value):
        if isinstance(value, Path):
            return value.name
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {
        name: {k: plain(v) for k, v in dataclasses.asdict(getattr(params, name)).items()}
        for name in ("ingest", "clean", "segment", "tfidf")
    }


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


def main(params: Params, paths: Paths) -> None:
    from pipeline import ldavis

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
    wanted = ["doc_id", "title", *params.lda.prevalence_columns]
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
    save_model(result, paths.models / "lda", settings_snapshot(params))
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
