"""New-word discovery (pipeline/text/new_words.py), segment.new_words and the evidence that it
keeps coined terms whole without making segmentation worse."""

import dataclasses
import math
from collections import Counter

import jieba
import numpy as np
import pyarrow as pa
import pytest

import pipeline.segment as segment_module
from pipeline.bench.words import discover_lines, span_f1
from pipeline.config import ConfigError, params_from_dict
from pipeline.cut import cut_lines
from pipeline.io import Paths, read_table, write_table
from pipeline.schemas import CLEAN, NEW_WORDS, TOKENS
from pipeline.segment import fingerprint
from pipeline.segment import main as seg_main
from pipeline.text.new_words import (
    Candidates,
    Checks,
    Thresholds,
    accepted_words,
    decode_utf8,
    discover,
    judge,
    read_review,
)
from pipeline.text.tokenizers import load_lexicon
from tests.conftest import FIXTURES, table

FIXTURE = FIXTURES / "new_words"


def _lines(name: str) -> list[str]:
    text = (FIXTURE / name).read_text(encoding="utf-8")
    return [x for x in text.splitlines() if x.strip() and not x.startswith("#")]


TERMS = _lines("policy_terms.txt")


def _policy_gold() -> list[list[str]]:
    """Sentences of the made-up work report, segmented: 300 lines, each term in 42-44 of
    them, in varied contexts."""
    templates = _lines("policy_templates.txt")
    lines = []
    for d in range(60):
        for k in range(5):
            template = templates[(d * 7 + k * 3) % len(templates)]
            lines.append(template.replace("{}", TERMS[(d + k) % len(TERMS)]).split())
    return lines


GOLD = _policy_gold()
RAW = ["".join(tokens) for tokens in GOLD]


@pytest.fixture(scope="module")
def seg(params):
    """The shipped segment settings without the user dictionary (as for the MSR evaluation)."""
    return dataclasses.replace(params.segment, userdict=None)


@pytest.fixture(scope="module")
def policy_table(seg) -> pa.Table:
    return discover_lines(RAW, seg)


def _checks(seg, **overrides) -> Checks:
    lexicon = load_lexicon(seg, check=False)
    checks = segment_module.discovery_checks(seg, lexicon)
    return dataclasses.replace(checks, **overrides)


def _batches(lines: list[str], size: int):
    texts = pa.array(lines, pa.string())

    def batches():
        for start in range(0, len(texts), size):
            yield texts.slice(start, size)

    return batches


# --------------------------------------------------------------------------- discovery


def test_coined_terms_are_discovered_and_nothing_else_is_accepted(policy_table):
    assert policy_table.schema.equals(NEW_WORDS.schema)
    assert sorted(accepted_words(policy_table)) == sorted(TERMS)
    rows = policy_table.to_pylist()
    assert [r["accepted"] for r in rows] == sorted((r["accepted"] for r in rows), reverse=True)
    scores = [r["score"] for r in rows if r["accepted"]]
    assert scores == sorted(scores, reverse=True)


def test_counts_and_document_frequency_are_exact(policy_table):
    rows = {r["word"]: r for r in policy_table.to_pylist()}
    for term in TERMS:
        assert rows[term]["frequency"] == sum(line.count(term) for line in RAW)
        assert rows[term]["document_frequency"] == sum(term in line for line in RAW)


def _direct_stats(word: str, lines: list[str]) -> tuple[float, float, float]:
    """Cohesion and branching entropies computed the slow, obvious way."""
    text = "\n".join(lines)
    total = sum(ch not in "\n，。：" for ch in text)

    def count(s: str) -> int:
        return sum(1 for i in range(len(text)) if text.startswith(s, i))

    def entropy(neighbours: list[str]) -> float:
        n = len(neighbours)
        counts = Counter(x for x in neighbours if x not in "\n，。：")
        boundary = n - sum(counts.values())  # each its own neighbour
        h = -sum(c / n * math.log(c / n) for c in counts.values())
        return h + boundary * math.log(n) / n

    starts = [i for i in range(len(text)) if text.startswith(word, i)]
    left = entropy([text[i - 1] if i > 0 else "\n" for i in starts])
    right = entropy([text[i + len(word)] if i + len(word) < len(text) else "\n" for i in starts])
    c = count(word)
    pmi = min(
        math.log(c * total / (count(word[:k]) * count(word[k:]))) for k in range(1, len(word))
    )
    return pmi / -math.log(c / total), left, right


@pytest.mark.parametrize("word", ["精准扶贫", "中国制造2025"])
def test_statistics_match_a_direct_computation(policy_table, word):
    row = next(r for r in policy_table.to_pylist() if r["word"] == word)
    cohesion, left, right = _direct_stats(word, RAW)
    assert row["cohesion"] == pytest.approx(cohesion, abs=1e-4)
    assert row["left_entropy"] == pytest.approx(left, abs=1e-4)
    assert row["right_entropy"] == pytest.approx(right, abs=1e-4)


