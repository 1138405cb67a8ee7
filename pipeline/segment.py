"""Stage segment: jieba word segmentation (Python or compiled), parallel, cached per document.

The tokenizers and dictionaries, the token filters, the segmentation path and the token cache
live in ``pipeline/text/``; this module holds the stage: the pure function ``segment``, the
streaming ``Segmenter`` (cache and worker pool), the cache key and ``main``."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import multiprocessing
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.arrays import (
    int32_array,
    list_array,
    running_offsets,
    string_array,
    to_arrow,
    to_numpy,
)
from pipeline.config import RUN_ONLY, Params, SegmentParams
from pipeline.io import (
    Paths,
    TableWriter,
    iter_tables,
    read_table,
    row_spans,
    usable_cores,
    write_table,
)
from pipeline.progress import Progress, count_rows
from pipeline.schemas import CLEAN, KEPT, NEW_WORDS, TOKENS, require_columns
from pipeline.text.new_words import Checks, Thresholds, accepted_words, discover, read_review
from pipeline.text.segmentation import Utf8Texts, segment_utf8, segment_values
from pipeline.text.token_cache import (
    TokenCache,
    key_function,
    pack_lists,
    resolve_cache_dir,
    trim_cache,
    unpack_lists,
)
from pipeline.text.tokenizers import Lexicon, load_lexicon, read_userdict, warn_split_words
from pipeline.text.worker_pool import WorkerPool, done, run_ahead

log = logging.getLogger(__name__)

# Rows read from clean.parquet at a time, text bytes per job (a slice of rows cached and
# written together, a row group of tokens.parquet), and text bytes per task sent to a worker.
BATCH_ROWS = 4096
JOB_BYTES = 8 << 20
TASK_BYTES = 1 << 20
# Jobs started (their tasks queued for the workers) before the oldest is finished.
JOBS_AHEAD = 2
# Segment this much text in the main process before starting worker processes: a small
# re-run (a few new documents) is done before a pool would have started.
INLINE_BYTES = 1 << 20
# Bump when the meaning of cached values changes (the code that makes them is hashed as well).
CACHE_FORMAT = 3
# The modules whose code shapes a document's tokens: this stage, the segmentation path, the
# tokenizers and dictionaries, the token filters, the cache value format and the arrow helpers
# the token lists are built with. Their source is part of the cache key, so that editing any
# of them never hands back tokens made by the old code. The other pipeline modules the stage
# imports do not touch tokens (a test checks that each module it imports is in one list).
TOKEN_SHAPING_MODULES = (
    "pipeline.segment",
    "pipeline.text.segmentation",
    "pipeline.text.tokenizers",
    "pipeline.text.token_filters",
    "pipeline.text.token_cache",
    "pipeline.arrays",
)
# New-word discovery shapes tokens only through the words it adds, which are in the key.
TOKEN_NEUTRAL_MODULES = (
    "pipeline.text.new_words",
    "pipeline.config",
    "pipeline.io",
    "pipeline.precision",
    "pipeline.progress",
    "pipeline.schemas",
    "pipeline.text.worker_pool",
)


def fingerprint(params: SegmentParams, new_words: Sequence[str] = ()) -> bytes:
    """What a document's tokens depend on besides its text: settings, dictionaries, the new
    words added to the tokenizer, code and tokenizer versions. Part of every cache key."""
    settings = {f.name: getattr(params, f.name) for f in fields(params) if f.name not in RUN_ONLY}
    for key in ("phrases_threshold", "phrases_min_count"):
        settings.pop(key)
    # What discovery's settings and the review file do to tokens is the list of words added.
    for key in [k for k in settings if k.startswith("new_words")]:
        settings.pop(key)
    settings["new_words"] = hashlib.sha256("\n".join(new_words).encode("utf-8")).hexdigest()
    for key in ("userdict", "stopwords"):
        path = settings.pop(key)
        settings[key] = None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()
    packages = sorted({params.backend, "jieba", "stopwordsiso"})
    settings["versions"] = {name: importlib.metadata.version(name) for name in packages}
    code = hashlib.sha256()
    for name in TOKEN_SHAPING_MODULES:
        code.update(name.encode("utf-8") + b"\0" + _module_source(name) + b"\0")
    settings["code"] = code.hexdigest()
    settings["format"] = CACHE_FORMAT
    blob = json.dumps(settings, sort_keys=True, default=str).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=32).digest()


def _module_source(name: str) -> bytes:
    """The source file of a module of the package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"segment: cannot find the source of {name} for the cache key")
    return Path(spec.origin).read_bytes()


