"""The generalization study's result: the train x eval matrix, its aggregates, the claims, heatmaps.

Scores come from the "label_scores" tables of the base student and of every run on every eval
task: accuracy (restricted log-likelihood argmax) on classification tasks, ROUGE-L F1 and exact
match on generation tasks, each per eval setting (zero-shot, k-shot). Each arm is a (seeds,
examples) array, examples in example-id order, the same questions for every arm (paired).

Per cell (source, variant, eval task, setting, metric): the run group's score and the base's, each
with a cluster-bootstrap 95% interval; fine-tuned - base (paired, the base one row against every
seed); FTICL - plain (paired, seeds by index); the eval set's chance level and whether the base is
above it (its interval's lower end above chance: else the cell measures little, and the log says
so). Aggregates pool the cells of one cell type (in_domain, cross_domain, cross_task) per source
kind and metric: their examples side by side as one (seeds, examples) array, seed i of every
source as one cluster.

Claims (Holm-corrected across the study), per source and eval setting:
* classification_transfers: plain - base > 0 over the cross-domain cells of a classification
  source;
* fticl_helps_generation: FTICL - plain > 0 in ROUGE-L over the cross-domain and cross-task cells
  of a generation source whose eval task is a generation task (one metric in one pool).
"""

from __future__ import annotations

import logging
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ftlab import claims, generation_metrics, runs, stats, tables  # noqa: E402

from . import CELL_TYPES, STUDY, cell_type, eval_tasks, groups, sources, task_of  # noqa: E402

log = logging.getLogger(__name__)

_s, _f, _i = pa.string(), pa.float64(), pa.int64()
# one row per matrix cell (run group x eval task x eval setting x metric) and per aggregate
# (source kind x cell type x variant x setting x metric) (summarize_generalization)
SCHEMA = tables.register(
    "generalization",
    pa.schema(
        [
            ("level", _s),  # cell | aggregate
            ("variant", _s),  # plain | fticl
            ("source", _s),  # the (task, domain) entry fine-tuned on; "*" in an aggregate
            ("source_task", _s),
            ("source_kind", _s),
            ("eval_task", _s),  # the (task, domain) test set; "*" in an aggregate
            ("eval_group", _s),  # its task
            ("eval_kind", _s),
            ("cell_type", _s),  # in_domain | cross_domain | cross_task
            ("setting", _s),  # zero_shot | k_shot
            ("metric", _s),  # accuracy | rouge_l | exact_match
            ("seeds", _i),
            ("examples", _i),
            ("score", _f),
            ("score_low", _f),
            ("score_high", _f),
            ("base_score", _f),
            ("base_low", _f),
            ("base_high", _f),
            ("chance", _f),
            ("base_above_chance", pa.bool_()),
            ("vs_base", _f),  # fine-tuned - base, paired
            ("vs_base_low", _f),
            ("vs_base_high", _f),
            ("vs_base_p", _f),
            ("fticl_vs_plain", _f),  # fticl rows only: FTICL - plain, paired by seed
            ("fticl_low", _f),
            ("fticl_high", _f),
            ("fticl_p", _f),
        ]
    ),
)

BASE = "base"
PRIMARY = {"classification": "accuracy", "generation": "rouge_l"}
CLAIMS = {
    "classification_transfers": (
        "Fine-tuning on a classification task improves the other domains of that task "
        "(cross-domain, fine-tuned - base > 0)"
    ),
    "fticl_helps_generation": (
        "In-context examples in the training prompts (FTICL) generalise better than plain "
        "fine-tuning on a generation task (cross-domain and cross-task ROUGE-L, FTICL - plain > 0)"
    ),
}


def arm_of(run: str, student: str) -> tuple[str, int | None]:
    """(arm, seed): ("base", None) for the student; ("{variant}/{source}", seed) for a run."""
    if run == student:
        return BASE, None
    parsed = runs.parse(run)
    if parsed is None or parsed.study != STUDY:
        raise ValueError(
            f"label scores of {run!r}: neither the student {student!r} nor a "
            f"{STUDY}/<variant>/<source>/seed<N> run"
        )
    return f"{parsed.variant}/{parsed.task}", parsed.seed


def metric_columns(kind: str) -> dict[str, str]:
    """metric -> the label_scores column holding it."""
    return {"accuracy": "correct"} if kind == "classification" else {
        "rouge_l": "rouge_l", "exact_match": "correct"}  # fmt: skip