def test_the_table_does_not_depend_on_batch_sizes(seg, policy_table):
    checks = _checks(seg)
    thresholds = segment_module.discovery_thresholds(seg)
    for size in (1, 7, len(RAW)):
        assert discover(_batches(RAW, size), thresholds, checks).equals(policy_table)


def test_fragments_and_boundary_crossers_are_not_accepted(policy_table):
    rows = {r["word"]: r for r in policy_table.to_pylist()}
    accepted = set(accepted_words(policy_table))
    assert not any(ch in w for w in accepted for ch in "，。：")
    for fragment in ("供给侧结构性", "给侧结构性改革", "结构性改革", "国制造2025", "中国制造202"):
        assert fragment not in accepted
    # Phrases around a particle or stopword are listed with the reason.
    assert rows["为抓手"]["reason"] == "stopword"


def _candidates(words, frequency, left=3.0, right=3.0, cohesion=0.9) -> Candidates:
    n = len(words)
    return Candidates(
        list(words),
        np.array(frequency, np.int64),
        np.full(n, cohesion),
        np.full(n, left),
        np.full(n, right),
        np.zeros(n, np.uint64),
    )


def test_judge_marks_fragments_userdict_compounds_and_review(seg):
    checks = _checks(seg)
    thresholds = Thresholds()
    words = ["供给侧结构性改革", "供给侧结构性", "脱贫攻坚", "精准扶贫", "放管服", "营改增"]
    rows = {
        r["word"]: r
        for r in judge(
            _candidates(words, [40, 42, 30, 30, 30, 30]),
            thresholds,
            dataclasses.replace(
                checks,
                userwords=frozenset({"攻坚"}),
                review={"放管服": False, "营改增": True},
            ),
        )
    }
    assert rows["供给侧结构性改革"]["accepted"]
    assert rows["供给侧结构性"]["reason"] == "fragment"  # 40 of its 42 are in the longer one
    assert rows["脱贫攻坚"]["reason"] == "userdict"  # holds a user word: the user's cut wins
    assert rows["放管服"]["reason"] == "rejected" and not rows["放管服"]["accepted"]
    assert rows["营改增"]["accepted"]
    # A compound of dictionary words needs more contexts than a new word of its own.
    few = judge(_candidates(["精准扶贫", "营改增"], [30, 30], left=2.0), thresholds, checks)
    assert {r["word"]: r["reason"] for r in few} == {"精准扶贫": "compound", "营改增": ""}
    # Counted units are numbers, in simplified and traditional characters (兩個 came up as a
    # "new word" of bench-legacy's Big5 files before).
    counted = judge(_candidates(["十二號", "兩個", "萬億元"], [30, 30, 30]), thresholds, checks)
    assert {r["word"]: r["reason"] for r in counted} == {
        w: "numeric" for w in ["十二號", "兩個", "萬億元"]
    }


def test_review_keep_overrules_a_rule_but_not_the_user_dictionary(seg):
    checks = _checks(seg, userwords=frozenset({"脱贫攻坚"}), review={"供给侧结构性": True})
    checks = dataclasses.replace(checks, review={"供给侧结构性": True, "脱贫攻坚": True})
    rows = judge(
        _candidates(["供给侧结构性改革", "供给侧结构性", "脱贫攻坚"], [40, 42, 30]),
        Thresholds(),
        checks,
    )
    verdicts = {r["word"]: r["accepted"] for r in rows}
    assert verdicts == {"供给侧结构性改革": True, "供给侧结构性": True, "脱贫攻坚": False}


