"""Count matrices (pipeline/topics/counts.py): from doc_terms tables and from token ids."""

import numpy as np
import pyarrow as pa
import pytest

from pipeline.topics.counts import LdaError, build_counts, check_inputs, id_counts
from tests.conftest import table


def test_counts_from_pieces_equal_counts_from_the_whole_table():
    rng = np.random.default_rng(6)
    docs = [f"d{i}" for i in rng.integers(0, 40, 500)]  # repeats, in no order
    table = pa.table(
        {
            "doc_id": docs,
            "term_id": pa.array(rng.integers(0, 30, 500), pa.int32()),
            "count": pa.array(rng.integers(1, 5, 500), pa.int32()),
        }
    )
    ids, whole = build_counts(table, 30)
    assert ids == list(dict.fromkeys(docs))  # first-seen order
    pieces = [table.slice(a, 37) for a in range(0, 500, 37)]
    ids_p, streamed = build_counts(iter(pieces), 30)
    assert ids_p == ids
    assert (whole != streamed).nnz == 0 and whole.dtype == streamed.dtype
    dense = np.zeros((len(ids), 30), dtype=np.int64)
    np.add.at(
        dense,
        ([ids.index(d) for d in docs], table.column("term_id").to_numpy()),
        table.column("count").to_numpy(),
    )
    np.testing.assert_array_equal(whole.toarray(), dense)


def test_id_counts_count_each_documents_term_ids():
    counts = id_counts([[2, 0, 2], [], [1]], 4)
    assert counts.shape == (3, 4)
    np.testing.assert_array_equal(counts.toarray(), [[1, 0, 2, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    assert id_counts([], 5).shape == (0, 5)


def test_check_inputs_names_the_table_and_the_order():
    vocabulary = table(term_id=pa.array([0, 2], pa.int32()), term=["a", "b"], df=[1, 1])
    tokens = table(doc_id=["d"], tokens=[["a"]])
    doc_terms = table(doc_id=["d"], term_id=pa.array([0], pa.int32()), count=[1])
    with pytest.raises(LdaError, match="lda: vocabulary term_id must run 0, 1, 2"):
        check_inputs(vocabulary, doc_terms, tokens, "lda")
    with pytest.raises(Exception, match=r"lda_sweep \(tokens\)"):
        check_inputs(vocabulary, doc_terms, table(doc_id=["d"]), "lda_sweep")
