"""`zhtopics cut`: standard input segmented line by line by the project's tokenizer."""

import argparse
import io
import subprocess
import sys

import pyarrow as pa
import pytest

from pipeline.cut import read_word_list, run
from pipeline.io import write_table
from pipeline.schemas import NEW_WORDS
from pipeline.text.tokenizers import load_lexicon

LINES = ["深化放管服改革，推进精准扶贫。", "", "全国妇联组织召开会议 2025年"]


def _cut(params, stdin: str, **flags) -> str:
    args = argparse.Namespace(**{"new_words": None, "no_userdict": False, **flags})
    out = io.StringIO()
    run(params, args, io.StringIO(stdin), out)
    return out.getvalue()


def test_one_line_out_per_line_in_every_token_kept(params):
    out = _cut(params, "\n".join(LINES) + "\n").split("\n")
    assert len(out) == len(LINES) + 1 and out[-1] == ""
    backend = load_lexicon(params.segment, check=False).backend
    for line, printed in zip(LINES, out, strict=False):
        expected = [t for t in backend.cut(line, params.segment.hmm) if t.strip()]
        assert printed.split(" ") == expected if line else printed == ""
    # Punctuation, stopwords and numbers stay: nothing is filtered.
    assert "，" in out[0].split() and "。" in out[0].split() and "2025" in out[2]


def test_new_words_from_a_list_or_a_table_and_no_userdict(params, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("# mine\n放管服 10 n\n精准扶贫\n", encoding="utf-8")
    assert read_word_list(words) == ["放管服", "精准扶贫"]
    plain = _cut(params, LINES[0]).split()
    assert "精准扶贫" not in plain
    used = _cut(params, LINES[0], new_words=words).split()
    assert "精准扶贫" in used and "放管服" in used
    table = tmp_path / "new_words.parquet"
    rows = {"word": ["精准扶贫", "放管服"], "accepted": [True, False]}
    n = len(rows["word"])
    write_table(
        pa.table(
            {
                **rows,
                "frequency": pa.array([9] * n, pa.int64()),
                "document_frequency": pa.array([3] * n, pa.int64()),
                "cohesion": [0.9] * n,
                "left_entropy": [2.0] * n,
                "right_entropy": [2.0] * n,
                "score": [5.0] * n,
                "reason": ["", "rejected"],
                "pieces": ["精准 扶贫", "放 管服"],
                "example": ["", ""],
                "token_count": pa.array([0] * n, pa.int64()),
            }
        ),
        table,
        NEW_WORDS,
    )
    assert read_word_list(table) == ["精准扶贫"]  # the accepted words only
    # The shipped user dictionary keeps 妇联组织 whole; without it, it is cut.
    with_user = _cut(params, LINES[2]).split()
    without = _cut(params, LINES[2], no_userdict=True).split()
    assert "妇联组织" in with_user and "妇联组织" not in without


def test_the_command_reads_stdin_and_names_a_missing_file(venv_env, tmp_path):
    words = tmp_path / "w.txt"
    words.write_text("放管服\n", encoding="utf-8")
    command = [sys.executable, "-m", "pipeline", "cut", "-q", "--new-words", str(words)]
    done = subprocess.run(
        command, input="深化放管服改革\n\n", capture_output=True, text=True, env=venv_env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["深化 放管服 改革", ""]
    missing = [*command[:-1], str(tmp_path / "nope.txt")]
    done = subprocess.run(missing, input="x\n", capture_output=True, text=True, env=venv_env)
    assert done.returncode == 2 and "nope.txt: no such word file" in done.stderr


@pytest.mark.parametrize("content", [b"\xff\xfe bad", "甲\t乙\n".encode("gbk")])
def test_a_word_list_that_is_not_utf8_is_named(tmp_path, content):
    path = tmp_path / "list.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="list.txt: a word list must be UTF-8"):
        read_word_list(path)
