from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, LdaParams, load_params, params_from_dict
from tests.conftest import ROOT


def _write(tmp_path: Path, data: dict) -> Path:
    names = ("userdict.txt", "stopwords.txt", "new_words_review.tsv", "keep.txt")
    for name in (*names, "replacements.tsv", "boilerplate.tsv"):
        (tmp_path / name).write_text("", encoding="utf-8")
    files = {
        "segment": {
            "userdict": "userdict.txt",
            "stopwords": "stopwords.txt",
            "new_words_review": "new_words_review.tsv",
        },
        "clean": {"replacements": "replacements.tsv", "boilerplate": "boilerplate.tsv"},
        "tfidf": {"keep_terms": "keep.txt"},
    }
    for section, values in files.items():
        data.setdefault(section, {})
        for key, value in values.items():
            data[section].setdefault(key, value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_params_load_and_resolve_files():
    params = load_params(ROOT / "params.yaml")
    assert params.ingest.unit == "paragraph"
    assert params.segment.userdict.is_file()
    assert params.segment.userdict.is_absolute()
    assert params.lda.num_topics == "auto" or params.lda.num_topics >= 2


def test_relative_paths_are_relative_to_the_params_file(tmp_path):
    params = load_params(_write(tmp_path, {}))
    assert params.segment.stopwords == tmp_path / "stopwords.txt"


def test_defaults_fill_missing_keys(tmp_path):
    params = load_params(_write(tmp_path, {"lda": {"num_topics": 3}}))
    assert params.lda.num_topics == 3
    assert params.lda.passes == LdaParams().passes


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"lda": {"num_topic": 8}}, "lda.num_topic"),
        ({"topics": {"k": 1}}, "unknown section"),
        ({"lda": {"num_topics": 0}}, "lda.num_topics"),
        ({"lda": {"num_topics": "eight"}}, "lda.num_topics"),
        ({"lda": {"num_topics": True}}, "lda.num_topics"),
        ({"lda": {"alpha": "big"}}, "lda.alpha"),
        ({"lda": {"eta": -1.0}}, "lda.eta"),
        ({"tfidf": {"min_df": 5, "max_df": 3}}, "tfidf.min_df"),
        ({"tfidf": {"max_df": 1.5}}, "tfidf.max_df"),
        ({"tfidf": {"min_df": 0}}, "tfidf.min_df"),
        ({"ingest": {"unit": "sentence"}}, "ingest.unit"),
        ({"ingest": {"split_pattern": "(unclosed"}}, "ingest.split_pattern"),
        ({"ingest": {"split_pattern": "^篇\\d+$"}}, "title"),
        ({"segment": {"userdict": "missing.txt"}}, "segment.userdict"),
        ({"clean": {"min_chars": -1}}, "clean.min_chars"),
        ({"segment": {"hmm": "yes"}}, "segment.hmm"),
        ({"lda": {"sweep": {"run": "sometimes"}}}, "lda.sweep.run"),
        ({"lda": {"num_topics": "auto", "sweep": {"run": "never"}}}, "lda.sweep.run"),
        ({"lda": {"sweep": {"threads": 0}}}, "lda.sweep.threads"),
        ({"lda": {"workers": -1}}, "lda.workers"),
    ],
)
def test_bad_settings_stop_with_the_key_named(tmp_path, data, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_params(_write(tmp_path, data))


def test_int_and_float_document_frequencies_keep_their_meaning(tmp_path):
    params = load_params(_write(tmp_path, {"tfidf": {"min_df": 2, "max_df": 0.9}}))
    assert isinstance(params.tfidf.min_df, int)
    assert isinstance(params.tfidf.max_df, float)


def test_overrides_are_parsed_as_yaml(tmp_path):
    path = _write(tmp_path, {})
    params = load_params(path, ["lda.num_topics=4", "tfidf.max_features=null", "lda.alpha=0.1"])
    assert params.lda.num_topics == 4
    assert params.tfidf.max_features is None
    assert params.lda.alpha == 0.1


@pytest.mark.parametrize("item", ["lda.num_topics", "num_topics=3", "=3"])
def test_malformed_override(tmp_path, item):
    with pytest.raises(ConfigError, match="section.key=value"):
        load_params(_write(tmp_path, {}), [item])


def test_override_is_validated_too(tmp_path):
    with pytest.raises(ConfigError, match="lda.num_topics"):
        load_params(_write(tmp_path, {}), ["lda.num_topics=0"])


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_params_are_frozen(tmp_path):
    params = params_from_dict(
        {"clean": {"replacements": None}, "segment": {"userdict": None, "stopwords": None}}
    )
    with pytest.raises(AttributeError):
        params.lda.num_topics = 3  # type: ignore[misc]


def _defaults(cls) -> dict:
    import dataclasses

    out = {}
    for f in dataclasses.fields(cls):
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(value):
            value = _defaults(type(value))
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Path):
            value = str(value)
        out[f.name] = value
    return out


def test_defaults_are_the_shipped_params():
    """One source of defaults: a key deleted from params.yaml keeps the shipped behaviour.
    Every section, every key (and no key the dataclasses lack)."""
    from pipeline.config import Params

    shipped = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert _defaults(Params) == shipped


def test_renamed_key_names_its_new_name(tmp_path):
    with pytest.raises(ConfigError, match=r"lda\.min_updates was renamed lda\.min_token_updates"):
        load_params(_write(tmp_path, {"lda": {"min_updates": 5}}))


def test_recording_reads_notes_leaf_settings_only_while_active():
    from pipeline.config import recording_reads

    params = load_params(ROOT / "params.yaml")
    with recording_reads() as reads:
        assert params.lda.sweep.k and params.segment.pos_tags is not None
    params.lda.top_n  # noqa: B018 (after the block: not recorded)
    assert reads == {"lda.sweep.k", "segment.pos"}
