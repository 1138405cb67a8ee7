"""The segment stage's token cache (pipeline/text/token_cache.py): its value format, keys,
the SQLite store and its folder budget."""

import os
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.text.token_cache import (
    TokenCache,
    key_function,
    pack_lists,
    resolve_cache_dir,
    trim_cache,
    unpack_lists,
)


@pytest.mark.parametrize(
    "lists", [[], [[]], [["中国", "a"], [], ["x" * 70_000, "é"]], [["甲"], ["乙", "丙"], ["丁"]]]
)
def test_cache_values_round_trip(lists):
    array = pa.array(lists, pa.list_(pa.string()))
    for part in (array, array[1:], array[1:2]):
        assert unpack_lists(pack_lists(part)).equals(part)
    assert unpack_lists([b"", b""]).to_pylist() == [[], []]


def test_cache_values_that_do_not_unpack_raise():
    (value,) = pack_lists(pa.array([["中国", "人民"]], pa.list_(pa.string())))
    with pytest.raises(ValueError, match="malformed"):  # sizes beyond the data
        unpack_lists([value[:-1]])
    broken = value[:-3] + b"\xff" + value[-2:]  # 民 with its lead byte gone: not UTF-8
    with pytest.raises(ValueError, match="malformed"):
        unpack_lists([value, broken])


def test_document_keys_depend_on_the_text_and_the_fingerprint():
    key = key_function(b"settings A")
    assert key(b"text") == key_function(b"settings A")(b"text")
    assert len(key(b"text")) == 16
    assert len({key(b"text"), key(b"text2"), key_function(b"settings B")(b"text")}) == 3


def test_cache_stores_and_finds_values_and_ignores_unknown_keys(tmp_path):
    key = key_function(b"settings")
    with TokenCache(tmp_path, b"settings") as cache:
        assert cache.is_empty()
        cache.put_many({key(b"a"): b"value a", key(b"b"): b"value b"})
        assert not cache.is_empty()
        found = cache.get_many([key(b"a"), key(b"b"), key(b"c")])
    assert found == {key(b"a"): b"value a", key(b"b"): b"value b"}
    with TokenCache(tmp_path, b"settings") as again:  # kept on disk
        assert again.get_many([key(b"b")]) == {key(b"b"): b"value b"}
    with TokenCache(tmp_path, b"other settings") as other:  # a file of its own
        assert other.path != again.path and other.get_many([key(b"b")]) == {}


def test_cache_entry_with_a_wrong_checksum_is_a_miss(tmp_path):
    key = key_function(b"settings")(b"text")
    with TokenCache(tmp_path, b"settings") as cache:
        cache.put_many({key: b"good"})
        path = cache.path
    with sqlite3.connect(path) as db:
        db.execute("UPDATE tokens SET value = ?", (b"evil",))
    with TokenCache(tmp_path, b"settings") as cache:
        assert cache.get_many([key]) == {}


def test_unreadable_cache_file_is_rebuilt(tmp_path, caplog):
    key = key_function(b"settings")(b"text")
    path = TokenCache(tmp_path, b"settings").path
    path.write_bytes(b"not a database" * 100)
    with TokenCache(tmp_path, b"settings") as cache:
        assert cache.get_many([key]) == {}
        cache.put_many({key: b"value"})
        assert cache.get_many([key]) == {key: b"value"}
    assert "unusable" in caplog.text


def test_trim_cache_deletes_least_recently_used_files_beyond_the_budget(tmp_path):
    def cache_file(name: str, size: int, used: int) -> Path:
        path = tmp_path / name
        path.write_bytes(b"x" * size)
        os.utime(path, (used, used))
        return path

    keep = cache_file("tokens-keep.sqlite", 500, 100)
    old = cache_file("tokens.sqlite", 300, 1)  # the single file of earlier versions
    older = cache_file("tokens-b.sqlite", 300, 2)
    recent = cache_file("tokens-c.sqlite", 300, 50)
    journal = cache_file("tokens-b.sqlite-journal", 10, 2)
    unrelated = cache_file("notes.txt", 10_000, 1)
    assert trim_cache(keep, 900) == [older, old]  # 500 + 300 fit; the two oldest do not
    assert keep.exists() and recent.exists() and unrelated.exists()
    assert not old.exists() and not older.exists() and not journal.exists()
    assert trim_cache(keep, 0) == [recent] and keep.exists()  # kept whatever its size


def test_cache_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ZHTOPICS_SEGMENT_CACHE", str(tmp_path))
    assert resolve_cache_dir(".cache/x") == tmp_path
    monkeypatch.setenv("ZHTOPICS_SEGMENT_CACHE", "")
    assert resolve_cache_dir(".cache/x") is None
    monkeypatch.delenv("ZHTOPICS_SEGMENT_CACHE")
    assert resolve_cache_dir(".cache/x") == Path(".cache/x")
