"""Stage explorer: the page's data on small tables, then the page on the sample run in a real
headless Chromium (no request anywhere, no console error), and a hostile corpus rendered as text."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from pipeline import explorer
from pipeline.config import ConfigError, ExplorerParams, params_from_dict
from pipeline.io import Paths
from tests.browser import console_errors, network_requests

# ---- the data, without a browser ----


def test_embedded_json_cannot_close_the_script_element():
    data = {"t": "</script><script>alert(1)</script>&\u2028\u2029<!--"}
    text = explorer.embed_json(data)
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == data


def test_each_content_word_gets_the_topic_of_largest_phi_times_theta():
    phi = np.array([[0.6, 0.1, 0.3], [0.1, 0.8, 0.1]])  # topics x terms
    term_ids = {"妇女": 0, "权益": 1, "发展": 2}
    shares = np.array([0.7, 0.3])
    pieces = explorer.token_segments(
        "保障妇女权益,推动发展_x。", ["妇女", "权益", "发展", "未知词"], term_ids, phi, shares
    )
    # 权益: 0.1*0.7 < 0.8*0.3 -> topic 1; 发展: 0.3*0.7 > 0.1*0.3 -> topic 0; unknown: skipped
    assert pieces == [
        ["保障", -1],
        ["妇女", 0],
        ["权益", 1],
        [",推动", -1],
        ["发展", 0],
        ["_x。", -1],
    ]
    assert "".join(p for p, _ in pieces) == "保障妇女权益,推动发展_x。"


def test_candidate_terms_hold_the_most_probable_with_their_exact_rank():
    rng = np.random.default_rng(3)
    phi = rng.dirichlet(np.ones(50), size=3)
    freq = rng.integers(1, 100, size=50).astype(float)
    params = ExplorerParams(topic_terms=5, relevance_terms=2)
    cands = explorer.topic_terms(phi, freq, params)
    for k, rows in enumerate(cands):
        best = np.argsort(-phi[k])[:5].tolist()
        assert [r[0] for r in rows[:5]] == best
        for term, p, rank in rows:
            assert p == phi[k, term]
            assert rank == 1 + int((phi[k] > phi[k, term]).sum())
        lift = np.argmax(np.log(phi[k]) - np.log(freq / freq.sum()))
        assert int(lift) in {r[0] for r in rows}  # relevance at lambda = 0


def test_relevance_from_the_pool_is_the_exact_top_over_all_terms():
    rng = np.random.default_rng(7)
    v = 5000
    log_phi = np.log(rng.dirichlet(np.full(v, 0.1)) + 1e-12)
    lift = log_phi - np.log(rng.dirichlet(np.full(v, 0.5)) + 1e-12)
    lift[[10, 11]] = lift.max() + 1  # a tie at the top
    pool = (explorer._top(log_phi, 200), explorer._top(lift, 200))
    for lam in np.linspace(0, 1, 21):
        exact = explorer._top(lam * log_phi + (1 - lam) * lift, 5)
        assert np.array_equal(explorer._relevance_top(log_phi, lift, lam, 5, pool), exact)
    tiny = (explorer._top(log_phi, 5), explorer._top(lift, 5))  # too small: falls back
    exact = explorer._top(0.5 * log_phi + 0.5 * lift, 5)
    assert np.array_equal(explorer._relevance_top(log_phi, lift, 0.5, 5, tiny), exact)


def test_the_sample_is_bounded_seeded_and_covers_topics_and_groups():
    rng = np.random.default_rng(0)
    theta = rng.dirichlet(np.ones(4), size=500)
    codes = [np.repeat(np.arange(10), 50)]
    params = ExplorerParams(docs_per_topic=3, docs_per_group=2, random_docs=7, random_state=5)
    rows = explorer.sample_documents(theta, codes, params)
    assert len(rows) <= 4 * 3 + 10 * 2 + 7
    assert list(rows) == sorted(set(rows.tolist()))
    for k in range(4):
        assert int(np.argmax(theta[:, k])) in rows
    assert set(codes[0][rows]) == set(range(10))
    assert np.array_equal(rows, explorer.sample_documents(theta, codes, params))
    other = explorer.sample_documents(
        theta, codes, ExplorerParams(**{**vars(params), "random_state": 6})
    )
    assert not np.array_equal(rows, other)


def test_many_groups_keep_the_largest_and_merge_the_rest():
    documents = pa.table(
        {"doc_id": ["a", "b", "c", "d", "e"], "speaker": ["x", "x", "y", "z", None]}
    )
    name, groups, codes = explorer.group_codes(documents, ["e", "d", "c", "b", "a"], "speaker", 2)
    assert name == "speaker"
    assert groups == ["(missing)", "x", "(other)"]  # sizes: x 2, then ties by name
    assert [groups[c] for c in codes] == ["(missing)", "(other)", "(other)", "x", "x"]
    with pytest.raises(explorer.ExplorerError, match="'nope' is not a column"):
        explorer.group_codes(documents, ["a"], "nope", 2)


@pytest.mark.parametrize(
    "key, value",
    [("max_groups", 0), ("random_docs", -1), ("text_chars", 0), ("filter_columns", ["a", "a"])],
)
def test_bad_settings_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"explorer.{key}"):
        params_from_dict({"explorer": {key: value}})


# ---- the page on the sample run ----


@pytest.fixture(scope="session")
def page(sample_run: Paths, params) -> Path:
    """explorer.html of the sample run: every run writes it (the stage is in the runner)."""
    path = sample_run.processed / explorer.FILENAME
    assert path.is_file(), "zhtopics run did not write explorer.html"
    return path


def _data(path: Path) -> dict:
    text = path.read_text("utf-8")
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


def test_the_page_is_one_file_with_the_run_and_the_same_bytes_again(
    page, sample_run, params, tmp_path
):
    text = page.read_text("utf-8")
    assert not re.search(r'(src|href)="(?!#|data:)', text)  # no other file, no URL
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    data = _data(page)
    topics = pq.read_table(sample_run.table("topics")).to_pylist()
    assert [t["topic"] for t in data["topics"]] == [t["topic"] for t in topics]
    assert [t["label"] for t in data["topics"]] == [t["label"] for t in topics]
    assert data["meta"]["documents"] == len(
        set(pq.read_table(sample_run.table("doc_topics")).column("doc_id").to_pylist())
    )
    assert page.stat().st_size < 25_000_000
    again = Paths.under(sample_run.raw, tmp_path)
    for name in (
        "topics",
        "vocabulary",
        "doc_topics",
        "documents",
        "doc_terms",
        "clean",
        "tokens",
        "keywords",
        "topic_prevalence",
    ):
        shutil.copy(sample_run.table(name), again.table(name))
    shutil.copytree(sample_run.models, again.models)
    shutil.copytree(sample_run.metrics, again.metrics)
    explorer.main(params, again)
    assert (again.processed / explorer.FILENAME).read_bytes() == page.read_bytes()


def test_the_embedded_font_has_every_character_the_texts_use(page):
    from fontTools.ttLib import TTFont

    text = page.read_text("utf-8")
    encoded = re.search(r"url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)", text).group(1)
    font = TTFont(io.BytesIO(base64.b64decode(encoded)))
    cmap = font.getBestCmap()
    data = _data(page)
    used = {c for d in data["docs"] for piece, _ in d["segments"] for c in piece if c.strip()}
    used |= {c for t in data["topics"] for c in t["label"]}
    assert used and all(ord(c) in cmap for c in used)
    assert len(cmap) < 20_000  # a subset, not the whole font (65,000 glyphs)


def test_a_run_without_its_model_or_with_another_model_is_refused(sample_run, params, tmp_path):
    out = Paths.under(sample_run.raw, tmp_path)
    for name in ("topics", "vocabulary", "doc_topics", "documents", "doc_terms"):
        shutil.copy(sample_run.table(name), out.table(name))
    shutil.copytree(sample_run.metrics, out.metrics)
    with pytest.raises(FileNotFoundError, match="topic_word.npy: no saved model"):
        explorer.load_inputs(out)
    (out.models / "lda").mkdir(parents=True)
    phi = np.load(sample_run.models / "lda" / "topic_word.npy")
    np.save(out.models / "lda" / "topic_word.npy", phi[:-1])  # one topic fewer
    inputs = explorer.load_inputs(out)
    with pytest.raises(explorer.ExplorerError, match="re-run the lda stage"):
        explorer.build_data(inputs, {}, {}, {}, params.explorer)


def test_beyond_max_shares_the_sample_and_a_random_choice_carry_the_mixes(sample_run):
    inputs = explorer.load_inputs(sample_run)
    k = inputs.phi.shape[0]  # the sample run's K (lda_sweep's choice)
    params = ExplorerParams(docs_per_topic=2, docs_per_group=1, random_docs=0, max_shares=k * 30)
    full = explorer.prepare(
        inputs, ExplorerParams(docs_per_topic=2, docs_per_group=1, random_docs=0)
    )
    capped = explorer.prepare(inputs, params)
    assert len(full.doc_ids) == full.modelled == capped.modelled > 30
    assert len(capped.doc_ids) == len(capped.theta) == 30
    assert [capped.doc_ids[i] for i in capped.sample] == [full.doc_ids[i] for i in full.sample]
    rows = [full.doc_ids.index(d) for d in capped.doc_ids]
    assert rows == sorted(rows) and np.array_equal(capped.theta, full.theta[rows])
    data = explorer.build_data(inputs, {}, {}, {}, params, capped)
    assert (data["meta"]["documents"], data["meta"]["modelled"]) == (30, full.modelled)
    assert len(base64.b64decode(data["theta"])) == 30 * k * 2


# ---- in the browser ----


def _open(driver, path: Path) -> None:
    network_requests(driver)
    console_errors(driver)
    driver.get(path.as_uri())
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
    )


def _no_traffic(driver, path: Path) -> None:
    requests = [
        u for u in network_requests(driver) if u != path.as_uri() and not u.startswith("data:")
    ]
    assert requests == []
    assert console_errors(driver) == []


def _go(driver, hash_: str) -> None:
    driver.execute_script("location.hash = arguments[0]", hash_)


def test_topics_list_sorts_and_numbers_match_the_tables(chromium, page, sample_run):
    _open(chromium, page)
    assert chromium.title == "zhtopics explorer"
    rows = chromium.find_elements(By.CSS_SELECTOR, "#topics-table tr[data-topic]")
    topics = pq.read_table(sample_run.table("topics")).to_pylist()
    assert [int(r.get_attribute("data-topic")) for r in rows] == [t["topic"] for t in topics]
    chromium.find_element(By.CSS_SELECTOR, 'th[data-key="prevalence"]').click()
    rows = chromium.find_elements(By.CSS_SELECTOR, "#topics-table tr[data-topic]")
    by_prevalence = sorted(topics, key=lambda t: (-t["prevalence"], t["topic"]))
    assert [int(r.get_attribute("data-topic")) for r in rows] == [t["topic"] for t in by_prevalence]
    first = rows[0].find_element(By.CSS_SELECTOR, "td.prevalence").text
    assert first == f"{100 * by_prevalence[0]['prevalence']:.1f}%"
    assert chromium.execute_script(
        "return [...document.fonts]"
        ".some(f => f.family.includes('zhtopics CJK') && f.status === 'loaded')"
    )
    _no_traffic(chromium, page)


def test_a_topic_its_slider_documents_and_trend(chromium, page, sample_run):
    _open(chromium, page)
    link = chromium.find_element(By.CSS_SELECTOR, '#topics-table tr[data-topic="2"] a')
    link.click()
    title = chromium.find_element(By.ID, "topic-title").text
    assert title.startswith("Topic 2: ")

    def terms() -> list[str]:
        cells = "#topic-terms tr.term-row td:nth-child(2)"
        return [e.text for e in chromium.find_elements(By.CSS_SELECTOR, cells)]

    at_06 = terms()
    slider = chromium.find_element(By.ID, "lambda")
    slider.send_keys(Keys.END)  # lambda = 1: by probability, as topic_terms.parquet
    assert chromium.find_element(By.ID, "lambda-value").text == "1.00"
    by_prob = pq.read_table(sample_run.table("topic_terms")).to_pylist()
    expected = [r["term"] for r in sorted(by_prob, key=lambda r: r["rank"]) if r["topic"] == 2]
    assert terms()[: len(expected)] == expected
    slider.send_keys(Keys.HOME)  # lambda = 0: lift
    assert chromium.find_element(By.ID, "lambda-value").text == "0.00"
    assert terms() != at_06 and terms()[:5] != expected[:5]
    docs = chromium.find_elements(By.CSS_SELECTOR, "#topic-docs .doc-item")
    assert docs and docs[0].find_elements(By.TAG_NAME, "mark")
    assert chromium.find_elements(By.CSS_SELECTOR, "svg.trend polygon.band")
    _no_traffic(chromium, page)


def test_a_chinese_word_search_finds_topics_documents_and_contexts(chromium, page):
    _open(chromium, page)
    box = chromium.find_element(By.ID, "search")
    box.send_keys("妇女权益")
    box.send_keys(Keys.ENTER)
    WebDriverWait(chromium, 5).until(lambda d: d.find_elements(By.ID, "word-title"))
    assert chromium.find_element(By.ID, "word-title").text == "“妇女权益”"
    assert chromium.find_elements(By.CSS_SELECTOR, "#word-topics tr[data-topic]")
    assert chromium.find_elements(By.CSS_SELECTOR, "#word-docs tr td a")
    hits = chromium.find_elements(By.CSS_SELECTOR, "#concordance td.hit")
    assert hits and {h.text for h in hits} == {"妇女权益"}
    _no_traffic(chromium, page)


def test_a_document_shows_its_mix_keywords_and_coloured_words(chromium, page, sample_run):
    _open(chromium, page)
    data = _data(page)
    doc = data["docs"][0]
    _go(chromium, "doc/" + doc["id"])
    WebDriverWait(chromium, 5).until(lambda d: d.find_elements(By.ID, "doc-text"))
    segments = chromium.find_elements(By.CSS_SELECTOR, "#doc-mix span")
    assert [int(s.get_attribute("data-topic")) for s in segments] == [m[0] for m in doc["mix"]]
    words = chromium.find_elements(By.CSS_SELECTOR, "#doc-text span.tok")
    assert [w.text for w in words] == [p for p, t in doc["segments"] if t >= 0]
    keywords = pq.read_table(sample_run.table("keywords")).to_pylist()
    mine = [
        k["term"] for k in sorted(keywords, key=lambda k: k["rank"]) if k["doc_id"] == doc["id"]
    ]
    shown = [a.text for a in chromium.find_elements(By.CSS_SELECTOR, "#doc-keywords a")]
    assert shown == mine
    _no_traffic(chromium, page)


@pytest.fixture(scope="session")
def grouped_page(sample_run: Paths, params, tmp_path_factory) -> Path:
    """The sample run with two sources and two years, alternating by document (the sample
    itself has one of each), and without topic_prevalence: the page computes every number."""
    out = Paths.under(sample_run.raw, tmp_path_factory.mktemp("grouped"))
    for name in ("topics", "vocabulary", "doc_terms", "doc_topics", "clean", "tokens", "keywords"):
        shutil.copy(sample_run.table(name), out.table(name))
    shutil.copytree(sample_run.models, out.models)
    shutil.copytree(sample_run.metrics, out.metrics)
    documents = pq.read_table(sample_run.table("documents"))
    n = documents.num_rows
    sources = pa.array(["a.txt" if i % 2 else "b.txt" for i in range(n)])
    dates = pa.array([date(2021 + i % 2, 1, 1) for i in range(n)], pa.date32())
    documents = documents.set_column(documents.schema.get_field_index("source"), "source", sources)
    documents = documents.set_column(documents.schema.get_field_index("date"), "date", dates)
    pq.write_table(documents, out.table("documents"))
    top = pq.read_table(sample_run.table("topic_terms")).to_pylist()[0]["term"]  # topic 0's
    keyness = {
        "column": ["source"] * 3,
        "group": ["a.txt", "a.txt", "b.txt"],
        "rank": pa.array([1, 2, 1], pa.int32()),
        "term": [top, "词甲", "词乙"],
        "g2": [12.5, 8.0, 3.0],
        "p": [0.001, 0.004, 0.08],
        "p_adjusted": [0.002, 0.008, 0.16],
        "significant": [True, True, False],
        "log_ratio": [1.5, 1.0, 0.4],
        "freq_group": pa.array([10, 6, 3], pa.int64()),
        "freq_rest": pa.array([1, 0, 2], pa.int64()),
    }
    pq.write_table(pa.table(keyness), out.table("keyness"))
    contrasts = {
        "column": ["source", "source"],
        "group": ["a.txt", "b.txt"],
        "topic": pa.array([0, 0], pa.int32()),
        "n_docs": pa.array([36, 37], pa.int64()),
        "mean_group": [0.2, 0.1],
        "mean_rest": [0.1, 0.2],
        "diff": [0.081, -0.081],
        "ci_low": [0.05, -0.11],
        "ci_high": [0.11, -0.05],
    }
    pq.write_table(pa.table(contrasts), out.table("topic_contrasts"))
    explorer.main(params, out)
    return out.processed / explorer.FILENAME


def test_group_comparisons_show_in_the_topic_view(chromium, grouped_page, sample_run):
    _open(chromium, grouped_page)
    _go(chromium, "topic/0")
    rows = chromium.find_elements(By.CSS_SELECTOR, "#topic-contrasts tr")
    assert [r.text for r in rows[1:]] == [
        "source a.txt 36 +8.1 (+5.0 to +11.0)",
        "source b.txt 37 -8.1 (-11.0 to -5.0)",
    ]
    top = pq.read_table(sample_run.table("topic_terms")).to_pylist()[0]["term"]
    keyness = chromium.find_elements(By.CSS_SELECTOR, "#keyness tr")
    assert [r.text for r in keyness[1:]] == [f"source a.txt {top} 词甲", "source b.txt 词乙(n.s.)"]
    assert [m.text for m in chromium.find_elements(By.CSS_SELECTOR, "#keyness mark")] == [top]
    _go(chromium, "topic/1")
    assert not chromium.find_elements(By.ID, "topic-contrasts")
    _no_traffic(chromium, grouped_page)


def _token_weighted(paths_dir: Path, doc_ids: set[str]) -> dict[int, float]:
    """Each topic's share of the tokens of ``doc_ids``, from the tables."""
    counts = (
        pq.read_table(paths_dir / "doc_terms.parquet")
        .group_by("doc_id")
        .aggregate([("count", "sum")])
    )
    ids, sums_ = counts.column("doc_id").to_pylist(), counts.column("count_sum").to_pylist()
    length = dict(zip(ids, sums_, strict=True))
    sums: dict[int, float] = {}
    for row in pq.read_table(paths_dir / "doc_topics.parquet").to_pylist():
        if row["doc_id"] in doc_ids:
            sums[row["topic"]] = sums.get(row["topic"], 0.0) + row["weight"] * length[row["doc_id"]]
    total = sum(length[d] for d in doc_ids)
    return {k: v / total for k, v in sums.items()}


