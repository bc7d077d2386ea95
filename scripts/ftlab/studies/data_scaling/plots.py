"""The data_scaling study's plot: log-log error vs N per task x test mode, from the summary table
(summary.py): one line per error kind with its power-law fit and 95% bootstrap band."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .summary import CURVES  # noqa: E402

COLORS = {"error": "black", "format_error": "tab:orange", "reasoning_error": "tab:blue"}


def plot(
    summary: pd.DataFrame,
    path: str,
    claim_rows: list[dict] | None = None,
    title: str = "Data scaling: test error vs fine-tuning examples N",
) -> None:
    """Log-log error vs N per task (rows) x test mode (columns): one line per error kind, points
    with 95% intervals, the power-law fit with its 95% bootstrap band; a zero rate is drawn at
    the panel's floor (open marker); the base student's total error as a dotted line."""
    tasks = sorted(summary["task"].unique())
    modes = sorted(summary["mode"].unique(), key=lambda m: (m != "cot", m))
    fig, axes = plt.subplots(
        max(len(tasks), 1), max(len(modes), 1),
        figsize=(4.6 * max(len(modes), 1), 3.6 * max(len(tasks), 1) + 0.6), squeeze=False,
    )  # fmt: skip
    for i, task in enumerate(tasks):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            part = summary[(summary["task"] == task) & (summary["mode"] == mode)]
            runs_ = part[part["n"] > 0]
            if runs_.empty:
                ax.set_visible(False)
                continue
            floor = 0.5 / float((runs_["seeds"] * runs_["examples"]).max())
            ns = np.sort(runs_["n"].unique()).astype(float)
            grid = np.geomspace(ns.min(), ns.max(), 50)
            for kind in CURVES:
                sub = runs_[runs_["kind"] == kind].sort_values("n")
                if sub.empty:
                    continue
                color, label = COLORS[kind], kind.replace("_", " ")
                rate = sub["rate"].clip(lower=floor).to_numpy()
                lo = np.minimum(sub["ci_low"].clip(lower=floor).to_numpy(), rate)
                hi = np.maximum(sub["ci_high"].clip(lower=floor).to_numpy(), rate)
                zero = sub["rate"].to_numpy() <= 0
                ax.errorbar(sub["n"][~zero], rate[~zero], yerr=[rate[~zero] - lo[~zero],
                            hi[~zero] - rate[~zero]], fmt="o", ms=4, color=color, capsize=2)  # fmt: skip
                ax.plot(sub["n"][zero], rate[zero], "o", mfc="none", ms=4, color=color)
                first = sub.iloc[0]
                if np.isfinite(first["b"]):
                    label += f": b={first['b']:.2f} [{first['b_low']:.2f}, {first['b_high']:.2f}]"
                    ax.plot(grid, np.maximum(first["a"] * grid ** -first["b"], floor), "-",
                            color=color, lw=1.2, label=label)  # fmt: skip
                    band = sub.dropna(subset=["fit_low", "fit_high"])
                    if len(band) >= 2:
                        x = np.log(band["n"].to_numpy(float))
                        bl = np.log(band["fit_low"].clip(lower=floor).to_numpy())
                        bh = np.log(band["fit_high"].clip(lower=floor).to_numpy())
                        lg = np.log(grid)
                        ax.fill_between(grid, np.exp(np.interp(lg, x, bl)),
                                        np.exp(np.interp(lg, x, bh)), color=color, alpha=0.15,
                                        lw=0)  # fmt: skip
                else:
                    ax.plot(sub["n"], rate, "-", color=color, lw=0.8, label=label)
            base = part[(part["n"] == 0) & (part["kind"] == "error")]
            if not base.empty:
                ax.axhline(max(base["rate"].iloc[0], floor), color="gray", ls=":", lw=1,
                           label="base student (error)")  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(ns, [str(int(n)) for n in ns])
            ax.minorticks_off()
            ax.set_ylim(floor * 0.8, 1.05)
            ax.set_xlabel("fine-tuning examples N")
            ax.set_ylabel("error rate")
            ax.set_title(f"{task}, {mode} at test", fontsize=9)
            ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(title, fontsize=10)
    lines = [
        f"{r['task']}: {r['claim']} -> {r['verdict']}"
        + (
            f" (b = {r['effect']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}])"
            if np.isfinite(r["effect"])
            else f" ({r['reason'][:120]})"
        )
        for r in claim_rows or []
    ]
    for k, line in enumerate(reversed(lines)):
        fig.text(0.01, 0.01 + 0.025 * k, line, fontsize=6, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03 + 0.025 * len(lines), 1, 0.96))
    fig.savefig(path, dpi=120)
    plt.close(fig)
