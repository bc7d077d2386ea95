"""The replication scorecard: every seed paper's headline claims and what this run found.

Built from the claims rows every study writes (`claims.py`) and the registry of headline claims
(`resources/scorecard.yaml`). A headline claim that no configured study measured is a row too,
`not_tested` with the reason, so the table always answers for all five papers.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

from . import claims, tables

COLUMNS = ["study", "paper", "claim", "paper_claim", "paper_direction", "task", "effect",
           "ci_low", "ci_high", "n", "verdict", "reason", "method", "models", "section"]  # fmt: skip
SCHEMA = tables.register(
    "scorecard",
    pa.schema(
        [
            (
                c,
                pa.float64()
                if c in ("effect", "ci_low", "ci_high")
                else pa.int64()
                if c == "n"
                else pa.string(),
            )
            for c in COLUMNS
        ]  # fmt: skip
    ),
)


def build(claim_frames: list[pd.DataFrame], headlines: dict, studies_run) -> pd.DataFrame:
    """One row per measured claim x task (and per headline claim nobody measured)."""
    rows = []
    measured = pd.concat(claim_frames, ignore_index=True) if claim_frames else None
    for study, spec in headlines.items():
        for claim_id, info in spec["claims"].items():
            base = dict(study=study, paper=spec["paper"], claim=claim_id,
                        paper_claim=info["paper"], paper_direction=info["direction"],
                        section=study)  # fmt: skip
            got = (measured[(measured["study"] == study) & (measured["claim"] == claim_id)]
                   if measured is not None else pd.DataFrame())  # fmt: skip
            if got.empty:
                why = ("the study is not configured in this run" if study not in studies_run
                       else "the study wrote no row for this claim")  # fmt: skip
                rows.append(base | dict(task="", effect=float("nan"), ci_low=float("nan"),
                                        ci_high=float("nan"), n=0, verdict="not_tested",
                                        reason=f"Not tested: {why}.", method="", models=""))  # fmt: skip
                continue
            for r in got.itertuples(index=False):
                rows.append(base | dict(task=r.task, effect=r.effect, ci_low=r.ci_low,
                                        ci_high=r.ci_high, n=r.n, verdict=r.verdict,
                                        reason=r.reason, method=r.method, models=r.models))  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def unknown_claims(claim_frames: list[pd.DataFrame], headlines: dict) -> list[str]:
    """Claims rows whose (study, claim) the registry does not list: a registry out of date."""
    known = {(s, c) for s, spec in headlines.items() for c in spec["claims"]}
    seen = {(r.study, r.claim) for f in claim_frames for r in f.itertuples(index=False)}
    return sorted(f"{s}/{c}" for s, c in seen - known)


def counts(card: pd.DataFrame) -> pd.DataFrame:
    """Verdicts per paper: the scorecard in one glance."""
    table = card.pivot_table(index="study", columns="verdict", values="claim", aggfunc="count")
    return table.reindex(columns=list(claims.VERDICTS)).fillna(0).astype(int).reset_index()


def to_text(card: pd.DataFrame) -> str:
    """The scorecard as the terminal shows it (`ftlab scorecard`)."""
    lines = []
    for study, part in card.groupby("study", sort=False):
        lines.append(f"== {study}: {part['paper'].iloc[0]}")
        for r in part.itertuples(index=False):
            where = f" on {r.task}" if r.task else ""
            iv = (f" {r.effect:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}], n={r.n}"
                  if pd.notna(r.effect) else "")  # fmt: skip
            lines.append(f"  {r.verdict.upper():12s} {r.claim}{where}{iv}")
            lines.append(f"               paper: {r.paper_claim} ({r.paper_direction})")
            lines.append(f"               {r.reason}")
    return "\n".join(lines)


def to_json(card: pd.DataFrame) -> str:
    records = card.astype(object).where(card.notna(), None).to_dict("records")
    return json.dumps(records, indent=2)
