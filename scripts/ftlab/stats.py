"""The statistics every study shares, so that no study writes its own.

Scores arrive as 2-D arrays shaped (seeds, examples): one row per training seed (a model with no
seeds is one row), one column per task example, the same examples in the same column order for
every arm. Seeds are clusters: the bootstrap resamples seed rows and example columns, so an
interval reflects both run-to-run and example-to-example variation. Verdicts are decided from
intervals, never from point estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

VERDICTS = ("supported", "contradicted", "equivalent", "inconclusive", "not_tested")
DIRECTIONS = ("greater", "less", "equal")
MIN_N = 20  # fewer examples than this and a percentile bootstrap under-covers: not tested
TOST_LEVEL = 0.90  # TOST at alpha = 0.05 reads the 90% (1 - 2 alpha) interval

BOOTSTRAP = "cluster bootstrap (seeds x examples), percentile"
NEWCOMBE = "Newcombe paired score interval (bootstrap had zero width)"
WILSON = "Wilson score interval (bootstrap had zero width)"
DEGENERATE = "degenerate: zero-width bootstrap, values not 0/1"
EMPTY = "no examples"


@dataclass(frozen=True)
class Estimate:
    """An effect with its interval; `level` is the interval's coverage."""

    effect: float
    low: float
    high: float
    n_examples: int
    n_seeds: int
    p_value: float
    method: str
    level: float = 0.95


def proportion_ci(k: int, n: int, level: float = 0.95, method: str = "wilson"):
    """(low, high) for k successes in n; Wilson or "exact" (Clopper-Pearson).

    Both keep a nonzero width at k = 0 and k = n, where the normal approximation collapses.
    """
    if method not in ("wilson", "exact"):
        raise ValueError(f"method must be 'wilson' or 'exact', not {method!r}")
    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method=method)
    return (float(ci.low), float(ci.high))


def newcombe_paired_ci(both: int, only_a: int, only_b: int, neither: int, level: float = 0.95):
    """(low, high) for p_a - p_b from paired 0/1 outcomes (Newcombe 1998, method 10).

    Built from the Wilson intervals of the two marginal proportions and their correlation, so
    it stays honest when there are no discordant pairs, where a bootstrap has zero width.
    """
    n = both + only_a + only_b + neither
    if n == 0:
        return (math.nan, math.nan)
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    l_a, u_a = proportion_ci(both + only_a, n, level)
    l_b, u_b = proportion_ci(both + only_b, n, level)
    # correlation of the two margins, with Newcombe's shrinkage of a positive one by n / 2
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    cross = both * neither - only_a * only_b
    cross = cross - n / 2 if cross > n / 2 else min(cross, 0)
    phi = cross / math.sqrt(margins) if margins else 0.0
    delta = math.sqrt(
        max(0.0, (p_a - l_a) ** 2 - 2 * phi * (p_a - l_a) * (u_b - p_b) + (u_b - p_b) ** 2)
    )
    epsilon = math.sqrt(
        max(0.0, (u_a - p_a) ** 2 - 2 * phi * (u_a - p_a) * (p_b - l_b) + (p_b - l_b) ** 2)
    )
    diff = p_a - p_b
    return (max(-1.0, diff - delta), min(1.0, diff + epsilon))


