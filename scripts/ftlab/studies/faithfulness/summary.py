"""Faithfulness per task, before vs after fine-tuning: the summary table, the claims, the plots.

Per-example scores come from `scores.py` (higher = the answer follows the CoT more). A base model
is its own "before" group; fine-tuned runs group by study/variant/task, seeds pooled as clusters.
Every interval is a cluster bootstrap over seeds x examples (`ftlab.stats`); every change is
paired: the same `example_id`s before and after. The claims (Lobo et al. 2024) compare *one*
model before and after its own fine-tuning (`finetune_model`); the distilled students' changes
against the teacher are kept in the table as a secondary comparison. Pure pandas/numpy/matplotlib,
so the analysis stage needs no torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ftlab import claims, runs, stats, tables

from .scores import SKIP_REASONS, UNPARSED, example_scores

STUDY = "faithfulness"
GRID = np.linspace(0.0, 1.0, 101)
COLUMNS = ["group", "stage", "task", "test", "metric", "value", "ci_low", "ci_high", "n"]
# per model (or study/variant/task) x task x test x metric, with a 95% CI (summarize_faithfulness)
SCHEMA = tables.register(
    "faithfulness_summary",
    pa.schema(
        [
            ("group", pa.string()),
            ("stage", pa.string()),
            ("task", pa.string()),
            ("test", pa.string()),
            ("metric", pa.string()),
            ("value", pa.float64()),
            ("ci_low", pa.float64()),
            ("ci_high", pa.float64()),
            ("n", pa.int64()),
        ]
    ),
)


def group_of(run: str, base_models) -> tuple[str, str]:
    """(group, stage): a base model is its own "before" group; runs group by study/variant/task."""
    parsed = runs.parse(run)
    if run in base_models or parsed is None:
        return run, "before"
    return parsed.group, "after"


def _grouped(df: pd.DataFrame, base_models) -> pd.DataFrame:
    pairs = [group_of(r, base_models) for r in df["run"]]
    return df.assign(group=[g for g, _ in pairs], stage=[s for _, s in pairs])


def matrix(df: pd.DataFrame, value: str, ids=None) -> tuple[np.ndarray, list[str]]:
    """(runs, examples) array of `value` over the examples every run has (or `ids`)."""
    wide = df.pivot_table(index="run", columns="example_id", values=value, aggfunc="first")
    wide = wide.dropna(axis=1)
    if ids is not None:
        wide = wide.reindex(columns=[i for i in ids if i in wide.columns])
    return wide.to_numpy(float), list(wide.columns)


def _stat(group, stage, task, test, metric, df, value, resamples, seed) -> dict:
    x, _ = matrix(df, value)
    est = stats.mean_ci(x, resamples=resamples, seed=seed)
    return dict(group=group, stage=stage, task=task, test=test, metric=metric, value=est.effect,
                ci_low=est.low, ci_high=est.high, n=x.size)  # fmt: skip


def baselines(baseline) -> list[str]:
    """`studies.faithfulness.baseline`: one model name or a list of them."""
    return [baseline] if isinstance(baseline, str) else list(baseline or [])


def _accuracy_frame(evals: pd.DataFrame) -> pd.DataFrame:
    """Per run x task x example: correct in each mode, and the CoT-minus-direct gain."""
    wide = evals.pivot_table(index=["run", "task", "example_id"], columns="mode",
                             values="correct", aggfunc="first").astype(float)  # fmt: skip
    if {"cot", "direct"} <= set(wide.columns):
        wide["cot_minus_direct"] = wide["cot"] - wide["direct"]
    return wide.reset_index()


def summarize(faith: pd.DataFrame, evals: pd.DataFrame, base_models, baseline,
              resamples: int, seed: int) -> pd.DataFrame:  # fmt: skip
    """The "faithfulness_summary" table: scores, the share of unparsable forced answers,
    filler/no-CoT/CoT accuracy, CoT vs direct accuracy (eval tables), and each fine-tuned
    group's paired change against each `baseline`."""
    rows = []
    scores = _grouped(example_scores(faith), base_models)
    for (group, stage, task, test), g in scores.groupby(["group", "stage", "task", "test"]):
        rows.append(_stat(group, stage, task, test, "score", g, "score", resamples, seed))
    measured = _grouped(faith[~faith["reason"].isin(SKIP_REASONS)], base_models)
    measured = measured.assign(unparsed=(measured["reason"] == UNPARSED).astype(float))
    per_example = measured.groupby(["group", "stage", "task", "test", "run", "example_id"],
                                   as_index=False)["unparsed"].mean()  # fmt: skip
    for (group, stage, task, test), g in per_example.groupby(["group", "stage", "task", "test"]):
        rows.append(_stat(group, stage, task, test, "unparsed_share", g, "unparsed", resamples,
                          seed))  # fmt: skip
    filler = measured[(measured["test"] == "filler_tokens") & (measured["reason"] != UNPARSED)]
    filler = filler.assign(correct=filler["correct"].astype(float))
    for (group, stage, task, cond), g in filler.groupby(["group", "stage", "task", "condition"]):
        rows.append(_stat(group, stage, task, "filler_tokens", f"accuracy_{cond}", g, "correct",
                          resamples, seed))  # fmt: skip
    acc = _grouped(_accuracy_frame(evals), base_models)
    for col in [c for c in ("direct", "cot", "cot_minus_direct") if c in acc.columns]:
        metric = col if col == "cot_minus_direct" else f"{col}_accuracy"
        for (group, stage, task), g in acc.dropna(subset=[col]).groupby(["group", "stage", "task"]):
            rows.append(_stat(group, stage, task, "accuracy", metric, g, col, resamples, seed))
    for name in baselines(baseline):
        rows += _changes(scores, name, resamples, seed)
    return pd.DataFrame(rows, columns=COLUMNS)


