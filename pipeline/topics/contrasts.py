"""Topic contrasts and trends: how much more (or less) of each topic a group of documents has
than the rest, and a topic's share over time, each with a bootstrap 95% interval.

Documents, not paragraphs, are resampled: the paragraphs of one speech are not independent
evidence. A document's topic shares are the mean of its units' shares. The bootstrap is
stratified: each resample redraws every group's documents from that group, so one set of
resamples gives every group's mean and the mean of the rest (all other documents that have a
value in the column) at once. Published numbers are rounded to 6 decimals, so that the last
bits of a matrix product (which depend on the CPU's kernels) never reach an output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DECIMALS = 6
BLOCK = 1 << 22  # (resamples x documents) drawn at a time, so memory stays flat


@dataclass(frozen=True)
class Contrasts:
    """Per group and topic (groups x topics): mean share, its interval, the rest's mean, and
    the difference group - rest with its interval."""

    n_docs: np.ndarray
    mean: np.ndarray
    mean_low: np.ndarray
    mean_high: np.ndarray
    mean_rest: np.ndarray
    diff: np.ndarray
    diff_low: np.ndarray
    diff_high: np.ndarray


def document_shares(
    parent_codes: np.ndarray, theta: np.ndarray, n_documents: int
) -> tuple[np.ndarray, np.ndarray]:
    """(documents x topics) mean shares of each document's units, and the units per document.
    ``parent_codes`` gives each unit (row of ``theta``) its document's index."""
    k = theta.shape[1]
    units = np.bincount(parent_codes, minlength=n_documents)
    sums = np.zeros((n_documents, k), dtype=np.float64)
    np.add.at(sums, parent_codes, theta)
    with np.errstate(invalid="ignore"):
        shares = sums / units[:, None]
    return np.nan_to_num(shares), units


def contrasts(
    shares: np.ndarray, codes: np.ndarray, n_groups: int, bootstrap: int, rng: np.random.Generator
) -> Contrasts:
    """Means, differences from the rest and stratified bootstrap intervals for every group of
    ``codes`` (one per row of ``shares``; -1: no value, in no group and not in the rest)."""
    k = shares.shape[1]
    valid = codes >= 0
    n = np.bincount(codes[valid], minlength=n_groups)
    n_valid = int(valid.sum())
    sums = np.zeros((n_groups, k))
    np.add.at(sums, codes[valid], shares[valid])
    resampled = np.zeros((n_groups, bootstrap, k))
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(n_groups))
    for g in range(n_groups):
        rows = order[starts[g] : starts[g] + n[g]]
        if len(rows):
            resampled[g] = _resampled_sums(shares[rows], bootstrap, rng)
    total = resampled.sum(axis=0)  # (bootstrap x k)
    mean = sums / np.maximum(n, 1)[:, None]
    rest_n = np.maximum(n_valid - n, 1)[:, None]
    mean_rest = (sums.sum(axis=0)[None, :] - sums) / rest_n
    boot_mean = resampled / np.maximum(n, 1)[:, None, None]
    boot_rest = (total[None] - resampled) / rest_n[:, None, :]
    boot_diff = boot_mean - boot_rest
    mean_low, mean_high = np.percentile(boot_mean, [2.5, 97.5], axis=1)
    diff_low, diff_high = np.percentile(boot_diff, [2.5, 97.5], axis=1)
    r = lambda x: np.round(x, DECIMALS)  # noqa: E731
    return Contrasts(
        n_docs=n,
        mean=r(mean),
        mean_low=r(mean_low),
        mean_high=r(mean_high),
        mean_rest=r(mean_rest),
        diff=r(mean - mean_rest),
        diff_low=r(diff_low),
        diff_high=r(diff_high),
    )


def _resampled_sums(shares: np.ndarray, bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """(bootstrap x topics) sums of ``bootstrap`` resamples (with replacement) of the rows."""
    n, k = shares.shape
    out = np.empty((bootstrap, k))
    block = max(1, BLOCK // n)
    for start in range(0, bootstrap, block):
        m = min(block, bootstrap - start)
        draws = rng.integers(0, n, size=(m, n)) + (np.arange(m) * n)[:, None]
        drawn = np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)
        out[start : start + m] = drawn @ shares
    return out


def smooth(x: np.ndarray, y: np.ndarray, weights: np.ndarray, bandwidth: float) -> np.ndarray:
    """A Gaussian kernel (Nadaraya-Watson) smooth of ``y`` (points x series) at the points
    ``x``, each point weighted by ``weights`` (its documents): a trend that a period of few
    documents pulls on little."""
    distance = (x[:, None] - x[None, :]) / bandwidth
    kernel = np.exp(-0.5 * distance**2) * weights[None, :]
    return np.round((kernel @ y) / kernel.sum(axis=1, keepdims=True), DECIMALS)


def default_bandwidth(x: np.ndarray) -> float:
    """A tenth of the span of ``x``, at least the smallest gap between points (1 if one point)."""
    if len(x) < 2:
        return 1.0
    gaps = np.diff(np.sort(x))
    return float(max((x.max() - x.min()) / 10, gaps[gaps > 0].min() if (gaps > 0).any() else 1))
