"""Stage report: a self-contained, offline, deterministic HTML page of a run's results."""

import base64
import html
import re
import shutil
import warnings

import pytest

from pipeline.cli import main
from pipeline.config import ConfigError, ReportParams, params_from_dict
from pipeline.io import read_json
from pipeline.report import SECTIONS, drop_singletons, largest_groups, report
from pipeline.results import load_results
from tests.conftest import ROOT
from tests.contract_tables import OPTIONAL_TABLES


def _build(paths, **settings) -> dict[str, bytes]:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        return report(load_results(paths), ReportParams(**settings))


def _folder(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture(scope="module")
def plain(sample_run):
    """The report the sample run wrote (`zhtopics run` ends with the report stage)."""
    return _folder(sample_run.processed / "report")


@pytest.fixture(scope="module")
def bare(bare_run):
    """The report of a run without the optional tables."""
    return _build(bare_run)


def _html(files) -> str:
    return files["index.html"].decode("utf-8")


def test_every_section_and_picture_is_in_one_offline_page(plain):
    page = _html(plain)
    for anchor, _ in SECTIONS:
        assert f'id="{anchor}"' in page
    pngs = sorted(name for name in plain if name.endswith(".png"))
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(pngs) >= 9
    assert [base64.b64decode(data) for data in embedded] == [plain[name] for name in pngs]
    # Nothing is loaded from anywhere: no URL, no other src or stylesheet link.
    text = re.sub(r"data:image/png;base64,[^\"]+", "", page)
    assert not re.search(r"https?:|//[a-z]|url\(|@import", text)
    assert text.count("src=") == len(embedded)
    assert "<link" not in page and "<script" not in page


def test_the_page_shows_the_run(plain, sample_run):
    page = _html(plain)
    results = load_results(sample_run)
    for label in results.topics.column("label").to_pylist():
        assert label in page
    assert f'<td class="num">{results.documents.num_rows}</td>' in page
    for table in (*OPTIONAL_TABLES[:2], *OPTIONAL_TABLES[3:]):
        absent = not sample_run.table(table).is_file()
        assert (f"({table}.parquet) in this run" in page) == absent


def test_optional_tables_are_drawn_when_present(plain, sample_run):
    page = _html(plain)
    for name in ("ingest", "cleaning", "prevalence", "topic-trends", "sweep"):
        assert any(n.endswith(f"-{name}.png") for n in plain), name
    # The sample is one file of 2022: by source or by year, a chart of one group is not drawn,
    # and a note says why.
    for column in ("source", "year"):
        assert not any(n.endswith(f"-prevalence-{column}.png") for n in plain), column
        assert f"No prevalence chart by {column}: every document is in one group" in page
    # One date, no folder: nothing to compare, and the page says what would help.
    assert "No column is worth comparing" in page
    for line in load_results(sample_run).topic_kwic.to_pylist()[:3]:
        assert f"<td>{line['term']}</td>" in page
    recommended = read_json(sample_run.metrics / "sweep.json")["recommended_k"]
    assert f"Recommended K = {recommended}" in page
    docs = load_results(sample_run).representative_docs
    snippet = docs.column("snippet")[0].as_py()
    assert html.escape(snippet[:20]) in page  # the page escapes quotes and brackets
    assert "in this run" not in page


def test_absent_tables_get_a_note_instead_of_a_picture(bare):
    page = _html(bare)
    for table in (
        "ingest_report",
        "clean_audit",
        "topic_prevalence",
        "representative_docs",
        "new_words",
    ):
        assert f"({table}.parquet) in this run" in page
    for table in ("topic_trends", "topic_kwic"):
        assert f"({table}.parquet) in this run" in page
    assert "No comparison of groups (compare stage) in this run" in page
    assert not any(n.endswith(("-ingest.png", "-sweep.png", "-prevalence-year.png")) for n in bare)
    assert not any("-topic-trends" in n or "-keyness-" in n for n in bare)


def test_groups_over_time_and_words_in_context_on_the_work_reports(reports_run):
    """The work-report folder: a trend picture, keyness and contrasts by decade and speaker,
    the too-small speakers named, concordance lines."""
    files = _folder(reports_run.processed / "report")
    page = _html(files)
    for name in ("topic-trends", "keyness-decade", "contrasts-decade", "keyness-speaker"):
        assert any(n.endswith(f"-{name}.png") for n in files), name
    assert "<h3>speaker</h3>" in page and "Too small to compare: 华国锋" in page
    assert "Hollow dots: periods with few documents (10 of 10)" in page
    # Concordance lines mark the term by markup, not brackets (the new-words section's examples
    # keep their 【】: that column is text).
    kwic = page.split('<h2 id="kwic">', 1)[1].split("<h2 ", 1)[0]
    assert "【" not in kwic and "zhtopics kwic TERM" in kwic
    # Each report is one file: no chart of prevalence by source.
    assert not any(n.endswith("-prevalence-source.png") for n in files)


def test_background_terms_are_listed_with_what_the_model_did(sample_run):
    import dataclasses

    import pyarrow as pa

    from pipeline.report import _background, _Page

    r = load_results(sample_run)
    flags = [False] * r.vocabulary.num_rows
    flags[0] = flags[2] = True  # as if the tfidf stage had flagged the first and third terms
    vocabulary = r.vocabulary.set_column(
        r.vocabulary.schema.get_field_index("is_background"), "is_background", pa.array(flags)
    )
    terms = vocabulary.column("term").to_pylist()
    for left_out, said in ((2, "left out of the topic model"), (0, "modelled like any other")):
        page = _Page(dpi=50)
        metrics = {**r.lda_metrics, "background_terms_left_out": left_out}
        _background(page, dataclasses.replace(r, vocabulary=vocabulary, lda_metrics=metrics), None)
        text = "".join(page.parts)
        assert said in text and "2 terms" in text
        assert f"<td>{html.escape(terms[0])}</td>" in text
        assert f"<td>{html.escape(terms[2])}</td>" in text
        assert text.count("<tr>") == 3  # the header and the two flagged terms
    none = r.vocabulary.set_column(
        r.vocabulary.schema.get_field_index("is_background"),
        "is_background",
        pa.array([False] * r.vocabulary.num_rows),
    )
    page = _Page(dpi=50)
    _background(page, dataclasses.replace(r, vocabulary=none), None)
    assert "No term was found" in "".join(page.parts)


def test_an_unknown_group_column_names_the_setting(sample_run):
    with pytest.raises(ValueError, match="report.keyword_groups: no documents column 'region'"):
        _build(sample_run, keyword_groups="region")


def test_largest_groups_keep_the_most_documents_ties_by_name():
    groups = {"d1": "b", "d2": "b", "d3": "a", "d4": "c", "d5": "c", "d6": "d"}
    assert largest_groups(groups, 2) == {"d1": "b", "d2": "b", "d4": "c", "d5": "c"}
    assert largest_groups(groups, 3) == {k: v for k, v in groups.items() if v != "d"}
    assert largest_groups(groups, 4) == groups


def test_a_group_per_document_gets_a_note_not_a_chart(sample_run):
    """Grouping by a column with a value per document (doc_id here; parent_id with documents
    as the unit) compares nothing: a note, and no keyword chart by that column."""
    n_docs = load_results(sample_run).documents.num_rows
    assert n_docs > 3
    files = _build(sample_run, keyword_groups="doc_id", max_groups=3)
    page = _html(files)
    assert f"No keywords by doc_id: each of its {n_docs:,} groups holds one document" in page
    assert not any("group-keywords" in name for name in files)


def test_groups_of_one_document_are_dropped_and_counted():
    groups = {"d1": "a", "d2": "a", "d3": "b", "d4": "c", "d5": "c", "d6": "d"}
    assert drop_singletons(groups) == ({"d1": "a", "d2": "a", "d4": "c", "d5": "c"}, 2)
    assert drop_singletons({"d1": "a", "d2": "a"}) == ({"d1": "a", "d2": "a"}, 0)


def test_prevalence_charts_need_two_groups_of_more_than_one_document(sample_run):
    import dataclasses

    import pyarrow as pa

    def rows(column, groups, sizes):
        return {
            "column": [column] * len(groups),
            "group": groups,
            "topic": [0] * len(groups),
            "mean": [0.5] * len(groups),
            "ci_low": [0.4] * len(groups),
            "ci_high": [0.6] * len(groups),
            "n_docs": sizes,
        }

    parts = [
        rows("year", ["(missing)"], [40]),  # one group: nothing to compare
        rows("source", ["a.txt", "b.txt", "c.txt"], [1, 1, 1]),  # a file per document
        rows("folder", ["x", "y", "z"], [5, 7, 1]),  # two real groups and one of one
    ]
    table = pa.table({k: sum((p[k] for p in parts), []) for k in parts[0]})
    table = table.cast(load_results(sample_run).topic_prevalence.schema)
    # Groups count documents (parent_id), not paragraphs: 13 documents, three sources of one
    # document each (the rest without a source), folders of 5, 7 and 1 documents.
    results = load_results(sample_run)
    docs = results.documents
    parents = [f"p{i}" for i in range(13)] + ["p0"] * (docs.num_rows - 13)
    source = {"p0": "a.txt", "p1": "b.txt", "p2": "c.txt"}
    folder = {f"p{i}": "x" if i < 5 else "y" if i < 12 else "z" for i in range(13)}
    docs = docs.set_column(
        docs.schema.get_field_index("parent_id"), "parent_id", pa.array(parents, pa.string())
    )
    docs = docs.set_column(
        docs.schema.get_field_index("source"),
        "source",
        pa.array([source.get(p) for p in parents], pa.string()),
    )
    docs = docs.append_column("folder", pa.array([folder[p] for p in parents], pa.string()))
    results = dataclasses.replace(results, topic_prevalence=table, documents=docs)
    files = report(results, ReportParams())
    page = _html(files)
    assert "No prevalence chart by year: every document is in one group ((missing))" in page
    assert "Prevalence by source is not drawn: 4 group(s), 1 of them with two" in page
    assert "Prevalence by folder: the 2 of 3 groups that hold two documents or more." in page
    names = [n for n in files if "prevalence-" in n]
    assert [n.split("-", 1)[1] for n in names] == ["prevalence-folder.png"]


def test_figures_rendered_in_other_processes_are_the_same_bytes(sample_run):
    import concurrent.futures
    import multiprocessing

    results = load_results(sample_run)
    alone = report(results, ReportParams())
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as renderer:
        assert report(results, ReportParams(), renderer) == alone


def test_a_sweep_that_fitted_nothing_says_why(sample_run):
    import dataclasses

    results = load_results(sample_run)
    empty = dataclasses.replace(
        results,
        sweep=results.sweep.slice(0, 0),
        sweep_metrics={"recommended_k": None, "skipped": "lda.num_topics is 9, so ..."},
    )
    page = _html(report(empty, ReportParams()))
    assert "No K sweep was fitted in this run: lda.num_topics is 9, so ..." in page


def test_prevalence_by_a_many_valued_column_keeps_the_largest_groups():
    import pyarrow as pa

    from pipeline.report import _largest_prevalence_groups, _Page

    groups = ["a", "b", "c", "d"]
    sizes = {"a": 5, "b": 9, "c": 5, "d": 1}
    table = pa.table(
        {
            "column": ["source"] * 8,
            "group": groups * 2,
            "topic": [0] * 4 + [1] * 4,
            "n_docs": [sizes[g] for g in groups] * 2,
        }
    )
    page = _Page(dpi=100)
    kept = _largest_prevalence_groups(page, table, "source", 2)
    assert kept.column("group").to_pylist() == ["a", "b", "a", "b"]
    assert "the 2 largest of 4 groups" in page.parts[0]
    assert _largest_prevalence_groups(_Page(dpi=100), table, "source", 4) is table


@pytest.mark.parametrize(
    "key,value",
    [
        ("dpi", 0),
        ("top_terms", 0),
        ("keyword_groups", ""),
        ("docs_per_topic", -1),
        ("max_groups", 0),
    ],
)
def test_bad_settings_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"report.{key}"):
        params_from_dict({"report": {key: value}})


