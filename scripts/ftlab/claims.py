"""Claims as data: every study states its claims up front and writes one row per claim x task.

A row carries the effect, its interval, the verdict and a one-sentence reason, so a report
can quote a claim's outcome without recomputing anything. The verdicts come from
`stats.verdict`; `with_holm` then corrects a study's claims for multiplicity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

from . import stats, tables

VERDICTS = stats.VERDICTS
ALPHA = 0.05
PROPORTION = "proportion"  # the unit of accuracies, rates and Lanham scores (a point is 0.01)

COLUMNS = [
    ("study", pa.string()),
    ("claim", pa.string()),
    ("task", pa.string()),
    ("claim_text", pa.string()),
    ("comparison", pa.string()),
    ("unit", pa.string()),
    ("effect", pa.float64()),
    ("ci_low", pa.float64()),
    ("ci_high", pa.float64()),
    ("level", pa.float64()),
    ("n", pa.int64()),
    ("n_seeds", pa.int64()),
    ("method", pa.string()),
    ("p_value", pa.float64()),
    ("p_holm", pa.float64()),
    ("verdict", pa.string()),
    ("reason", pa.string()),
    ("models", pa.string()),
]
SCHEMA = tables.register("claims", pa.schema(COLUMNS))  # results/analysis/claims/{study}.parquet


@dataclass(frozen=True)
class Claim:
    """One claim: an id, its plain-language text, what is compared, and the claimed direction.

    direction is "greater" (effect > 0), "less" (effect < 0) or "equal" (|effect| < margin).
    unit is what the effect is counted in: "proportion" (accuracies, rates, Lanham scores: a
    point is 0.01), or another ("nats/token", "exponent"), which the precision gate leaves to
    the claim's own interval.
    """

    id: str
    text: str
    comparison: str
    direction: str
    margin: float | None = None
    unit: str = PROPORTION

    def __post_init__(self):
        if self.direction not in stats.DIRECTIONS:
            raise ValueError(f"claim {self.id}: direction must be one of {stats.DIRECTIONS}")
        if (self.direction == "equal") != (self.margin is not None):
            raise ValueError(f"claim {self.id}: a margin goes with direction 'equal' only")


def _models(models) -> str:
    return models if isinstance(models, str) else ",".join(models)


def row(
    study: str,
    claim: Claim,
    task: str,
    est: stats.Estimate,
    models,
    *,
    min_n: int = stats.MIN_N,
) -> dict:
    """One claims-table row for `claim` measured on `task`; p_holm is filled by `with_holm`."""
    verdict, reason = stats.verdict(
        est, direction=claim.direction, margin=claim.margin, min_n=min_n
    )
    return {
        "study": study,
        "claim": claim.id,
        "task": task,
        "claim_text": claim.text,
        "comparison": claim.comparison,
        "unit": claim.unit,
        "effect": float(est.effect),
        "ci_low": float(est.low),
        "ci_high": float(est.high),
        "level": float(est.level),
        "n": int(est.n_examples) * int(est.n_seeds),
        "n_seeds": int(est.n_seeds),
        "method": est.method,
        "p_value": float(est.p_value),
        "p_holm": math.nan,
        "verdict": verdict,
        "reason": reason,
        "models": _models(models),
    }


def not_tested_row(study: str, claim: Claim, task: str, reason: str, models="") -> dict:
    """A row for a claim that could not be measured: NaN numbers and the reason why."""
    nan = math.nan
    return {
        "study": study,
        "claim": claim.id,
        "task": task,
        "claim_text": claim.text,
        "comparison": claim.comparison,
        "unit": claim.unit,
        "effect": nan,
        "ci_low": nan,
        "ci_high": nan,
        "level": nan,
        "n": 0,
        "n_seeds": 0,
        "method": "",
        "p_value": nan,
        "p_holm": nan,
        "verdict": "not_tested",
        "reason": reason,
        "models": _models(models),
    }


def with_holm(rows: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Fill p_holm across one study's rows; a directional verdict that fails Holm is downgraded.

    The family is every row with a p-value (not-tested rows have none). "equivalent" verdicts
    are kept: their p-value tests effect != 0, not equivalence, and only widens the family.
    """
    studies = {r["study"] for r in rows}
    if len(studies) > 1:
        raise ValueError(f"with_holm corrects one study at a time, got {sorted(studies)}")
    adjusted = stats.holm([r["p_value"] for r in rows])
    m = sum(not math.isnan(p) for p in adjusted)
    out = []
    for r, p_holm in zip(rows, adjusted, strict=True):
        r = {**r, "p_holm": p_holm}
        if r["verdict"] in ("supported", "contradicted") and not p_holm < alpha:
            was = r["reason"].rstrip(".")
            r["reason"] = (
                f"Would be {r['verdict']} ({was[0].lower()}{was[1:]}), but the Holm-adjusted "
                f"p = {p_holm:.3f} over {m} claims is not below {alpha:g}."
            )
            r["verdict"] = "inconclusive"
        out.append(r)
    return out


def table(rows: list[dict]) -> pa.Table:
    """The rows as a pyarrow Table with the claims schema."""
    return pa.Table.from_pylist(rows, schema=SCHEMA)
