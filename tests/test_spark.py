"""The Spark engine (pipeline/spark/): the same tables as the local engine.

One SparkSession (local[2]) serves every test here; the multi-JVM cluster test runs the
command line in a subprocess (a process holds one Spark context)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import cli
from pipeline.config import ConfigError, Params, params_from_dict
from pipeline.io import Paths, read_json, read_table
from pipeline.results import OPTIONAL
from pipeline.runner import run_stages
from pipeline.schemas import ALL
from pipeline.spark import INSTALL_HINT
from pipeline.spark.stages import resolve_near_duplicates
from tests.conftest import ROOT, SAMPLE_RAW

pytest.importorskip("pyspark", reason="the Spark engine needs pyspark (zhtopics[spark])")

TEXT_TABLES = ["documents", "clean", "clean_audit", "tokens", "new_words", "vocabulary"]
TEXT_TABLES += ["doc_terms", "keywords"]


# The sample's one discovered word, which its rules reject (a compound of two words).
NEW_WORD = "示范能手"


def spark_params(params: Params, **spark) -> Params:
    settings = {"master": "local[2]", "partitions": 3, **spark}
    return dataclasses.replace(params, spark=dataclasses.replace(params.spark, **settings))


@pytest.fixture(scope="session")
def spark():
    """One local[2] session for the module's tests (stopped at the end of the session)."""
    from pipeline.spark.session import start_session

    session = start_session(spark_params(Params()).spark)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_run(spark, params, sample_run, tmp_path_factory) -> Path:
    """The whole pipeline on the sample with Spark local[2], every document in the topic
    model's sample (so the fit is the local engine's), at the K the local sweep chose."""
    from pipeline.spark import stages

    out = tmp_path_factory.mktemp("spark_run")
    k = read_json(sample_run.metrics / "sweep.json")["recommended_k"]
    settings = dataclasses.replace(params, lda=dataclasses.replace(params.lda, num_topics=k))
    stages.run(spark_params(settings), str(SAMPLE_RAW), str(out), spark=spark)
    return out


def assert_same_table(name: str, ours: pa.Table, theirs: pa.Table) -> None:
    assert ours.column_names == theirs.column_names, name
    assert ours.num_rows == theirs.num_rows, name
    for column in ours.column_names:
        a, b = ours.column(column), theirs.column(column)
        if pa.types.is_floating(a.type):
            np.testing.assert_allclose(
                a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-12, err_msg=f"{name}.{column}"
            )
        else:
            assert a.to_pylist() == b.to_pylist(), f"{name}.{column}"


def test_text_tables_match_the_local_engine(spark_run: Path, sample_run: Paths) -> None:
    for name in TEXT_TABLES:
        folder = spark_run / f"{name}.parquet"
        assert folder.is_dir(), f"{name}: a parquet dataset (folder of part files)"
        parts = sorted(p.name for p in folder.iterdir())
        assert parts and all(p.startswith("part-") and p.endswith(".parquet") for p in parts)
        assert_same_table(
            name, read_table(folder, ALL[name]), read_table(sample_run.table(name), ALL[name])
        )


def test_every_table_the_local_engine_writes_is_written(spark_run: Path, sample_run: Paths):
    """The contract of the tables: each one the local run has is in the Spark run with the
    same schema (a dataset, or a file for the tables compare writes on the driver), but
    robustness (not on Spark) and sweep (spark_run fixes lda.num_topics); a missing one is one
    the report allows."""
    for name, schema in ALL.items():
        if (spark_run / f"{name}.parquet").exists():
            read_table(spark_run / f"{name}.parquet", schema)
        else:
            assert name in OPTIONAL, f"{name}: missing from the Spark run"
            assert name in ("robustness", "sweep") or not sample_run.table(name).is_file(), name
    vocabulary = read_table(spark_run / "vocabulary.parquet", ALL["vocabulary"])
    assert pa.compute.any(vocabulary.column("is_background")).as_py()
    assert read_table(spark_run / "new_words.parquet", ALL["new_words"]).num_rows


def test_ingest_report_matches(spark_run: Path, sample_run: Paths) -> None:
    name = "ingest_report"
    assert_same_table(
        name,
        read_table(spark_run / f"{name}.parquet", ALL[name]),
        read_table(sample_run.table(name), ALL[name]),
    )


