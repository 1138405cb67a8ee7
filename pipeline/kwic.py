"""Key words in context: concordance lines of a term from the clean texts of a run, matched on
the token boundaries of tokens.parquet (维权 does not match inside 维权益 or 新维权人士 unless
segmentation made it a token there).

``zhtopics kwic TERM [--group column=value] [--topic N] [--width N] [--processed DIR]
[--out FILE]`` prints the lines; the compare stage uses the same functions for the report's
lines of each topic's top terms.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.io import Paths, iter_tables, write_table
from pipeline.schemas import CLEAN, DOC_TOPICS, DOCUMENTS, KWIC, TOKENS
from pipeline.text.dates import BUCKETS, bucket_label

log = logging.getLogger(__name__)

BATCH_ROWS = 4096


class KwicError(ValueError):
    """The term, group or topic cannot be looked up; the message says why."""


@dataclass(frozen=True)
class Line:
    doc_id: str
    start: int
    left: str
    term: str
    right: str


def token_spans(text: str, tokens: Iterable[str]) -> Iterator[tuple[int, int, str]]:
    """(start, end, token) of each token found in ``text``, in order. Tokens are the content
    words of the text in order (stop words and punctuation were dropped between them), so
    each is searched from where the previous one ended; a token not in the text (a joined
    phrase a_b) is skipped."""
    position = 0
    for token in tokens:
        start = text.find(token, position)
        if start < 0:
            continue
        end = start + len(token)
        yield start, end, token
        position = end


def concordance(text: str, tokens: Iterable[str], term: str, width: int) -> list[Line]:
    """The lines of ``term`` in one text: ``width`` characters either side, on one line."""
    lines = []
    for start, end, token in token_spans(text, tokens):
        if token == term:
            left = _one_line(text[max(0, start - width) : start])
            right = _one_line(text[end : end + width])
            lines.append(Line("", start, left, term, right))
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def kwic(
    documents: Iterable[tuple[str, list[str]]],
    texts: dict[str, str],
    term: str,
    width: int = 20,
    limit: int | None = None,
) -> list[Line]:
    """Lines of ``term`` in ``documents`` ((doc_id, tokens), in order) whose clean text is in
    ``texts`` (doc_id -> text), at most ``limit``."""
    out: list[Line] = []
    for doc, doc_tokens in documents:
        text = texts.get(doc)
        if text is None:
            continue
        for line in concordance(text, doc_tokens, term, width):
            out.append(Line(doc, line.start, line.left, line.term, line.right))
            if limit is not None and len(out) >= limit:
                return out
    return out


def documents_with(
    tokens: Iterable[pa.Table], terms: list[str], allowed: set[str] | None = None
) -> Iterator[tuple[str, list[str]]]:
    """(doc_id, tokens) of the documents that have any of ``terms`` among their tokens."""
    for batch in tokens:
        yield from _documents_with(batch, terms, allowed)


def _documents_with(
    batch: pa.Table, terms: list[str], allowed: set[str] | None
) -> Iterator[tuple[str, list[str]]]:
    lists = batch.column("tokens").combine_chunks()
    hits = pc.is_in(pc.list_flatten(lists), value_set=pa.array(terms, pa.string()))
    parents = pc.list_parent_indices(lists).to_numpy()
    rows = np.unique(parents[hits.to_numpy(zero_copy_only=False)])
    if not len(rows):
        return
    ids = batch.column("doc_id").take(pa.array(rows)).to_pylist()
    token_lists = lists.take(pa.array(rows)).to_pylist()
    for doc, doc_tokens in zip(ids, token_lists, strict=True):
        if allowed is None or doc in allowed:
            yield doc, doc_tokens


def read_texts(path: Path, doc_ids: set[str]) -> dict[str, str]:
    """The clean texts of ``doc_ids``, streamed from clean.parquet."""
    texts: dict[str, str] = {}
    wanted = pa.array(sorted(doc_ids), pa.string())
    for batch in iter_tables(path, CLEAN, batch_rows=BATCH_ROWS, columns=["doc_id", "text"]):
        batch = batch.filter(pc.is_in(batch.column("doc_id"), value_set=wanted))
        texts.update(
            zip(batch.column("doc_id").to_pylist(), batch.column("text").to_pylist(), strict=False)
        )
    return texts


def group_members(documents: pa.Table, column: str, value: str) -> set[str]:
    """The doc_ids whose ``column`` is ``value``; decade, year, quarter and month come from
    the date (``year=1954``)."""
    if column in BUCKETS and column not in documents.column_names:
        precision = (
            documents.column("date_precision").to_pylist()
            if "date_precision" in documents.column_names
            else [None] * documents.num_rows
        )
        values = [
            bucket_label(d, p, column)
            for d, p in zip(documents.column("date").to_pylist(), precision, strict=True)
        ]
    elif column in documents.column_names:
        values = [None if v is None else str(v) for v in documents.column(column).to_pylist()]
    else:
        raise KwicError(
            f"--group {column}={value}: no column {column!r}; choose one of "
            f"{[c for c in documents.column_names if c != 'text']} or {list(BUCKETS)}"
        )
    ids = documents.column("doc_id").to_pylist()
    members = {d for d, v in zip(ids, values, strict=True) if v == value}
    if not members:
        shown = sorted({v for v in values if v is not None})[:20]
        raise KwicError(f"--group {column}={value}: no document has it; values are e.g. {shown}")
    return members


def dominant_topics(doc_topics: Iterable[pa.Table]) -> dict[str, int]:
    """Each document's topic of the largest share (ties: the lower topic)."""
    best: dict[str, tuple[float, int]] = {}
    for batch in doc_topics:
        for doc, topic, weight in zip(
            batch.column("doc_id").to_pylist(),
            batch.column("topic").to_pylist(),
            batch.column("weight").to_pylist(),
            strict=True,
        ):
            current = best.get(doc)
            if (
                current is None
                or weight > current[0]
                or (weight == current[0] and topic < current[1])
            ):
                best[doc] = (weight, topic)
    return {doc: topic for doc, (_, topic) in best.items()}


