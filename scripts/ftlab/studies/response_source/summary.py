"""The response_source study's result: accuracy, familiarity and forgetting per source, the
paper's claims as rows, and two plots.

Scores arrive per run ("response_source/{source}/{task}/seed{n}") and for the base student, on
the study task (in-task accuracy) and on every forgetting task; all in the study's `mode`. Every
interval comes from `ftlab.stats`: accuracies over seeds x test questions (cluster bootstrap),
paired differences on the same questions with seeds paired by index, per-example familiarity
paired by training question (every source holds the same questions).

Summary rows ("response_source" table, long format, one per task x source x metric x eval task):

* accuracy            test accuracy (eval_task: the study task, or a forgetting task); base too
* accuracy_vs_gold    in-task accuracy of the source minus gold's, paired
* nll_per_token       mean over training examples of the completion's mean NLL per token under
                      the base student (familiarity.py); mean_perplexity: mean of exp(that) per
                      example; corpus_perplexity: exp(total NLL / total tokens), a point value
* nll_gap_vs_gold     gold's NLL per token minus the source's, paired per example
* completion_tokens   mean completion tokens (EOS included): the length control
* examples            kept questions (n_examples) of the train questions, and what was dropped
* rewrite_fallbacks   kept questions whose rewrite failed and keep their gold text
* forgetting          base accuracy minus the run's on a forgetting task ("all": pooled), paired
* forgetting_vs_gold  forgetting(gold) - forgetting(source), pooled: > 0 is less forgetting
* spearman            Spearman rho over the runs between the source's mean per-example
                      perplexity and the run's in-task accuracy, bootstrap interval

The teacher's nll_gap_vs_gold is also the study's gate (`claim_rows`): no measurable gap, no
style contrast, and the accuracy claims are not tested.
"""

from __future__ import annotations

import math

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from ftlab import claims, familiarity, runs, stats, tables  # noqa: E402

from . import (  # noqa: E402
    REFERENCE,
    REWRITE,
    SOURCES,
    STUDY,
    trainset,  # noqa: E402, F401 (registers the questions table it reads)
)
from .gate import _gate_passes, _iv, _nll_gap, gate_row  # noqa: E402

SCHEMA = tables.register(
    "response_source",
    pa.schema(
        [
            ("task", pa.string()),  # the study task the runs were fine-tuned on
            ("source", pa.string()),  # a source, "base" (the untrained student) or "all"
            ("metric", pa.string()),
            ("eval_task", pa.string()),  # where it was measured ("" for trainset metrics)
            ("value", pa.float64()),
            ("ci_low", pa.float64()),
            ("ci_high", pa.float64()),
            ("level", pa.float64()),
            ("n_examples", pa.int64()),
            ("n_seeds", pa.int64()),
            ("method", pa.string()),
            ("note", pa.string()),
        ]
    ),
)
ORDER = ("base", *SOURCES)
POOLED = "all"


def _claim(id_, text, comparison, **unit):
    return claims.Claim(id_, text, comparison, "greater", **unit)


CLAIMS = {
    "teacher_gt_gold": _claim(
        "teacher_gt_gold",
        "Fine-tuning on the teacher's own responses beats fine-tuning on the (human-style) gold "
        "responses to the same questions, with the same answers and optimiser steps",
        "acc(teacher) - acc(gold)",
    ),
    "teacher_more_familiar": _claim(
        "teacher_more_familiar",
        "Before fine-tuning, the student finds the teacher's responses more familiar than the "
        "gold ones: lower NLL per token, paired per training question",
        "nll/token(gold) - nll/token(teacher)",
        unit="nats/token",
    ),
    "rewrite_gt_gold": _claim(
        "rewrite_gt_gold",
        "The gold rewritten by the teacher in its own words (content kept) beats the gold itself",
        "acc(teacher_rewrite) - acc(gold)",
    ),
    "teacher_less_forgetting": _claim(
        "teacher_less_forgetting",
        "Fine-tuning on the teacher's responses forgets less of the student's other tasks than "
        "fine-tuning on the gold ones",
        "forgetting(gold) - forgetting(teacher)",
    ),
}
GATED = ("teacher_gt_gold", "rewrite_gt_gold", "teacher_less_forgetting")


# --- inputs -------------------------------------------------------------------------------------


def _arm(run: str, student: str) -> tuple[str, str, int | None]:
    """(source, study task, seed) of an eval's run; ("base", "", None) for the student."""
    if run == student:
        return "base", "", None
    parsed = runs.parse(run)
    if parsed is None or parsed.study != STUDY:
        raise ValueError(f"eval run {run!r} is neither the student {student!r} nor "
                         f"{STUDY}/<source>/<task>/seed<N>")  # fmt: skip
    return parsed.variant, parsed.task, parsed.seed


