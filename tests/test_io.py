import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.io import TableWriter, iter_tables, read_table, row_spans, write_json, write_table
from pipeline.schemas import DOCUMENTS, TOKENS, TOPICS, SchemaError


def _topics(n: int) -> pa.Table:
    return pa.table(
        {
            "topic": pa.array(range(n), pa.int32()),
            "label": [f"t{i}" for i in range(n)],
            "prevalence": [1.0 / n] * n,
            "coherence": [0.1] * n,
        }
    )


def test_round_trip_and_same_bytes(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_table(_topics(3), a, TOPICS)
    write_table(_topics(3), b, TOPICS)
    assert a.read_bytes() == b.read_bytes()
    read = read_table(a, TOPICS)
    assert read.drop_columns("prevalence").equals(
        TOPICS.conform(_topics(3)).drop_columns("prevalence")
    )
    # Floats are published at 8 significant digits (pipeline/precision.py).
    assert read.column("prevalence").to_pylist() == [0.33333333] * 3


def test_floats_are_written_rounded_so_last_bit_noise_gives_the_same_bytes(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    noisy = _topics(3).set_column(2, "prevalence", pa.array([0.1 + 0.2, 0.3, 1 / 3]))
    write_table(noisy, a, TOPICS)
    write_table(_topics(3).set_column(2, "prevalence", pa.array([0.3, 0.3, 1 / 3])), b, TOPICS)
    assert a.read_bytes() == b.read_bytes()
    write_json({"x": 0.1 + 0.2, "nested": [{"y": 2 / 3}], "n": 3}, tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text(encoding="utf-8")
    assert '"x": 0.3' in text and '"y": 0.66666667' in text and '"n": 3' in text


def test_pieces_give_the_same_bytes_as_one_write(tmp_path):
    whole, pieces = tmp_path / "whole.parquet", tmp_path / "pieces.parquet"
    write_table(_topics(4), whole, TOPICS)
    with TableWriter(pieces, TOPICS) as writer:
        writer.write(_topics(4))
    assert whole.read_bytes() == pieces.read_bytes()


def test_iter_tables_streams_in_batches(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(_topics(10), path, TOPICS)
    sizes = [t.num_rows for t in iter_tables(path, TOPICS, batch_rows=4)]
    assert sizes == [4, 4, 2]


def test_reading_only_some_columns(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(_topics(5), path, TOPICS)
    table = pa.concat_tables(iter_tables(path, TOPICS, columns=["label", "topic"]))
    assert table.column_names == ["topic", "label"]  # declared order
    assert table.column("label").equals(read_table(path, TOPICS).column("label"))
    pieces = list(iter_tables(path, TOPICS, batch_rows=2, columns=["prevalence"]))
    assert [t.column_names for t in pieces] == [["prevalence"]] * 3
    # A column the file lacks is refused, naming the file.
    write_table(_topics(2), path, TOPICS)
    with pytest.raises(SchemaError, match="t.parquet"):
        TOPICS.subset(["topic", "nope"]).conform(pa.table({"x": [1]}), where=str(path))


def test_reading_without_some_columns(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(_topics(3), path, TOPICS)
    table = read_table(path, TOPICS, without=["label", "coherence"])
    assert table.column_names == ["topic", "prevalence"]
    assert table.column("topic").equals(read_table(path, TOPICS).column("topic"))
    # A declared column that is not left out is still required, naming the file.
    pa_table = _topics(3).drop_columns(["coherence"])
    pq.write_table(pa_table, path)
    with pytest.raises(SchemaError, match="t.parquet.*coherence"):
        read_table(path, TOPICS, without=["label"])
    assert read_table(path, TOPICS, without=["coherence"]).num_rows == 3


def test_lists_have_no_statistics_and_flat_columns_do(tmp_path):
    path = tmp_path / "tokens.parquet"
    tokens = pa.table({"doc_id": ["a", "b"], "tokens": [["x", "y"], []], "n_tokens": [2, 0]})
    write_table(tokens, path, TOKENS)
    group = pq.ParquetFile(path).metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).is_stats_set for i in range(3)}
    assert stats == {"doc_id": True, "tokens.list.element": False, "n_tokens": True}


def test_empty_table_round_trips(tmp_path):
    path = tmp_path / "e.parquet"
    with TableWriter(path, TOPICS):
        pass
    assert [t.num_rows for t in iter_tables(path, TOPICS)] == [0]


def test_types_are_cast_to_the_declared_ones(tmp_path):
    table = _topics(2).set_column(0, "topic", pa.array([0, 1], pa.int64()))
    write_table(table, tmp_path / "t.parquet", TOPICS)
    assert read_table(tmp_path / "t.parquet", TOPICS).schema.field("topic").type == pa.int32()


def test_missing_and_unexpected_columns_are_named(tmp_path):
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['coherence'\]"):
        write_table(_topics(2).drop(["coherence"]), tmp_path / "t.parquet", TOPICS)
    with pytest.raises(SchemaError, match=r"unexpected column\(s\) \['extra'\]"):
        TOPICS.conform(_topics(1).append_column("extra", pa.array([1])))
    assert not list(tmp_path.iterdir())


def test_open_schema_keeps_metadata_columns_after_the_fixed_ones():
    table = pa.table(
        {
            "label": ["a"],
            "doc_id": ["d"],
            "parent_id": ["d"],
            "source": ["s"],
            "record": [0],
            "part": [None],
            "paragraph": pa.array([None], pa.int32()),
            "title": [None],
            "date": pa.array([None], pa.date32()),
            "date_source": pa.array([None], pa.string()),
            "date_precision": pa.array([None], pa.string()),
            "text": ["x"],
            "format": ["txt"],
            "encoding": ["utf-8"],
            "decode_errors": [0],
            "status": ["kept"],
            "reason": [None],
        }
    )
    assert DOCUMENTS.conform(table).column_names == DOCUMENTS.columns + ["label"]


def test_nulls_in_required_columns_are_refused():
    table = pa.table({"doc_id": [None], "tokens": [["a"]], "n_tokens": [1]})
    with pytest.raises(SchemaError, match="doc_id.*null"):
        TOKENS.conform(table)


def test_reading_a_missing_table_says_which(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokens table is missing"):
        read_table(tmp_path / "tokens.parquet", TOKENS)


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "t.parquet"
    with pytest.raises(RuntimeError), TableWriter(path, TOPICS) as writer:
        writer.write(_topics(1))
        raise RuntimeError("boom")
    assert not list(tmp_path.iterdir())


def test_json_is_sorted_and_stable(tmp_path):
    write_json({"b": 1, "a": "中"}, tmp_path / "m.json")
    assert (tmp_path / "m.json").read_text(encoding="utf-8") == '{\n  "a": "中",\n  "b": 1\n}\n'


def test_row_spans_take_as_many_rows_as_fit_and_at_least_one():
    offsets = [0, 30, 1230, 1230, 1245, 1260, 1275]  # a row of 1,200 and an empty row
    assert list(row_spans(offsets, 40)) == [(0, 1), (1, 2), (2, 5), (5, 6)]
    assert list(row_spans(np.asarray(offsets, np.int32), 1275)) == [(0, 6)]
    assert list(row_spans([0], 40)) == [(0, 0)]  # no rows: one empty range


def test_a_dataset_folder_reads_as_its_parts_in_name_order(tmp_path):
    """The Spark engine's layout: part files in a folder (Spark's bookkeeping files aside)."""
    folder = tmp_path / "topics.parquet"
    folder.mkdir()
    whole = _topics(5)
    for i, (lo, hi) in enumerate([(0, 2), (2, 3), (3, 5)]):
        # Spark's nullable fields: conform takes them for the declared ones.
        part = whole.slice(lo, hi - lo)
        loose = part.cast(pa.schema([f.with_nullable(True) for f in part.schema]))
        pq.write_table(loose, folder / f"part-{2 - i + 10:05d}.parquet")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".part-00010.parquet.crc").write_bytes(b"x")
    # Names in reverse row order: reading follows names, so rows come back reversed by part.
    expected = TOPICS.conform(
        pa.concat_tables([whole.slice(3, 2), whole.slice(2, 1), whole.slice(0, 2)])
    )
    assert read_table(folder, TOPICS).equals(expected)
    assert pa.concat_tables(iter_tables(folder, TOPICS, batch_rows=1)).equals(expected)
    assert read_table(folder, TOPICS, without=["label"]).column_names == [
        c for c in TOPICS.columns if c != "label"
    ]
    (tmp_path / "empty.parquet").mkdir()
    with pytest.raises(FileNotFoundError, match="topics table is missing"):
        read_table(tmp_path / "empty.parquet", TOPICS)
