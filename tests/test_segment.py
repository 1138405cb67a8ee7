import dataclasses
import itertools
import json
import logging
import sqlite3
import subprocess
import sys
import time

import jieba
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline.segment as segment_module
from pipeline.bench.segment import FLOOR_STEPS, _floor, read_corpus, token_agreement
from pipeline.cli import main as cli_main
from pipeline.config import ConfigError, SegmentParams, params_from_dict
from pipeline.io import Paths, read_table, write_table
from pipeline.schemas import CLEAN, TOKENS, SchemaError
from pipeline.segment import Segmenter, fingerprint, segment
from pipeline.segment import main as seg_main
from pipeline.text import segmentation as segmentation_module
from pipeline.text.normalize import normalize_text
from pipeline.text.rules import load_replacements
from pipeline.text.segmentation import segment_texts, tokenize
from pipeline.text.token_filters import content_mask, is_content_token
from pipeline.text.tokenizers import Lexicon, load_lexicon, read_userdict
from tests.conftest import FIXTURES, ROOT, SAMPLE_FILE, table

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
    # The jieba backend: it is the one that could touch jieba's global dictionary (jieba.dt).
    lexicon = load_lexicon(SegmentParams(backend="jieba", userdict=userdict, stopwords=None))
    assert lexicon.backend.cut("甲乙丙丁戊", False) == ["甲乙丙丁戊"]  # the private one has it
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
        ("兩個", False),  # traditional numerals and units count as numbers too
        ("三萬億", False),
        ("五歲", False),
        ("幾條", False),
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


# --------------------------------------------------------------------------- dictionaries


def test_userdict_handles_bom_crlf_missing_freq_comments_and_duplicates(tmp_path, caplog):
    path = tmp_path / "u.txt"
    text = "\ufeff妇联组织 50 n\r\n巾帼建功\r\n# a comment\r\n\r\n妇联组织 80 nt\r\n家庭暴力 40\r\n"
    path.write_bytes(text.encode("utf-8"))
    entries = read_userdict(path)
    assert [(e.word, e.freq, e.tag) for e in entries] == [
        ("巾帼建功", None, None),
        ("妇联组织", 80, "nt"),
        ("家庭暴力", 40, None),
    ]
    assert "duplicate" in caplog.text and "妇联组织 (lines 1 and 5)" in caplog.text


