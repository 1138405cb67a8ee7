"""The stages on Spark: ingest, clean, segment and tfidf over the whole corpus (text logic on
the executors, corpus-wide steps as Spark operations), then the topic model
(``pipeline.spark.topics``) and the report. Every table is the local engine's table, rows in
the same order (``_order``: file number, row in the file), written as a parquet dataset.

The driver holds only what is small by nature: the list of file paths (Spark's own file index
holds it too), the names of the metadata columns, the near-duplicate pairs (not the texts),
the vocabulary, per-status counts and the topic model's sample."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from pipeline.config import IngestParams, Params
from pipeline.ingest import IngestError, require_usable
from pipeline.io import write_json
from pipeline.schemas import (
    CLEAN,
    CLEAN_AUDIT,
    DOC_TERMS,
    DOCUMENTS,
    DUPLICATE,
    INGEST_REPORT,
    KEPT,
    KEYWORDS,
    NEAR_DUPLICATE,
    NEW_WORDS,
    TOKENS,
    VOCABULARY,
)
from pipeline.spark import SparkEngineError, workers
from pipeline.spark.session import (
    partitions,
    ship_files,
    ship_package,
    shuffle_partitions,
    user_set,
)
from pipeline.spark.session import start_session as start_session
from pipeline.spark.tables import (
    column,
    doc_term_rows,
    file_system,
    qualified,
    spark_schema,
    write_arrow,
    write_dataset,
)
from pipeline.spark.workers import ORDER
from pipeline.text.dedup import lsh_bands
from pipeline.text.rules import CleanError
from pipeline.tfidf import TfidfError, _idf, choose_terms, df_bounds, vocabulary_table
from pipeline.topics.background import (
    ParentSpread,
    best_npmi,
    partner_terms,
    read_keep_terms,
    spread_over_parents,
)

log = logging.getLogger(__name__)

# The stages the Spark engine runs, in order (lda_sweep runs inside lda on the sample).
SPARK_STAGES = ("ingest", "clean", "segment", "tfidf", "lda", "compare", "report", "explorer")
REPORT_DIMENSIONS = ("status", "encoding", "format")


@dataclass
class SparkRun:
    """One run: the session, the settings (as shipped), where tables go, the live frames."""

    spark: object
    params: Params
    shipped: Params
    out: str
    parts: int
    frames: dict
    vocabulary: pa.Table | None = None
    new_words: pa.Table | None = None  # as written, for the topic model's saved settings
    added_words: tuple[str, ...] = ()  # the new words added to the tokenizer

    def table(self, name: str) -> str:
        return f"{self.out.rstrip('/')}/{name}.parquet"

    def persist(self, name: str, df):
        from pyspark import StorageLevel

        self.frames[name] = df.persist(StorageLevel.MEMORY_AND_DISK)
        return self.frames[name]


def settings_key(*parts) -> bytes:
    """A fingerprint of settings (and dictionary contents) that names a worker's resources."""
    blob = json.dumps([asdict(p) for p in parts], sort_keys=True, default=str).encode("utf-8")
    digest = hashlib.blake2b(blob, digest_size=16)
    for part in parts:
        for value in asdict(part).values():
            if isinstance(value, Path) and value.is_file():
                digest.update(value.read_bytes())
    return digest.digest()


def run(
    params: Params,
    raw: str,
    out: str,
    master: str | None = None,
    until: str | None = None,
    spark=None,
    checkpoint: Callable[[str | None], None] | None = None,
) -> dict[str, float]:
    """Run the stages on Spark, from raw files at ``raw`` to tables at ``out`` (local paths or
    any file system Spark reads); the wall seconds of each stage. ``checkpoint`` (a
    benchmark's) is called with each stage's name as it starts and with None after the last."""
    if params.segment.phrases_threshold is not None:
        raise SparkEngineError(
            "params: segment.phrases_threshold is set; the Spark engine does not learn "
            "collocations yet; set it to null or use the local engine"
        )
    # lda_sweep runs inside lda; robustness (not on Spark) comes after compare.
    until = {"lda_sweep": "lda", "robustness": "compare"}.get(until, until)
    spark = spark or start_session(params.spark, master)
    ship_package(spark)
    shipped = ship_files(spark, params)
    state = SparkRun(spark, params, shipped, str(out), partitions(spark, params.spark), {})
    seconds: dict[str, float] = {}
    # Session settings ingest may set for the run (RUN_CONF), restored after it.
    before = {key: spark.conf.get(key) for key in RUN_CONF}
    try:
        for name in SPARK_STAGES:
            log.info("spark stage %s", name)
            if checkpoint is not None:
                checkpoint(name)
            started = time.perf_counter()
            STAGE_FUNCTIONS[name](state, raw)
            seconds[name] = time.perf_counter() - started
            if name == until:
                break
        if checkpoint is not None:
            checkpoint(None)
    finally:
        for df in state.frames.values():
            df.unpersist()
        for key, value in before.items():
            spark.conf.set(key, value)
    return seconds


# --- ingest ---------------------------------------------------------------------------------


