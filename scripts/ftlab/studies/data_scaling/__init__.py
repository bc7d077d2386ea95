"""Data scaling (Raghavendra, Nath, Hendryx 2024, *Revisiting the Superficial Alignment
Hypothesis*): the student fine-tuned on nested subsets of N gold CoT examples (rationale + answer),
its test error split into format errors (no parsable answer) and reasoning errors (well-formed,
wrong), and error(N) fitted as a power law (fit.py).

A seed is one nested draw of the train split: the examples in a seeded order (trainset.py), the
first N of it for size N, so a seed's N=32 subset contains its N=16 one and seeds draw different
subsets. Run "data_scaling/n16/chain_sum/seed0" is the student trained on seed 0's first 16
examples, with training seed 0 too: its trainset is per seed
(results/trainsets/data_scaling/n16/chain_sum/seed0.parquet; the finetune rule reads a seeded
trainset for the studies in SEEDED_TRAINSETS, rules/inputs/finetune.smk). Every N uses the same
hyperparameters; how long it trains is the `schedule` (the paper: a fixed number of epochs).
"""

from __future__ import annotations

import re

STUDY = "data_scaling"
SCHEDULES = ("epochs", "steps")  # epochs: finetune.epochs passes over N; steps: max_steps for all
MIN_SIZES = 3  # distinct N: two points fit any two-parameter curve exactly (fit.MIN_POINTS)
_VARIANT = re.compile(r"^n(\d+)$")


def variant(n: int) -> str:
    """The variant (run name part) of size `n`: each seed's first `n` examples."""
    return f"n{int(n)}"


def parse_variant(name: str) -> int | None:
    """N of a data_scaling variant, or None for any other name."""
    m = _VARIANT.match(name)
    return int(m[1]) if m else None


def finetune_schedule(config: dict) -> dict:
    """The study's effective `epochs` / `max_steps`: its `finetune:` override over `finetune:`."""
    base = config.get("finetune") or {}
    override = config["studies"][STUDY].get("finetune") or {}
    return {k: override.get(k, base.get(k)) for k in ("epochs", "max_steps")}


def check(config: dict) -> list[str]:
    """What the JSON schema cannot say: names that must exist, sizes that fit the train split,
    enough sizes for a fit, and a finetune override that trains as the `schedule` says."""
    where = f"studies.{STUDY}"
    study = config["studies"][STUDY]
    problems = []
    if study["student"] not in config["models"]:
        problems.append(
            f"{where}.student: unknown model {study['student']!r} "
            f"(known: {sorted(config['models'])})"
        )
    sizes = list(study["sizes"])
    if len(set(sizes)) < MIN_SIZES:
        problems.append(
            f"{where}.sizes: {sizes} has {len(set(sizes))} distinct sizes; a power-law fit needs "
            f"at least {MIN_SIZES} (two points fit any two-parameter curve exactly)"
        )
    for i, task in enumerate(study["tasks"]):
        if task not in config["tasks"]:
            problems.append(
                f"{where}.tasks[{i}]: unknown task {task!r} (known: {sorted(config['tasks'])})"
            )
            continue
        split = (config["tasks"][task].get("sizes") or {}).get("train")
        for j, n in enumerate(sizes):
            if split is not None and n > split:
                problems.append(
                    f"{where}.sizes[{j}]: N={n} is larger than the train split of {task!r} "
                    f"(tasks.{task}.sizes.train = {split}); nested subsets draw from it"
                )
        if (config["tasks"][task].get("sizes") or {}).get("test") == 0:
            problems.append(
                f"tasks.{task}.sizes.test: 0, but {where}.tasks[{i}] evaluates {task!r} on its "
                "test split (give it test examples, or do not list it)"
            )
    schedule = finetune_schedule(config)
    if study["schedule"] == "epochs" and schedule["max_steps"] is not None:
        problems.append(
            f"{where}.finetune.max_steps: {schedule['max_steps']} (from the `finetune:` defaults "
            "unless set here) would train every N for that many steps, but schedule 'epochs' "
            "trains each N for finetune.epochs passes; set it to null here, or use schedule 'steps'"
        )
    if study["schedule"] == "steps" and schedule["max_steps"] is None:
        problems.append(
            f"{where}.finetune.max_steps: schedule 'steps' trains every N for the same number of "
            "optimiser steps; set it (here or under `finetune:`)"
        )
    return problems
