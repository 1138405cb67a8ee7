"""Stage lda_sweep: one model per K and seed, scored (coherence, diversity, held-out perplexity,
stability across seeds) to recommend K."""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import math
import multiprocessing
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from pipeline.config import LdaParams, Params, derived
from pipeline.io import (
    Paths,
    TableFile,
    read_table,
    release_arrow_memory,
    table_pieces,
    usable_cores,
    write_json,
    write_table,
)
from pipeline.progress import Progress
from pipeline.schemas import DOC_TERMS, SWEEP, TOKENS, VOCABULARY
from pipeline.topics import background, engines
from pipeline.topics.coherence import Reference, coherence_scores, reference, take_sequences
from pipeline.topics.counts import (
    BATCH_ROWS,
    COUNT_COLUMNS,
    LdaError,
    TableOrPieces,
    build_counts,
    check_inputs,
    id_counts,
)
from pipeline.topics.engines import CONVERGENCE_WINDOW
from pipeline.topics.terms import (
    DIVERSITY_TOP_N,
    STABILITY_TOP_N,
    stability,
    top_terms,
    topic_diversity,
)

log = logging.getLogger(__name__)

RULE = (
    "the K with the highest mean c_npmi over seeds among those whose mean stability (best-match "
    "Jaccard of top-{n} terms between seeds) is at least lda.sweep.min_stability = {m}; "
    "if no K reaches it, the most stable K; ties go to the smaller K"
)


@dataclass(frozen=True)
class SweepResult:
    table: pa.Table
    summary: dict
    by_k: list[dict]


@dataclass(frozen=True)
class SweepInputs:
    """What every fit of the sweep needs; built once, sent once to each worker process."""

    train: sp.csr_matrix
    heldout_fit: sp.csr_matrix
    heldout_eval: sp.csr_matrix
    reference: Reference
    params: LdaParams
    train_sequences: tuple[np.ndarray, np.ndarray]  # the training documents in reading order


def hash_scores(doc_ids: list[str]) -> np.ndarray:
    """A number in [0, 1) per doc_id, from its hash: the same on every machine and in every
    corpus that holds the document."""
    return np.array(
        [int.from_bytes(hashlib.sha256(d.encode()).digest()[:8], "big") / 2**64 for d in doc_ids]
    )


def split_heldout(doc_ids: list[str], share: float) -> np.ndarray:
    """A boolean mask of held-out documents, from a hash of each doc_id (stable everywhere)."""
    scores = hash_scores(doc_ids)
    mask = scores < share
    if not mask.any():
        mask[int(np.argmin(scores))] = True
    if (~mask).sum() < 2:
        raise LdaError(f"lda_sweep: {len(doc_ids)} document(s) are too few to hold some out")
    return mask


def training_rows(
    scores: np.ndarray, heldout: np.ndarray, doc_tokens: np.ndarray, max_tokens: int | None
) -> np.ndarray:
    """The rows (in reading order) of the training documents the sweep's fits model: every
    one not held out, or, past ``max_tokens`` tokens, those with the lowest ``scores`` until
    their tokens reach ``max_tokens``."""
    rows = np.flatnonzero(~heldout)
    if max_tokens is None or int(doc_tokens[rows].sum()) <= max_tokens:
        return rows
    by_score = rows[np.argsort(scores[rows], kind="stable")]
    enough = int(np.searchsorted(np.cumsum(doc_tokens[by_score]), max_tokens)) + 1
    return np.sort(by_score[: max(enough, 2)])