def ingest_stage(state: SparkRun, raw: str) -> None:
    """Files (Spark's binary-file reader, split across tasks by file) -> documents."""
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    spark = state.spark
    try:
        root = qualified(spark, raw)
        files = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("ignoredPathSegmentRegex", HIDDEN_SEGMENT)
            .load(root)
        )
        sizes = {row.path: row.length for row in files.select("path", "length").collect()}
    except AnalysisException as exc:
        raise IngestError(f"raw folder {raw} cannot be read: {exc}") from exc
    if not sizes:
        raise IngestError(f"raw folder {raw} holds no files; put your documents there")
    shuffles = shuffle_partitions(spark, state.params.spark, sum(sizes.values()))
    if shuffles is not None:
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffles))
        log.info("spark: %d shuffle partitions for %d raw files", shuffles, len(sizes))
    ordered = sorted(sizes, key=lambda p: workers.relative_source(p, root))
    _check_path_pattern(ordered, root, state.params.ingest)
    number = {path: i for i, path in enumerate(ordered)}
    layouts = split_layouts(state, root, sizes)
    lines = _split_lines(state, root, layouts, sizes, number) if layouts else None
    tables = parquet_layouts(state, root, sizes)
    whole = [p for p in ordered if p not in layouts and p not in tables]
    _check_whole_sizes(whole, sizes, root)
    numbers = [(p, number[p]) for p in whole]
    numbers = spark.createDataFrame(numbers, "path string, file_number long")
    if layouts or tables:  # the split files' content is not read (filtered on length first)
        largest = max(sizes[p] for p in whole) if whole else 0
        files = files.filter(F.col("length") <= largest)
    content = files.join(F.broadcast(numbers), "path").select("path", "content", "file_number")
    content = content.repartition(max(state.parts, 1), "file_number")
    extra = pa.schema(list(workers.INGEST_SCHEMA)[len(DOCUMENTS.schema) :])
    schema = spark_schema(DOCUMENTS, extra)
    docs = content.mapInArrow(workers.ingest_files(root, state.params.ingest), schema)
    if lines is not None:
        docs = docs.unionByName(
            lines.mapInArrow(workers.ingest_lines(root, state.params.ingest, layouts), schema)
        )
    for path, (columns, rows) in sorted(tables.items()):
        run = workers.ingest_parquet(root, state.params.ingest, path, number[path], columns)
        docs = docs.unionByName(rows.mapInArrow(run, schema))
    # A large file is one task of the reader; its documents are spread over the partitions.
    docs = state.persist("ingest", docs.repartition(max(state.parts, 1), ORDER))
    counts = {r["status"]: r["count"] for r in docs.groupBy("status").count().collect()}
    meta = _metadata_columns(docs)
    documents = docs.select(
        *DOCUMENTS.columns,
        *[_metadata_value(name) for name in meta],
        ORDER,
    )
    write_dataset(documents, state.table("documents"), DOCUMENTS, [ORDER], state.parts)
    require_usable(counts, raw, state.table("documents"))
    log.info(
        "ingest: %d %s(s) %s from %d file(s) -> %s",
        sum(counts.values()),
        state.params.ingest.unit,
        dict(sorted(counts.items())),
        len(sizes),
        state.table("documents"),
    )


# The bytes of a parquet file one task reads (whole row groups): spark.split_mb.
PIECE_CONF = "spark.sql.files.maxPartitionBytes"
RUN_CONF = ("spark.sql.shuffle.partitions", PIECE_CONF)
# Names the file listing skips, at any level: the local engine's hidden files and folders
# (a leading "."). Spark's default, "^[._]", would also skip "_notes.txt" and "_2019/",
# which the local engine reads.
HIDDEN_SEGMENT = "^[.]"
# The binary-file reader holds a file in one byte array.
WHOLE_FILE_LIMIT = 2**31 - 1
# Characters of a file name that Spark's text reader takes as a list or a pattern.
UNSPLIT_CHARACTERS = frozenset(",*?[]{}\\")
# Bytes read from the start of a large table to see its encoding, header and delimiter.
HEAD_BYTES = 65536


