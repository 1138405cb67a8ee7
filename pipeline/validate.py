"""Human validation of a topic model: intrusion tasks for coders, and the scores of their answers.

``zhtopics validate make`` writes, from a finished run, for each coder a sheet (CSV) and the
same tasks as one offline HTML form that saves the answers as CSV, plus the answer key in a
file of its own. ``zhtopics validate score`` reads the coders' answers and the key.

* **Word intrusion** (Chang et al. 2009): a topic's ``TOP_WORDS`` most probable words and one
  intruder, a word among the ``INTRUDER_POOL`` most probable of another topic whose
  probability in this topic is at or below the topic's median. Model precision of a topic is
  the share of answers that find the intruder (chance: 1 / (TOP_WORDS + 1)), with a Wilson 95%
  interval (answers pooled over coders).
* **Topic intrusion**: a document snippet with its ``SHOWN_TOPICS`` most probable topics and
  one from the less probable half of the rest, each shown by its top words. Topic log odds of
  an answer is log theta(intruder) - log theta(chosen): 0 when the coder finds the intruder,
  negative otherwise; the mean has a normal 95% interval over documents.
* **Agreement** between coders: Krippendorff's alpha for nominal data (the option each coder
  chose per task), per kind of task, when two or more coders answered.

Everything random (which documents, which intruders, the order of options and of each coder's
tasks) is drawn from ``--seed``: the same seed and run give the same files.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.io import Paths, atomic_path, read_table, write_table
from pipeline.offline_page import content_security_policy, embed_json, fill, template
from pipeline.schemas import CLEAN, DOC_TOPICS, DOCUMENTS, TOPICS, VALIDATION_SCORES

WORD, TOPIC = "word_intrusion", "topic_intrusion"
TOP_WORDS = 5
INTRUDER_POOL = 10
SHOWN_TOPICS = 3
TOPIC_WORDS = 6
SNIPPET_CHARS = 200
# log theta is taken of at least this, so that a zero weight gives a finite log odds.
THETA_FLOOR = 1e-6
Z95 = 1.959964
KEY_FILE = "key.csv"
SCORES_FILE = "scores.parquet"
SUMMARY_FILE = "summary.txt"
ANSWER_COLUMNS = ("coder", "task_id", "answer")
FONT_FAMILY = "zhtopics CJK"


class ValidationError(ValueError):
    """Bad answers, key or run; the message names the file and row."""


@dataclass(frozen=True)
class Task:
    """One question. ``answer`` is the 1-based number of the intruding option."""

    task_id: str
    kind: str
    topic: int
    options: tuple[str, ...]
    answer: int
    doc_id: str = ""
    title: str = ""
    text: str = ""
    # Topic intrusion: the topic of each option and its weight in the document.
    option_topics: tuple[int, ...] = ()
    option_weights: tuple[float, ...] = ()

    @property
    def question(self) -> str:
        if self.kind == WORD:
            return "哪个词与其他词不属于同一主题? Which word does not belong with the others?"
        return "哪个主题与这段文字无关? Which topic does not fit this text?"


@dataclass(frozen=True)
class Model:
    """What the tasks are drawn from: topic-word and document-topic weights, and the texts."""

    phi: np.ndarray
    terms: list[str]
    theta: np.ndarray
    doc_ids: list[str]
    texts: dict[str, str]
    titles: dict[str, str]
    labels: dict[int, str] = dataclasses.field(default_factory=dict)


# --- making tasks -------------------------------------------------------------------------------


def word_intrusion_tasks(model: Model, n_tasks: int, rng: np.random.Generator) -> list[Task]:
    """``n_tasks`` word intrusion tasks, topics taken in turn (a shuffled order), each with a
    new intruder where the topic has one left."""
    k = model.phi.shape[0]
    if k < 2:
        raise ValidationError("word intrusion needs a model of 2 or more topics")
    top = np.argsort(-model.phi, axis=1, kind="stable")
    order = rng.permutation(k)
    used: dict[int, set[int]] = defaultdict(set)
    tasks = []
    for number in range(n_tasks):
        topic = int(order[number % k])
        shown = top[topic, :TOP_WORDS]
        candidates = _intruders(model.phi, top, topic) - used[topic] or _intruders(
            model.phi, top, topic
        )
        intruder = int(rng.choice(sorted(candidates)))
        used[topic].add(intruder)
        words = [int(w) for w in shown] + [intruder]
        words = [words[i] for i in rng.permutation(len(words))]
        tasks.append(
            Task(
                task_id=f"W{number + 1:03d}",
                kind=WORD,
                topic=topic,
                options=tuple(model.terms[w] for w in words),
                answer=words.index(intruder) + 1,
            )
        )
    return tasks


def _intruders(phi: np.ndarray, top: np.ndarray, topic: int) -> set[int]:
    """Words probable in another topic (its INTRUDER_POOL best) and improbable in ``topic``
    (at or below its median probability, and never among its TOP_WORDS * 4 best)."""
    low = set(np.flatnonzero(phi[topic] <= np.median(phi[topic])).tolist())
    own = set(top[topic, : TOP_WORDS * 4].tolist())
    pool = {
        int(w)
        for other in range(phi.shape[0])
        if other != topic
        for w in top[other][:INTRUDER_POOL]
    }
    found = (pool & low) - own
    if not found:  # a tiny vocabulary: any other topic's top word that is not this topic's
        found = pool - set(top[topic, :TOP_WORDS].tolist())
    if not found:
        raise ValidationError(f"topic {topic}: no word of another topic can be its intruder")
    return found


def topic_intrusion_tasks(
    model: Model, n_tasks: int, rng: np.random.Generator, words: list[str]
) -> list[Task]:
    """Topic intrusion tasks on ``n_tasks`` documents drawn without replacement."""
    n_docs, k = model.theta.shape
    if k < SHOWN_TOPICS + 1:
        raise ValidationError(
            f"topic intrusion needs {SHOWN_TOPICS + 1} or more topics; the model has {k} "
            "(use --topic-tasks 0)"
        )
    if n_docs == 0:
        raise ValidationError("topic intrusion: the run has no document with a topic mix")
    rows = np.sort(rng.choice(n_docs, size=min(n_tasks, n_docs), replace=False))
    tasks = []
    for number, row in enumerate(rows.tolist()):
        weights = model.theta[row]
        ranked = np.lexsort((np.arange(k), -weights))
        probable = [int(t) for t in ranked[:SHOWN_TOPICS]]
        rest = ranked[SHOWN_TOPICS:]
        unlikely = rest[len(rest) // 2 :] if len(rest) > 1 else rest
        intruder = int(rng.choice(unlikely))
        shown = probable + [intruder]
        shown = [shown[i] for i in rng.permutation(len(shown))]
        doc = model.doc_ids[row]
        tasks.append(
            Task(
                task_id=f"T{number + 1:03d}",
                kind=TOPIC,
                topic=probable[0],
                options=tuple(words[t] for t in shown),
                answer=shown.index(intruder) + 1,
                doc_id=doc,
                title=model.titles.get(doc) or "",
                text=_snippet(model.texts.get(doc, ""), SNIPPET_CHARS),
                option_topics=tuple(shown),
                option_weights=tuple(round(float(weights[t]), 8) for t in shown),
            )
        )
    return tasks


def _snippet(text: str, n_chars: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n_chars else flat[:n_chars] + "…"


def topic_words(phi: np.ndarray, terms: list[str], n: int = TOPIC_WORDS) -> list[str]:
    """Each topic shown as its ``n`` most probable words."""
    top = np.argsort(-phi, axis=1, kind="stable")[:, :n]
    return [" ".join(terms[w] for w in row) for row in top]


def make_tasks(model: Model, word_tasks: int, topic_tasks: int, seed: int) -> list[Task]:
    """All tasks of a kit; the same model and seed give the same tasks."""
    words = topic_words(model.phi, model.terms)
    tasks = word_intrusion_tasks(model, word_tasks, np.random.default_rng([seed, 1]))
    if topic_tasks:
        rng = np.random.default_rng([seed, 2])
        tasks += topic_intrusion_tasks(model, topic_tasks, rng, words)
    return tasks


def coder_order(tasks: Sequence[Task], coder: int, seed: int) -> list[Task]:
    """The tasks in the order coder number ``coder`` sees them (each coder another order)."""
    order = np.random.default_rng([seed, 3, coder]).permutation(len(tasks))
    return [tasks[i] for i in order]


def coder_name(number: int) -> str:
    return f"coder{number:02d}"


# --- writing the kit ---------------------------------------------------------------------------


def sheet_rows(tasks: Sequence[Task], coder: str) -> list[dict[str, str]]:
    """A coder's sheet: the tasks without their answers, and an empty answer column."""
    width = max(len(t.options) for t in tasks)
    rows = []
    for task in tasks:
        row = {
            "coder": coder,
            "task_id": task.task_id,
            "kind": task.kind,
            "question": task.question,
            "title": task.title,
            "text": task.text,
        }
        for i in range(width):
            row[f"option_{i + 1}"] = task.options[i] if i < len(task.options) else ""
        row["answer"] = ""
        rows.append(row)
    return rows