@pytest.mark.parametrize("line", ["妇联 abc 12", "妇联 0 n", "妇联 10 n extra"])
def test_userdict_bad_line_names_file_and_line(tmp_path, line):
    path = tmp_path / "u.txt"
    path.write_text(f"男女平等 50 n\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"u\.txt:2"):
        read_userdict(path)


def test_userdict_must_be_utf8(tmp_path):
    path = tmp_path / "u.txt"
    path.write_bytes("男女平等 50 n\n".encode("gbk"))
    with pytest.raises(ValueError, match="UTF-8"):
        read_userdict(path)


@pytest.mark.parametrize("backend", ["jieba", "rjieba"])
def test_words_that_do_not_stay_whole_are_listed(tmp_path, caplog, backend):
    path = tmp_path / "u.txt"
    path.write_text("巾帼建功 30 nz\n我们的 1\n", encoding="utf-8")
    params = SegmentParams(userdict=path, stopwords=None, stopwords_iso=False, backend=backend)
    lexicon = load_lexicon(params)
    assert "我们的" in caplog.text and "巾帼建功" not in caplog.text.split("one token")[-1]
    assert lexicon.backend.cut("巾帼建功", True) == ["巾帼建功"]


@pytest.mark.parametrize("backend", ["jieba", "rjieba"])
def test_stopwords_are_segmented_like_the_text(tmp_path, backend):
    stop = tmp_path / "s.txt"
    stop.write_text("进一步加强\n", encoding="utf-8")
    params = SegmentParams(userdict=None, stopwords=stop, stopwords_iso=False, backend=backend)
    lexicon = load_lexicon(params)
    assert {"进一步", "加强"} <= lexicon.stopwords
    assert tokenize("进一步加强妇女儿童工作", params, lexicon) == ["妇女儿童", "工作"]


# --------------------------------------------------------------------------- backends


@pytest.fixture(scope="module")
def both_backends(params):
    """The jieba and rjieba lexicons with the shipped user dictionary and stopwords."""
    return {
        name: load_lexicon(dataclasses.replace(params.segment, backend=name))
        for name in ("jieba", "rjieba")
    }


def test_backends_agree_on_the_sample(params, both_backends):
    """Parity: the same dictionary and user dictionary give >= 99.9% of tokens in common."""
    lines = [line for line in SAMPLE_FILE.read_text(encoding="utf-8").splitlines() if line]
    text = normalize_text("\n".join(lines), load_replacements(params.clean.replacements))
    docs = [p for p in text.split("\n") if p.strip()]
    cuts = {n: [lex.backend.cut(d, True) for d in docs] for n, lex in both_backends.items()}
    agreement, n_jieba, _ = token_agreement(cuts["jieba"], cuts["rjieba"])
    assert n_jieba > 10_000
    assert agreement >= 0.999
    # and after filtering, the content tokens match too
    filtered = {
        n: [tokenize(d, dataclasses.replace(params.segment, backend=n), lex) for d in docs]
        for n, lex in both_backends.items()
    }
    assert token_agreement(filtered["jieba"], filtered["rjieba"])[0] >= 0.999


def test_symbol_runs_are_split_as_jieba_splits_them(params, both_backends):
    """jieba-rs alone keeps 4-2, abc.com, NWZ-E443 whole where jieba splits them (about 0.4% of
    tokens of news text); the rjieba backend repairs that, in cut() and in bulk alike."""
    text = "比分4-2，访问www.douban.com或拨打400-6060-995，型号NWZ-E443和C++，增长3.5%"
    jieba_cut = both_backends["jieba"].backend.cut(text, True)
    assert "NWZ" in jieba_cut and "douban" in jieba_cut
    assert both_backends["rjieba"].backend.cut(text, True) == jieba_cut
    loose = dataclasses.replace(params.segment, keep_numbers=True, allow_single_char=True)
    tokens = {
        name: segment_texts([text, "无", text], dataclasses.replace(loose, backend=name), lex)
        for name, lex in both_backends.items()
    }
    assert tokens["jieba"].equals(tokens["rjieba"])


def test_tokens_are_located_in_the_utf8_text(params, lexicon):
    """Tokens are found by their lengths in the UTF-8 bytes: characters outside the BMP, tokens
    of 256 characters or more, empty and blank texts all come out as the readable rule says."""
    texts = [
        "",
        " \r\n",
        "𠀀𠀁中文😀北京天安门",
        "a" * 300 + "中华人民共和国" + "b" * 70_000,
        "上海\r\n北京",
    ]
    loose = dataclasses.replace(params.segment, allow_single_char=True, keep_numbers=True)
    for seg in (params.segment, loose):
        expected = [
            [w for w in lexicon.backend.cut(t, True) if is_content_token(w, seg, lexicon.stopwords)]
            for t in texts
        ]
        assert segment_texts(texts, seg, lexicon).to_pylist() == expected
    assert [len(w) for w in tokenize(texts[3], params.segment, lexicon)] == [300, 7, 70_000]


def test_tokenizer_output_must_cover_the_text(params, lexicon):
    class Lossy:  # drops the last character of every text
        name = "lossy"

        def cut(self, text, hmm):
            return lexicon.backend.cut(text[:-1], hmm)

    with pytest.raises(RuntimeError, match="do not cover the text"):
        segment_texts(["北京天安门"], params.segment, Lexicon(Lossy(), lexicon.stopwords))


@pytest.mark.parametrize("backend", ["jieba", "rjieba"])
def test_bench_floor_runs_each_step_for_each_backend(backend):
    # A step whose code fails (a renamed module, say) raises rather than timing an error.
    steps = _floor(backend, repeats=1)
    assert list(steps) == list(FLOOR_STEPS)


def test_bench_floor_steps_are_differences_of_the_fastest_runs(monkeypatch):
    # Each run's seconds, by the code it runs (the steps so far), for two repeats each.
    seconds = {
        "pass": [0.05, 0.02],
        "pass; import pyarrow.parquet": [0.12, 0.15],
        "pass; import pyarrow.parquet; import rjieba": [0.30, 0.11],  # noise: faster than before
    }
    clock = [0.0]

    def fake_run(args, check):
        assert check
        clock[0] += seconds[args[-1]].pop(0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    steps = _floor("rjieba", repeats=2)
    expected = {"interpreter": 0.02, "pyarrow.parquet": 0.10, "dictionary": 0.0}
    assert steps == pytest.approx(expected)


def test_token_agreement_counts_spans():
    assert token_agreement([["ab", "c"]], [["ab", "c"]])[0] == 1.0
    assert token_agreement([["ab", "c"]], [["a", "b", "c"]]) == (0.4, 2, 3)


@pytest.mark.parametrize("backend", ["jieba", "rjieba"])
def test_pos_filter_keeps_listed_tags(params, backend):
    seg = dataclasses.replace(params.segment, backend=backend, pos="n,nz")
    lexicon = load_lexicon(seg)
    tokens = tokenize("我们要认真落实男女平等基本国策", seg, lexicon)
    assert tokens == ["男女平等", "基本国策"]


def _collocation_docs():
    """Six clean documents in which 人工智能 and 芯片 keep coming together."""
    texts = ["人工智能芯片研发团队成立"] * 3 + ["公司发布人工智能芯片"] * 2 + ["团队讨论研发计划"]
    n = len(texts)
    return table(
        doc_id=[str(i) for i in range(n)],
        text=texts,
        n_chars=[len(t) for t in texts],
        status=["kept"] * n,
        reason=[None] * n,
        cluster_id=[None] * n,
        cluster_size=[None] * n,
        spin_score=[0.0] * n,
    )


def test_phrases_join_frequent_collocations(params, lexicon):
    seg = dataclasses.replace(params.segment, phrases_threshold=0.5, phrases_min_count=2)
    docs = _collocation_docs()
    plain = segment(docs, params.segment, lexicon).column("tokens").to_pylist()
    joined = segment(docs, seg, lexicon).column("tokens").to_pylist()
    assert plain[0][:2] == ["人工智能", "芯片"]
    assert "人工智能_芯片" in joined[0] and "人工智能_芯片" in joined[3]


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"backend": "pkuseg"}, "segment.backend"),
        ({"pos": " , "}, "segment.pos"),
        ({"pos": "n,名词"}, "segment.pos"),
        ({"phrases_threshold": 1.5}, "segment.phrases_threshold"),
        ({"phrases_min_count": 0}, "segment.phrases_min_count"),
        ({"workers": -1}, "segment.workers"),
        ({"start_method": "thread"}, "segment.start_method"),
        ({"cache_dir": " "}, "segment.cache_dir"),
        ({"cache_max_mb": -1}, "segment.cache_max_mb"),
    ],
)
def test_bad_segment_settings_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        params_from_dict({"segment": {"userdict": None, "stopwords": None, **values}})


