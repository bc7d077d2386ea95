"""The response_source study's plots: accuracy vs familiarity (perplexity) per source, and
forgetting per source, each with its intervals and the claims' verdicts under the axes."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import SOURCES  # noqa: E402
from .summary import POOLED, _metric  # noqa: E402


def _claim_lines(claim_rows: list[dict] | None) -> list[str]:
    return [f"{r['task']}: {r['claim']} -> {r['verdict']} ({r['effect']:+.3f} "
            f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}])" for r in claim_rows or []]  # fmt: skip


def _footer(fig, lines: list[str]) -> None:
    for i, line in enumerate(reversed(lines)):
        fig.text(0.01, 0.01 + 0.03 * i, line, fontsize=6, ha="left", va="bottom")
    fig.subplots_adjust(bottom=0.14 + 0.03 * len(lines))


def plot_familiarity(table: pd.DataFrame, path: str, claim_rows=None) -> None:
    """Per task: in-task accuracy against mean perplexity under the base student, one point per
    source with 95% intervals on both axes; the untrained student's accuracy dashed."""
    tasks = sorted(table["task"].unique()) or [""]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.6), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, task in zip(axes[0], tasks, strict=True):
        for j, source in enumerate(SOURCES):
            acc, ppl = (_metric(table, task, source, m, e) for m, e in
                        (("accuracy", task), ("mean_perplexity", "")))  # fmt: skip
            if acc is None or ppl is None:
                continue
            tok = _metric(table, task, source, "completion_tokens")
            xerr = [[max(0, ppl["value"] - ppl["ci_low"])], [max(0, ppl["ci_high"] - ppl["value"])]]
            yerr = [[max(0, acc["value"] - acc["ci_low"])], [max(0, acc["ci_high"] - acc["value"])]]
            label = f"{source} ({tok['value']:.0f} tokens)" if tok is not None else source
            ax.errorbar(ppl["value"], acc["value"], xerr=xerr, yerr=yerr, fmt="osD^"[j],
                        markersize=9 - 2 * j, capsize=3, color=colors(j), alpha=0.85,
                        label=label)  # fmt: skip
        base = _metric(table, task, "base", "accuracy", task)
        if base is not None:
            ax.axhline(base["value"], ls="--", color="gray", lw=1, label="base student")
        rho = _metric(table, task, POOLED, "spearman", task)
        title = f"{task}: accuracy vs familiarity"
        if rho is not None and not math.isnan(rho["value"]):
            title += (
                f"\nSpearman rho {rho['value']:+.2f} [{rho['ci_low']:+.2f}, {rho['ci_high']:+.2f}]"
            )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("mean per-example perplexity under the base student (lower: more familiar)")
        ax.set_ylabel("test accuracy after fine-tuning")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    _footer(
        fig, _claim_lines([r for r in claim_rows or [] if r["claim"] != "teacher_less_forgetting"])
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_forgetting(table: pd.DataFrame, path: str, claim_rows=None) -> None:
    """Per task: forgetting (base accuracy - run accuracy) per source on each other task and
    pooled, with 95% paired intervals."""
    tasks = sorted(table["task"].unique()) or [""]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.4), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, task in zip(axes[0], tasks, strict=True):
        part = table[(table["task"] == task) & (table["metric"] == "forgetting")]
        evals = [t for t in dict.fromkeys(part["eval_task"]) if t != POOLED] + [POOLED]
        sources = [s for s in SOURCES if s in set(part["source"])]
        width = 0.8 / max(len(sources), 1)
        for j, source in enumerate(sources):
            sub = part[part["source"] == source].set_index("eval_task").reindex(evals)
            err = np.nan_to_num(np.vstack([sub["value"] - sub["ci_low"],
                                           sub["ci_high"] - sub["value"]]), nan=0.0)  # fmt: skip
            xs = np.arange(len(evals)) - 0.4 + width * (j + 0.5)
            ax.bar(xs, sub["value"], width, yerr=np.clip(err, 0, None), capsize=2, label=source,
                   color=colors(SOURCES.index(source)))  # fmt: skip
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(np.arange(len(evals)), evals, fontsize=8)
        ax.set_ylabel("forgetting: base accuracy - run accuracy")
        ax.set_title(f"{task}: forgetting of the student's other tasks", fontsize=9)
        if sources:
            ax.legend(fontsize=7)
    _footer(
        fig, _claim_lines([r for r in claim_rows or [] if r["claim"] == "teacher_less_forgetting"])
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)