def test_the_command_follows_the_settings_and_replaces_the_folder(sample_run, tmp_path, plain):
    """(Same inputs, same bytes across processes: tests/test_pipeline.py runs the report twice.)"""
    processed = tmp_path / "processed"
    shutil.copytree(sample_run.processed, processed)
    (processed / "report" / "stale.png").write_bytes(b"old")
    args = ["report", "-q", "--processed", str(processed), "--metrics", str(sample_run.metrics)]
    settings = ["--set", "report.top_terms=3", "--set", "report.keyword_groups=year"]
    assert main([*args, "--params", str(ROOT / "params.yaml"), *settings]) == 0
    written = _folder(processed / "report")
    assert "stale.png" not in written
    assert set(written) == set(plain) and written["index.html"] != plain["index.html"]
    assert "keywords by year" in _html(written)


def test_the_command_needs_the_lda_tables(tmp_path, capsys):
    code = main(["report", "--processed", str(tmp_path), "--params", str(ROOT / "params.yaml")])
    assert code == 2
    assert "table is missing" in capsys.readouterr().err


def test_new_words_section_lists_accepted_words_with_an_example(sample_run, tmp_path):
    """Discovered words, each with its example in context, and the tokens they changed."""
    import pyarrow as pa

    from pipeline.io import write_table
    from pipeline.schemas import NEW_WORDS
    from tests.contract_tables import write_bare_run

    paths = write_bare_run(sample_run, tmp_path)
    rows = [
        ("精准扶贫", 40, 12, True, "", "精准 扶贫", "要坚持【精准扶贫】，", 38),
        ("放管服", 30, 9, True, "", "放 管 服", "深化【放管服】改革", 30),
        ("供给侧结构性", 41, 12, False, "fragment", "供给 侧 结构性", "…【供给侧结构性】改革", 0),
    ]
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            "word": columns[0],
            "frequency": pa.array(columns[1], pa.int64()),
            "document_frequency": pa.array(columns[2], pa.int64()),
            "cohesion": [0.9] * 3,
            "left_entropy": [3.0] * 3,
            "right_entropy": [3.0] * 3,
            "score": [9.0, 8.0, 7.0],
            "accepted": columns[3],
            "reason": columns[4],
            "pieces": columns[5],
            "example": columns[6],
            "token_count": pa.array(columns[7], pa.int64()),
        }
    )
    write_table(table, paths.table("new_words"), NEW_WORDS)
    page = _html(_build(paths, new_words=1))
    section = page[page.index('id="new-words"') : page.index('id="keywords"')]
    assert "2 accepted of 3 listed (not accepted: 1 fragment)" in section
    # 68 tokens; without them, 38 x 2 + 30 x 3 = 166 tokens.
    assert "are 68 tokens" in section and "into 166 tokens" in section
    assert "要坚持【精准扶贫】，" in section and "深化【放管服】改革" not in section
    assert section.count("<tr>") == 2  # the header and report.new_words = 1 word
    # No word accepted: the best candidates are listed with why they were not.
    write_table(table.slice(2), paths.table("new_words"), NEW_WORDS)
    section = _html(_build(paths))
    section = section[section.index('id="new-words"') : section.index('id="keywords"')]
    assert "0 accepted of 1 listed" in section and "<td>fragment</td>" in section


