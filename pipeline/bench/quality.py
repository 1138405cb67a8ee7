"""Topic quality and speed: this pipeline against a plain jieba + gensim script, in one run.

For a labelled corpus (a TSV with a text and a label column) both sides fit K topics with each
seed and print, side by side: NMI of each document's dominant topic against the label, NPMI
coherence of the top 10 words, topic diversity (unique share of the top 25), stability (mean
best-match Jaccard of the top 20 between seeds) and modelling seconds.

NPMI is scored for both sides on the same neutral reference, so that neither side's own
tokenisation or filtering flatters it: a word occurs in a document when it is a substring of
the document's raw text, and NPMI is taken over document co-occurrence.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import sys
import tempfile
import time
from itertools import combinations, permutations
from pathlib import Path

import numpy as np

from pipeline.config import load_params
from pipeline.topics.terms import DIVERSITY_TOP_N, STABILITY_TOP_N, stability, topic_diversity

log = logging.getLogger(__name__)

TOP_NPMI = 10  # the diversity and stability cuts are the pipeline's own (topics.terms)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, required=True, help="TSV with text and label")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("-k", "--num-topics", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--plain-passes", type=int, default=10)
    parser.add_argument(
        "--sides", nargs="+", choices=["plain", "pipeline"], default=["plain", "pipeline"]
    )


def read_labelled_corpus(
    path: Path, text_column: str, label_column: str
) -> tuple[list[str], list[str]]:
    """The texts and labels of a TSV corpus, in row order."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for column in (text_column, label_column):
        if rows and column not in rows[0]:
            raise ValueError(f"{path}: no column {column!r}; it has {list(rows[0])}")
    return [row[text_column] for row in rows], [row[label_column] for row in rows]


def plain_script(texts: list[str], k: int, seed: int, passes: int) -> dict:
    """The baseline: jieba.lcut, a stopword list, gensim LdaModel defaults with ``passes``."""
    import jieba
    import stopwordsiso
    from gensim.corpora import Dictionary
    from gensim.models import LdaModel

    jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter is not ours to print

    stop = set(stopwordsiso.stopwords("zh"))
    start = time.perf_counter()
    docs = [
        [w for w in jieba.lcut(t) if w.strip() and w not in stop and any(c.isalnum() for c in w)]
        for t in texts
    ]
    prep = time.perf_counter() - start
    dictionary = Dictionary(docs)
    corpus = [dictionary.doc2bow(d) for d in docs]
    start = time.perf_counter()
    model = LdaModel(corpus, num_topics=k, id2word=dictionary, passes=passes, random_state=seed)
    seconds = time.perf_counter() - start
    gamma, _ = model.inference(corpus)
    phi = model.get_topics()
    terms = [dictionary[i] for i in range(len(dictionary))]
    return {
        "dominant": gamma.argmax(axis=1),
        "top": _top_words(phi, terms),
        "seconds": seconds,
        "prep_seconds": prep,
        "kept": np.arange(len(texts)),
    }


def pipeline_side(corpus: Path, params, k: int, seeds: list[int], text_column: str) -> list[dict]:
    """The real stages (ingest with unit=document, clean, segment, tfidf), then the engine."""
    from pipeline.io import Paths, read_table
    from pipeline.runner import run_stages
    from pipeline.schemas import DOC_TERMS, DOCUMENTS, TOKENS, VOCABULARY
    from pipeline.topics import background, engines
    from pipeline.topics.coherence import reference
    from pipeline.topics.counts import build_counts

    params = dataclasses.replace(
        params,
        ingest=dataclasses.replace(params.ingest, unit="document", text_column=text_column),
    )
    out = []
    with tempfile.TemporaryDirectory(prefix="zhtopics-bench-") as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        (raw / corpus.name).symlink_to(corpus.resolve())  # read in place, not copied
        paths = Paths.under(raw, Path(tmp) / "out")
        start = time.perf_counter()
        run_stages(params, paths, until="tfidf")
        prep = time.perf_counter() - start
        vocabulary = read_table(paths.table("vocabulary"), VOCABULARY)
        doc_ids, counts = build_counts(
            read_table(paths.table("doc_terms"), DOC_TERMS), vocabulary.num_rows
        )
        documents = read_table(paths.table("documents"), DOCUMENTS)
        record = dict(
            zip(
                documents.column("doc_id").to_pylist(),
                documents.column("record").to_pylist(),
                strict=True,
            )
        )
        terms = vocabulary.column("term").to_pylist()
        ref = reference(read_table(paths.table("tokens"), TOKENS), doc_ids, terms, counts)
        counts, sequences = background.drop_terms(
            counts,
            (ref.starts, ref.term_ids),
            background.left_out(vocabulary, params.lda, "bench quality"),
            "bench quality",
        )
        for seed in seeds:
            start = time.perf_counter()
            fitted = engines.fit(counts, k, params.lda, seed, sequences=sequences)
            seconds = time.perf_counter() - start
            out.append(
                {
                    "dominant": fitted.theta.argmax(axis=1),
                    "top": _top_words(fitted.phi, terms),
                    "seconds": seconds,
                    "prep_seconds": prep,
                    "kept": np.asarray([record[d] for d in doc_ids]),
                }
            )
    return out


def _top_words(phi: np.ndarray, terms: list[str]) -> list[list[str]]:
    ids = np.arange(phi.shape[1])
    return [[terms[i] for i in np.lexsort((ids, -row))[:DIVERSITY_TOP_N]] for row in phi]


