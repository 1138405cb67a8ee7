"""Stage segment: jieba word segmentation through a private tokenizer, keeping content tokens."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import jieba
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from pipeline.clean import KEPT
from pipeline.config import Params, SegmentParams
from pipeline.io import Paths, TableWriter, iter_tables
from pipeline.schemas import CLEAN, TOKENS, require_columns

log = logging.getLogger(__name__)

# Numbers, dates, percentages, placeholders such as 20xx, and Chinese numerals with a unit
# (三亿多, 万件): counts, not content.
_NUMERIC = re.compile(
    r"[\d.,%‰+\-/:~xX×*—]*\d[\d.,%‰+\-/:~xX×*—]*[年月日号时分秒%]?"
    r"|[零〇一二三四五六七八九十百千万亿两几多余第]+[个件次年月日号人名元岁届位项条种家所多余]?"
)
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9._\-+&']*")


@dataclass(frozen=True)
class Lexicon:
    """The heavy resources of segmentation, loaded once per stage."""

    tokenizer: jieba.Tokenizer
    stopwords: frozenset[str]


def load_lexicon(params: SegmentParams) -> Lexicon:
    """A private jieba tokenizer with the user dictionary, and the stopword set."""
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    if params.userdict is not None:
        tokenizer.load_userdict(str(params.userdict))
    return Lexicon(tokenizer, frozenset(load_stopwords(params)))


def load_stopwords(params: SegmentParams) -> set[str]:
    """stopwords-iso's Chinese and English lists (if enabled) plus the project's file,
    NFKC-normalised; Latin tokens are matched case-insensitively."""
    words: set[str] = set()
    if params.stopwords_iso:
        import stopwordsiso

        # Chinese text quotes English too (headlines, product names): its function words go.
        words.update(stopwordsiso.stopwords(["zh", "en"]))
    if params.stopwords is not None:
        for line in Path(params.stopwords).read_text(encoding="utf-8-sig").splitlines():
            word = line.split("#", 1)[0].strip()
            if word:
                words.add(word)
    return {unicodedata.normalize("NFKC", w).strip() for w in words} - {""}


def is_content_token(token: str, params: SegmentParams, stopwords: frozenset[str]) -> bool:
    """Keep words: no punctuation, whitespace, numbers or stopwords; single characters and
    Latin words only when the settings allow them."""
    if not token or token in stopwords or (token.isascii() and token.lower() in stopwords):
        return False
    if not any(unicodedata.category(c)[0] in "LN" for c in token):
        return False
    if not params.keep_numbers and _NUMERIC.fullmatch(token):
        return False
    if not params.keep_latin and _LATIN.fullmatch(token):
        return False
    return params.allow_single_char or len(token) > 1


def tokenize(text: str, params: SegmentParams, lexicon: Lexicon) -> list[str]:
    """One document's content tokens, in order."""
    words = (w.strip() for w in lexicon.tokenizer.cut(text, HMM=params.hmm))
    return [w for w in words if is_content_token(w, params, lexicon.stopwords)]


def segment(docs: pa.Table, params: SegmentParams, lexicon: Lexicon) -> pa.Table:
    """Tokens for every document; those not ``kept`` by clean get an empty list."""
    require_columns(docs, ["doc_id", "text", "status"], "segment")
    texts = docs.column("text").to_pylist()
    statuses = docs.column("status").to_pylist()
    tokens = [
        tokenize(text, params, lexicon) if status == KEPT else []
        for text, status in tqdm(
            zip(texts, statuses, strict=True),
            total=len(texts),
            desc="segment",
            unit="doc",
            disable=None,
        )
    ]
    return pa.table(
        {
            "doc_id": docs.column("doc_id"),
            "tokens": pa.array(tokens, pa.list_(pa.string())),
            "n_tokens": pa.array([len(t) for t in tokens], pa.int32()),
        }
    )


def main(params: Params, paths: Paths) -> None:
    lexicon = load_lexicon(params.segment)
    total = 0
    with TableWriter(paths.table("tokens"), TOKENS) as writer:
        for docs in iter_tables(paths.table("clean"), CLEAN):
            table = segment(docs, params.segment, lexicon)
            writer.write(table)
            total += pc.sum(table.column("n_tokens")).as_py() or 0
    log.info(
        "segment: %d tokens in %d documents -> %s", total, writer.num_rows, paths.table("tokens")
    )
