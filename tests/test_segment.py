import json

import jieba
import pytest

from pipeline.clean import load_replacements, normalize_text
from pipeline.config import SegmentParams
from pipeline.schemas import TOKENS, SchemaError
from pipeline.segment import Lexicon, is_content_token, load_lexicon, segment, tokenize
from tests.conftest import FIXTURES, table

GOLDEN = json.loads((FIXTURES / "golden_segment.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", GOLDEN, ids=[str(i) for i in range(len(GOLDEN))])
def test_golden_segmentation(case, params, lexicon):
    """The shipped dictionary, stopwords and filters give exactly these tokens."""
    text = normalize_text(case["text"], load_replacements(params.clean.replacements))
    assert tokenize(text, params.segment, lexicon) == case["tokens"]


def test_user_dictionary_keeps_policy_terms_whole(params, lexicon):
    for word in ("男女平等", "家庭暴力", "巾帼建功", "妇联组织"):
        assert word in tokenize(f"我们要推进{word}工作", params.segment, lexicon)


def test_tokenizer_is_private(tmp_path):
    userdict = tmp_path / "u.txt"
    userdict.write_text("甲乙丙丁戊 100 n\n", encoding="utf-8")
    load_lexicon(SegmentParams(userdict=userdict, stopwords=None))
    assert "甲乙丙丁戊" not in jieba.dt.FREQ


@pytest.mark.parametrize(
    ("token", "kept"),
    [
        ("妇女", True),
        ("的", False),
        ("，", False),
        (" ", False),
        ("2022", False),
        ("20xx", False),
        ("1—7", False),
        ("三亿多", False),
        ("万件", False),
        ("12%", False),
        ("市", False),
        ("GDP", True),
        ("x", False),
        ("5G", True),
        ("the", False),
        ("The", False),
    ],
)
def test_content_filter(token, kept, params, lexicon):
    assert is_content_token(token, params.segment, lexicon.stopwords) is kept


def test_filters_follow_the_settings(lexicon):
    loose = SegmentParams(
        userdict=None, stopwords=None, allow_single_char=True, keep_numbers=True, keep_latin=False
    )
    assert is_content_token("市", loose, lexicon.stopwords)
    assert is_content_token("2022", loose, lexicon.stopwords)
    assert not is_content_token("GDP", loose, lexicon.stopwords)


def test_stopwords_combine_iso_list_and_project_file(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("# comment\n妇联 # trailing comment\n\n", encoding="utf-8")
    lex = load_lexicon(SegmentParams(userdict=None, stopwords=path))
    assert "妇联" in lex.stopwords and "的" in lex.stopwords and "# comment" not in lex.stopwords
    only_file = load_lexicon(SegmentParams(userdict=None, stopwords=path, stopwords_iso=False))
    assert only_file.stopwords == frozenset({"妇联"})


def test_segment_table(params, lexicon: Lexicon):
    docs = table(
        doc_id=["a", "b"],
        text=["坚决反对家庭暴力", "坚决反对家庭暴力"],
        n_chars=[8, 8],
        status=["kept", "too_short"],
        reason=[None, "short"],
    )
    out = segment(docs, params.segment, lexicon)
    TOKENS.conform(out)
    assert out.column("tokens").to_pylist() == [["坚决", "反对", "家庭暴力"], []]
    assert out.column("n_tokens").to_pylist() == [3, 0]


def test_segment_needs_status_column(params, lexicon):
    with pytest.raises(SchemaError, match="status"):
        segment(table(doc_id=["a"], text=["x"]), params.segment, lexicon)
