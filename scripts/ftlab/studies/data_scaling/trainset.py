"""Nested training subsets of the data_scaling study: a seed's first N gold CoT examples.

A seed orders the train split by sha256(f"{seed}/{example_id}"), a key of each example alone, so
the order depends neither on the table's row order nor on which other examples are in it; size N
is the first N of that order. Hence a seed's subsets are nested (N=16 inside N=32), seeds draw
different subsets, and adding a size leaves every other subset as it was.

Targets are the task's gold rationale and answer in the CoT format (prompts.cot_prompt ->
prompts.cot_completion), so a model can learn the format ("Reasoning: ... Answer: x") apart from
the reasoning inside it. Train examples without a gold rationale are left out of the order.
"""

from __future__ import annotations

import hashlib
import logging

import pandas as pd

from ftlab import cells, prompts, tables

from . import STUDY, variant

log = logging.getLogger(__name__)


def _key(seed: int, example_id: str) -> str:
    return hashlib.sha256(f"{int(seed)}/{example_id}".encode()).hexdigest()


def pool(task_table: pd.DataFrame) -> pd.DataFrame:
    """The train examples a subset can draw: train split, with a non-empty gold rationale."""
    train = task_table[task_table["split"] == "train"]
    has = train["gold_rationale"].fillna("").astype(str).str.strip() != ""
    return train[has]


def order(task_table: pd.DataFrame, seed: int) -> list[str]:
    """Example ids of the pool in seed `seed`'s order (ties, impossible in practice, by id)."""
    ids = pool(task_table)["example_id"].tolist()
    return sorted(ids, key=lambda i: (_key(seed, i), i))


def subset(task_table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """The first `n` pool rows in seed `seed`'s order (in that order)."""
    ids = order(task_table, seed)
    if n > len(ids):
        tasks = sorted(task_table["task"].unique())
        raise ValueError(
            f"{tasks}: N={n} is more than the {len(ids)} train examples with a gold rationale "
            f"(of {int((task_table['split'] == 'train').sum())} in the train split)"
        )
    rows = pool(task_table).set_index("example_id")
    return rows.loc[ids[:n]].reset_index()


def build(task_table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """The trainset (schema "trainset") of size n for seed `seed`: CoT prompt -> rationale, answer."""
    rows = [
        {
            "example_id": row.example_id,
            "task": row.task,
            "study": STUDY,
            "variant": variant(n),
            "prompt": prompts.cot_prompt(row.question, cells.choices(row.choices)),
            "completion": prompts.cot_completion(row.gold_rationale, row.answer),
            "source": "gold",
        }
        for row in subset(task_table, n, seed).itertuples(index=False)
    ]
    log.info("%s: %d gold CoT examples (seed %d's nested order)", variant(n), len(rows), seed)
    return pd.DataFrame.from_records(rows, columns=tables.schema("trainset").names)
