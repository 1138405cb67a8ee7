"""The documents that show a topic best, each with a snippet near the topic's terms."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.config import LdaParams
from pipeline.schemas import REPRESENTATIVE_DOCS, require_columns


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
