"""The parquet contracts between stages: one schema per table, checked on read and on write."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa


class SchemaError(ValueError):
    """A table does not match its declared schema; the message names the table and column."""


@dataclass(frozen=True)
class TableSchema:
    """A named schema. With ``open_columns`` extra (metadata) columns may follow the fixed ones."""

    name: str
    schema: pa.Schema
    open_columns: bool = False

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    def subset(self, columns: Iterable[str]) -> TableSchema:
        """The declared ones among ``columns``, in declared order; others pass as extras."""
        wanted = set(columns)
        fields = [f for f in self.schema if f.name in wanted]
        return TableSchema(self.name, pa.schema(fields), open_columns=True)

    def conform(self, table: pa.Table, where: str = "") -> pa.Table:
        """Return ``table`` with the declared columns first, in order and type, or raise."""
        where = where or self.name
        missing = [name for name in self.columns if name not in table.column_names]
        if missing:
            raise SchemaError(
                f"{where}: missing column(s) {missing} for the {self.name} table; "
                f"it has {table.column_names}"
            )
        extra = [name for name in table.column_names if name not in self.columns]
        if extra and not self.open_columns:
            raise SchemaError(
                f"{where}: unexpected column(s) {extra} for the {self.name} table; "
                f"allowed: {self.columns}"
            )
        arrays, fields = [], []
        for f in self.schema:
            column = table.column(f.name)
            if column.type != f.type:
                try:
                    column = column.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaError(
                        f"{where}: column {f.name!r} has type {column.type}, "
                        f"expected {f.type} ({exc})"
                    ) from exc
            if not f.nullable and column.null_count:
                raise SchemaError(f"{where}: column {f.name!r} has {column.null_count} null(s)")
            arrays.append(column)
            fields.append(f)
        for name in extra:
            arrays.append(table.column(name))
            fields.append(table.schema.field(name))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# The statuses of documents.parquet and clean.parquet. Ingest sets kept, empty, decode_errors,
# unsupported and unreadable; clean decides too_short, duplicate, near_duplicate and
# not_chinese, and writes the final status. Only kept rows go on to segment.
KEPT, EMPTY, DECODE_ERRORS = "kept", "empty", "decode_errors"
UNSUPPORTED, UNREADABLE = "unsupported", "unreadable"
TOO_SHORT, NOT_CHINESE = "too_short", "not_chinese"
DUPLICATE, NEAR_DUPLICATE = "duplicate", "near_duplicate"
# Only with clean.drop_spun: otherwise a spun document stays kept, flagged in its reason.
SPUN = "spun"
STATUSES = (
    KEPT,
    EMPTY,
    TOO_SHORT,
    DUPLICATE,
    NEAR_DUPLICATE,
    NOT_CHINESE,
    SPUN,
    DECODE_ERRORS,
    UNSUPPORTED,
    UNREADABLE,
)


def _field(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    """A column of a schema: required (non-null) unless ``nullable``."""
    return pa.field(name, type_, nullable=nullable)


DOCUMENTS = TableSchema(
    "documents",
    pa.schema(
        [
            _field("doc_id", pa.string()),
            _field("parent_id", pa.string()),
            _field("source", pa.string()),
            _field("record", pa.int64()),
            _field("part", pa.string(), nullable=True),
            _field("paragraph", pa.int32(), nullable=True),
            _field("title", pa.string(), nullable=True),
            _field("date", pa.date32(), nullable=True),
            # Where the date came from (column, text, title, path) and how much of it is
            # known (day, month, year: a year-only date is stored as its 1 January).
            _field("date_source", pa.string(), nullable=True),
            _field("date_precision", pa.string(), nullable=True),
            _field("text", pa.string()),
            _field("format", pa.string()),
            _field("encoding", pa.string(), nullable=True),
            _field("decode_errors", pa.int64()),
            _field("status", pa.string()),
            _field("reason", pa.string(), nullable=True),
        ]
    ),
    open_columns=True,
)

CLEAN = TableSchema(
    "clean",
    pa.schema(
        [
            _field("doc_id", pa.string()),
            _field("text", pa.string()),
            _field("n_chars", pa.int64()),
            _field("status", pa.string()),
            _field("reason", pa.string(), nullable=True),
            _field("cluster_id", pa.string(), nullable=True),
            _field("cluster_size", pa.int64(), nullable=True),
            # Machine rewriting (pipeline/text/spin.py); 0 is ordinary text.
            _field("spin_score", pa.float64()),
        ]
    ),
)

CLEAN_AUDIT = TableSchema(
    "clean_audit",
    pa.schema(
        [
            _field("doc_id", pa.string()),
            _field("rule", pa.string()),
            _field("n_matches", pa.int64()),
            _field("chars_removed", pa.int64()),
        ]
    ),
)

INGEST_REPORT = TableSchema(
    "ingest_report",
    pa.schema(
        [
            _field("dimension", pa.string()),
            _field("value", pa.string()),
            _field("count", pa.int64()),
            _field("files", pa.int64()),
        ]
    ),
)

TOKENS = TableSchema(
    "tokens",
    pa.schema(
        [
            _field("doc_id", pa.string()),
            _field("tokens", pa.list_(pa.string())),
            _field("n_tokens", pa.int32()),
        ]
    ),
)

# new_words.parquet: strings the corpus uses as words that the tokenizer's dictionary lacks
# (segment.new_words), accepted ones first by score; reason says why one is not accepted
# (fragment, stopword, compound, numeric, userdict, rejected; empty when accepted).
NEW_WORDS = TableSchema(
    "new_words",
    pa.schema(
        [
            _field("word", pa.string()),
            _field("frequency", pa.int64()),
            _field("document_frequency", pa.int64()),
            _field("cohesion", pa.float64()),
            _field("left_entropy", pa.float64()),
            _field("right_entropy", pa.float64()),
            _field("score", pa.float64()),
            _field("accepted", pa.bool_()),
            _field("reason", pa.string()),
            # What the tokenizer makes of the word without it, space-separated.
            _field("pieces", pa.string()),
            # Its first occurrence in context, the word in 【】.
            _field("example", pa.string()),
            # Times it is a token of tokens.parquet (0 unless segment.new_words is use and
            # the word is accepted, or the tokenizer finds it on its own).
            _field("token_count", pa.int64()),
        ]
    ),
)

VOCABULARY = TableSchema(
    "vocabulary",
    pa.schema(
        [
            _field("term_id", pa.int32()),
            _field("term", pa.string()),
            _field("df", pa.int32()),
            _field("idf", pa.float64()),
            # Corpus boilerplate: evenness of the term over documents (see topics/background.py)
            # and whether it is flagged (lda.background: drop leaves flagged terms out).
            _field("background", pa.float64()),
            # Spread over parent documents (paragraph units): share of parents with the term,
            # 1 - DP over them; the flag uses them when units are grouped under parents.
            _field("parent_share", pa.float64()),
            _field("parent_evenness", pa.float64()),
            # Frequent, even terms: best NPMI with a partner outside them (-1 for the others).
            _field("partner_npmi", pa.float64()),
            _field("is_background", pa.bool_()),
        ]
    ),
)

DOC_TERMS = TableSchema(
    "doc_terms",
    pa.schema(
        [
            _field("doc_id", pa.string()),
            _field("term_id", pa.int32()),
            _field("count", pa.int32()),
            _field("tfidf", pa.float64()),
        ]
    ),
)

KEYWORDS = TableSchema(
    "keywords",
    pa.schema(
        [
            _field("doc_id", pa.string()),
            _field("rank", pa.int32()),
            _field("term", pa.string()),
            _field("weight", pa.float64()),
        ]
    ),
)

TOPIC_TERMS = TableSchema(
    "topic_terms",
    pa.schema(
        [
            _field("topic", pa.int32()),
            _field("rank", pa.int32()),
            _field("term", pa.string()),
            _field("weight", pa.float64()),
        ]
    ),
)

DOC_TOPICS = TableSchema(
    "doc_topics",
    pa.schema(
        [
            _field("doc_id", pa.string()),
            _field("topic", pa.int32()),
            _field("weight", pa.float64()),
        ]
    ),
)

TOPICS = TableSchema(
    "topics",
    pa.schema(
        [
            _field("topic", pa.int32()),
            _field("label", pa.string()),
            _field("prevalence", pa.float64()),
            _field("coherence", pa.float64()),
        ]
    ),
)

# Top terms per topic by each measure: probability, relevance (lambda), frex.
TOPIC_TERM_RANKINGS = TableSchema(
    "topic_term_rankings",
    pa.schema(
        [
            _field("topic", pa.int32()),
            _field("measure", pa.string()),
            _field("rank", pa.int32()),
            _field("term", pa.string()),
            _field("score", pa.float64()),
        ]
    ),
)

REPRESENTATIVE_DOCS = TableSchema(
    "representative_docs",
    pa.schema(
        [
            _field("topic", pa.int32()),
            _field("rank", pa.int32()),
            _field("doc_id", pa.string()),
            _field("weight", pa.float64()),
            _field("title", pa.string(), nullable=True),
            _field("snippet", pa.string()),
        ]
    ),
)

# The group of the documents without a value in a prevalence column (none is dropped).
MISSING_GROUP = "(missing)"

TOPIC_PREVALENCE = TableSchema(
    "topic_prevalence",
    pa.schema(
        [
            _field("column", pa.string()),
            _field("group", pa.string()),
            _field("topic", pa.int32()),
            _field("mean", pa.float64()),
            _field("ci_low", pa.float64()),
            _field("ci_high", pa.float64()),
            _field("n_docs", pa.int64()),
        ]
    ),
)

# Stage compare: the groups of each compared column (decade, year, folder, path fields,
# metadata) with their size in documents and units; status compared, too_small (fewer than
# compare.min_docs documents), not_shown (beyond compare.max_groups) or alone (the column has
# no second group of min_docs documents to set it against, and was not compared).
COMPARE_GROUPS = TableSchema(
    "compare_groups",
    pa.schema(
        [
            _field("column", pa.string()),
            _field("group", pa.string()),
            _field("n_docs", pa.int64()),
            _field("n_units", pa.int64()),
            _field("status", pa.string()),
        ]
    ),
)

# Terms a group uses more than the rest: Dunning's G² with its p-value, the p-value adjusted
# for testing every term (compare.correction), Hardie's log ratio, and the counts both sides.
KEYNESS = TableSchema(
    "keyness",
    pa.schema(
        [
            _field("column", pa.string()),
            _field("group", pa.string()),
            _field("rank", pa.int32()),
            _field("term", pa.string()),
            _field("g2", pa.float64()),
            _field("p", pa.float64()),
            _field("p_adjusted", pa.float64()),
            _field("significant", pa.bool_()),
            _field("log_ratio", pa.float64()),
            _field("freq_group", pa.int64()),
            _field("freq_rest", pa.int64()),
        ]
    ),
)

# Mean topic share of a group and of the rest, their difference and its bootstrap 95% interval.
TOPIC_CONTRASTS = TableSchema(
    "topic_contrasts",
    pa.schema(
        [
            _field("column", pa.string()),
            _field("group", pa.string()),
            _field("topic", pa.int32()),
            _field("n_docs", pa.int64()),
            _field("mean_group", pa.float64()),
            _field("mean_rest", pa.float64()),
            _field("diff", pa.float64()),
            _field("ci_low", pa.float64()),
            _field("ci_high", pa.float64()),
        ]
    ),
)

# Topic shares per period (compare.trend_bucket) with intervals and a smoothed trend; periods
# with fewer than compare.min_docs documents are flagged few_docs (shown, marked).
TOPIC_TRENDS = TableSchema(
    "topic_trends",
    pa.schema(
        [
            _field("period", pa.string()),
            _field("position", pa.float64()),
            _field("topic", pa.int32()),
            _field("n_docs", pa.int64()),
            _field("mean", pa.float64()),
            _field("ci_low", pa.float64()),
            _field("ci_high", pa.float64()),
            _field("trend", pa.float64()),
            _field("few_docs", pa.bool_()),
        ]
    ),
)

# Concordance lines (`zhtopics kwic`, and topic_kwic.parquet for each topic's top terms).
_KWIC_FIELDS = [
    _field("topic", pa.int32(), nullable=True),
    _field("term", pa.string()),
    _field("doc_id", pa.string()),
    _field("title", pa.string(), nullable=True),
    _field("start", pa.int64()),
    _field("left", pa.string()),
    _field("right", pa.string()),
]
KWIC = TableSchema("kwic", pa.schema(_KWIC_FIELDS))
TOPIC_KWIC = TableSchema("topic_kwic", pa.schema(_KWIC_FIELDS))

# One row per K and seed of the lda_sweep stage.
SWEEP = TableSchema(
    "sweep",
    pa.schema(
        [
            _field("k", pa.int32()),
            _field("seed", pa.int64()),
            _field("c_npmi", pa.float64()),
            _field("c_v", pa.float64()),
            _field("u_mass", pa.float64()),
            _field("diversity", pa.float64()),
            _field("perplexity", pa.float64()),
            _field("stability", pa.float64(), nullable=True),
        ]
    ),
)

# `zhtopics infer`: one row per new document, beside its doc_topics file.
INFERRED_DOCS = TableSchema(
    "inferred_docs",
    pa.schema(
        [
            _field("doc_id", pa.string()),
            _field("source", pa.string()),
            _field("title", pa.string(), nullable=True),
            _field("status", pa.string()),
            _field("n_tokens", pa.int64()),
            _field("n_known", pa.int64()),
            _field("n_unknown", pa.int64()),
        ]
    ),
)

# `zhtopics validate score`: model precision and topic log odds per topic (topic null: all
# topics), Krippendorff's alpha per kind of task; chance is the score of a random coder.
VALIDATION_SCORES = TableSchema(
    "validation_scores",
    pa.schema(
        [
            _field("measure", pa.string()),
            _field("kind", pa.string()),
            _field("topic", pa.int32(), nullable=True),
            _field("label", pa.string(), nullable=True),
            _field("estimate", pa.float64(), nullable=True),
            _field("ci_low", pa.float64(), nullable=True),
            _field("ci_high", pa.float64(), nullable=True),
            _field("n", pa.int64()),
            _field("chance", pa.float64(), nullable=True),
        ]
    ),
)

# The robustness stage: for every main topic and variant, its one-to-one match and the share
# of top terms they share (match null when the variant has fewer topics).
ROBUSTNESS = TableSchema(
    "robustness",
    pa.schema(
        [
            _field("variant", pa.string()),
            _field("topic", pa.int32()),
            _field("label", pa.string()),
            _field("match", pa.int32(), nullable=True),
            _field("match_label", pa.string(), nullable=True),
            _field("similarity", pa.float64()),
            # similarity >= robustness.min_similarity
            _field("survives", pa.bool_()),
        ]
    ),
)

ALL = {
    s.name: s
    for s in (
        DOCUMENTS,
        CLEAN,
        CLEAN_AUDIT,
        INGEST_REPORT,
        TOKENS,
        NEW_WORDS,
        VOCABULARY,
        DOC_TERMS,
        KEYWORDS,
        TOPIC_TERMS,
        DOC_TOPICS,
        TOPICS,
        TOPIC_TERM_RANKINGS,
        REPRESENTATIVE_DOCS,
        TOPIC_PREVALENCE,
        SWEEP,
        COMPARE_GROUPS,
        KEYNESS,
        TOPIC_CONTRASTS,
        TOPIC_TRENDS,
        TOPIC_KWIC,
        ROBUSTNESS,
    )
}


def require_columns(table: pa.Table, columns: list[str], where: str) -> None:
    """Fail early, naming the missing columns, when a stage gets a table it cannot use."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SchemaError(f"{where}: input lacks column(s) {missing}; it has {table.column_names}")
