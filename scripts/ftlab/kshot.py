"""The k-shot prompt layout of label scoring (label_scoring.py) and of the in-context trainsets
built from it (studies/generalization/trainset.py): k demonstrations from a task's train split,
drawn per test example by a generator seeded with (seed, example id), so every model sees the
same ones (paired comparisons).

Plain text: the demonstrations' direct prompts and answers, a blank line between examples, then
the question (`fewshot_text`). A model with a chat template sees each demonstration as an earlier
user/assistant exchange (`render`); zero-shot prompts are `prompts.render` as in `evaluate`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from . import cells, hub, prompts

DEMO_SEPARATOR = "\n\n"


def test_rows(table: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """The test rows of a task table in table order (the first `limit` if set)."""
    test = table[table["split"] == "test"]
    if test.empty:
        raise ValueError(f"task table for {sorted(set(table['task']))} has no test split rows")
    return (test if limit is None else test.head(limit)).reset_index(drop=True)


def train_pool(table: pd.DataFrame) -> pd.DataFrame:
    """The train rows demonstrations are drawn from, in example-id order (table order aside)."""
    train = table[table["split"] == "train"]
    return train.sort_values("example_id", kind="stable").reset_index(drop=True)


def _seed(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little")


def demonstrations(
    pool: pd.DataFrame, k: int, seed: int, key: str, exclude: str | None = None
) -> pd.DataFrame:
    """k rows of `pool` drawn without replacement by a generator seeded with (seed, key), in the
    drawn order; `exclude` (an example id: the question itself, in training) is never drawn."""
    if k == 0:
        return pool.iloc[:0]
    candidates = pool if exclude is None else pool[pool["example_id"] != exclude]
    if len(candidates) < k:
        raise ValueError(
            f"{k} demonstrations asked, but the train split has only {len(candidates)} to draw from"
        )
    pick = np.random.default_rng(_seed(seed, key)).choice(len(candidates), size=k, replace=False)
    return candidates.iloc[pick]


def demo_tuples(demos: pd.DataFrame) -> list[tuple[str, list[str] | None, str]]:
    return [
        (q, cells.choices(c), str(a))
        for q, c, a in zip(demos["question"], demos["choices"], demos["answer"], strict=True)
    ]


def fewshot_text(question: str, choices: list[str] | None, demos=()) -> str:
    """The plain-format prompt: each demonstration's direct prompt and answer, then the question's
    direct prompt, a blank line between examples. No demonstrations: `prompts.direct_prompt`."""
    blocks = [prompts.direct_prompt(q, c) + prompts.direct_completion(a) for q, c, a in demos]
    return DEMO_SEPARATOR.join([*blocks, prompts.direct_prompt(question, choices)])


def render(tokenizer, question: str, choices: list[str] | None, demos=()) -> str:
    """The prompt as the model sees it. Without a chat template: `fewshot_text`. With one:
    zero-shot is `prompts.render` (as `evaluate` does); each demonstration is an earlier user turn
    (its question block) answered by an assistant turn ("Answer: <answer>"), then the question,
    and the assistant turn opened with "Answer:"."""
    demos = list(demos)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return fewshot_text(question, choices, demos)
    if not demos:
        return prompts.render(tokenizer, prompts.direct_prompt(question, choices))
    messages = [{"role": "system", "content": prompts.SYSTEM}]
    for q, c, a in demos:
        messages.append({"role": "user", "content": prompts.question_block(q, c).strip()})
        messages.append({"role": "assistant", "content": f"{prompts.ANSWER} {a}"})
    messages.append({"role": "user", "content": prompts.question_block(question, choices).strip()})
    head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return head + prompts.ANSWER


def load_tokenizer(model_dir):
    """A model directory's tokenizer, without loading its weights (hub pointers followed)."""
    import json
    from pathlib import Path

    from transformers import AutoTokenizer

    if hub.is_pointer(model_dir):
        p = json.loads((Path(model_dir) / hub.POINTER).read_text())
        return AutoTokenizer.from_pretrained(
            p["name_or_path"],
            revision=p["revision"],
            trust_remote_code=bool(p["trust_remote_code"]),
        )
    return AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