def key_rows(tasks: Sequence[Task], labels: dict[int, str]) -> list[dict[str, str]]:
    return [
        {
            "task_id": t.task_id,
            "kind": t.kind,
            "topic": str(t.topic),
            "label": labels.get(t.topic, ""),
            "doc_id": t.doc_id,
            "n_options": str(len(t.options)),
            "answer": str(t.answer),
            "options": json.dumps(list(t.options), ensure_ascii=False),
            "option_topics": json.dumps(list(t.option_topics)),
            "option_weights": json.dumps(list(t.option_weights)),
        }
        for t in tasks
    ]


def csv_text(rows: Sequence[dict[str, str]]) -> str:
    """CSV with a header, CRLF line ends (RFC 4180) and every field quoted where needed."""
    out = _StringSink()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return "".join(out.parts)


class _StringSink:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)


def form_html(tasks: Sequence[Task], coder: str, embed_font: bool = True) -> str:
    """The offline form of one coder: tasks as data, shown with ``textContent`` only; a CSP
    that allows the script's own hash, inline styles and a data: font, nothing else."""
    data = {
        "coder": coder,
        "tasks": [
            {
                "task_id": t.task_id,
                "kind": t.kind,
                "question": t.question,
                "title": t.title,
                "text": t.text,
                "options": list(t.options),
            }
            for t in tasks
        ],
    }
    script = template("validate_form.js")
    style = template("validate_form.css")
    if embed_font:
        from pipeline.fonts import font_face

        page_text = json.dumps(data, ensure_ascii=False) + template("validate_form.html") + script
        style = font_face(FONT_FAMILY, page_text) + style
    values = {
        "CSP": content_security_policy(script),
        "STYLE": style,
        "DATA": embed_json(data),
        "SCRIPT": script,
    }
    return fill(template("validate_form.html"), values)


