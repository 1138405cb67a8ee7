import json
import re

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from pipeline.io import Paths, read_table
from pipeline.schemas import TOPICS
from pipeline.topics.ldavis import (
    ONE_TOPIC_PAGE,
    VIS_ID,
    _asset_paths,
    js_pcoa,
    prepare,
    relevance_tops,
    render,
)


def test_view_is_offline_utf8_and_numbered_like_the_tables(sample_run: Paths):
    page = (sample_run.processed / "lda_vis.html").read_bytes().decode("utf-8")
    # No external scripts, stylesheets or imports: d3, LDAvis and its CSS are inline.
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page, re.I)
    assert not re.search(r"LDAvis_load_lib|getScript|require\.config", page)
    assert '<meta charset="utf-8">' in page
    assert "function LDAvis" in page or "LDAvis = function" in page
    data = json.loads(re.search(rf"var {VIS_ID}_data = (\{{.*?\}});\n", page, re.S).group(1))
    topics = read_table(sample_run.table("topics"), TOPICS)
    k = topics.num_rows
    assert data["topic.order"] == list(range(1, k + 1))  # not re-sorted
    assert data["mdsDat"]["topics"] == list(range(1, k + 1))
    assert "topic N in this view is topic N&minus;1" in page
    for row in topics.to_pylist():
        assert f"<td>{row['topic'] + 1}</td><td>{row['topic']}</td>" in page


def test_one_topic_gives_a_plain_page():
    counts = sp.csr_matrix(np.ones((3, 4)))
    topics = pa.table({"topic": [0], "label": ["a"], "prevalence": [1.0]})
    assert render(np.full((1, 4), 0.25), np.ones((3, 1)), counts, list("abcd"), topics) == (
        ONE_TOPIC_PAGE
    )


def _pyldavis_tops(log_ttd, log_lift, r, lambdas) -> np.ndarray:
    """pyLDAvis' own ranking (pandas ``nlargest`` per topic and lambda), as an array."""
    import pandas as pd
    import pyLDAvis._prepare

    chunks = pyLDAvis._prepare._find_relevance_chunks(
        pd.DataFrame(log_ttd), pd.DataFrame(log_lift), r, lambdas
    )
    return chunks.to_numpy().reshape(len(lambdas), r, log_ttd.shape[0]).transpose(0, 2, 1)


def test_relevance_ranking_equals_pyldavis_own_with_ties():
    """The numpy relevance ranking gives pyLDAvis' own result, tie order included."""
    rng = np.random.default_rng(5)
    # Values rounded to a coarse grid, so many terms tie at every cut.
    log_ttd = np.round(rng.normal(size=(4, 300)), 1)
    log_lift = np.round(rng.normal(size=(4, 300)), 1)
    lambdas = np.arange(0, 1.01, 0.1)
    for other in (log_lift, -log_lift):
        np.testing.assert_array_equal(
            relevance_tops(log_ttd, other, 30, lambdas),
            _pyldavis_tops(log_ttd, other, 30, lambdas),
        )


def test_relevance_ranking_equals_pyldavis_on_topic_like_scores():
    """Scores shaped like a fitted model's (log p(w|k) and log lift, many rare terms with a
    high lift): the pruned candidates still give pyLDAvis' ranking at every lambda."""
    rng = np.random.default_rng(11)
    phi = rng.dirichlet(np.full(4000, 0.02), size=6)
    freq = np.maximum(phi.mean(axis=0) + rng.dirichlet(np.full(4000, 0.02)) * 0.1, 1e-12)
    freq /= freq.sum()
    log_ttd = np.log(np.maximum(phi, 1e-300))
    log_lift = np.log(np.maximum(phi, 1e-300) / freq)
    lambdas = np.arange(0, 1.01, 0.01)
    np.testing.assert_array_equal(
        relevance_tops(log_ttd, log_lift, 30, lambdas),
        _pyldavis_tops(log_ttd, log_lift, 30, lambdas),
    )


def _same_view_data(ours, theirs, path=""):
    """Equal structure, strings and integers; floats equal to 1e-12 (sums in another order)."""
    if isinstance(ours, dict):
        assert list(ours) == list(theirs), path
        for key in ours:
            _same_view_data(ours[key], theirs[key], f"{path}/{key}")
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), path
        for a, b in zip(ours, theirs, strict=True):
            _same_view_data(a, b, path)
    elif isinstance(ours, float) or isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12), path
    else:
        assert ours == theirs, path


def test_view_data_equals_pyldavis_prepare():
    """prepare gives pyLDAvis.prepare(...).to_dict(): the same terms in the same orders
    (default view, every topic, token table) and the same numbers."""
    import pyLDAvis

    rng = np.random.default_rng(2)
    for k, v, d in [(2, 40, 10), (5, 400, 60), (12, 3000, 300)]:
        phi = rng.dirichlet(np.full(v, 0.05), size=k)
        phi = np.maximum(phi, 1e-12)
        phi /= phi.sum(axis=1, keepdims=True)
        theta = rng.dirichlet(np.full(k, 0.3), size=d)
        lengths = rng.integers(5, 300, d).astype(np.float64)
        vocab = np.asarray([f"词{i}" for i in rng.permutation(v)], dtype=object)
        theirs = pyLDAvis.prepare(
            topic_term_dists=phi,
            doc_topic_dists=theta,
            doc_lengths=lengths,
            vocab=list(vocab),
            term_frequency=np.ones(v),  # pyLDAvis recomputes it from the model
            R=30,
            mds=js_pcoa,
            n_jobs=1,
            sort_topics=False,
            start_index=1,
        )
        _same_view_data(prepare(phi, theta, lengths, vocab), json.loads(theirs.to_json()))


def test_view_scripts_are_pyldavis_own_files():
    import pyLDAvis.urls

    assert [str(p) for p in _asset_paths()] == [
        pyLDAvis.urls.D3_LOCAL,
        pyLDAvis.urls.LDAVIS_LOCAL,
        pyLDAvis.urls.LDAVIS_CSS_LOCAL,
    ]


def test_topic_map_coordinates_match_pyldavis():
    import pandas as pd
    import pyLDAvis._prepare

    rng = np.random.default_rng(3)
    for k in (2, 3, 9):
        phi = rng.dirichlet(np.full(2000, 0.05), size=k)
        phi[:, rng.integers(0, 2000, 40)] = 0.0  # terms a topic never uses
        phi /= phi.sum(axis=1, keepdims=True)
        theirs = pyLDAvis._prepare.js_PCoA(pd.DataFrame(phi))
        ours = js_pcoa(pd.DataFrame(phi))
        # An axis' sign is arbitrary: ours points each axis at its largest coordinate.
        signs = np.sign((ours * theirs).sum(axis=0))
        np.testing.assert_allclose(ours, theirs * signs, rtol=0, atol=1e-10)
        top = np.abs(ours).argmax(axis=0)
        assert (ours[top, [0, 1]] >= 0).all()
