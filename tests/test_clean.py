import dataclasses
import random
import re
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import pipeline.clean as clean_module
from pipeline.clean import (
    IngestReport,
    clean,
    clean_batch,
    fill_cluster_sizes,
    sized_batches,
    text_spans,
)
from pipeline.config import CleanParams, ConfigError, params_from_dict
from pipeline.ingest import main as ingest_main
from pipeline.io import Paths, read_json, read_table
from pipeline.schemas import (
    CLEAN,
    CLEAN_AUDIT,
    DOCUMENTS,
    DUPLICATE,
    EMPTY,
    INGEST_REPORT,
    KEPT,
    NEAR_DUPLICATE,
    NOT_CHINESE,
    TOO_SHORT,
    SchemaError,
)
from pipeline.text import dedup as dedup_module
from pipeline.text import normalize as normalize_module
from pipeline.text.dedup import (
    Deduplicator,
    SortedIndex,
    lsh_bands,
    minhash_permutations,
    minhash_signatures,
)
from pipeline.text.normalize import (
    char_counts,
    cjk_share,
    clean_text,
    normalize_text,
    visible_chars,
)
from pipeline.text.rules import (
    CleanError,
    Replacements,
    Rules,
    load_boilerplate,
    load_replacements,
    load_rules,
    required_clauses,
)
from tests.conftest import FIXTURES, ROOT, SAMPLE_FILE, table

DICT = ROOT / "data" / "dict"
PARAMS = CleanParams(min_chars=5, replacements=None, boilerplate=None)
SHIPPED = CleanParams(replacements=DICT / "replacements.tsv", boilerplate=DICT / "boilerplate.tsv")
LONG = "妇联组织要切实维护妇女儿童合法权益,推动男女平等基本国策落到实处。"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(SHIPPED)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"clean": {"convert": "s2t"}}, "clean.convert"),
        ({"clean": {"numbers": "drop"}}, "clean.numbers"),
        ({"clean": {"boilerplate_disable": "salutation"}}, "clean.boilerplate_disable"),
        ({"clean": {"near_duplicate_threshold": 1.0}}, "clean.near_duplicate_threshold"),
        ({"clean": {"min_cjk_share": 2}}, "clean.min_cjk_share"),
        ({"clean": {"shingle_size": 0}}, "clean.shingle_size"),
        ({"clean": {"workers": -1}}, "clean.workers"),
        ({"clean": {"start_method": "thread"}}, "clean.start_method"),
        ({"ingest": {"encoding": "klingon"}}, "ingest.encoding"),
    ],
)
def test_bad_settings_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key):
        params_from_dict(values, base_dir=ROOT)


def test_boilerplate_disable_takes_a_list():
    params = params_from_dict({"clean": {"boilerplate_disable": ["closing"]}}, base_dir=ROOT)
    assert params.clean.boilerplate_disable == ("closing",)


def _removed(text: str, rules: Rules) -> tuple[str, set[str]]:
    cleaned, audit = clean_text(text, rules)
    return cleaned, {rule for rule, _, _ in audit}


# --- normalisation --------------------------------------------------------------------------------


def test_nfkc_turns_full_width_into_half_width():
    assert normalize_text("ＡＢＣ１２３，（测试）") == "ABC123,(测试)"


def test_invisible_characters_and_layout_noise_go():
    text = "\ufeff  第一\u200b段\u3000内容  \n\n\n\t第二段 \r\x00\ufffd"
    assert normalize_text(text) == "第一段内容\n第二段"


def test_spaces_between_cjk_go_but_latin_words_stay_apart():
    assert normalize_text("中 国 machine learning 方法") == "中国machine learning方法"


def test_one_form_of_quotation_marks_and_dashes():
    assert (
        normalize_text("“引号”「引号」『引号』‘单’——破折–号") == '"引号""引号""引号"\'单\'--破折-号'
    )


