"""Settings: params.yaml read once into frozen dataclasses, validated before any work runs."""

from __future__ import annotations

import codecs
import dataclasses
import re
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from pipeline.schemas import DOCUMENTS

# The fixed columns of documents.parquet: no metadata column may take their names.
_DOCUMENT_COLUMNS = frozenset(DOCUMENTS.columns)


class ConfigError(ValueError):
    """A setting is unknown, of the wrong type or impossible; the message names the key."""


def _fail(key: str, value: Any, allowed: str) -> typing.NoReturn:
    raise ConfigError(f"params: {key} = {value!r} is not allowed; expected {allowed}")


# Keys renamed in a release: the old name gets an error that gives the new one.
RENAMED = {
    "lda.min_updates": "lda.min_token_updates (the same number: sweeps x corpus tokens)",
}
# Settings that say where and how fast a stage runs, never what it writes (tested: the same
# outputs with other values). Left out of the settings stored with the model.
RUN_ONLY = frozenset({"workers", "start_method", "cache_dir", "cache_max_mb"})


class _Section:
    """Base of every settings section. While :func:`recording_reads` is active, each setting a
    stage reads is noted as ``section.key``: tests compare those with dvc.yaml's ``params:``."""

    _key: typing.ClassVar[str] = ""


_reads: set[str] | None = None
_S = typing.TypeVar("_S", bound=_Section)


def _recording_getattribute(self: _Section, name: str) -> Any:
    value = object.__getattribute__(self, name)
    fields = {f.name for f in dataclasses.fields(type(self))}
    if _reads is not None and name in fields and not isinstance(value, _Section):
        _reads.add(f"{type(self)._key}.{name}")
    return value


def derived(section: _S, **changes: Any) -> _S:
    """``dataclasses.replace(section, **changes)``, whose copying of the other fields is not
    a read of them for :func:`recording_reads` (the caller reads what it derives from)."""
    global _reads
    saved, _reads = _reads, None
    try:
        return dataclasses.replace(section, **changes)
    finally:
        _reads = saved


@contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Note every setting read (``lda.sweep.k``) in this process until exit: for tests. Settings
    read only in worker processes are not seen; run with one worker when that matters."""
    global _reads
    if _reads is not None:
        raise RuntimeError("recording_reads is already active")
    _reads = set()
    _Section.__getattribute__ = _recording_getattribute  # costs nothing outside recording
    try:
        yield _reads
    finally:
        del _Section.__getattribute__
        _reads = None


@dataclass(frozen=True)
class IngestParams(_Section):
    """How raw files become documents."""

    _key: typing.ClassVar[str] = "ingest"

    # A heading line that starts a new document inside one text file (a compilation).
    # Named groups: ``title`` (required) and ``part`` (optional).
    split_pattern: str = r"^(?P<title>[^\s].{0,60}?)\s*篇\s*(?P<part>[0-9]+)\s*$"
    # Column holding the text in tabular files (.csv, .tsv, .jsonl, .parquet).
    text_column: str = "text"
    # ``paragraph`` splits each document into paragraphs that keep their parent's metadata.
    unit: Literal["document", "paragraph"] = "paragraph"
    # With unit=paragraph: a paragraph shorter than this (headings, salutations) is joined
    # to the one after it, so that no text is lost and every unit has substance.
    paragraph_min_chars: int = 40
    # Decode every text file with this codec (e.g. gb18030, big5, utf-16) instead of detecting.
    encoding: str | None = None
    # A regular expression searched in each file's path below the raw folder; its named groups
    # become metadata columns, e.g. (?P<year>\d{4})政府工作报告_(?P<speaker>[^_.]+). A group
    # named ``date`` or ``year`` fills the date. null: no path fields.
    path_pattern: str | None = None
    # The first folder below the raw folder becomes this metadata column (``<category>/<file>``
    # is how most labelled corpora come); null: none.
    folder_column: str | None = "folder"
    # Where dates are looked for, first found wins: a ``date`` column of tabular files, a date
    # phrase in the first ``date_lines`` non-empty lines of the text (their first ``date_chars``
    # characters), the title, the path. Drop a name to never take dates from there.
    date_sources: tuple[str, ...] = ("column", "text", "title", "path")
    date_lines: int = 5
    date_chars: int = 500

    def __post_init__(self) -> None:
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                _fail("ingest.encoding", self.encoding, "null (detect) or a Python codec name")
        try:
            pattern = re.compile(self.split_pattern, re.MULTILINE)
        except re.error as exc:
            _fail("ingest.split_pattern", self.split_pattern, f"a valid regular expression ({exc})")
        if "title" not in pattern.groupindex:
            _fail(
                "ingest.split_pattern", self.split_pattern, "a pattern with a (?P<title>...) group"
            )
        if not self.text_column:
            _fail("ingest.text_column", self.text_column, "a column name")
        if self.paragraph_min_chars < 0:
            _fail("ingest.paragraph_min_chars", self.paragraph_min_chars, "an integer >= 0")
        self._check_path_pattern()
        if self.folder_column is not None and (
            not self.folder_column or self.folder_column in _DOCUMENT_COLUMNS
        ):
            _fail("ingest.folder_column", self.folder_column, "null or a new column name")
        known = ("column", "text", "title", "path")
        sources = self.date_sources
        if set(sources) - set(known) or len(set(sources)) < len(sources):
            _fail("ingest.date_sources", list(sources), f"distinct names of {list(known)}")
        if self.date_lines < 1:
            _fail("ingest.date_lines", self.date_lines, "an integer >= 1")
        if self.date_chars < 20:
            _fail("ingest.date_chars", self.date_chars, "an integer >= 20")

    def _check_path_pattern(self) -> None:
        if self.path_pattern is None:
            return
        try:
            pattern = re.compile(self.path_pattern)
        except re.error as exc:
            _fail("ingest.path_pattern", self.path_pattern, f"a valid regular expression ({exc})")
        if not pattern.groupindex:
            _fail("ingest.path_pattern", self.path_pattern, "a pattern with (?P<name>...) groups")
        clash = sorted(set(pattern.groupindex) & (_DOCUMENT_COLUMNS - {"date"}))
        if clash:
            _fail(
                "ingest.path_pattern",
                self.path_pattern,
                f"group names other than the table's own columns {clash} (date is allowed)",
            )


@dataclass(frozen=True)
class CleanParams(_Section):
    """Text normalisation and the minimum length of a usable document."""

    _key: typing.ClassVar[str] = "clean"

    # Documents with fewer non-space characters after cleaning get status ``too_short``.
    min_chars: int = 20
    # Literal replacements (TSV: from, to), applied after NFKC; longest match first.
    replacements: Path | None = Path("data/dict/replacements.tsv")
    # Named boilerplate rules (TSV: name, pattern, enabled); each match is removed and audited.
    boilerplate: Path | None = Path("data/dict/boilerplate.tsv")
    # Rules of the boilerplate file to skip, by name (in addition to those marked disabled).
    boilerplate_disable: tuple[str, ...] = ()
    # Traditional to Simplified with OpenCC: t2s (generic), tw2sp (Taiwan, with phrases such
    # as 軟體 -> 软件), hk2s (Hong Kong), or none.
    convert: Literal["none", "t2s", "tw2sp", "hk2s"] = "none"
    # ``mask`` replaces every number with ``#`` (dropped by segment); ``keep`` leaves them.
    numbers: Literal["keep", "mask"] = "keep"
    # A document in which CJK characters are less than this share is ``not_chinese``; a word of
    # another script (a run of letters, e.g. an English word) counts as one character.
    min_cjk_share: float = 0.3
    # A document with more invalid byte sequences than this share of its characters is not
    # modelled (status decode_errors); below it the document is kept and flagged.
    max_decode_errors: float = 0.01
    # Exact (hash of the cleaned text) and near (MinHash LSH) duplicates: one document per
    # cluster is kept, the others get status duplicate / near_duplicate.
    deduplicate: bool = True
    near_duplicate_threshold: float = 0.8
    shingle_size: int = 5
    num_perm: int = 128
    minhash_seed: int = 1
    # Worker processes for cleaning and MinHashing (duplicates are decided in order in the main
    # process); 0 uses every core. Never changes a result.
    workers: int = 0
    # multiprocessing start method for the workers (spawn, fork, forkserver); null: the default.
    start_method: str | None = None
    # Documents whose spin_score (machine rewriting, see README) reaches this are flagged
    # ``spun`` in their reason; with drop_spun their status becomes spun and they are not modelled.
    spin_threshold: float = 1.0
    drop_spun: bool = False

    def __post_init__(self) -> None:
        if self.spin_threshold <= 0:
            _fail("clean.spin_threshold", self.spin_threshold, "a number > 0")
        if self.min_chars < 0:
            _fail("clean.min_chars", self.min_chars, "an integer >= 0")
        for key in ("min_cjk_share", "max_decode_errors"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                _fail(f"clean.{key}", getattr(self, key), "a share in [0, 1]")
        if not 0.0 < self.near_duplicate_threshold < 1.0:
            _fail("clean.near_duplicate_threshold", self.near_duplicate_threshold, "in (0, 1)")
        if self.shingle_size < 1:
            _fail("clean.shingle_size", self.shingle_size, "an integer >= 1")
        if self.num_perm < 16:
            _fail("clean.num_perm", self.num_perm, "an integer >= 16")
        if self.minhash_seed < 0:
            _fail("clean.minhash_seed", self.minhash_seed, "an integer >= 0")
        if self.workers < 0:
            _fail("clean.workers", self.workers, "0 (every core) or an integer >= 1")
        methods = ("spawn", "fork", "forkserver")
        if self.start_method is not None and self.start_method not in methods:
            _fail("clean.start_method", self.start_method, f"null or one of {list(methods)}")


@dataclass(frozen=True)
class SegmentParams(_Section):
    """Word segmentation with jieba and the filter that keeps content tokens."""

    _key: typing.ClassVar[str] = "segment"

    userdict: Path | None = Path("data/dict/userdict.txt")
    stopwords: Path | None = Path("data/dict/stopwords.txt")
    # Start from the maintained stopwords-iso Chinese list, then add ``stopwords``.
    stopwords_iso: bool = True
    # jieba's HMM guesses words missing from the dictionary.
    hmm: bool = True
    allow_single_char: bool = False
    keep_numbers: bool = False
    keep_latin: bool = True
    # ``rjieba`` runs jieba's algorithm and dictionary compiled (jieba-rs); ``jieba`` is the
    # reference Python implementation. They agree on >= 99.9% of tokens (tests/test_segment.py).
    backend: Literal["jieba", "rjieba"] = "rjieba"
    # Keep only words whose jieba.posseg tag is listed, e.g. "n,nr,ns,nt,nz,vn"; null keeps all.
    pos: str | None = None
    # Join frequent collocations (gensim Phrases, npmi scoring) when set; threshold in (-1, 1).
    phrases_threshold: float | None = None
    phrases_min_count: int = 5
    # Worker processes; 0 uses every core this process may run on.
    workers: int = 0
    # multiprocessing start method for the workers (spawn, fork, forkserver); null: the default.
    start_method: str | None = None
    # Per-document token cache, outside git and DVC outputs; null disables it. Relative to the
    # working directory; the environment variable ZHTOPICS_SEGMENT_CACHE overrides it.
    cache_dir: str | None = ".cache/zhtopics/segment"
    # Megabytes the cache folder may hold. The file of the current settings is always kept;
    # files of other settings are deleted, least recently used first, to stay within this.
    cache_max_mb: int = 2048
    # New-word discovery from the corpus (pipeline/text/new_words.py): ``off``; ``suggest``
    # writes new_words.parquet and changes nothing; ``use`` also adds its accepted words to the
    # tokenizer (the user dictionary still wins).
    new_words: Literal["off", "suggest", "use"] = "use"
    # What makes a string a word: occurrences, cohesion (the smallest normalised PMI over its
    # two-way cuts, in [-1, 1]), the entropy of its left and right neighbours (nats), and its
    # longest length.
    new_words_min_count: int = 5
    new_words_min_cohesion: float = 0.7
    new_words_min_entropy: float = 1.5
    new_words_max_chars: int = 8
    # The user's verdicts on single discoveries (TSV: word, keep|reject); null: none.
    new_words_review: Path | None = Path("data/dict/new_words_review.tsv")

    def __post_init__(self) -> None:
        if self.pos is not None and not self.pos_tags:
            _fail("segment.pos", self.pos, 'null or comma-separated jieba tags, e.g. "n,vn,nz"')
        if self.pos is not None and not all(re.fullmatch("[a-zA-Z]+", t) for t in self.pos_tags):
            _fail("segment.pos", self.pos, 'null or comma-separated jieba tags, e.g. "n,vn,nz"')
        threshold = self.phrases_threshold
        if threshold is not None and not -1.0 < threshold < 1.0:
            _fail("segment.phrases_threshold", threshold, "null or an npmi score in (-1, 1)")
        if self.phrases_min_count < 1:
            _fail("segment.phrases_min_count", self.phrases_min_count, "an integer >= 1")
        if self.workers < 0:
            _fail("segment.workers", self.workers, "0 (every core) or an integer >= 1")
        methods = ("spawn", "fork", "forkserver")
        if self.start_method is not None and self.start_method not in methods:
            _fail("segment.start_method", self.start_method, f"null or one of {list(methods)}")
        if self.cache_dir is not None and not self.cache_dir.strip():
            _fail("segment.cache_dir", self.cache_dir, "null or a folder path")
        if self.cache_max_mb < 0:
            _fail("segment.cache_max_mb", self.cache_max_mb, "an integer >= 0 (megabytes)")
        if self.new_words_min_count < 2:
            _fail("segment.new_words_min_count", self.new_words_min_count, "an integer >= 2")
        if not 0 < self.new_words_min_cohesion <= 1:
            _fail("segment.new_words_min_cohesion", self.new_words_min_cohesion, "in (0, 1]")
        if self.new_words_min_entropy < 0:
            _fail("segment.new_words_min_entropy", self.new_words_min_entropy, "a number >= 0")
        if not 2 <= self.new_words_max_chars <= 16:
            _fail("segment.new_words_max_chars", self.new_words_max_chars, "an integer in 2..16")

    @property
    def pos_tags(self) -> frozenset[str]:
        """The allowed jieba.posseg tags (empty when every tag is kept)."""
        return frozenset(t for t in re.split(r"[\s,]+", self.pos or "") if t)


@dataclass(frozen=True)
class TfidfParams(_Section):
    """Vocabulary pruning and TF-IDF weighting (scikit-learn)."""

    _key: typing.ClassVar[str] = "tfidf"

    # An int is a number of documents, a float a share of documents (as in scikit-learn).
    min_df: int | float = 2
    max_df: int | float = 0.5
    max_features: int | None = None
    sublinear_tf: bool = False
    # Keywords kept per document in keywords.parquet.
    top_k: int = 10
    # Background (corpus boilerplate) terms, scored in vocabulary.parquet: a term in at least
    # this share of the documents whose evenness (df against the df its occurrences would reach
    # by chance; see README) is at least background_min_evenness. lda.background says what
    # the model does with them.
    background_min_df: float = 0.15
    background_min_evenness: float = 0.5
    # Paragraph units (grouped under parent documents): a background term must also be in at
    # least this share of the parents, spread over them as evenly (1 - DP >= min_evenness).
    background_min_parent_share: float = 0.8
    # A frequent, even term with a partner outside the formula (document co-occurrence NPMI at
    # least this) carries a subject and is not flagged (above 1: the check is off).
    background_min_partner_npmi: float = 0.5
    # Words never flagged as background, one a line (null: none; the project's file is
    # data/dict/keep_terms.txt).
    keep_terms: Path | None = Path("data/dict/keep_terms.txt")

    def __post_init__(self) -> None:
        for key in ("min_df", "max_df"):
            value = getattr(self, key)
            if isinstance(value, float) and not 0.0 < value <= 1.0:
                _fail(f"tfidf.{key}", value, "a share in (0, 1] or a document count >= 1")
            if isinstance(value, int) and value < 1:
                _fail(f"tfidf.{key}", value, "a share in (0, 1] or a document count >= 1")
        if type(self.min_df) is type(self.max_df) and self.min_df > self.max_df:
            _fail("tfidf.min_df", self.min_df, f"at most tfidf.max_df ({self.max_df})")
        if self.max_features is not None and self.max_features < 1:
            _fail("tfidf.max_features", self.max_features, "null or an integer >= 1")
        if self.top_k < 1:
            _fail("tfidf.top_k", self.top_k, "an integer >= 1")
        if not 0.0 < self.background_min_df <= 1.0:
            _fail("tfidf.background_min_df", self.background_min_df, "a share in (0, 1]")
        if not self.background_min_evenness > 0.0:
            _fail("tfidf.background_min_evenness", self.background_min_evenness, "a number > 0")
        if not self.background_min_partner_npmi >= -1.0:
            _fail(
                "tfidf.background_min_partner_npmi",
                self.background_min_partner_npmi,
                "a number >= -1 (above 1: off)",
            )
        if not 0.0 <= self.background_min_parent_share <= 1.0:
            _fail(
                "tfidf.background_min_parent_share",
                self.background_min_parent_share,
                "a share in [0, 1]",
            )


TERM_WEIGHTS = ("one", "idf", "pmi")


@dataclass(frozen=True)
class SweepParams(_Section):
    """The lda_sweep stage: one model per K and seed, scored to recommend K."""

    _key: typing.ClassVar[str] = "lda.sweep"

    # When the sweep fits its models: "auto" only when lda.num_topics is "auto" (the run needs
    # its K), "always" also with a fixed K (to see the measures), "never" not at all (then
    # lda.num_topics must be a number). A sweep not run writes an empty table and says why.
    run: Literal["auto", "always", "never"] = "auto"
    k: tuple[int, ...] = (4, 6, 8)
    # tomotopy threads of each sweep fit (part of its model, like lda.threads for the final
    # one). The fits run side by side in lda.workers processes: with 1 thread each, a sweep
    # uses every core and its results do not depend on how many there are.
    threads: int = 1
    seeds: tuple[int, ...] = (1, 2)
    # K is recommended among those whose mean stability reaches this (see README).
    min_stability: float = 0.5
    # Share of documents held out (chosen by a hash of doc_id) for perplexity.
    holdout: float = 0.2
    # Each sweep fit's share of the final model's sampling: lda.iterations, lda.passes and
    # lda.min_token_updates times this (at least 1 pass, 2 convergence windows of sweeps).
    # K is ranked on shorter chains than the model the run keeps (see README).
    work_share: float = 0.25
    # The fits model a sample of the training documents of about this many tokens (those
    # first in the order of a hash of doc_id); null: all of them. Coherence and perplexity
    # are still measured on the whole corpus and the held-out share.
    max_tokens: int | None = 400_000

    def __post_init__(self) -> None:
        if not 0.0 < self.work_share <= 1.0:
            _fail("lda.sweep.work_share", self.work_share, "a share in (0, 1]")
        if self.max_tokens is not None and self.max_tokens < 1:
            _fail("lda.sweep.max_tokens", self.max_tokens, "an integer >= 1 or null")
        if self.run not in ("auto", "always", "never"):
            _fail("lda.sweep.run", self.run, 'one of "auto", "always", "never"')
        if self.threads < 1:
            _fail("lda.sweep.threads", self.threads, "an integer >= 1")
        if not self.k or any(k < 1 for k in self.k):
            _fail("lda.sweep.k", list(self.k), "a non-empty list of integers >= 1")
        if len(set(self.k)) != len(self.k):
            _fail("lda.sweep.k", list(self.k), "a list without repeats")
        if (
            not self.seeds
            or any(s < 0 for s in self.seeds)
            or len(set(self.seeds)) != len(self.seeds)
        ):
            _fail("lda.sweep.seeds", list(self.seeds), "a non-empty list of distinct integers >= 0")
        if not 0.0 <= self.min_stability <= 1.0:
            _fail("lda.sweep.min_stability", self.min_stability, "a number in [0, 1]")
        if not 0.0 < self.holdout < 1.0:
            _fail("lda.sweep.holdout", self.holdout, "a share in (0, 1)")


@dataclass(frozen=True)
class LdaParams(_Section):
    """The topic model (gensim or tomotopy) and how its topics are reported."""

    _key: typing.ClassVar[str] = "lda"

    # An integer K, or "auto": the K that lda_sweep recommends (metrics/sweep.json).
    num_topics: int | str = "auto"
    # "gensim" (online variational Bayes) or "tomotopy" (collapsed Gibbs sampling).
    engine: Literal["gensim", "tomotopy"] = "tomotopy"
    # gensim: passes over the corpus. tomotopy: not used.
    passes: int = 30
    # gensim: variational iterations per document. tomotopy: Gibbs sweeps over the corpus.
    iterations: int = 600
    # tomotopy: stop before ``iterations`` once a block of 50 sweeps raises the log-likelihood
    # per word by less than this share, but not before ``min_token_updates`` token updates
    # (sweeps x tokens of the corpus, e.g. 600 sweeps over 300,000 tokens = 180,000,000): small
    # corpora are cheap and keep sampling. null: always ``iterations`` sweeps.
    tolerance: float | None = 0.0015
    min_token_updates: int = 200_000_000
    # "symmetric", "asymmetric", "auto" (learned) or a number.
    alpha: str | float = 0.1
    # "symmetric", "auto" (learned; gensim only) or a number.
    eta: str | float = 0.05
    # Terms flagged background in vocabulary.parquet: "drop" leaves them out of the model (they
    # stay in the vocabulary and in the coherence reference), "include" models them like others.
    background: Literal["drop", "include"] = "drop"
    # Weight of a token in the fit: "one" (counts), "idf" (log N/df of its term), "pmi"
    # (max(0, log P(term|doc)/P(term))). tomotopy's TermWeight; gensim fits weighted counts.
    # tomotopy samples idf and pmi weights in floating point, which its SIMD builds round
    # differently: such a fit is not the same on every CPU, so "one" is the default.
    term_weight: Literal["one", "idf", "pmi"] = "one"
    chunksize: int = 2000
    random_state: int = 42
    # tomotopy: threads of its PARTITION scheme. Part of the model like the seed: the same
    # value gives the same model on any machine; another value another (equally valid) one.
    threads: int = 2
    # Processes for independent fits (the sweep's K x seeds), 0: every core; never changes a
    # result (each fit is seeded by its own seed and uses its own thread count).
    workers: int = 0
    # multiprocessing start method for those processes (spawn, fork, forkserver); null: the
    # default, as clean.start_method and segment.start_method.
    start_method: str | None = None
    # Terms per topic in topic_terms.parquet, in the label, and scored for coherence.
    top_n: int = 20
    label_terms: int = 3
    coherence_top_n: int = 10
    # Relevance (Sievert & Shirley) weight of P(term|topic) against lift; FREX weight of
    # exclusivity against frequency (Roberts et al.).
    relevance_lambda: float = 0.6
    frex_weight: float = 0.5
    # Documents per topic in representative_docs.parquet, and characters per snippet.
    representative_docs: int = 5
    snippet_chars: int = 120
    # Metadata columns of documents.parquet to average topic shares by; "date" is bucketed.
    prevalence_columns: tuple[str, ...] = ("date", "source")
    date_bucket: Literal["decade", "year", "quarter", "month"] = "year"
    # Bootstrap resamples for the 95% intervals in topic_prevalence.parquet.
    bootstrap: int = 200
    sweep: SweepParams = field(default_factory=SweepParams)

    def __post_init__(self) -> None:
        if isinstance(self.num_topics, str) and self.num_topics != "auto":
            _fail("lda.num_topics", self.num_topics, 'an integer >= 1 or "auto"')
        if isinstance(self.num_topics, int) and self.num_topics < 1:
            _fail("lda.num_topics", self.num_topics, 'an integer >= 1 or "auto"')
        for key in (
            "passes",
            "iterations",
            "chunksize",
            "top_n",
            "label_terms",
            "threads",
            "representative_docs",
            "snippet_chars",
            "bootstrap",
        ):
            if getattr(self, key) < 1:
                _fail(f"lda.{key}", getattr(self, key), "an integer >= 1")
        if self.workers < 0:
            _fail("lda.workers", self.workers, "0 (every core) or an integer >= 1")
        methods = ("spawn", "fork", "forkserver")
        if self.start_method is not None and self.start_method not in methods:
            _fail("lda.start_method", self.start_method, f"null or one of {list(methods)}")
        if self.tolerance is not None and not 0 < self.tolerance < 1:
            _fail("lda.tolerance", self.tolerance, "a number between 0 and 1, or null")
        if self.min_token_updates < 0:
            _fail("lda.min_token_updates", self.min_token_updates, "an integer >= 0")
        if self.coherence_top_n < 2:
            _fail("lda.coherence_top_n", self.coherence_top_n, "an integer >= 2")
        if self.random_state < 0:
            _fail("lda.random_state", self.random_state, "an integer >= 0")
        for key in ("relevance_lambda", "frex_weight"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                _fail(f"lda.{key}", getattr(self, key), "a number in [0, 1]")
        priors = {"alpha": ("symmetric", "asymmetric", "auto"), "eta": ("symmetric", "auto")}
        for key, names in priors.items():
            value = getattr(self, key)
            if isinstance(value, str) and value not in names:
                _fail(f"lda.{key}", value, f"one of {list(names)} or a positive number")
            if isinstance(value, float) and value <= 0:
                _fail(f"lda.{key}", value, f"one of {list(names)} or a positive number")
        if self.num_topics == "auto" and self.sweep.run == "never":
            _fail("lda.sweep.run", "never", '"auto" or "always" while lda.num_topics is "auto"')
        for key, allowed in (("background", ("drop", "include")), ("term_weight", TERM_WEIGHTS)):
            if getattr(self, key) not in allowed:
                _fail(f"lda.{key}", getattr(self, key), f"one of {list(allowed)}")
        if self.engine == "tomotopy" and self.eta == "auto":
            _fail("lda.eta", self.eta, '"symmetric" or a number with lda.engine = tomotopy')


@dataclass(frozen=True)
class CompareParams(_Section):
    """What sets groups of documents apart (keyness, topic contrasts) and topics over time."""

    _key: typing.ClassVar[str] = "compare"

    # Columns to compare: decade, year, quarter, month (from the date) or documents columns
    # (folder, path fields, metadata, source). null: those worth comparing, i.e. with at least
    # two groups of min_docs documents (dates first, then folder and metadata, then source).
    columns: tuple[str, ...] | None = None
    # A group with fewer documents is listed as too small, not compared; a period with fewer
    # is marked in the trend.
    min_docs: int = 3
    # At most this many groups per column are compared (the largest).
    max_groups: int = 30
    # Key terms kept per group (the highest G² among the terms it uses more than the rest).
    top_n: int = 30
    # Multiple-testing correction over every term tested per group: bh (Benjamini-Hochberg
    # false discovery rate) or bonferroni; a term is significant when its adjusted p < alpha.
    correction: Literal["bh", "bonferroni"] = "bh"
    alpha: float = 0.05
    # Bootstrap resamples of documents for the intervals of contrasts and trends, and the seed.
    bootstrap: int = 200
    random_state: int = 42
    # Periods of the topic trend, and the kernel bandwidth in years (null: a tenth of the span).
    trend_bucket: Literal["decade", "year", "quarter", "month"] = "year"
    trend_bandwidth: float | None = None
    # Concordance lines in topic_kwic.parquet: top terms per topic, lines per term, and the
    # characters of context either side.
    kwic_terms: int = 3
    kwic_lines: int = 3
    kwic_width: int = 20

    def __post_init__(self) -> None:
        if self.columns is not None and not all(self.columns):
            _fail("compare.columns", list(self.columns), "null or a list of column names")
        for key in ("min_docs", "max_groups", "top_n", "bootstrap", "kwic_width"):
            if getattr(self, key) < 1:
                _fail(f"compare.{key}", getattr(self, key), "an integer >= 1")
        for key in ("kwic_terms", "kwic_lines", "random_state"):
            if getattr(self, key) < 0:
                _fail(f"compare.{key}", getattr(self, key), "an integer >= 0")
        if not 0.0 < self.alpha < 1.0:
            _fail("compare.alpha", self.alpha, "a number in (0, 1)")
        if self.trend_bandwidth is not None and self.trend_bandwidth <= 0:
            _fail("compare.trend_bandwidth", self.trend_bandwidth, "null or a number > 0")


@dataclass(frozen=True)
class ReportParams(_Section):
    """What the HTML report (data/processed/report/) shows."""

    _key: typing.ClassVar[str] = "report"

    # Documents column whose groups get their own keywords: parent_id (each whole document
    # when paragraphs are the unit), source, title, year, month or a metadata column.
    keyword_groups: str = "parent_id"
    # At most this many groups in a keyword chart or a prevalence chart (not over time): the
    # ones with the most documents. A column such as source can have a value per file.
    max_groups: int = 24
    # Terms that are keywords of the most documents.
    top_keywords: int = 20
    # Terms per topic and per group in the bar charts and the topics table.
    top_terms: int = 10
    wordcloud_words: int = 50
    # Rows of the document-topic heatmap (evenly spaced over all documents beyond this).
    heatmap_docs: int = 80
    # Representative documents listed per topic.
    docs_per_topic: int = 3
    # Discovered words (new_words.parquet) listed, each with an example in context.
    new_words: int = 20
    # Resolution of the pictures.
    dpi: int = 100

    def __post_init__(self) -> None:
        if not self.keyword_groups:
            _fail("report.keyword_groups", self.keyword_groups, "a documents column name")
        for key in (
            "max_groups",
            "top_keywords",
            "top_terms",
            "wordcloud_words",
            "heatmap_docs",
        ):
            if getattr(self, key) < 1:
                _fail(f"report.{key}", getattr(self, key), "an integer >= 1")
        if self.docs_per_topic < 0:
            _fail("report.docs_per_topic", self.docs_per_topic, "an integer >= 0")
        if self.new_words < 0:
            _fail("report.new_words", self.new_words, "an integer >= 0")
        if not 30 <= self.dpi <= 600:
            _fail("report.dpi", self.dpi, "an integer from 30 to 600")


ROBUSTNESS_VARIANTS = ("no_hmm", "no_userdict", "nouns_verbs", "phrases", "seeds")


@dataclass(frozen=True)
class RobustnessParams(_Section):
    """The robustness stage: refits under other segmentations and seeds (off by default)."""

    _key: typing.ClassVar[str] = "robustness"

    enabled: bool = False
    # Which refits: no_hmm, no_userdict, nouns_verbs (segment.pos = ``pos``), phrases
    # (segment.phrases_threshold = ``phrases_threshold``) and seeds (lda.random_state = each
    # of ``seeds`` other than the main one).
    variants: tuple[str, ...] = ROBUSTNESS_VARIANTS
    seeds: tuple[int, ...] = (1, 2)
    pos: str = "n,nr,ns,nt,nz,nw,vn,v"
    phrases_threshold: float = 0.5
    # Topics are matched on the overlap of their top_n terms; a topic "survives" a variant when
    # its match shares at least min_similarity of them.
    top_n: int = 20
    min_similarity: float = 0.5

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in ROBUSTNESS_VARIANTS]
        if unknown or len(set(self.variants)) != len(self.variants):
            _fail(
                "robustness.variants",
                list(self.variants),
                f"distinct of {list(ROBUSTNESS_VARIANTS)}",
            )
        if any(s < 0 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            _fail("robustness.seeds", list(self.seeds), "distinct integers >= 0")
        tags = [t for t in re.split(r"[\s,]+", self.pos) if t]
        if not tags or not all(re.fullmatch("[a-zA-Z]+", t) for t in tags):
            _fail("robustness.pos", self.pos, 'comma-separated jieba tags, e.g. "n,vn,v"')
        if not -1.0 < self.phrases_threshold < 1.0:
            _fail(
                "robustness.phrases_threshold", self.phrases_threshold, "an npmi score in (-1, 1)"
            )
        if self.top_n < 1:
            _fail("robustness.top_n", self.top_n, "an integer >= 1")
        if not 0.0 <= self.min_similarity <= 1.0:
            _fail("robustness.min_similarity", self.min_similarity, "a share in [0, 1]")


@dataclass(frozen=True)
class ExplorerParams(_Section):
    """What the interactive explorer (explorer.html) embeds: every topic and its terms, all
    documents' topic mixes for the filters, and a stated sample of documents with their texts."""

    _key: typing.ClassVar[str] = "explorer"

    # Documents columns to filter and compare by; ``date`` becomes years (a range filter).
    filter_columns: tuple[str, ...] = ("date", "source")
    # At most this many groups per filter column (the ones with the most documents).
    max_groups: int = 50
    # Sampled documents with texts: the best of each topic, a few of each group, a random rest.
    docs_per_topic: int = 20
    docs_per_group: int = 3
    random_docs: int = 300
    # Characters of each sampled text kept (longer texts are cut and marked as cut).
    text_chars: int = 2000
    # Terms per topic embedded by probability (word search ranks), and per relevance step.
    topic_terms: int = 200
    relevance_terms: int = 30
    # Key terms per group shown from keyness.parquet (when the run has group comparisons).
    keyness_terms: int = 15
    # At most this many topic shares (documents x topics) embedded for the filters; beyond it
    # the sampled documents and a seeded random choice of the others carry the numbers.
    max_shares: int = 4_000_000
    # Seed of the random part of the sample.
    random_state: int = 0
    # Embed a subset of the CJK font (only the glyphs the page uses) as a web font.
    embed_font: bool = True

    def __post_init__(self) -> None:
        for key in (
            "max_groups",
            "text_chars",
            "topic_terms",
            "relevance_terms",
            "keyness_terms",
            "max_shares",
        ):
            if getattr(self, key) < 1:
                _fail(f"explorer.{key}", getattr(self, key), "an integer >= 1")
        for key in ("docs_per_topic", "docs_per_group", "random_docs", "random_state"):
            if getattr(self, key) < 0:
                _fail(f"explorer.{key}", getattr(self, key), "an integer >= 0")
        if len(set(self.filter_columns)) != len(self.filter_columns) or not all(
            self.filter_columns
        ):
            _fail("explorer.filter_columns", list(self.filter_columns), "distinct column names")