def test_a_group_filter_updates_the_numbers(chromium, grouped_page):
    _open(chromium, grouped_page)
    status = chromium.find_element(By.ID, "status")
    total = int(status.get_attribute("data-active"))

    def prevalence() -> dict[int, str]:
        rows = chromium.find_elements(By.CSS_SELECTOR, "#topics-table tr[data-topic]")
        return {
            int(r.get_attribute("data-topic")): r.find_element(
                By.CSS_SELECTOR, "td.prevalence"
            ).text
            for r in rows
        }

    before = prevalence()
    # sort by trend: the change of mean share from 2021 to 2022, largest first
    chromium.find_element(By.CSS_SELECTOR, 'th[data-key="trend"]').click()
    rows = chromium.find_elements(By.CSS_SELECTOR, "#topics-table tr[data-topic]")
    theta = pq.read_table(grouped_page.parent / "doc_topics.parquet").to_pylist()
    year = {
        d["doc_id"]: d["date"].year
        for d in pq.read_table(grouped_page.parent / "documents.parquet").to_pylist()
    }
    means = {}
    for r in theta:
        means.setdefault((r["topic"], year[r["doc_id"]]), []).append(r["weight"])
    change = {k: np.mean(means[k, 2022]) - np.mean(means[k, 2021]) for k, _ in means}
    expected = sorted(change, key=lambda k: (-change[k], k))
    assert [int(r.get_attribute("data-topic")) for r in rows] == expected
    chromium.find_element(By.CSS_SELECTOR, 'th[data-key="topic"]').click()
    Select(chromium.find_element(By.ID, "filter-source")).select_by_visible_text("a.txt")
    documents = pq.read_table(grouped_page.parent / "documents.parquet").to_pylist()
    modelled = set(
        pq.read_table(grouped_page.parent / "doc_topics.parquet").column("doc_id").to_pylist()
    )
    in_a = {d["doc_id"] for d in documents if d["source"] == "a.txt"} & modelled
    active = int(chromium.find_element(By.ID, "status").get_attribute("data-active"))
    assert active == len(in_a) < total
    assert "Filter: source = a.txt" in chromium.find_element(By.ID, "status").text
    expected = _token_weighted(grouped_page.parent, in_a)
    shown = prevalence()
    assert shown == {k: f"{100 * v:.1f}%" for k, v in expected.items()}
    assert shown != before
    # a year range on top: the two filters together leave no document (a.txt is 2022 only)
    Select(chromium.find_element(By.ID, "filter-year-to")).select_by_visible_text("2021")
    assert int(chromium.find_element(By.ID, "status").get_attribute("data-active")) == 0
    chromium.find_element(By.ID, "filter-reset").click()
    assert int(chromium.find_element(By.ID, "status").get_attribute("data-active")) == total
    assert prevalence() == before
    _go(chromium, "topic/0")
    bands = chromium.find_elements(By.CSS_SELECTOR, "svg.trend polygon.band")
    assert bands and len(chromium.find_elements(By.CSS_SELECTOR, "svg.trend circle")) == 2
    assert len(chromium.find_elements(By.CSS_SELECTOR, "table.groups tr")) == 1 + 2
    _no_traffic(chromium, grouped_page)