def scores(evals: list[pd.DataFrame], student: str, mode: str) -> dict[tuple, np.ndarray]:
    """(source, study task, eval task) -> correct as (seeds, examples) 0/1, examples by id;
    the base student's key has study task ""."""
    cells: dict[tuple, dict] = {}
    for ev in evals:
        ev = ev[ev["mode"] == mode]
        for (run, task), part in ev.groupby(["run", "task"], sort=False):
            source, study_task, seed = _arm(run, student)
            cells.setdefault((source, study_task, task), {})[seed] = part.set_index("example_id")[
                "correct"
            ]
    out = {}
    for key, by_seed in cells.items():
        out[key] = stats.seed_matrix(by_seed, "/".join(map(str, key)))
    return out


def nll(frames: list[pd.DataFrame]) -> dict[tuple, pd.DataFrame]:
    """(source, study task) -> its familiarity rows indexed by example_id (sorted)."""
    out = {}
    for f in frames:
        for (source, task), part in f.groupby(["variant", "task"], sort=False):
            out[(source, task)] = part.set_index("example_id").sort_index()
    return out


# --- summary ------------------------------------------------------------------------------------


def _row(task, source, metric, eval_task, est: stats.Estimate | None = None, *, value=None,
         note="", n=None) -> dict:  # fmt: skip
    if est is None:
        return {"task": task, "source": source, "metric": metric, "eval_task": eval_task,
                "value": float(value), "ci_low": math.nan, "ci_high": math.nan,
                "level": math.nan, "n_examples": int(n or 0), "n_seeds": 0, "method": "",
                "note": note}  # fmt: skip
    return {"task": task, "source": source, "metric": metric, "eval_task": eval_task,
            "value": est.effect, "ci_low": est.low, "ci_high": est.high, "level": est.level,
            "n_examples": est.n_examples, "n_seeds": est.n_seeds, "method": est.method,
            "note": note}  # fmt: skip


def _pooled(x: dict, source: str, task: str, others: list[str]) -> np.ndarray | None:
    """A source's scores on every forgetting task side by side (one example axis)."""
    parts = [x.get((source, "" if source == "base" else task, t)) for t in others]
    if not parts or any(p is None for p in parts):
        return None
    seeds = {p.shape[0] for p in parts}
    if len(seeds) > 1:
        raise ValueError(f"{source}/{task}: forgetting tasks were scored with different seeds")
    return np.concatenate(parts, axis=1)


def spearman(x: dict, fam: dict, task: str, sources: list[str], resamples: int, seed: int):
    """Spearman rho over the runs of `task` between their source's mean per-example perplexity
    (training questions) and their in-task accuracy (test questions), with a bootstrap over
    seeds, training questions and test questions (each shared by every source: paired)."""
    have = [s for s in sources if (s, task, task) in x and (s, task) in fam]
    if len(have) < 2:
        return None
    acc = {s: x[(s, task, task)] for s in have}
    ppl = {s: np.exp(-fam[(s, task)]["logprob_mean"].to_numpy(float)) for s in have}
    n_seeds = min(a.shape[0] for a in acc.values())
    sizes = {"seeds": n_seeds, "train": min(len(p) for p in ppl.values()),
             "test": min(a.shape[1] for a in acc.values())}  # fmt: skip

    def rho(seeds, train, test):
        xs, ys = [], []
        for s in have:
            for i in seeds:
                xs.append(ppl[s][train].mean())
                ys.append(acc[s][i, test].mean())
        if np.ptp(xs) == 0 or np.ptp(ys) == 0:
            return math.nan
        return spearmanr(xs, ys).statistic

    return stats.statistic_ci(rho, sizes, resamples=resamples, seed=seed)