# --------------------------------------------------------------------------- phrases


def learn_phrases(batches: Iterable[pa.ListArray], params: SegmentParams):
    """gensim Phrases (npmi scoring) over the token lists, frozen for applying."""
    from gensim.models.phrases import Phrases

    model = Phrases(
        min_count=params.phrases_min_count,
        threshold=params.phrases_threshold,
        scoring="npmi",
        delimiter="_",
    )
    for lists in batches:
        model.add_vocab(lists.to_pylist())
    return model.freeze()


def apply_phrases(lists: pa.ListArray, phrases) -> pa.ListArray:
    """Join the learnt collocations into one token each (``a_b``)."""
    return pa.array([phrases[t] for t in lists.to_pylist()], pa.list_(pa.string()))


def _tokens_table(doc_ids: pa.ChunkedArray | pa.Array, lists: pa.ListArray) -> pa.Table:
    return pa.table(
        {
            "doc_id": doc_ids,
            "tokens": lists,
            "n_tokens": pc.list_value_length(lists).cast(pa.int32()),
        }
    )


def segment(docs: pa.Table, params: SegmentParams, lexicon: Lexicon) -> pa.Table:
    """Tokens for every document; those not ``kept`` by clean get an empty list."""
    require_columns(docs, ["doc_id", "text", "status"], "segment")
    texts = docs.column("text").to_pylist()
    kept = [i for i, s in enumerate(docs.column("status").to_pylist()) if s == KEPT]
    values = [b""] * len(texts)
    segmented = segment_values([texts[i] for i in kept], params, lexicon)
    for i, value in zip(kept, segmented, strict=True):
        values[i] = value
    lists = unpack_lists(values)
    if params.phrases_threshold is not None:
        lists = apply_phrases(lists, learn_phrases([lists], params))
    return _tokens_table(docs.column("doc_id"), lists)


# --------------------------------------------------------------------------- new words


def discovery_thresholds(params: SegmentParams) -> Thresholds:
    return Thresholds(
        min_count=params.new_words_min_count,
        min_cohesion=params.new_words_min_cohesion,
        min_entropy=params.new_words_min_entropy,
        max_chars=params.new_words_max_chars,
    )


def discovery_checks(params: SegmentParams, lexicon: Lexicon) -> Checks:
    """What discovery asks the tokenizer (with the user dictionary, without new words), the
    user dictionary and the review file."""
    backend = lexicon.backend
    users = read_userdict(params.userdict) if params.userdict is not None else []
    review = read_review(params.new_words_review) if params.new_words_review is not None else {}
    return Checks(
        known=backend.has_word,
        cut=lambda word: backend.cut(word, False),
        pieces=lambda word: backend.cut(word, params.hmm),
        stopwords=lexicon.stopwords,
        userwords=frozenset(u.word for u in users),
        review=review,
    )


def find_new_words(clean: Path, params: SegmentParams, lexicon: Lexicon) -> pa.Table:
    """The new-words table of the kept documents of clean.parquet (read once)."""

    def batches() -> Iterator[pa.Array]:
        for docs in iter_tables(clean, CLEAN, BATCH_ROWS, columns=["text", "status"]):
            # is_in, not equal: a Python scalar would make arrow import pandas.
            kept = pc.is_in(docs.column("status"), value_set=string_array([KEPT]))
            yield docs.column("text").filter(kept).combine_chunks()

    return discover(batches, discovery_thresholds(params), discovery_checks(params, lexicon))