def write_kit(
    tasks: Sequence[Task],
    coders: int,
    seed: int,
    out: Path,
    embed_font: bool = True,
    labels: dict[int, str] | None = None,
) -> list[Path]:
    """The key (with the topics' ``labels``) and, per coder, ``coderNN.csv`` and
    ``coderNN.html``; returns the files."""
    files = {KEY_FILE: csv_text(key_rows(tasks, labels or {}))}
    for number in range(1, coders + 1):
        name = coder_name(number)
        ordered = coder_order(tasks, number, seed)
        files[f"{name}.csv"] = csv_text(sheet_rows(ordered, name))
        files[f"{name}.html"] = form_html(ordered, name, embed_font)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8", newline="")
            tmp.chmod(0o644)  # to hand to coders
        written.append(out / name)
    return written


def load_model_for_tasks(paths: Paths) -> Model:
    """The saved model's topic-word weights and the run's document-topic weights and texts."""
    from pipeline.topics.model_store import load_model

    saved = load_model(paths.models / "lda")
    doc_topics = read_table(paths.table("doc_topics"), DOC_TOPICS)
    k = saved.phi.shape[0]
    ids = doc_topics.column("doc_id").to_pylist()
    doc_ids = list(dict.fromkeys(ids))
    row_of = {d: i for i, d in enumerate(doc_ids)}
    theta = np.zeros((len(doc_ids), k))
    topics = doc_topics.column("topic").to_numpy()
    if len(topics) and topics.max() >= k:
        raise ValidationError(
            f"{paths.table('doc_topics')}: topic {topics.max()} but the saved model has {k}"
        )
    theta[[row_of[d] for d in ids], topics] = doc_topics.column("weight").to_numpy()
    clean = read_table(paths.table("clean"), CLEAN)
    documents = read_table(paths.table("documents"), DOCUMENTS)
    return Model(
        phi=np.asarray(saved.phi, dtype=np.float64),
        terms=list(saved.terms),
        theta=theta,
        doc_ids=doc_ids,
        texts=_mapping(clean, "doc_id", "text"),
        titles=_mapping(documents, "doc_id", "title"),
        labels=read_labels(paths),
    )