def arrays(frames: list[pd.DataFrame], student: str, study: dict):
    """({(arm, eval task, setting, metric): (seeds, examples) array}, {eval task: gold answers}),
    examples in example-id order; every seed of an arm and the base on the same questions."""
    kinds = {d: groups(study)[t]["kind"] for d, t in task_of(study).items()}
    by_key: dict[tuple, dict] = {}
    gold: dict[str, list[str]] = {}
    for frame in frames:
        for (run, task, setting), part in frame.groupby(["run", "task", "setting"], sort=False):
            if task not in kinds:
                raise ValueError(f"label scores of {run} on {task!r}: not an eval task")
            arm, seed = arm_of(run, student)
            part = part.sort_values("example_id", kind="stable")
            for metric, column in metric_columns(kinds[task]).items():
                values = part[column].to_numpy(float)
                by_key.setdefault((arm, task, setting, metric), {})[seed] = (
                    part["example_id"].tolist(), values)  # fmt: skip
            if arm == BASE:
                gold[task] = part["answer"].tolist()
    out, ids_of = {}, {}
    for key, by_seed in by_key.items():
        ids = next(iter(by_seed.values()))[0]
        want = ids_of.setdefault(key[1:3], ids)
        for seed, (got, _) in by_seed.items():
            if got != want:
                who = "the base" if seed is None else f"{key[0]} seed {seed}"
                raise ValueError(
                    f"{key[1]} ({key[2]}): {who} was scored on other test questions than the "
                    "other arms (paired comparisons need the same ones)"
                )
        order = sorted(by_seed, key=lambda s: -1 if s is None else s)
        out[key] = np.vstack([by_seed[s][1] for s in order])
    return out, gold


def _nan_estimate() -> stats.Estimate:
    return stats.Estimate(math.nan, math.nan, math.nan, 0, 0, math.nan, stats.EMPTY)


def _row(base: dict, est, base_est, diff, fticl, chance: float) -> dict:
    above = None if math.isnan(chance) or math.isnan(base_est.low) else bool(base_est.low > chance)
    return base | {
        "seeds": int(est.n_seeds),
        "examples": int(est.n_examples),
        "score": est.effect, "score_low": est.low, "score_high": est.high,
        "base_score": base_est.effect, "base_low": base_est.low, "base_high": base_est.high,
        "chance": chance,
        "base_above_chance": above,
        "vs_base": diff.effect, "vs_base_low": diff.low, "vs_base_high": diff.high,
        "vs_base_p": diff.p_value,
        "fticl_vs_plain": fticl.effect, "fticl_low": fticl.low, "fticl_high": fticl.high,
        "fticl_p": fticl.p_value,
    }  # fmt: skip


def _compare(x, base, plain, resamples, seed):
    est = stats.mean_ci(x, resamples=resamples, seed=seed)
    base_est = stats.mean_ci(base, resamples=resamples, seed=seed)
    diff = stats.paired_bootstrap(x, base, resamples=resamples, seed=seed)
    fticl = (
        stats.paired_bootstrap(x, plain, resamples=resamples, seed=seed)
        if plain is not None
        else _nan_estimate()
    )
    return est, base_est, diff, fticl