def test_many_compared_groups_are_pictured_by_the_largest_and_tabled_in_full(reports_run):
    """A column of 15 compared groups (years, say): the keyness and contrast pictures show the
    12 largest, the caption says so, and the table lists every group."""
    import dataclasses

    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.report import _Page
    from pipeline.report_compare import PICTURED_GROUPS, _pictured_groups, groups_apart

    r = load_results(reports_run)
    names = [f"{1990 + i}" for i in range(15)]
    sizes = {name: 2 + i for i, name in enumerate(names)}  # 1990, 1991, 1992 the smallest
    compared = pa.table(
        {
            "column": ["year"] * 15,
            "group": names,
            "n_docs": [sizes[n] for n in names],
            "status": ["compared"] * 15,
        }
    )

    def copied(table: pa.Table) -> pa.Table:
        """One decade's rows of ``table`` again under each of the years."""
        decade = table.filter(pc.equal(table.column("column"), "decade"))
        one = decade.filter(pc.equal(decade.column("group"), decade.column("group")[0]))
        parts = []
        for name in names:
            part = one.set_column(
                one.schema.get_field_index("column"), "column", pa.array(["year"] * one.num_rows)
            )
            part = part.set_column(
                part.schema.get_field_index("group"), "group", pa.array([name] * one.num_rows)
            )
            parts.append(part)
        return pa.concat_tables(parts)

    results = dataclasses.replace(
        r,
        compare_groups=compared.cast(r.compare_groups.select(compared.column_names).schema),
        keyness=copied(r.keyness),
        topic_contrasts=copied(r.topic_contrasts),
    )
    page = _Page(dpi=30)
    groups_apart(page, results, ReportParams())
    text = "".join(page.parts)
    assert PICTURED_GROUPS == 12
    assert "topic differences by year (the 12 largest of 15 groups; all in the table)" in text
    assert "key terms by year (the 12 largest of 15 groups; all in the table)" in text
    assert all(f"<td>{name}</td>" in text for name in names)  # the keyness table: every year
    assert sum(name.startswith(("keyness-year", "contrasts-year"), 3) for name in page.images) == 2
    assert _pictured_groups(compared.to_pylist()) == names[3:]  # in order, the three smallest out