def completion_halves(
    tokens: TableOrPieces, doc_ids: list[str], term_ids: dict[str, int]
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Document completion: each document's tokens alternately into a fit half and an eval half.

    ``tokens`` is a table or its pieces; only the tokens of ``doc_ids`` become Python lists.
    """
    wanted = pa.array(doc_ids, pa.string())
    by_doc: dict[str, list[str]] = {}
    for table in table_pieces(tokens):
        table = table.filter(pc.is_in(table.column("doc_id"), wanted))
        docs, lists = table.column("doc_id").to_pylist(), table.column("tokens").to_pylist()
        by_doc.update(zip(docs, lists, strict=True))
    id_lists = [[term_ids[t] for t in by_doc.get(doc) or [] if t in term_ids] for doc in doc_ids]
    halves = [id_counts([ids[start::2] for ids in id_lists], len(term_ids)) for start in (0, 1)]
    return halves[0], halves[1]


def lda_sweep(
    vocabulary: pa.Table,
    doc_terms: TableOrPieces,
    tokens: TableOrPieces,
    params: LdaParams,
) -> SweepResult:
    """Fit every K x seed of ``params.sweep`` on the training share and score each model.

    ``doc_terms`` and ``tokens`` may be tables or re-iterable pieces (``io.TableFile``):
    ``tokens`` is read twice, for the held-out halves and for the coherence windows.
    """
    check_inputs(vocabulary, doc_terms, tokens, "lda_sweep")
    doc_ids, counts = build_counts(doc_terms, vocabulary.num_rows)
    if counts.shape[0] < 3:
        raise LdaError(f"lda_sweep: {counts.shape[0]} document(s) have terms; need at least 3")
    scores = hash_scores(doc_ids)
    mask = split_heldout(doc_ids, params.sweep.holdout)
    terms = np.asarray(vocabulary.column("term").to_pylist(), dtype=object)
    heldout_ids = [d for d, m in zip(doc_ids, mask, strict=True) if m]
    fit_half, eval_half = completion_halves(
        tokens, heldout_ids, {t: i for i, t in enumerate(terms.tolist())}
    )
    ref = reference(tokens, doc_ids, terms.tolist(), counts)
    drop = background.left_out(vocabulary, params, "lda_sweep")
    model_counts, (starts, ids) = background.drop_terms(
        counts, (ref.starts, ref.term_ids), drop, "lda_sweep"
    )
    if drop is not None:  # held-out perplexity over the terms the model describes
        fit_half, eval_half = (background.drop_columns(m, drop) for m in (fit_half, eval_half))
    doc_tokens = np.asarray(model_counts.sum(axis=1)).ravel()
    rows = training_rows(scores, mask, doc_tokens, params.sweep.max_tokens)
    sample = {
        "training_documents": len(rows),
        "training_tokens": int(doc_tokens[rows].sum()),
        "of_documents": int((~mask).sum()),
        "of_tokens": int(doc_tokens[~mask].sum()),
    }
    fit_params = sweep_fit_params(params, sample["training_tokens"])
    inputs = SweepInputs(
        train=model_counts[rows],
        heldout_fit=fit_half,
        heldout_eval=eval_half,
        reference=ref,
        params=fit_params,
        train_sequences=take_sequences(starts, ids, rows),
    )
    del counts, model_counts, starts, ids, ref, fit_half, eval_half
    release_arrow_memory()
    log.info(
        "lda_sweep: fits on %d of %d training documents (%d of %d tokens; lda.sweep.max_tokens), "
        "%d held out; K %s x seeds %s, at most %d Gibbs sweeps each",
        sample["training_documents"],
        sample["of_documents"],
        sample["training_tokens"],
        sample["of_tokens"],
        int(mask.sum()),
        list(params.sweep.k),
        list(params.sweep.seeds),
        fit_params.iterations,
    )
    fits = [(k, seed) for k in params.sweep.k for seed in params.sweep.seeds]
    results = score_fits(inputs, fits, fit_params)
    summary = _summarise(results, fit_params, 0 if drop is None else int(drop.sum()))
    summary.summary.update(sample)
    return summary


def sweep_fit_params(params: LdaParams, tokens: int) -> LdaParams:
    """The settings of each sweep fit on ``tokens`` training tokens: the final model's, with
    ``lda.sweep.work_share`` of its token updates (``lda.min_token_updates``) and passes.
    Gibbs sweeps: that share of ``lda.iterations``, or more where the shared token updates
    need more (up to all of them: a small corpus, cheap to sample, gets every sweep), and
    never under two convergence windows. Ranking K needs the topics' shape, which shows
    well before a large corpus' chain has settled."""
    share = params.sweep.work_share
    if share >= 1.0:
        return params
    updates = int(params.min_token_updates * share)
    sweeps = max(
        math.ceil(params.iterations * share),
        math.ceil(updates / max(tokens, 1)),
        2 * CONVERGENCE_WINDOW,
    )
    return derived(
        params,
        iterations=min(params.iterations, sweeps),
        passes=max(1, math.ceil(params.passes * share)),
        min_token_updates=updates,
    )


def score_fits(inputs: SweepInputs, fits: list[tuple[int, int]], params: LdaParams) -> list[dict]:
    """Fit and score each (K, seed) of ``fits``, in that order.

    With ``lda.workers`` > 1 the fits are dealt round-robin to that many processes (started by
    ``lda.start_method``), each receiving ``inputs`` once with its share: no module state, and
    a fit's score does not depend on the process that computed it.
    """
    workers = min(sweep_workers(params), len(fits))
    context = multiprocessing.get_context(params.start_method)  # a bad name fails at once
    # Gibbs sweeps (tomotopy) or fits (gensim) done so far, counted by every process.
    done = context.Value("q", 0)
    total = len(fits) * _work_per_fit(params)
    unit = "Gibbs sweep" if params.engine == "tomotopy" else "fit"
    with Progress("lda_sweep", total, unit, log, poll=lambda: done.value):
        if workers <= 1:
            _set_counter(done)
            try:
                return [score_fit(inputs, k, seed) for k, seed in fits]
            finally:
                _set_counter(None)
        shares = [fits[i::workers] for i in range(workers)]
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_set_counter, initargs=(done,)
        ) as pool:
            scored = list(pool.map(_score_share, [inputs] * workers, shares))
    by_fit = {(r["k"], r["seed"]): r for share in scored for r in share}
    return [by_fit[fit] for fit in fits]


