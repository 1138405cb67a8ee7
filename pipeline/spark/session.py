"""Starting Spark for the pipeline, and shipping what the executors need: the ``pipeline``
package (as a zip, so that executors on other machines import the same code) and the
dictionary files named in the settings (``SparkContext.addFile``, read back on the executors
through ``SparkFiles``). Nothing on the executors reads the driver's disk."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from pipeline.config import Params, SparkParams
from pipeline.spark import SparkEngineError, require_pyspark

log = logging.getLogger(__name__)

# Spark settings the engine depends on; ``spark.conf`` in params.yaml may add others.
BASE_CONF = {
    # Dates (documents.date) are calendar days: no time zone may shift them.
    "spark.sql.session.timeZone": "UTC",
    # Rows per Arrow batch handed to a mapInArrow function: a batch of documents is a few MB.
    "spark.sql.execution.arrow.maxRecordsPerBatch": "2000",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    # The Python workers stay up between tasks, so a tokenizer is loaded once per worker.
    "spark.python.worker.reuse": "true",
    # Plans over the vocabulary's term ids (isin lists) are long: log them cut short.
    "spark.sql.maxPlanStringLength": "100000",
}
# A local master runs everything in the driver's JVM, whose default heap (1 GB) is too small
# for the persisted document tables; spark.conf may set another value.
LOCAL_DRIVER_MEMORY = "4g"

# The dictionary files of the settings: (section, key).
SHIPPED_FILES = (
    ("clean", "replacements"),
    ("clean", "boilerplate"),
    ("segment", "userdict"),
    ("segment", "stopwords"),
)


def start_session(params: SparkParams, master: str | None = None, app: str = "zhtopics"):
    """The SparkSession: a running one (a notebook's, the tests') or a new one on ``master``
    (default ``spark.master`` of the settings) with the engine's configuration."""
    require_pyspark()
    from pyspark.sql import SparkSession

    # py4j logs every connection it opens and closes (INFO), even at interpreter exit.
    logging.getLogger("py4j").setLevel(logging.WARNING)

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    # Under spark-submit (which starts the gateway) its --master stands unless --master is given.
    if master or not os.environ.get("PYSPARK_GATEWAY_PORT"):
        builder = builder.master(master or params.master)
    conf = dict(BASE_CONF)
    if (master or params.master).startswith("local"):
        conf["spark.driver.memory"] = LOCAL_DRIVER_MEMORY
    for key, value in {**conf, **params.conf}.items():
        builder = builder.config(key, value)
    if params.partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(params.partitions))
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: say what is needed
        raise SparkEngineError(
            f"cannot start Spark with master {master or params.master!r}: {exc}. Spark needs "
            "Java 17 or newer (java -version); see README.md, Running on a cluster"
        ) from exc
    log.info("spark: %s, Spark %s", spark.sparkContext.master, spark.version)
    return spark


def partitions(spark, params: SparkParams) -> int:
    """Partitions of the document tables: ``spark.partitions`` or Spark's parallelism."""
    return params.partitions or spark.sparkContext.defaultParallelism


# Raw input bytes per shuffle partition where neither spark.partitions nor Spark's own
# spark.sql.shuffle.partitions is set. Spark's default, 200 whatever the corpus, costs a task
# per partition in every exchange, each a round trip to a Python worker where a function runs
# per partition: on the sample (0.1 MB) clean took 49 s with 200 and 15 s with 2 (local[2]).
SHUFFLE_BYTES = 32 * 2**20


def user_set(spark, params: SparkParams, key: str) -> bool:
    """Whether the user set Spark setting ``key``: in ``spark.conf``, with ``--conf`` or on
    the session's builder."""
    return key in params.conf or bool(spark.sparkContext.getConf().contains(key))


def shuffle_partitions(spark, params: SparkParams, raw_bytes: int) -> int | None:
    """Shuffle partitions for a corpus of ``raw_bytes``: ``spark.partitions`` if set, else one
    per ``SHUFFLE_BYTES`` of raw files and at least Spark's parallelism; None where the user
    set ``spark.sql.shuffle.partitions`` (in ``spark.conf``, ``--conf`` or the session)."""
    if user_set(spark, params, "spark.sql.shuffle.partitions"):
        return None
    if params.partitions:
        return params.partitions
    return max(spark.sparkContext.defaultParallelism, -(-raw_bytes // SHUFFLE_BYTES))


def ship_package(spark) -> None:
    """Zip the ``pipeline`` package this driver runs and add it to every executor's path
    (once per Spark application; the zip stays beside it in the temporary folder)."""
    context = spark.sparkContext
    if context.applicationId in _SHIPPED:
        return
    package = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.gettempdir()) / f"zhtopics-spark-{context.applicationId}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "zhtopics-pipeline.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*.py")):
            archive.write(path, path.relative_to(package.parent).as_posix())
    context.addPyFile(str(target))
    _SHIPPED.add(context.applicationId)


_SHIPPED: set[str] = set()


def ship_files(spark, params: Params) -> Params:
    """Add the settings' dictionary files to the job; return the settings with those paths
    replaced by their bare names, which ``local_params`` resolves on an executor."""
    names: dict[str, Path] = {}
    sections = {}
    for section, key in SHIPPED_FILES:
        path = getattr(getattr(params, section), key)
        if path is None:
            continue
        seen = names.setdefault(path.name, path)
        if seen.resolve() != path.resolve():
            raise SparkEngineError(
                f"params: {section}.{key} = {path} has the same file name as {seen}; Spark "
                "ships files by name, so rename one of them"
            )
        if seen is path:
            spark.sparkContext.addFile(str(path))
        sections.setdefault(section, {})[key] = Path(path.name)
    return _replaced(params, sections)


def local_params(params: Params) -> Params:
    """On an executor: the shipped settings with each dictionary file at its local copy."""
    from pyspark import SparkFiles

    sections = {}
    for section, key in SHIPPED_FILES:
        path = getattr(getattr(params, section), key)
        if path is not None:
            sections.setdefault(section, {})[key] = Path(SparkFiles.get(path.name))
    return _replaced(params, sections)


def _replaced(params: Params, sections: dict[str, dict]) -> Params:
    """``params`` with the given keys of the given sections replaced."""
    return dataclasses.replace(
        params,
        **{
            name: dataclasses.replace(getattr(params, name), **values)
            for name, values in sections.items()
        },
    )