def test_sample_mode_with_every_document_fits_the_local_model(
    spark_run: Path, sample_run: Paths
) -> None:
    """With every document in the sample, the driver's fit is the local engine's fit; every
    document then gets its mix folded in under the saved model, on the executors."""
    for name in ("topic_terms", "topics"):
        assert_same_table(
            name,
            read_table(spark_run / f"{name}.parquet", ALL[name]),
            read_table(sample_run.table(name), ALL[name]),
        )
    ours = read_table(spark_run / "doc_topics.parquet", ALL["doc_topics"])
    theirs = read_table(sample_run.table("doc_topics"), ALL["doc_topics"])
    assert ours.column("doc_id").to_pylist() == theirs.column("doc_id").to_pylist()
    k = int(pa.compute.max(theirs.column("topic")).as_py()) + 1
    mixes = ours.column("weight").to_numpy().reshape(-1, k)
    np.testing.assert_allclose(mixes.sum(axis=1), 1.0, atol=1e-9)
    # Folded in under the fitted topics: each document's main topic is the fit's.
    fitted = theirs.column("weight").to_numpy().reshape(-1, k)
    agree = np.mean(mixes.argmax(axis=1) == fitted.argmax(axis=1))
    assert agree >= 0.9
    assert (spark_run / "models" / "lda" / "topic_word.npy").is_file()
    # Folded in as `zhtopics infer` folds in: without the background terms the fit left out.
    from pipeline import infer
    from pipeline.topics.model_store import load_model

    model = load_model(spark_run / "models" / "lda")
    assert model.left_out().any()
    tokens = read_table(spark_run / "tokens.parquet", ALL["tokens"])
    inferred = _mixes(infer.infer(tokens, model).doc_topics)
    folded = _mixes(ours)
    assert inferred and set(inferred) <= set(folded)
    for doc, mix in inferred.items():
        np.testing.assert_allclose(folded[doc], mix, rtol=0, atol=1e-7)  # 8 digits
    assert (spark_run / "report" / "index.html").is_file()
    assert (spark_run / "explorer.html").is_file()


def _mixes(doc_topics: pa.Table) -> dict[str, list[float]]:
    """Each document's topic mix from a doc_topics table."""
    mixes: dict[str, list[float]] = {}
    for row in doc_topics.select(["doc_id", "weight"]).to_pylist():
        mixes.setdefault(row["doc_id"], []).append(row["weight"])
    return mixes


def test_mllib_mode_models_every_document(spark, params: Params, tmp_path: Path) -> None:
    """Spark MLlib's LDA on all counts: a mix for every document with terms, topics described
    like the local engine's, a saved model that zhtopics infer uses. A reviewed new word
    (keep) is added to the tokenizer on the executors, counted and saved with the model."""
    from pipeline import infer
    from pipeline.spark import stages

    review = tmp_path / "review.tsv"
    review.write_text(f"{NEW_WORD}\tkeep\n", "utf-8")
    settings = spark_params(params, lda_mode="mllib")
    settings = dataclasses.replace(
        settings,
        lda=dataclasses.replace(settings.lda, num_topics=3, passes=5),
        segment=dataclasses.replace(settings.segment, new_words_review=review),
    )
    out = tmp_path / "mllib"
    stages.run(settings, str(SAMPLE_RAW), str(out), spark=spark, until="lda")
    doc_terms = read_table(out / "doc_terms.parquet", ALL["doc_terms"])
    mixes = read_table(out / "doc_topics.parquet", ALL["doc_topics"])
    with_terms = list(dict.fromkeys(doc_terms.column("doc_id").to_pylist()))
    assert mixes.column("doc_id").to_pylist()[::3] == with_terms
    weights = mixes.column("weight").to_numpy().reshape(-1, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)
    assert read_table(out / "topic_terms.parquet", ALL["topic_terms"]).num_rows == 3 * 20
    assert read_json(out / "metrics" / "lda.json")["mode"] == "mllib"
    new = infer.run(settings, SAMPLE_RAW, out / "models" / "lda", tmp_path / "new.parquet")
    assert new.doc_topics.num_rows > 0
    new_words = read_table(out / "new_words.parquet", ALL["new_words"]).to_pylist()
    assert [(w["word"], w["accepted"]) for w in new_words] == [(NEW_WORD, True)]
    tokens = read_table(out / "tokens.parquet", ALL["tokens"]).column("tokens").to_pylist()
    found = sum(t.count(NEW_WORD) for t in tokens)
    assert found == new_words[0]["token_count"] > 0
    model = read_json(out / "models" / "lda" / "model.json")
    assert model["settings"]["new_words"] == [NEW_WORD]
    # The background terms are left out of the fit, as the local engine leaves them out.
    vocabulary = read_table(out / "vocabulary.parquet", ALL["vocabulary"])
    flagged = [r["term"] for r in vocabulary.to_pylist() if r["is_background"]]
    assert flagged and model["left_out_terms"] == flagged
    assert read_json(out / "metrics" / "lda.json")["background_terms_left_out"] == len(flagged)