def test_nfkc_in_bulk_is_unicodedata_nfkc(monkeypatch):
    texts = [
        "ＡＢＣ，（全角）\u3000空格",
        "省略号…和①②℃㎡Ⅱ﹘",
        "e\u0301 e\n\u0301 ａ\u0301\n\u3000\u0301",  # combining marks after folded letters
        "兼容汉字\uf900\uf901 한글 ㄱㅏ",
        "",
        "plain ascii",
        "第一行\n\n第二行…\n\uff01",
    ]
    expected = [unicodedata.normalize("NFKC", t) for t in texts]
    assert list(normalize_module._nfkc(texts)) == expected
    monkeypatch.setattr(normalize_module, "WINDOW_CHARS", 16)  # small groups; a long text alone
    assert list(normalize_module._nfkc(texts * 3)) == expected * 3


def _fold_line_by_line(text: str) -> str:
    """The definition: each line's spaces folded and stripped, then blank lines dropped."""
    lines = (
        normalize_module._SPACE_NEAR_CJK.sub("", normalize_module._SPACES.sub(" ", line)).strip()
        for line in text.split("\n")
    )
    return re.sub(r"\n{2,}", "\n", "\n".join(lines)).strip()


def test_spaces_fold_on_the_whole_text_as_line_by_line():
    rng = random.Random(7)
    alphabet = [
        " ",
        "  ",
        "\t",
        "\n",
        "\n\n",
        "\u3000",
        "\u00a0",
        "\u1680",
        "中",
        "文",
        "a",
        "b",
        "。",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert normalize_module._fold_spaces(text) == _fold_line_by_line(text), repr(text)


def test_character_counts_in_bulk_match_the_single_text_functions(monkeypatch):
    texts = [LONG, "", " \t\n ", "English words, 123 and 中文", "𠀀𠀁 兀 Ⅲ ½ ٣", "_x_"] * 3
    texts += ["word中文word", "中文 abc", "abcdefghij" * 3 + "中"]
    counts = char_counts(texts)
    for text, (spaces, words, ideographs) in zip(texts, counts.tolist(), strict=True):
        assert len(text) - spaces == visible_chars(text)
        assert (ideographs / (ideographs + words) if ideographs + words else 1.0) == cjk_share(text)
    assert counts[texts.index("English words, 123 and 中文")].tolist() == [4, 3, 2]
    monkeypatch.setattr(normalize_module, "WINDOW_CHARS", 8)  # a long text a window at a time
    assert (char_counts(texts) == counts).all()  # a word across two windows counts once


def test_chinese_article_with_english_abstract_and_references_is_kept():
    """440 ideographs and over 2,000 Latin letters (an English abstract, a reference list): a
    word of another script counts as one character, so the article is 56% Chinese, not 18%."""
    article = (FIXTURES / "journal_article.txt").read_text(encoding="utf-8")
    assert 0.5 < cjk_share(article) < 0.6
    docs = table(
        doc_id=["article", "english"],
        text=[article, article.split("\n\n")[-2]],  # the English abstract alone is not Chinese
        status=[KEPT, KEPT],
        reason=[None, None],
        decode_errors=[0, 0],
    )
    out = clean(docs, CleanParams(replacements=None, boilerplate=None), Rules()).clean
    assert out.column("status").to_pylist() == [KEPT, NOT_CHINESE]


def test_urls_emails_and_html_remnants_are_removed(rules):
    text = "详见https://www.example.com/a?b=1页面,或发邮件至news@example.com.cn<br/>&nbsp;咨询"
    cleaned, fired = _removed(text, rules)
    assert cleaned == "详见页面,或发邮件至咨询"
    assert fired == {"url", "email", "html_tag", "html_entity"}


def test_numbers_kept_or_masked(rules):
    assert clean_text("增长9.5%,达到1,200人", rules)[0] == "增长9.5%,达到1,200人"
    masked, audit = clean_text("增长9.5%,达到1,200人", rules, numbers="mask")
    assert masked == "增长#%,达到#人"
    assert ("numbers", 2, 6) in audit


@pytest.mark.parametrize(
    ("convert", "text", "expected"),
    [
        ("t2s", "國家發展與婦女權益", "国家发展与妇女权益"),
        ("tw2sp", "滑鼠軟體裡的資訊", "鼠标软件里的信息"),
        ("hk2s", "婦女權益", "妇女权益"),
    ],
)
def test_traditional_to_simplified(convert, text, expected):
    rules = load_rules(dataclasses.replace(PARAMS, convert=convert))
    assert clean_text(text, rules)[0] == expected


def test_conversion_happens_before_the_rules():
    params = dataclasses.replace(SHIPPED, convert="t2s")
    cleaned, fired = _removed("同志們:婦女工作很重要。", load_rules(params))
    assert cleaned == "妇女工作很重要。" and "salutation" in fired


# --- boilerplate rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "rule"),
    [
        (
            "新华社北京9月16日电(记者 张三)全国妇联今天召开会议。",
            "全国妇联今天召开会议。",
            "dateline_agency",
        ),
        ("新华社北京X月X日电 会议召开。", "会议召开。", "dateline_agency"),
        ("中新网3月8日电 据报道,妇女节活动丰富。", "据报道,妇女节活动丰富。", "dateline_agency"),
        ("本报讯 妇联开展活动。", "妇联开展活动。", "dateline_paper"),
        ("新浪体育讯 北京时间昨晚比赛结束。", "北京时间昨晚比赛结束。", "dateline_portal"),
        ("会议召开(记者 李四 王五)。", "会议召开。", "reporter"),
        ("会议召开。\n责任编辑:赵六", "会议召开。", "editor"),
        ("会议召开。(责任编辑:赵六)", "会议召开。", "editor"),
        ("同志们:\n今天开会。", "今天开会。", "salutation"),
        ("各位代表、同志们:\n今天开会。", "今天开会。", "salutation"),
        ("各位执委、同志们,新的形势。", "新的形势。", "salutation"),
        ("女士们,先生们,朋友们:大家好。", "大家好。", "salutation"),
        ("今天开会。\n谢谢!", "今天开会。", "closing"),
        ("今天开会。谢谢大家。", "今天开会。", "closing"),
        ("回顾了20xx年工作", "回顾了工作", "placeholder_year"),
        ("工程自20*年开展以来", "工程自开展以来", "placeholder_year"),
        ("XX市妇联和*市政府", "妇联和政府", "placeholder_place"),
        ("党的xx届五中全会,资金1*万元,***", "党的届五中全会,资金1万元,", "placeholder_run"),
        ("于x月x日召开", "于召开", "placeholder_date"),
    ],
)
def test_shipped_boilerplate_rules(rules, text, expected, rule):
    cleaned, fired = _removed(text, rules)
    assert cleaned == expected
    assert rule in fired