def summarize(
    frames: list[pd.DataFrame], student: str, study: dict, resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Rows of the "generalization" table (cells, then aggregates)."""
    x, gold = arrays(frames, student, study)
    g, of = groups(study), task_of(study)
    settings_ = list(study["eval_settings"])
    variants = list(study["variants"])
    chances = {
        (task, metric): generation_metrics.chance(
            gold[task], metric, rouge_tokens=g[of[task]]["rouge_tokens"], seed=seed
        )
        for task in eval_tasks(study)
        for metric in metric_columns(g[of[task]]["kind"])
        if task in gold
    }
    rows, pools = [], {}
    for source in sources(study):
        for variant in variants:
            for task in eval_tasks(study):
                kind = g[of[task]]["kind"]
                ctype = cell_type(study, source, task)
                for setting in settings_:
                    for metric in metric_columns(kind):
                        arm = x.get((f"{variant}/{source}", task, setting, metric))
                        base = x.get((BASE, task, setting, metric))
                        if arm is None or base is None:
                            missing = f"{variant}/{source}" if arm is None else student
                            raise ValueError(f"no label scores of {missing} on {task} ({setting})")
                        plain = x.get((f"plain/{source}", task, setting, metric))
                        plain = plain if variant == "fticl" else None
                        est, base_est, diff, fticl = _compare(arm, base, plain, resamples, seed)
                        chance = chances[(task, metric)]
                        key = dict(level="cell", variant=variant, source=source,
                                   source_task=of[source], source_kind=g[of[source]]["kind"],
                                   eval_task=task, eval_group=of[task], eval_kind=kind,
                                   cell_type=ctype, setting=setting, metric=metric)  # fmt: skip
                        row = _row(key, est, base_est, diff, fticl, chance)
                        rows.append(row)
                        _log_cell(row)
                        pool = (g[of[source]]["kind"], ctype, variant, setting, metric)
                        pools.setdefault(pool, []).append((arm, base, plain, chance))
    for (source_kind, ctype, variant, setting, metric), members in pools.items():
        arm = np.hstack([m[0] for m in members])
        base = np.hstack([m[1] for m in members])
        plain = np.hstack([m[2] for m in members]) if variant == "fticl" else None
        weights = [m[1].shape[1] for m in members]
        chance = float(np.average([m[3] for m in members], weights=weights))
        est, base_est, diff, fticl = _compare(arm, base, plain, resamples, seed)
        kind = "classification" if metric == "accuracy" else "generation"
        key = dict(level="aggregate", variant=variant, source="*", source_task="*",
                   source_kind=source_kind, eval_task="*", eval_group="*", eval_kind=kind,
                   cell_type=ctype, setting=setting, metric=metric)  # fmt: skip
        rows.append(_row(key, est, base_est, diff, fticl, chance))
    out = pd.DataFrame(rows, columns=SCHEMA.names)
    rank = {c: i for i, c in enumerate(CELL_TYPES)}
    agg = out["level"] == "aggregate"
    order = out[agg].assign(_c=out.loc[agg, "cell_type"].map(rank)).sort_values(
        ["source_kind", "setting", "metric", "_c", "variant"], kind="stable").index  # fmt: skip
    return pd.concat([out[~agg], out.loc[order]], ignore_index=True)


def _log_cell(r: dict) -> None:
    above = {True: "yes", False: "NO (the cell measures little)", None: "unknown"}
    log.info(
        "cell %s/%s -> %s (%s, %s, %s): %.3f vs base %.3f (chance %.3f, base above chance: %s); "
        "fine-tuned - base %+.3f [%+.3f, %+.3f]",
        r["variant"], r["source"], r["eval_task"], r["cell_type"], r["setting"], r["metric"],
        r["score"], r["base_score"], r["chance"], above[r["base_above_chance"]], r["vs_base"],
        r["vs_base_low"], r["vs_base_high"],
    )  # fmt: skip


# --- claims ---------------------------------------------------------------------------------------


def _pooled(x, study, source, variant, setting, metric, keep) -> tuple[np.ndarray, list[str]]:
    """The cells of `source` x `variant` (eval tasks passing `keep`) side by side; their names."""
    parts, names = [], []
    for task in eval_tasks(study):
        arm = x.get((f"{variant}/{source}", task, setting, metric))
        if keep(task) and arm is not None:
            parts.append(arm)
            names.append(task)
    return (np.hstack(parts) if parts else None), names


def claim_rows(
    frames: list[pd.DataFrame], student: str, study: dict, resamples: int = 1000, seed: int = 0
) -> list[dict]:
    """One claims row per claim x source x eval setting, Holm-corrected across the study."""
    x, _ = arrays(frames, student, study)
    g, of = groups(study), task_of(study)
    rows = []
    for setting in study["eval_settings"]:
        for source in sources(study):
            kind = g[of[source]]["kind"]
            where = f"{source} ({setting})"
            if kind == "classification":
                claim = claims.Claim(
                    "classification_transfers", CLAIMS["classification_transfers"],
                    f"plain - base, accuracy over cross-domain cells, {setting}", "greater",
                )  # fmt: skip
                models = [f"{STUDY}/plain/{source}", student]
                if "plain" not in study["variants"]:
                    rows.append(claims.not_tested_row(
                        STUDY, claim, where, "Not tested: the plain variant is not configured.",
                        models))  # fmt: skip
                    continue

                def cross(task, source=source):
                    return cell_type(study, source, task) == "cross_domain"

                arm, names = _pooled(x, study, source, "plain", setting, "accuracy", cross)
                if arm is None:
                    rows.append(claims.not_tested_row(
                        STUDY, claim, where, f"Not tested: task {of[source]!r} has no other "
                        "domain to transfer to.", models))  # fmt: skip
                    continue
                base = np.hstack([x[(BASE, t, setting, "accuracy")] for t in names])
                est = stats.paired_bootstrap(arm, base, resamples=resamples, seed=seed)
            else:
                claim = claims.Claim(
                    "fticl_helps_generation", CLAIMS["fticl_helps_generation"],
                    f"fticl - plain, ROUGE-L over cross-domain and cross-task generation cells, "
                    f"{setting}", "greater",
                )  # fmt: skip
                models = [f"{STUDY}/fticl/{source}", f"{STUDY}/plain/{source}"]
                if not {"plain", "fticl"} <= set(study["variants"]):
                    rows.append(claims.not_tested_row(
                        STUDY, claim, where, "Not tested: needs both the plain and the fticl "
                        "variants.", models))  # fmt: skip
                    continue

                def outside(task, source=source):
                    return task != source and g[of[task]]["kind"] == "generation"

                arm, names = _pooled(x, study, source, "fticl", setting, "rouge_l", outside)
                plain, _ = _pooled(x, study, source, "plain", setting, "rouge_l", outside)
                if arm is None:
                    rows.append(claims.not_tested_row(
                        STUDY, claim, where, "Not tested: no generation eval task besides the "
                        "source itself.", models))  # fmt: skip
                    continue
                est = stats.paired_bootstrap(arm, plain, resamples=resamples, seed=seed)
            rows.append(claims.row(STUDY, claim, where, est, models))
    return claims.with_holm(rows) if rows else rows


# --- heatmaps -------------------------------------------------------------------------------------


def heatmap(summary: pd.DataFrame, study: dict, setting: str, path: str, claim_rows=None) -> None:
    """Train (run group) x eval (task, domain) of fine-tuned - base in the eval task's primary
    metric, for one eval setting; in-domain cells outlined, cross-domain dashed; * marks a paired
    interval that excludes 0. Column labels give the base score and chance (! = not above it)."""
    g, of = groups(study), task_of(study)
    cols = eval_tasks(study)
    rows = [(v, s) for s in sources(study) for v in study["variants"]]
    cells = summary[(summary["level"] == "cell") & (summary["setting"] == setting)]
    cells = cells[cells["metric"] == cells["eval_kind"].map(PRIMARY)]
    cells = cells.set_index(["variant", "source", "eval_task"])
    value = np.full((len(rows), len(cols)), np.nan)
    for i, (variant, source) in enumerate(rows):
        for j, task in enumerate(cols):
            if (variant, source, task) in cells.index:
                value[i, j] = cells.loc[(variant, source, task)]["vs_base"]
    finite = np.abs(value[np.isfinite(value)])
    vmax = max(0.05, float(finite.max())) if finite.size else 0.05
    fig, ax = plt.subplots(figsize=(1.25 * len(cols) + 3.5, 0.55 * len(rows) + 3.2))
    for i, (variant, source) in enumerate(rows):
        for j, task in enumerate(cols):
            if (variant, source, task) not in cells.index:
                continue
            r = cells.loc[(variant, source, task)]
            sig = r["vs_base_low"] > 0 or r["vs_base_high"] < 0
            dark = abs(r["vs_base"]) > 0.6 * vmax  # white text on the deep colours
            ax.text(j, i, f"{r['vs_base']:+.2f}{'*' if sig else ''}", ha="center", va="center",
                    fontsize=7, color="white" if dark else "black")  # fmt: skip
            ctype = r["cell_type"]
            if ctype != "cross_task":
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.6,
                                       ls="-" if ctype == "in_domain" else "--"))  # fmt: skip
    im = ax.imshow(value, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
    labels = []
    for task in cols:
        base = cells[cells.index.get_level_values("eval_task") == task]
        if base.empty:
            labels.append(task)
            continue
        b = base.iloc[0]
        above = b["base_above_chance"]
        flag = "" if above is not None and not pd.isna(above) and bool(above) else " !"
        labels.append(f"{task}\n[{of[task]}, {PRIMARY[g[of[task]]['kind']]}]\n"
                      f"base {b['base_score']:.2f} / chance {b['chance']:.2f}{flag}")  # fmt: skip
    ax.set_xticks(range(len(cols)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{v}: {s}" for v, s in rows], fontsize=8)
    ax.set_xlabel("evaluated on (task, domain)")
    ax.set_ylabel("fine-tuned on")
    ax.set_title(f"Generalization ({setting}): fine-tuned - base per cell\n"
                 "solid box: in-domain, dashed: cross-domain, * interval excludes 0",
                 fontsize=9)  # fmt: skip
    fig.colorbar(im, ax=ax, label="fine-tuned - base (accuracy or ROUGE-L)", shrink=0.8)
    lines = [
        f"{r['claim']} on {r['task']}: {r['verdict']} ({r['effect']:+.3f} "
        f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}])"
        for r in claim_rows or []
        if r["task"].endswith(f"({setting})")
    ]
    for i, line in enumerate(reversed(lines)):
        fig.text(0.01, 0.01 + 0.025 * i, line, fontsize=6, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03 + 0.025 * len(lines), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