@dataclass(frozen=True)
class SparkParams:
    """How ``zhtopics run --engine spark`` runs on Apache Spark (pipeline/spark/)."""

    # The cluster: local[*] (this machine, every core), local[N], spark://host:7077, yarn,
    # k8s://..., local-cluster[workers,cores,MB] (separate JVMs on this machine, for tests).
    master: str = "local[*]"
    # Partitions of the document tables (and part files of each output dataset); 0 lets Spark
    # choose (spark.default.parallelism).
    partitions: int = 0
    # Extra Spark configuration, e.g. {spark.executor.memory: 4g}.
    conf: dict[str, str] = field(default_factory=dict)
    # Topic model: ``sample`` fits lda.engine on a seeded sample of documents on the driver and
    # folds every document in on the executors; ``mllib`` runs Spark MLlib's LDA on all counts.
    lda_mode: Literal["sample", "mllib"] = "sample"
    # Documents in the sample of ``sample`` mode (drawn with lda.random_state).
    lda_sample_docs: int = 50_000
    # A CSV, TSV or JSON Lines file in UTF-8 larger than this many MB is read line by line in
    # pieces of this size, one Spark task each; smaller files (and every other file) are read
    # whole, one task per file. 0: every file whole.
    split_mb: float = 64.0

    def __post_init__(self) -> None:
        if not self.master.strip():
            _fail("spark.master", self.master, "a Spark master URL, e.g. local[*]")
        if self.partitions < 0:
            _fail("spark.partitions", self.partitions, "0 (Spark decides) or an integer >= 1")
        for key, value in self.conf.items():
            if not key.startswith("spark."):
                _fail(f"spark.conf.{key}", value, "Spark settings, whose names start with spark.")
        if self.lda_sample_docs < 2:
            _fail("spark.lda_sample_docs", self.lda_sample_docs, "an integer >= 2")
        if self.split_mb < 0:
            _fail("spark.split_mb", self.split_mb, "0 (every file whole) or a size in MB > 0")


