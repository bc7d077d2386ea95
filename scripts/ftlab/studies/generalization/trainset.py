"""The generalization study's fine-tuning data: a source's train split, label-only, plain or FTICL.

Both variants train on the same examples (the first `size` of a seeded order of the train split)
with the same targets, the direct completion " <answer>"; they differ only in the prompt:

* plain: the direct prompt (`prompts.direct_prompt`), as in the faithfulness study's label-only set;
* fticl: k demonstrations drawn from the *other* training examples (a generator seeded with
  (seed, example id)) before it, laid out as at k-shot evaluation (`kshot.render`). The
  shared trainer's completion-only loss masks the whole prompt, demonstrations included, so they
  are context, never targets.

A student with a chat template is shown each demonstration as an earlier user/assistant exchange;
the trainer renders only a prompt that starts with the question block (`prompts.render`), so an
FTICL prompt is rendered here, with the student's tokenizer, and the trainer leaves it as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftlab import cells, kshot, prompts

from . import STUDY, VARIANTS


def training_rows(table: pd.DataFrame, size: int | None, seed: int) -> pd.DataFrame:
    """The first `size` train rows of a seeded order (all of them when None), in table order."""
    train = table[table["split"] == "train"].reset_index(drop=True)
    if train.empty:
        raise ValueError("the task table has no train rows to fine-tune on")
    if size is not None:
        if size > len(train):
            raise ValueError(f"train_size {size} is more than the {len(train)} train rows")
        keep = np.sort(np.random.default_rng(seed).permutation(len(train))[:size])
        train = train.iloc[keep].reset_index(drop=True)
    return train


def build(
    table: pd.DataFrame, variant: str, *, k: int = 0, seed: int = 0, size: int | None = None,
    tokenizer=None, max_seq_len: int | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Rows of the "trainset" table for `variant` (plain | fticl) of the task in `table`.

    With a tokenizer and `max_seq_len` (the fine-tuning's), an FTICL example longer than that is
    an error: the trainer would cut its answer off, and TRL then drops the example silently.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")
    train = training_rows(table, size, seed)
    if variant == "fticl" and len(train) <= k:
        raise ValueError(f"FTICL needs more than k={k} training examples, got {len(train)}")
    pool = train.sort_values("example_id", kind="stable").reset_index(drop=True)
    prompts_ = []
    for row in train.itertuples(index=False):
        choices = cells.choices(row.choices)
        if variant == "plain":
            prompts_.append(prompts.direct_prompt(row.question, choices))
            continue
        drawn = kshot.demonstrations(pool, k, seed, row.example_id, row.example_id)
        demos = kshot.demo_tuples(drawn)
        prompts_.append(kshot.render(tokenizer, row.question, choices, demos))
    completions = [prompts.direct_completion(str(a)) for a in train["answer"]]
    if variant == "fticl" and tokenizer is not None and max_seq_len:
        for eid, p, c in zip(train["example_id"], prompts_, completions, strict=True):
            n = len(tokenizer(p + c)["input_ids"]) + 1  # + EOS
            if n > max_seq_len:
                raise ValueError(
                    f"FTICL example {eid!r} takes {n} tokens with its {k} demonstrations, more "
                    f"than max_seq_len {max_seq_len}: the trainer would cut its answer off; raise "
                    f"studies.{STUDY}.finetune.max_seq_len or lower studies.{STUDY}.k"
                )
    return pd.DataFrame(
        {
            "example_id": train["example_id"].to_numpy(),
            "task": train["task"].to_numpy(),
            "study": STUDY,
            "variant": variant,
            "prompt": prompts_,
            "completion": completions,
            "source": "gold",
        }
    )