def _as_scores(x) -> np.ndarray:
    """(seeds, examples) floats; a 1-D array is one seed."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if x.ndim != 2:
        raise ValueError(f"scores must be shaped (seeds, examples), got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError("scores contain NaN: drop or align unscored examples first")
    return x


def _weights(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """`size` bootstrap draws of n items: each row is the share of draws that hit each item."""
    idx = rng.integers(0, n, size=(size, n)) + np.arange(size)[:, None] * n
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n) / n


def _replicates(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of mean(a) - mean(b): seed rows, then example columns (shared).

    With the same number of seeds, seed i of a stays paired with seed i of b; a single row is
    paired with every seed of the other arm; otherwise each arm's seeds are drawn on their own.
    """
    rng = np.random.default_rng(seed)
    s_a, s_b, e = a.shape[0], b.shape[0], a.shape[1]
    chunk = max(1, 2_000_000 // e)  # bounds memory at a few (chunk x examples) arrays
    out = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        if s_a == s_b or 1 in (s_a, s_b):
            rows = _weights(rng, max(s_a, s_b), size) @ (a - b)
        else:
            rows = _weights(rng, s_a, size) @ a - _weights(rng, s_b, size) @ b
        out.append((rows * _weights(rng, e, size)).sum(axis=1))
    return np.concatenate(out)


def _p_value(reps: np.ndarray, null: float = 0.0) -> float:
    """Two-sided bootstrap p for effect != null, +1-corrected so it is never exactly 0."""
    n = len(reps)
    below = (np.sum(reps <= null) + 1) / (n + 1)
    above = (np.sum(reps >= null) + 1) / (n + 1)
    return float(min(1.0, 2 * min(below, above)))


def _percentile(reps: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _binary(*xs: np.ndarray) -> bool:
    return all(np.isin(x, (0.0, 1.0)).all() for x in xs)


def paired_bootstrap(a, b, *, resamples: int, seed: int, level: float = 0.95) -> Estimate:
    """mean(a) - mean(b) for two arms scored on the same examples, seeds as clusters.

    a and b are (seeds, examples); columns are resampled together (paired), which removes the
    example-difficulty variance both arms share. When the bootstrap has zero width (every
    per-example difference identical) and scores are 0/1, the interval falls back to Newcombe's
    paired score interval on the pooled (seed x example) pairs, with a McNemar exact p-value;
    pooling ignores seed clustering, which is moot there since the pairs agree across seeds.
    For a TOST equivalence test at alpha = 0.05, call with level=TOST_LEVEL (0.90).
    """
    a, b = _as_scores(a), _as_scores(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"arms must share examples: {a.shape[1]} vs {b.shape[1]} columns")
    e, s = a.shape[1], max(a.shape[0], b.shape[0])
    if e == 0 or a.shape[0] == 0 or b.shape[0] == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, s, math.nan, EMPTY, level)
    effect = float(a.mean() - b.mean())
    reps = _replicates(a, b, resamples, seed)
    low, high = _percentile(reps, level)
    p, method = _p_value(reps), BOOTSTRAP
    if high - low <= 1e-12:
        if a.shape[0] == b.shape[0] or 1 in (a.shape[0], b.shape[0]):
            x, y = np.broadcast_arrays(a, b)
        else:  # unpaired seeds: pair the seed-averaged rows (0/1 only if seeds agree)
            x, y = a.mean(axis=0), b.mean(axis=0)
        if _binary(x, y):
            x, y = x.ravel().astype(bool), y.ravel().astype(bool)
            only_a, only_b = int(np.sum(x & ~y)), int(np.sum(~x & y))
            both, neither = int(np.sum(x & y)), int(np.sum(~x & ~y))
            low, high = newcombe_paired_ci(both, only_a, only_b, neither, level)
            discordant = only_a + only_b
            p = float(binomtest(only_a, discordant).pvalue) if discordant else 1.0
            method = NEWCOMBE
        else:
            method = DEGENERATE
    return Estimate(effect, low, high, e, s, p, method, level)


def mean_ci(x, *, resamples: int, seed: int, level: float = 0.95, null: float = 0.0) -> Estimate:
    """Mean of a per-example score over (seeds, examples), with a cluster-bootstrap interval.

    The p-value is the bootstrap p for mean != null. A zero-width bootstrap of 0/1 scores falls
    back to the Wilson interval on the pooled scores.
    """
    x = _as_scores(x)
    s, e = x.shape
    if e == 0 or s == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, s, math.nan, EMPTY, level)
    reps = _replicates(x, np.zeros((1, e)), resamples, seed)
    low, high = _percentile(reps, level)
    method = BOOTSTRAP
    if high - low <= 1e-12:
        if _binary(x):
            low, high = proportion_ci(int(x.sum()), x.size, level)
            method = WILSON
        else:
            method = DEGENERATE
    return Estimate(float(x.mean()), low, high, e, s, _p_value(reps, null), method, level)


