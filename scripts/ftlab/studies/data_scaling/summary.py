"""The data_scaling study's result: error vs N split by kind, power-law fits, the claims (the
plot: plots.py).

Every evaluated test example of a run is one of (`error_split`):

* correct          the parsed answer is right;
* format_error     no answer could be parsed (the eval table's parse_ok is false);
* reasoning_error  a well-formed answer that is wrong.

Per task x test mode x N the table has the rate of the total error and of each kind over seeds x
test examples, with a cluster-bootstrap 95% interval, and per curve (task x mode x kind) the fits
of fit.py: the power law err = a N^-b with bootstrap intervals of a, b and the band of its
prediction, the offset power law (a, b, c; c's interval), AIC of the three models, and the
held-out error at the largest N of the power law fitted to the smaller ones. The untrained
student is N = 0 (a reference, in no fit).

Claims (Raghavendra et al. 2024), per task, in the `mode` the study reads (default cot, the format
it trains):

* power_law_exponent: b > 0 for the total error, from the bootstrap interval of b;
* reasoning_keeps_improving: b > 0 for the reasoning error over the Ns where the format error is
  at most `format_threshold` (not tested with fewer than 3 such Ns).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from ftlab import claims, runs, stats, tables

from . import STUDY, parse_variant
from . import fit as F

KINDS = ("correct", "format_error", "reasoning_error")  # what each evaluated example is
CURVES = ("error", "format_error", "reasoning_error")  # what is fitted: error = the other two
LEVEL = 0.95
_f = pa.float64()
# one row per task x mode x curve x N (N = 0: the base student): rate, interval, the curve's fits
SCHEMA = tables.register(
    "data_scaling",
    pa.schema(
        [
            ("task", pa.string()),
            ("mode", pa.string()),
            ("kind", pa.string()),
            ("n", pa.int64()),
            ("seeds", pa.int64()),
            ("examples", pa.int64()),
            ("rate", _f),
            ("ci_low", _f),
            ("ci_high", _f),
            ("seed_rates", pa.list_(_f)),
            ("fit_rate", _f),  # the power law at n, and its 95% bootstrap band
            ("fit_low", _f),
            ("fit_high", _f),
            ("a", _f),
            ("a_low", _f),
            ("a_high", _f),
            ("b", _f),
            ("b_low", _f),
            ("b_high", _f),
            ("r2", _f),
            ("offset_a", _f),  # err = a N^-b + c
            ("offset_b", _f),
            ("offset_c", _f),
            ("offset_c_low", _f),
            ("offset_c_high", _f),
            ("aic_power_law", _f),
            ("aic_power_law_offset", _f),
            ("aic_plateau", _f),
            ("best_model", pa.string()),  # lowest AIC
            ("holdout_n", pa.int64()),  # the largest N, predicted from the smaller ones
            ("holdout_predicted", _f),
            ("holdout_observed", _f),
            ("holdout_abs_log_error", _f),
        ]
    ),
)


def claim_defs(mode: str, threshold: float) -> dict[str, claims.Claim]:
    return {
        "power_law_exponent": claims.Claim(
            "power_law_exponent",
            "Test error falls as a power law in the number N of fine-tuning examples "
            "(b > 0 in err = a N^-b)",
            f"b of err(N) = a N^-b, {mode} test error",
            "greater",
            unit="exponent",
        ),
        "reasoning_keeps_improving": claims.Claim(
            "reasoning_keeps_improving",
            "Reasoning error keeps falling with N once the answer format is learned",
            f"b of reasoning err(N) = a N^-b over the N with {mode} format error <= {threshold:g}",
            "greater",
            unit="exponent",
        ),
    }


def run_cell(run: str, student: str) -> tuple[int, int]:
    """(N, seed) of a data_scaling run; (0, 0) for the base student."""
    if run == student:
        return 0, 0
    parsed = runs.parse(run)
    n = parse_variant(parsed.variant) if parsed and parsed.study == STUDY else None
    if n is None:
        raise ValueError(
            f"eval run {run!r} is neither the student {student!r} nor {STUDY}/n<N>/<task>/seed<s>"
        )
    return n, parsed.seed


def error_split(evals: list[pd.DataFrame], student: str) -> pd.DataFrame:
    """One row per run x mode x example: task, mode, n, seed, example_id, kind (KINDS)."""
    frames = []
    for ev in evals:
        for run, part in ev.groupby("run", sort=False):
            n, seed = run_cell(run, student)
            kind = np.where(
                part["correct"],
                "correct",
                np.where(part["parse_ok"], "reasoning_error", "format_error"),
            )
            frames.append(
                pd.DataFrame(
                    {
                        "task": part["task"].to_numpy(),
                        "mode": part["mode"].to_numpy(),
                        "run": run,
                        "n": n,
                        "seed": seed,
                        "example_id": part["example_id"].to_numpy(),
                        "kind": kind,
                    }
                )
            )
    cols = ["task", "mode", "run", "n", "seed", "example_id", "kind"]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    if out.duplicated(["task", "mode", "n", "seed", "example_id"]).any():
        raise ValueError("an example was scored twice for one task x mode x N x seed")
    for (task, mode), part in out.groupby(["task", "mode"]):
        sets = part.groupby(["n", "seed"])["example_id"].apply(frozenset)
        if sets.nunique() > 1:
            raise ValueError(
                f"{task}/{mode}: runs were scored on different test questions "
                f"(example counts per (N, seed): {part.groupby(['n', 'seed']).size().to_dict()})"
            )
    return out[cols]


def curve_frame(split: pd.DataFrame, kind: str) -> pd.DataFrame:
    """fit.py's (n, seed, example_id, error) rows of one task x mode, fine-tuned runs only."""
    runs_ = split[split["n"] > 0]
    err = runs_["kind"] != "correct" if kind == "error" else runs_["kind"] == kind
    return runs_[["n", "seed", "example_id"]].assign(error=err.to_numpy(dtype=float))