def split_layouts(state: SparkRun, root: str, sizes: dict[str, int]) -> dict[str, tuple]:
    """The files read line by line across tasks: CSV, TSV and JSON Lines larger than
    ``spark.split_mb``, in UTF-8 (a BOM, a forced or a legacy encoding keeps a file whole),
    whose header fits in the first ``HEAD_BYTES``. path -> (format, CSV columns, delimiter,
    encoding)."""
    from pipeline.text.formats import LINE_END, LINE_FORMATS, csv_columns, sniff_delimiter

    limit = state.params.spark.split_mb * 1e6
    forced = state.params.ingest.encoding
    if not limit or (forced and forced.lower().replace("_", "-") not in ("utf-8", "utf8")):
        return {}
    layouts = {}
    for path, size in sorted(sizes.items()):
        fmt = Path(path).suffix.lower().lstrip(".")
        if size <= limit or fmt not in LINE_FORMATS:
            continue
        source = workers.relative_source(path, root)
        if UNSPLIT_CHARACTERS & set(unquote(path)):  # to Hadoop: a list or a pattern
            log.info(
                "ingest: %s: its name holds one of %s; read whole",
                source,
                "".join(sorted(UNSPLIT_CHARACTERS)),
            )
            continue
        if Path(source).name.startswith("_"):  # hidden to Hadoop's text reader
            log.info("ingest: %s: its name starts with _; read whole", source)
            continue
        head = _head(state.spark, path, min(size, HEAD_BYTES))
        encoding = "utf-8"
        if head.startswith(b"\xef\xbb\xbf"):
            head, encoding = head[3:], "utf-8-sig"
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:  # not a character cut at the end of the head
                log.info("ingest: %s is not UTF-8; read whole, in one task", source)
                continue
            text = head[: exc.start].decode("utf-8")
        first = LINE_END.split(text, maxsplit=1)
        if len(first) < 2:
            log.info(
                "ingest: %s: no line ends in its first %d bytes; read whole", source, len(head)
            )
            continue
        delimiter = sniff_delimiter(text, "\t" if fmt == "tsv" else ",") if fmt != "jsonl" else ""
        columns = csv_columns(first[0], delimiter) if fmt != "jsonl" else []
        layouts[path] = (fmt, columns, delimiter, encoding)
    return layouts


def parquet_layouts(state: SparkRun, root: str, sizes: dict[str, int]) -> dict[str, tuple]:
    """The parquet files read by Spark's parquet reader across tasks (by row group): those
    larger than ``spark.split_mb`` that hold the text column. path -> (its columns, its rows
    as ``_parquet_rows`` gives them)."""
    limit = state.params.spark.split_mb * 1e6
    large = [
        path
        for path, size in sorted(sizes.items())
        if limit and size > limit and Path(path).suffix.lower() == ".parquet"
    ]
    if large and not user_set(state.spark, state.params.spark, PIECE_CONF):
        # Pieces of spark.split_mb (whole row groups). Only with a parquet file to split: the
        # setting also packs small files into the binary-file reader's tasks.
        state.spark.conf.set(PIECE_CONF, str(int(limit)))
    tables = {}
    for path in large:
        source = workers.relative_source(path, root)
        if UNSPLIT_CHARACTERS & set(unquote(path)):  # to Hadoop: a list or a pattern
            log.info("ingest: %s: its name is a pattern to the reader; read whole", source)
            continue
        try:
            columns = _parquet_reader(state, path).schema.names
            if state.params.ingest.text_column in columns:  # else the whole-file parser says why
                rows = _parquet_rows(state, path, columns)
                tables[path] = (columns, rows)
                pieces = rows.rdd.getNumPartitions()
                log.info("ingest: %s: read by Spark's parquet reader in %d pieces", source, pieces)
        except Exception as exc:  # noqa: BLE001 - the whole-file parser reports the file
            log.info(
                "ingest: %s: not read by Spark's parquet reader (%s); read whole",
                source,
                str(exc).splitlines()[0][:200],
            )
    return tables


def _parquet_reader(state: SparkRun, path: str):
    # With the listing's own rule, as for the folder: a file named _x.parquet is read too.
    return state.spark.read.option("ignoredPathSegmentRegex", HIDDEN_SEGMENT).parquet(unquote(path))


def _parquet_rows(state: SparkRun, path: str, columns: list[str]):
    """A parquet table's rows as (record, c0, c1, ...): its index in the file and its columns
    in order, renamed so that no column's name can clash with ours."""
    from pyspark.sql import functions as F

    table = _parquet_reader(state, path)
    return table.select(
        F.col("_metadata.row_index").alias("record"),
        *[column(name).alias(f"c{i}") for i, name in enumerate(columns)],
    )


def _check_whole_sizes(whole: list[str], sizes: dict[str, int], root: str) -> None:
    for path in whole:
        if sizes[path] > WHOLE_FILE_LIMIT:
            raise IngestError(
                f"ingest: {workers.relative_source(path, root)} has {sizes[path]:,} bytes; Spark "
                "reads a file of its kind whole, in one array of at most 2 GB: split it into "
                "smaller files, or store it as a UTF-8 CSV, TSV or JSON Lines file or as parquet "
                "(read in pieces, spark.split_mb)"
            )


def _head(spark, path: str, size: int) -> bytes:
    """The first ``size`` bytes of a file (through Spark's file system: any URI)."""
    fs, hpath, jvm = file_system(spark, unquote(path))
    stream = fs.open(hpath)
    try:
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream, size))
    finally:
        stream.close()


