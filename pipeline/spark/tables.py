"""Writing the output tables from Spark: parquet datasets (folders of part files) with the
schemas of ``pipeline/schemas.py``, rows in corpus order across ``part-00000.parquet``,
``part-00001.parquet``, ... (``pipeline.io`` reads them back in that order), written beside
the target and moved into place only when complete."""

from __future__ import annotations

import logging

import pyarrow as pa

from pipeline.schemas import TableSchema

log = logging.getLogger(__name__)


def file_system(spark, uri: str):
    """Hadoop's FileSystem of ``uri``, its Path and the JVM."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path, jvm


def qualified(spark, uri: str) -> str:
    """``uri`` as Spark names files below it (``file:/...``, ``hdfs://host/...``)."""
    fs, path, _ = file_system(spark, uri)
    return fs.makeQualified(path).toString()


def exists(spark, uri: str) -> bool:
    fs, path, _ = file_system(spark, uri)
    return bool(fs.exists(path))


def spark_schema(schema: TableSchema, extra: pa.Schema | None = None):
    """The Spark StructType of a declared table (plus ``extra`` columns)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    fields = list(schema.schema) + (list(extra) if extra is not None else [])
    return from_arrow_schema(pa.schema(fields))


def write_dataset(df, uri: str, schema: TableSchema, order: list[str], parts: int) -> None:
    """Write ``df`` sorted by ``order`` (columns dropped after sorting unless declared) as a
    parquet dataset at ``uri``: range-partitioned on the first order column, sorted within
    each part, part files renamed ``part-NNNNN.parquet`` in row order."""
    from pyspark.sql import functions as F

    columns = [F.col(f.name).cast(_spark_type(f)) for f in schema.schema]
    extras = [c for c in df.columns if c not in schema.columns and c not in order]
    if extras and not schema.open_columns:
        raise ValueError(f"{schema.name}: unexpected column(s) {extras}")
    ordered = df.repartitionByRange(max(1, parts), order[0]).sortWithinPartitions(*order)
    out = ordered.select(*columns, *[column(name) for name in extras])
    _write(out, uri)


def column(name: str):
    """The column named ``name`` exactly (a dot in a metadata column's name is no field)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def write_arrow(spark, table: pa.Table, uri: str, schema: TableSchema) -> None:
    """Write a (small) table made on the driver as a one-part dataset."""
    from pipeline.precision import round_table

    table = round_table(schema.conform(table))
    df = spark.createDataFrame(table) if table.num_rows else _empty(spark, schema)
    _write(df.coalesce(1), uri)


def _empty(spark, schema: TableSchema):
    return spark.createDataFrame([], spark_schema(schema))


def _spark_type(field: pa.Field):
    from pyspark.sql.pandas.types import from_arrow_type

    return from_arrow_type(field.type)


def _write(df, uri: str) -> None:
    spark = df.sparkSession
    fs, target, jvm = file_system(spark, uri)
    tmp = jvm.org.apache.hadoop.fs.Path(target.getParent(), f".{target.getName()}.spark-tmp")
    fs.delete(tmp, True)
    df.write.mode("overwrite").option("compression", "zstd").parquet(tmp.toString())
    _tidy(fs, tmp, jvm.org.apache.hadoop.fs.Path)
    fs.delete(target, True)
    if not fs.rename(tmp, target):
        raise OSError(f"cannot move {tmp.toString()} to {uri}")
    log.debug("spark: wrote %s", uri)


def _tidy(fs, folder, jvm_path) -> None:
    """Name the part files by their number alone (Spark adds a random job id) and drop the
    bookkeeping files (_SUCCESS, checksums), so that the same rows give the same folder."""
    for status in list(fs.listStatus(folder)):
        name = status.getPath().getName()
        if name.startswith("part-") and name.endswith(".parquet"):
            number = int(name.split("-")[1])
            fs.rename(status.getPath(), jvm_path(folder, f"part-{number:05d}.parquet"))
    # A checksummed file system (the local one) hides its .crc files from listings.
    raw = fs.getRawFileSystem() if "ChecksumFileSystem" in _classes(fs) else fs
    for status in list(raw.listStatus(folder)):
        name = status.getPath().getName()
        if not (name.startswith("part-") and name.endswith(".parquet")):
            raw.delete(status.getPath(), False)


def _classes(obj) -> str:
    """The Java class of ``obj`` and its superclasses, by name."""
    names, cls = [], obj.getClass()
    while cls is not None:
        names.append(cls.getName())
        cls = cls.getSuperclass()
    return " ".join(names)


def doc_term_rows(weights):
    """One row per document and term (doc_terms' columns plus the order keys) from the
    per-document weight arrays."""
    from pyspark.sql import functions as F

    from pipeline.spark.workers import ORDER

    return weights.select(
        "doc_id", ORDER, F.posexplode(F.arrays_zip("term_ids", "counts", "tfidf")).alias("pos", "e")
    ).select(
        "doc_id",
        F.col("e.term_ids").alias("term_id"),
        F.col("e.counts").alias("count"),
        F.col("e.tfidf").alias("tfidf"),
        ORDER,
        "pos",
    )
