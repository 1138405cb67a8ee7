"""Stage tfidf: vocabulary, document-term counts and TF-IDF keywords (scikit-learn)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from pipeline.config import Params, TfidfParams
from pipeline.io import Paths, read_table, write_table
from pipeline.schemas import DOC_TERMS, KEYWORDS, TOKENS, VOCABULARY, require_columns

log = logging.getLogger(__name__)


class TfidfError(ValueError):
    """The settings leave nothing to model; the message names them."""


@dataclass(frozen=True)
class TfidfResult:
    vocabulary: pa.Table
    doc_terms: pa.Table
    keywords: pa.Table


def _identity(tokens: list[str]) -> list[str]:
    """The analyzer: tokens come segmented already, so they are used as they are."""
    return tokens


def tfidf(tokens: pa.Table, params: TfidfParams) -> TfidfResult:
    """Count terms over documents with tokens, prune by document frequency, weight by TF-IDF."""
    require_columns(tokens, ["doc_id", "tokens", "n_tokens"], "tfidf")
    mask = pc.greater(tokens.column("n_tokens"), 0)
    tokens = tokens.filter(mask)
    if tokens.num_rows == 0:
        raise TfidfError("tfidf: no document has any token; check the clean and segment results")
    vectorizer = CountVectorizer(
        analyzer=_identity,
        min_df=params.min_df,
        max_df=params.max_df,
        max_features=params.max_features,
        dtype=np.int32,
    )
    try:
        counts = vectorizer.fit_transform(tokens.column("tokens").to_pylist())
    except ValueError as exc:
        raise TfidfError(
            f"tfidf: no term is left with tfidf.min_df={params.min_df} and "
            f"tfidf.max_df={params.max_df} over {tokens.num_rows} documents ({exc}); "
            "lower min_df or raise max_df"
        ) from exc
    counts = sp.csr_matrix(counts)
    counts.sort_indices()
    transformer = TfidfTransformer(
        norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=params.sublinear_tf
    )
    weights = sp.csr_matrix(transformer.fit_transform(counts))
    weights.sort_indices()
    terms = vectorizer.get_feature_names_out().astype(object)
    doc_ids = np.asarray(tokens.column("doc_id").to_pylist(), dtype=object)
    vocabulary = pa.table(
        {
            "term_id": pa.array(np.arange(len(terms), dtype=np.int32)),
            "term": pa.array(terms.tolist(), pa.string()),
            "df": pa.array(np.bincount(counts.indices, minlength=len(terms)).astype(np.int32)),
            "idf": pa.array(transformer.idf_.astype(np.float64)),
        }
    )
    row_of_entry = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    doc_terms = pa.table(
        {
            "doc_id": pa.array(doc_ids[row_of_entry].tolist(), pa.string()),
            "term_id": pa.array(counts.indices.astype(np.int32)),
            "count": pa.array(counts.data.astype(np.int32)),
            "tfidf": pa.array(weights.data.astype(np.float64)),
        }
    )
    return TfidfResult(vocabulary, doc_terms, _keywords(weights, doc_ids, terms, params.top_k))


def _keywords(
    weights: sp.csr_matrix, doc_ids: np.ndarray, terms: np.ndarray, top_k: int
) -> pa.Table:
    """The ``top_k`` terms of each document by weight; ties go to the earlier term."""
    ids, ranks, words, values = [], [], [], []
    for row in range(weights.shape[0]):
        start, end = weights.indptr[row], weights.indptr[row + 1]
        cols, data = weights.indices[start:end], weights.data[start:end]
        order = np.lexsort((cols, -data))[:top_k]
        ids.extend([doc_ids[row]] * len(order))
        ranks.extend(range(1, len(order) + 1))
        words.extend(terms[cols[order]].tolist())
        values.extend(data[order].tolist())
    return pa.table(
        {
            "doc_id": pa.array(ids, pa.string()),
            "rank": pa.array(ranks, pa.int32()),
            "term": pa.array(words, pa.string()),
            "weight": pa.array(values, pa.float64()),
        }
    )


def main(params: Params, paths: Paths) -> None:
    tokens = read_table(paths.table("tokens"), TOKENS)
    result = tfidf(tokens, params.tfidf)
    write_table(result.vocabulary, paths.table("vocabulary"), VOCABULARY)
    write_table(result.doc_terms, paths.table("doc_terms"), DOC_TERMS)
    write_table(result.keywords, paths.table("keywords"), KEYWORDS)
    n_with_terms = len(pc.unique(result.doc_terms.column("doc_id")))
    n_with_tokens = pc.sum(pc.greater(tokens.column("n_tokens"), 0)).as_py()
    log.info(
        "tfidf: %d terms; %d of %d documents have terms -> %s",
        result.vocabulary.num_rows,
        n_with_terms,
        tokens.num_rows,
        paths.processed,
    )
    if n_with_terms < n_with_tokens:
        log.warning(
            "tfidf: %d document(s) have tokens but none in the vocabulary "
            "(tfidf.min_df/max_df); they get no keywords and no topic mix",
            n_with_tokens - n_with_terms,
        )