def test_the_harness_sees_requests_and_console_errors(chromium, tmp_path):
    """The "no traffic" checks above can fail: a page that fetches and logs is caught."""
    page = tmp_path / "leaky.html"
    page.write_text(
        '<!DOCTYPE html><title>t</title><img src="http://127.0.0.1:9/x.png">'
        "<script>console.error('boom')</script>",
        "utf-8",
    )
    network_requests(chromium)
    console_errors(chromium)
    chromium.get(page.as_uri())
    assert "http://127.0.0.1:9/x.png" in network_requests(chromium)
    assert any("boom" in m for m in console_errors(chromium))


# ---- a hostile corpus ----

PAYLOADS = {
    "title": "<script>window.__xss = 1</script>标题</script>",
    "link": "javascript:window.__xss = 2",
    "note": '<img src=x onerror="window.__xss = 3">{{SCRIPT}}',
    "text": "</script><script>window.__xss = 4</script><img src=x onerror=window.__xss=5>",
    "label": '<b onmouseover="window.__xss = 6">标签</b>',
}


@pytest.fixture(scope="session")
def hostile_page(sample_run: Paths, params, tmp_path_factory) -> tuple[Path, str]:
    """The sample run's tables with markup in titles, metadata, texts and a topic label."""
    out = Paths.under(sample_run.raw, tmp_path_factory.mktemp("hostile"))
    for name in ("vocabulary", "doc_terms", "tokens", "keywords", "topic_prevalence"):
        shutil.copy(sample_run.table(name), out.table(name))
    shutil.copytree(sample_run.models, out.models)
    shutil.copytree(sample_run.metrics, out.metrics)
    documents = pq.read_table(sample_run.table("documents"))
    n = documents.num_rows
    documents = documents.set_column(
        documents.schema.get_field_index("title"), "title", pa.array([PAYLOADS["title"]] * n)
    )
    documents = documents.append_column("link", pa.array([PAYLOADS["link"]] * n))
    documents = documents.append_column("note", pa.array([PAYLOADS["note"]] * n))
    pq.write_table(documents, out.table("documents"))
    clean = pq.read_table(sample_run.table("clean"))
    texts = [PAYLOADS["text"] + t for t in clean.column("text").to_pylist()]
    pq.write_table(clean.set_column(1, "text", pa.array(texts)), out.table("clean"))
    topics = pq.read_table(sample_run.table("topics"))
    labels = [PAYLOADS["label"]] * topics.num_rows
    pq.write_table(topics.set_column(1, "label", pa.array(labels)), out.table("topics"))
    shutil.copy(sample_run.table("doc_topics"), out.table("doc_topics"))
    explorer.main(params, out)
    doc = pq.read_table(sample_run.table("doc_topics")).column("doc_id")[0].as_py()
    return out.processed / explorer.FILENAME, doc