# --------------------------------------------------------------------------- the stage run


def _corpus(n: int = 240) -> pa.Table:
    """A few hundred documents from the sample: the first 150 repeat lines, some not kept."""
    lines = [x for x in SAMPLE_FILE.read_text(encoding="utf-8").splitlines() if len(x) > 20]
    texts = [lines[i % len(lines)] + ("" if i < 150 else f"（补充说明{i}）") for i in range(n)]
    status = ["too_short" if i % 17 == 5 else "kept" for i in range(n)]
    return table(
        doc_id=[f"d{i:04d}" for i in range(n)],
        text=texts,
        n_chars=[len(t) for t in texts],
        status=status,
        reason=[None if s == "kept" else "short" for s in status],
        cluster_id=[None] * n,
        cluster_size=[None] * n,
        spin_score=[0.0] * n,
    )


def _run_stage(folder, params, docs, **settings):
    paths = Paths.under(folder, folder)
    write_table(docs, paths.table("clean"), CLEAN)
    seg = dataclasses.replace(params.segment, **settings)
    seg_main(dataclasses.replace(params, segment=seg), paths)
    return paths.table("tokens")


def test_worker_count_and_start_method_do_not_change_the_bytes(tmp_path, params, monkeypatch):
    """One process, or two spawned workers fed many small tasks: the same file."""
    monkeypatch.setattr(segment_module, "INLINE_BYTES", 0)
    monkeypatch.setattr(segment_module, "TASK_BYTES", 4000)
    docs = _corpus()
    one = _run_stage(tmp_path / "one", params, docs, workers=1, cache_dir=None)
    two = _run_stage(
        tmp_path / "two", params, docs, workers=2, start_method="spawn", cache_dir=None
    )
    assert one.read_bytes() == two.read_bytes()
    expected = segment(docs, params.segment, load_lexicon(params.segment))
    assert read_table(one, TOKENS).equals(TOKENS.conform(expected))


