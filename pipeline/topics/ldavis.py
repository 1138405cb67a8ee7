"""lda_vis.html: pyLDAvis' interactive view as one offline UTF-8 file (d3, LDAvis JS/CSS inlined).

LDAvis reserves topic 0 for "no topic selected", so the view numbers topics from 1; the page
says so and lists each view number beside the topic number of the parquet tables.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from pipeline.io import atomic_path
from pipeline.precision import round_data, round_significant

VIS_ID = "ldavis_zhtopics"
R_TERMS = 30  # terms in each bar chart of the view
LAMBDA_STEP = 0.01  # the grid of relevance lambdas the view can show
ONE_TOPIC_PAGE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>zhtopics</title></head>'
    "<body><p>The model has one topic; the topic map needs at least two.</p></body></html>\n"
)
log = logging.getLogger(__name__)

PAGE = """<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<title>zhtopics: topic model view</title>
<style>{css}
body {{ font-family: sans-serif; margin: 1em; }}
table.zhtopics {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }}
table.zhtopics td, table.zhtopics th {{ border: 1px solid #ccc; padding: 2px 6px; }}
</style>
<script>{d3}</script>
<script>{ldavis}</script>
</head>
<body>
<h1>Topics</h1>
<p>Topic numbers: <strong>topic N in this view is topic N&minus;1</strong> in topics.parquet,
doc_topics.parquet and every other table (the view cannot show a topic 0). Topics are in the
tables' order, not re-sorted by size.</p>
<table class="zhtopics">
<tr><th>view</th><th>topic (tables)</th><th>label</th><th>prevalence</th></tr>
{rows}
</table>
<div id="{vis_id}" style="background-color:white;"></div>
<script>
var {vis_id}_data = {data};
new LDAvis("#{vis_id}", {vis_id}_data);
</script>
</body>
</html>
"""


def render(
    phi: np.ndarray,
    theta: np.ndarray,
    counts: sp.csr_matrix,
    terms: list[str],
    topics: pa.Table,
) -> str:
    """The whole page for a fitted model, deterministic (fixed element id, single process)."""
    if phi.shape[0] < 2:
        log.warning("lda: the pyLDAvis view needs at least 2 topics; lda_vis.html says so")
        return ONE_TOPIC_PAGE
    term_freq = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
    keep = term_freq > 0  # LDAvis divides by term frequency
    doc_lengths = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    phi_kept = phi[:, keep] / phi[:, keep].sum(axis=1, keepdims=True)
    vocab = np.asarray(terms, dtype=object)[keep]
    # Floats at the published precision: the same page on any CPU (pipeline/precision.py).
    data = round_data(prepare(phi_kept, theta, doc_lengths, vocab))
    rows = "\n".join(
        f"<tr><td>{r['topic'] + 1}</td><td>{r['topic']}</td><td>{html.escape(r['label'])}</td>"
        f"<td>{100 * r['prevalence']:.1f}%</td></tr>"
        for r in topics.select(["topic", "label", "prevalence"]).to_pylist()
    )
    d3, ldavis_js, css = _asset_paths()
    return PAGE.format(
        css=_read(css),
        d3=_script(_read(d3)),
        ldavis=_script(_read(ldavis_js)),
        rows=rows,
        vis_id=VIS_ID,
        data=_script(json.dumps(data, ensure_ascii=False)),
    )


def prepare(
    phi: np.ndarray,
    theta: np.ndarray,
    doc_lengths: np.ndarray,
    vocab: np.ndarray,
    r: int = R_TERMS,
    lambda_step: float = LAMBDA_STEP,
) -> dict:
    """The data of the LDAvis view: ``pyLDAvis.prepare(...).to_dict()`` with topics kept in
    order (``sort_topics=False``, ``start_index=1``), the topic map from :func:`js_pcoa`.

    The same arithmetic in numpy instead of pandas frames: pyLDAvis holds some thirty
    (topics x terms) frames at once and imports scikit-learn and scipy.stats (a second and
    a half). Orders follow pandas: the default view by saliency (pandas' sort), each topic's
    terms by relevance (``nlargest``: ties to the lower term), the token table by term, then
    topic. ``vocab`` holds the terms of ``phi``'s columns (every one with a frequency > 0).
    """
    k, v = phi.shape
    r = min(r, v)
    # Summed along contiguous rows, as pandas sums each column of its (topics x documents)
    # block: numpy's pairwise summation, so the numbers equal pyLDAvis' to the last bit.
    topic_freq = np.ascontiguousarray((theta * doc_lengths[:, None]).T).sum(axis=1)
    topic_proportion = topic_freq / topic_freq.sum()
    term_topic_freq = phi * topic_freq[:, None]
    term_frequency = term_topic_freq.sum(axis=0)

    # The default view: the r most salient terms.
    term_proportion = term_frequency / term_frequency.sum()
    # (topics x terms) arrays computed in place: the same numbers with fewer held at once.
    topic_given_term = phi / phi.sum(axis=0)
    kernel = topic_given_term / topic_proportion[:, None]
    np.log(kernel, out=kernel)
    kernel *= topic_given_term
    saliency = term_proportion * kernel.sum(axis=0)
    del topic_given_term, kernel
    # Ranked at the published precision: np.log differs in its last bits across CPUs.
    default = _sort_descending(round_significant(saliency))[:r]
    freq = np.floor(term_frequency[default])
    ranks = np.arange(r, 0, -1).astype(np.float64)
    tinfo = {
        "Term": vocab[default].tolist(),
        "Freq": freq.tolist(),
        "Total": freq.tolist(),
        "Category": ["Default"] * r,
        "logprob": ranks.tolist(),
        "loglift": ranks.tolist(),
    }
    shown = [default]

    # Each topic: its r most relevant terms at every lambda, in order of first appearance.
    lambdas = np.arange(0, 1 + lambda_step, lambda_step)
    log_ttd = np.log(phi)
    log_lift = phi / term_proportion
    np.log(log_lift, out=log_lift)
    tops = relevance_tops(log_ttd, log_lift, r, lambdas)  # (lambdas, topics, r)
    for topic in range(k):
        ids = _first_seen(tops[:, topic, :].ravel())
        shown.append(ids)
        tinfo["Term"] += vocab[ids].tolist()
        tinfo["Freq"] += term_topic_freq[topic, ids].tolist()
        tinfo["Total"] += term_frequency[ids].tolist()
        tinfo["Category"] += [f"Topic{topic + 1}"] * len(ids)
        tinfo["logprob"] += np.round(log_ttd[topic, ids], 4).tolist()
        tinfo["loglift"] += np.round(log_lift[topic, ids], 4).tolist()
    del log_ttd, log_lift

    # The token table: every shown term's frequency in each topic (at least 0.5, rounded),
    # as a share of the term's frequency; by term, then topic.
    ids = np.unique(np.concatenate(shown))
    freq = term_topic_freq[:, ids].T  # (terms, topics): term-major, as pandas' unstack
    term_of, topic_of = np.nonzero(freq >= 0.5)
    share = np.round(freq[term_of, topic_of]) / term_frequency[ids[term_of]]
    words = vocab[ids[term_of]]
    order = np.lexsort((topic_of, np.unique(words, return_inverse=True)[1]))  # as Python sorts str
    coordinates = js_pcoa(phi)
    return {
        "mdsDat": {
            "x": coordinates[:, 0].tolist(),
            "y": coordinates[:, 1].tolist(),
            "topics": list(range(1, k + 1)),
            "cluster": [1] * k,
            "Freq": (topic_proportion * 100).tolist(),
        },
        "tinfo": tinfo,
        "token.table": {
            "Topic": (topic_of[order] + 1).tolist(),
            "Freq": share[order].tolist(),
            "Term": words[order].tolist(),
        },
        "R": r,
        "lambda.step": lambda_step,
        "plot.opts": {"xlab": "PC1", "ylab": "PC2"},
        "topic.order": list(range(1, k + 1)),
    }


def _sort_descending(values: np.ndarray) -> np.ndarray:
    """Positions by falling value, NaN last, as pandas' ``sort_values(ascending=False)``
    (its ``nargsort``), with a stable sort so ties fall to the lower position on any CPU
    (numpy's quicksort dispatches to SIMD sorts that order ties differently)."""
    idx = np.arange(len(values))
    mask = np.isnan(values)
    kept, kept_idx = values[~mask][::-1], idx[~mask][::-1]
    return np.concatenate([kept_idx[kept.argsort(kind="stable")][::-1], idx[mask]])


def _first_seen(values: np.ndarray) -> np.ndarray:
    """The distinct values in order of first appearance (pandas' ``unique``)."""
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


def _asset_paths() -> tuple[Path, Path, Path]:
    """d3, LDAvis' script and its stylesheet, as shipped with pyLDAvis (``pyLDAvis.urls``'s
    local files), found without importing pyLDAvis, whose import loads scikit-learn."""
    from importlib.metadata import version
    from importlib.util import find_spec

    spec = find_spec("pyLDAvis")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyLDAvis is not installed; it provides the view's scripts")
    folder = Path(list(spec.submodule_search_locations)[0]) / "js"
    js_version = "3.0.0" if int(version("pyLDAvis").split(".")[0]) >= 3 else "1.0.0"
    return (
        folder / "d3.v5.min.js",
        folder / f"ldavis.v{js_version}.js",
        folder / "ldavis.v1.0.0.css",
    )


def relevance_tops(log_ttd: np.ndarray, log_lift: np.ndarray, r: int, lambdas) -> np.ndarray:
    """For each lambda and topic, the ``r`` terms of highest relevance, lambda * log_ttd +
    (1 - lambda) * log_lift, in the order of pandas' ``nlargest`` (pyLDAvis'
    ``_find_relevance``): by value, ties to the lower term position. Shape (lambdas, topics, r).

    Terms beaten on both scores by r others cannot rank at any lambda (see ``_candidates``);
    only the rest are ranked, after a partition to the r best and their ties.
    """
    r = min(r, log_ttd.shape[1])
    tops = np.empty((len(lambdas), log_ttd.shape[0], r), dtype=np.int64)
    for topic, (candidates, ca, cb) in enumerate(_candidates(log_ttd, log_lift, r)):
        for i, lam in enumerate(lambdas):
            relevance = lam * ca + (1 - lam) * cb
            if len(relevance) > r:  # rare terms (high lift) can leave many candidates
                kth = np.partition(relevance, len(relevance) - r)[len(relevance) - r]
                keep = np.flatnonzero(relevance >= kth)  # every tie at the cut stays
            else:
                keep = np.arange(len(relevance))
            order = np.lexsort((candidates[keep], -relevance[keep]))[:r]
            tops[i, topic] = candidates[keep][order]
    return tops


def _candidates(a: np.ndarray, b: np.ndarray, r: int, block: int = 256) -> list:
    """Per topic, the terms that can be among the r most relevant at some lambda in [0, 1].

    Relevance, lambda * a + (1 - lambda) * b, rises with both scores, so a term beaten on both
    scores (by more than rounding) by r other terms is beaten by them at every lambda. Terms
    are walked in falling order of ``a``, a block at a time; the terms before a block with a
    larger ``a`` keep their r largest ``b``, and a term of the block whose ``b`` is below the
    r-th of those is dropped.
    """
    out = []
    for topic in range(a.shape[0]):
        order = np.argsort(-a[topic], kind="stable")
        sa, sb = a[topic, order], b[topic, order]
        margin_a = 1e-9 * (1 + np.abs(sa))
        # Per block start: how many terms have a larger a than every term of the block.
        starts = np.arange(0, len(sa), block)
        before = np.searchsorted(-sa, -(sa[starts] + margin_a[starts]), side="left")
        keep = np.ones(len(sa), dtype=bool)
        best = np.empty(0, dtype=np.float64)  # the r largest b among the terms before
        seen = 0
        for start, upto in zip(starts.tolist(), before.tolist(), strict=True):
            if upto > seen:
                best = np.concatenate([best, sb[seen:upto]])
                if len(best) > r:
                    best = np.partition(best, len(best) - r)[len(best) - r :]
                seen = upto
            if len(best) == r:
                cut = best.min()
                part = sb[start : start + block]
                keep[start : start + block] = part >= cut - 1e-9 * (1 + abs(cut))
        kept = np.sort(order[keep])
        out.append((kept, a[topic, kept], b[topic, kept]))
    return out


# Topics compared with one topic at once in js_pcoa.
PCOA_ROWS = 4


def js_pcoa(distributions) -> np.ndarray:
    """pyLDAvis' ``js_PCoA``, with the Jensen-Shannon distances computed in numpy: scipy's
    ``pdist`` calls a Python function per pair of topics, each two ``entropy`` calls over
    every term with scipy's scalar ``rel_entr``. Here each topic is compared with later ones a
    few at a time, and KL(p || m) = sum p log p - p . log m, so only log m is taken per pair.
    Coordinates agree with pyLDAvis' to about 1e-11 (rounding, on values of about 0.1)."""
    p = np.ascontiguousarray(distributions, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    # KL(p || m) = sum p log p - sum p log m, with m = (p + q) / 2, itself a distribution.
    p_log_p = np.einsum("ij,ij->i", p, _log0(p))
    n = p.shape[0]
    dist = np.zeros((n, n), dtype=np.float64)
    for i in range(n - 1):
        # A few later topics at a time: the (topics x terms) temporaries stay small.
        for j in range(i + 1, n, PCOA_ROWS):
            others = p[j : j + PCOA_ROWS]
            log_m = _log0(0.5 * (p[i] + others))
            ab = p_log_p[i] - np.einsum("ij,j->i", log_m, p[i])  # not BLAS: see _pcoa
            ba = p_log_p[j : j + PCOA_ROWS] - np.einsum("ij,ij->i", others, log_m)
            dist[i, j : j + len(others)] = dist[j : j + len(others), i] = 0.5 * (ab + ba)
    return _pcoa(dist)


def _pcoa(dist: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Principal coordinate analysis (classical scaling), as pyLDAvis' ``_pcoa``, with the same
    result on any CPU: the double centring is elementwise (pyLDAvis multiplies matrices, which
    OpenBLAS sums in an order that depends on the CPU), the eigenvectors come from
    :func:`jacobi_eigh` (no LAPACK), and each axis points so that its largest coordinate (the
    first of equal ones) is positive: an eigenvector's sign is arbitrary."""
    squared = dist**2
    b = -(squared - squared.mean(axis=0) - squared.mean(axis=1)[:, None] + squared.mean()) / 2
    eigvals, eigvecs = jacobi_eigh(b)
    ix = np.lexsort((np.arange(len(eigvals)), -eigvals))[:n_components]
    eigvals, eigvecs = eigvals[ix], eigvecs[:, ix]
    eigvals[np.isclose(eigvals, 0)] = 0
    if np.any(eigvals < 0):
        negative = eigvals < 0
        eigvals[negative] = 0
        eigvecs[:, negative] = 0
    signs = np.sign(eigvecs[np.argmax(np.abs(eigvecs), axis=0), np.arange(eigvecs.shape[1])])
    return np.sqrt(eigvals) * eigvecs * np.where(signs == 0, 1.0, signs)


def jacobi_eigh(a: np.ndarray, sweeps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors (columns) of a small symmetric matrix by cyclic Jacobi
    rotations: only elementwise arithmetic and square roots, which IEEE 754 rounds exactly,
    so every CPU gives the same bits (LAPACK's result depends on the BLAS kernel). For the
    topic map's (topics x topics) matrix: O(n^3) per sweep, a few sweeps."""
    a = np.array(a, dtype=np.float64)
    n = a.shape[0]
    v = np.eye(n)
    tiny = 1e-17 * np.sqrt((a * a).sum())  # an off-diagonal entry below this counts as 0
    for _ in range(sweeps):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                if abs(a[p, q]) <= tiny:
                    continue
                rotated = True
                theta = (a[q, q] - a[p, p]) / (2 * a[p, q])
                t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + np.sqrt(theta * theta + 1))
                c = 1 / np.sqrt(t * t + 1)
                s = t * c
                ap, aq = a[:, p].copy(), a[:, q].copy()
                a[:, p], a[:, q] = c * ap - s * aq, s * ap + c * aq
                ap, aq = a[p, :].copy(), a[q, :].copy()
                a[p, :], a[q, :] = c * ap - s * aq, s * ap + c * aq
                a[p, q] = a[q, p] = 0.0
                vp, vq = v[:, p].copy(), v[:, q].copy()
                v[:, p], v[:, q] = c * vp - s * vq, s * vp + c * vq
        if not rotated:
            break
    return np.diagonal(a).copy(), v


def _log0(x: np.ndarray) -> np.ndarray:
    """log(x), 0 where x is 0 (those terms are multiplied by 0: 0 log 0 = 0)."""
    return np.log(x, out=np.zeros_like(x), where=x > 0)


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def _script(text: str) -> str:
    """Text safe inside a <script> element."""
    return text.replace("</", "<\\/")


def write_html(page: str, path: Path) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(page, encoding="utf-8")
