"""Stage explorer: one offline HTML file to browse topics, documents and words.

``explorer.html`` embeds the run's data as JSON (every topic with its candidate terms, every
modelled document's topic mix for the filters, a stated sample of documents with their clean
texts), a vanilla-JS viewer from ``pipeline/templates/`` and a subset of the bundled CJK font
(only the glyphs the page uses) as a web font. It loads nothing from the network or from other
files; a Content-Security-Policy allows only its own script (by hash), inline styles and the
embedded font. Texts reach the page as data and are shown with ``textContent`` only.

Per-token topics: each content word of a sampled document gets the topic with the largest
``p(word | topic) * p(topic | document)`` under the saved model (``models/lda/topic_word.npy``)
and the document's mix from ``doc_topics`` — the same rule for both engines, deterministic.
"""

from __future__ import annotations

import base64
import json
import logging
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ExplorerParams, Params
from pipeline.fonts import subset_font
from pipeline.io import Paths, atomic_path, iter_tables, read_optional, read_table
from pipeline.offline_page import content_security_policy, embed_json, fill, template
from pipeline.schemas import (
    ALL,
    CLEAN,
    DOC_TERMS,
    DOC_TOPICS,
    DOCUMENTS,
    KEYWORDS,
    TOKENS,
    TOPIC_PREVALENCE,
    TOPICS,
    VOCABULARY,
    require_columns,
)

log = logging.getLogger(__name__)

FILENAME = "explorer.html"
PAGE_TITLE = "zhtopics explorer"
TIME_COLUMN = "year"  # ``date`` is shown and filtered as years
MISSING = "(missing)"
OTHER = "(other)"
LAMBDA_STEPS = 21  # relevance candidates at lambda = 0, 0.05, ..., 1
POOL = 40  # relevance is searched first among POOL * n best terms by each of its parts
QUANT = 65535  # topic shares are embedded as uint16 (error < 1e-5)
BATCH_ROWS = 8192
# Metadata not shown with a document (bookkeeping of ingest and clean).
KEYNESS_COLUMNS = ["column", "group", "rank", "term", "g2", "log_ratio", "significant"]
CONTRAST_COLUMNS = ["column", "group", "topic", "n_docs", "diff", "ci_low", "ci_high"]
HIDDEN_COLUMNS = {"text", "format", "encoding", "decode_errors", "status", "reason", "record"}


class ExplorerError(ValueError):
    """The run's tables cannot give an explorer; the message names the table or setting."""


@dataclass(frozen=True)
class Inputs:
    """What the explorer is built from: the run's tables (texts only of sampled documents
    are read later) and the saved model's topic-word matrix."""

    topics: pa.Table
    vocabulary: pa.Table
    doc_topics: pa.Table
    documents: pa.Table  # without texts
    term_freq: np.ndarray  # corpus count of each term id
    doc_lengths: dict[str, int]  # the model's tokens per document (doc_terms counts)
    phi: np.ndarray  # (topics x terms)
    topic_prevalence: pa.Table | None
    lda_metrics: dict
    keyness: pa.Table | None = None  # the compare stage's tables, when the run has them
    topic_contrasts: pa.Table | None = None


@dataclass(frozen=True)
class Prepared:
    """The modelled documents (doc_topics order), their mixes, filter groups and sample."""

    doc_ids: list[str]
    theta: np.ndarray
    filters: list[tuple[str, list[str], np.ndarray]]  # (name, groups, code per document)
    sample: np.ndarray  # sampled rows, ascending
    modelled: int = 0  # documents with a mix in doc_topics (more than doc_ids when capped)