def test_small_jobs_several_in_flight_give_the_same_rows(tmp_path, params, monkeypatch):
    """Jobs of a few texts each, two started ahead of the one being finished: the same table
    (only the row groups differ), and each job a row group of the file."""
    docs = _corpus()
    whole = _run_stage(tmp_path / "whole", params, docs, workers=2, cache_dir=None)
    monkeypatch.setattr(segment_module, "INLINE_BYTES", 0)
    monkeypatch.setattr(segment_module, "JOB_BYTES", 3000)
    small = _run_stage(tmp_path / "small", params, docs, workers=2, cache_dir=str(tmp_path / "c"))
    assert read_table(small, TOKENS).equals(read_table(whole, TOKENS))
    assert pq.ParquetFile(small).metadata.num_row_groups > 10


def test_slices_hold_about_the_given_text_bytes():
    texts = ["一" * 10, "二" * 400, "", "三" * 5, "四" * 5, "五" * 5]  # 3 bytes a character
    docs = table(doc_id=[str(i) for i in range(len(texts))], text=texts)
    parts = list(segment_module.text_slices(docs, 40))
    assert [p.column("doc_id").to_pylist() for p in parts] == [["0"], ["1"], ["2", "3", "4"], ["5"]]
    assert list(segment_module.text_slices(docs.slice(0, 0), 40))[0].num_rows == 0


def test_rows_in_order_and_rows_not_kept_come_out_right(tmp_path, params):
    """Unique texts (their token lists go straight to their rows) between rows not kept."""
    docs = _corpus(240).slice(150)
    out = _run_stage(tmp_path, params, docs, workers=1, cache_dir=None)
    expected = segment(docs, params.segment, load_lexicon(params.segment))
    assert read_table(out, TOKENS).equals(TOKENS.conform(expected))
    assert expected.column("n_tokens").to_pylist().count(0) == docs.num_rows - sum(
        s == "kept" for s in docs.column("status").to_pylist()
    )


