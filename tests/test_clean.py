import pytest

from pipeline.clean import (
    EMPTY,
    KEPT,
    TOO_SHORT,
    CleanError,
    Replacements,
    clean,
    load_replacements,
    normalize_text,
)
from pipeline.config import CleanParams
from pipeline.schemas import CLEAN, SchemaError
from tests.conftest import ROOT, table

PARAMS = CleanParams(min_chars=5, replacements=None)


def test_nfkc_turns_full_width_into_half_width():
    assert normalize_text("ＡＢＣ１２３，（测试）") == "ABC123,(测试)"


def test_invisible_characters_and_layout_noise_go():
    text = "\ufeff  第一\u200b段\u3000内容  \n\n\n\t第二段 \r"
    assert normalize_text(text) == "第一段内容\n第二段"


def test_spaces_between_cjk_go_but_latin_words_stay_apart():
    assert normalize_text("中 国 machine learning 方法") == "中国machine learning方法"


def test_statuses_and_reasons_account_for_every_document():
    docs = table(doc_id=["a", "b", "c"], text=["  \u200b ", "短", "足够长的一段文字"])
    out = clean(docs, PARAMS, Replacements())
    CLEAN.conform(out)
    assert out.column("doc_id").to_pylist() == ["a", "b", "c"]
    assert out.column("status").to_pylist() == [EMPTY, TOO_SHORT, KEPT]
    reasons = out.column("reason").to_pylist()
    assert "min_chars=5" in reasons[1] and reasons[2] is None
    assert out.column("n_chars").to_pylist() == [0, 1, 8]


def test_missing_text_column_is_named():
    with pytest.raises(SchemaError, match=r"clean: input lacks column\(s\) \['text'\]"):
        clean(table(doc_id=["a"]), PARAMS, Replacements())


def test_replacements_longest_first_and_protected_words():
    reps = Replacements((("平易近", "民"), ("平易近人", "平易近人"), ("年夜", "大")))
    assert reps.apply("村平易近,平易近人,重年夜") == "村民,平易近人,重大"


def test_shipped_replacements_repair_the_spun_sample_text():
    reps = load_replacements(ROOT / "data" / "dict" / "replacements.tsv")
    assert normalize_text("保平易近生,经由过程互联网", reps) == "保民生,通过互联网"


def test_replacements_file_errors_name_the_line(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("# comment\na\tb\nbroken line\n", encoding="utf-8")
    with pytest.raises(CleanError, match="line 3"):
        load_replacements(path)
    path.write_text("a\tb\na\tc\n", encoding="utf-8")
    with pytest.raises(CleanError, match="twice"):
        load_replacements(path)
