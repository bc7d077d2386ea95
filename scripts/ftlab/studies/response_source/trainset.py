"""The response_source study's training sets: the same questions, one response source each.

`align` decides the questions once per task: the train questions that have a gold rationale, a
kept teacher rationale and (when `self` is a source) a kept student rationale; a question missing
from any of them is dropped from all, and the table says which source lacked it. Every source's
trainset (`build`) then holds exactly the kept questions, in task-table order, with the CoT prompt
and a completion that ends in the gold answer, so sources differ only in the rationale's words:
the same examples, answers and optimiser steps for every source.

The rewrite source is not part of the alignment: it is made for exactly the kept questions
(rewrite.py), and a question whose rewrite failed keeps its gold text (source `gold_fallback`).
That keeps every source aligned while a new rewrite prompt reruns only the rewrite's chain.
"""

from __future__ import annotations

import logging

import pandas as pd
import pyarrow as pa

from ftlab import cells, prompts, tables

from . import ALIGNED, REWRITE, SOURCES, STUDY, style

log = logging.getLogger(__name__)

# one row per train question of a task: kept for every source, or which sources lacked it
QUESTIONS = tables.register(
    "response_source_questions",
    pa.schema(
        [
            ("example_id", pa.string()),
            ("task", pa.string()),
            ("kept", pa.bool_()),
            ("missing", pa.string()),  # comma-separated sources without it ("" when kept)
        ]
    ),
)


def train_questions(task_table: pd.DataFrame) -> pd.DataFrame:
    train = task_table[task_table["split"] == "train"].reset_index(drop=True)
    if train.empty:
        raise ValueError("the task table has no train rows to fine-tune on")
    return train


def has_gold(task_table: pd.DataFrame) -> set[str]:
    train = train_questions(task_table)
    present = train["gold_rationale"].fillna("").astype(str).str.strip() != ""
    return set(train.loc[present, "example_id"])


def has_rationale(rationale_table: pd.DataFrame, task_table: pd.DataFrame) -> set[str]:
    """Train questions with a kept, non-empty rationale (the shared cache's filter)."""
    rows = rationale_table[(rationale_table["split"] == "train") & rationale_table["kept"]]
    rows = rows[rows["rationale"].fillna("").str.strip() != ""]
    unknown = set(rows["example_id"]) - set(train_questions(task_table)["example_id"])
    if unknown:
        raise ValueError(
            f"rationales for {len(unknown)} example ids not in the task's train split "
            f"(first: {sorted(unknown)[:3]}); were they generated from another task table?"
        )
    return set(rows["example_id"])


def align(
    task_table: pd.DataFrame, sources: list[str], rationales: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """The "response_source_questions" table; `rationales`: source -> its rationale table, for
    each of `sources` that reads one (teacher, self)."""
    train = train_questions(task_table)
    available = {"gold": has_gold(task_table)}
    for source in sources:
        if source in ALIGNED and source != "gold":
            available[source] = has_rationale(rationales[source], task_table)
    missing = [
        ",".join(s for s in available if eid not in available[s]) for eid in train["example_id"]
    ]
    out = pd.DataFrame({"example_id": train["example_id"], "task": train["task"],
                        "kept": [m == "" for m in missing], "missing": missing})  # fmt: skip
    task = ",".join(sorted(out["task"].unique()))
    log.info("%s: %d of %d train questions kept for every source; dropped: %s", task,
             int(out["kept"].sum()), len(out),
             ", ".join(f"{s} lacks {sum(s in m.split(',') for m in missing)}" for s in available))  # fmt: skip
    if not out["kept"].any():
        raise ValueError(f"{task}: no train question has a response from every source "
                         f"{list(available)}")  # fmt: skip
    return out


def kept_questions(task_table: pd.DataFrame, questions: pd.DataFrame) -> pd.DataFrame:
    """The kept questions' task rows, in task-table order."""
    keep = set(questions.loc[questions["kept"], "example_id"])
    train = train_questions(task_table)
    return train[train["example_id"].isin(keep)].reset_index(drop=True)


def build(
    source: str,
    task_table: pd.DataFrame,
    questions: pd.DataFrame,
    responses: pd.DataFrame | None = None,
    author: str = "",
    gold_style: str = "human",
    seed: int = 0,
) -> pd.DataFrame:
    """The trainset (schema "trainset") of one source over the kept questions.

    `responses`: the source's rationale table (teacher, self: the shared cache; teacher_rewrite:
    the rewrites); `author`: whose responses they are, for the `source` column. `gold_style` and
    `seed` make the gold text (gold, and the rewrite's fallback).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown response source {source!r}; known: {SOURCES}")
    rows = kept_questions(task_table, questions)
    by_id = {}
    if source != "gold":
        if responses is None:
            raise ValueError(f"source {source!r} needs its rationale table")
        usable = responses[(responses["split"] == "train") & responses["kept"]]
        by_id = dict(zip(usable["example_id"], usable["rationale"], strict=True))
    records, fallback = [], 0
    for row in rows.itertuples(index=False):
        if source == "gold":
            rationale = style.style(row.gold_rationale, row.example_id, gold_style, seed).text
            origin = f"gold:{gold_style}"
        elif row.example_id in by_id:
            rationale, origin = by_id[row.example_id], f"{source}:{author}"
        elif source == REWRITE:
            rationale = style.style(row.gold_rationale, row.example_id, gold_style, seed).text
            origin, fallback = "gold_fallback", fallback + 1
        else:
            raise ValueError(f"{source}: question {row.example_id!r} was kept but has no "
                             "response (were the questions aligned on another table?)")  # fmt: skip
        choices = cells.choices(row.choices)
        records.append({
            "example_id": row.example_id, "task": row.task, "study": STUDY, "variant": source,
            "prompt": prompts.cot_prompt(row.question, choices),
            "completion": prompts.cot_completion(rationale, row.answer), "source": origin,
        })  # fmt: skip
    if fallback:
        log.warning("%s: %d of %d rewrites failed; those questions keep their gold text",
                    source, fallback, len(records))  # fmt: skip
    log.info("%s: %d training examples (kept questions of %d train questions)", source,
             len(records), len(questions))  # fmt: skip
    return pd.DataFrame.from_records(records, columns=tables.schema("trainset").names)
