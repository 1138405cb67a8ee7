"""The topic model on Spark, in one of two modes (``spark.lda_mode``):

- ``sample``: a seeded sample of at most ``spark.lda_sample_docs`` documents (those with
  terms) is brought to the driver and run through the local engine's own ``lda_sweep`` (when
  ``lda.num_topics`` is auto) and ``lda`` stages, which write the topics, their terms, the
  representative documents, prevalence, the visualisation and the saved model; then every
  document's topic mix is folded in on the executors under the saved model.
- ``mllib``: Spark MLlib's LDA (online variational Bayes) on every document's term counts;
  its topics are described with the same functions and saved in the same model format.

Either way ``doc_topics`` covers every document with terms and ``zhtopics infer`` reads the
saved model."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.io import Paths, write_json, write_table
from pipeline.schemas import (
    CLEAN,
    DOC_TERMS,
    DOC_TOPICS,
    DOCUMENTS,
    NEW_WORDS,
    REPRESENTATIVE_DOCS,
    SWEEP,
    TOKENS,
    TOPIC_PREVALENCE,
    TOPIC_TERM_RANKINGS,
    TOPIC_TERMS,
    TOPICS,
    VOCABULARY,
    TableSchema,
)
from pipeline.spark import SparkEngineError, workers
from pipeline.spark.tables import doc_term_rows, write_arrow, write_dataset
from pipeline.spark.workers import ORDER
from pipeline.topics import background
from pipeline.topics.model_store import load_model, save_model, settings_snapshot

log = logging.getLogger(__name__)

# Tables the local lda stages write from the sample, published as they are.
SAMPLE_TABLES: dict[str, TableSchema] = {
    "topic_terms": TOPIC_TERMS,
    "topic_term_rankings": TOPIC_TERM_RANKINGS,
    "topics": TOPICS,
    "representative_docs": REPRESENTATIVE_DOCS,
    "topic_prevalence": TOPIC_PREVALENCE,
    "sweep": SWEEP,
}


def topics_stage(state) -> None:
    """Fit the topic model as ``spark.lda_mode`` says and write doc_topics for every
    document with terms."""
    local_out = _local_folder(state.out)
    with tempfile.TemporaryDirectory(prefix="zhtopics-spark-lda-") as tmp:
        tmp = Path(tmp)
        results = local_out if local_out is not None else tmp / "out"
        if state.params.spark.lda_mode == "sample":
            _fit_sample(state, tmp / "sample", results)
        else:
            _fit_mllib(state, results)
        model = load_model(results / "models" / "lda")
        _fold_in_all(state, model.phi, model.alpha, model.left_out())
        if local_out is None:
            _upload(state, results)


def _local_folder(out: str) -> Path | None:
    if "://" in out and not out.startswith("file:"):
        return None
    return Path(out.removeprefix("file:"))


def _with_terms(state):
    from pyspark.sql import functions as F

    return state.frames["weights"].filter(F.size("term_ids") > 0)


# --- sample mode ------------------------------------------------------------------------------


def draw_sample(state) -> list[str]:
    """The doc_ids of the sample, in corpus order: the documents with terms whose seeded
    hash of the doc_id is smallest (the same sample on any cluster and partitioning)."""
    from pyspark.sql import functions as F

    seed = state.params.lda.random_state
    size = state.params.spark.lda_sample_docs
    drawn = (
        _with_terms(state)
        .select("doc_id", ORDER, F.xxhash64("doc_id", F.lit(seed)).alias("h"))
        .orderBy("h", "doc_id")
        .limit(size)
        .collect()
    )
    return [r["doc_id"] for r in sorted(drawn, key=lambda r: r[ORDER])]


def _sample_table(state, df, ids, schema: TableSchema, order: list[str]) -> pa.Table:
    """The rows of ``df`` of the sampled documents, in corpus order, as an Arrow table."""
    from pyspark.sql import functions as F

    chosen = state.spark.createDataFrame([(d,) for d in ids], "doc_id string")
    rows = df.join(F.broadcast(chosen), "doc_id").orderBy(*order)
    table = rows.toArrow()
    return schema.conform(table.drop_columns([c for c in order if c not in schema.columns]))


def _fit_sample(state, folder: Path, results: Path) -> None:

    from pipeline import lda, lda_sweep

    ids = draw_sample(state)
    if len(ids) < 2:
        raise SparkEngineError(f"lda: {len(ids)} document(s) have terms; LDA needs at least 2")
    total = _with_terms(state).count()
    log.info("lda: fitting on a sample of %d of %d documents with terms", len(ids), total)
    sample = Paths(raw=Path("."), processed=folder, models=results / "models",
                   metrics=results / "metrics")  # fmt: skip
    folder.mkdir(parents=True)
    weights = state.frames["weights"]
    doc_terms = doc_term_rows(weights)
    documents = state.spark.read.parquet(state.table("documents"))
    clean = state.frames["clean"]
    order_of = clean.select("doc_id", ORDER)
    documents = documents.join(order_of, "doc_id")
    write_table(state.vocabulary, sample.table("vocabulary"), VOCABULARY)
    if state.new_words is not None:  # lda saves the added words with the model
        write_table(state.new_words, sample.table("new_words"), NEW_WORDS)
    write_table(
        _sample_table(state, doc_terms, ids, DOC_TERMS, [ORDER, "pos"]),
        sample.table("doc_terms"),
        DOC_TERMS,
    )
    for name, df, schema in (
        ("tokens", state.frames["tokens"], TOKENS),
        ("documents", documents, DOCUMENTS),
        ("clean", clean, CLEAN),
    ):
        write_table(_sample_table(state, df, ids, schema, [ORDER]), sample.table(name), schema)
    if not isinstance(state.params.lda.num_topics, int):
        lda_sweep.main(state.params, sample)
    lda.main(state.params, sample)
    for name, schema in SAMPLE_TABLES.items():
        path = sample.table(name)
        if path.is_file():
            from pipeline.io import read_table

            write_arrow(
                state.spark, read_table(path, schema), _target(state, results, name), schema
            )
    results.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "lda_vis.html", results / "lda_vis.html")
    metrics = results / "metrics" / "lda.json"
    from pipeline.io import read_json

    data = read_json(metrics)
    data.update({"sample_documents": len(ids), "documents_with_terms": total})
    write_json(data, metrics)


def _target(state, results: Path, name: str) -> str:
    return state.table(name)


# --- mllib mode -------------------------------------------------------------------------------


def _fit_mllib(state, results: Path) -> None:
    """Spark MLlib's LDA on the counts of every document with terms."""
    from pyspark.ml.clustering import LDA
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import SparseVector, VectorUDT
    from pyspark.sql import functions as F

    from pipeline.topics.engines import Fitted
    from pipeline.topics.terms import rank_terms, rankings_table, top_terms, topic_terms_table

    params = state.params.lda
    if not isinstance(params.num_topics, int):
        raise SparkEngineError(
            'params: lda.num_topics is "auto", which the mllib mode cannot sweep; '
            "set lda.num_topics or use spark.lda_mode=sample"
        )
    vocabulary = state.vocabulary
    n_terms = vocabulary.num_rows
    k = params.num_topics
    # Background terms are left out as the local fit leaves them out (lda.background: drop).
    drop = background.left_out(vocabulary, params, "lda (mllib)")
    left_out = np.zeros(n_terms, dtype=bool) if drop is None else drop

    @F.udf(returnType=VectorUDT())
    def to_vector(ids, counts):
        kept = [(i, float(c)) for i, c in zip(ids, counts, strict=True) if not left_out[i]]
        return SparseVector(n_terms, [i for i, _ in kept], [c for _, c in kept])

    data = _with_terms(state).select(
        "doc_id", ORDER, to_vector("term_ids", "counts").alias("features")
    )
    # Each document's modelled tokens: its weight in the topics' prevalence.
    tokens = F.aggregate(vector_to_array("features"), F.lit(0.0), lambda acc, c: acc + c)
    data = data.withColumn("n", tokens)
    # Online variational Bayes draws its mini-batches partition by partition: the same
    # documents in the same partitions, in the same order, on every run (a hash of the doc_id
    # places a document; a shuffle's arrival order or a range's sampled bounds would not).
    data = data.repartition(max(state.parts, 1), "doc_id").sortWithinPartitions(ORDER)
    data = state.persist("mllib_input", data)
    n_docs = data.count()
    # Online variational Bayes sees a share of the documents per iteration: lda.chunksize
    # documents (at least 5%), for lda.passes passes over the corpus.
    share = min(1.0, max(0.05, params.chunksize / max(n_docs, 1)))
    settings = {"k": k, "seed": params.random_state, "optimizer": "online"}
    settings |= {"maxIter": int(np.ceil(params.passes / share)), "subsamplingRate": share}
    if isinstance(params.alpha, float):
        settings["docConcentration"] = [float(params.alpha)] * k
    if isinstance(params.eta, float):
        settings["topicConcentration"] = float(params.eta)
    model = LDA(**settings).fit(data)
    topics = model.topicsMatrix().toArray().T  # K x terms, unnormalised
    phi = topics / topics.sum(axis=1, keepdims=True)
    alpha = np.asarray(model.estimatedDocConcentration().toArray(), dtype=np.float64)
    terms = np.asarray(vocabulary.column("term").to_pylist(), dtype=object)
    freq = (
        state.frames["weights"]
        .select(F.explode(F.arrays_zip("term_ids", "counts")).alias("e"))
        .groupBy("e.term_ids")
        .agg(F.sum("e.counts").alias("n"))
        .collect()
    )
    term_freq = np.zeros(n_terms)
    for row in freq:
        term_freq[row[0]] = row["n"]
    fitted = Fitted("mllib", phi, np.zeros((0, k)), alpha, float(model.getTopicConcentration()))
    rankings = rank_terms(phi, term_freq, params)
    top = top_terms(phi, params.top_n)
    write_arrow(
        state.spark, topic_terms_table(phi, top, terms), state.table("topic_terms"), TOPIC_TERMS
    )
    write_arrow(
        state.spark,
        rankings_table(rankings, terms),
        state.table("topic_term_rankings"),
        TOPIC_TERM_RANKINGS,
    )
    theta = model.transform(data).select(vector_to_array("topicDistribution").alias("w"), "n")
    snapshot = settings_snapshot(state.params) | {"new_words": list(state.added_words)}
    save_model(
        fitted,
        terms.tolist(),
        results / "models" / "lda",
        snapshot,
        left_out=terms[left_out].tolist(),
    )
    # Prevalence as the local engine defines it: topic shares weighted by document length.
    sums = theta.agg(*[F.sum(F.col("w")[i] * F.col("n")) for i in range(k)], F.sum("n")).first()
    mixes = np.asarray(sums[:k], dtype=np.float64) / float(sums[k])
    labels = ["·".join(terms[row[: params.label_terms]]) for row in rankings["relevance"][0]]
    topics_table = pa.table(
        {
            "topic": pa.array(np.arange(k, dtype=np.int32)),
            "label": pa.array(labels, pa.string()),
            "prevalence": pa.array(mixes),
            "coherence": pa.array(np.full(k, np.nan)),
        }
    )
    write_arrow(state.spark, topics_table, state.table("topics"), TOPICS)
    write_json(
        {
            "mode": "mllib",
            "num_topics": k,
            "num_documents": n_docs,
            "num_terms": n_terms,
            "background_terms_left_out": int(left_out.sum()),
            "log_perplexity": round(float(model.logPerplexity(data)), 6),
        },
        results / "metrics" / "lda.json",
    )


# --- every document's topic mix ------------------------------------------------------------------


def _fold_in_all(state, phi: np.ndarray, alpha: np.ndarray, left_out: np.ndarray) -> None:
    """doc_topics of every document with terms, folded in on the executors under the saved
    model's arrays (broadcast once to each executor), without the terms the fit left out."""
    from pyspark.sql import functions as F

    mixes = (
        _with_terms(state)
        .select("doc_id", ORDER, "term_ids", "counts")
        .mapInArrow(workers.fold_in_documents(phi, alpha, left_out), _struct(workers.THETA_SCHEMA))
    )
    rows = mixes.select("doc_id", ORDER, F.posexplode("weights").alias("topic", "weight"))
    write_dataset(rows, state.table("doc_topics"), DOC_TOPICS, [ORDER, "topic"], state.parts)


def _struct(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _upload(state, results: Path) -> None:
    """Copy the driver-made files (model, metrics, visualisation) to a remote output."""
    from pipeline.spark.tables import file_system

    for path in sorted(results.rglob("*")):
        if path.is_file():
            target = f"{state.out.rstrip('/')}/{path.relative_to(results).as_posix()}"
            fs, dest, jvm = file_system(state.spark, target)
            fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(str(path)), dest)