def new_words_of_run(clean: Path, params: SegmentParams, cache_dir: Path | None = None) -> pa.Table:
    """The new-words table of a run (empty when segment.new_words is off).

    With a ``cache_dir``, the table is kept there under a key of everything it depends on (the
    kept texts, the discovery settings, the review file, the dictionaries and the code): a
    re-run of segment on the same texts (another stopword list, say) does not discover again.
    """
    if params.new_words == "off":
        return NEW_WORDS.schema.empty_table()
    started = time.perf_counter()
    cached = cache_dir / f"new_words-{_discovery_key(clean, params)}.parquet" if cache_dir else None
    table = None
    if cached is not None and cached.is_file():
        try:
            table = read_table(cached, NEW_WORDS)
            cached.touch()  # recently used
        except (OSError, ValueError, pa.ArrowException) as exc:
            log.warning("segment: %s is unreadable (%s); discovering again", cached, exc)
    source = "from the cache" if table is not None else "discovered"
    if table is None:
        table = find_new_words(clean, params, load_lexicon(params, check=False))
        if cached is not None:
            write_table(table, cached, NEW_WORDS)
            _trim_discoveries(cached)
    log.info(
        "segment: %d new words accepted of %d listed (%s, %s, %.1f s)",
        len(accepted_words(table)),
        table.num_rows,
        source,
        "added to the tokenizer" if params.new_words == "use" else "not used",
        time.perf_counter() - started,
    )
    return table


# Segment settings that only filter the tokens a segmentation makes.
_TOKEN_FILTER_SETTINGS = ("allow_single_char", "keep_numbers", "keep_latin", "pos")
# Discovery tables kept in the cache folder (the most recently used; each is small).
DISCOVERIES_KEPT = 8


def _discovery_key(clean: Path, params: SegmentParams) -> str:
    """A hash of what discovery depends on: the kept texts, in order, and the settings."""
    # The filters applied to the tokens after segmentation do not matter to discovery.
    defaults = SegmentParams.__dataclass_fields__
    unfiltered = dataclasses.replace(
        params, **{k: defaults[k].default for k in _TOKEN_FILTER_SETTINGS}
    )
    digest = hashlib.blake2b(fingerprint(unfiltered), digest_size=20)
    settings = {f.name: str(getattr(params, f.name)) for f in fields(params)}
    settings = {k: v for k, v in settings.items() if k.startswith("new_words_")}
    settings.pop("new_words_review")
    digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
    review = params.new_words_review
    digest.update(review.read_bytes() if review is not None else b"\0no review")
    digest.update(_module_source("pipeline.text.new_words"))
    for docs in iter_tables(clean, CLEAN, BATCH_ROWS, columns=["text", "status"]):
        kept = pc.is_in(docs.column("status"), value_set=string_array([KEPT]))
        texts = docs.column("text").filter(kept)
        if len(texts) == 0:
            continue
        data, bounds = _text_buffers(texts)
        digest.update(np.diff(np.asarray(bounds, np.int64)).tobytes())
        digest.update(data[bounds[0] : bounds[-1]] if bounds else b"")
    return digest.hexdigest()


def _trim_discoveries(keep: Path) -> None:
    tables = sorted(keep.parent.glob("new_words-*.parquet"), key=lambda p: -p.stat().st_mtime)
    for old in [p for p in tables if p != keep][DISCOVERIES_KEPT - 1 :]:
        old.unlink(missing_ok=True)


class _WordCounter:
    """How often each word of a list is a token (of token lists seen batch by batch)."""

    def __init__(self, words: list[str]) -> None:
        self.words = string_array(words)
        self.counts = np.zeros(len(words), np.int64)

    def add(self, lists: pa.ListArray) -> None:
        if len(self.words):
            index = pc.index_in(lists.flatten(), value_set=self.words).drop_null()
            self.counts += np.bincount(to_numpy(index), minlength=len(self.words))

    def table(self, new_words: pa.Table) -> pa.Table:
        column = new_words.schema.get_field_index("token_count")
        return new_words.set_column(column, "token_count", to_arrow(self.counts))


# --------------------------------------------------------------------------- the stage run


