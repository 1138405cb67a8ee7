"""Stage clean: Unicode and layout normalisation; too-short documents are kept and flagged."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from pipeline.config import CleanParams, Params
from pipeline.io import Paths, TableWriter, iter_tables
from pipeline.schemas import CLEAN, DOCUMENTS, require_columns

log = logging.getLogger(__name__)

KEPT, EMPTY, TOO_SHORT = "kept", "empty", "too_short"

# Control and format characters (zero-width spaces, BOMs, soft hyphens) except \n and \t.
_INVISIBLE = re.compile(
    r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]"
)
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_CJK = r"\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}]) | (?=[{_CJK}])")
_BLANK_LINES = re.compile(r"\n{2,}")


class CleanError(ValueError):
    """The replacements file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Replacements:
    """Literal text replacements, applied longest match first in one pass."""

    pairs: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        keys = sorted((k for k, _ in self.pairs), key=lambda k: (-len(k), k))
        pattern = re.compile("|".join(map(re.escape, keys))) if keys else None
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_table", dict(self.pairs))

    def apply(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._table[m.group(0)], text)


def load_replacements(path: Path | None) -> Replacements:
    """Read ``from<TAB>to`` lines; blank lines and lines starting with # are skipped."""
    if path is None:
        return Replacements()
    pairs: dict[str, str] = {}
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0]:
            raise CleanError(f"{path}: line {line_no}: expected 'from<TAB>to', got {line!r}")
        source = unicodedata.normalize("NFKC", fields[0])
        if source in pairs:
            raise CleanError(f"{path}: line {line_no}: {source!r} is listed twice")
        pairs[source] = unicodedata.normalize("NFKC", fields[1])
    return Replacements(tuple(pairs.items()))


def normalize_text(text: str, replacements: Replacements | None = None) -> str:
    """NFKC (full-width to half-width), invisible characters out, spaces and blank lines folded."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    if replacements is not None:
        text = replacements.apply(text)
    lines = (_SPACE_NEAR_CJK.sub("", _SPACES.sub(" ", line)).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()


def clean(docs: pa.Table, params: CleanParams, replacements: Replacements) -> pa.Table:
    """Normalise every document's text; give each a status (kept, empty, too_short) and reason."""
    require_columns(docs, ["doc_id", "text"], "clean")
    texts, n_chars, statuses, reasons = [], [], [], []
    for text in tqdm(docs.column("text").to_pylist(), desc="clean", unit="doc", disable=None):
        cleaned = normalize_text(text, replacements)
        size = len(re.sub(r"\s", "", cleaned))
        status, reason = _status(size, params.min_chars)
        texts.append(cleaned)
        n_chars.append(size)
        statuses.append(status)
        reasons.append(reason)
    return pa.table(
        {
            "doc_id": docs.column("doc_id"),
            "text": pa.array(texts, pa.string()),
            "n_chars": pa.array(n_chars, pa.int64()),
            "status": pa.array(statuses, pa.string()),
            "reason": pa.array(reasons, pa.string()),
        }
    )


def _status(size: int, min_chars: int) -> tuple[str, str | None]:
    if size == 0:
        return EMPTY, "no text left after cleaning"
    if size < min_chars:
        return TOO_SHORT, f"{size} characters after cleaning, below clean.min_chars={min_chars}"
    return KEPT, None


def main(params: Params, paths: Paths) -> None:
    replacements = load_replacements(params.clean.replacements)
    counts: Counter[str] = Counter()
    with TableWriter(paths.table("clean"), CLEAN) as writer:
        for docs in iter_tables(paths.table("documents"), DOCUMENTS):
            table = clean(docs, params.clean, replacements)
            writer.write(table)
            counts.update(table.column("status").to_pylist())
    log.info(
        "clean: %d documents %s -> %s",
        writer.num_rows,
        dict(sorted(counts.items())),
        paths.table("clean"),
    )
