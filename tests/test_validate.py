"""Human validation kit: `zhtopics validate make` and `zhtopics validate score`."""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as cli_main
from pipeline.io import Paths
from pipeline.validate import (
    KEY_FILE,
    TOP_WORDS,
    TOPIC,
    WORD,
    KeyTask,
    Model,
    ValidationError,
    coder_order,
    form_html,
    krippendorff_alpha,
    load_model_for_tasks,
    make_tasks,
    read_answers,
    read_key,
    score,
    summary_lines,
    wilson,
    write_kit,
)

EVIL_TITLE = "<script>window.pwned = 1</script>标题"
EVIL_TEXT = '文字 <img src=x onerror="window.pwned = 2"> 和 </script><b>粗</b> "{{SCRIPT}}"'


@pytest.fixture(scope="module")
def model(sample_run: Paths) -> Model:
    return load_model_for_tasks(sample_run)


@pytest.fixture(scope="module")
def kit(model: Model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve tasks of each kind for two coders, from the sample run, font embedded."""
    out = tmp_path_factory.mktemp("kit")
    write_kit(make_tasks(model, 12, 12, seed=7), coders=2, seed=7, out=out, labels=model.labels)
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _write_answers(path: Path, rows: list[tuple[str, str, object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["coder", "task_id", "answer"])
        writer.writerows(rows)
    return path


def _answer_all(key: dict[str, KeyTask], coder: str, choose) -> list[tuple[str, str, int]]:
    return [(coder, t.task_id, choose(t)) for t in key.values()]


# --- making the kit ----------------------------------------------------------------------------


def test_same_seed_same_files_other_seed_other_tasks(model: Model, kit: Path, tmp_path: Path):
    tasks = make_tasks(model, 12, 12, seed=7)
    write_kit(tasks, coders=2, seed=7, out=tmp_path / "a", labels=model.labels)
    for name in ("key.csv", "coder01.csv", "coder02.csv", "coder01.html"):
        assert (tmp_path / "a" / name).read_bytes() == (kit / name).read_bytes(), name
    write_kit(make_tasks(model, 12, 12, seed=8), coders=1, seed=8, out=tmp_path / "b")
    assert (tmp_path / "b" / "key.csv").read_bytes() != (kit / "key.csv").read_bytes()


def test_coders_get_every_task_in_their_own_order_without_the_answers(kit: Path):
    key = _rows(kit / KEY_FILE)
    ids = [r["task_id"] for r in key]
    sheets = [_rows(kit / f"coder0{n}.csv") for n in (1, 2)]
    for sheet in sheets:
        assert sorted(r["task_id"] for r in sheet) == sorted(ids)
        assert {r["answer"] for r in sheet} == {""}
        assert not {"option_topics", "option_weights", "n_options"} & set(sheet[0])
    assert [r["task_id"] for r in sheets[0]] != [r["task_id"] for r in sheets[1]]
    page = (kit / "coder01.html").read_text(encoding="utf-8")
    assert "option_weights" not in page and '"answer"' not in page
    assert "http://" not in page and "https://" not in page


def test_word_intrusion_intruder_is_probable_elsewhere_and_improbable_here(model: Model):
    tasks = make_tasks(model, 18, 0, seed=3)
    assert len(tasks) == 18 and {t.kind for t in tasks} == {WORD}
    index = {term: i for i, term in enumerate(model.terms)}
    top = np.argsort(-model.phi, axis=1, kind="stable")
    k = model.phi.shape[0]
    assert {t.topic for t in tasks} == set(range(k))  # topics in turn
    for task in tasks:
        words = [index[w] for w in task.options]
        intruder = words[task.answer - 1]
        shown = set(words) - {intruder}
        assert shown == set(top[task.topic, :TOP_WORDS].tolist())
        assert model.phi[task.topic, intruder] <= np.median(model.phi[task.topic])
        assert any(intruder in top[o, :10] for o in range(k) if o != task.topic)


def test_topic_intrusion_shows_three_probable_topics_and_one_improbable(model: Model):
    tasks = make_tasks(model, 0, 10, seed=3)
    assert len(tasks) == 10 and {t.kind for t in tasks} == {TOPIC}
    assert len({t.doc_id for t in tasks}) == 10
    row = {d: i for i, d in enumerate(model.doc_ids)}
    for task in tasks:
        theta = model.theta[row[task.doc_id]]
        top3 = set(np.argsort(-theta, kind="stable")[:3].tolist())
        intruder = task.option_topics[task.answer - 1]
        assert set(task.option_topics) - {intruder} == top3
        assert theta[intruder] <= min(theta[t] for t in top3)
        assert task.text and task.text.rstrip("…") in " ".join(model.texts[task.doc_id].split())


def test_each_coder_has_a_fixed_order(model: Model):
    tasks = make_tasks(model, 6, 6, seed=1)
    assert coder_order(tasks, 1, 1) == coder_order(tasks, 1, 1)
    assert coder_order(tasks, 1, 1) != coder_order(tasks, 2, 1)


def test_form_shows_markup_in_texts_as_text_only(model: Model):
    task = make_tasks(model, 0, 1, seed=1)[0]
    evil = dataclasses.replace(task, title=EVIL_TITLE, text=EVIL_TEXT)
    page = form_html([evil], "c1", embed_font=False)
    assert "<script>window" not in page and "<img" not in page and "</script><b>" not in page
    assert page.count("</script>") == 2  # the data element's and the script's own


# --- scoring -----------------------------------------------------------------------------------


def test_perfect_coders_score_precision_one_log_odds_zero_alpha_one(kit: Path, tmp_path: Path):
    key = read_key(kit / KEY_FILE)
    files = [
        _write_answers(tmp_path / f"{c}.csv", _answer_all(key, c, lambda t: t.answer))
        for c in ("ann", "bo")
    ]
    scores = score(read_answers(files, key), key).to_pylist()
    precision = [r for r in scores if r["measure"] == "model_precision"]
    assert precision and all(r["estimate"] == 1.0 for r in precision)
    assert all(r["label"] for r in precision if r["topic"] is not None)  # from the key
    assert all(r["chance"] == pytest.approx(1 / 6, abs=1e-6) for r in precision)
    assert all(r["estimate"] == 0.0 for r in scores if r["measure"] == "topic_log_odds")
    alphas = [r for r in scores if r["measure"] == "krippendorff_alpha"]
    assert [r["kind"] for r in alphas] == [WORD, TOPIC, "all"]
    assert all(r["estimate"] == 1.0 for r in alphas)
    assert summary_lines(score(read_answers(files, key), key, {}), 2)[-1].startswith("every")


def _synthetic_key(n_topics: int = 5, per_topic: int = 40, options: int = 6) -> dict:
    rng = np.random.default_rng(11)
    key = {}
    for number in range(n_topics * per_topic):
        task_id = f"W{number:04d}"
        key[task_id] = KeyTask(task_id, WORD, number % n_topics, int(rng.integers(1, 7)), 6, (), 0)
    for number in range(100):
        task_id = f"T{number:04d}"
        weights = tuple(float(w) for w in rng.dirichlet(np.ones(4)))
        answer = int(np.argmin(weights)) + 1
        key[task_id] = KeyTask(task_id, TOPIC, 0, answer, 4, weights, 0)
    return key


def test_random_coders_score_near_chance():
    """10 random coders x 200 word tasks = 2,000 answers: the pooled precision has standard
    error sqrt(1/6 * 5/6 / 2000) = 0.0083; four of them (0.034) fail by chance with
    probability 6e-5 (and the draws are seeded). Alpha of independent coders has expectation 0;
    with 300 tasks x 10 coders its standard error is about 0.01, so 0.05 is five of them."""
    key = _synthetic_key()
    rng = np.random.default_rng(5)
    answers = {
        (f"c{c}", t.task_id): int(rng.integers(1, t.n_options + 1))
        for c in range(10)
        for t in key.values()
    }
    rows = score(answers, key, {}).to_pylist()
    pooled = next(r for r in rows if r["measure"] == "model_precision" and r["topic"] is None)
    assert pooled["estimate"] == pytest.approx(1 / 6, abs=0.034)
    assert pooled["ci_low"] < 1 / 6 < pooled["ci_high"]
    alpha = next(r for r in rows if r["measure"] == "krippendorff_alpha" and r["kind"] == "all")
    assert abs(alpha["estimate"]) < 0.05
    odds = next(r for r in rows if r["measure"] == "topic_log_odds" and r["topic"] is None)
    assert odds["estimate"] < -0.5 and odds["ci_high"] < 0  # a random pick is usually wrong
    assert odds["ci_low"] < odds["chance"] < odds["ci_high"]  # and as bad as expected


def test_krippendorff_alpha_of_a_textbook_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example:
    # 4 coders, 12 units (None = missing), alpha = 0.743.
    data = [
        [1, 1, None, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2],
        [1, 2, 3, 4], [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [None, 5, 5, 5],
        [None, None, 1, 1], [None, None, 3, None],
    ]  # fmt: skip
    units = [[v for v in unit if v is not None] for unit in data]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=0.0005)


def test_wilson_interval():
    low, high = wilson(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.7225, abs=1e-4)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_a_topic_nobody_could_tell_is_named(kit: Path, tmp_path: Path):
    key = read_key(kit / KEY_FILE)
    blind = next(t.topic for t in key.values() if t.kind == WORD)

    def choose(task):
        if task.kind == WORD and task.topic == blind:
            return task.answer % task.n_options + 1
        return task.answer

    path = _write_answers(tmp_path / "a.csv", _answer_all(key, "ann", choose))
    lines = summary_lines(score(read_answers([path], key), key, {blind: "x"}), 1)
    assert lines[-1] == f"no coder found the intruder of: topic {blind} x"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows + [("ann", "W999", 1)], r"a\.csv: row 26: task 'W999' is not in"),
        (
            lambda rows: rows + [rows[3]],
            r"a\.csv: row 26: coder 'ann' answered task '\w+' twice "
            r"\(first at .*a\.csv: row 5\)",
        ),  # fmt: skip
        (lambda rows: rows[:-1], r"coder 'ann' has no answer to task\(s\) \w+ \(key row \d+\)"),
        (lambda rows: [rows[0][:2] + ("",)] + rows[1:], r"row 2: coder 'ann' left task"),
        (lambda rows: [rows[0][:2] + ("9",)] + rows[1:], r"row 2: answer '9' .* not an option"),
    ],
)
def test_bad_answers_name_the_row(kit: Path, tmp_path: Path, change, message):
    key = read_key(kit / KEY_FILE)
    rows = [(c, t, str(a)) for c, t, a in _answer_all(key, "ann", lambda t: t.answer)]
    path = _write_answers(tmp_path / "a.csv", change(rows))
    with pytest.raises(ValidationError, match=message):
        read_answers([path], key)


def test_answers_without_the_columns_are_refused(kit: Path, tmp_path: Path):
    path = tmp_path / "a.csv"
    path.write_text("who,task\nann,W001\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"a\.csv: missing column\(s\) \['coder'"):
        read_answers([path], read_key(kit / KEY_FILE))


# --- command line and browser ------------------------------------------------------------------


def test_cli_make_then_score_the_filled_sheets(sample_run: Paths, tmp_path: Path, capsys):
    out = tmp_path / "kit"
    argv = ["validate", "make", "--processed", str(sample_run.processed), "--out", str(out)]
    assert cli_main([*argv, "--tasks", "6", "--coders", "2", "--no-font"]) == 0
    key = {r["task_id"]: r["answer"] for r in _rows(out / KEY_FILE)}
    for name in ("coder01", "coder02"):
        rows = _rows(out / f"{name}.csv")
        for row in rows:
            row["answer"] = key[row["task_id"]]
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    sheets = [str(out / "coder01.csv"), str(out / "coder02.csv")]
    assert cli_main(["validate", "score", *sheets]) == 0
    table = pq.read_table(out / "scores.parquet").to_pylist()
    labelled = [r for r in table if r["measure"] == "model_precision" and r["topic"] is not None]
    assert labelled and all(r["label"] for r in labelled)  # labels from the run's topics
    assert "2 coder(s)" in (out / "summary.txt").read_text(encoding="utf-8")
    assert "model_precision all topics: 1.000" in capsys.readouterr().out
    assert cli_main(["validate", "score", sheets[0], "--key", str(tmp_path / "none.csv")]) == 2


def _allow_downloads(driver, folder: Path) -> None:
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)}
    )


def _wait_for(path: Path, seconds: float = 10.0) -> Path:
    deadline = time.monotonic() + seconds
    while not path.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.is_file(), f"{path} was not downloaded"
    return path


def test_browser_fills_the_form_saves_csv_and_it_scores(chromium, kit: Path, tmp_path: Path):
    from tests.browser import console_errors, network_requests

    key = read_key(kit / KEY_FILE)
    _allow_downloads(chromium, tmp_path)
    network_requests(chromium)
    chromium.get((kit / "coder01.html").as_uri())
    font = chromium.execute_script(
        "return document.fonts.check('16px \"zhtopics CJK\"', '主题验证')"
    )
    assert font
    boxes = chromium.find_elements("css selector", "fieldset.task")
    assert len(boxes) == len(key)
    for box in boxes:
        task = key[box.get_attribute("data-task-id")]
        choice = box.find_element("css selector", f"input[value='{task.answer}']")
        chromium.execute_script("arguments[0].scrollIntoView({block: 'center'})", choice)
        choice.click()
    assert "24 / 24" in chromium.find_element("id", "progress").text
    chromium.find_element("id", "save").click()
    saved = _wait_for(tmp_path / "answers_coder01.csv")
    assert [
        u for u in network_requests(chromium) if not u.startswith(("file:", "blob:", "data:"))
    ] == []
    assert console_errors(chromium) == []
    scores = score(read_answers([saved], key), key, {}).to_pylist()
    assert all(r["estimate"] == 1.0 for r in scores if r["measure"] == "model_precision")


def test_browser_shows_markup_in_a_document_as_text(chromium, model: Model, tmp_path: Path):
    task = make_tasks(model, 0, 1, seed=1)[0]
    evil = dataclasses.replace(task, title=EVIL_TITLE, text=EVIL_TEXT, options=(EVIL_TITLE,) * 4)
    page = tmp_path / "evil.html"
    page.write_text(form_html([evil], "c<1>", embed_font=False), encoding="utf-8")
    chromium.get(page.as_uri())
    assert chromium.execute_script("return window.pwned === undefined")
    assert chromium.find_elements("css selector", "main img, main b, main script") == []
    assert chromium.find_element("css selector", ".title").text == EVIL_TITLE
    assert chromium.find_element("css selector", ".text").text == " ".join(EVIL_TEXT.split())
    assert chromium.find_element("id", "coder").text == "c<1>"
