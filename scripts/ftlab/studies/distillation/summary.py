"""The distillation study's result: accuracy per task x variant, the paper's claims, a plot.

Accuracy per task x variant x test mode, over seeds x test examples, with a cluster-bootstrap 95%
interval (seeds as clusters; Wilson when the bootstrap has no width). The untrained student is
variant "base". The claims (Wadhwa et al. 2024) compare variants on the same test questions:
paired differences, seeds paired by index (the same data order), Holm-corrected across the study.
CoT-before is scored with its own CoT, as the paper does; every other variant answers directly.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from ftlab import claims, runs, stats, tables  # noqa: E402

from . import VARIANTS  # noqa: E402

STUDY = "distillation"
# one row per task x variant x eval mode: accuracy over seeds x examples (summarize_distillation)
SCHEMA = tables.register(
    "distillation",
    pa.schema(
        [
            ("task", pa.string()),
            ("variant", pa.string()),
            ("mode", pa.string()),
            ("seeds", pa.int64()),
            ("examples", pa.int64()),
            ("accuracy", pa.float64()),
            ("ci_low", pa.float64()),
            ("ci_high", pa.float64()),
            ("seed_accuracies", pa.list_(pa.float64())),
        ]
    ),
)

# the base student, then the variants
ORDER = ("base", *VARIANTS)


def run_variant(run: str, student: str) -> tuple[str, int | None]:
    """("base", None) for the student itself, else (variant, seed) of a distillation run."""
    if run == student:
        return "base", None
    parsed = runs.parse(run)
    if parsed is None or parsed.study != STUDY:
        raise ValueError(
            f"eval run {run!r} is neither the student {student!r} nor distillation/<variant>/<task>/seed<N>"
        )
    return parsed.variant, parsed.seed


def scores(evals: list[pd.DataFrame], student: str) -> dict[tuple, np.ndarray]:
    """(task, variant, mode) -> correct as a (seeds, examples) 0/1 array, examples in one order.

    Every arm of a task must have been scored on the same test questions (paired claims).
    """
    cells: dict[tuple, dict] = {}
    for ev in evals:
        for (run, task, mode), part in ev.groupby(["run", "task", "mode"], sort=False):
            variant, seed = run_variant(run, student)
            cells.setdefault((task, variant, mode), {})[seed] = part.set_index("example_id")[
                "correct"
            ]
    out = {}
    for key, by_seed in cells.items():
        out[key] = stats.seed_matrix(by_seed, "/".join(map(str, key)))
    return out


def summarize(evals: list[pd.DataFrame], student: str, resamples: int = 2000, seed: int = 0):
    """Rows of the "distillation" table from per-run eval tables (schema "eval")."""
    rows = []
    for (task, variant, mode), x in scores(evals, student).items():
        est = stats.mean_ci(x, resamples=resamples, seed=seed)
        rows.append(
            {
                "task": task,
                "variant": variant,
                "mode": mode,
                "seeds": x.shape[0],
                "examples": x.shape[1],
                "accuracy": est.effect,
                "ci_low": est.low,
                "ci_high": est.high,
                "seed_accuracies": x.mean(axis=1).tolist(),
            }
        )
    out = pd.DataFrame(rows, columns=SCHEMA.names)
    rank = {v: i for i, v in enumerate(ORDER)}
    keys = pd.DataFrame(
        {
            "m": (out["mode"] != "direct").astype(int),  # direct (the study's measure) first
            "v": out["variant"].map(lambda v: rank.get(v, len(rank))),
        }
    )
    order = keys.assign(t=out["task"], mode=out["mode"]).sort_values(["t", "m", "mode", "v"]).index
    return out.loc[order].reset_index(drop=True)


def paper_claims(margin: float) -> list[tuple[claims.Claim, tuple[str, str], tuple[str, str]]]:
    """The paper's headline claims as (claim, arm a, arm b), each arm a (variant, test mode)."""

    def claim(id_, text, a, b, direction="greater", margin_=None):
        comparison = f"{a[0]}/{a[1]} - {b[0]}/{b[1]}"
        return claims.Claim(id_, text, comparison, direction, margin_), a, b

    after, before = ("cot_after", "direct"), ("cot_before", "cot")
    label = ("label_only", "direct")
    return [
        claim(
            "cot_after_gt_cot_before",
            "A rationale after the label (no CoT at test time) "
            "beats one before it (with its CoT at test time)",
            after,
            before,
        ),  # fmt: skip
        claim(
            "cot_after_gt_label_only",
            "A rationale after the label beats the label alone, with no CoT at test time",
            after,
            label,
        ),  # fmt: skip
        claim(
            "shuffled_gt_label_only",
            "Rationale words in a random order still beat the label alone",
            ("cot_after_shuffled", "direct"),
            label,
        ),  # fmt: skip
        claim(
            "key_tokens_eq_cot_after",
            "The top key tokens alone do about as well as the "
            f"whole rationale (within ±{margin:g})",
            ("cot_after_key_tokens", "direct"),
            after,
            "equal",
            margin,
        ),  # fmt: skip
        claim(
            "key_tokens_gt_random_tokens",
            "Key tokens beat as many random rationale tokens",
            ("cot_after_key_tokens", "direct"),
            ("cot_after_random_tokens", "direct"),
        ),  # fmt: skip
    ]


def claim_rows(
    evals: list[pd.DataFrame], student: str, margin: float, resamples: int, seed: int
) -> list[dict]:
    """One claims row per paper claim x task, Holm-corrected across the study."""
    x = scores(evals, student)
    tasks = sorted({t for t, _, _ in x})
    rows = []
    for task in tasks:
        for claim, a, b in paper_claims(margin):
            arms = [x.get((task, *arm)) for arm in (a, b)]
            models = [f"{STUDY}/{a[0]}/{task}", f"{STUDY}/{b[0]}/{task}"]
            if any(arm is None for arm in arms):
                missing = [
                    f"{v}/{m}" for (v, m), arm in zip((a, b), arms, strict=True) if arm is None
                ]
                rows.append(claims.not_tested_row(STUDY, claim, task, f"Not tested: no {', '.join(missing)} "
                            "evaluation in this run (variant or mode not configured).", models))  # fmt: skip
                continue
            level = stats.TOST_LEVEL if claim.direction == "equal" else 0.95
            est = stats.paired_bootstrap(*arms, resamples=resamples, seed=seed, level=level)
            rows.append(claims.row(STUDY, claim, task, est, models))
    return claims.with_holm(rows) if rows else rows


def plot(
    summary: pd.DataFrame,
    path: str,
    claim_rows: list[dict] | None = None,
    title: str = "Distillation: student test accuracy (hatched: CoT at test time)",
) -> None:
    """Bars per task (one per variant; cot_before also with CoT at test), 95% CI whiskers, and
    each claim's verdict with its paired interval under the axes."""
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
    lines = [
        f"{r['task']}: {r['claim']} -> {r['verdict']} ({r['effect']:+.3f} "
        f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}])"
        for r in claim_rows or []
    ]
    for i, line in enumerate(reversed(lines)):
        fig.text(0.01, 0.01 + 0.03 * i, line, fontsize=6, ha="left", va="bottom")
    fig.subplots_adjust(bottom=0.12 + 0.03 * len(lines), right=0.72)
    fig.savefig(path, dpi=120)
    plt.close(fig)
