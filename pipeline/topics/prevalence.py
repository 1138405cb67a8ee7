"""Where topics are prevalent: mean topic shares per group of a metadata column (source, year,
...), with bootstrap 95% intervals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.config import LdaParams
from pipeline.schemas import MISSING_GROUP, TOPIC_PREVALENCE
from pipeline.text.dates import bucket_label
from pipeline.topics.counts import LdaError

BOOTSTRAP_BLOCK = 1 << 22  # (resamples x documents) drawn at a time for prevalence intervals


def document_positions(
    doc_ids: list[str], documents: pa.Table, stage: str, error: type[ValueError]
) -> pa.Array:
    """The row of each of ``doc_ids`` in ``documents``; ``error`` naming the stage when a
    modelled document is not there (an older documents.parquet)."""
    position = {doc: i for i, doc in enumerate(documents.column("doc_id").to_pylist())}
    missing = [d for d in doc_ids if d not in position]
    if missing:
        raise error(
            f"{stage}: {len(missing)} modelled document(s) are not in documents.parquet, "
            f"e.g. {missing[0]}; re-run the pipeline from ingest"
        )
    return pa.array([position[d] for d in doc_ids], pa.int64())


def topic_prevalence(
    doc_ids: list[str], theta: np.ndarray, documents: pa.Table, params: LdaParams
) -> pa.Table:
    """Mean topic share per group of each metadata column, with bootstrap 95% intervals.

    ``date`` is bucketed by ``params.date_bucket`` (the column is then called decade, year,
    quarter or month; a date known only to the year is "(year only)" by quarter or month);
    a document without a value falls in the group "(missing)", so none is dropped.
    """
    take = document_positions(doc_ids, documents, "lda", LdaError)
    parts = []
    for index, column in enumerate(params.prevalence_columns):
        if column not in documents.column_names:
            raise LdaError(
                f"lda.prevalence_columns: {column!r} is not a column of documents.parquet "
                f"(it has {documents.column_names})"
            )
        values = documents.column(column).take(take)
        name = column
        if column == "date" or pa.types.is_date(values.type) or pa.types.is_timestamp(values.type):
            values = _bucketed(values, documents, take, column, params.date_bucket)
            name = params.date_bucket if column == "date" else f"{column}_{params.date_bucket}"
        groups = [MISSING_GROUP if v is None else str(v) for v in values.to_pylist()]
        rng = np.random.default_rng([params.random_state, index])
        parts.append(_group_means(name, np.asarray(groups, dtype=object), theta, rng, params))
    if not parts:
        return TOPIC_PREVALENCE.schema.empty_table()
    return pa.concat_tables(parts)


def _bucketed(
    values: pa.ChunkedArray, documents: pa.Table, take: pa.Array, column: str, bucket: str
) -> pa.Array:
    """Dates as periods (pipeline.text.dates.bucket_label): a date known only to its year is
    "(year only)" by quarter or month, never January."""
    precision = [None] * len(values)
    if column == "date" and "date_precision" in documents.column_names:
        precision = documents.column("date_precision").take(take).to_pylist()
    dates = values.cast(pa.timestamp("s")).cast(pa.date32()).to_pylist()
    labels = [bucket_label(d, p, bucket) for d, p in zip(dates, precision, strict=True)]
    return pa.array(labels, pa.string())


def _group_means(
    name: str, groups: np.ndarray, theta: np.ndarray, rng: np.random.Generator, params: LdaParams
) -> pa.Table:
    """Per group (sorted): mean shares and a bootstrap interval.

    A resample's mean is (how often each document was drawn) @ shares / n, so the resamples
    cost a small matrix product per group rather than a Python loop. They are drawn a block
    at a time (all of them at once for groups under about 20,000 documents), so that memory
    stays at about BOOTSTRAP_BLOCK numbers however large a group is.
    """
    k = theta.shape[1]
    names, inverse = np.unique(groups, return_inverse=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    b = params.bootstrap
    means, lows, highs = [], [], []
    for rows in members:
        shares = theta[rows]
        n = shares.shape[0]
        if n == 1:  # every resample is the one document: its shares, exactly, with no draws
            rng.integers(0, 1, size=(b, 1))  # the draws the loop below would make
            means.append(shares[0])
            lows.append(shares[0])
            highs.append(shares[0])
            continue
        resampled = np.empty((b, k), dtype=np.float64)
        block = max(1, BOOTSTRAP_BLOCK // n)
        for start in range(0, b, block):
            m = min(block, b - start)
            draws = rng.integers(0, n, size=(m, n)) + (np.arange(m) * n)[:, None]
            drawn = np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)
            # Not drawn @ shares: OpenBLAS sums in a CPU-dependent order; einsum does not.
            resampled[start : start + m] = np.einsum("ij,jk->ik", drawn, shares) / n
        low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
        means.append(shares.mean(axis=0))
        lows.append(low)
        highs.append(high)
    table = {
        "column": [name] * (k * len(names)),
        "group": np.repeat(names, k).tolist(),
        "topic": np.tile(np.arange(k), len(names)),
        "mean": np.concatenate(means),
        "ci_low": np.concatenate(lows),
        "ci_high": np.concatenate(highs),
        "n_docs": np.repeat([len(rows) for rows in members], k),
    }
    return TOPIC_PREVALENCE.conform(pa.table(table))
