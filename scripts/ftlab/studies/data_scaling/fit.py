"""How fine-tuned error falls with the number of training examples N (the data_scaling study).

Raghavendra, Nath & Hendryx (2024) claim post-training error is a power law in N and keeps
falling after the answer format is learned. This module fits that claim and its alternatives to
the mean error per N, with a bootstrap over seeds and evaluation examples for the uncertainty:

* `power_law`          err = a * N**-b         (2 parameters; b may come out negative)
* `power_law_offset`   err = a * N**-b + c     (3; a, b >= 0, c in [0, min err): the error
                                                more data cannot remove)
* `plateau`            err = c                 (1; the null: N does not matter)

Fits are least squares in log space (residual log err_hat - log err): the rates span decades
and a power law is a straight line there, so the small errors at large N, where the claim is
decided, weigh as much as the large ones at small N. Rates are clipped to a `floor` first,
because a run with no errors would otherwise give log(0). Half of one error among the rows
pooled at an N is the natural floor: `bootstrap_fit` uses 1 / (2 * seeds * examples) by default
(below any rate it can observe, so only true zeros move); `fit` takes it as an argument.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

MODELS = ("power_law", "power_law_offset", "plateau")
PARAMS = {"power_law": ("a", "b"), "power_law_offset": ("a", "b", "c"), "plateau": ("c",)}
KINDS = ("correct", "format_error", "reasoning_error")
MIN_POINTS = 3  # distinct N: two points fit any 2-parameter curve exactly and test nothing
_B_MAX = 10.0  # power_law_offset: b beyond this means the error is gone within one doubling
_LOG_A_MAX = 30.0  # power_law_offset: |log a| bound, so a flat curve cannot drive a to 0 forever
_C_GRID = np.linspace(0.0, 0.95, 20)  # power_law_offset: starting c as fractions of min err


def power_law(n, a, b):
    """Error falling as a power of N: a straight line of slope -b on log-log axes."""
    return a * np.asarray(n, dtype=float) ** -b


def power_law_offset(n, a, b, c):
    """A power law that levels off at c, the error that more examples do not remove."""
    return power_law(n, a, b) + c


def plateau(n, c):
    """The alternative: error does not depend on N (fine-tuning only taught the format)."""
    return np.full(np.shape(n), float(c))


_CURVES = {"power_law": power_law, "power_law_offset": power_law_offset, "plateau": plateau}


@dataclass(frozen=True)
class FitResult:
    model: str
    params: dict[str, float]
    r2: float  # in log space; 0 for the plateau by construction, nan if all errors are equal
    aic: float  # n*log(RSS/n) + 2k, Gaussian log-likelihood of the log residuals
    n_points: int
    converged: bool

    def predict(self, n):
        """Predicted error at N (not clipped to the floor)."""
        return _CURVES[self.model](n, **self.params)


def _prepare(n, err, model, floor):
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    n, err = np.asarray(n, dtype=float).ravel(), np.asarray(err, dtype=float).ravel()
    if n.shape != err.shape:
        raise ValueError(f"n and err differ in length: {n.size} vs {err.size}")
    if np.unique(n).size < MIN_POINTS:
        raise ValueError(
            f"a {model} fit needs at least {MIN_POINTS} distinct N; got {np.unique(n).size}"
        )
    if not floor > 0 or (n <= 0).any() or not np.isfinite(err).all():
        raise ValueError("need floor > 0, every N > 0 and finite errors")
    return np.log(n), np.log(np.clip(err, floor, None))


def _loglinear(x, Y):
    """Least squares of log err = log a - b log N for every row of Y at once (closed form)."""
    xc = x - x.mean()
    slope = (Y - Y.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    return Y.mean(axis=1) - slope * x.mean(), 0.0 - slope  # 0.0 - 0.0 is +0.0


def _offset_residuals(p, x, y):
    return np.log(np.exp(p[0] - p[1] * x) + p[2]) - y


def _offset_jacobian(p, x, y):
    t = np.exp(p[0] - p[1] * x)
    pred = t + p[2]
    return np.column_stack([t / pred, -x * t / pred, 1.0 / pred])


def _fit_offset(x, Y, warm=None):
    """Bounded least squares on (log a, b, c) for every row of Y. The surface is flat along c
    when b is small, so starts come from a grid of c (a log-linear fit of err - c at each,
    vectorised over rows) and the 3 cheapest go to scipy. With `warm` (bootstrap replicates)
    only the cheapest start, warm included, is polished, capped at 50 evaluations: on flat data
    a few replicates crawl along a ridge of equal cost for hundreds of evaluations."""
    polish, max_nfev = (3, None) if warm is None else (1, 50)
    c_max = np.exp(Y.min(axis=1)) * (1 - 1e-9)
    C = c_max[:, None] * _C_GRID
    la, b = _loglinear(x, np.log(np.exp(Y)[:, None, :] - C[..., None]).reshape(-1, x.size))
    S = np.stack([la.reshape(C.shape), b.reshape(C.shape), C], axis=-1)
    if warm is not None:
        w = np.broadcast_to([np.log(warm[0]), warm[1], warm[2]], (len(Y), 1, 3))
        S = np.concatenate([S, w], axis=1)
    lb = np.array([-_LOG_A_MAX, 0.0, 0.0])
    ub = np.column_stack([np.full((len(Y), 2), [_LOG_A_MAX, _B_MAX]), c_max])
    S = np.clip(S, lb, ub[:, None, :])
    cost = ((np.log(np.exp(S[..., :1] - S[..., 1:2] * x) + S[..., 2:]) - Y[:, None]) ** 2).sum(-1)
    P, ok = np.empty((len(Y), 3)), np.zeros(len(Y), dtype=bool)
    for r, y in enumerate(Y):
        best, opts = None, {"args": (x, y), "max_nfev": max_nfev}
        for j in np.argsort(cost[r], kind="stable")[:polish]:
            res = least_squares(_offset_residuals, S[r, j], _offset_jacobian, (lb, ub[r]), **opts)
            if best is None or res.cost < best.cost:
                best = res
        P[r], ok[r] = [np.exp(best.x[0]), best.x[1], best.x[2]], best.success
    return P, ok


def _fit_rows(x, Y, model, warm=None):
    """Fit each row of Y (log errors at log N = x): params (R, k), r2, aic, converged."""
    if model == "plateau":
        m = Y.mean(axis=1)  # the geometric mean is the log-space least squares constant
        P, Yhat, ok = np.exp(m)[:, None], np.repeat(m[:, None], Y.shape[1], 1), np.isfinite(m)
    elif model == "power_law":
        la, b = _loglinear(x, Y)
        P, Yhat = np.column_stack([np.exp(la), b]), la[:, None] - b[:, None] * x
        ok = np.isfinite(P).all(axis=1)
    else:
        P, ok = _fit_offset(x, Y, warm)
        Yhat = np.log(P[:, :1] * np.exp(-P[:, 1:2] * x) + P[:, 2:])
    rss = ((Yhat - Y) ** 2).sum(axis=1)
    tss = ((Y - Y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(tss > 0, 1 - rss / tss, np.nan)
    aic = x.size * np.log(np.maximum(rss / x.size, np.finfo(float).tiny)) + 2 * P.shape[1]
    return P, r2, aic, ok


def fit(n, err, model="power_law", *, floor=1e-3):
    """Fit one model to mean error per N in log space; errors below `floor` count as `floor`."""
    x, y = _prepare(n, err, model, floor)
    P, r2, aic, ok = _fit_rows(x, y[None], model)
    params = {k: float(v) for k, v in zip(PARAMS[model], P[0], strict=True)}
    return FitResult(model, params, float(r2[0]), float(aic[0]), int(y.size), bool(ok[0]))


def _cube(frame):
    """Errors as an (N, seed, example) array, with a mask of the cells that were evaluated."""
    missing = {"n", "seed", "example_id", "error"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}")
    if frame.duplicated(["n", "seed", "example_id"]).any():
        raise ValueError("frame must hold one row per (n, seed, example_id)")
    ni, ns = pd.factorize(frame["n"], sort=True)
    si, seeds = pd.factorize(frame["seed"], sort=True)
    ei, examples = pd.factorize(frame["example_id"], sort=True)
    Y = np.zeros((len(ns), len(seeds), len(examples)))
    M = np.zeros_like(Y)
    Y[ni, si, ei], M[ni, si, ei] = frame["error"].to_numpy(dtype=float), 1.0
    return np.asarray(ns, dtype=float), Y, M


@dataclass(frozen=True)
class Bootstrap:
    """A fit to the pooled mean error per N and its bootstrap replicates."""

    point: FitResult
    draws: np.ndarray  # (replicates, k): the model's parameters, in PARAMS order
    r2: np.ndarray  # (replicates,)
    converged: np.ndarray  # (replicates,) bool
    floor: float
    n_seeds: int
    n_examples: int

    def band(self, n, level=0.95):
        """(lo, hi) of the predicted error at each N over the replicates (percentile)."""
        n = np.asarray(n, dtype=float)
        preds = np.stack([_CURVES[self.point.model](n, *p) for p in self.draws])
        alpha = (1 - level) / 2
        lo, hi = np.nanquantile(preds, [alpha, 1 - alpha], axis=0)
        return lo, hi

    def p_value(self, param="b", null=0.0):
        """Two-sided bootstrap p for param != null, +1-corrected so it is never exactly 0."""
        x = self.draws[:, PARAMS[self.point.model].index(param)]
        below = (np.sum(x <= null) + 1) / (len(x) + 1)
        above = (np.sum(x >= null) + 1) / (len(x) + 1)
        return float(min(1.0, 2 * min(below, above)))


def bootstrap(frame, *, model="power_law", resamples=1000, seed=0, floor=None) -> Bootstrap:
    """The fit and its replicates from a two-level bootstrap (see `bootstrap_fit`)."""
    ns, Y, M = _cube(frame)
    floor = 0.5 / (Y.shape[1] * Y.shape[2]) if floor is None else floor
    point = fit(ns, Y.sum(axis=(1, 2)) / M.sum(axis=(1, 2)), model, floor=floor)
    rng = np.random.default_rng(seed)
    S, E = Y.shape[1:]
    ws = rng.multinomial(S, np.full(S, 1 / S), size=resamples).astype(float)  # seed draw counts
    we = rng.multinomial(E, np.full(E, 1 / E), size=resamples).astype(float)  # example counts
    num = np.einsum("rs,nse,re->rn", ws, Y, we, optimize=True)
    den = np.einsum("rs,nse,re->rn", ws, M, we, optimize=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = num / den
    err = err[np.isfinite(err).all(axis=1)]  # a replicate that left some N without data
    warm = list(point.params.values())
    P, r2, _, ok = _fit_rows(np.log(ns), np.log(np.clip(err, floor, None)), model, warm)
    return Bootstrap(point, P, r2, ok, float(floor), int(S), int(E))


def bootstrap_fit(frame, *, model="power_law", resamples=1000, seed=0, level=0.95, floor=None):
    """Percentile intervals for the parameters and r2 from a two-level bootstrap.

    Seeds are resampled as clusters (a seed is one nested draw of training sets, shared by all
    N) and examples are resampled once per replicate for every N and seed (paired), so the
    interval carries both the training-draw and the evaluation-set noise. Returns a table
    indexed by param (a, b, c as the model has them, then r2) with the full-data estimate,
    lo, hi, the replicates the interval uses and how many of them converged (replicates cut
    off at the evaluation cap stay in: they sit on a ridge of near-equal cost, and dropping
    them would narrow the interval exactly where the model is least identified).
    """
    boot = bootstrap(frame, model=model, resamples=resamples, seed=seed, floor=floor)
    draws = np.column_stack([boot.draws, boot.r2])
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(draws, [alpha, 1 - alpha], axis=0)
    names = [*PARAMS[model], "r2"]
    table = pd.DataFrame(
        {"estimate": [*boot.point.params.values(), boot.point.r2], "lo": lo, "hi": hi},
        index=pd.Index(names, name="param"),
    )
    return table.assign(
        model=model, level=level, resamples=len(boot.draws), converged=int(boot.converged.sum())
    )


def compare_models(n, err, *, floor=1e-3):
    """The three models side by side, best (lowest AIC) first; delta_aic < 2 is a tie."""
    fits = [asdict(fit(n, err, m, floor=floor)) for m in MODELS]
    table = pd.DataFrame(fits)[["model", "params", "aic", "r2", "converged"]]
    table.insert(3, "delta_aic", table["aic"] - table["aic"].min())
    return table.sort_values("aic", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Holdout:
    n: float  # the held-out (largest) N
    predicted: float
    observed: float
    abs_log_error: float  # |log predicted - log max(observed, floor)|
    abs_error: float  # |predicted - observed|, in error-rate units
    fit: FitResult


def holdout_error(n, err, model="power_law", *, floor=1e-3):
    """Extrapolation test: fit on all but the largest N and predict it."""
    n, err = np.asarray(n, dtype=float).ravel(), np.asarray(err, dtype=float).ravel()
    last = n == n.max()
    kept = np.unique(n[~last]).size
    if kept < MIN_POINTS:
        raise ValueError(
            f"holdout_error needs at least {MIN_POINTS} distinct N to fit besides the largest; "
            f"got {kept} ({kept + 1} points in total)"
        )
    result = fit(n[~last], err[~last], model, floor=floor)
    predicted, observed = float(result.predict(n.max())), float(err[last].mean())
    log_gap = abs(np.log(max(predicted, floor)) - np.log(max(observed, floor)))
    gap = abs(predicted - observed)
    return Holdout(float(n.max()), predicted, observed, float(log_gap), gap, result)


def by_error_type(frame):
    """Rate of each kind per N, seeds and examples pooled; a kind absent at an N is rate 0."""
    unknown = set(frame["kind"].unique()) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; expected {', '.join(KINDS)}")
    dummies = pd.get_dummies(pd.Categorical(frame["kind"], categories=KINDS), dtype=float)
    wide = dummies.groupby(frame["n"].to_numpy()).mean().rename_axis("n")
    long = wide.reset_index().melt(id_vars="n", var_name="kind", value_name="rate")
    return long.sort_values(["n", "kind"], kind="stable").reset_index(drop=True)


def reasoning_after_format(rates, format_threshold=0.02, *, floor=1e-3):
    """Does reasoning error still fall once the format is learned? Returns the Ns where the
    format error is <= threshold and a power-law fit of reasoning error over those Ns only,
    or None when fewer than 3 Ns qualify (too few to say)."""
    wide = rates.pivot(index="n", columns="kind", values="rate")
    ns = wide.index[wide["format_error"] <= format_threshold]
    if len(ns) < MIN_POINTS:
        return None
    result = fit(ns, wide.loc[ns, "reasoning_error"], "power_law", floor=floor)
    return [int(v) for v in ns], result
