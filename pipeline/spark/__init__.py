"""The pipeline on Apache Spark (``zhtopics run --engine spark``): the same stages, settings and
tables as the local engine, with the text logic of ``pipeline/text/`` run inside Spark.

``session`` starts Spark and ships the package and dictionaries to the executors, ``workers``
holds what runs on the executors (per partition, with ``mapInArrow``), ``tables`` writes the
output datasets, ``stages`` runs the stages, ``topics`` fits and applies the topic model."""

from __future__ import annotations

INSTALL_HINT = (
    "the Spark engine needs pyspark: pip install 'zhtopics[spark]' (and Java 17 or newer, "
    "e.g. apt-get install openjdk-17-jre-headless); see README.md, Running on a cluster"
)


class SparkEngineError(ValueError):
    """The Spark engine cannot run as asked; the message says why and what to do."""


def require_pyspark() -> None:
    """Fail at once, saying how to install it, when pyspark is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SparkEngineError(INSTALL_HINT) from exc