@dataclass(frozen=True)
class Params:
    """All settings, one section per stage."""

    ingest: IngestParams = field(default_factory=IngestParams)
    clean: CleanParams = field(default_factory=CleanParams)
    segment: SegmentParams = field(default_factory=SegmentParams)
    tfidf: TfidfParams = field(default_factory=TfidfParams)
    lda: LdaParams = field(default_factory=LdaParams)
    compare: CompareParams = field(default_factory=CompareParams)
    report: ReportParams = field(default_factory=ReportParams)
    robustness: RobustnessParams = field(default_factory=RobustnessParams)
    explorer: ExplorerParams = field(default_factory=ExplorerParams)
    spark: SparkParams = field(default_factory=SparkParams)


_SECTION_TYPES = typing.get_type_hints(Params)


def load_params(path: Path | str, overrides: typing.Sequence[str] = ()) -> Params:
    """Read ``path`` (YAML), apply ``section.key=value`` overrides and validate everything.

    Relative file paths in the settings are taken relative to the params file's folder.
    """
    raw = read_params_data(path, overrides)
    return params_from_dict(raw, base_dir=Path(path).resolve().parent)


def read_params_data(path: Path | str, overrides: typing.Sequence[str] = ()) -> dict[str, Any]:
    """The settings file as plain data with the overrides applied, not yet validated: what
    load_params validates, and what a copy of the settings (e.g. for a bench) is written from."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections {list(_SECTION_TYPES)}")
    for item in overrides:
        _apply_override(raw, item)
    return raw


def params_from_dict(raw: dict[str, Any], base_dir: Path | None = None) -> Params:
    """Build validated Params from plain data (as parsed from YAML)."""
    unknown = sorted(set(raw) - set(_SECTION_TYPES))
    if unknown:
        raise ConfigError(f"params: unknown section(s) {unknown}; allowed: {list(_SECTION_TYPES)}")
    sections = {}
    for name, cls in _SECTION_TYPES.items():
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"params: section {name!r} must be a mapping, got {values!r}")
        sections[name] = _build_section(name, cls, values, base_dir)
    return Params(**sections)


def _build_section(section: str, cls: type, values: dict[str, Any], base_dir: Path | None):
    hints = {k: v for k, v in typing.get_type_hints(cls).items() if not k.startswith("_")}
    for key in values:
        if f"{section}.{key}" in RENAMED:
            raise ConfigError(
                f"params: {section}.{key} was renamed {RENAMED[f'{section}.{key}']}; "
                "rename it in your params file"
            )
    unknown = sorted(set(values) - set(hints))
    if unknown:
        keys = ", ".join(f"{section}.{k}" for k in unknown)
        raise ConfigError(f"params: unknown key(s) {keys}; allowed: {sorted(hints)}")
    kwargs = {}
    for key, value in values.items():
        value = _coerce(f"{section}.{key}", value, hints[key])
        if isinstance(value, Path):
            value = _resolve_file(f"{section}.{key}", value, base_dir)
        kwargs[key] = value
    # Default file paths are resolved and checked like given ones.
    for f in dataclasses.fields(cls):
        if f.name not in kwargs and isinstance(f.default, Path):
            kwargs[f.name] = _resolve_file(f"{section}.{f.name}", f.default, base_dir)
    return cls(**kwargs)


def _resolve_file(key: str, value: Path, base_dir: Path | None) -> Path:
    if not value.is_absolute() and base_dir is not None:
        value = base_dir / value
    if not value.is_file():
        raise ConfigError(f"params: {key} names a file that does not exist: {value}")
    return value


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a type hint; ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            _fail(key, value, f"one of {list(choices)}")
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            _fail(key, value, _describe(hint))
        # Prefer an exact type match (so 2 stays an int for min_df, 0.5 a float).
        for option in options:
            if option is not type(None) and _is_instance(value, option, exact=True):
                return _coerce(key, value, option)
        for option in options:
            if option is not type(None) and _is_instance(value, option, exact=False):
                return _coerce(key, value, option)
        _fail(key, value, _describe(hint))
    if origin is dict:
        if not isinstance(value, dict):
            _fail(key, value, "a mapping")
        key_hint, value_hint = typing.get_args(hint)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                _fail(key, k, "string keys")
            if value_hint is str and isinstance(v, (bool, int, float)):
                v = str(v).lower() if isinstance(v, bool) else str(v)
            out[k] = _coerce(f"{key}.{k}", v, value_hint)
        return out
    if origin is tuple:
        if not isinstance(value, list):
            _fail(key, value, "a list")
        item = typing.get_args(hint)[0]
        return tuple(_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            _fail(key, value, "a mapping")
        return _build_section(key, hint, value, None)
    if hint is Path:
        if not isinstance(value, str) or not value:
            _fail(key, value, "a file path")
        return Path(value)
    if not _is_instance(value, hint, exact=False):
        _fail(key, value, _describe(hint))
    return float(value) if hint is float else value


def _is_instance(value: Any, hint: Any, exact: bool) -> bool:
    if hint is Path:
        return isinstance(value, str)
    if isinstance(value, bool):
        return hint is bool
    if hint is float and not exact:
        return isinstance(value, (int, float))
    if typing.get_origin(hint) is tuple:  # a list in YAML: tuple[str, ...] | None
        return isinstance(value, list)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    names.update({Path: "a file path", type(None): "null"})
    options = typing.get_args(hint) or (hint,)
    return " or ".join(names.get(o, str(o)) for o in options)


def _apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``section.key=value`` override; the value is parsed as YAML."""
    target, sep, text = item.partition("=")
    section, dot, key = target.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. lda.num_topics=8")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc})") from exc
    section_values = raw.setdefault(section, {})
    if not isinstance(section_values, dict):
        raise ConfigError(f"--set {item!r}: section {section!r} is not a mapping")
    *parents, key = key.split(".")  # a nested key: lda.sweep.k=[4, 8]
    for parent in parents:
        section_values = section_values.setdefault(parent, {})
        if not isinstance(section_values, dict):
            raise ConfigError(f"--set {item!r}: {parent!r} is not a mapping")
    section_values[key] = value
