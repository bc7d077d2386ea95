"""The distillation study's result: accuracy per task x variant over seeds, a plot, and a verdict.

Accuracy is per seed (mean of `correct` over the test split), then mean and a 95% t-interval over
seeds (scipy; no interval from a single seed). The untrained student appears as variant "base".
The verdict checks the orderings Wadhwa et al. (2024) report for direct (no-CoT) test accuracy:
CoT after the label helps at least as much as before it; shuffled rationales still beat the
label alone; key tokens alone come close to the full rationale and beat random tokens.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from ftlab import prompts  # noqa: E402

# the base student, then the variants
ORDER = ("base", *prompts.DISTILLATION_VARIANTS)
TOLERANCE = 0.02  # "about equal": within this much accuracy, or within each other's intervals


def run_variant(run: str, student: str) -> tuple[str, int | None]:
    """("base", None) for the student itself, else (variant, seed) of "distillation/v/task/seedN"."""
    if run == student:
        return "base", None
    parts = run.split("/")
    if len(parts) != 4 or parts[0] != "distillation" or not parts[3].startswith("seed"):
        raise ValueError(
            f"eval run {run!r} is neither the student {student!r} nor distillation/<variant>/<task>/seed<N>"
        )
    return parts[1], int(parts[3][4:])


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Two-sided t-interval of the mean; NaN with fewer than two values."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return math.nan, math.nan
    mean, sem = a.mean(), stats.sem(a)
    if sem == 0:
        return float(mean), float(mean)
    low, high = stats.t.interval(level, len(a) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def summarize(evals: list[pd.DataFrame], student: str) -> pd.DataFrame:
    """Rows of the "distillation" table from per-run eval tables (schema "eval")."""
    per_seed = []
    for ev in evals:
        for (run, task, mode), part in ev.groupby(["run", "task", "mode"], sort=False):
            variant, seed = run_variant(run, student)
            per_seed.append((task, variant, mode, seed, float(part["correct"].mean()), len(part)))
    frame = pd.DataFrame(
        per_seed, columns=["task", "variant", "mode", "seed", "accuracy", "examples"]
    )
    rows = []
    for (task, variant, mode), part in frame.groupby(["task", "variant", "mode"], sort=True):
        part = part.sort_values("seed", na_position="first")
        accs = part["accuracy"].tolist()
        low, high = t_interval(accs)
        rows.append(
            {
                "task": task,
                "variant": variant,
                "mode": mode,
                "seeds": len(accs),
                "examples": int(part["examples"].min()),
                "accuracy": float(np.mean(accs)),
                "ci_low": low,
                "ci_high": high,
                "seed_accuracies": accs,
            }
        )
    out = pd.DataFrame(rows, columns=list(rows[0]) if rows else None)
    rank = {v: i for i, v in enumerate(ORDER)}
    keys = pd.DataFrame(
        {
            "m": (out["mode"] != "direct").astype(int),  # direct (the study's measure) first
            "v": out["variant"].map(lambda v: rank.get(v, len(rank))),
        }
    )
    order = keys.assign(t=out["task"], mode=out["mode"]).sort_values(["t", "m", "mode", "v"]).index
    return out.loc[order].reset_index(drop=True)


def _about_equal(a: pd.Series, b: pd.Series) -> bool:
    if abs(a.accuracy - b.accuracy) <= TOLERANCE:
        return True
    return (
        not (math.isnan(a.ci_low) or math.isnan(b.ci_low))
        and a.ci_low <= b.ci_high
        and b.ci_low <= a.ci_high
    )


def _at_least(a, b) -> bool:
    return a.accuracy >= b.accuracy - TOLERANCE


def _better(a, b) -> bool:
    return a.accuracy > b.accuracy


# (claim, variant a, variant b, test on their summary rows): the paper's orderings
CLAIMS = (
    ("cot_after >= cot_before", "cot_after", "cot_before", _at_least),
    ("cot_after_shuffled > label_only", "cot_after_shuffled", "label_only", _better),
    ("cot_after_key_tokens ~ cot_after", "cot_after_key_tokens", "cot_after", _about_equal),
    (
        "cot_after_key_tokens > cot_after_random_tokens",
        "cot_after_key_tokens",
        "cot_after_random_tokens",
        _better,
    ),
)


def findings(summary: pd.DataFrame) -> list[str]:
    """One plain sentence per task on whether the paper's orderings hold (direct test accuracy)."""
    out = []
    for task, part in summary[summary["mode"] == "direct"].groupby("task", sort=True):
        rows = {r.variant: r for r in part.itertuples(index=False)}
        checks = [
            f"{claim} {'holds' if test(rows[a], rows[b]) else 'does NOT hold'} "
            f"({rows[a].accuracy:.3f} vs {rows[b].accuracy:.3f})"
            for claim, a, b, test in CLAIMS
            if a in rows and b in rows
        ]
        seeds = int(part["seeds"].max())
        what = "; ".join(checks) or "no variants to compare"
        out.append(f"{task} ({seeds} seed{'s' if seeds != 1 else ''}): {what}.")
    return out


def plot(
    summary: pd.DataFrame,
    path: str,
    title: str = "Distillation: student test accuracy (hatched: CoT at test time)",
) -> None:
    """Bars per task (one per variant; cot_before also with CoT at test), 95% CI whiskers."""
    df = summary.copy()
    df["label"] = [
        v if m == "direct" else f"{v} ({m} at test)"
        for v, m in zip(df["variant"], df["mode"], strict=True)
    ]
    labels = list(dict.fromkeys(df["label"]))
    tasks = sorted(df["task"].unique())
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(
        figsize=(max(6.0, 1.6 * len(tasks) * max(len(labels), 1) * 0.35 + 2), 4.5)
    )
    colors = plt.get_cmap("tab10")
    for j, label in enumerate(labels):
        sub = df[df["label"] == label].set_index("task").reindex(tasks)
        err = np.vstack([sub["accuracy"] - sub["ci_low"], sub["ci_high"] - sub["accuracy"]])
        err = np.nan_to_num(err, nan=0.0)
        x = np.arange(len(tasks)) - 0.4 + width * (j + 0.5)
        ax.bar(
            x,
            sub["accuracy"],
            width,
            yerr=err,
            capsize=2,
            label=label,
            color=colors(j % 10),
            hatch="//" if "at test" in label else None,
        )
    ax.set_xticks(np.arange(len(tasks)), tasks)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for i, line in enumerate(reversed(findings(summary))):
        fig.text(0.01, 0.01 + 0.04 * i, line, fontsize=6, ha="left", va="bottom", wrap=True)
    fig.subplots_adjust(bottom=0.12 + 0.04 * len(tasks), right=0.72)
    fig.savefig(path, dpi=120)
    plt.close(fig)