def test_markup_in_the_data_renders_as_text_and_nothing_runs(chromium, hostile_page):
    page, doc = hostile_page
    _open(chromium, page)
    scripts = chromium.execute_script("return document.scripts.length")
    for hash_ in ("topics", "topic/0", f"doc/{doc}", "word/" + "script"):
        _go(chromium, hash_)
        chromium.execute_script("window.scrollTo(0, 0)")
    _go(chromium, f"doc/{doc}")
    WebDriverWait(chromium, 5).until(lambda d: d.find_elements(By.ID, "doc-text"))
    assert chromium.find_element(By.ID, "doc-title").text == PAYLOADS["title"]
    meta = chromium.find_element(By.ID, "doc-meta").text
    assert PAYLOADS["link"] in meta and PAYLOADS["note"] in meta
    assert chromium.find_element(By.ID, "doc-text").text.startswith(PAYLOADS["text"])
    _go(chromium, "topics")
    labels = chromium.find_elements(By.CSS_SELECTOR, "#topics-table tr[data-topic] a")
    assert labels and all(a.text == PAYLOADS["label"] for a in labels)
    for a in labels:
        a_href = a.get_attribute("href")
        assert a_href.startswith(page.as_uri() + "#topic/")
    state = chromium.execute_script(
        "return {xss: window.__xss === undefined ? null : window.__xss, title: document.title,"
        " scripts: document.scripts.length, imgs: document.images.length,"
        " bold: document.querySelectorAll('main b, main script').length,"
        " js: [...document.querySelectorAll('a')]"
        ".filter(a => a.href.startsWith('javascript:')).length}"
    )
    assert state == {
        "xss": None,
        "title": "zhtopics explorer",
        "scripts": scripts,
        "imgs": 0,
        "bold": 0,
        "js": 0,
    }
    assert scripts == 2
    _no_traffic(chromium, page)
