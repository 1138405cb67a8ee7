"""lda_vis.html: pyLDAvis' interactive view as one offline UTF-8 file (d3, LDAvis JS/CSS inlined).

LDAvis reserves topic 0 for "no topic selected", so the view numbers topics from 1; the page
says so and lists each view number beside the topic number of the parquet tables.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from pipeline.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

VIS_ID = "ldavis_zhtopics"
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


def preload() -> None:
    """Import what :func:`render` needs (meant for a thread, while something else runs)."""
    import pyLDAvis._prepare  # noqa: F401
    import pyLDAvis.urls  # noqa: F401


def render(
    phi: np.ndarray,
    theta: np.ndarray,
    counts: sp.csr_matrix,
    terms: list[str],
    topics: pa.Table,
) -> str:
    """The whole page for a fitted model, deterministic (fixed element id, single process)."""
    import pyLDAvis
    import pyLDAvis._prepare
    import pyLDAvis.urls

    if phi.shape[0] < 2:
        log.warning("lda: the pyLDAvis view needs at least 2 topics; lda_vis.html says so")
        return ONE_TOPIC_PAGE
    term_freq = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
    keep = term_freq > 0  # LDAvis divides by term frequency
    doc_lengths = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    phi_kept = phi[:, keep] / phi[:, keep].sum(axis=1, keepdims=True)
    with mock.patch.object(pyLDAvis._prepare, "_find_relevance_chunks", RelevanceRanker()):
        prepared = pyLDAvis.prepare(
            topic_term_dists=phi_kept,
            doc_topic_dists=theta,
            doc_lengths=doc_lengths,
            vocab=[t for t, k in zip(terms, keep, strict=True) if k],
            term_frequency=term_freq[keep],
            R=30,
            mds=js_pcoa,
            n_jobs=1,
            sort_topics=False,
            start_index=1,
        )
    rows = "\n".join(
        f"<tr><td>{r['topic'] + 1}</td><td>{r['topic']}</td><td>{html.escape(r['label'])}</td>"
        f"<td>{100 * r['prevalence']:.1f}%</td></tr>"
        for r in topics.select(["topic", "label", "prevalence"]).to_pylist()
    )
    return PAGE.format(
        css=_read(pyLDAvis.urls.LDAVIS_CSS_LOCAL),
        d3=_script(_read(pyLDAvis.urls.D3_LOCAL)),
        ldavis=_script(_read(pyLDAvis.urls.LDAVIS_LOCAL)),
        rows=rows,
        vis_id=VIS_ID,
        data=_script(json.dumps(json.loads(prepared.to_json()), ensure_ascii=False)),
    )


class RelevanceRanker:
    """pyLDAvis' ``_find_relevance_chunks`` in numpy, with the same result.

    For each lambda, the ``r`` terms of highest relevance per topic (a column per topic), in
    the order of pandas' ``nlargest``: by value, ties to the lower term position. pyLDAvis
    runs a pandas ``nlargest`` over the whole vocabulary per topic and lambda (2,020 of them
    at K = 20). Terms beaten on both scores by r others cannot rank at any lambda (see
    ``_candidates``); only the rest are ranked, after a partition to the r best and their
    ties. pyLDAvis calls this once per lambda with the same tables, so those candidates are
    found once per tables.
    """

    def __init__(self) -> None:
        self._tables: tuple | None = None
        self._candidates: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __call__(self, log_ttd, log_lift, r: int, lambdas) -> pd.DataFrame:
        import pandas as pd

        r = min(r, log_ttd.shape[1])
        key = (log_ttd, log_lift, r)
        if self._tables is None or any(x is not y for x, y in zip(self._tables, key, strict=True)):
            self._tables = key
            self._candidates = _candidates(log_ttd.to_numpy(), log_lift.to_numpy(), r)
        tops = np.empty((len(lambdas), len(self._candidates), r), dtype=np.int64)
        for topic, (candidates, ca, cb) in enumerate(self._candidates):
            for i, lam in enumerate(lambdas):
                relevance = lam * ca + (1 - lam) * cb
                if len(relevance) > r:  # rare terms (high lift) can leave many candidates
                    kth = np.partition(relevance, len(relevance) - r)[len(relevance) - r]
                    keep = np.flatnonzero(relevance >= kth)  # every tie at the cut stays
                else:
                    keep = np.arange(len(relevance))
                order = np.lexsort((candidates[keep], -relevance[keep]))[:r]
                tops[i, topic] = candidates[keep][order]
        return pd.concat([pd.DataFrame(top.T, columns=log_ttd.index) for top in tops])


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


def js_pcoa(distributions) -> np.ndarray:
    """pyLDAvis' ``js_PCoA``, with the Jensen-Shannon distances computed in numpy: scipy's
    ``pdist`` calls a Python function per pair of topics, each two ``entropy`` calls over
    every term with scipy's scalar ``rel_entr``. Here each topic is compared with all later
    ones at once, and KL(p || m) = sum p log p - p . log m, so only log m is taken per pair.
    Coordinates agree with pyLDAvis' to about 1e-11 (rounding, on values of about 0.1)."""
    from pyLDAvis._prepare import _pcoa

    p = np.ascontiguousarray(distributions, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    # KL(p || m) = sum p log p - sum p log m, with m = (p + q) / 2, itself a distribution.
    p_log_p = np.einsum("ij,ij->i", p, _log0(p))
    n = p.shape[0]
    dist = np.zeros((n, n), dtype=np.float64)
    for i in range(n - 1):
        others = p[i + 1 :]
        log_m = _log0(0.5 * (p[i] + others))
        ab = p_log_p[i] - log_m @ p[i]
        ba = p_log_p[i + 1 :] - np.einsum("ij,ij->i", others, log_m)
        dist[i, i + 1 :] = dist[i + 1 :, i] = 0.5 * (ab + ba)
    return _pcoa(dist)


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