def lines_table(lines: list[Line], titles: dict[str, str | None], topic: int | None) -> pa.Table:
    """The KWIC table of ``lines``."""
    return KWIC.conform(
        pa.table(
            {
                "topic": pa.array([topic] * len(lines), pa.int32()),
                "term": [x.term for x in lines],
                "doc_id": [x.doc_id for x in lines],
                "title": pa.array([titles.get(x.doc_id) for x in lines], pa.string()),
                "start": pa.array([x.start for x in lines], pa.int64()),
                "left": [x.left for x in lines],
                "right": [x.right for x in lines],
            }
        )
    )


# --- the command --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("term", help="a term (a token of tokens.parquet), e.g. 改革")
    parser.add_argument(
        "--group", metavar="COLUMN=VALUE", help="only documents of one group, e.g. speaker=周恩来"
    )
    parser.add_argument("--topic", type=int, help="only documents whose largest topic is N")
    parser.add_argument("--width", type=int, default=20, help="characters either side (20)")
    parser.add_argument("--limit", type=int, default=50, help="at most this many lines (50)")
    parser.add_argument("--processed", type=Path, help="a run's tables (default: the project's)")
    parser.add_argument("--out", type=Path, help="also write the lines to this parquet file")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Print the concordance lines of ``args.term``; write them with ``--out``."""
    if args.width < 1 or args.limit < 1:
        raise KwicError("--width and --limit must be at least 1")
    processed = args.processed or paths.processed
    documents = _read(processed / "documents.parquet", DOCUMENTS, None)
    allowed: set[str] | None = None
    if args.group:
        column, sep, value = args.group.partition("=")
        if not sep or not column:
            raise KwicError(f"--group {args.group!r}: expected COLUMN=VALUE, e.g. speaker=周恩来")
        allowed = group_members(documents, column.strip(), value.strip())
    if args.topic is not None:
        dominant = dominant_topics(
            iter_tables(processed / "doc_topics.parquet", DOC_TOPICS, batch_rows=65536)
        )
        if args.topic not in set(dominant.values()):
            raise KwicError(f"--topic {args.topic}: no document has it as its largest topic")
        in_topic = {d for d, t in dominant.items() if t == args.topic}
        allowed = in_topic if allowed is None else allowed & in_topic
    tokens = iter_tables(processed / "tokens.parquet", TOKENS, batch_rows=BATCH_ROWS)
    # Every document found has the term at least once: the first ``limit`` suffice.
    found = list(itertools.islice(documents_with(tokens, [args.term], allowed), args.limit))
    texts = read_texts(processed / "clean.parquet", {doc for doc, _ in found})
    lines = kwic(found, texts, args.term, args.width, args.limit)
    titles = dict(
        zip(
            documents.column("doc_id").to_pylist(),
            documents.column("title").to_pylist(),
            strict=False,
        )
    )
    for line in lines:
        title = titles.get(line.doc_id) or line.doc_id
        sys.stdout.write(f"{line.left:>{args.width}} 【{line.term}】 {line.right}  ({title})\n")
    if not lines:
        log.warning("kwic: %r occurs as a token in no document of %s", args.term, processed)
    if args.out:
        write_table(lines_table(lines, titles, args.topic), args.out, KWIC)
        log.info("kwic: %d line(s) -> %s", len(lines), args.out)
    return 0


def _read(path: Path, schema, columns: list[str] | None) -> pa.Table:
    if not path.is_file():
        raise KwicError(f"{path}: not found; run the pipeline first or give --processed DIR")
    parts = []
    for batch in iter_tables(path, schema, batch_rows=65536):
        parts.append(batch.drop_columns([c for c in ("text",) if c in batch.column_names]))
    return pa.concat_tables(parts) if parts else schema.schema.empty_table()
