"""Run ids and result paths: the one place that knows how artifacts are named.

A *run* is what gets evaluated: a base model (its name in `models:`, e.g. "student") or a
fine-tuned run "{study}/{variant}/{task}/seed{seed}": the study's student trained on the study's
trainset `variant` of `task`, with `seed`. What the parts mean is the study's: distillation's
variants are trainset kinds, data_scaling's are subset sizes ("n64", a subset drawn per seed),
generalization's task is the training source, evaluated on other tasks (an evaluation names its
own task: `eval_path(run, task)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RESULTS = "results"
_NAME = r"[A-Za-z0-9_]+"
RUN_PATTERN = rf"^({_NAME})/({_NAME})/({_NAME})/seed(\d+)$"  # groups: study, variant, task, seed
_RUN = re.compile(RUN_PATTERN)


@dataclass(frozen=True)
class Run:
    study: str
    variant: str
    task: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.study}/{self.variant}/{self.task}/seed{self.seed}"

    @property
    def group(self) -> str:
        """The run without its seed ("{study}/{variant}/{task}"): seeds of one design cell."""
        return f"{self.study}/{self.variant}/{self.task}"


def run_id(study: str, variant: str, task: str, seed: int) -> str:
    return Run(study, variant, task, int(seed)).id


def parse(run: str) -> Run | None:
    """The parts of a fine-tuned run id; None for anything else (a base model's name)."""
    m = _RUN.match(run)
    return Run(m[1], m[2], m[3], int(m[4])) if m else None


def is_finetuned(run: str) -> bool:
    return parse(run) is not None


def model_dir(run: str) -> str:
    """A base model's directory, or a fine-tuned run's."""
    return f"{RESULTS}/runs/{run}" if is_finetuned(run) else f"{RESULTS}/models/{run}"


def task_table(task: str) -> str:
    return f"{RESULTS}/data/tasks/{task}.parquet"


def trainset_path(study: str, variant: str, task: str, seed: int | None = None) -> str:
    """A study's trainset; with `seed`, one per seed (a seed's own draw, e.g. data_scaling)."""
    if seed is None:
        return f"{RESULTS}/trainsets/{study}/{variant}/{task}.parquet"
    return f"{RESULTS}/trainsets/{study}/{variant}/{task}/seed{seed}.parquet"


def eval_path(run: str, task: str) -> str:
    return f"{RESULTS}/eval/{run}/{task}.parquet"


def faithfulness_path(run: str, task: str) -> str:
    return f"{RESULTS}/faithfulness/{run}/{task}.parquet"


def rationales_path(teacher: str, task: str) -> str:
    return f"{RESULTS}/rationales/{teacher}/{task}.parquet"


def run_of(path: str) -> str | None:
    """The run an artifact belongs to (as in the eval table's `run` column), or None."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != RESULTS:
        return None
    family, rest = parts[1], parts[2:]
    if family in ("models", "runs"):
        return "/".join(rest)
    if family in ("eval", "faithfulness") and len(rest) >= 2:
        return "/".join(rest[:-1])
    return None
