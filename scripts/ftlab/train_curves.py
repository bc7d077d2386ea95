"""Training curves of a study's fine-tuning runs: loss per optimiser step, one line per design
cell (study/variant/task), mean over seeds with the seeds' range as a band."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from . import runs  # noqa: E402


def frame(logs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """run id -> train_log rows, as one frame with the run's group and seed."""
    parts = []
    for run, log in logs.items():
        parsed = runs.parse(run)
        if parsed is None:
            raise ValueError(f"{run!r} is not a fine-tuned run id (study/variant/task/seedN)")
        parts.append(log[["step", "loss"]].assign(group=parsed.group, seed=parsed.seed))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["step", "loss", "group", "seed"])  # fmt: skip


def plot(logs: dict[str, pd.DataFrame], path, title: str) -> None:
    df = frame(logs)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for group, g in df.groupby("group", sort=True):
        by_step = g.groupby("step")["loss"]
        mean = by_step.mean()
        ax.plot(mean.index, mean.values, label=f"{group} ({g['seed'].nunique()} seeds)", lw=1.2)
        ax.fill_between(mean.index, by_step.min().values, by_step.max().values, alpha=0.15)
    ax.set(xlabel="optimiser step", ylabel="training loss (completion tokens)", title=title)
    ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no fine-tuning runs", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