def sweep_workers(params: LdaParams) -> int:
    """Processes for the sweep's fits: ``lda.workers``, or with 0 the usable cores over the
    threads of one fit (``lda.sweep.threads``). Never changes a result: each fit has its own
    seed and thread count, whichever process runs it."""
    if params.workers:
        return params.workers
    return max(1, usable_cores() // params.sweep.threads)


def _work_per_fit(params: LdaParams) -> int:
    return params.iterations if params.engine == "tomotopy" else 1


# The shared count of work done, set in each process (the only module state: a progress gauge).
_COUNTER: list = [None]


def _set_counter(counter) -> None:
    _COUNTER[0] = counter


def _count(amount: int) -> None:
    counter = _COUNTER[0]
    if counter is not None:
        with counter.get_lock():
            counter.value += amount


def _score_share(inputs: SweepInputs, fits: list[tuple[int, int]]) -> list[dict]:
    return [score_fit(inputs, k, seed) for k, seed in fits]


def score_fit(inputs: SweepInputs, k: int, seed: int) -> dict:
    """One model of K topics from ``seed`` on the training share, and its scores. A sweep fit
    runs ``lda.sweep.threads`` threads (the final model ``lda.threads``)."""
    params = inputs.params
    counted = [0]

    def advance(amount: int) -> None:
        counted[0] += amount
        _count(amount)

    fitted = engines.fit(
        inputs.train,
        k,
        params,
        seed,
        sequences=inputs.train_sequences,
        progress=advance,
        threads=params.sweep.threads,
    )
    _count(max(_work_per_fit(params) - counted[0], 0))  # converged early: the rest is done
    top = top_terms(fitted.phi, max(params.coherence_top_n, DIVERSITY_TOP_N, STABILITY_TOP_N))
    coherence = coherence_scores([row[: params.coherence_top_n] for row in top], inputs.reference)
    theta = engines.fold_in(fitted.phi, fitted.alpha, inputs.heldout_fit)
    n_eval = inputs.heldout_eval.sum()
    perplexity = (
        float(np.exp(-engines.log_likelihood(fitted.phi, theta, inputs.heldout_eval) / n_eval))
        if n_eval
        else float("nan")
    )
    log.info("lda_sweep: K=%d seed=%d c_npmi=%.4f", k, seed, coherence["c_npmi"])
    return {
        "k": k,
        "seed": seed,
        "c_npmi": coherence["c_npmi"],
        "c_v": coherence["c_v"],
        "u_mass": coherence["u_mass"],
        "diversity": topic_diversity(top[:, :DIVERSITY_TOP_N]),
        "perplexity": perplexity,
        "top": [set(row[:STABILITY_TOP_N].tolist()) for row in top],
    }


def _summarise(results: list[dict], params: LdaParams, n_left_out: int = 0) -> SweepResult:
    by_k: dict[int, list[dict]] = {}
    for fit in results:
        by_k.setdefault(fit["k"], []).append(fit)
    for runs in by_k.values():
        for fit in runs:
            others = [stability(fit["top"], o["top"]) for o in runs if o is not fit]
            fit["stability"] = float(np.mean(others)) if others else None
        if len(runs) > 1:
            pairs = [stability(a["top"], b["top"]) for a, b in combinations(runs, 2)]
            log.debug("lda_sweep: K=%d pairwise stability %s", runs[0]["k"], pairs)
    columns = [c for c in SWEEP.columns]
    table = SWEEP.conform(
        pa.table({c: [fit[c] for fit in results] for c in columns}), where="lda_sweep"
    )
    means = []
    for k in sorted(by_k):
        runs = by_k[k]
        row = {"k": k}
        for c in ("c_npmi", "c_v", "u_mass", "diversity", "perplexity", "stability"):
            values = [fit[c] for fit in runs if fit[c] is not None]
            row[c] = round(float(np.mean(values)), 6) if values else None
        means.append(row)
    recommended = recommend(means, params.sweep.min_stability)
    summary = {
        "recommended_k": recommended,
        "rule": RULE.format(n=STABILITY_TOP_N, m=params.sweep.min_stability),
        "k": [m["k"] for m in means],
        "seeds": list(params.sweep.seeds),
        "engine": params.engine,
        "term_weight": params.term_weight,
        "background": params.background,
        "background_terms_left_out": n_left_out,
        # Each fit's sampling (lda.sweep.work_share of the final model's).
        "work_share": params.sweep.work_share,
        "iterations": params.iterations,
        "passes": params.passes,
        "min_token_updates": params.min_token_updates,
    }
    return SweepResult(table=table, summary=summary, by_k=means)


def recommend(means: list[dict], min_stability: float) -> int:
    """Apply the rule in ``RULE`` to the per-K means (sorted by K)."""
    stable = [m for m in means if m["stability"] is None or m["stability"] >= min_stability]
    if stable:
        best = max(stable, key=lambda m: (m["c_npmi"], -m["k"]))
    else:
        best = max(means, key=lambda m: (m["stability"], -m["k"]))
    return int(best["k"])


def skip_reason(params: LdaParams) -> str | None:
    """Why the sweep fits no model in this run (``lda.sweep.run``), or None if it does."""
    run = params.sweep.run
    if run == "always" or (run == "auto" and params.num_topics == "auto"):
        return None
    if run == "never":
        return "lda.sweep.run is never"
    return (
        f"lda.num_topics is {params.num_topics}, so the run does not use a recommended K "
        "(lda.sweep.run: always fits the sweep anyway)"
    )


def skipped(params: LdaParams, reason: str) -> SweepResult:
    """The sweep's outputs when it fits nothing: an empty table and a summary saying why."""
    summary = {
        "recommended_k": None,
        "skipped": reason,
        "rule": RULE.format(n=STABILITY_TOP_N, m=params.sweep.min_stability),
        "k": list(params.sweep.k),
        "seeds": list(params.sweep.seeds),
        "engine": params.engine,
    }
    return SweepResult(table=SWEEP.schema.empty_table(), summary=summary, by_k=[])


def main(params: Params, paths: Paths) -> None:
    reason = skip_reason(params.lda)
    if reason is not None:
        result = skipped(params.lda, reason)
        write_table(result.table, paths.table("sweep"), SWEEP)
        write_json(result.summary, paths.metrics / "sweep.json")
        write_json(result.by_k, paths.metrics / "sweep_plot.json")
        log.info("lda_sweep: no model fitted: %s", reason)
        return
    result = lda_sweep(
        read_table(paths.table("vocabulary"), VOCABULARY),
        TableFile(paths.table("doc_terms"), DOC_TERMS, BATCH_ROWS, COUNT_COLUMNS),
        TableFile(paths.table("tokens"), TOKENS, BATCH_ROWS),
        params.lda,
    )
    write_table(result.table, paths.table("sweep"), SWEEP)
    write_json(result.summary, paths.metrics / "sweep.json")
    write_json(result.by_k, paths.metrics / "sweep_plot.json")
    for row in result.by_k:
        log.info("lda_sweep: %s", row)
    log.info("lda_sweep: recommended K = %d", result.summary["recommended_k"])
