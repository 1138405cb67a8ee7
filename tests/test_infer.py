import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.cli import main
from pipeline.infer import docs_path, infer
from pipeline.io import Paths, read_table
from pipeline.schemas import DOC_TOPICS, INFERRED_DOCS
from pipeline.topics.model_store import SavedModel, load_model
from tests.conftest import ROOT, SAMPLE_FILE

MODEL = SavedModel(
    phi=np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]),
    alpha=np.array([0.1, 0.1]),
    terms=["足球", "今天", "股票"],
    meta={},
)


def test_unknown_words_are_ignored_and_counted():
    tokens = pa.table(
        {
            "doc_id": ["a", "b", "c", "d"],
            "tokens": [["足球", "足球", "火星"], ["股票", "股票", "今天"], ["火星"], []],
        }
    )
    result = infer(tokens, MODEL)
    docs = INFERRED_DOCS.conform(result.docs).to_pylist()
    assert [d["n_unknown"] for d in docs] == [1, 0, 1, 0]
    assert [d["n_known"] for d in docs] == [2, 3, 0, 0]
    assert [d["status"] for d in docs] == ["inferred", "inferred", "no_known_terms", "no_tokens"]
    mix = DOC_TOPICS.conform(result.doc_topics)
    assert mix.column("doc_id").to_pylist() == ["a", "a", "b", "b"]
    weights = np.array(mix.column("weight").to_pylist()).reshape(2, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert weights[0, 0] > 0.9 and weights[1, 1] > 0.9


def test_background_terms_left_out_in_training_are_ignored():
    model = SavedModel(MODEL.phi, MODEL.alpha, MODEL.terms, {"left_out_terms": ["今天"]})
    tokens = pa.table({"doc_id": ["a", "b"], "tokens": [["今天", "股票"], ["今天"]]})
    docs = INFERRED_DOCS.conform(infer(tokens, model).docs).to_pylist()
    assert [d["n_known"] for d in docs] == [1, 0]
    assert [d["n_unknown"] for d in docs] == [1, 1]
    assert [d["status"] for d in docs] == ["inferred", "no_known_terms"]


def _infer(path, out, model) -> int:
    return main(
        ["infer", "-q", str(path), "--out", str(out), "--model", str(model)]
        + ["--params", str(ROOT / "params.yaml")]
    )


def test_infer_on_the_training_file_agrees_with_training(sample_run: Paths, tmp_path):
    """The same documents (same doc_id) folded into the saved topics keep their dominant topic."""
    out = tmp_path / "new_topics.parquet"
    assert _infer(SAMPLE_FILE, out, sample_run.models / "lda") == 0
    inferred = read_table(out, DOC_TOPICS)
    trained = read_table(sample_run.table("doc_topics"), DOC_TOPICS)
    k = load_model(sample_run.models / "lda").phi.shape[0]

    def dominant(t):
        w = np.array(t.column("weight").to_pylist()).reshape(-1, k)
        return dict(zip(t.column("doc_id").to_pylist()[::k], w.argmax(axis=1), strict=True))

    a, b = dominant(trained), dominant(inferred)
    assert set(a) == set(b)
    agree = np.mean([a[d] == b[d] for d in a])
    assert agree >= 0.8, agree
    docs = read_table(docs_path(out), INFERRED_DOCS)
    assert docs.num_rows >= len(a)
    assert pc.sum(docs.column("n_unknown")).as_py() >= 0


def test_infer_a_new_folder_counts_unknown_words(sample_run: Paths, tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    text = SAMPLE_FILE.read_text(encoding="utf-8").splitlines()
    body = next(line for line in text if len(line) > 80)
    (new / "next_month.txt").write_text(
        "新闻标题\n\n" + body + "量子计算机与火星探测器的发射窗口已经确定。" * 3, encoding="utf-8"
    )
    out = tmp_path / "out" / "topics.parquet"
    assert _infer(new, out, sample_run.models / "lda") == 0
    docs = read_table(docs_path(out), INFERRED_DOCS).to_pylist()
    assert any(d["n_unknown"] > 0 for d in docs)
    assert all(d["source"] == "next_month.txt" for d in docs)
    mixes = read_table(out, DOC_TOPICS)
    inferred = {d["doc_id"] for d in docs if d["status"] == "inferred"}
    assert set(mixes.column("doc_id").to_pylist()) == inferred


def test_infer_without_a_model_is_a_clear_error(tmp_path, capsys):
    assert _infer(SAMPLE_FILE, tmp_path / "x.parquet", tmp_path / "nomodel") == 2
    assert "no saved model" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["nothing_here.txt"])
def test_infer_a_missing_path(sample_run: Paths, tmp_path, capsys, missing):
    assert _infer(tmp_path / missing, tmp_path / "x.parquet", sample_run.models / "lda") == 2
    assert missing in capsys.readouterr().err


def test_other_settings_than_training_are_named(params, caplog):
    import dataclasses

    from pipeline.infer import _check_settings
    from pipeline.topics.model_store import settings_snapshot

    trained = settings_snapshot(params)
    trained["segment"]["hmm"] = not trained["segment"]["hmm"]
    model = dataclasses.replace(MODEL, meta={"settings": trained})
    with caplog.at_level("WARNING"):
        _check_settings(params, model)
    assert "segment.hmm" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        _check_settings(
            params, dataclasses.replace(MODEL, meta={"settings": settings_snapshot(params)})
        )
    assert not caplog.text