def _scores(frame: pd.DataFrame) -> np.ndarray:
    """(seeds, examples) of one N's 0/1 errors, examples in one order."""
    return frame.pivot(index="seed", columns="example_id", values="error").to_numpy(float)


def _interval(draws: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanquantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(lo), float(hi)


def curve_fits(frame: pd.DataFrame, resamples: int, seed: int) -> dict:
    """The fit columns of one curve (NaN where fewer than 3 N were run)."""
    nan = math.nan
    out = {c: nan for c in SCHEMA.names[10:] if c not in ("best_model", "holdout_n")}
    out |= {"best_model": None, "holdout_n": None, "_boot": None}
    if frame["n"].nunique() < F.MIN_POINTS:
        return out
    boot = F.bootstrap(frame, model="power_law", resamples=resamples, seed=seed)
    means = frame.groupby("n")["error"].mean()
    ns, err = means.index.to_numpy(float), means.to_numpy()
    fits = {m: F.fit(ns, err, m, floor=boot.floor) for m in F.MODELS}
    offset = F.bootstrap(frame, model="power_law_offset", resamples=resamples, seed=seed)
    out |= {
        "a": boot.point.params["a"],
        "b": boot.point.params["b"],
        "r2": boot.point.r2,
        "offset_a": offset.point.params["a"],
        "offset_b": offset.point.params["b"],
        "offset_c": offset.point.params["c"],
        "best_model": min(fits, key=lambda m: fits[m].aic),
        "_boot": boot,
    }
    out["a_low"], out["a_high"] = _interval(boot.draws[:, 0])
    out["b_low"], out["b_high"] = _interval(boot.draws[:, 1])
    out["offset_c_low"], out["offset_c_high"] = _interval(offset.draws[:, 2])
    out |= {f"aic_{m}": fits[m].aic for m in F.MODELS}
    if np.unique(ns).size > F.MIN_POINTS:  # the smaller Ns alone still make a fit
        h = F.holdout_error(ns, err, "power_law", floor=boot.floor)
        out |= {
            "holdout_n": int(h.n),
            "holdout_predicted": h.predicted,
            "holdout_observed": h.observed,
            "holdout_abs_log_error": h.abs_log_error,
        }
    return out


def _summarize(split: pd.DataFrame, resamples: int, seed: int):
    """(table rows, {(task, mode, kind): fit columns incl. the power-law Bootstrap})."""
    rows, fits = [], {}
    for (task, mode), part in split.groupby(["task", "mode"], sort=True):
        for kind in CURVES:
            frame = curve_frame(part, kind)
            fits[(task, mode, kind)] = f = curve_fits(frame, resamples, seed)
            boot = f["_boot"]
            base = part[part["n"] == 0]
            cells = []
            if not base.empty:
                err = base["kind"] != "correct" if kind == "error" else base["kind"] == kind
                cells.append((0, base.assign(error=err.to_numpy(float))))
            cells += list(frame.groupby("n"))
            for n, cell in cells:
                x = _scores(cell)
                est = stats.mean_ci(x, resamples=resamples, seed=seed, level=LEVEL)
                row = {
                    "task": task,
                    "mode": mode,
                    "kind": kind,
                    "n": int(n),
                    "seeds": x.shape[0],
                    "examples": x.shape[1],
                    "rate": est.effect,
                    "ci_low": est.low,
                    "ci_high": est.high,
                    "seed_rates": x.mean(axis=1).tolist(),
                }
                if n == 0:  # the base student: a reference, in no fit
                    rows.append(row)
                    continue
                row |= {k: v for k, v in f.items() if not k.startswith("_")}
                if boot is not None:
                    lo, hi = boot.band([n], LEVEL)
                    row |= {
                        "fit_rate": float(boot.point.predict(n)),
                        "fit_low": float(lo[0]),
                        "fit_high": float(hi[0]),
                    }
                rows.append(row)
    return rows, fits


def summarize(
    evals: list[pd.DataFrame], student: str, resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Rows of the "data_scaling" table from per-run eval tables (schema "eval")."""
    rows, _ = _summarize(error_split(evals, student), resamples, seed)
    out = pd.DataFrame(rows, columns=SCHEMA.names)
    rank = {m: i for i, m in enumerate(("cot", "direct"))}
    keys = out.assign(
        m=out["mode"].map(lambda m: rank.get(m, len(rank))), k=out["kind"].map(CURVES.index)
    )
    order = keys.sort_values(["task", "m", "k", "n"], kind="stable").index
    return out.loc[order].reset_index(drop=True).astype({"holdout_n": "Int64"})


def _models(task: str, ns, seeds) -> str:
    def alts(values):
        values = sorted(set(int(v) for v in values))
        return str(values[0]) if len(values) == 1 else "{" + ",".join(map(str, values)) + "}"

    return f"{STUDY}/n{alts(ns)}/{task}/seed{alts(seeds)}"


def _estimate(boot: F.Bootstrap, method: str) -> stats.Estimate:
    low, high = _interval(boot.draws[:, 1])
    return stats.Estimate(
        boot.point.params["b"], low, high, boot.n_examples, boot.n_seeds,
        boot.p_value("b"), method, LEVEL,
    )  # fmt: skip


def _method(ns, resamples: int) -> str:
    ns = sorted(int(n) for n in ns)
    return (
        f"power law err = a N^-b, log-space least squares over N = {', '.join(map(str, ns))}; "
        f"cluster bootstrap (seeds x examples, {resamples} resamples), percentile interval of b"
    )


def claim_rows(
    evals: list[pd.DataFrame],
    student: str,
    mode: str = "cot",
    format_threshold: float = 0.02,
    resamples: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """One claims row per claim x task (study data_scaling), Holm-corrected across the study."""
    split = error_split(evals, student)
    split = split[split["n"] > 0]
    defs = claim_defs(mode, format_threshold)
    rows, notes = [], []
    for task in sorted(split["task"].unique()):
        part = split[(split["task"] == task) & (split["mode"] == mode)]
        ns = sorted(part["n"].unique())
        models = _models(task, ns, part["seed"]) if len(part) else ""
        # power_law_exponent: the total error
        claim = defs["power_law_exponent"]
        if len(ns) < F.MIN_POINTS:
            why = f"no {mode} evaluation" if not ns else f"only {len(ns)} sizes (N = {ns})"
            rows.append(claims.not_tested_row(STUDY, claim, task,
                        f"Not tested: {why}; a power-law fit needs at least {F.MIN_POINTS}.", models))  # fmt: skip
            notes.append("")
        else:
            frame = curve_frame(part, "error")
            boot = F.bootstrap(frame, model="power_law", resamples=resamples, seed=seed)
            means = frame.groupby("n")["error"].mean()
            plateau = F.fit(means.index, means.to_numpy(), "plateau", floor=boot.floor)
            note = (
                f" Fit: R^2 {boot.point.r2:.2f}; AIC {boot.point.aic:.1f} vs {plateau.aic:.1f} "
                "for a plateau"
            )
            if not np.isfinite(boot.point.r2):  # no variation: R^2 and AIC say nothing
                note = f" Fit: the error is {means.iloc[0]:.3f} at every N"
            elif len(ns) > F.MIN_POINTS:
                h = F.holdout_error(means.index, means.to_numpy(), floor=boot.floor)
                note += (
                    f"; N={int(h.n)} from the smaller N: predicted {h.predicted:.3f}, "
                    f"observed {h.observed:.3f}"
                )
            rows.append(claims.row(STUDY, claim, task, _estimate(boot, _method(ns, resamples)), models))  # fmt: skip
            notes.append(note + ".")
        # reasoning_keeps_improving: the reasoning error where the format error is ~0
        claim = defs["reasoning_keeps_improving"]
        rates = F.by_error_type(part[["n", "kind"]]) if len(part) else None
        learned = None
        if rates is not None and len(ns) >= F.MIN_POINTS:
            wide = rates.pivot(index="n", columns="kind", values="rate")
            learned = [int(n) for n in wide.index[wide["format_error"] <= format_threshold]]
        if learned is None or len(learned) < F.MIN_POINTS:
            if rates is None or len(ns) < F.MIN_POINTS:
                why = f"no {mode} evaluation" if not ns else f"only {len(ns)} sizes (N = {ns})"
            else:
                fmt = ", ".join(f"N={int(n)}: {r:.3f}" for n, r in wide["format_error"].items())
                where = f"{len(learned)} sizes only" if learned else "no size"
                why = f"the format error is <= {format_threshold:g} at {where} ({fmt})"
            rows.append(claims.not_tested_row(STUDY, claim, task,
                        f"Not tested: {why}; a fit needs at least {F.MIN_POINTS}.", models))  # fmt: skip
            notes.append("")
            continue
        frame = curve_frame(part[part["n"].isin(learned)], "reasoning_error")
        boot = F.bootstrap(frame, model="power_law", resamples=resamples, seed=seed)
        rows.append(claims.row(STUDY, claim, task, _estimate(boot, _method(learned, resamples)),
                               _models(task, learned, part["seed"])))  # fmt: skip
        notes.append(f" Fit: R^2 {boot.point.r2:.2f} over N = {learned}.")
    rows = claims.with_holm(rows) if rows else rows
    return [{**r, "reason": r["reason"] + note} for r, note in zip(rows, notes, strict=True)]