def test_review_file_is_parsed_and_errors_name_the_line(tmp_path):
    path = tmp_path / "review.tsv"
    path.write_text("# verdicts\n放管服\treject\n营改增\tKEEP  # ok\n\n", encoding="utf-8")
    assert read_review(path) == {"放管服": False, "营改增": True}
    path.write_text("放管服\treject\n营改增\tmaybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"review.tsv:2: expected"):
        read_review(path)


def test_decode_utf8_matches_python():
    texts = pa.array(["中国制造2025", "", "a😀b", "互联网+行动"])
    codes, starts = decode_utf8(texts.slice(1))
    joined = "".join(texts.slice(1).to_pylist())
    assert codes.tolist() == [ord(c) for c in joined]
    assert starts.tolist() == [0, 0, 3]


# --------------------------------------------------------------------------- use


def test_use_keeps_the_terms_whole_on_both_backends(seg, policy_table):
    words = accepted_words(policy_table)
    for backend in ("rjieba", "jieba"):
        settings = dataclasses.replace(seg, backend=backend)
        used = [line.split() for line in cut_lines(RAW, settings, words)]
        plain = [line.split() for line in cut_lines(RAW, settings)]
        for term in TERMS:
            lines = [i for i, line in enumerate(RAW) if term in line]
            assert all(term in used[i] for i in lines), (backend, term)
        # Without the discovered words most of them are cut into pieces.
        assert sum(term in tokens for term in TERMS for tokens in plain) < len(RAW) / 5


def test_segmentation_f1_with_and_without_use(seg, policy_table):
    """The evidence on a fixture of our own (the README quotes the MSR numbers): the
    discovered words raise word-span F1 against the hand segmentation, and it never falls
    below plain jieba with the same HMM setting."""
    jieba.setLogLevel(60)
    lcut = span_f1(GOLD, [jieba.lcut(x, HMM=seg.hmm) for x in RAW]).f1
    plain = span_f1(GOLD, [line.split() for line in cut_lines(RAW, seg)]).f1
    used = span_f1(
        GOLD, [line.split() for line in cut_lines(RAW, seg, accepted_words(policy_table))]
    )
    assert plain == pytest.approx(lcut, abs=1e-9)
    assert used.f1 >= plain + 0.1  # 0.735 -> 0.891 today
    assert used.recall > 0.85


def test_span_f1():
    gold = [["中国", "制造", "2025"], ["互联网+"]]
    score = span_f1(gold, [["中国制造", "2025"], ["互联网", "+"]])
    assert (score.gold, score.predicted, score.correct) == (4, 4, 1)
    assert score.f1 == pytest.approx(0.25)
    # A character the gold file moved to the line before costs nothing.
    assert span_f1([["甲", "“"], ["乙"]], [["甲"], ["“", "乙"]]).f1 == 1.0
    with pytest.raises(ValueError, match="differs from the gold text at character 1"):
        span_f1([["甲乙"]], [["甲", "丙"]])


# --------------------------------------------------------------------------- the stage


def _clean_table(lines: list[str]) -> pa.Table:
    n = len(lines)
    status = ["too_short" if i % 50 == 49 else "kept" for i in range(n)]
    return table(
        doc_id=[f"p{i:04d}" for i in range(n)],
        text=lines,
        n_chars=[len(t) for t in lines],
        status=status,
        reason=[None if s == "kept" else "short" for s in status],
        cluster_id=[None] * n,
        cluster_size=[None] * n,
        spin_score=[0.0] * n,
    )


def _run(folder, params, **settings) -> Paths:
    paths = Paths.under(folder, folder)
    docs = ["".join(RAW[i : i + 3]) for i in range(0, len(RAW), 3)]  # 100 documents
    write_table(_clean_table(docs), paths.table("clean"), CLEAN)
    seg = dataclasses.replace(params.segment, workers=1, **settings)
    seg_main(dataclasses.replace(params, segment=seg), paths)
    return paths


def _tokens(paths: Paths) -> list[str]:
    lists = read_table(paths.table("tokens"), TOKENS).column("tokens").to_pylist()
    return [t for tokens in lists for t in tokens]


def test_stage_use_suggest_off_and_the_review_file(tmp_path, params, monkeypatch):
    cache = str(tmp_path / "cache")
    used = _run(tmp_path / "use", params, new_words="use", cache_dir=cache)
    table_used = read_table(used.table("new_words"), NEW_WORDS)
    assert set(TERMS) <= set(accepted_words(table_used))
    tokens = Counter(_tokens(used))
    assert all(tokens[term] for term in TERMS)
    # The documents not kept by clean are left out: 2 of the 100 hold 放管服 fewer times.
    columns = table_used.select(["word", "frequency"]).to_pydict()
    frequency = dict(zip(columns["word"], columns["frequency"], strict=True))
    assert frequency["放管服"] == tokens["放管服"]

    suggest = _run(tmp_path / "suggest", params, new_words="suggest", cache_dir=cache)
    off = _run(tmp_path / "off", params, new_words="off", cache_dir=cache)
    assert suggest.table("tokens").read_bytes() == off.table("tokens").read_bytes()
    table_suggested = read_table(suggest.table("new_words"), NEW_WORDS)
    assert table_suggested.drop(["token_count"]).equals(table_used.drop(["token_count"]))
    # token_count: how often each listed word is a token of tokens.parquet.
    used_counts = dict(zip(columns["word"], table_used["token_count"].to_pylist(), strict=True))
    assert all(used_counts[t] == tokens[t] for t in TERMS)
    suggested = Counter(_tokens(suggest))
    assert table_suggested["token_count"].to_pylist() == [suggested[w] for w in columns["word"]]
    assert read_table(off.table("new_words"), NEW_WORDS).num_rows == 0
    # jieba's HMM guesses some (放管服 between punctuation), most are cut into pieces.
    assert sum(t in TERMS for t in _tokens(off)) < sum(tokens[t] for t in TERMS) / 3

    # A reject in the review file: the word stays out on every later run, and the changed
    # list of added words makes the cache miss (no token of the old list comes back).
    review = tmp_path / "review.tsv"
    review.write_text("放管服\treject\n", encoding="utf-8")
    seen = []
    real = segment_module.segment_utf8

    def counting(texts, *args):
        seen.append(len(texts))
        return real(texts, *args)

    monkeypatch.setattr(segment_module, "segment_utf8", counting)
    again = _run(
        tmp_path / "again", params, new_words="use", cache_dir=cache, new_words_review=review
    )
    rows = {r["word"]: r for r in read_table(again.table("new_words"), NEW_WORDS).to_pylist()}
    assert rows["放管服"]["reason"] == "rejected" and not rows["放管服"]["accepted"]
    # 放管服 is back to what jieba's HMM makes of it alone; the other terms stay whole.
    assert Counter(_tokens(again))["放管服"] == Counter(_tokens(off))["放管服"] < tokens["放管服"]
    assert all(Counter(_tokens(again))[t] == tokens[t] for t in TERMS if t != "放管服")
    assert sum(seen) == 98  # every kept document segmented again


def test_fingerprint_covers_the_added_words_not_the_discovery_settings(params):
    seg = params.segment
    base = fingerprint(seg, ["精准扶贫"])
    assert fingerprint(seg, ["精准扶贫", "放管服"]) != base
    assert fingerprint(seg, []) != base
    for change in ({"new_words": "off"}, {"new_words_min_count": 9}):
        assert fingerprint(dataclasses.replace(seg, **change), ["精准扶贫"]) == base


def test_user_dictionary_wins_over_a_discovered_word(params, tmp_path):
    userdict = tmp_path / "userdict.txt"
    userdict.write_text("结构性改革 100 n\n", encoding="utf-8")
    seg = dataclasses.replace(params.segment, userdict=userdict)
    rows = {r["word"]: r for r in discover_lines(RAW, seg).to_pylist()}
    assert rows["供给侧结构性改革"]["reason"] == "userdict"
    # Added anyway (a word list given to cut), the user's word still comes out whole.
    out = next(cut_lines(["深化供给侧结构性改革。"], seg, ["供给侧结构性改革"]))
    assert "结构性改革" in out.split()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("new_words", "maybe"),
        ("new_words_min_count", 1),
        ("new_words_min_cohesion", 1.5),
        ("new_words_min_entropy", -1),
        ("new_words_max_chars", 40),
    ],
)
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"segment.{key}"):
        params_from_dict({"segment": {key: value}})