def summarize(
    evals: list[pd.DataFrame],
    familiarity_frames: list[pd.DataFrame],
    question_frames: list[pd.DataFrame],
    student: str,
    tasks: list[str],
    forgetting_tasks: list[str],
    mode: str,
    resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Rows of the "response_source" table (see the module docstring)."""
    x, fam = scores(evals, student, mode), nll(familiarity_frames)
    questions = {f["task"].iloc[0]: f for f in question_frames if len(f)}
    sources = [s for s in SOURCES if any(k[0] == s for k in x) or any(k[0] == s for k in fam)]
    boot = {"resamples": resamples, "seed": seed}
    rows = []
    for task in tasks:
        others = [t for t in forgetting_tasks if t != task]
        q = questions.get(task)
        if q is not None:
            dropped = q.loc[~q["kept"], "missing"].str.split(",").explode().value_counts()
            note = f"kept of {len(q)} train questions; dropped: " + (
                ", ".join(f"{s} lacks {n}" for s, n in dropped.items()) or "none")  # fmt: skip
            rows.append(_row(task, POOLED, "examples", "", value=int(q["kept"].sum()),
                             n=int(q["kept"].sum()), note=note))  # fmt: skip
        for source in ("base", *sources):
            key = (source, "" if source == "base" else task, task)
            if key in x:
                rows.append(_row(task, source, "accuracy", task, stats.mean_ci(x[key], **boot)))
            if (
                source != "base"
                and source != REFERENCE
                and key in x
                and (REFERENCE, task, task) in x
            ):
                est = stats.paired_bootstrap(x[key], x[(REFERENCE, task, task)], **boot)
                rows.append(_row(task, source, "accuracy_vs_gold", task, est))
            if (source, task) in fam:
                f = fam[(source, task)]
                p = familiarity.perplexities(f.reset_index())
                nll_ = -f["logprob_mean"].to_numpy(float)[None, :]
                rows.append(_row(task, source, "nll_per_token", "", stats.mean_ci(nll_, **boot),
                                 note=f"under {student} before fine-tuning"))  # fmt: skip
                rows.append(_row(task, source, "mean_perplexity", "",
                                 stats.mean_ci(np.exp(nll_), **boot),
                                 note="mean over examples of exp(mean NLL per token)"))  # fmt: skip
                rows.append(_row(task, source, "corpus_perplexity", "",
                                 value=p["corpus_perplexity"], n=p["examples"],
                                 note="exp(total NLL / total tokens); point value"))  # fmt: skip
                tokens = f["completion_tokens"].to_numpy(float)[None, :]
                rows.append(_row(task, source, "completion_tokens", "",
                                 stats.mean_ci(tokens, **boot), note="EOS included"))  # fmt: skip
                if source == REWRITE:
                    n_fb = int((f["source"] == "gold_fallback").sum())
                    rows.append(_row(task, source, "rewrite_fallbacks", "", value=n_fb, n=len(f),
                                     note="rewrites that failed; their gold text was used"))  # fmt: skip
                if source != REFERENCE and (REFERENCE, task) in fam:
                    gold = fam[(REFERENCE, task)]
                    note = "gold - source NLL per token, paired per example"
                    if source == "teacher":
                        note += "; the style-contrast gate (claims: style_contrast_gate)"
                    rows.append(_row(task, source, "nll_gap_vs_gold", "",
                                     _nll_gap(gold, f, **boot), note=note))  # fmt: skip
        for source in ("base", *sources):
            for t in others:
                key = (source, "" if source == "base" else task, t)
                if key in x:
                    rows.append(_row(task, source, "accuracy", t, stats.mean_ci(x[key], **boot)))
                base = x.get(("base", "", t))
                if source != "base" and key in x and base is not None:
                    est = stats.paired_bootstrap(base, x[key], **boot)
                    rows.append(_row(task, source, "forgetting", t, est,
                                     note="base accuracy - run accuracy"))  # fmt: skip
            pooled, base = _pooled(x, source, task, others), _pooled(x, "base", task, others)
            if source != "base" and pooled is not None and base is not None:
                est = stats.paired_bootstrap(base, pooled, **boot)
                rows.append(_row(task, source, "forgetting", POOLED, est,
                                 note=f"pooled over {others}"))  # fmt: skip
                gold = _pooled(x, REFERENCE, task, others)
                if source != REFERENCE and gold is not None:
                    est = stats.paired_bootstrap(pooled, gold, **boot)
                    rows.append(_row(task, source, "forgetting_vs_gold", POOLED, est,
                                     note="forgetting(gold) - forgetting(source)"))  # fmt: skip
        est = spearman(x, fam, task, sources, **boot)
        if est is not None:
            rows.append(_row(task, POOLED, "spearman", task, est,
                             note="runs: source's mean per-example perplexity vs accuracy"))  # fmt: skip
    out = pd.DataFrame(rows, columns=SCHEMA.names)
    rank = {s: i for i, s in enumerate((*ORDER, POOLED))}
    out["_r"] = out["source"].map(lambda s: rank.get(s, len(rank)))
    out = out.sort_values(["task", "metric", "eval_task", "_r"], kind="stable")
    return out.drop(columns="_r").reset_index(drop=True)


# --- claims -------------------------------------------------------------------------------------


def _metric(table: pd.DataFrame, task, source, metric, eval_task=None) -> pd.Series | None:
    sel = (table["task"] == task) & (table["source"] == source) & (table["metric"] == metric)
    if eval_task is not None:
        sel &= table["eval_task"] == eval_task
    got = table[sel]
    return None if got.empty else got.iloc[0]


def claim_rows(
    evals: list[pd.DataFrame],
    familiarity_frames: list[pd.DataFrame],
    table: pd.DataFrame,
    student: str,
    tasks: list[str],
    forgetting_tasks: list[str],
    mode: str,
    resamples: int,
    seed: int,
) -> list[dict]:
    """The four headline claims per task, Holm-corrected, then the style-contrast gate.

    The gate is the gold - teacher NLL-per-token gap under the base student: when its 95%
    interval contains 0, the human-style gold is not measurably less familiar than the teacher's
    responses, so this run cannot test what the paper tests: the accuracy and forgetting claims
    become not_tested (their numbers kept) and the gate row says why. The gate row is written
    after the Holm correction and is not part of its family.
    """
    x, fam = scores(evals, student, mode), nll(familiarity_frames)
    boot = {"resamples": resamples, "seed": seed}
    rows, gates = [], {}
    for task in tasks:
        others = [t for t in forgetting_tasks if t != task]
        models = lambda *s, task=task: [f"{STUDY}/{v}/{task}" for v in s]  # noqa: E731
        tok = {s: _metric(table, task, s, "completion_tokens") for s in SOURCES}
        length = ", ".join(f"{s} {r['value']:.1f}" for s, r in tok.items() if r is not None)
        for cid, source in (("teacher_gt_gold", "teacher"), ("rewrite_gt_gold", REWRITE)):
            a, b = x.get((source, task, task)), x.get((REFERENCE, task, task))
            if a is None or b is None:
                rows.append(claims.not_tested_row(STUDY, CLAIMS[cid], task, f"Not tested: no "
                            f"{source if a is None else REFERENCE} runs of {task} in this run.",
                            models(source, REFERENCE)))  # fmt: skip
                continue
            r = claims.row(STUDY, CLAIMS[cid], task, stats.paired_bootstrap(a, b, **boot),
                           models(source, REFERENCE))  # fmt: skip
            r["reason"] += f" Length control, mean completion tokens: {length}."
            fb = _metric(table, task, REWRITE, "rewrite_fallbacks")
            if source == REWRITE and fb is not None and fb["value"] > 0:
                r["reason"] += (f" {int(fb['value'])} of {int(fb['n_examples'])} rewrites failed "
                                "and kept their gold text.")  # fmt: skip
            rows.append(r)
        gold, teacher = fam.get((REFERENCE, task)), fam.get(("teacher", task))
        if gold is None or teacher is None:
            rows.append(claims.not_tested_row(STUDY, CLAIMS["teacher_more_familiar"], task,
                        "Not tested: gold and teacher familiarity are both needed.",
                        models("teacher", REFERENCE)))  # fmt: skip
        else:
            gap = _nll_gap(gold, teacher, **boot)
            gates[task] = gap
            rows.append(claims.row(STUDY, CLAIMS["teacher_more_familiar"], task, gap,
                                   [student, *models("teacher", REFERENCE)]))  # fmt: skip
        a, b = _pooled(x, "teacher", task, others), _pooled(x, REFERENCE, task, others)
        if not others or a is None or b is None:
            why = "no forgetting task (another task the student knows)" if not others else (
                "no teacher or gold evaluations on the forgetting tasks")  # fmt: skip
            rows.append(claims.not_tested_row(STUDY, CLAIMS["teacher_less_forgetting"], task,
                        f"Not tested: {why}.", models("teacher", REFERENCE)))  # fmt: skip
        else:
            r = claims.row(STUDY, CLAIMS["teacher_less_forgetting"], task,
                           stats.paired_bootstrap(a, b, **boot), models("teacher", REFERENCE))  # fmt: skip
            r["reason"] += f" Pooled over {others} ({mode} mode)."
            rows.append(r)
    rows = claims.with_holm(rows) if rows else rows
    out = []
    for r in rows:
        gap = gates.get(r["task"])
        failed = gap is None or not _gate_passes(gap)
        if r["claim"] in GATED and failed and r["verdict"] != "not_tested":
            why = ("no gold-vs-teacher familiarity was measured" if gap is None else
                   f"the gold - teacher NLL/token gap, {_iv(gap)}, contains 0")  # fmt: skip
            r = {**r, "verdict": "not_tested", "reason": (
                f"Not tested: the style-contrast gate failed ({why}): the gold responses are not "
                "measurably less familiar to the student than the teacher's, so this run does not "
                f"test the paper's claim. Measured: {r['reason']}")}  # fmt: skip
        out.append(r)
    for task, gap in gates.items():
        out.append(gate_row(task, gap, student))
    return out
