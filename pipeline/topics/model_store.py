"""A fitted model on disk: saved as plain arrays and JSON, read back for inference on new
documents (all that ``zhtopics infer`` needs, without the lda stage's code)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.config import RUN_ONLY, Params
from pipeline.io import atomic_folder, read_json
from pipeline.topics.counts import LdaError
from pipeline.topics.engines import Fitted

# Version of the saved model folder (model.json, topic_word.npy, terms.json); see README.
MODEL_FORMAT = 1


def save_model(
    fitted: Fitted,
    terms: list[str],
    directory: Path,
    settings: dict | None = None,
    left_out: Sequence[str] = (),
) -> None:
    """Save the model as plain arrays and JSON (any later version can read them), plus the
    engine's own file, into a fresh folder swapped into place.

    ``model.json`` (format version, engine, K, priors, the settings it was trained with, the
    background terms ``left_out`` of the fit, which inference leaves out too),
    ``topic_word.npy`` (K x terms, float64, rows sum to 1; column i is ``terms.json``[i]).
    The engine's file: ``lda.model`` (gensim) or ``tomotopy.bin``.
    """
    with atomic_folder(directory) as tmp:
        meta = {
            "format_version": MODEL_FORMAT,
            "engine": fitted.engine,
            "num_topics": int(fitted.phi.shape[0]),
            "num_terms": int(fitted.phi.shape[1]),
            "alpha": [float(a) for a in fitted.alpha],  # rounded in Fitted
            "eta": float(fitted.eta),
            "files": {"topic_word": "topic_word.npy", "terms": "terms.json"},
            "settings": settings or {},
            "convergence": fitted.convergence,
            "left_out_terms": list(left_out),
        }
        (tmp / "model.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n", "utf-8"
        )
        (tmp / "terms.json").write_text(json.dumps(terms, ensure_ascii=False) + "\n", "utf-8")
        np.save(tmp / "topic_word.npy", np.ascontiguousarray(fitted.phi, dtype="<f8"))
        _save_native(fitted, tmp)


def _save_native(fitted: Fitted, folder: Path) -> None:
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

    def left_out(self) -> np.ndarray:
        """Which terms the fit left out (background, ``lda.background: drop``): inference
        leaves them out too. One flag per term, in the order of ``terms``."""
        out = set(self.meta.get("left_out_terms", []))
        return np.fromiter((t in out for t in self.terms), dtype=bool, count=len(self.terms))


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


def settings_snapshot(params: Params) -> dict:
    """The settings that shape a document's tokens (ingest, clean, segment), as plain data,
    stored with the model for ``zhtopics infer`` to compare. Settings that never change a
    result (``config.RUN_ONLY``: workers, cache) are left out, so changing them does not make
    the lda stage stale (its dvc.yaml ``params:`` lists exactly what this reads)."""

    def plain(value):
        if isinstance(value, Path):
            return value.name
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {
        name: {
            f.name: plain(getattr(section, f.name))
            for f in dataclasses.fields(section)
            if f.name not in RUN_ONLY
        }
        for name in ("ingest", "clean", "segment")
        for section in [getattr(params, name)]
    }


def doc_topics_table(doc_ids: list[str], theta: np.ndarray) -> pa.Table:
    """The doc_topics table (one row per document and topic) of a fit or of inference."""
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
