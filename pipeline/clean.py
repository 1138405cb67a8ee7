"""Stage clean: normalisation, boilerplate rules (audited), Traditional to Simplified, duplicate
and near-duplicate clusters, and the final status of every document; writes the ingest report."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from pipeline.config import CleanParams, Params
from pipeline.io import Paths, Spool, TableWriter, iter_tables, write_json, write_table
from pipeline.schemas import (
    CLEAN,
    CLEAN_AUDIT,
    DECODE_ERRORS,
    DOCUMENTS,
    DUPLICATE,
    EMPTY,
    INGEST_REPORT,
    KEPT,
    NEAR_DUPLICATE,
    NOT_CHINESE,
    TOO_SHORT,
    require_columns,
)

log = logging.getLogger(__name__)

# Audit names of the steps that are not rules of the boilerplate file.
REPLACEMENTS_RULE, NUMBERS_RULE = "replacements", "numbers"

# Control and format characters (zero-width spaces, BOMs, soft hyphens) except \n and \t,
# and U+FFFD left by invalid bytes (counted by ingest in decode_errors).
_INVISIBLE = re.compile(
    r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    r"\ufeff\ufffd]"
)
# One form of quotation marks and dashes: ASCII.
_PUNCTUATION = (
    (re.compile("[“”„‟〝〞〟«»「」『』]"), '"'),
    (re.compile("[‘’‚‛‹›]"), "'"),
    (re.compile("[‐‑‒–—―⁃−﹘﹣⸺⸻]"), "-"),
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_CJK = r"\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}]) | (?=[{_CJK}])")
_BLANK_LINES = re.compile(r"\n{2,}")
_IDEOGRAPHS = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_NOT_WORD = re.compile(r"[\W_]+")


class CleanError(ValueError):
    """A rules file is malformed or names an unknown rule; the message names the file and line."""


# --- rules --------------------------------------------------------------------------------------


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
        return self.apply_counted(text)[0]

    def apply_counted(self, text: str) -> tuple[str, int]:
        """The text and the number of replacements that changed it (a word mapped to itself,
        which protects it, is not counted)."""
        if self._pattern is None:
            return text, 0
        changed = 0

        def swap(match: re.Match[str]) -> str:
            nonlocal changed
            new = self._table[match.group(0)]
            changed += new != match.group(0)
            return new

        return self._pattern.sub(swap, text), changed


@dataclass(frozen=True)
class Rule:
    """A named boilerplate pattern; every match is removed."""

    name: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Rules:
    """Everything clean needs besides the data, loaded once per stage."""

    replacements: Replacements = field(default_factory=Replacements)
    boilerplate: tuple[Rule, ...] = ()
    converter: object | None = None  # an opencc.OpenCC, or None for clean.convert = none


def load_replacements(path: Path | None) -> Replacements:
    """Read ``from<TAB>to`` lines; blank lines and lines starting with # are skipped."""
    if path is None:
        return Replacements()
    pairs: dict[str, str] = {}
    for line_no, line in _data_lines(path):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0]:
            raise CleanError(f"{path}: line {line_no}: expected 'from<TAB>to', got {line!r}")
        source = unicodedata.normalize("NFKC", fields[0])
        if source in pairs:
            raise CleanError(f"{path}: line {line_no}: {source!r} is listed twice")
        pairs[source] = unicodedata.normalize("NFKC", fields[1])
    return Replacements(tuple(pairs.items()))


