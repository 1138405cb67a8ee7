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
            mds="pcoa",
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
    at K = 20). Relevance lies between a term's two scores, so a term whose larger score is
    below the r-th largest smaller score is beaten by r terms at every lambda; only the other
    terms are ranked, after a partition to the r best and their ties. pyLDAvis calls this once
    per lambda with the same tables, so those candidates are found once per tables.
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


def _candidates(a: np.ndarray, b: np.ndarray, r: int) -> list:
    """Per topic, the terms that can be among the r most relevant at some lambda."""
    out = []
    for topic in range(a.shape[0]):
        low = np.minimum(a[topic], b[topic])
        cut = np.partition(low, len(low) - r)[len(low) - r]
        # The margin keeps terms that rounding in lam * a + (1 - lam) * b could lift.
        kept = np.flatnonzero(np.maximum(a[topic], b[topic]) >= cut - 1e-9 * (1 + abs(cut)))
        out.append((kept, a[topic, kept], b[topic, kept]))
    return out


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def _script(text: str) -> str:
    """Text safe inside a <script> element."""
    return text.replace("</", "<\\/")


def write_html(page: str, path: Path) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(page, encoding="utf-8")