@pytest.mark.parametrize(
    "text",
    [
        "希望各位执委扎实工作、积极履职。",  # not a salutation: mid-sentence
        "感谢大家的支持,谢谢大家的努力工作。",  # thanks inside a sentence
        "面积3×4米,Xbox和XML文件,2020年",  # multiplication, Latin words, a real year
        "本报记者深入基层采访。",
    ],
)
def test_shipped_rules_leave_ordinary_text_alone(rules, text):
    assert clean_text(text, rules)[0] == normalize_text(text)


@pytest.mark.parametrize(
    ("pattern", "clauses"),
    [
        ("(?:新华社|中新网)[^,]{0,5}电", [("电",), ("中新网", "新华社")]),
        ("(?:责任编辑|责编)\\s*:", [(":",), ("责任编辑", "责编")]),
        ("谢谢(?:大家)?[!。]", [("谢谢",), ("!", "。")]),
        ("(?=[12])(?:19|20)[xX]", [("19X", "19x", "20X", "20x")]),  # implies [12]
        ("[xX]{2,}市", [("XX市", "Xx市", "xX市", "xx市")]),
        ("a|b.*c", [("a", "b"), ("a", "c")]),
        ("(?:同志们)?[:!]", [("!", ":")]),
        ("x?y*\\d+", []),  # nothing every match must contain
        ("(?i)abc", []),  # case-insensitive: no literal is certain
    ],
)
def test_rule_prefilter_reads_what_every_match_contains(pattern, clauses):
    assert sorted(required_clauses(re.compile(pattern))) == sorted(clauses)