def test_near_duplicates_resolve_in_document_order() -> None:
    # 1 ~ 2 ~ 3 but 3 is closer to 2; 2 joins 1, so 3 may only join 1 (2 is not canonical).
    pairs = [(1, "d1", 2, 0.9), (1, "d1", 3, 0.82), (2, "d2", 3, 0.95), (4, "d4", 5, 0.9),
             (0, "d9", 5, 0.9)]  # fmt: skip
    pairs.sort(key=lambda p: (p[2], p[0]))
    assert resolve_near_duplicates(pairs) == {2: "d1", 3: "d1", 5: "d4"}


def test_duplicates_and_near_duplicates_match_the_local_engine(
    spark, params: Params, tmp_path: Path
) -> None:
    """Exact copies, near copies, a chain and a copy of a near copy: the same statuses,
    canonical documents and cluster sizes as the local engine."""
    base = (
        (ROOT / "tests" / "fixtures" / "near_duplicates.txt")
        .read_text("utf-8")
        .strip()
        .split("\n\n")
    )
    raw = tmp_path / "raw"
    raw.mkdir()
    texts = [base[0], base[1], base[0], base[0][:-6] + "修改一下", base[2], base[1]]
    texts += [base[0][:-6] + "修改一下", base[2][:-4] + "另外两字"]
    for i, text in enumerate(texts):
        (raw / f"{i:02d}.txt").write_text(text, "utf-8")
    # A table with metadata columns (one only in its second row), and a duplicate row.
    rows = [f"{base[1]}\t体育\t", f"{base[2]}\t财经\t新浪", f"{base[1]}\t体育\t"]
    (raw / "table.tsv").write_text("text\tlabel\tsite\n" + "\n".join(rows) + "\n", "utf-8")
    settings = dataclasses.replace(
        params, ingest=dataclasses.replace(params.ingest, unit="document")
    )
    local = Paths.under(raw, tmp_path / "local")
    run_stages(settings, local, until="clean")
    from pipeline.spark import stages

    stages.run(
        spark_params(settings), str(raw), str(tmp_path / "spark"), spark=spark, until="clean"
    )
    for name in ("documents", "clean", "clean_audit"):
        ours = read_table(tmp_path / "spark" / f"{name}.parquet", ALL[name])
        theirs = read_table(local.table(name), ALL[name])
        assert_same_table(name, ours, theirs)
    documents = read_table(tmp_path / "spark" / "documents.parquet", ALL["documents"])
    assert documents.column_names[-2:] == ["label", "site"]
    statuses = read_table(local.table("clean"), ALL["clean"]).column("status").to_pylist()
    assert "duplicate" in statuses and "near_duplicate" in statuses


