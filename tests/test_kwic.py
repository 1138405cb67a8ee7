"""`zhtopics kwic`: concordance lines on token boundaries, by group and topic, to parquet."""

import json

import pyarrow as pa
import pytest

from pipeline import kwic
from pipeline.cli import main
from pipeline.io import read_table
from pipeline.schemas import DOCUMENTS, KWIC
from tests.conftest import FIXTURES

CASE = json.loads((FIXTURES / "kwic.json").read_text(encoding="utf-8"))


def test_a_term_matches_only_where_it_is_a_token():
    text, tokens = CASE["text"], CASE["tokens"]
    lines = kwic.concordance(text, tokens, "维权", width=4)
    # Twice a token; never inside 维权人士, although the characters are there three times.
    assert text.count("维权") == 3 and len(lines) == 2
    assert [text[x.start : x.start + 2] for x in lines] == ["维权", "维权"]
    assert lines[0].start == text.index("：维权") + 1
    assert lines[0].left == "人士说：" and lines[0].right == "很难。改"
    assert kwic.concordance(CASE["inside_only"], CASE["inside_tokens"], "维权", 5) == []


def test_tokens_missing_from_the_text_do_not_shift_the_others():
    text = CASE["text"]
    tokens = ["维护", "权益_维权", *CASE["tokens"][2:]]  # a joined phrase is not in the text
    spans = list(kwic.token_spans(text, tokens))
    assert [t for _, _, t in spans] == [t for t in tokens if t != "权益_维权"]
    assert all(text[s:e] == t for s, e, t in spans)


def test_context_is_one_line():
    lines = kwic.concordance("第一行\n维权\n第二行", ["第一行", "维权", "第二行"], "维权", 10)
    assert lines[0].left == "第一行" and lines[0].right == "第二行"


def test_documents_with_finds_rows_holding_any_term():
    batch = pa.table(
        {"doc_id": ["a", "b", "c"], "tokens": [["改革", "开放"], ["维权"], ["开放", "改革"]]}
    )
    assert [d for d, _ in kwic.documents_with([batch], ["改革"])] == ["a", "c"]
    assert [d for d, _ in kwic.documents_with([batch], ["改革"], {"c"})] == ["c"]


def test_kwic_command_by_group_to_parquet(reports_run, tmp_path, capsys):
    out = tmp_path / "lines.parquet"
    args = ["kwic", "改革", "--processed", str(reports_run.processed), "--width", "8"]
    assert main([*args, "--group", "speaker=赵紫阳", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = read_table(out, KWIC).to_pylist()
    assert lines and printed.count("【改革】") == len(lines)
    docs = read_table(reports_run.table("documents"), DOCUMENTS).to_pylist()
    speaker = {d["doc_id"]: d["speaker"] for d in docs}
    assert {speaker[x["doc_id"]] for x in lines} == {"赵紫阳"}
    assert all(len(x["left"]) <= 8 and len(x["right"]) <= 8 for x in lines)
    # All speakers: more lines; a limit caps them.
    assert main([*args, "--out", str(out)]) == 0
    assert len(read_table(out, KWIC)) > len(lines)
    assert main([*args, "--limit", "2", "--out", str(out)]) == 0
    assert len(read_table(out, KWIC)) == 2


def test_kwic_command_by_topic_and_by_period(reports_run, tmp_path, capsys):
    out = tmp_path / "lines.parquet"
    base = ["kwic", "发展", "--processed", str(reports_run.processed), "--out", str(out)]
    assert main([*base, "--topic", "0"]) == 0
    lines = read_table(out, KWIC).to_pylist()
    assert {x["topic"] for x in lines} <= {0}
    assert main([*base, "--group", "decade=2010s"]) == 0
    assert read_table(out, KWIC).num_rows > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--group", "region=北京"], "no column 'region'"),
        (["--group", "speaker=nobody"], "no document has it"),
        (["--group", "speaker"], "expected COLUMN=VALUE"),
        (["--topic", "99"], "--topic 99"),
        (["--width", "0"], "at least 1"),
    ],
)
def test_kwic_command_errors_say_what_is_wrong(reports_run, capsys, extra, message):
    assert main(["kwic", "改革", "--processed", str(reports_run.processed), *extra]) == 2
    assert message in capsys.readouterr().err


def test_kwic_command_without_a_run(tmp_path, capsys):
    assert main(["kwic", "改革", "--processed", str(tmp_path)]) == 2
    assert "run the pipeline first" in capsys.readouterr().err