def test_rule_prefilter_never_skips_a_text_with_a_match(rules):
    rng = random.Random(3)
    alphabet = list("新华社中网月日电讯本报记者()[]【】责任编辑:各位同志们,!谢谢大家19x20X*×市 \n")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25))) for _ in range(4000)]
    for rule in rules.boilerplate:
        matched = [t for t in texts if rule.pattern.search(t)]
        assert all(rule.may_match(t) for t in matched), rule.name
        if matched:  # and it does skip texts
            assert not all(rule.may_match(t) for t in texts), rule.name


def test_audit_counts_matches_and_characters_per_rule(rules):
    _, audit = clean_text("同志们:\n20xx年、20xx年的工作。\n谢谢!", rules)
    assert sorted(audit) == [("closing", 1, 3), ("placeholder_year", 2, 10), ("salutation", 1, 4)]


def test_a_rule_can_be_turned_off_by_param_or_in_the_file(tmp_path):
    params = dataclasses.replace(SHIPPED, boilerplate_disable=("salutation",))
    cleaned, fired = _removed("同志们:\n今天开会。谢谢!", load_rules(params))
    assert cleaned == "同志们:\n今天开会。" and fired == {"closing"}
    path = tmp_path / "rules.tsv"
    path.write_text("name\tpattern\tenabled\nclosing\t谢谢!\tfalse\nother\tabc\ttrue\n", "utf-8")
    assert [r.name for r in load_boilerplate(path)] == ["other"]


def test_boilerplate_file_errors_name_the_file_line_or_rule(tmp_path):
    path = tmp_path / "rules.tsv"
    path.write_text("closing\t谢谢\ttrue\n", encoding="utf-8")
    with pytest.raises(CleanError, match="first line"):
        load_boilerplate(path)
    path.write_text("name\tpattern\tenabled\nbad\t(unclosed\ttrue\n", encoding="utf-8")
    with pytest.raises(CleanError, match=r"line 2: rule 'bad': bad pattern"):
        load_boilerplate(path)
    path.write_text("name\tpattern\tenabled\na\tx\tyes\n", encoding="utf-8")
    with pytest.raises(CleanError, match="line 2"):
        load_boilerplate(path)
    path.write_text("name\tpattern\tenabled\na\tx\ttrue\na\ty\ttrue\n", encoding="utf-8")
    with pytest.raises(CleanError, match="twice"):
        load_boilerplate(path)
    with pytest.raises(CleanError, match=r"unknown rule\(s\) \['nope'\].*closing"):
        load_boilerplate(DICT / "boilerplate.tsv", ["nope"])


def test_replacements_longest_first_and_protected_words():
    reps = Replacements((("平易近", "民"), ("平易近人", "平易近人"), ("年夜", "大")))
    assert reps.apply("村平易近,平易近人,重年夜") == "村民,平易近人,重大"
    assert reps.apply_counted("村平易近,平易近人")[1] == 1  # the protected word is no change


def test_shipped_replacements_repair_the_spun_sample_text(rules):
    reps = load_replacements(DICT / "replacements.tsv")
    assert normalize_text("保平易近生,经由过程互联网", reps) == "保民生,通过互联网"
    assert ("replacements", 2, 4) in clean_text("保平易近生,经由过程互联网", rules)[1]