def _set_up_worker(
    params: SegmentParams, lexicon: Lexicon | None, new_words: tuple[str, ...] = ()
) -> tuple:
    """Runs once in each worker process: its own private tokenizer, inherited from the parent
    (fork) or loaded here (spawn, forkserver)."""
    # Arrow's default allocator (mimalloc) returns freed pages to the system after 10 ms, and
    # each task then faults them in again; the system allocator keeps them for the next task
    # (about 5% less CPU in a worker, the same peak memory).
    pa.set_memory_pool(pa.system_memory_pool())
    if lexicon is None:
        lexicon = load_lexicon(params, check=False, new_words=new_words)
    return params, lexicon


def _split_user_words_task(worker: tuple[SegmentParams, Lexicon]) -> list[str]:
    """A task: the user words this worker's tokenizer does not keep whole (for the warning)."""
    params, lexicon = worker
    if params.userdict is None:
        return []
    words = [e.word for e in read_userdict(params.userdict)]
    return [w for w in words if lexicon.backend.cut(w, params.hmm) != [w]]


def _segment_task(worker: tuple[SegmentParams, Lexicon], texts: Utf8Texts) -> pa.ListArray:
    """A task: UTF-8 texts in (decoded here, in parallel), token lists out."""
    params, lexicon = worker
    return segment_utf8(texts, params, lexicon)


def worker_count(params: SegmentParams) -> int:
    return params.workers or usable_cores()


@dataclass
class RunStats:
    documents: int = 0
    cached: int = 0
    segmented: int = 0
    segmented_bytes: int = 0
    workers_started: int = 0


@dataclass
class _Job:
    docs: pa.Table
    rows: dict[bytes, list[int]]  # document key -> rows with that text
    hits: dict[bytes, bytes]  # document key -> cached tokens
    tasks: list[tuple[list[bytes], Future]]  # document keys -> their token lists