def load_boilerplate(path: Path | None, disable: Iterable[str] = ()) -> tuple[Rule, ...]:
    """Read the named rules (``name<TAB>pattern<TAB>enabled`` after a header line), in file
    order, leaving out those disabled in the file or listed in ``disable``."""
    if path is None:
        return ()
    rules: list[Rule] = []
    names: set[str] = set()
    lines = _data_lines(path)
    header = next(lines, (0, ""))[1].split("\t")
    if header != ["name", "pattern", "enabled"]:
        raise CleanError(f"{path}: the first line must be 'name<TAB>pattern<TAB>enabled'")
    for line_no, line in lines:
        fields = line.split("\t")
        if len(fields) != 3 or not fields[0] or fields[2] not in ("true", "false"):
            raise CleanError(
                f"{path}: line {line_no}: expected 'name<TAB>pattern<TAB>true|false', got {line!r}"
            )
        name, pattern, enabled = fields
        if name in names or name in (REPLACEMENTS_RULE, NUMBERS_RULE):
            raise CleanError(f"{path}: line {line_no}: rule name {name!r} is used twice")
        names.add(name)
        try:
            compiled = re.compile(pattern, re.MULTILINE)
        except re.error as exc:
            raise CleanError(f"{path}: line {line_no}: rule {name!r}: bad pattern ({exc})") from exc
        if enabled == "true":
            rules.append(Rule(name, compiled))
    unknown = sorted(set(disable) - names)
    if unknown:
        raise CleanError(
            f"params: clean.boilerplate_disable names unknown rule(s) {unknown}; "
            f"the rules in {path} are {sorted(names)}"
        )
    return tuple(rule for rule in rules if rule.name not in set(disable))


def _data_lines(path: Path):
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield line_no, line


def load_rules(params: CleanParams) -> Rules:
    """The replacements, the enabled boilerplate rules and the OpenCC converter."""
    converter = None
    if params.convert != "none":
        import opencc

        converter = opencc.OpenCC(f"{params.convert}.json")
    return Rules(
        load_replacements(params.replacements),
        load_boilerplate(params.boilerplate, params.boilerplate_disable),
        converter,
    )


# --- one text -----------------------------------------------------------------------------------

# (rule, n_matches, chars_removed) for the rules that fired on one text.
Audit = list[tuple[str, int, int]]


def normalize_text(text: str, replacements: Replacements | None = None) -> str:
    """NFKC, invisible characters out, one form of quotes and dashes, literal repairs, spaces
    and blank lines folded (no boilerplate rules: see ``clean_text``)."""
    return clean_text(text, Rules(replacements or Replacements()))[0]