def _split_lines(
    state: SparkRun, root: str, layouts: dict[str, tuple], sizes: dict, number: dict[str, int]
):
    """The records of the split files as (path, file_number, line, line_no, record) rows:
    Spark's text reader in pieces of ``spark.split_mb``; a first pass counts each piece's
    lines and records (the offsets of the next pieces) and finds CSV lines that end inside a
    quoted field, whose files are then read whole."""
    context = state.spark.sparkContext
    piece = max(1, int(state.params.spark.split_mb * 1e6))
    rdds = []
    for path, (fmt, columns, delimiter, encoding) in sorted(layouts.items()):
        text = context.textFile(unquote(path), minPartitions=max(1, -(-sizes[path] // piece)))
        counting = workers.count_lines(fmt, delimiter)
        pieces = sorted(text.mapPartitionsWithIndex(counting).collect())
        line_start, record_start, opened = [], [], None
        lines_before = records_before = 0
        for _, n_lines, n_records, open_at in pieces:
            if open_at is not None and opened is None:
                opened = lines_before + open_at + 1
            line_start.append(lines_before)
            record_start.append(records_before)
            lines_before += n_lines
            records_before += n_records
        source = workers.relative_source(path, root)
        if opened is not None:
            log.info(
                "ingest: %s: a quoted field goes on past line %d; read whole, in one task",
                source,
                opened,
            )
            del layouts[path]
            continue
        if fmt != "jsonl" and state.params.ingest.text_column not in columns:
            # One row says why, as the local engine gives for the whole file.
            rdds.append(context.parallelize([(path, number[path], text.first(), 1, 0)]))
            continue
        log.info("ingest: %s: %d lines, read in %d pieces", source, lines_before, len(pieces))
        rows = workers.line_rows(path, number[path], fmt, encoding, line_start, record_start)
        rdds.append(text.mapPartitionsWithIndex(rows))
    if not rdds:
        return None
    schema = "path string, file_number long, line string, line_no long, record long"
    return state.spark.createDataFrame(context.union(rdds), schema)


def _check_path_pattern(paths: list[str], root: str, params: IngestParams) -> None:
    """ingest.path_pattern checked against every file's path on the driver (the executors
    apply it file by file), before any file is read."""
    from pipeline.ingest import check_path_pattern
    from pipeline.text.path_fields import PathFields

    path_fields = PathFields(params.path_pattern, params.folder_column)
    if path_fields.pattern is not None:
        for path in paths:
            path_fields.read(workers.relative_source(path, root))
    check_path_pattern(path_fields)


def _metadata_value(name: str):
    """The column of metadata ``name``, from each row's (key, value) list (null if absent)."""
    from pyspark.sql import functions as F

    # A one-argument function: with two, Spark passes the element's index as the second.
    matches = F.filter("_meta", lambda m: m.getField("key") == F.lit(name))
    return F.try_element_at(matches, F.lit(1)).getField("value").alias(name)


def _metadata_columns(docs) -> list[str]:
    """The metadata columns in order of first appearance, as the local engine orders them."""
    from pyspark.sql import functions as F

    keys = docs.select(ORDER, F.posexplode("_meta").alias("pos", "m"))
    first = keys.groupBy(F.col("m.key").alias("key")).agg(F.min(F.struct(ORDER, "pos")).alias("at"))
    rows = first.collect()
    return [r["key"] for r in sorted(rows, key=lambda r: (r["at"][0], r["at"][1]))]


# --- clean ----------------------------------------------------------------------------------


def clean_stage(state: SparkRun, raw: str) -> None:
    """Cleaning on the executors; duplicates by hash groups, near duplicates by MinHash bands
    grouped by key, resolved in document order as the local engine does."""
    from pyspark.sql import functions as F

    params = state.params.clean
    if params.deduplicate:  # refuse impossible banding before any work
        try:
            bands, rows = lsh_bands(params.near_duplicate_threshold, params.num_perm)
        except ValueError as exc:
            raise CleanError(
                f"params: clean.near_duplicate_threshold = {params.near_duplicate_threshold} "
                f"with clean.num_perm = {params.num_perm} cannot be banded ({exc})"
            ) from exc
    docs = state.frames["ingest"]
    key = settings_key(params)
    cleaned = docs.select("doc_id", "text", "status", "reason", "decode_errors", ORDER).mapInArrow(
        workers.clean_documents(state.shipped, key), _struct(workers.CLEAN_SCHEMA)
    )
    cleaned = state.persist("cleaned", cleaned)
    if params.deduplicate:
        decided = _duplicates(state, cleaned, bands, rows)
    else:
        decided = cleaned.withColumn("dup_status", F.lit(None).cast("string")).withColumn(
            "cluster_id", F.lit(None).cast("string")
        )
    sizes = (
        decided.filter(F.col("cluster_id").isNotNull())
        .groupBy(F.col("cluster_id").alias("canonical"))
        .agg((F.count("*") + 1).alias("size"))
    )
    members = sizes.select(F.col("canonical").alias("c1"), F.col("size").alias("member_size"))
    own = sizes.select(F.col("canonical"), F.col("size"))
    final = decided.join(members, decided["cluster_id"] == members["c1"], "left").join(
        own, decided["doc_id"] == own["canonical"], "left"
    )
    cluster = F.coalesce(F.col("cluster_id"), F.col("canonical"))
    final = final.select(
        "doc_id",
        "text",
        "n_chars",
        F.coalesce(F.col("dup_status"), F.col("status")).alias("status"),
        F.when(
            F.col("dup_status").isNotNull(),
            F.concat(F.regexp_replace("dup_status", "_", "-"), F.lit(" of "), F.col("cluster_id")),
        )
        .otherwise(F.col("reason"))
        .alias("reason"),
        cluster.alias("cluster_id"),
        F.coalesce(F.col("member_size"), F.col("size")).alias("cluster_size"),
        ORDER,
    )
    final = state.persist("clean", _spin(state, docs, cleaned, final))
    write_dataset(final, state.table("clean"), CLEAN, [ORDER], state.parts)
    audit = cleaned.select("doc_id", ORDER, F.posexplode("audit").alias("pos", "a")).select(
        "doc_id", "a.rule", "a.n_matches", "a.chars_removed", ORDER, "pos"
    )
    write_dataset(audit, state.table("clean_audit"), CLEAN_AUDIT, [ORDER, "pos"], state.parts)
    _ingest_report(state, docs, final)


def _spin(state: SparkRun, docs, cleaned, final):
    """``final`` with spin scores as the local clean sets them (``pipeline/text/spin.py``):
    bigram document frequencies over the units (parent documents) by Spark aggregation, each
    row's counts on the executors, the corpus' median and MAD of the rare-bigram share by
    Spark's exact percentile, each unit's score and the flags by the local functions."""
    from pyspark.sql import functions as F

    from pipeline.text.spin import MIN_BIGRAMS, MIN_DOCUMENTS, MIN_UNITS, dictionary_bigrams

    rows = (
        final.join(docs.select(ORDER, F.col("parent_id").alias("unit")), ORDER)
        .join(cleaned.select(ORDER, "swaps"), ORDER)
        .withColumn("counted", F.col("status") == F.lit(KEPT))
    )
    rows = state.persist("spin_rows", rows)
    codes = (
        rows.filter("counted")
        .select("unit", "text")
        .mapInArrow(workers.spin_bigrams(), _struct(workers.UNIT_BIGRAMS))
        .distinct()
    )
    frequent = codes.groupBy("code").count().filter(F.col("count") >= MIN_DOCUMENTS)
    found = frequent.select("code").toArrow().column("code").to_numpy()
    common = np.union1d(dictionary_bigrams(), found.astype(np.int64))
    counts = rows.select("unit", "text", "swaps", "counted").mapInArrow(
        workers.spin_counts(common), _struct(workers.UNIT_COUNTS)
    )
    names = workers.UNIT_COUNTS.names[1:]
    totals = state.persist(
        "spin_totals", counts.groupBy("unit").agg(*[F.sum(n).alias(n) for n in names])
    )
    enough = totals.filter(F.col("bigrams") >= MIN_BIGRAMS).select(
        (F.col("rare") / F.col("bigrams")).alias("share")
    )
    spread = None
    if enough.count() >= MIN_UNITS:
        median = float(enough.agg(F.percentile("share", 0.5)).first()[0])
        distance = F.abs(F.col("share") - F.lit(median))
        spread = (median, float(enough.agg(F.percentile(distance, 0.5)).first()[0]))
    scores = totals.mapInArrow(workers.spin_unit_scores(spread), _struct(workers.UNIT_SCORES))
    scored = rows.join(scores, "unit", "left").select(
        ORDER, "unit", F.coalesce("score", F.lit(0.0)).alias("score"), "status", "reason"
    )
    spun = scored.mapInArrow(
        workers.apply_spin_scores(state.params.clean), _struct(workers.SPUN_SCHEMA)
    )
    return final.drop("status", "reason").join(spun, ORDER)


def _struct(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _duplicates(state: SparkRun, cleaned, bands: int, rows: int):
    """``cleaned`` with ``dup_status`` and ``cluster_id`` (the canonical doc_id) set on the
    duplicates and near duplicates."""
    from pyspark.sql import functions as F

    params = state.params.clean
    kept = cleaned.filter(F.col("digest").isNotNull())
    firsts = kept.groupBy("digest").agg(F.min(ORDER).alias("rep"))
    kept = kept.join(firsts, "digest")
    reps = kept.filter(F.col(ORDER) == F.col("rep")).select(ORDER, "doc_id", "signature")
    reps = state.persist("reps", reps)
    keys = reps.select(ORDER, "signature").mapInArrow(
        workers.band_keys_of(bands, rows, params.num_perm), _struct(workers.BANDS_SCHEMA)
    )
    x, y = keys.alias("x"), keys.alias("y")
    pairs = (
        x.join(
            y, (F.col("x.band") == F.col("y.band")) & (F.col(f"x.{ORDER}") < F.col(f"y.{ORDER}"))
        )
        .select(F.col(f"x.{ORDER}").alias("a"), F.col(f"y.{ORDER}").alias("b"))
        .distinct()
    )
    a = reps.select(
        F.col(ORDER).alias("a"), F.col("doc_id").alias("a_id"), F.col("signature").alias("a_sig")
    )
    b = reps.select(
        F.col(ORDER).alias("b"), F.col("doc_id").alias("b_id"), F.col("signature").alias("b_sig")
    )
    candidates = pairs.join(a, "a").join(b, "b").select("a", "a_id", "a_sig", "b", "b_id", "b_sig")
    near = candidates.mapInArrow(
        workers.near_pairs(bands, rows, params.num_perm, params.near_duplicate_threshold),
        _struct(workers.PAIRS_SCHEMA),
    )
    assigned = resolve_near_duplicates(
        (r["a"], r["a_id"], r["b"], r["score"]) for r in near.orderBy("b", "a").toLocalIterator()
    )
    spark = state.spark
    near_df = spark.createDataFrame(
        [(order, canonical) for order, canonical in assigned.items()],
        "rep long, near_canonical string",
    )
    rep_ids = reps.select(F.col(ORDER).alias("rep"), F.col("doc_id").alias("rep_id"))
    info = (
        kept.select(ORDER, "rep")
        .join(rep_ids, "rep")
        .join(F.broadcast(near_df), "rep", "left")
        .select(
            ORDER,
            F.when(F.col(ORDER) != F.col("rep"), F.lit(DUPLICATE))
            .when(F.col("near_canonical").isNotNull(), F.lit(NEAR_DUPLICATE))
            .alias("dup_status"),
            F.when(F.col(ORDER) != F.col("rep"), F.coalesce("near_canonical", "rep_id"))
            .otherwise(F.col("near_canonical"))
            .alias("cluster_id"),
        )
    )
    return cleaned.join(info, ORDER, "left")


def resolve_near_duplicates(pairs) -> dict[int, str]:
    """Near duplicates decided in document order, as ``Deduplicator`` decides them: ``pairs``
    are (earlier order, its doc_id, later order, score) of every near-duplicate pair of
    distinct texts, sorted by the later document. A document joins the most similar earlier
    document that is itself canonical (ties: the smallest doc_id); it returns
    {order of a near duplicate: doc_id of its canonical document}."""
    assigned: dict[int, str] = {}
    best: tuple[float, str] | None = None
    current = None

    def settle() -> None:
        if current is not None and best is not None:
            assigned[current] = best[1]

    for a, a_id, b, score in pairs:
        if b != current:
            settle()
            current, best = b, None
        if a in assigned:  # a near duplicate itself: not in the index
            continue
        if best is None or score > best[0] or (score == best[0] and a_id < best[1]):
            best = (score, a_id)
    settle()
    return assigned


def _ingest_report(state: SparkRun, docs, final) -> None:
    """ingest_report and metrics/ingest.json, counted by Spark."""
    from pyspark.sql import functions as F

    joined = docs.select(ORDER, "source", "encoding", "format").join(
        final.select(ORDER, "status"), ORDER
    )
    parts = [
        joined.select(
            F.lit(d).alias("dimension"),
            F.coalesce(F.col(d), F.lit("(none)")).alias("value"),
            "source",
        )
        for d in REPORT_DIMENSIONS
    ]
    union = parts[0].unionByName(parts[1]).unionByName(parts[2])
    rows = (
        union.groupBy("dimension", "value")
        .agg(F.count("*").alias("count"), F.countDistinct("source").alias("files"))
        .collect()
    )
    rows.sort(key=lambda r: (REPORT_DIMENSIONS.index(r["dimension"]), r["value"]))
    table = pa.table(
        {
            "dimension": [r["dimension"] for r in rows],
            "value": [r["value"] for r in rows],
            "count": pa.array([r["count"] for r in rows], pa.int64()),
            "files": pa.array([r["files"] for r in rows], pa.int64()),
        }
    )
    write_arrow(state.spark, table, state.table("ingest_report"), INGEST_REPORT)
    metrics: dict = {d: {} for d in REPORT_DIMENSIONS}
    for r in rows:
        metrics[r["dimension"]][r["value"]] = r["count"]
    documents = sum(metrics["status"].values())
    metrics["documents"] = documents
    metrics["files"] = docs.select("source").distinct().count()
    kept = metrics["status"].get(KEPT, 0)
    metrics["kept_share"] = round(kept / documents, 6) if documents else 0.0
    _write_json(state, metrics, "metrics/ingest.json")
    log.info("clean: %s", {k: metrics[k] for k in ("documents", "files", "status")})


def _write_json(state: SparkRun, data: dict, name: str) -> None:
    """A small JSON file below the output folder (metrics): through Spark's file system, so
    that it lands where the tables do."""
    target = f"{state.out.rstrip('/')}/{name}"
    if "://" not in state.out or state.out.startswith("file:"):
        write_json(data, Path(target.removeprefix("file:")))
        return
    from pipeline.spark.tables import file_system

    fs, path, _ = file_system(state.spark, target)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")))
    finally:
        stream.close()


# --- segment --------------------------------------------------------------------------------


def segment_stage(state: SparkRun, raw: str) -> None:
    """New words discovered over the kept texts (on the driver, streamed in corpus order),
    then tokens of every document, segmented on the executors with them added as the local
    engine adds them (``segment.new_words: use``)."""
    from pyspark.sql import functions as F

    from pipeline.segment import _WordCounter
    from pipeline.text.new_words import accepted_words

    params = state.params.segment
    new_words = _new_words(state)
    added = tuple(accepted_words(new_words)) if params.new_words == "use" else ()
    clean = state.frames["clean"].select("doc_id", "text", "status", ORDER)
    key = settings_key(params) + hashlib.sha256("\n".join(added).encode("utf-8")).digest()
    tokens = clean.mapInArrow(
        workers.segment_documents(state.shipped, key, added), _struct(workers.TOKENS_SCHEMA)
    )
    tokens = state.persist("tokens", tokens)
    write_dataset(tokens, state.table("tokens"), TOKENS, [ORDER], state.parts)
    words = new_words.column("word").to_pylist()
    counter = _WordCounter(words)
    if words:
        parts = tokens.select("tokens").mapInArrow(
            workers.count_words(words), _struct(workers.WORD_COUNTS)
        )
        for row in parts.collect():
            counter.counts += np.asarray(row["counts"], dtype=np.int64)
    state.new_words, state.added_words = counter.table(new_words), added
    write_arrow(state.spark, state.new_words, state.table("new_words"), NEW_WORDS)
    total = tokens.agg(F.sum("n_tokens")).first()[0] or 0
    log.info("segment: %d tokens -> %s", total, state.table("tokens"))


def _new_words(state: SparkRun) -> pa.Table:
    """The new-words table (``segment.new_words``), discovered by the local engine's function
    over the kept texts in corpus order, streamed to the driver a partition at a time."""
    from pyspark.sql import functions as F

    from pipeline.schemas import NEW_WORDS
    from pipeline.segment import discovery_checks, discovery_thresholds
    from pipeline.text.new_words import accepted_words, discover
    from pipeline.text.tokenizers import load_lexicon

    params = state.params.segment
    if params.new_words == "off":
        return NEW_WORDS.schema.empty_table()
    kept = state.frames["clean"].filter(F.col("status") == F.lit(KEPT))
    texts = kept.orderBy(ORDER).select("text")

    def batches():
        batch: list[str] = []
        for row in texts.toLocalIterator():
            batch.append(row["text"])
            if len(batch) >= workers.TEXT_BATCH:
                yield pa.array(batch, pa.string())
                batch = []
        if batch:
            yield pa.array(batch, pa.string())

    lexicon = load_lexicon(params, check=False)
    table = discover(batches, discovery_thresholds(params), discovery_checks(params, lexicon))
    log.info(
        "segment: %d new words accepted of %d listed (%s)",
        len(accepted_words(table)),
        table.num_rows,
        "added to the tokenizer" if params.new_words == "use" else "not used",
    )
    return table


# --- tfidf ----------------------------------------------------------------------------------


def tfidf_stage(state: SparkRun, raw: str) -> None:
    """Document frequencies and the vocabulary by Spark aggregation; counts, weights and
    keywords per document on the executors with the local engine's functions."""
    from pyspark.sql import functions as F

    params = state.params.tfidf
    tokens = state.frames["tokens"]
    with_tokens = tokens.filter(F.col("n_tokens") > 0)
    n_rows = with_tokens.count()
    if n_rows == 0:
        raise TfidfError("tfidf: no document has any token; check the clean and segment results")
    low, high = df_bounds(n_rows, params)
    df = (
        with_tokens.select(F.explode(F.array_distinct("tokens")).alias("term"))
        .groupBy("term")
        .agg(F.count("*").alias("df"))
        .filter((F.col("df") >= F.lit(low)) & (F.col("df") <= F.lit(high)))
    )
    totals = (
        with_tokens.select(F.explode("tokens").alias("term"))
        .groupBy("term")
        .agg(F.count("*").alias("total"))
    )
    rows = df.join(totals, "term").collect()
    terms = pa.array([r["term"] for r in rows], pa.string())
    dfs = np.array([r["df"] for r in rows], dtype=np.int64)
    totals_array = np.array([r["total"] for r in rows], dtype=np.int64)
    kept = choose_terms(terms, dfs, lambda: totals_array, n_rows, params)
    vocab_terms = terms.take(pa.array(kept))
    vocab_df = dfs[kept]
    idf = _idf(vocab_df, n_rows)
    weights = with_tokens.select("doc_id", "tokens", ORDER).mapInArrow(
        workers.weigh_documents(vocab_terms, idf, params.sublinear_tf, params.top_k),
        _struct(workers.WEIGHTS_SCHEMA),
    )
    weights = state.persist("weights", weights)
    vocabulary = vocabulary_table(
        vocab_terms,
        vocab_df,
        totals_array[kept].astype(np.float64),
        idf,
        n_rows,
        params,
        read_keep_terms(params.keep_terms),
        _parent_spread(state, weights, len(kept)),
        lambda candidates: _partner_npmi(weights, vocab_df, candidates, n_rows),
    )
    write_arrow(state.spark, vocabulary, state.table("vocabulary"), VOCABULARY)
    state.vocabulary = vocabulary
    entries = doc_term_rows(weights)
    write_dataset(entries, state.table("doc_terms"), DOC_TERMS, [ORDER, "pos"], state.parts)
    top = weights.select(
        "doc_id",
        ORDER,
        F.posexplode(F.arrays_zip("keyword_terms", "keyword_weights")).alias("pos", "e"),
    ).select(
        "doc_id",
        (F.col("pos") + 1).alias("rank"),
        F.col("e.keyword_terms").alias("term"),
        F.col("e.keyword_weights").alias("weight"),
        ORDER,
        "pos",
    )
    write_dataset(top, state.table("keywords"), KEYWORDS, [ORDER, "pos"], state.parts)
    without = weights.filter(F.size("term_ids") == 0).count()
    log.info(
        "tfidf: %d terms; %d of %d documents with tokens have terms -> %s",
        len(kept),
        n_rows - without,
        n_rows,
        state.out,
    )
    if without:
        log.warning(
            "tfidf: %d document(s) have tokens but none in the vocabulary "
            "(tfidf.min_df/max_df); they get no keywords and no topic mix",
            without,
        )


def _parent_spread(state: SparkRun, weights, n_terms: int) -> ParentSpread:
    """The terms' spread over the parent documents (``background.spread_over_parents``) from
    their counts per parent, summed by Spark; parents numbered in order of first appearance
    among the documents with tokens, as the local engine numbers them."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    parent_of = state.frames["ingest"].select(ORDER, "parent_id")
    rows = weights.select(ORDER, "term_ids", "counts").join(parent_of, ORDER)
    parents = rows.groupBy("parent_id").agg(
        F.min(ORDER).alias("first"), F.count("*").alias("units")
    )
    numbered = parents.select(
        "parent_id", (F.row_number().over(Window.orderBy("first")) - 1).alias("parent")
    )
    entries = (
        rows.join(numbered, "parent_id")
        .select("parent", F.explode(F.arrays_zip("term_ids", "counts")).alias("e"))
        .groupBy("parent", F.col("e.term_ids").alias("term_id"))
        .agg(F.sum("e.counts").alias("count"))
        .toArrow()
    )
    sizes = parents.agg(F.count("*").alias("n"), F.max("units").alias("most")).first()
    n_parents = int(sizes["n"])
    if n_parents == 0:
        return spread_over_parents(sp.csr_matrix((0, n_terms)), False)
    by_parent = sp.csr_matrix(
        (
            entries.column("count").to_numpy().astype(np.float64),
            (entries.column("parent").to_numpy(), entries.column("term_id").to_numpy()),
        ),
        shape=(n_parents, n_terms),
    )
    return spread_over_parents(by_parent, int(sizes["most"]) >= 2 and n_parents >= 2)


def _partner_npmi(weights, df: np.ndarray, candidates: np.ndarray, n_rows: int) -> np.ndarray:
    """``background.partner_npmi`` with the documents shared by each candidate and partner
    term counted by Spark."""
    from pyspark.sql import functions as F

    cand_ids = np.flatnonzero(candidates).tolist()
    partner_ids = np.flatnonzero(partner_terms(df, candidates, n_rows)).tolist()
    pairs = np.zeros((0, 3), dtype=np.int64)
    if cand_ids and partner_ids:
        present = weights.select(ORDER, F.explode("term_ids").alias("term"))
        a = present.filter(F.col("term").isin(cand_ids)).withColumnRenamed("term", "a")
        b = present.filter(F.col("term").isin(partner_ids)).withColumnRenamed("term", "b")
        joint = a.join(b, ORDER).groupBy("a", "b").agg(F.count("*").alias("n")).collect()
        pairs = np.array([(r["a"], r["b"], r["n"]) for r in joint], dtype=np.int64).reshape(-1, 3)
    return best_npmi(pairs[:, 0], pairs[:, 1], pairs[:, 2], df, n_rows)


def lda_stage(state: SparkRun, raw: str) -> None:
    from pipeline.spark.topics import topics_stage

    topics_stage(state)


def compare_stage(state: SparkRun, raw: str) -> None:
    """Keyness, topic contrasts and trends by metadata group, from the written tables (a local
    output folder only)."""
    _driver_stage(state, raw, "compare")


def report_stage(state: SparkRun, raw: str) -> None:
    """The HTML report, from the written tables (a local output folder only)."""
    _driver_stage(state, raw, "report")


def explorer_stage(state: SparkRun, raw: str) -> None:
    """The offline explorer page, from the written tables (a local output folder only)."""
    _driver_stage(state, raw, "explorer")


def _driver_stage(state: SparkRun, raw: str, name: str) -> None:
    """A local stage that reads the written tables on the driver (``pipeline.io`` reads the
    datasets; the report and the explorer bound what they read)."""
    if "://" in state.out and not state.out.startswith("file:"):
        log.warning("%s: skipped, %s is not a local folder; run zhtopics %s on a copy",
                    name, state.out, name)  # fmt: skip
        return
    from pipeline.io import Paths
    from pipeline.runner import stage_main

    out = Path(state.out.removeprefix("file:"))
    stage_main(name)(state.params, Paths.under(raw, out))


STAGE_FUNCTIONS = {
    "ingest": ingest_stage,
    "clean": clean_stage,
    "segment": segment_stage,
    "tfidf": tfidf_stage,
    "lda": lda_stage,
    "compare": compare_stage,
    "report": report_stage,
    "explorer": explorer_stage,
}