def npmi(top: list[list[str]], texts: list[str], n: int = TOP_NPMI) -> float:
    """Mean NPMI of the top ``n`` word pairs per topic over document co-occurrence (substring)."""
    words = sorted({w for t in top for w in t[:n]})
    occurs = np.array([[w in text for text in texts] for w in words], dtype=np.float64)
    index = {w: i for i, w in enumerate(words)}
    d = len(texts)
    scores = []
    for topic in top:
        pairs = []
        for a, b in combinations(topic[:n], 2):
            pa_, pb = occurs[index[a]].mean(), occurs[index[b]].mean()
            pab = (occurs[index[a]] * occurs[index[b]]).sum() / d
            if pab == 0:
                pairs.append(-1.0)
            elif pab == 1:
                pairs.append(1.0)
            else:
                pairs.append(np.log(pab / (pa_ * pb)) / -np.log(pab))
        scores.append(np.mean(pairs))
    return float(np.mean(scores))


def diversity(top: list[list[str]]) -> float:
    """The pipeline's topic diversity of the top words (unique share of the top 25)."""
    return topic_diversity(np.asarray([t[:DIVERSITY_TOP_N] for t in top], dtype=object))


def seed_stability(runs: list[dict]) -> float:
    """The pipeline's stability (best-match Jaccard of the top 20), averaged over every ordered
    pair of seeds; nan with one seed."""
    tops = [[set(t[:STABILITY_TOP_N]) for t in run["top"]] for run in runs]
    values = [stability(a, b) for a, b in permutations(tops, 2)]
    return float(np.mean(values)) if values else float("nan")


def summarise(runs: list[dict], texts: list[str], labels: np.ndarray) -> dict:
    from sklearn.metrics import normalized_mutual_info_score

    nmi = [normalized_mutual_info_score(labels[run["kept"]], run["dominant"]) for run in runs]
    npmis = [npmi(run["top"], texts) for run in runs]
    diversities = [diversity(run["top"]) for run in runs]
    return {
        "nmi": float(np.mean(nmi)),
        "npmi": float(np.mean(npmis)),
        "diversity": float(np.mean(diversities)),
        # The spread over seeds: population standard deviation (0 with one seed).
        "nmi_sd": float(np.std(nmi)),
        "npmi_sd": float(np.std(npmis)),
        "diversity_sd": float(np.std(diversities)),
        "stability": seed_stability(runs),
        "seconds": float(np.mean([run["seconds"] for run in runs])),
        "prep_seconds": float(np.mean([run["prep_seconds"] for run in runs])),
        "docs": int(np.mean([len(run["kept"]) for run in runs])),
    }


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params, args.overrides)
    texts, labels = read_labelled_corpus(args.corpus, args.text_column, args.label_column)
    labels = np.asarray(labels, dtype=object)
    results = {}
    if "plain" in args.sides:
        runs = [plain_script(texts, args.num_topics, s, args.plain_passes) for s in args.seeds]
        results["plain script"] = summarise(runs, texts, labels)
    if "pipeline" in args.sides:
        runs = pipeline_side(args.corpus, params, args.num_topics, args.seeds, args.text_column)
        results[f"pipeline ({params.lda.engine})"] = summarise(runs, texts, labels)
    _print(results, args)
    if "pipeline" in args.sides:
        print(settings_line(params))
    return 0


def settings_line(params) -> str:
    """The pipeline's modelling settings, so that a table of results says what it measured."""
    lda, tfidf = params.lda, params.tfidf
    return (
        f"pipeline settings: lda.engine={lda.engine} lda.term_weight={lda.term_weight} "
        f"lda.background={lda.background} tfidf.background_min_df={tfidf.background_min_df} "
        f"tfidf.background_min_evenness={tfidf.background_min_evenness} "
        f"tfidf.background_min_parent_share={tfidf.background_min_parent_share} "
        f"tfidf.background_min_partner_npmi={tfidf.background_min_partner_npmi} "
        f"tfidf.min_df={tfidf.min_df} tfidf.max_df={tfidf.max_df} lda.alpha={lda.alpha} "
        f"lda.eta={lda.eta} lda.iterations={lda.iterations} lda.threads={lda.threads}"
    )


def _print(results: dict, args: argparse.Namespace) -> None:
    names = list(results)
    lines = [
        f"corpus {args.corpus} (K={args.num_topics}, seeds {args.seeds})",
        f"{'':16}" + "".join(f"{n:>22}" for n in names),
    ]
    rows = [
        ("documents", "docs", "{:d}"),
        ("NMI", "nmi", "{:.3f}"),
        ("  sd over seeds", "nmi_sd", "{:.3f}"),
        ("NPMI top 10", "npmi", "{:.3f}"),
        ("  sd over seeds", "npmi_sd", "{:.3f}"),
        ("diversity", "diversity", "{:.3f}"),
        ("  sd over seeds", "diversity_sd", "{:.3f}"),
        ("stability", "stability", "{:.3f}"),
        ("model seconds", "seconds", "{:.2f}"),
        ("prep seconds", "prep_seconds", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        lines.append(f"{label:16}" + "".join(f"{fmt.format(results[n][key]):>22}" for n in names))
    if len(names) == 2:
        a, b = results[names[0]], results[names[1]]
        lines.append(
            f"ratio {names[1]} / {names[0]}: model seconds {b['seconds'] / a['seconds']:.2f}, "
            f"NMI {b['nmi'] / a['nmi']:.2f}"
        )
    print("\n".join(lines))