class Segmenter:
    """Segments streamed tables with the cache and a lazily started pool of worker processes.

    Results come back in input order and do not depend on the number of workers or on what the
    cache holds: every path runs ``segment_utf8`` on the same texts.
    """

    def __init__(
        self, params: SegmentParams, cache_dir: Path | None, new_words: Sequence[str] = ()
    ) -> None:
        self.params = params
        self.new_words = tuple(new_words)  # discovered words added to the tokenizer
        settings = fingerprint(params, self.new_words)
        self._key = key_function(settings)
        self.cache = TokenCache(cache_dir, settings) if cache_dir is not None else None
        self.pool = WorkerPool(
            worker_count(params), params.start_method, _set_up_worker, INLINE_BYTES
        )
        self.workers = self.pool.workers
        self.stats = RunStats()
        self._fork = multiprocessing.get_context(params.start_method).get_start_method() == "fork"
        self._lexicon: Lexicon | None = None
        self._check: Future | None = None
        self._checked = False  # the user dictionary has been checked in this process

    @property
    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            self._lexicon = load_lexicon(
                self.params, check=not self._checked, new_words=self.new_words
            )
            self._checked = True
        return self._lexicon

    def run(self, tables: Iterable[pa.Table]) -> Iterator[tuple[pa.Table, pa.ListArray]]:
        """Yield each input table, in slices of about JOB_BYTES of text, with the token lists
        of the slice's documents."""
        return run_ahead(self._job_slices(tables), self._start, self._finish, JOBS_AHEAD)

    def _job_slices(self, tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
        for docs in tables:
            require_columns(docs, ["doc_id", "text", "status"], "segment")
            yield from text_slices(docs, JOB_BYTES)

    def _start(self, docs: pa.Table) -> _Job:
        data, bounds = _text_buffers(docs.column("text"))
        statuses = docs.column("status").to_pylist()
        rows: dict[bytes, list[int]] = {}
        for i, status in enumerate(statuses):
            if status == KEPT:
                key = self._key(data[bounds[i] : bounds[i + 1]])
                rows.setdefault(key, []).append(i)
        hits = self.cache.get_many(list(rows)) if self.cache is not None else {}
        misses = [(k, r[0]) for k, r in rows.items() if k not in hits]
        # A few new documents are segmented here, before a pool of workers would have started.
        size = sum(bounds[i + 1] - bounds[i] for _, i in misses)
        inline = self.pool.takes_inline(size)
        tasks = []
        sizes = [bounds[i + 1] - bounds[i] for _, i in misses]
        for lo, hi in row_spans(running_offsets(sizes).tolist(), TASK_BYTES) if misses else ():
            chunk = misses[lo:hi]
            spans = [(bounds[i], bounds[i + 1]) for _, i in chunk]
            texts = Utf8Texts(
                b"".join(data[lo:hi] for lo, hi in spans),
                running_offsets([hi - lo for lo, hi in spans]),
            )
            tasks.append(([k for k, _ in chunk], self._submit(texts, inline)))
        self.stats.documents += len(statuses)
        self.stats.cached += sum(len(rows[k]) for k in hits)
        self.stats.segmented += sum(len(rows[k]) for k, _ in misses)
        self.stats.segmented_bytes += size
        return _Job(docs, rows, hits, tasks)

    def expect(self, size: int) -> None:
        """Told that about ``size`` bytes of text are coming. If that is more than this process
        segments itself, every batch goes to the workers. When the cache holds entries, most
        documents are probably in it: the workers start now, to load their tokenizers while
        this process reads, hashes and looks up the texts. Otherwise they will all be busy at
        once, and start with the first batch (forked ones inherit this process's tokenizer,
        loaded once rather than once per worker)."""
        if self.workers <= 1 or size <= INLINE_BYTES:
            return
        self.pool.eager = True
        if self.cache is not None and not self.cache.is_empty():
            self._ensure_pool(inherit=False)

    def _submit(self, texts: Utf8Texts, inline: bool) -> Future:
        if inline:
            return done(segment_utf8(texts, self.params, self.lexicon))
        self._ensure_pool(inherit=self._fork)
        return self.pool.submit(_segment_task, texts)

    def _ensure_pool(self, inherit: bool) -> None:
        if not self.pool.started:
            # The workers do the segmenting from now on. With ``inherit``, forked workers take
            # this process's tokenizer; otherwise each loads its own, and one of them checks
            # the user dictionary (once) for the warning.
            inherited = self.lexicon if inherit else None
            self._lexicon = None
            self.pool.start(self.params, inherited, self.new_words)
            self.stats.workers_started = self.workers
            if not self._checked:
                self._check = self.pool.submit(_split_user_words_task)

    def _finish(self, job: _Job) -> tuple[pa.Table, pa.ListArray]:
        """Wait for a job's tasks, cache their results, and put every row's tokens in order."""
        results: list[pa.ListArray] = []
        values = job.hits  # document key -> packed tokens, when some come from the cache
        for keys, future in job.tasks:
            lists = future.result()
            results.append(lists)
            if self.cache is not None:
                packed = pack_lists(lists)
                self.cache.put_many(zip(keys, packed, strict=True))
                if values:
                    values.update(zip(keys, packed, strict=True))
        if values:  # cached and new tokens together, in row order
            rows = [b""] * job.docs.num_rows
            for key, where in job.rows.items():
                for i in where:
                    rows[i] = values[key]
            return job.docs, unpack_lists(rows)
        keys = [key for task_keys, _ in job.tasks for key in task_keys]
        return job.docs, _arrange(results, keys, job.rows, job.docs.num_rows)

    def close(self) -> None:
        check = self._check
        if check is not None and check.done() and not check.cancelled() and not check.exception():
            warn_split_words(self.params, check.result())
        self._check = None
        self.pool.close()
        if self.cache is not None:
            self.cache.close()
            trim_cache(self.cache.path, self.params.cache_max_mb << 20)

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _arrange(
    results: list[pa.ListArray], keys: list[bytes], rows: dict[bytes, list[int]], size: int
) -> pa.ListArray:
    """The token lists of ``keys`` (results of consecutive tasks) placed at their rows; rows
    without a key (not kept by clean) get an empty list."""
    lists = pa.concat_arrays(results) if results else _empty_lists(0)
    index = np.full(size, -1, np.int64)
    for position, key in enumerate(keys):
        index[rows[key]] = position
    kept = index >= 0
    if np.array_equal(index[kept], np.arange(len(lists))):  # in row order: no copy
        sizes = np.zeros(size, np.int64)
        sizes[kept] = np.diff(to_numpy(lists.offsets))
        return list_array(running_offsets(sizes), lists.flatten())
    with_empty = pa.concat_arrays([lists, _empty_lists(1)])
    return with_empty.take(int32_array(np.where(kept, index, len(lists))))


def text_slices(docs: pa.Table, size: int) -> Iterator[pa.Table]:
    """Consecutive row slices of ``docs`` holding about ``size`` bytes of text each (at least
    one row each): the last job, written after the workers are done, stays small."""
    _, bounds = _text_buffers(docs.column("text"))  # row i is bytes bounds[i]:bounds[i + 1]
    for start, stop in row_spans(bounds, size):
        yield docs.slice(start, stop - start)


def _empty_lists(count: int) -> pa.ListArray:
    return list_array(np.zeros(count + 1, np.int64), string_array([]))


def _text_buffers(column: pa.ChunkedArray) -> tuple[memoryview, list[int]]:
    """The UTF-8 bytes of a string column and where each row's text starts and ends."""
    texts = column.combine_chunks()
    _, offsets, data = texts.buffers()
    bounds = np.frombuffer(offsets, np.int32)[texts.offset : texts.offset + len(texts) + 1]
    return memoryview(data if data is not None else b""), bounds.tolist()


def main(params: Params, paths: Paths, added_words: Sequence[str] | None = None) -> None:
    """The stage. With ``added_words`` (``zhtopics infer``: the words the model's training run
    added), those are added to the tokenizer instead of discovering new words here."""
    seg = params.segment
    out = paths.table("tokens")
    started = time.perf_counter()
    phrased = seg.phrases_threshold is not None
    first = paths.processed / ".tokens.unphrased.parquet" if phrased else out
    total = 0
    clean = paths.table("clean")
    if added_words is not None:
        new_words, added = NEW_WORDS.schema.empty_table(), list(added_words)
    else:
        new_words = new_words_of_run(clean, seg, resolve_cache_dir(seg.cache_dir))
        added = accepted_words(new_words) if seg.new_words == "use" else []
    counter = _WordCounter(new_words.column("word").to_pylist())
    segmenter = Segmenter(seg, resolve_cache_dir(seg.cache_dir), added)
    progress = Progress("segment", total=count_rows(clean), unit="doc", logger=log)
    with segmenter, TableWriter(first, TOKENS) as writer, progress:
        if clean.is_file():  # compressed, so less than the text it holds
            segmenter.expect(clean.stat().st_size)
        for docs, lists in segmenter.run(iter_tables(clean, CLEAN, BATCH_ROWS)):
            progress.update(docs.num_rows)
            table = _tokens_table(docs.column("doc_id"), lists)
            writer.write(table)
            counter.add(lists)
            total += pc.sum(table.column("n_tokens")).as_py() or 0
    write_table(counter.table(new_words), paths.table("new_words"), NEW_WORDS)
    stats = segmenter.stats
    if phrased:
        _write_phrased(first, out, seg)
    log.info(
        "segment: %d tokens in %d documents -> %s (%d from the cache, %d segmented, "
        "%.1f MB, %d worker process(es), %.1f s)",
        total,
        writer.num_rows,
        out,
        stats.cached,
        stats.segmented,
        stats.segmented_bytes / 1e6,
        stats.workers_started,
        time.perf_counter() - started,
    )


def _write_phrased(first: Path, out: Path, params: SegmentParams) -> None:
    """Second and third pass: learn collocations over all tokens, then join them."""
    phrases = learn_phrases(
        (t.column("tokens").combine_chunks() for t in iter_tables(first, TOKENS)), params
    )
    with TableWriter(out, TOKENS) as writer:
        for table in iter_tables(first, TOKENS):
            lists = apply_phrases(table.column("tokens").combine_chunks(), phrases)
            writer.write(_tokens_table(table.column("doc_id"), lists))
    first.unlink()