def test_large_tables_are_read_in_pieces_with_the_local_rows(
    spark, params: Params, tmp_path: Path, caplog
) -> None:
    """CSV, TSV and JSON Lines files above spark.split_mb are read line by line across tasks
    and give the local engine's rows: blank lines, bad rows, a BOM, CRLF, a JSON string with
    U+2028, paragraphs; a CSV whose quoted field spans lines and one without the text column
    are read whole. Files and folders whose names start with _ are read as the local engine
    reads them; only names starting with . are hidden."""
    raw = tmp_path / "raw"
    raw.mkdir()
    texts = (ROOT / "tests" / "fixtures" / "near_duplicates.txt").read_text("utf-8").split("\n\n")
    rows = [f"{t.strip()[:60]}\t第{i}篇\t2021-0{i % 9 + 1}-01" for i, t in enumerate(texts * 4)]
    rows[3] = "只有一列"  # too few fields
    rows[5] = '"引号里的，内容"\t标题\t'  # a quoted field on its line
    rows.insert(7, "")  # a blank line
    rows[9] = rows[9].replace("，", "\x00，")
    table = "text\ttitle\tdate\r\n" + "\r\n".join(rows) + "\r\n"
    (raw / "news.tsv").write_text(table, "utf-8")
    (raw / "bom.tsv").write_bytes(b"\xef\xbb\xbf" + table.replace("\r\n", "\n").encode("utf-8"))
    posts = [
        json.dumps({"text": f"{t.strip()}\n\n第二段：{t.strip()[:30]}", "n": i}, ensure_ascii=False)
        for i, t in enumerate(texts * 3)
    ]
    posts[2] = '{"text": "一行\u2028仍是同一条", "n": 2}'
    posts[4] = "not json"
    posts[6] = "[1, 2]"
    posts[8] = '{"body": "没有文本列"}'
    posts.insert(10, "   ")
    (raw / "posts.jsonl").write_text("\n".join(posts) + "\n", "utf-8")
    multi = 'text,label\n"第一行\n第二行，同一个字段",a\n' + "".join(
        f'"{t.strip()[:40]}",b\n' for t in texts * 4
    )
    (raw / "multi.csv").write_text(multi, "utf-8")
    (raw / "nocol.csv").write_text("body,label\n" + "一段话,a\n" * 60, "utf-8")
    (raw / "small.txt").write_text(texts[0], "utf-8")
    # Names Spark's file listing hides by default: the local engine reads them, so must Spark.
    (raw / "_notes.txt").write_text(texts[-1], "utf-8")
    (raw / "_2019").mkdir()
    (raw / "_2019" / "report.txt").write_text("二〇一九年的报告。" + texts[0], "utf-8")
    (raw / "_big.tsv").write_text(table, "utf-8")  # above split_mb; Hadoop's text reader hides it
    (raw / ".hidden.txt").write_text(texts[0], "utf-8")  # hidden to both engines
    # A parquet table above split_mb, read by row groups: columns of several types, a null
    # text, a column named as one of the engine's own and one with a dot in its name.
    n = 16 * len(texts)
    body = [f"{texts[i % len(texts)].strip()}\n\n第二段，第{i}行。" for i in range(n)]
    body[3] = None
    columns = {
        "record": pa.array(range(n), pa.int64()),
        "text": pa.array(body, pa.string()),
        "date": pa.array([dt.date(2020, 1, 1 + i % 28) for i in range(n)]),
        "score": pa.array([i / 7 for i in range(n)]),
        "flag": pa.array([i % 2 == 0 for i in range(n)]),
        "tags": pa.array([["甲", "乙"][: i % 3] for i in range(n)], pa.list_(pa.string())),
        "a.b": pa.array([f"值{i}" for i in range(n)]),
    }
    pq.write_table(pa.table(columns), raw / "table.parquet", row_group_size=8)
    pq.write_table(pa.table(columns), raw / "_archive.parquet", row_group_size=8)
    settings = dataclasses.replace(
        params, ingest=dataclasses.replace(params.ingest, unit="paragraph")
    )
    local = Paths.under(raw, tmp_path / "local")
    run_stages(settings, local, until="ingest")
    from pipeline.spark import stages

    caplog.set_level(logging.INFO, logger="pipeline.spark.stages")
    split = spark_params(settings, split_mb=0.0005)  # pieces of 500 bytes
    pieces_before = spark.conf.get("spark.sql.files.maxPartitionBytes")
    stages.run(split, str(raw), str(tmp_path / "spark"), spark=spark, until="ingest")
    assert spark.conf.get("spark.sql.files.maxPartitionBytes") == pieces_before  # restored
    ours = read_table(tmp_path / "spark" / "documents.parquet", ALL["documents"])
    assert_same_table("documents", ours, read_table(local.table("documents"), ALL["documents"]))
    pieces = dict(re.findall(r"ingest: (\S+): \d+ lines, read in (\d+) pieces", caplog.text))
    assert sorted(pieces) == ["bom.tsv", "news.tsv", "posts.jsonl"]
    assert all(int(n) > 1 for n in pieces.values())
    assert "multi.csv: a quoted field goes on past line 2; read whole" in caplog.text
    assert "_big.tsv: its name starts with _; read whole" in caplog.text
    parquet = re.search(
        r"table.parquet: read by Spark's parquet reader in (\d+) pieces", caplog.text
    )
    assert parquet and int(parquet.group(1)) > 1
    assert "_archive.parquet: read by Spark's parquet reader in" in caplog.text
    sources = set(ours.column("source").to_pylist())
    assert {"_notes.txt", "_2019/report.txt", "_big.tsv", "_archive.parquet"} <= sources
    assert ".hidden.txt" not in sources
    statuses = read_table(local.table("documents"), ALL["documents"]).column("status")
    assert "unreadable" in statuses.to_pylist()