def statistic_ci(
    statistic, sizes: dict[str, int], *, resamples: int, seed: int, level: float = 0.95,
    null: float = 0.0,
) -> Estimate:  # fmt: skip
    """Any statistic of clustered data (a correlation, ...) with a percentile bootstrap interval.

    `statistic(**indices)` computes the value from one index array per cluster dimension named in
    `sizes` (e.g. {"seeds": 3, "train": 500, "test": 200}; arms sharing a dimension are resampled
    together, i.e. paired). The estimate is its value on the original indices; each replicate
    draws every dimension with replacement. Replicates where the statistic is undefined (NaN: a
    correlation of a constant) are left out, and the method says how many. n_seeds is the size
    of "seeds" (1 without it), n_examples the largest other dimension.
    """
    rng = np.random.default_rng(seed)
    n_seeds = int(sizes.get("seeds", 1))
    n_examples = max([int(n) for k, n in sizes.items() if k != "seeds"] or [0])
    if any(int(n) == 0 for n in sizes.values()):
        return Estimate(math.nan, math.nan, math.nan, 0, n_seeds, math.nan, EMPTY, level)
    effect = float(statistic(**{k: np.arange(n) for k, n in sizes.items()}))
    reps = np.array(
        [statistic(**{k: rng.integers(0, n, n) for k, n in sizes.items()})
         for _ in range(resamples)], dtype=float,
    )  # fmt: skip
    finite = reps[~np.isnan(reps)]
    method = f"cluster bootstrap ({' x '.join(sizes)}), percentile"
    if len(finite) < resamples:
        method += f"; {resamples - len(finite)} of {resamples} replicates undefined, left out"
    if math.isnan(effect) or len(finite) == 0:
        return Estimate(effect, math.nan, math.nan, n_examples, n_seeds, math.nan, method, level)
    low, high = _percentile(finite, level)
    return Estimate(effect, low, high, n_examples, n_seeds, _p_value(finite, null), method, level)


def tost(low: float, high: float, margin: float) -> bool:
    """Equivalence (TOST at alpha) iff the (1 - 2 alpha) interval lies inside (-margin, margin).

    Pass the 90% interval for alpha = 0.05: paired_bootstrap(..., level=TOST_LEVEL).
    """
    return bool(-margin < low and high < margin)


def equivalent(est: Estimate, margin: float) -> bool:
    """tost() on an Estimate; compute it at level=TOST_LEVEL for the usual alpha = 0.05."""
    return tost(est.low, est.high, margin)


def holm(p_values) -> list[float]:
    """Holm step-down adjusted p-values, in input order; NaN stays NaN and is not counted in m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out.tolist()


def _interval(est: Estimate) -> str:
    return f"{est.level:.0%} interval [{est.low:.3f}, {est.high:.3f}] (effect {est.effect:.3f})"


def verdict(
    est: Estimate, *, direction: str, margin: float | None = None, min_n: int = MIN_N
) -> tuple[str, str]:
    """(verdict, reason) for a claim that the effect is > 0, < 0, or about 0 ("equal").

    Decided from the interval only. "equal" needs a margin and reads the interval as a TOST
    interval, so compute its estimate at level=TOST_LEVEL.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if direction == "equal" and margin is None:
        raise ValueError("direction 'equal' needs a margin")
    if direction != "equal" and margin is not None:
        raise ValueError(f"margin is only used with direction 'equal', not {direction!r}")
    if est.n_examples == 0 or any(math.isnan(v) for v in (est.effect, est.low, est.high)):
        return "not_tested", f"Not tested: the estimate has no usable examples ({est.method})."
    if est.n_examples < min_n:
        return "not_tested", f"Not tested: only {est.n_examples} examples, fewer than {min_n}."
    iv = _interval(est)
    if direction == "equal":
        if tost(est.low, est.high, margin):
            return "equivalent", f"The {iv} lies inside ±{margin:.3f}."
        if est.low > margin or est.high < -margin:
            return "contradicted", f"The {iv} lies entirely outside ±{margin:.3f}."
        return "inconclusive", f"The {iv} is neither inside nor outside ±{margin:.3f}."
    sign = 1 if direction == "greater" else -1
    if sign * est.low > 0 and sign * est.high > 0:
        return "supported", f"The {iv} lies {'above' if sign > 0 else 'below'} 0."
    if sign * est.low < 0 and sign * est.high < 0:
        return "contradicted", f"The {iv} lies {'below' if sign > 0 else 'above'} 0."
    return "inconclusive", f"The {iv} contains 0."


def seed_matrix(by_seed: dict, what: str) -> np.ndarray:
    """{seed: per-example scores (a Series indexed by example_id)} -> a (seeds, examples) array,
    seeds in order (None, a base model's, first), examples in one order for every seed: the
    shape `paired_bootstrap` and `mean_ci` take. Every seed must have scored the same examples."""
    ids = sorted(next(iter(by_seed.values())).index)
    for seed, col in by_seed.items():
        if sorted(col.index) != ids:
            raise ValueError(f"{what}: seed {seed} was scored on other test questions than the "
                             "other seeds")  # fmt: skip
    order = sorted(by_seed, key=lambda s: -1 if s is None else s)
    return np.array([by_seed[s].loc[ids].to_numpy(float) for s in order])