def _mapping(table: pa.Table, key: str, value: str) -> dict:
    return dict(zip(table.column(key).to_pylist(), table.column(value).to_pylist(), strict=True))


# --- scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyTask:
    task_id: str
    kind: str
    topic: int
    answer: int
    n_options: int
    option_weights: tuple[float, ...]
    row: int
    label: str = ""


def read_key(path: Path) -> dict[str, KeyTask]:
    """The answer key, checked; the error names the row."""
    rows = _read_csv(path, ("task_id", "kind", "topic", "n_options", "answer", "option_weights"))
    key: dict[str, KeyTask] = {}
    for line, row in rows:
        where = f"{path}: row {line}"
        try:
            task = KeyTask(
                task_id=row["task_id"],
                kind=row["kind"],
                topic=int(row["topic"]),
                answer=int(row["answer"]),
                n_options=int(row["n_options"]),
                option_weights=tuple(float(w) for w in json.loads(row["option_weights"])),
                row=line,
                label=row.get("label") or "",
            )
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"{where}: not a key row ({exc})") from exc
        if task.kind not in (WORD, TOPIC) or not 1 <= task.answer <= task.n_options:
            raise ValidationError(f"{where}: not a key row (kind {task.kind!r}, answer)")
        if task.task_id in key:
            raise ValidationError(f"{where}: task {task.task_id!r} is listed twice")
        key[task.task_id] = task
    if not key:
        raise ValidationError(f"{path}: the key has no tasks")
    return key


def _read_csv(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows with their line numbers (the header is line 1); the error names missing columns."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"{path}: file not found")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValidationError(
                f"{path}: missing column(s) {missing}; it has {reader.fieldnames or []}"
            )
        return [(reader.line_num, row) for row in reader]


