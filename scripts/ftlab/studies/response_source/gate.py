"""The response_source study's gate: the gold and teacher responses must differ in familiarity
under the base student, or the accuracy comparisons test nothing the paper tests."""

from __future__ import annotations

import math

import pandas as pd

from ftlab import claims, stats

from . import STUDY

GATE = claims.Claim(
    "style_contrast_gate",
    "Gate, not a paper claim: the gold and teacher responses differ in familiarity under the base "
    "student (two-sided), so the accuracy comparisons test what the paper tests",
    "nll/token(gold) - nll/token(teacher), two-sided",
    "greater",
    unit="nats/token",
)


def _nll_gap(gold: pd.DataFrame, other: pd.DataFrame, resamples: int, seed: int, level=0.95):
    ids = gold.index.intersection(other.index)
    if len(ids) != len(gold) or len(ids) != len(other):
        raise ValueError("familiarity tables of one task hold different training questions: "
                         "the sources were not aligned")  # fmt: skip
    a = -gold.loc[ids, "logprob_mean"].to_numpy(float)[None, :]
    b = -other.loc[ids, "logprob_mean"].to_numpy(float)[None, :]
    return stats.paired_bootstrap(a, b, resamples=resamples, seed=seed, level=level)


def _iv(est: stats.Estimate) -> str:
    return f"{est.effect:+.4f} [{est.low:+.4f}, {est.high:+.4f}]"


def _gate_passes(est: stats.Estimate) -> bool:
    return (est.n_examples >= stats.MIN_N and not math.isnan(est.low)
            and (est.low > 0 or est.high < 0))  # fmt: skip


def gate_row(task: str, gap: stats.Estimate, student: str) -> dict:
    """The style-contrast gate as a claims row (verdict supported = passed)."""
    r = claims.row(STUDY, GATE, task, gap, student)
    if _gate_passes(gap):
        side = "less" if gap.effect > 0 else "MORE"
        r["verdict"], r["reason"] = "supported", (
            f"Gate passed: the gold - teacher NLL/token gap under {student}, {_iv(gap)} (95%), "
            f"excludes 0: the gold is {side} familiar than the teacher's responses.")  # fmt: skip
    else:
        r["verdict"] = "not_tested" if gap.n_examples < stats.MIN_N else "inconclusive"
        r["reason"] = (
            f"Gate failed: the gold - teacher NLL/token gap under {student}, {_iv(gap)} (95%, "
            f"n={gap.n_examples}), is within noise: no style contrast, so the accuracy and "
            "forgetting claims are not tested.")  # fmt: skip
    return r