def test_replacements_file_errors_name_the_line(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("# comment\na\tb\nbroken line\n", encoding="utf-8")
    with pytest.raises(CleanError, match="line 3"):
        load_replacements(path)
    path.write_text("a\tb\na\tc\n", encoding="utf-8")
    with pytest.raises(CleanError, match="twice"):
        load_replacements(path)


# --- statuses -------------------------------------------------------------------------------------


def test_statuses_and_reasons_account_for_every_document():
    docs = table(
        doc_id=["a", "b", "c", "d", "e", "f"],
        text=["  \u200b ", "短", LONG, "This is an English paragraph, not Chinese.", "", ""],
        status=[KEPT, KEPT, KEPT, KEPT, "unsupported", "unreadable"],
        reason=[None, None, None, None, "unsupported file type .xlsx", "cannot read"],
        decode_errors=[0, 0, 0, 0, 0, 0],
    )
    out = clean(docs, PARAMS, Rules()).clean
    CLEAN.conform(out)
    assert out.column("doc_id").to_pylist() == ["a", "b", "c", "d", "e", "f"]
    assert out.column("status").to_pylist() == [
        EMPTY,
        TOO_SHORT,
        KEPT,
        NOT_CHINESE,
        "unsupported",
        "unreadable",
    ]
    reasons = out.column("reason").to_pylist()
    assert "min_chars=5" in reasons[1] and reasons[2] is None
    assert "min_cjk_share" in reasons[3] and reasons[4] == "unsupported file type .xlsx"
    assert out.column("n_chars").to_pylist()[:3] == [0, 1, len(LONG)]


def test_decode_errors_below_the_share_are_kept_and_flagged_above_it_not_modelled():
    docs = table(
        doc_id=["a", "b"],
        text=[LONG + "\ufffd", "\ufffd" * 5 + LONG],
        status=["decode_errors", "decode_errors"],
        reason=["x", "x"],
        decode_errors=[1, 5],
    )
    params = dataclasses.replace(PARAMS, max_decode_errors=0.05)
    out = clean(docs, params, Rules()).clean.to_pylist()
    assert [r["status"] for r in out] == [KEPT, "decode_errors"]
    assert "1 invalid" in out[0]["reason"] and "max_decode_errors" in out[1]["reason"]
    assert "\ufffd" not in out[0]["text"]


def test_missing_text_column_is_named():
    with pytest.raises(SchemaError, match=r"clean: input lacks column\(s\) \['text'\]"):
        clean(table(doc_id=["a"]), PARAMS, Rules())


# --- duplicates -----------------------------------------------------------------------------------


def _near(text: str) -> str:
    return text[:-3] + "落实处!"


def test_exact_and_near_duplicates_form_clusters_with_one_canonical_document():
    other = "家庭教育促进法明确了父母的主体责任,学校和社会协同育人的机制逐步健全。"
    long = LONG * 3
    docs = table(
        doc_id=["a", "b", "c", "d", "e"],
        text=[long, other, " " + long, _near(long), "同志们:\n" + long],
    )
    out = clean(docs, PARAMS, load_rules(SHIPPED)).clean.to_pylist()
    assert [r["status"] for r in out] == [KEPT, KEPT, DUPLICATE, NEAR_DUPLICATE, DUPLICATE]
    assert [r["cluster_id"] for r in out] == ["a", None, "a", "a", "a"]
    assert [r["cluster_size"] for r in out] == [4, None, 4, 4, 4]
    assert out[2]["reason"] == "duplicate of a" and out[3]["reason"] == "near-duplicate of a"


def test_near_duplicate_threshold_and_switch():
    long = LONG * 3
    docs = table(doc_id=["a", "b"], text=[long, _near(long)])
    strict = dataclasses.replace(PARAMS, near_duplicate_threshold=0.95)
    assert clean(docs, strict, Rules()).clean.column("status").to_pylist() == [KEPT, KEPT]
    with pytest.raises(CleanError, match="clean.near_duplicate_threshold = 0.99"):
        Deduplicator(dataclasses.replace(PARAMS, near_duplicate_threshold=0.99))
    off = dataclasses.replace(PARAMS, deduplicate=False)
    same = table(doc_id=["a", "b"], text=[long, long])
    assert clean(same, off, Rules()).clean.column("status").to_pylist() == [KEPT, KEPT]


def test_signatures_are_deterministic_and_shingle_size_matters(monkeypatch):
    first = Deduplicator(PARAMS).signature(LONG)
    assert (first == Deduplicator(PARAMS).signature(LONG)).all()
    other = Deduplicator(dataclasses.replace(PARAMS, shingle_size=2)).signature(LONG)
    assert not (first == other).all()
    # A long text is hashed a window at a time with the same result as at once.
    monkeypatch.setattr(dedup_module, "WINDOW_CHARS", 7)
    assert len(LONG) > 7 and (Deduplicator(PARAMS).signature(LONG) == first).all()
    # A text shorter than a shingle is one shingle of its own.
    short = Deduplicator(PARAMS).signature("短")
    assert short.shape == first.shape and not (short == Deduplicator(PARAMS).signature("长")).all()


def test_batches_give_the_same_result_as_one_table():
    texts = [LONG * 2, "足够长的另一段文字,讲的是完全不同的事情。" * 2, LONG * 2, _near(LONG * 2)]
    docs = table(doc_id=list("abcd"), text=texts)
    whole = clean(docs, PARAMS, Rules()).clean
    dedup = Deduplicator(PARAMS)
    parts = [clean_batch(docs.slice(i, 2), PARAMS, Rules(), dedup)[0] for i in (0, 2)]
    streamed = pa.concat_tables([fill_cluster_sizes(p, dedup.sizes) for p in parts])
    assert streamed.equals(whole.drop_columns(["spin_score"]))  # scored per corpus, after


def test_minhash_permutations_and_bands_are_datasketchs():
    """The values datasketch 2.0 gives (MinHash(num_perm=128, seed=1), MinHashLSH bands)."""
    a, b = minhash_permutations(128, 1)
    assert a[:3].tolist() == [3582191691, 4270784983, 1892572953]
    assert b[:3].tolist() == [214548472, 3287733501, 2301657549]
    assert (a % 2 == 1).all() and a.dtype == b.dtype == np.uint32
    assert lsh_bands(0.8, 128) == (9, 13)
    assert lsh_bands(0.95, 128) == (3, 42)
    assert lsh_bands(0.5, 256) == (42, 6)
    with pytest.raises(ValueError, match="b < 2"):
        lsh_bands(0.99, 128)


def _plain_signature(text: str, params: CleanParams) -> np.ndarray:
    """MinHash by the book, one text at a time: the shingles of its letters and digits."""
    codes = np.frombuffer(re.sub(r"[\W_]+", "", text).encode("utf-32-le"), np.uint32)
    if len(codes) == 0:
        hashes = np.zeros(1, dtype=np.uint32)
    else:
        k = min(params.shingle_size, len(codes))
        hashes = np.array(
            [_shingle_hash(codes[i : i + k]) for i in range(len(codes) - k + 1)], dtype=np.uint32
        )
    a, b = minhash_permutations(params.num_perm, params.minhash_seed)
    return (hashes[:, None] * a[None, :] + b[None, :]).min(axis=0)


def _shingle_hash(codes: np.ndarray) -> int:
    mask = (1 << 64) - 1
    h = 0
    for code in codes.tolist():
        h = (h * 0x100000001B3 + code) & mask
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & mask
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & mask
    h ^= h >> 31
    return h >> 32


def test_bulk_signatures_are_plain_minhash(monkeypatch):
    texts = [
        LONG,
        "",
        "短",
        "a_b",
        "同志们:" * 40,
        "English, and 中文 123",
        LONG[:-2] + "!!",
        "x" * 7,
    ]
    expected = np.array([_plain_signature(t, PARAMS) for t in texts])
    assert (minhash_signatures(texts, PARAMS) == expected).all()
    # Small groups, and long texts a window at a time (windows overlap by shingle_size - 1).
    monkeypatch.setattr(dedup_module, "WINDOW_CHARS", 7)
    assert (minhash_signatures(texts, PARAMS) == expected).all()


def _signatures_for_a_tie() -> np.ndarray:
    """Signatures of b, a, c: a and b agree on 100 of 128 values (below 0.8), c agrees with
    each on 114 (above): c is as near to a as to b."""
    a = np.arange(128, dtype=np.uint32)
    b = a.copy()
    b[100:] += 1000
    c = a.copy()
    c[114:] = b[114:]
    return np.array([b, a, c])


@pytest.mark.parametrize("calls", [[[0, 1, 2]], [[0], [1], [2]]])
def test_a_tie_goes_to_the_smallest_doc_id(calls):
    signatures = _signatures_for_a_tie()
    ids = np.array(["b", "a", "c"])
    digests = np.array([bytes([i + 1]) * 16 for i in range(3)], dtype="S16")
    with Deduplicator(PARAMS) as dedup:
        out = []
        for rows in calls:
            out += dedup.assign(
                ids[rows].tolist(), digests[rows], signatures[rows], np.arange(len(rows))
            )
    assert out == [(None, None), (None, None), (NEAR_DUPLICATE, "a")]
    assert dedup.sizes == {"a": 2}


def test_colliding_band_hashes_do_not_make_candidates(monkeypatch):
    texts = [LONG * 2, "足够长的另一段文字,讲的是完全不同的事情。" * 2, LONG * 2, _near(LONG * 2)]
    docs = table(doc_id=list("abcd"), text=texts)
    expected = clean(docs, PARAMS, Rules()).clean
    # Every band of every document hashes alike: only equal bands may make a candidate.
    monkeypatch.setattr(
        Deduplicator, "_band_keys", lambda self, s: np.zeros((len(s), 9), np.uint64)
    )
    assert clean(docs, PARAMS, Rules()).clean.equals(expected)


def test_sorted_index_finds_every_entry_of_a_key():
    rng = np.random.default_rng(5)
    index, stored = SortedIndex(np.int32), []
    for first in range(0, 400, 20):  # runs of twenty, merged as they grow
        keys = rng.integers(0, 30, 20).astype(np.uint64)
        index.add(keys, np.arange(first, first + 20, dtype=np.int32))
        stored += zip(keys.tolist(), range(first, first + 20), strict=True)
    queries = np.array([3, 31, 7, 3, 29], dtype=np.uint64)
    positions, values = index.find(queries)
    expected = [(i, v) for i, q in enumerate(queries.tolist()) for k, v in stored if k == q]
    assert sorted(zip(positions.tolist(), values.tolist(), strict=True)) == sorted(expected)
    assert len(index._runs) < 20


def test_batches_are_cut_by_characters():
    docs = table(doc_id=list("abcde"), text=["12345", "1", "123", "123456789", ""])
    assert text_spans(docs, 6) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert text_spans(docs, 100) == [(0, 5)]
    pieces = list(sized_batches([docs, docs.slice(0, 1)], 6))
    assert [p.column("doc_id").to_pylist() for p in pieces] == [
        ["a", "b"],
        ["c"],
        ["d"],
        ["e"],
        ["a"],
    ]


# --- the stage on the sample ----------------------------------------------------------------------


def test_sample_audit_shows_salutations_and_placeholders_removed(sample_run: Paths):
    audit = read_table(sample_run.table("clean_audit"), CLEAN_AUDIT)
    totals = audit.group_by("rule").aggregate([("n_matches", "sum"), ("chars_removed", "sum")])
    fired = dict(
        zip(
            totals.column("rule").to_pylist(),
            totals.column("n_matches_sum").to_pylist(),
            strict=True,
        )
    )
    assert fired["salutation"] >= 9 and fired["closing"] >= 1
    assert fired["placeholder_year"] >= 8 and fired["placeholder_place"] >= 1
    assert pc.min(totals.column("chars_removed_sum")).as_py() > 0
    cleaned = "\n".join(read_table(sample_run.table("clean"), CLEAN).column("text").to_pylist())
    for boilerplate in ("同志们:", "谢谢!", "20xx", "*市", "xx"):
        assert boilerplate not in cleaned


def test_ingest_report_and_metrics(sample_run: Paths):
    report = read_table(sample_run.table("ingest_report"), INGEST_REPORT).to_pylist()
    n = read_table(sample_run.table("clean"), CLEAN).num_rows
    for dimension in ("status", "encoding", "format"):
        rows = [r for r in report if r["dimension"] == dimension]
        assert sum(r["count"] for r in rows) == n
    assert {"dimension": "format", "value": "txt", "count": n, "files": 1} in report
    metrics = read_json(sample_run.metrics / "ingest.json")
    assert metrics["documents"] == n and metrics["files"] == 1
    assert sum(metrics["status"].values()) == n


def test_ingest_report_counts_files_and_documents():
    report = IngestReport()
    docs = table(
        source=["a.csv", "a.csv", "b.txt"],
        encoding=["utf-8", "utf-8", None],
        format=["csv", "csv", "txt"],
    )
    report.add(docs, table(status=[KEPT, DUPLICATE, KEPT]))
    rows = report.table().to_pylist()
    assert rows[0] == {"dimension": "status", "value": "duplicate", "count": 1, "files": 1}
    assert {"dimension": "status", "value": "kept", "count": 2, "files": 2} in rows
    assert {"dimension": "encoding", "value": "(none)", "count": 1, "files": 1} in rows
    assert report.metrics()["kept_share"] == pytest.approx(2 / 3, abs=1e-6)


# --- worker processes -----------------------------------------------------------------------------


def _raw_with_duplicates(folder):
    """The sample corpus three times: as it is, copied, and with a few words changed."""
    text = SAMPLE_FILE.read_text(encoding="utf-8")
    folder.mkdir()
    (folder / "a.txt").write_text(text, encoding="utf-8")
    (folder / "b.txt").write_text(text, encoding="utf-8")
    (folder / "c.txt").write_text(text.replace("妇女", "女性").replace("工作", "事业"), "utf-8")
    return folder


def test_worker_count_and_start_method_do_not_change_the_bytes(
    tmp_path, params, monkeypatch, caplog
):
    """Cleaning inline, or in two spawned workers fed small tasks and batches: the same files."""
    caplog.set_level("INFO", logger="pipeline.clean")
    monkeypatch.setattr(clean_module, "INLINE_CHARS", 0)
    monkeypatch.setattr(clean_module, "TASK_CHARS", 3000)
    monkeypatch.setattr(clean_module, "BATCH_CHARS", 20000)
    raw = _raw_with_duplicates(tmp_path / "raw")
    outputs = []
    for name, workers, method in (("one", 1, None), ("two", 2, "spawn")):
        paths = Paths.under(raw, tmp_path / name)
        settings = dataclasses.replace(params.clean, workers=workers, start_method=method)
        run = dataclasses.replace(params, clean=settings)
        ingest_main(run, paths)
        clean_module.main(run, paths)
        files = ["clean.parquet", "clean_audit.parquet", "ingest_report.parquet"]
        outputs.append([(paths.processed / f).read_bytes() for f in files])
    assert outputs[0] == outputs[1]
    assert "2 worker process(es)" in caplog.text
    statuses = read_table(paths.table("clean"), CLEAN).column("status").to_pylist()
    assert statuses.count(DUPLICATE) > 50 and statuses.count(NEAR_DUPLICATE) > 5
    documents = read_table(paths.table("documents"), DOCUMENTS)
    whole = clean(documents, params.clean, load_rules(params.clean)).clean
    assert read_table(paths.table("clean"), CLEAN).equals(CLEAN.conform(whole))