def clean_text(text: str, rules: Rules, numbers: str = "keep") -> tuple[str, Audit]:
    """NFKC, Traditional to Simplified, invisible characters out, one form of quotes and
    dashes, literal repairs, boilerplate rules, numbers masked if asked, spaces and blank lines
    folded. Returns the text and what each rule removed."""
    audit: Audit = []
    text = unicodedata.normalize("NFKC", text)
    if rules.converter is not None:
        text = rules.converter.convert(text)
    text = _INVISIBLE.sub("", text)
    for pattern, replacement in _PUNCTUATION:
        text = pattern.sub(replacement, text)
    before = len(text)
    text, n = rules.replacements.apply_counted(text)
    if n:
        audit.append((REPLACEMENTS_RULE, n, before - len(text)))
    for rule in rules.boilerplate:
        text = _apply(rule.name, rule.pattern, "", text, audit)
    if numbers == "mask":
        text = _apply(NUMBERS_RULE, _NUMBER, "#", text, audit)
    lines = (_SPACE_NEAR_CJK.sub("", _SPACES.sub(" ", line)).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip(), audit


def _apply(name: str, pattern: re.Pattern[str], repl: str, text: str, audit: Audit) -> str:
    new, n = pattern.subn(repl, text)
    if n:
        audit.append((name, n, len(text) - len(new)))
    return new


def visible_chars(text: str) -> int:
    """Non-space characters."""
    return len(text) - len(re.findall(r"\s", text))


def cjk_share(text: str) -> float:
    """The share of CJK ideographs among the letters of ``text`` (1.0 when it has none)."""
    letters = len(_NOT_LETTERS.sub("", text))
    return len(_IDEOGRAPHS.sub("", text)) / letters if letters else 1.0


# --- duplicates ---------------------------------------------------------------------------------


class Deduplicator:
    """Exact and near-duplicate clusters over a stream of documents, in order.

    The first document of a cluster is its canonical member. Only canonical documents enter
    the index (a hash of the text, and a MinHash LSH over character shingles), with their
    signatures; the texts are not kept. A later document joins the cluster of an identical
    text (``duplicate``) or of the most similar indexed document whose estimated Jaccard
    similarity reaches the threshold (``near_duplicate``).
    """

    def __init__(self, params: CleanParams) -> None:
        from datasketch import MinHash, MinHashLSH

        self._params = params
        self._probe = MinHash(num_perm=params.num_perm, seed=params.minhash_seed)
        self._perms = self._probe.permutations
        try:
            self._lsh = MinHashLSH(
                threshold=params.near_duplicate_threshold, num_perm=params.num_perm
            )
        except ValueError as exc:
            raise CleanError(
                f"params: clean.near_duplicate_threshold = {params.near_duplicate_threshold} "
                f"with clean.num_perm = {params.num_perm} cannot be banded ({exc}); "
                "lower the threshold or raise num_perm"
            ) from exc
        self._exact: dict[bytes, str] = {}
        self._signatures: dict[str, np.ndarray] = {}
        self.sizes: Counter[str] = Counter()

    def assign(self, doc_id: str, text: str) -> tuple[str | None, str | None]:
        """(status, canonical doc_id) for a duplicate, (None, None) for a new document."""
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        canonical = self._exact.get(digest)
        if canonical is not None:
            self.sizes[canonical] += 1
            return DUPLICATE, canonical
        signature = self.signature(text)
        canonical = self._nearest(signature)
        if canonical is not None:
            self._exact[digest] = canonical
            self.sizes[canonical] += 1
            return NEAR_DUPLICATE, canonical
        self._exact[digest] = doc_id
        self._signatures[doc_id] = signature
        self._lsh.insert(doc_id, self._as_minhash(signature))
        self.sizes[doc_id] += 1
        return None, None

    def signature(self, text: str) -> np.ndarray:
        """MinHash signature of the text's character shingles (letters and digits only),
        with datasketch's permutations; shingles are hashed with numpy a window at a time,
        so a long document costs time but little memory."""
        text = _NOT_WORD.sub("", text)
        k = self._params.shingle_size
        a, b = self._perms
        signature = np.full(len(a), np.iinfo(np.uint32).max, dtype=np.uint32)
        step = max(1, 2_000_000 // len(a))
        for start in range(0, max(1, len(text) - k + 1), _WINDOW):
            hashes = shingle_hashes(text[start : start + _WINDOW + k - 1], k)
            for first in range(0, len(hashes), step):
                chunk = hashes[first : first + step, None]
                np.minimum(signature, (chunk * a + b).min(axis=0), out=signature)
        return signature

    def _as_minhash(self, signature: np.ndarray):
        # The index reads the bands at once and keeps no reference: one object is reused.
        self._probe.hashvalues = signature
        return self._probe

    def _nearest(self, signature: np.ndarray) -> str | None:
        candidates = self._lsh.query(self._as_minhash(signature))
        best, best_score = None, self._params.near_duplicate_threshold
        for candidate in sorted(candidates):
            score = float(np.mean(self._signatures[candidate] == signature))
            if score > best_score or (score == best_score and best is None):
                best, best_score = candidate, score
        return best


_WINDOW = 1 << 20


def shingle_hashes(text: str, k: int) -> np.ndarray:
    """Unique 32-bit hashes of the k-character shingles of ``text`` (one shingle if shorter)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) == 0:
        return np.zeros(1, dtype=np.uint32)
    k = min(k, len(codes))
    n = len(codes) - k + 1
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * np.uint64(0x100000001B3) + codes[j : j + n]
        # splitmix64 finaliser: spread the bits before keeping the upper 32.
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    hashes = (h >> np.uint64(32)).astype(np.uint32)
    # Repeats do not change a minimum; removing them pays only for long texts.
    return np.unique(hashes) if len(hashes) > 4096 else hashes


# --- tables ---------------------------------------------------------------------------------------


@dataclass
class CleanResult:
    clean: pa.Table
    audit: pa.Table


def clean(docs: pa.Table, params: CleanParams, rules: Rules) -> CleanResult:
    """Clean a whole (small) table: statuses, clusters and the audit of every rule."""
    dedup = Deduplicator(params) if params.deduplicate else None
    table, audit = clean_batch(docs, params, rules, dedup)
    sizes = dedup.sizes if dedup is not None else Counter()
    return CleanResult(fill_cluster_sizes(table, sizes), audit)


def clean_batch(
    docs: pa.Table, params: CleanParams, rules: Rules, dedup: Deduplicator | None
) -> tuple[pa.Table, pa.Table]:
    """One batch: the clean rows (cluster sizes not yet known) and the audit rows.

    Statuses set by ingest (empty, unsupported, unreadable) stay. A document with more decode
    errors than ``max_decode_errors`` of its characters becomes ``decode_errors``. The others
    are cleaned and get empty, too_short, not_chinese, duplicate, near_duplicate or kept.
    """
    require_columns(docs, ["doc_id", "text"], "clean")
    n = docs.num_rows
    ids = docs.column("doc_id").to_pylist()
    texts = docs.column("text").to_pylist()
    in_status = _column(docs, "status", KEPT)
    in_reason = _column(docs, "reason", None)
    errors = _column(docs, "decode_errors", 0)
    out: dict[str, list] = defaultdict(list)
    audit: dict[str, list] = defaultdict(list)
    rows = tqdm(range(n), desc="clean", unit="doc", disable=None) if n > 1000 else range(n)
    for i in rows:
        text, status, reason, cluster = "", in_status[i], in_reason[i], None
        if status in (KEPT, DECODE_ERRORS):
            text, fired = clean_text(texts[i], rules, params.numbers)
            for rule, matches, removed in fired:
                audit["doc_id"].append(ids[i])
                audit["rule"].append(rule)
                audit["n_matches"].append(matches)
                audit["chars_removed"].append(removed)
            status, reason = _status(text, texts[i], errors[i] or 0, params)
            if status == KEPT and dedup is not None:
                duplicate, cluster = dedup.assign(ids[i], text)
                if duplicate is not None:
                    status, reason = duplicate, f"{duplicate.replace('_', '-')} of {cluster}"
        out["text"].append(text)
        out["n_chars"].append(visible_chars(text))
        out["status"].append(status)
        out["reason"].append(reason)
        out["cluster_id"].append(cluster)
    table = pa.table(
        {
            "doc_id": docs.column("doc_id"),
            "text": pa.array(out["text"], pa.string()),
            "n_chars": pa.array(out["n_chars"], pa.int64()),
            "status": pa.array(out["status"], pa.string()),
            "reason": pa.array(out["reason"], pa.string()),
            "cluster_id": pa.array(out["cluster_id"], pa.string()),
            "cluster_size": pa.nulls(n, pa.int64()),
        }
    )
    audit_table = CLEAN_AUDIT.conform(
        pa.table({name: audit[name] for name in CLEAN_AUDIT.columns}, schema=CLEAN_AUDIT.schema)
    )
    return table, audit_table


def _column(docs: pa.Table, name: str, default) -> list:
    if name in docs.column_names:
        return docs.column(name).to_pylist()
    return [default] * docs.num_rows


def _status(
    text: str, original: str, decode_errors: int, params: CleanParams
) -> tuple[str, str | None]:
    size = visible_chars(text)
    share = decode_errors / max(1, len(original))
    if decode_errors and share > params.max_decode_errors:
        return DECODE_ERRORS, (
            f"{decode_errors} invalid byte sequence(s), {share:.1%} of the characters, "
            f"above clean.max_decode_errors={params.max_decode_errors}"
        )
    if size == 0:
        return EMPTY, "no text left after cleaning"
    if size < params.min_chars:
        reason = f"{size} characters after cleaning, below clean.min_chars={params.min_chars}"
        return TOO_SHORT, reason
    cjk = cjk_share(text)
    if cjk < params.min_cjk_share:
        return NOT_CHINESE, (
            f"CJK characters are {cjk:.0%} of the letters, below "
            f"clean.min_cjk_share={params.min_cjk_share}"
        )
    if decode_errors:
        return KEPT, f"kept with {decode_errors} invalid byte sequence(s) replaced"
    return KEPT, None


def fill_cluster_sizes(table: pa.Table, sizes: Counter[str]) -> pa.Table:
    """Cluster id and size on every member of a cluster of two or more, canonical included."""
    ids = table.column("doc_id").to_pylist()
    clusters = table.column("cluster_id").to_pylist()
    cluster_ids, cluster_sizes = [], []
    for doc, cluster in zip(ids, clusters, strict=True):
        if cluster is None and sizes.get(doc, 0) > 1:
            cluster = doc
        cluster_ids.append(cluster)
        cluster_sizes.append(sizes[cluster] if cluster is not None else None)
    table = table.set_column(
        table.schema.get_field_index("cluster_id"), "cluster_id", pa.array(cluster_ids, pa.string())
    )
    return table.set_column(
        table.schema.get_field_index("cluster_size"),
        "cluster_size",
        pa.array(cluster_sizes, pa.int64()),
    )


# --- the ingest report --------------------------------------------------------------------------

# Documents cleaned per batch: memory holds one batch, its texts and its audit.
BATCH_ROWS = 10_000

REPORT_DIMENSIONS = ("status", "encoding", "format")


@dataclass
class IngestReport:
    """Counts of documents (and of the files they come from) by final status, encoding and
    format, accumulated batch by batch."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    files: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, docs: pa.Table, cleaned: pa.Table) -> None:
        sources = docs.column("source").to_pylist()
        values = {
            "status": cleaned.column("status").to_pylist(),
            "encoding": _column(docs, "encoding", None),
            "format": _column(docs, "format", None),
        }
        for dimension, column in values.items():
            for value, source in zip(column, sources, strict=True):
                key = (dimension, "(none)" if value is None else value)
                self.counts[key] += 1
                self.files[key].add(source)

    def table(self) -> pa.Table:
        keys = sorted(self.counts, key=lambda k: (REPORT_DIMENSIONS.index(k[0]), k[1]))
        return pa.table(
            {
                "dimension": [k[0] for k in keys],
                "value": [k[1] for k in keys],
                "count": pa.array([self.counts[k] for k in keys], pa.int64()),
                "files": pa.array([len(self.files[k]) for k in keys], pa.int64()),
            }
        )

    def metrics(self) -> dict:
        """For metrics/ingest.json: counts per dimension, the totals, the kept share."""
        data: dict = {d: {} for d in REPORT_DIMENSIONS}
        for (dimension, value), count in sorted(self.counts.items()):
            data[dimension][value] = count
        documents = sum(data["status"].values())
        data["documents"] = documents
        data["files"] = len(set().union(*self.files.values())) if self.files else 0
        data["kept_share"] = round(data["status"].get(KEPT, 0) / documents, 6) if documents else 0.0
        return data

    def lines(self) -> list[str]:
        """The report as text, one line per dimension."""
        metrics = self.metrics()
        out = [f"{metrics['files']} file(s), {metrics['documents']} document(s)"]
        for dimension in REPORT_DIMENSIONS:
            items = ", ".join(f"{k} {v}" for k, v in sorted(metrics[dimension].items()))
            out.append(f"  by {dimension}: {items}")
        return out


# --- main ---------------------------------------------------------------------------------------


def main(params: Params, paths: Paths) -> None:
    """Two passes: clean, audit and cluster the documents in batches to a spool (only hashes
    and MinHash signatures stay in memory), then write clean.parquet with the cluster sizes."""
    rules = load_rules(params.clean)
    dedup = Deduplicator(params.clean) if params.clean.deduplicate else None
    report = IngestReport()
    with Spool(paths.table("clean")) as spool:
        with TableWriter(paths.table("clean_audit"), CLEAN_AUDIT) as audit_writer:
            for docs in iter_tables(paths.table("documents"), DOCUMENTS, batch_rows=BATCH_ROWS):
                table, audit = clean_batch(docs, params.clean, rules, dedup)
                spool.write(table)
                audit_writer.write(audit)
                report.add(docs, table)
        sizes = dedup.sizes if dedup is not None else Counter()
        with TableWriter(paths.table("clean"), CLEAN) as writer:
            for table in spool.read():
                writer.write(fill_cluster_sizes(table, sizes))
    write_table(report.table(), paths.table("ingest_report"), INGEST_REPORT)
    write_json(report.metrics(), paths.metrics / "ingest.json")
    for line in report.lines():
        log.info("ingest report: %s", line)
    log.info(
        "clean: %d documents -> %s (%d rule match row(s) in %s)",
        writer.num_rows,
        paths.table("clean"),
        audit_writer.num_rows,
        paths.table("clean_audit"),
    )
