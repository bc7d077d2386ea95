"""Gates: can this run's measurements resolve the papers' claims at all?

A study only means something when its tasks fit its claim: a fine-tuned student must learn
measurably but leave room to differ, a teacher's rationales must be right, and the intervals of
the headline comparisons must be narrow enough to tell effects of a few points apart. Each gate
is a row (gate, subject, value, threshold, passed, detail); a failed gate is a line in the report
and in `ftlab gates`, never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from . import tables
from .claims import PROPORTION

SCHEMA = tables.register(
    "gates",
    pa.schema(
        [
            ("gate", pa.string()),
            ("subject", pa.string()),
            ("value", pa.float64()),
            ("threshold", pa.string()),
            ("passed", pa.bool_()),
            ("detail", pa.string()),
        ]
    ),
)


@dataclass(frozen=True)
class Thresholds:
    """`analysis.gates` in the config (resources/config.schema.yaml documents each)."""

    above_majority: float = 0.10
    max_accuracy: float = 0.90
    teacher_cot: float = 0.90
    student_above_majority: float = 0.15
    max_half_width: float = 0.05


def majority_rate(task_table: pd.DataFrame) -> float:
    """Accuracy of always giving the test split's most frequent answer."""
    test = task_table[task_table["split"] == "test"]
    if test.empty:
        raise ValueError("the task table has no test rows")
    return float(
        test["answer"].astype(str).str.strip().str.lower().value_counts().iloc[0] / len(test)
    )


def _row(gate, subject, value, threshold, passed, detail) -> dict:
    return dict(gate=gate, subject=subject, value=float(value), threshold=threshold,
                passed=bool(passed), detail=detail)  # fmt: skip


def learns_with_room(evals: pd.DataFrame, majority: float, t: Thresholds, what: str) -> dict:
    """A fine-tuned arm (answering directly) beats the majority answer by `above_majority` but
    stays below `max_accuracy`, so that the variants can differ in both directions."""
    acc = float(evals["correct"].mean())
    low = majority + t.above_majority
    ok = low <= acc <= t.max_accuracy
    return _row("learns_with_room", what, acc, f"[{low:.3f}, {t.max_accuracy:.3f}]", ok,
                f"accuracy {acc:.3f} vs majority answer {majority:.3f}")  # fmt: skip


def teacher_reasons(evals: pd.DataFrame, t: Thresholds, what: str) -> dict:
    acc = float(evals["correct"].mean())
    return _row("teacher_reasons", what, acc, f">= {t.teacher_cot:.3f}", acc >= t.teacher_cot,
                f"CoT accuracy {acc:.3f} on {len(evals)} test questions")  # fmt: skip


def student_knows_its_pretraining(evals: pd.DataFrame, majority: float, t: Thresholds,
                                  what: str) -> dict:  # fmt: skip
    acc = float(evals["correct"].mean())
    low = majority + t.student_above_majority
    return _row("student_pretrained", what, acc, f">= {low:.3f}", acc >= low,
                f"accuracy {acc:.3f} vs majority answer {majority:.3f}")  # fmt: skip


def precise(claims: pd.DataFrame, t: Thresholds) -> list[dict]:
    """Every measured comparison of proportions (accuracies, rates, Lanham scores): its
    interval's half-width is at most max_half_width, in points. Effects in other units (an NLL
    gap in nats/token, a power-law exponent) have no common scale with points; their interval
    is in the claims table and their verdict already needs it to resolve."""
    out = []
    measured = claims[(claims["verdict"] != "not_tested") & (claims["unit"] == PROPORTION)]
    for r in measured.itertuples(index=False):
        half = (r.ci_high - r.ci_low) / 2
        out.append(_row("precise", f"{r.study}/{r.claim}/{r.task} ({r.models})", half,
                        f"<= {t.max_half_width:.3f}", half <= t.max_half_width,
                        f"{r.level:.0%} interval [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"))  # fmt: skip
    return out


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=SCHEMA.names)


def to_text(gates: pd.DataFrame) -> str:
    lines = [f"{'PASS' if r.passed else 'FAIL'}  {r.gate:20s} {r.subject}: {r.value:.3f} "
             f"(needs {r.threshold}; {r.detail})" for r in gates.itertuples(index=False)]  # fmt: skip
    failed = int((~gates["passed"]).sum())
    lines.append(f"{len(gates) - failed} of {len(gates)} gates pass")
    return "\n".join(lines)
