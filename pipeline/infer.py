"""zhtopics infer: topic mixes of new documents under a saved model, without refitting.

The new files go through the project's own ingest, clean and segment stages (the same code and
settings as training, into a temporary folder); their tokens are mapped to the model's
vocabulary, unknown words are ignored and counted, and each mix is folded in under the saved
topics (:func:`pipeline.topics.engines.fold_in`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.config import Params
from pipeline.io import Paths, raw_folder, read_table, write_table
from pipeline.runner import run_stages
from pipeline.schemas import DOC_TOPICS, DOCUMENTS, INFERRED_DOCS, TOKENS, require_columns
from pipeline.topics import engines
from pipeline.topics.counts import id_counts
from pipeline.topics.model_store import (
    SavedModel,
    doc_topics_table,
    load_model,
    settings_snapshot,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferResult:
    doc_topics: pa.Table
    docs: pa.Table


def infer(tokens: pa.Table, model: SavedModel, documents: pa.Table | None = None) -> InferResult:
    """Fold each document's known tokens into the saved topics; count the unknown ones."""
    require_columns(tokens, ["doc_id", "tokens"], "infer (tokens)")
    left_out = model.left_out()  # background, as in the fit
    index = {t: i for i, t in enumerate(model.terms) if not left_out[i]}
    doc_ids = tokens.column("doc_id").to_pylist()
    token_lists = tokens.column("tokens").to_pylist()
    id_lists = [[index[t] for t in toks if t in index] for toks in token_lists]
    counts = id_counts(id_lists, len(model.terms))
    n_tokens = [len(toks) for toks in token_lists]
    known = [len(ids) for ids in id_lists]
    unknown = [n - k for n, k in zip(n_tokens, known, strict=True)]
    has_terms = np.asarray(known) > 0
    theta = engines.fold_in(model.phi, model.alpha, counts[has_terms])
    kept_ids = [d for d, h in zip(doc_ids, has_terms, strict=True) if h]
    meta = {}
    if documents is not None:
        meta = {r["doc_id"]: r for r in documents.select(["doc_id", "source", "title"]).to_pylist()}
    status = [
        "inferred" if h else ("no_tokens" if n == 0 else "no_known_terms")
        for h, n in zip(has_terms, n_tokens, strict=True)
    ]
    docs = pa.table(
        {
            "doc_id": doc_ids,
            "source": [meta.get(d, {}).get("source", "") for d in doc_ids],
            "title": [meta.get(d, {}).get("title") for d in doc_ids],
            "status": status,
            "n_tokens": pa.array(n_tokens, pa.int64()),
            "n_known": pa.array(known, pa.int64()),
            "n_unknown": pa.array(unknown, pa.int64()),
        }
    )
    return InferResult(doc_topics_table(kept_ids, theta), INFERRED_DOCS.conform(docs))


def docs_path(out: Path) -> Path:
    """Where the per-document report goes: beside ``out``, named ``<stem>.docs.parquet``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.docs.parquet")


def _check_settings(params: Params, model: SavedModel) -> None:
    trained = model.meta.get("settings") or {}
    now = settings_snapshot(params)
    changed = [
        f"{section}.{key}"
        for section in ("ingest", "clean", "segment")
        for key in sorted(set(trained.get(section, {})) | set(now.get(section, {})))
        if trained.get(section, {}).get(key) != now.get(section, {}).get(key)
    ]
    if changed:
        log.warning(
            "infer: the model was trained with other settings for %s; the new documents are "
            "prepared with the current ones (use the params file the model was trained with)",
            ", ".join(changed),
        )


def run(params: Params, source: Path, model_dir: Path, out: Path) -> InferResult:
    """Prepare ``source`` (a file or folder) with the pipeline's stages, then infer."""
    model = load_model(model_dir)
    _check_settings(params, model)
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder to infer")
    with tempfile.TemporaryDirectory(prefix="zhtopics-infer-") as tmp:
        tmp = Path(tmp)
        paths = Paths.under(raw_folder(source, tmp), tmp / "out")
        words = (model.meta.get("settings") or {}).get("new_words")
        if params.segment.new_words == "use" and words is not None:
            # The words discovered in the training corpus, not in these few documents.
            from pipeline import segment

            run_stages(params, paths, until="clean")
            segment.main(params, paths, added_words=words)
        else:
            run_stages(params, paths, until="segment")
        result = infer(
            read_table(paths.table("tokens"), TOKENS),
            model,
            read_table(paths.table("documents"), DOCUMENTS),
        )
    write_table(result.doc_topics, out, DOC_TOPICS)
    write_table(result.docs, docs_path(out), INFERRED_DOCS)
    docs = result.docs
    total_unknown = sum(docs.column("n_unknown").to_pylist())
    total = sum(docs.column("n_tokens").to_pylist())
    log.info(
        "infer: %d document(s), %d with a topic mix -> %s; %d of %d tokens (%.1f%%) unknown "
        "to the model, ignored (per document in %s)",
        docs.num_rows,
        docs.column("status").to_pylist().count("inferred"),
        out,
        total_unknown,
        total,
        100 * total_unknown / max(total, 1),
        docs_path(out),
    )
    return result