def paired_change(after: pd.DataFrame, before: pd.DataFrame, value: str, resamples, seed):
    """after - before on the examples both scored: seeds of `after` as clusters, paired."""
    b, ids = matrix(before, value)
    a, ids = matrix(after, value, ids)
    b, _ = matrix(before, value, ids)
    return stats.paired_bootstrap(a, b, resamples=resamples, seed=seed)


def _changes(scores: pd.DataFrame, baseline: str, resamples: int, seed: int) -> list[dict]:
    """After-minus-baseline mean score per group x task x test, paired on the same questions."""
    rows = []
    before = scores[scores["group"] == baseline]
    for (group, task, test), g in scores[scores["stage"] == "after"].groupby(
        ["group", "task", "test"]
    ):
        b = before[(before["task"] == task) & (before["test"] == test)]
        if b.empty:
            continue
        est = paired_change(g, b, "score", resamples, seed)
        rows.append(dict(group=group, stage="change", task=task, test=test,
                         metric=f"score_change_vs_{baseline}", value=est.effect,
                         ci_low=est.low, ci_high=est.high, n=est.n_examples * est.n_seeds))  # fmt: skip
    return rows


TEST_TEXT = {
    "early_answering": "answers depend less on the CoT (early answering: normalised AOC)",
    "adding_mistakes": "a mistake in the CoT changes the answer less often",
    "paraphrasing": "a paraphrased CoT keeps the answer less often",
    "filler_tokens": "filler in place of the CoT reproduces its answer more often",
}


def paper_claims() -> list[claims.Claim]:
    """Lobo et al.: fine-tuning lowers faithfulness (each Lanham test) and CoT accuracy."""
    out = [
        claims.Claim(
            f"faithfulness_falls_{test}",
            f"After fine-tuning, {text}",
            f"{test} score: after - before",
            "less",
        )  # fmt: skip
        for test, text in TEST_TEXT.items()
    ]
    out.append(claims.Claim("cot_accuracy_falls", "After fine-tuning, accuracy with a CoT falls",
                            "cot accuracy: after - before", "less"))  # fmt: skip
    return out


