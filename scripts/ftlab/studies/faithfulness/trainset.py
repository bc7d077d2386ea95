"""The faithfulness study's own fine-tuning data: a task's train split, label-only.

Lobo et al. fine-tune a CoT-writing model on a task and score its CoT again. Label-only targets
(question -> answer, no rationale) are task-specific fine-tuning that never shows the model a CoT,
so whatever happens to its CoT afterwards is a side effect of the fine-tuning.
"""

from __future__ import annotations

import pandas as pd

from ftlab import cells, prompts


def label_only(task_table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the "trainset" table: one per train question, direct prompt -> answer."""
    train = task_table[task_table["split"] == "train"]
    if train.empty:
        raise ValueError("the task table has no train rows to fine-tune on")
    return pd.DataFrame(
        {
            "example_id": train["example_id"].to_numpy(),
            "task": train["task"].to_numpy(),
            "study": "faithfulness",
            "variant": "label_only",
            "prompt": [
                prompts.direct_prompt(q, cells.choices(c))
                for q, c in zip(train["question"], train["choices"], strict=True)
            ],
            "completion": [prompts.direct_completion(a) for a in train["answer"]],
            "source": "gold",
        }
    )