def read_answers(files: Sequence[Path], key: dict[str, KeyTask]) -> dict[tuple[str, str], int]:
    """(coder, task_id) -> chosen option, from answer files (a coder's sheet or the form's
    CSV). Every coder must answer every task once; the error names the file and row."""
    answers: dict[tuple[str, str], int] = {}
    seen: dict[tuple[str, str], str] = {}
    for path in files:
        for line, row in _read_csv(path, ANSWER_COLUMNS):
            where = f"{path}: row {line}"
            coder, task_id, value = (row[c].strip() for c in ANSWER_COLUMNS)
            if not coder:
                raise ValidationError(f"{where}: no coder named")
            task = key.get(task_id)
            if task is None:
                raise ValidationError(f"{where}: task {task_id!r} is not in the answer key")
            if (coder, task_id) in seen:
                raise ValidationError(
                    f"{where}: coder {coder!r} answered task {task_id!r} twice "
                    f"(first at {seen[(coder, task_id)]})"
                )
            if not value:
                raise ValidationError(f"{where}: coder {coder!r} left task {task_id!r} unanswered")
            if not value.isdigit() or not 1 <= int(value) <= task.n_options:
                raise ValidationError(
                    f"{where}: answer {value!r} to task {task_id!r} is not an option number "
                    f"1-{task.n_options}"
                )
            seen[(coder, task_id)] = where
            answers[(coder, task_id)] = int(value)
    if not answers:
        raise ValidationError(f"no answers in {[str(p) for p in files]}")
    for coder in sorted({c for c, _ in answers}):
        missing = [t for t in key.values() if (coder, t.task_id) not in answers]
        if missing:
            listed = ", ".join(f"{t.task_id} (key row {t.row})" for t in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise ValidationError(f"coder {coder!r} has no answer to task(s) {listed}{more}")
    return answers


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson 95% interval of a proportion."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and normal 95% interval (NaN bounds for fewer than two values)."""
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if data.size < 2:
        return mean, math.nan, math.nan
    half = Z95 * float(data.std(ddof=1)) / math.sqrt(data.size)
    return mean, mean - half, mean + half


def krippendorff_alpha(units: Sequence[Sequence[int]]) -> float:
    """Krippendorff's alpha for nominal values; each unit is the values its coders gave.
    Units with fewer than two values do not count. 1 is perfect agreement, 0 chance."""
    coincidence: dict[tuple[int, int], float] = defaultdict(float)
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if i != j:
                    coincidence[(a, b)] += 1.0 / (m - 1)
    n_c: dict[int, float] = defaultdict(float)
    for (a, _), weight in coincidence.items():
        n_c[a] += weight
    n = sum(n_c.values())
    if n <= 1:
        return math.nan
    observed = sum(w for (a, b), w in coincidence.items() if a != b) / n
    expected = sum(n_c[a] * n_c[b] for a in n_c for b in n_c if a != b) / (n * (n - 1))
    return 1.0 if expected == 0 else 1.0 - observed / expected


def score(
    answers: dict[tuple[str, str], int],
    key: dict[str, KeyTask],
    labels: dict[int, str] | None = None,
) -> pa.Table:
    """The scores table: model precision per topic and overall, topic log odds per topic and
    overall, Krippendorff's alpha per kind of task. Topic labels come from the key unless
    ``labels`` are given."""
    if labels is None:
        labels = {t.topic: t.label for t in key.values() if t.label}
    rows: dict[str, list] = {c: [] for c in VALIDATION_SCORES.columns}

    def add(measure, kind, topic, estimate, low, high, n, chance):
        rows["measure"].append(measure)
        rows["kind"].append(kind)
        rows["topic"].append(topic)
        rows["label"].append(labels.get(topic) if topic is not None else None)
        for name, value in (("estimate", estimate), ("ci_low", low), ("ci_high", high)):
            rows[name].append(None if value is None or math.isnan(value) else round(value, 6))
        rows["n"].append(n)
        rows["chance"].append(None if chance is None else round(chance, 6))

    coders = sorted({c for c, _ in answers})
    words = [t for t in key.values() if t.kind == WORD]
    if words:
        chance = float(np.mean([1 / t.n_options for t in words]))
        hits: dict[int, list[int]] = defaultdict(list)
        for task in words:
            for coder in coders:
                hits[task.topic].append(int(answers[(coder, task.task_id)] == task.answer))
        for topic in sorted(hits):
            found = hits[topic]
            add("model_precision", WORD, topic, np.mean(found), *wilson(sum(found), len(found)),
                len(found), chance)  # fmt: skip
        pooled = [h for found in hits.values() for h in found]
        add("model_precision", WORD, None, np.mean(pooled), *wilson(sum(pooled), len(pooled)),
            len(pooled), chance)  # fmt: skip
    topics = [t for t in key.values() if t.kind == TOPIC]
    if topics:
        per_task: dict[int, list[float]] = defaultdict(list)
        chance: dict[int, list[float]] = defaultdict(list)
        for task in topics:
            logs = np.log(np.maximum(np.asarray(task.option_weights), THETA_FLOOR))
            odds = [logs[task.answer - 1] - logs[answers[(c, task.task_id)] - 1] for c in coders]
            per_task[task.topic].append(float(np.mean(odds)))
            # A random coder's expectation: every option equally likely.
            chance[task.topic].append(float(np.mean(logs[task.answer - 1] - logs)))
        for topic in sorted(per_task):
            values = per_task[topic]
            add("topic_log_odds", TOPIC, topic, *mean_interval(values), len(values),
                float(np.mean(chance[topic])))  # fmt: skip
        pooled = [v for values in per_task.values() for v in values]
        expected = float(np.mean([v for values in chance.values() for v in values]))
        add("topic_log_odds", TOPIC, None, *mean_interval(pooled), len(pooled), expected)
    if len(coders) >= 2:
        for kind, tasks in ((WORD, words), (TOPIC, topics), ("all", list(key.values()))):
            if tasks:
                units = [[answers[(c, t.task_id)] for c in coders] for t in tasks]
                add("krippendorff_alpha", kind, None, krippendorff_alpha(units), None, None,
                    len(units), 0.0)  # fmt: skip
    return VALIDATION_SCORES.conform(pa.table(rows, schema=VALIDATION_SCORES.schema))


def summary_lines(scores: pa.Table, coders: int) -> list[str]:
    """The scores in a few lines, naming the topics no coder could tell from their intruder."""
    lines = [f"{coders} coder(s)"]
    for row in scores.to_pylist():
        interval = ""
        if row["ci_low"] is not None:
            interval = f" (95% interval {row['ci_low']:.3f} to {row['ci_high']:.3f})"
        what = "all topics" if row["topic"] is None else f"topic {row['topic']} {row['label']}"
        if row["measure"] == "krippendorff_alpha":
            what = f"{row['kind']} tasks"
        estimate = "n/a" if row["estimate"] is None else f"{row['estimate']:.3f}"
        chance = "" if row["chance"] is None else f", chance {row['chance']:.3f}"
        lines.append(f"{row['measure']} {what}: {estimate}{interval}, n={row['n']}{chance}")
    blind = [
        r
        for r in scores.to_pylist()
        if r["measure"] == "model_precision" and r["topic"] is not None and r["estimate"] == 0.0
    ]
    if blind:
        names = "; ".join(f"topic {r['topic']} {r['label']}" for r in blind)
        lines.append(f"no coder found the intruder of: {names}")
    else:
        lines.append("every topic's intruder was found by at least one coder")
    return lines


def read_labels(paths: Paths) -> dict[int, str]:
    """Topic labels of the run, or none when its topics table is absent."""
    path = paths.table("topics")
    if not path.is_file():
        return {}
    topics = read_table(path, TOPICS)
    return _mapping(topics, "topic", "label")


# --- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, common) -> None:
    """``validate make`` and ``validate score``."""
    sub = parser.add_subparsers(dest="action", required=True)
    defaults = Paths()
    make = sub.add_parser("make", help="write coder sheets, HTML forms and the answer key")
    common(make)
    make.add_argument("--processed", type=Path, default=defaults.processed, help="run folder")
    make.add_argument("--models", type=Path, help="models folder (default: the run's)")
    make.add_argument("--out", type=Path, help="output folder (default: RUN/validation)")
    make.add_argument("--tasks", type=int, default=20, help="tasks of each kind (default 20)")
    make.add_argument(
        "--topic-tasks", type=int, help="topic intrusion tasks (default: --tasks; 0: none)"
    )
    make.add_argument("--coders", type=int, default=3, help="coder sheets (default 3)")
    make.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    make.add_argument("--no-font", action="store_true", help="use the system's CJK fonts")
    score_p = sub.add_parser("score", help="score coders' answers against the key")
    common(score_p)
    score_p.add_argument("answers", type=Path, nargs="+", help="answer CSV files")
    score_p.add_argument(
        "--key",
        type=Path,
        help="answer key (default: key.csv beside the first answers file, else RUN/validation)",
    )
    score_p.add_argument(
        "--processed", type=Path, help="run folder whose validation/key.csv is the default key"
    )
    score_p.add_argument("--out", type=Path, help="output folder (default: the key's)")


def run_paths(processed: Path, models: Path | None) -> Paths:
    """The run at ``processed``: its models beside the tables (``zhtopics run --out``) or the
    project's ``models/`` folder."""
    processed = Path(processed)
    if models is None:
        models = processed / "models" if (processed / "models").is_dir() else Paths().models
    return Paths(processed=processed, models=models)


def run(args: argparse.Namespace) -> int:
    """Run ``validate make`` or ``validate score``; prints what it wrote."""
    if args.action == "make":
        for name in ("tasks", "coders"):
            if getattr(args, name) < 1:
                raise ValidationError(f"--{name} must be 1 or more, got {getattr(args, name)}")
        paths = run_paths(args.processed, args.models)
        topic_tasks = args.tasks if args.topic_tasks is None else args.topic_tasks
        model = load_model_for_tasks(paths)
        tasks = make_tasks(model, args.tasks, topic_tasks, args.seed)
        out = args.out or paths.processed / "validation"
        written = write_kit(tasks, args.coders, args.seed, out, not args.no_font, model.labels)
        print(f"{len(tasks)} task(s) for {args.coders} coder(s) in {out}:")
        for path in written:
            print(f"  {path.name}")
        print(f"keep {KEY_FILE} from the coders; score with: zhtopics validate score ANSWERS...")
        return 0
    key_path = args.key
    if key_path is None:
        beside = args.answers[0].parent / KEY_FILE
        project = (args.processed or Paths().processed) / "validation" / KEY_FILE
        key_path = beside if beside.is_file() else project
    key = read_key(key_path)
    answers = read_answers(args.answers, key)
    scores = score(answers, key)
    out = args.out or key_path.parent
    write_table(scores, out / SCORES_FILE, VALIDATION_SCORES)
    lines = summary_lines(scores, len({c for c, _ in answers}))
    with atomic_path(out / SUMMARY_FILE) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {out / SCORES_FILE} and {out / SUMMARY_FILE}")
    return 0