def test_shuffle_partitions_follow_the_corpus_unless_set() -> None:
    """One shuffle partition per SHUFFLE_BYTES of raw files, at least the parallelism (not
    Spark's 200 for any corpus); spark.partitions, or spark.sql.shuffle.partitions set by the
    user in spark.conf or on the session, stand."""
    from types import SimpleNamespace

    from pipeline.spark.session import SHUFFLE_BYTES, shuffle_partitions

    def session(explicit: bool):
        conf = SimpleNamespace(contains=lambda key: explicit)
        return SimpleNamespace(
            sparkContext=SimpleNamespace(defaultParallelism=4, getConf=lambda: conf)
        )

    settings = Params().spark
    assert shuffle_partitions(session(False), settings, 1000) == 4
    assert shuffle_partitions(session(False), settings, 10 * SHUFFLE_BYTES + 1) == 11
    fixed = dataclasses.replace(settings, partitions=7)
    assert shuffle_partitions(session(False), fixed, 10 * SHUFFLE_BYTES) == 7
    assert shuffle_partitions(session(True), settings, 10 * SHUFFLE_BYTES) is None
    conf = dataclasses.replace(settings, conf={"spark.sql.shuffle.partitions": "9"})
    assert shuffle_partitions(session(False), conf, 10 * SHUFFLE_BYTES) is None


def test_spark_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="spark.lda_mode"):
        params_from_dict({"spark": {"lda_mode": "all"}})
    with pytest.raises(ConfigError, match="spark.conf.executor.memory"):
        params_from_dict({"spark": {"conf": {"executor.memory": "4g"}}})
    with pytest.raises(ConfigError, match="spark.partitions"):
        params_from_dict({"spark": {"partitions": -1}})
    conf = params_from_dict({"spark": {"conf": {"spark.executor.cores": 2}}}).spark.conf
    assert conf == {"spark.executor.cores": "2"}


def test_without_pyspark_the_engine_says_how_to_install(monkeypatch, capfd, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now fails
    argv = ["run", "--engine", "spark", "--raw", str(SAMPLE_RAW), "--out", str(tmp_path)]
    argv += ["--params", str(ROOT / "params.yaml")]
    assert cli.main(argv) == 2
    assert INSTALL_HINT in capfd.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_cluster_of_separate_executors_survives_a_lost_executor(
    sample_run: Paths, tmp_path: Path, venv_env: dict[str, str]
) -> None:
    """spark-submit to local-cluster[2,1,1024]: two executor JVMs with their own Python
    workers, which import the shipped package and read the shipped dictionaries; the master is
    spark-submit's (as on a cluster), the pipeline is the README's command. One executor is
    killed when the segment stage starts; Spark runs its tasks again and the tables are still
    the local engine's (which local[2] gives too, test_text_tables_match_the_local_engine)."""
    out = tmp_path / "cluster"
    submit = Path(sys.executable).parent / "spark-submit"
    command = [
        str(submit),
        "--master",
        "local-cluster[2,1,1024]",
        str(ROOT / "pipeline" / "cli.py"),
    ]
    command += ["run", "--engine", "spark", "--raw", str(SAMPLE_RAW), "--out", str(out)]
    command += ["--until", "tfidf", "--params", str(ROOT / "params.yaml")]
    command += ["--set", "spark.partitions=3"]
    env = {**venv_env, "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable}
    # spark-submit passes the Python driver's output on to its own standard output.
    child = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines, killed = [], []
    try:
        for line in child.stdout:
            lines.append(line)
            if "spark stage segment" in line and not killed:
                executors = _executors(child.pid)
                assert len(executors) == 2, "two executor JVMs"
                executors[0].kill()
                killed.append(executors[0].pid)
        assert child.wait() == 0, "".join(lines)[-3000:]
    finally:
        if child.poll() is None:
            for process in _descendants(child.pid):
                process.kill()
            child.kill()
            child.wait()
    assert killed
    assert "Lost executor" in "".join(lines) or "ExecutorLost" in "".join(lines)
    for name in TEXT_TABLES:
        assert_same_table(
            name,
            read_table(out / f"{name}.parquet", ALL[name]),
            read_table(sample_run.table(name), ALL[name]),
        )


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _executors(pid: int) -> list:
    """The executor JVMs below process ``pid``."""
    import psutil

    found = []
    for process in _descendants(pid):
        try:
            if "CoarseGrainedExecutorBackend" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:  # gone, or a zombie, since the listing
            continue
    return found