def test_infer_segments_with_the_words_of_the_training_run(tmp_path, params, sample_run):
    """segment with a given word list (what infer passes: the words the model's training run
    added, saved with the model) adds those and discovers nothing in the new documents."""
    from pipeline.topics.model_store import load_model

    assert load_model(sample_run.models / "lda").meta["settings"]["new_words"] == []
    paths = Paths.under(tmp_path, tmp_path)
    write_table(_clean_table(RAW[:30]), paths.table("clean"), CLEAN)
    seg = dataclasses.replace(params.segment, workers=1, cache_dir=None)
    seg_main(dataclasses.replace(params, segment=seg), paths, added_words=["放管服", "营改增"])
    assert read_table(paths.table("new_words"), NEW_WORDS).num_rows == 0
    tokens = Counter(_tokens(paths))
    assert tokens["营改增"] == sum(line.count("营改增") for line in RAW[:29])
    assert tokens["精准扶贫"] == 0  # not given, not discovered


def test_a_rerun_on_the_same_texts_takes_the_discovery_from_the_cache(
    tmp_path, params, monkeypatch
):
    cache = tmp_path / "cache"
    calls = []
    real = segment_module.find_new_words

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(segment_module, "find_new_words", counting)
    first = _run(tmp_path / "a", params, cache_dir=str(cache))
    # Another stopword setting re-runs segment, not discovery.
    second = _run(tmp_path / "b", params, cache_dir=str(cache), keep_numbers=True)
    assert len(calls) == 1
    assert first.table("new_words").read_bytes() == second.table("new_words").read_bytes()
    review = tmp_path / "review.tsv"
    review.write_text("营改增\treject\n", encoding="utf-8")
    _run(tmp_path / "c", params, cache_dir=str(cache), new_words_review=review)
    _run(tmp_path / "d", params, cache_dir=str(cache), new_words_min_count=6)
    assert len(calls) == 3
    assert len(list(cache.glob("new_words-*.parquet"))) == 3
