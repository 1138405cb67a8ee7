"""The document-term count matrix a topic model is fitted on, and the checks of its inputs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from pipeline.io import table_pieces
from pipeline.schemas import require_columns

COUNT_COLUMNS = ["doc_id", "term_id", "count"]
BATCH_ROWS = 4096  # rows of tokens, documents or clean held at a time while streaming
# A table, or its pieces in order (``io.iter_tables``, ``io.TableFile``): the stages stream.
TableOrPieces = pa.Table | Iterable[pa.Table]


class LdaError(ValueError):
    """The corpus or settings cannot give a topic model; the message says why."""


def build_counts(doc_terms: TableOrPieces, n_terms: int | None) -> tuple[list[str], sp.csr_matrix]:
    """The (documents x terms) count matrix, documents in their first-seen table order.

    ``doc_terms`` is a table or its pieces in order (streamed: only the ids and counts of a
    piece are held at a time, as integers, never the whole table's doc_id strings).
    """
    order: dict[str, int] = {}
    rows, cols, data = [], [], []
    for table in table_pieces(doc_terms):
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


def id_counts(id_lists: Sequence[Sequence[int]], n_terms: int) -> sp.csr_matrix:
    """The (documents x terms) count matrix of each document's term ids (row i: list i).

    The one place token lists become counts: inference on new documents and the sweep's
    held-out halves both map tokens to ids and count them here.
    """
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    rows = np.repeat(np.arange(len(id_lists), dtype=np.int64), lengths)
    cols = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
    counts = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(id_lists), n_terms))
    counts.sum_duplicates()
    return counts


def check_inputs(
    vocabulary: pa.Table, doc_terms: TableOrPieces, tokens: TableOrPieces, where: str
) -> None:
    """Columns of the tables given whole (streamed pieces are checked as they are read)."""
    require_columns(vocabulary, ["term_id", "term", "df"], f"{where} (vocabulary)")
    if isinstance(doc_terms, pa.Table):
        require_columns(doc_terms, ["doc_id", "term_id", "count"], f"{where} (doc_terms)")
    if isinstance(tokens, pa.Table):
        require_columns(tokens, ["doc_id", "tokens"], f"{where} (tokens)")
    if vocabulary.column("term_id").to_pylist() != list(range(vocabulary.num_rows)):
        raise LdaError(f"{where}: vocabulary term_id must run 0, 1, 2, ... in row order")