def theta_matrix(doc_topics: pa.Table, k: int) -> tuple[list[str], np.ndarray]:
    """The documents in first-seen order and their (documents x topics) shares."""
    topic = doc_topics.column("topic").to_numpy()
    if len(topic) and (topic.min() < 0 or topic.max() >= k):
        raise ExplorerError(f"doc_topics: topic numbers outside 0..{k - 1} of topics.parquet")
    weight = doc_topics.column("weight").to_numpy()
    doc_id = doc_topics.column("doc_id")
    n = len(topic) // k if k else 0
    if n * k == len(topic) and np.array_equal(topic, np.tile(np.arange(k), n)):
        # As the lda stage writes it: K rows per document, topics in order.
        firsts = doc_id.take(pa.array(np.arange(0, n * k, k)))
        repeated = firsts.take(pa.array(np.repeat(np.arange(n), k)))
        if pc.all(pc.equal(doc_id, repeated)).as_py() is not False:
            return firsts.to_pylist(), weight.reshape(n, k).astype(np.float64)
    encoded = doc_id.combine_chunks().dictionary_encode()
    ids = encoded.dictionary.to_pylist()
    theta = np.zeros((len(ids), k), dtype=np.float64)
    theta[encoded.indices.to_numpy(), topic] = weight
    return ids, theta


