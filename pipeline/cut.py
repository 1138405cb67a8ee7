"""`zhtopics cut`: show how the project's tokenizer segments text, one output line per input line.

Standard input is read line by line; each line is printed with its tokens separated by one space.
Nothing is filtered (stopwords, punctuation and numbers stay); only whitespace, which separates
the tokens anyway, is not printed as a token. The tokenizer is the one segment uses: the same
backend, HMM setting, user dictionary (unless ``--no-userdict``) and, with ``--new-words FILE``,
the accepted words of a run's new_words.parquet or a plain word list (one word a line). The text
is segmented as given (not NFKC-normalised as the clean stage does).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from pipeline.config import Params, SegmentParams


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--new-words",
        type=Path,
        metavar="FILE",
        help="a run's new_words.parquet (its accepted words) or a word list, one word a line",
    )
    parser.add_argument(
        "--no-userdict",
        action="store_true",
        help="leave out the user dictionary (segment.userdict)",
    )


def read_word_list(path: Path) -> list[str]:
    """The words of FILE: the accepted words of a new-words table (.parquet), or one word a line
    of a UTF-8 text file (# starts a comment; a jieba dictionary line's frequency and tag are
    ignored). Words are NFKC-normalised like the user dictionary."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such word file")
    if path.suffix == ".parquet":
        from pipeline.io import read_table
        from pipeline.schemas import NEW_WORDS
        from pipeline.text.new_words import accepted_words

        return accepted_words(read_table(path, NEW_WORDS))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: a word list must be UTF-8 ({exc})") from exc
    words = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            words.append(unicodedata.normalize("NFKC", fields[0]))
    return list(dict.fromkeys(words))


def cut_lines(
    lines: Iterable[str], params: SegmentParams, words: Iterable[str] = ()
) -> Iterator[str]:
    """Each line segmented by the project's tokenizer, tokens joined by single spaces."""
    from pipeline.text.tokenizers import load_lexicon

    backend = load_lexicon(params, check=False, new_words=list(words)).backend
    for line in lines:
        tokens = backend.cut(line, params.hmm) if line else []
        yield " ".join(t for t in tokens if t.strip())


def run(params: Params, args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    seg = params.segment
    if args.no_userdict:
        seg = dataclasses.replace(seg, userdict=None)
    words = read_word_list(args.new_words) if args.new_words is not None else []
    lines = (line.rstrip("\r\n") for line in stdin)
    for out in cut_lines(lines, seg, words):
        stdout.write(out + "\n")
    stdout.flush()


def main(params: Params, args: argparse.Namespace) -> None:
    with (
        open(sys.stdin.fileno(), encoding="utf-8-sig", closefd=False) as stdin,
        open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False) as stdout,
    ):
        run(params, args, stdin, stdout)
