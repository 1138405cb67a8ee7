import json
import re

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from pipeline.io import Paths, read_table
from pipeline.ldavis import ONE_TOPIC_PAGE, VIS_ID, RelevanceRanker, js_pcoa, render
from pipeline.schemas import TOPICS


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


def test_relevance_chunks_equal_pyldavis_own_with_ties():
    """The numpy relevance ranking gives pyLDAvis' own result, tie order included."""
    import pandas as pd
    import pyLDAvis._prepare

    rng = np.random.default_rng(5)
    # Values rounded to a coarse grid, so many terms tie at every cut.
    log_ttd = pd.DataFrame(np.round(rng.normal(size=(4, 300)), 1), index=[3, 1, 0, 2])
    log_lift = pd.DataFrame(np.round(rng.normal(size=(4, 300)), 1), index=[3, 1, 0, 2])
    lambdas = np.arange(0, 1.01, 0.1)
    theirs = pyLDAvis._prepare._find_relevance_chunks(log_ttd, log_lift, 30, lambdas)
    ranker = RelevanceRanker()
    ours = ranker(log_ttd, log_lift, 30, lambdas)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
    # As pyLDAvis calls it: once per lambda, the same tables (candidates found once).
    one_by_one = pd.concat([ranker(log_ttd, log_lift, 30, [lam]) for lam in lambdas])
    pd.testing.assert_frame_equal(one_by_one, theirs, check_dtype=False)
    other = log_lift * -1.0
    pd.testing.assert_frame_equal(
        ranker(log_ttd, other, 30, lambdas),
        pyLDAvis._prepare._find_relevance_chunks(log_ttd, other, 30, lambdas),
        check_dtype=False,
    )


def test_relevance_ranking_equals_pyldavis_on_topic_like_scores():
    """Scores shaped like a fitted model's (log p(w|k) and log lift, many rare terms with a
    high lift): the pruned candidates still give pyLDAvis' ranking at every lambda."""
    import pandas as pd
    import pyLDAvis._prepare

    rng = np.random.default_rng(11)
    phi = rng.dirichlet(np.full(4000, 0.02), size=6)
    freq = np.maximum(phi.mean(axis=0) + rng.dirichlet(np.full(4000, 0.02)) * 0.1, 1e-12)
    freq /= freq.sum()
    log_ttd = pd.DataFrame(np.log(np.maximum(phi, 1e-300)))
    log_lift = pd.DataFrame(np.log(np.maximum(phi, 1e-300) / freq))
    lambdas = np.arange(0, 1.01, 0.01)
    theirs = pyLDAvis._prepare._find_relevance_chunks(log_ttd, log_lift, 30, lambdas)
    pd.testing.assert_frame_equal(
        RelevanceRanker()(log_ttd, log_lift, 30, lambdas), theirs, check_dtype=False
    )


def test_topic_map_coordinates_match_pyldavis():
    import pandas as pd
    import pyLDAvis._prepare

    rng = np.random.default_rng(3)
    for k in (2, 3, 9):
        phi = rng.dirichlet(np.full(2000, 0.05), size=k)
        phi[:, rng.integers(0, 2000, 40)] = 0.0  # terms a topic never uses
        phi /= phi.sum(axis=1, keepdims=True)
        theirs = pyLDAvis._prepare.js_PCoA(pd.DataFrame(phi))
        np.testing.assert_allclose(js_pcoa(pd.DataFrame(phi)), theirs, rtol=0, atol=1e-10)