def group_codes(
    documents: pa.Table, doc_ids: list[str], column: str, max_groups: int
) -> tuple[str, list[str], np.ndarray]:
    """One filter column: its name (``year`` for dates), its groups and each document's code.

    Groups beyond ``max_groups`` (the smallest; ties by name) are merged into "(other)";
    years stay in time order and are never merged.
    """
    if column not in documents.column_names:
        raise ExplorerError(
            f"explorer.filter_columns: {column!r} is not a column of documents.parquet "
            f"(it has {documents.column_names})"
        )
    ids = pa.array(doc_ids, pa.string())
    position = pc.index_in(ids, documents.column("doc_id"))
    if position.null_count:
        first = ids.filter(pc.is_null(position))[0].as_py()
        raise ExplorerError(
            f"explorer: {position.null_count} modelled document(s) are not in "
            f"documents.parquet, e.g. {first}; re-run the pipeline from ingest"
        )
    values = documents.column(column).take(position)
    name = column
    is_time = pa.types.is_date(values.type) or pa.types.is_timestamp(values.type)
    if is_time:
        values = pc.strftime(values.cast(pa.timestamp("s")), format="%Y")
        name = TIME_COLUMN if column == "date" else f"{column}_year"
    labels = pc.fill_null(values.cast(pa.string()), MISSING).combine_chunks().dictionary_encode()
    names = np.asarray(labels.dictionary.to_pylist(), dtype=object)
    order = np.argsort(names, kind="stable")  # groups by name
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    groups = names[order].tolist()
    inverse = rank[labels.indices.to_numpy()] if len(names) else np.zeros(0, np.int64)
    if not is_time and len(groups) > max_groups:
        sizes = np.bincount(inverse, minlength=len(groups))
        kept = sorted(sorted(range(len(groups)), key=lambda g: (-sizes[g], groups[g]))[:max_groups])
        remap = np.full(len(groups), len(kept), dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        groups = [groups[g] for g in kept] + [OTHER]
        inverse = remap[inverse]
    return name, groups, inverse.astype(_code_type(len(groups)))


def _code_type(n_groups: int) -> type:
    return np.uint8 if n_groups <= 256 else np.uint16 if n_groups <= 65536 else np.uint32


def sample_documents(
    theta: np.ndarray, codes: list[np.ndarray], params: ExplorerParams
) -> np.ndarray:
    """Row numbers of the documents embedded with their texts, ascending: the
    ``docs_per_topic`` best of each topic, the first ``docs_per_group`` of each filter group
    in a seeded random order, and ``random_docs`` more from the same order."""
    n, k = theta.shape
    chosen = [np.zeros(0, dtype=np.int64)]
    for topic in range(k):
        chosen.append(_top(theta[:, topic], params.docs_per_topic))
    shuffled = np.random.default_rng(params.random_state).permutation(n)
    for code in codes:
        in_order = code[shuffled].astype(np.int64)
        by_group = np.argsort(in_order, kind="stable")  # each group's rows in shuffled order
        starts = np.searchsorted(in_order[by_group], in_order[by_group], side="left")
        first = by_group[np.arange(n) - starts < params.docs_per_group]
        chosen.append(shuffled[first])
    chosen.append(shuffled[: params.random_docs])
    return np.unique(np.concatenate(chosen)).astype(np.int64)


def topic_terms(
    phi: np.ndarray, term_freq: np.ndarray, params: ExplorerParams
) -> list[list[tuple[int, float, int]]]:
    """Per topic, its candidate terms as (term id, p(term | topic), rank by probability):
    the ``topic_terms`` most probable and the ``relevance_terms`` best by relevance at each
    lambda step, so the page can re-rank them for any lambda."""
    k, v = phi.shape
    p_w = term_freq / max(term_freq.sum(), 1.0)
    log_p_w = np.log(np.maximum(p_w, 1e-300))
    out = []
    for topic in range(k):
        row = phi[topic]
        log_phi = np.log(np.maximum(row, 1e-300))
        ids = set(_top(row, params.topic_terms).tolist())
        lift = log_phi - log_p_w
        n = params.relevance_terms
        pool = (_top(log_phi, POOL * n), _top(lift, POOL * n)) if v > 2 * POOL * n else None
        for lam in np.linspace(0.0, 1.0, LAMBDA_STEPS):
            ids.update(_relevance_top(log_phi, lift, lam, n, pool).tolist())
        chosen = np.asarray(sorted(ids), dtype=np.int64)
        ordered = np.sort(row)
        ranks = v - np.searchsorted(ordered, row[chosen], side="right") + 1
        order = np.lexsort((chosen, ranks))
        out.append([(int(chosen[i]), float(row[chosen[i]]), int(ranks[i])) for i in order.tolist()])
    return out


def _relevance_top(
    log_phi: np.ndarray,
    lift: np.ndarray,
    lam: float,
    n: int,
    pool: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """The ``n`` best terms by relevance ``lam * log_phi + (1 - lam) * lift``, as :func:`_top`
    over all terms gives them. With ``pool`` (the best terms by each part, best first) they are
    searched there first: a term outside it scores at most lam * (the pool's last log_phi) +
    (1 - lam) * (the pool's last lift), and when that is below the pool's n-th score the
    pool's answer is exact; otherwise all terms are searched."""
    if pool is not None:
        by_phi, by_lift = pool
        ids = np.union1d(by_phi, by_lift)
        best = ids[_top(lam * log_phi[ids] + (1 - lam) * lift[ids], n)]
        bound = lam * log_phi[by_phi[-1]] + (1 - lam) * lift[by_lift[-1]]
        if bound < lam * log_phi[best[-1]] + (1 - lam) * lift[best[-1]]:
            return best
    return _top(lam * log_phi + (1 - lam) * lift, n)


def _top(values: np.ndarray, n: int) -> np.ndarray:
    """Ids of the ``n`` largest values, ties to the lower id."""
    n = min(n, len(values))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cut = np.partition(values, len(values) - n)[len(values) - n]
    ids = np.flatnonzero(values >= cut)
    return ids[np.lexsort((ids, -values[ids]))[:n]]


def token_segments(
    text: str, tokens: list[str], term_ids: dict[str, int], phi: np.ndarray, shares: np.ndarray
) -> list[list]:
    """The text as pieces ``[piece, topic]``: each content word found in reading order gets
    its most probable topic given the document (argmax of p(w|k) p(k|d)), other text -1.

    Tokens the text does not contain verbatim (e.g. joined phrases) are skipped.
    """
    known = [t for t in tokens if t in term_ids]
    topic_of: dict[str, int] = {}
    if known:
        unique = sorted(set(known))
        scores = phi[:, [term_ids[t] for t in unique]] * shares[:, None]
        topic_of = dict(zip(unique, np.argmax(scores, axis=0).tolist(), strict=True))
    pieces: list[list] = []
    cursor = 0
    for token in tokens:
        at = text.find(token, cursor)
        if at < 0 or not token:
            continue
        if at > cursor:
            pieces.append([text[cursor:at], -1])
        pieces.append([token, topic_of.get(token, -1)])
        cursor = at + len(token)
    if cursor < len(text):
        pieces.append([text[cursor:], -1])
    return pieces


def _b64(array: np.ndarray) -> str:
    """Little-endian bytes of ``array`` in base64 (the page decodes them byte by byte)."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return base64.b64encode(little.tobytes()).decode("ascii")


def _r(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


def _filter_rows(path: Path, schema, columns: list[str], wanted: set[str]) -> pa.Table:
    """The rows of ``wanted`` documents, streaming the file a piece at a time."""
    keys = pa.array(sorted(wanted), pa.string())
    parts = [
        batch.select(columns).filter(pc.is_in(batch.column("doc_id"), keys))
        for batch in iter_tables(path, schema, batch_rows=BATCH_ROWS, columns=columns)
    ]
    return pa.concat_tables(parts) if parts else schema.subset(columns).schema.empty_table()


def build_data(
    inputs: Inputs,
    texts: dict[str, str],
    tokens: dict[str, list[str]],
    keywords: dict[str, list[tuple[str, float]]],
    params: ExplorerParams,
    prepared: Prepared | None = None,
) -> dict:
    """The page's data as plain JSON-able values; no file access.

    ``texts``, ``tokens`` and ``keywords`` need only the sampled documents
    (:func:`prepare` says which).
    """
    topics = inputs.topics.sort_by("topic").to_pylist()
    k = len(topics)
    if [t["topic"] for t in topics] != list(range(k)):
        raise ExplorerError("topics.parquet: topic numbers must run 0, 1, 2, ... K-1")
    if inputs.phi.shape != (k, inputs.vocabulary.num_rows):
        raise ExplorerError(
            f"models/lda/topic_word.npy has shape {inputs.phi.shape}; the run has {k} topics "
            f"and {inputs.vocabulary.num_rows} terms: re-run the lda stage"
        )
    prepared = prepared or prepare(inputs, params)
    doc_ids, theta, filters, sample = (
        prepared.doc_ids,
        prepared.theta,
        prepared.filters,
        prepared.sample,
    )
    vocab_terms = inputs.vocabulary.column("term").to_pylist()
    candidates = topic_terms(inputs.phi, inputs.term_freq, params)
    term_list = sorted({term_id for cands in candidates for term_id, _, _ in cands})
    index = {t: i for i, t in enumerate(term_list)}
    total = max(float(inputs.term_freq.sum()), 1.0)
    term_ids = {t: i for i, t in enumerate(vocab_terms)}
    docs_meta = _document_rows(inputs.documents, [doc_ids[i] for i in sample.tolist()])
    docs = []
    for row in sample.tolist():
        doc_id = doc_ids[row]
        meta = docs_meta.get(doc_id, {})
        text = texts.get(doc_id, "")
        cut = len(text) > params.text_chars
        shown = text[: params.text_chars]
        segments = token_segments(shown, tokens.get(doc_id, []), term_ids, inputs.phi, theta[row])
        mix = [[t, _r(w, 4)] for t, w in enumerate(theta[row].tolist()) if w >= 0.01]
        mix.sort(key=lambda m: (-m[1], m[0]))
        docs.append(
            {
                "row": row,
                "id": doc_id,
                "title": meta.pop("title", None),
                "date": meta.pop("date", None),
                "meta": meta,
                "mix": mix,
                "keywords": [[t, _r(w, 4)] for t, w in keywords.get(doc_id, [])],
                "segments": segments,
                "cut": cut,
                "chars": len(text),
            }
        )
    lengths = np.asarray([inputs.doc_lengths.get(d, 0) for d in doc_ids], dtype=np.uint32)
    prevalence = _table_prevalence(
        inputs.topic_prevalence, {name: set(groups) for name, groups, _ in filters}
    )
    metrics = inputs.lda_metrics
    return {
        "meta": {
            "documents": len(doc_ids),
            "modelled": max(prepared.modelled, len(doc_ids)),
            "max_shares": params.max_shares,
            "sampled": len(docs),
            "topics": k,
            "terms": inputs.vocabulary.num_rows,
            "engine": metrics.get("engine"),
            "coherence_c_npmi": metrics.get("coherence_c_npmi"),
            "sample": {
                "docs_per_topic": params.docs_per_topic,
                "docs_per_group": params.docs_per_group,
                "random_docs": params.random_docs,
                "random_state": params.random_state,
                "text_chars": params.text_chars,
                "topic_terms": params.topic_terms,
                "relevance_terms": params.relevance_terms,
            },
        },
        "terms": [vocab_terms[t] for t in term_list],
        "term_share": [_r(inputs.term_freq[t] / total, 9) for t in term_list],
        "topics": [
            {
                "topic": t["topic"],
                "label": t["label"],
                "prevalence": _r(t["prevalence"]),
                "coherence": _r(t["coherence"]),
                "terms": [[index[i], _r(p, 8), rank] for i, p, rank in candidates[t["topic"]]],
            }
            for t in topics
        ],
        "theta": _b64(np.rint(theta * QUANT).astype(np.uint16)),
        "lengths": _b64(lengths),
        "filters": [
            {
                "column": name,
                "time": name.endswith(TIME_COLUMN),
                "groups": groups,
                "codes": _b64(codes),
                "bytes": codes.dtype.itemsize,
                "source": column,
            }
            for (name, groups, codes), column in zip(filters, params.filter_columns, strict=True)
        ],
        "prevalence": prevalence,
        "keyness": _keyness(inputs.keyness, params.keyness_terms),
        "contrasts": _contrasts(inputs.topic_contrasts),
        "docs": docs,
    }


def _keyness(table: pa.Table | None, n: int) -> dict:
    """keyness.parquet as {column: {group: [[term, g2, log_ratio, significant], ...]}}, the
    ``n`` best of each group; {} when the run has no such table."""
    if table is None:
        return {}
    out: dict[str, dict] = {}
    order = [("column", "ascending"), ("group", "ascending"), ("rank", "ascending")]
    for row in table.sort_by(order).to_pylist():
        terms = out.setdefault(row["column"], {}).setdefault(row["group"], [])
        if len(terms) < n:
            terms.append(
                [row["term"], _r(row["g2"], 3), _r(row["log_ratio"], 3), bool(row["significant"])]
            )
    return out


def _contrasts(table: pa.Table | None) -> list:
    """topic_contrasts.parquet as rows [column, group, topic, n, diff, low, high]."""
    if table is None:
        return []
    order = [("column", "ascending"), ("group", "ascending"), ("topic", "ascending")]
    return [
        [
            r["column"],
            r["group"],
            r["topic"],
            r["n_docs"],
            _r(r["diff"]),
            _r(r["ci_low"]),
            _r(r["ci_high"]),
        ]
        for r in table.sort_by(order).to_pylist()
    ]


def _document_rows(documents: pa.Table, doc_ids: list[str]) -> dict[str, dict]:
    """Title, date and shown metadata of the given documents."""
    keys = pa.array(doc_ids, pa.string())
    columns = [c for c in documents.column_names if c not in HIDDEN_COLUMNS]
    rows = documents.select(columns).filter(pc.is_in(documents.column("doc_id"), keys))
    out = {}
    for row in rows.to_pylist():
        doc_id = row.pop("doc_id")
        out[doc_id] = {
            key: (value.isoformat() if hasattr(value, "isoformat") else value)
            for key, value in row.items()
            if value is not None
        }
    return out


def _table_prevalence(table: pa.Table | None, shown: dict[str, set[str]]) -> dict:
    """topic_prevalence as {column: {group: {n: docs, topics: [[mean, low, high], ...]}}}, for
    the groups the filters show."""
    if table is None:
        return {}
    out: dict[str, dict] = {}
    rows = table.sort_by([("column", "ascending"), ("group", "ascending"), ("topic", "ascending")])
    for row in rows.to_pylist():
        if row["group"] not in shown.get(row["column"], ()):
            continue
        group = out.setdefault(row["column"], {}).setdefault(
            row["group"], {"n": row["n_docs"], "topics": []}
        )
        group["topics"].append([_r(row["mean"]), _r(row["ci_low"]), _r(row["ci_high"])])
    return out


def prepare(inputs: Inputs, params: ExplorerParams) -> Prepared:
    """Every document's mix and groups, and which documents are sampled (before any text is
    read: only the sampled ones are)."""
    doc_ids, theta = theta_matrix(inputs.doc_topics, inputs.topics.num_rows)
    filters = [
        group_codes(inputs.documents, doc_ids, c, params.max_groups) for c in params.filter_columns
    ]
    sample = sample_documents(theta, [f[2] for f in filters], params)
    modelled = len(doc_ids)
    keep = mixes_kept(len(doc_ids), theta.shape[1], sample, params)
    if keep is not None:
        log.info("explorer: mixes of %d of %d documents (explorer.max_shares)", len(keep), modelled)
        position = np.full(len(doc_ids), -1, dtype=np.int64)
        position[keep] = np.arange(len(keep))
        sample = position[sample]
        doc_ids = [doc_ids[i] for i in keep.tolist()]
        theta = theta[keep]
        filters = [(name, groups, codes[keep]) for name, groups, codes in filters]
    return Prepared(doc_ids, theta, filters, sample, modelled)


def mixes_kept(n: int, k: int, sample: np.ndarray, params: ExplorerParams) -> np.ndarray | None:
    """Rows whose mixes are embedded when all ``n`` x ``k`` shares exceed
    ``explorer.max_shares``: the sampled documents and a seeded random choice of the others,
    ascending; None when all fit."""
    limit = max(params.max_shares // max(k, 1), len(sample))
    if n <= limit:
        return None
    rest = np.setdiff1d(np.arange(n), sample)
    rng = np.random.default_rng([params.random_state, 1])
    chosen = rng.choice(rest, size=limit - len(sample), replace=False)
    return np.union1d(sample, chosen).astype(np.int64)


def used_characters(data: dict) -> str:
    """Every character the page can show: its data and the template's own text."""
    blobs = {"theta", "lengths"}  # base64: ASCII only, and most of the data's length
    text = {key: value for key, value in data.items() if key not in blobs}
    text["filters"] = [{k: v for k, v in f.items() if k != "codes"} for f in data["filters"]]
    chars = set(json.dumps(text, ensure_ascii=False))
    chars.update(string.ascii_letters + string.digits + string.punctuation)
    for name in ("explorer.html", "explorer.js", "explorer.css"):
        chars.update(template(name))
    return "".join(sorted(c for c in chars if c >= " "))


def render(data: dict, font: bytes | None) -> str:
    """The page: template, styles, the data and the script, with a CSP that allows only the
    script's own hash, inline styles and data: fonts (no request anywhere)."""
    script = template("explorer.js")
    face = ""
    if font is not None:
        encoded = base64.b64encode(font).decode("ascii")
        face = (
            '@font-face { font-family: "zhtopics CJK"; '
            f'src: url(data:font/woff;base64,{encoded}) format("woff"); }}\n'
        )
    values = {
        "CSP": content_security_policy(script),
        "TITLE": PAGE_TITLE,
        "STYLE": face + template("explorer.css"),
        "DATA": embed_json(data),
        "SCRIPT": script,
    }
    return fill(template("explorer.html"), values)


def explorer(
    inputs: Inputs,
    texts: dict[str, str],
    tokens: dict[str, list[str]],
    keywords: dict[str, list[tuple[str, float]]],
    params: ExplorerParams,
    prepared: Prepared | None = None,
) -> str:
    """The explorer page from a run's data; no file access."""
    data = build_data(inputs, texts, tokens, keywords, params, prepared)
    font = subset_font(used_characters(data)) if params.embed_font else None
    return render(data, font)


def load_inputs(paths: Paths) -> Inputs:
    """Read what every page needs (no texts) from a run's tables and saved model."""
    from pipeline.io import read_json

    vocabulary = read_table(paths.table("vocabulary"), VOCABULARY)
    term_freq = np.zeros(vocabulary.num_rows, dtype=np.float64)
    doc_lengths: dict[str, int] = {}
    for piece in iter_tables(
        paths.table("doc_terms"), DOC_TERMS, columns=["doc_id", "term_id", "count"]
    ):
        counts = piece.column("count").to_numpy().astype(np.float64)
        term_freq += np.bincount(
            piece.column("term_id").to_numpy(), weights=counts, minlength=vocabulary.num_rows
        )
        sums = piece.group_by("doc_id", use_threads=False).aggregate([("count", "sum")])
        for doc, n in zip(
            sums.column("doc_id").to_pylist(), sums.column("count_sum").to_pylist(), strict=True
        ):
            doc_lengths[doc] = doc_lengths.get(doc, 0) + n
    keyness = read_optional(paths.table("keyness"), ALL.get("keyness"))
    if keyness is not None:
        require_columns(keyness, KEYNESS_COLUMNS, str(paths.table("keyness")))
    contrasts = read_optional(paths.table("topic_contrasts"), ALL.get("topic_contrasts"))
    if contrasts is not None:
        require_columns(contrasts, CONTRAST_COLUMNS, str(paths.table("topic_contrasts")))
    model = paths.models / "lda" / "topic_word.npy"
    if not model.is_file():
        raise FileNotFoundError(f"{model}: no saved model; run the lda stage first")
    return Inputs(
        topics=read_table(paths.table("topics"), TOPICS),
        vocabulary=vocabulary,
        doc_topics=read_table(paths.table("doc_topics"), DOC_TOPICS),
        documents=read_table(paths.table("documents"), DOCUMENTS, without=["text"]),
        term_freq=term_freq,
        doc_lengths=doc_lengths,
        phi=np.load(model, allow_pickle=False),
        topic_prevalence=read_optional(paths.table("topic_prevalence"), TOPIC_PREVALENCE),
        lda_metrics=read_json(paths.metrics / "lda.json"),
        keyness=keyness,
        topic_contrasts=contrasts,
    )


def load_sample_texts(
    paths: Paths, doc_ids: list[str]
) -> tuple[dict[str, str], dict[str, list[str]], dict[str, list[tuple[str, float]]]]:
    """Clean texts, token lists and TF-IDF keywords of the sampled documents only."""
    wanted = set(doc_ids)
    clean = _filter_rows(paths.table("clean"), CLEAN, ["doc_id", "text"], wanted)
    tokens = _filter_rows(paths.table("tokens"), TOKENS, ["doc_id", "tokens"], wanted)
    keywords = _filter_rows(
        paths.table("keywords"), KEYWORDS, ["doc_id", "rank", "term", "weight"], wanted
    ).sort_by([("doc_id", "ascending"), ("rank", "ascending")])
    by_doc: dict[str, list[tuple[str, float]]] = {}
    for doc, term, weight in zip(
        keywords.column("doc_id").to_pylist(),
        keywords.column("term").to_pylist(),
        keywords.column("weight").to_pylist(),
        strict=True,
    ):
        by_doc.setdefault(doc, []).append((term, weight))
    return (
        dict(
            zip(clean.column("doc_id").to_pylist(), clean.column("text").to_pylist(), strict=True)
        ),
        dict(
            zip(
                tokens.column("doc_id").to_pylist(),
                tokens.column("tokens").to_pylist(),
                strict=True,
            )
        ),
        by_doc,
    )


def write_page(page: str, path: Path) -> None:
    """Write the page atomically, readable by all like the report (it is meant to be shared)."""
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
        tmp.chmod(0o644)


def main(params: Params, paths: Paths) -> None:
    inputs = load_inputs(paths)
    prepared = prepare(inputs, params.explorer)
    doc_ids, sample = prepared.doc_ids, prepared.sample
    texts, tokens, keywords = load_sample_texts(paths, [doc_ids[i] for i in sample.tolist()])
    page = explorer(inputs, texts, tokens, keywords, params.explorer, prepared)
    path = paths.processed / FILENAME
    write_page(page, path)
    log.info(
        "explorer: %d topics, %d of %d documents with texts, %.1f MB -> %s",
        inputs.topics.num_rows,
        len(sample),
        len(doc_ids),
        len(page.encode("utf-8")) / 1e6,
        path,
    )