def test_warm_cache_rerun_with_workers_gives_the_same_bytes(tmp_path, params, monkeypatch):
    """With entries in the cache, the workers start at once and take the new documents."""
    monkeypatch.setattr(segment_module, "INLINE_BYTES", 0)
    cache = str(tmp_path / "cache")
    docs = _corpus(120)
    _run_stage(tmp_path / "a", params, docs.slice(0, 100), workers=1, cache_dir=cache)
    started = []
    real = segment_module.Segmenter._ensure_pool

    def recording(self, inherit):
        started.append(inherit)
        return real(self, inherit)

    monkeypatch.setattr(segment_module.Segmenter, "_ensure_pool", recording)
    out = _run_stage(tmp_path / "b", params, docs, workers=2, cache_dir=cache)
    assert started and started[0] is False  # from expect(): they load their own tokenizers
    fresh = _run_stage(tmp_path / "c", params, docs, workers=1, cache_dir=None)
    assert out.read_bytes() == fresh.read_bytes()


def test_stage_does_not_import_pandas(tmp_path, params):
    """pyarrow imports pandas (0.4 s, 40 MB per process) the first time pa.array or
    Array.to_numpy is called; the stage and its workers avoid both."""
    docs = _corpus(60)
    paths = Paths.under(tmp_path, tmp_path)
    write_table(docs, paths.table("clean"), CLEAN)
    script = (
        "import sys, dataclasses\n"
        "from pipeline.config import load_params\n"
        "from pipeline.io import Paths\n"
        "from pipeline import segment\n"
        f"params = load_params({str(ROOT / 'params.yaml')!r})\n"
        "seg = dataclasses.replace(params.segment, workers=2, cache_dir=None)\n"
        "segment.INLINE_BYTES = 0\n"
        f"paths = Paths.under({str(tmp_path)!r}, {str(tmp_path)!r})\n"
        "segment.main(dataclasses.replace(params, segment=seg), paths)\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert read_table(paths.table("tokens"), TOKENS).num_rows == docs.num_rows


def test_user_words_are_checked_once_when_workers_segment(tmp_path, params, monkeypatch, caplog):
    """With a pool, a worker checks the user dictionary; the warning is logged once."""
    monkeypatch.setattr(segment_module, "INLINE_BYTES", 0)
    userdict = tmp_path / "u.txt"
    userdict.write_text("巾帼建功 30 nz\n我们的 1\n", encoding="utf-8")
    _run_stage(tmp_path / "run", params, _corpus(40), workers=2, userdict=userdict, cache_dir=None)
    assert caplog.text.count("one token") == 1 and "我们的" in caplog.text


def test_cache_rerun_segments_only_new_documents(tmp_path, params, monkeypatch):
    cache = tmp_path / "cache"
    docs = _corpus()
    seen = []
    real = segment_module.segment_utf8

    def counting(texts, *args):
        seen.extend(texts.data[lo:hi].decode() for lo, hi in itertools.pairwise(texts.offsets))
        return real(texts, *args)

    def kept_texts(table):
        columns = table.select(["text", "status"]).to_pydict()
        return {t for t, s in zip(columns["text"], columns["status"], strict=True) if s == "kept"}

    monkeypatch.setattr(segment_module, "segment_utf8", counting)
    older = docs.slice(0, 200)
    _run_stage(tmp_path / "a", params, older, workers=1, cache_dir=str(cache))
    assert sorted(seen) == sorted(kept_texts(older))  # repeated texts are segmented once
    seen.clear()
    out = _run_stage(tmp_path / "b", params, docs, workers=1, cache_dir=str(cache))
    assert seen and sorted(seen) == sorted(kept_texts(docs) - kept_texts(older))
    fresh = _run_stage(tmp_path / "c", params, docs, workers=1, cache_dir=None)
    assert out.read_bytes() == fresh.read_bytes()


def test_corrupt_or_stale_cache_never_changes_the_output(tmp_path, params, caplog):
    cache = tmp_path / "cache"
    docs = _corpus(60)
    expected = _run_stage(tmp_path / "ref", params, docs, workers=1, cache_dir=None).read_bytes()
    _run_stage(tmp_path / "a", params, docs, workers=1, cache_dir=str(cache))
    # an entry whose value was altered is ignored (checksum), and recomputed
    (file,) = cache.glob("tokens-*.sqlite")
    db = sqlite3.connect(file)
    db.execute("UPDATE tokens SET value = CAST('伪造' AS BLOB)")
    db.commit()
    db.close()
    out = _run_stage(tmp_path / "b", params, docs, workers=1, cache_dir=str(cache))
    assert out.read_bytes() == expected
    # a file that is not a database is replaced
    for f in cache.iterdir():
        f.write_bytes(b"garbage" * 100)
    out = _run_stage(tmp_path / "c", params, docs, workers=1, cache_dir=str(cache))
    assert out.read_bytes() == expected
    assert "unusable" in caplog.text
    # another user dictionary: entries made under the old one are never hit
    userdict = tmp_path / "u.txt"
    userdict.write_text("男女平等 50 n\n", encoding="utf-8")
    other = _run_stage(tmp_path / "d", params, docs, workers=1, cache_dir=None, userdict=userdict)
    cached = _run_stage(
        tmp_path / "e", params, docs, workers=1, cache_dir=str(cache), userdict=userdict
    )
    assert cached.read_bytes() == other.read_bytes() != expected


def test_each_setting_has_its_cache_file_and_old_ones_go_over_budget(tmp_path, params, caplog):
    cache = tmp_path / "cache"
    docs = _corpus(30)
    userdict = tmp_path / "u.txt"
    userdict.write_text("男女平等 50 n\n", encoding="utf-8")
    _run_stage(tmp_path / "a", params, docs, workers=1, cache_dir=str(cache))
    (first,) = cache.glob("tokens-*.sqlite")
    _run_stage(tmp_path / "b", params, docs, workers=1, cache_dir=str(cache), userdict=userdict)
    assert len(list(cache.glob("tokens-*.sqlite"))) == 2  # well within the default budget
    # a budget of 0 keeps only the file of the settings in use
    caplog.set_level(logging.INFO, logger="pipeline.text.token_cache")
    _run_stage(tmp_path / "c", params, docs, workers=1, cache_dir=str(cache), cache_max_mb=0)
    assert list(cache.glob("tokens-*.sqlite")) == [first]
    assert "deleted 1 file(s) of other settings" in caplog.text


def test_fingerprint_follows_settings_and_files(params, tmp_path):
    base = fingerprint(params.segment)
    assert fingerprint(dataclasses.replace(params.segment, workers=7)) == base
    assert fingerprint(dataclasses.replace(params.segment, hmm=False)) != base
    assert fingerprint(dataclasses.replace(params.segment, backend="jieba")) != base
    copy = tmp_path / "stop.txt"
    copy.write_bytes(params.segment.stopwords.read_bytes() + "新词\n".encode())
    assert fingerprint(dataclasses.replace(params.segment, stopwords=copy)) != base


@pytest.mark.parametrize("module", segment_module.TOKEN_SHAPING_MODULES)
def test_editing_a_token_shaping_module_makes_the_cache_miss(tmp_path, params, monkeypatch, module):
    docs = _corpus(40)
    cache = tmp_path / "cache"
    _run_stage(tmp_path / "a", params, docs, workers=1, cache_dir=str(cache))
    with Segmenter(params.segment, cache) as warm:
        list(warm.run([docs]))
    assert warm.stats.segmented == 0 and warm.stats.cached > 0  # all from the cache
    real = segment_module._module_source
    edited = lambda name: real(name) + (b"\n# edited\n" if name == module else b"")  # noqa: E731
    monkeypatch.setattr(segment_module, "_module_source", edited)
    with Segmenter(params.segment, cache) as cold:
        list(cold.run([docs]))
    assert cold.stats.cached == 0 and cold.stats.segmented == warm.stats.cached


def test_modules_the_stage_imports_are_token_shaping_or_declared_neutral():
    """A new module under the segment stage must be put in one list: in the cache key (it may
    change tokens) or declared neutral."""
    code = "import sys, pipeline.segment; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = {m for m in out.stdout.split() if m.startswith("pipeline.")}
    shaping = set(segment_module.TOKEN_SHAPING_MODULES)
    neutral = set(segment_module.TOKEN_NEUTRAL_MODULES)
    assert imported - {"pipeline.text"} == shaping | neutral
    assert not shaping & neutral


# --------------------------------------------------------------------------- benchmark


def test_bench_reads_txt_and_tsv(tmp_path):
    (tmp_path / "a.txt").write_text("第一篇文档", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("label\ttext\nx\t第二篇\ny\t第三篇\n", encoding="utf-8")
    (tmp_path / "gb").mkdir()
    (tmp_path / "gb" / "a.txt").write_bytes("第四篇：旧编码的文档".encode("gb18030"))
    corpus = read_corpus(tmp_path)
    assert corpus.column("text").to_pylist() == [
        "第一篇文档",
        "第二篇",
        "第三篇",
        "第四篇：旧编码的文档",
    ]
    assert corpus.column("doc_id").to_pylist() == ["a.txt", "b.tsv:0", "b.tsv:1", "gb/a.txt"]
    CLEAN.conform(corpus)


@pytest.mark.slow
def test_bench_command_prints_the_ratios(tmp_path, capsys):
    (tmp_path / "a.txt").write_text(SAMPLE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    args = ["bench", "segment", "--corpus", str(tmp_path), "--params", str(ROOT / "params.yaml")]
    assert cli_main([*args, "--skip", "doubled", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "jieba.lcut, 1 process" in out and "speed-up over jieba.lcut" in out
    assert "re-run after +1% documents / full run" in out


EDGE_TOKENS = ["", " ", "\n", "٣٤", "２０２２", "Ⅲ", "①", "α", "ー", "〇", "‰", "e-mail", "x"]
EDGE_TOKENS += ["GDP", "5G", "the", "The", "20xx", "1—7", "三亿多", "万件", "12%", "市", "进一步"]
EDGE_TOKENS += ["兩個", "三萬億", "十二號"]


def test_bulk_filter_matches_is_content_token(params, lexicon):
    """The arrow filter used on every batch decides exactly as the readable Python rule."""
    text = SAMPLE_FILE.read_text(encoding="utf-8")
    words = sorted(set(lexicon.backend.cut(text, True)) | set(EDGE_TOKENS))
    loose = dataclasses.replace(
        params.segment, allow_single_char=True, keep_numbers=True, keep_latin=False
    )
    for seg in (params.segment, loose):
        bulk = content_mask(pa.array(words, pa.string()), seg, lexicon.stopword_array)
        expected = [is_content_token(w.strip(), seg, lexicon.stopwords) for w in words]
        assert bulk.tolist() == expected


def test_stage_with_phrases_matches_the_function(tmp_path, params):
    docs = _collocation_docs()
    settings = {"phrases_threshold": 0.5, "phrases_min_count": 2}
    out = _run_stage(tmp_path, params, docs, workers=1, cache_dir=None, **settings)
    expected = segment(
        docs, dataclasses.replace(params.segment, **settings), load_lexicon(params.segment)
    )
    assert read_table(out, TOKENS).equals(TOKENS.conform(expected))
    assert "人工智能_芯片" in expected.column("tokens").to_pylist()[3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clean.parquet",
        "new_words.parquet",
        "tokens.parquet",
    ]


@pytest.mark.parametrize("backend", ["jieba", "rjieba"])
def test_long_texts_are_segmented_line_by_line_to_the_same_tokens(params, monkeypatch, backend):
    seg = dataclasses.replace(params.segment, backend=backend)
    lexicon = load_lexicon(seg)
    text = SAMPLE_FILE.read_text(encoding="utf-8").replace("\n", "\r\n")
    whole = segment_texts([text], seg, lexicon)
    monkeypatch.setattr(segmentation_module, "LONG_TEXT", 100)
    assert segment_texts([text], seg, lexicon).equals(whole)