def claim_rows(faith: pd.DataFrame, evals: pd.DataFrame, finetune_model: str | None,
               resamples: int, seed: int) -> list[dict]:  # fmt: skip
    """One row per claim x scored task x fine-tuning task: `finetune_model` after its own
    fine-tuning minus itself before, on the same questions; Holm across the study."""
    scores = example_scores(faith)
    acc = _accuracy_frame(evals)
    groups = sorted({runs.parse(r).group for r in scores["run"].unique()
                     if (p := runs.parse(r)) is not None and p.study == STUDY})  # fmt: skip
    tasks = sorted(faith["task"].unique())
    rows = []
    if not finetune_model or not groups:
        reason = ("Not tested: no studies.faithfulness.finetune_model / finetune_tasks configured, "
                  "so no model was scored before and after its own fine-tuning.")  # fmt: skip
        return [claims.not_tested_row(STUDY, c, t, reason) for c in paper_claims() for t in tasks]
    for group in groups:
        train_task = group.split("/")[2]
        for task in tasks:
            models = [f"{finetune_model} (before)", f"{group} (after, trained on {train_task})"]
            for claim in paper_claims():
                if claim.id == "cot_accuracy_falls":
                    frame, value = acc[acc["task"] == task], "cot"
                else:
                    test = claim.id.removeprefix("faithfulness_falls_")
                    frame, value = (
                        scores[(scores["task"] == task) & (scores["test"] == test)],
                        "score",
                    )
                after = frame[frame["run"].str.startswith(group + "/")]
                before = frame[frame["run"] == finetune_model]
                if after.empty or before.empty:
                    rows.append(claims.not_tested_row(STUDY, claim, task, "Not tested: "
                                f"{finetune_model if before.empty else group} has no scored "
                                "examples on this task (every example has a reason).", models))  # fmt: skip
                    continue
                est = paired_change(after, before, value, resamples, seed)
                rows.append(claims.row(STUDY, claim, task, est, models))
    return claims.with_holm(rows)


# ---- plots --------------------------------------------------------------------------------------


def early_curve(faith: pd.DataFrame, base_models) -> pd.DataFrame:
    """Mean "same answer as the full CoT" at each fraction of the CoT kept (0, 0.01, ..., 1).

    Each example's curve is the one its AOC integrates: linear between its measured levels.
    """
    df = faith[(faith["test"] == "early_answering") & ~faith["reason"].isin(SKIP_REASONS)]
    df = df[df["reason"] != UNPARSED]
    rows = []
    for (run, task, _), g in df.groupby(["run", "task", "example_id"]):
        g = g.sort_values("level")
        if not {0.0, 1.0} <= set(g["level"]):
            continue
        same = np.interp(GRID, g["level"].to_numpy(float), g["same_as_full"].astype(float))
        rows += [dict(run=run, task=task, kept=x, same=s) for x, s in zip(GRID, same, strict=True)]
    if not rows:
        return pd.DataFrame(columns=["group", "stage", "task", "kept", "same"])
    curve = _grouped(pd.DataFrame(rows), base_models)
    return curve.groupby(["group", "stage", "task", "kept"], as_index=False)["same"].mean()


def plot_early_answering(curve: pd.DataFrame, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted(curve["task"].unique()) or ["(no data)"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for (group, stage), g in curve[curve["task"] == task].groupby(["group", "stage"]):
            ax.plot(100 * g["kept"], 100 * g["same"],
                    ls="-" if stage == "before" else "--", label=f"{group} ({stage})")  # fmt: skip
        ax.set(
            title=task, xlabel="% of CoT kept", ylabel="% same answer as full CoT", ylim=(-3, 103)
        )
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_before_after(summary: pd.DataFrame, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary[summary["metric"] == "score"]
    tasks = sorted(s["task"].unique()) or ["(no data)"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        t = s[s["task"] == task]
        tests = sorted(t["test"].unique())
        groups = list(t.sort_values(["stage", "group"], ascending=[False, True])["group"].unique())
        width = 0.8 / max(len(groups), 1)
        for i, group in enumerate(groups):
            g = t[t["group"] == group].set_index("test").reindex(tests)
            x = np.arange(len(tests)) + (i - (len(groups) - 1) / 2) * width
            err = np.vstack([g["value"] - g["ci_low"], g["ci_high"] - g["value"]]).clip(min=0)
            stage = g["stage"].dropna().iloc[0] if g["stage"].notna().any() else ""
            ax.bar(x, g["value"], width, yerr=err, capsize=2, label=f"{group} ({stage})",
                   hatch="//" if stage == "after" else None)  # fmt: skip
        ax.set_xticks(np.arange(len(tests)), [x.replace("_", "\n") for x in tests], fontsize=8)
        ax.set(title=task, ylabel="faithfulness score (higher = more faithful)", ylim=(0, 1.05))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
