"""Training sets of the distillation study: one (prompt, completion) table per variant.

Every variant uses the same questions (train split, rationale kept by the teacher filter) and the
gold label, so the variants differ only in what surrounds the label (Wadhwa et al. 2024):

* label_only               direct prompt -> answer
* cot_before               CoT prompt    -> rationale, answer
* cot_after                direct prompt -> answer, "Reasoning:" rationale
* cot_after_shuffled       as cot_after, the rationale's words in a seeded random order
* cot_after_key_tokens     as cot_after, only the top-k% most important words (original order)
* cot_after_random_tokens  as cot_after, the same number of words chosen at random (the control)

Words are whitespace tokens. Randomness is drawn per example from (seed, example_id), so a row's
text does not depend on which other rows are in the table.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ftlab import cells, prompts, tables
from ftlab.settings import ConfigError
from ftlab.settings import from_config as settings_from_config

from . import NEEDS_TEACHER, VARIANTS, key_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    key_token_fraction: float = 0.15
    importance: str = "saliency"
    importance_batch_size: int = 32

    @classmethod
    def from_config(cls, cfg: dict, where: str = "studies.distillation") -> Settings:
        """From the keys a variant uses (the rule passes only those; `seed` is the config's)."""
        s = settings_from_config(cls, cfg, where)
        if not 0 < s.key_token_fraction <= 1:
            raise ConfigError(
                f"{where}.key_token_fraction: must be in (0, 1], got {s.key_token_fraction}"
            )
        if s.importance not in key_tokens.METHODS:
            raise ConfigError(
                f"{where}.importance: {s.importance!r} is not one of {key_tokens.METHODS}"
            )
        return s


def examples(task_table: pd.DataFrame, rationale_table: pd.DataFrame) -> pd.DataFrame:
    """Train questions with a kept rationale: the rows every variant is built from."""
    kept = rationale_table[(rationale_table["split"] == "train") & rationale_table["kept"]]
    train = task_table[task_table["split"] == "train"]
    unknown = sorted(set(kept["example_id"]) - set(train["example_id"]))
    if unknown:
        raise ValueError(
            f"rationales for {len(unknown)} example ids not in the task's train split "
            f"(first: {unknown[:3]}); were they generated from another task table?"
        )
    merged = train.merge(kept[["example_id", "rationale", "teacher"]], on="example_id", how="inner")
    return merged.reset_index(drop=True)


def _rng(seed: int, example_id: str) -> np.random.Generator:
    return np.random.default_rng(
        [seed, int(hashlib.sha256(example_id.encode()).hexdigest()[:15], 16)]
    )


def shuffled(words: list[str], rng: np.random.Generator) -> list[str]:
    return [words[i] for i in rng.permutation(len(words))]


def random_subset(words: list[str], k: int, rng: np.random.Generator) -> list[str]:
    return [words[i] for i in sorted(rng.choice(len(words), size=k, replace=False).tolist())]


def key_token_scores(
    ex: pd.DataFrame, teacher_dir: str | Path, settings: Settings, threads: int = 1
) -> tuple[list[np.ndarray], str]:
    """Importance of every rationale word under the teacher (see key_tokens.py), and the device
    it ran on. Imports ftlab.models here: the other variants need neither torch nor the teacher."""
    from ftlab import models

    models.set_threads(threads)
    device = models.pick_device()
    model, tokenizer = models.load(teacher_dir, device=device)
    items = [
        (prompts.cot_prompt(q, cells.choices(c)), r, a)
        for q, c, r, a in zip(
            ex["question"], ex["choices"], ex["rationale"], ex["answer"], strict=True
        )
    ]
    scores = key_tokens.score(
        model, tokenizer, items, settings.importance, settings.importance_batch_size
    )
    return scores, device


def build(
    variant: str,
    task_table: pd.DataFrame,
    rationale_table: pd.DataFrame,
    settings: Settings,
    study: str = "distillation",
    scores: list[np.ndarray] | None = None,
) -> pd.DataFrame:
    """The variant's trainset (schema "trainset"). `scores`: word importances, key-token variant only."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown distillation variant {variant!r}; known: {VARIANTS}")
    ex = examples(task_table, rationale_table)
    if variant in NEEDS_TEACHER and (scores is None or len(scores) != len(ex)):
        raise ValueError(f"{variant} needs one importance score array per example ({len(ex)})")
    rows = []
    for i, row in enumerate(ex.itertuples(index=False)):
        choices, words = cells.choices(row.choices), row.rationale.split()
        rng = _rng(settings.seed, row.example_id)
        k = key_tokens.keep_count(len(words), settings.key_token_fraction)
        if variant == "label_only":
            prompt, completion = (
                prompts.direct_prompt(row.question, choices),
                prompts.direct_completion(row.answer),
            )
        elif variant == "cot_before":
            prompt = prompts.cot_prompt(row.question, choices)
            completion = prompts.cot_completion(row.rationale, row.answer)
        else:
            if variant == "cot_after_shuffled":
                words = shuffled(words, rng)
            elif variant == "cot_after_key_tokens":
                words = [
                    words[j] for j in key_tokens.top_words(scores[i], settings.key_token_fraction)
                ]
            elif variant == "cot_after_random_tokens":
                words = random_subset(words, k, rng)
            rationale = row.rationale if variant == "cot_after" else " ".join(words)
            prompt = prompts.direct_prompt(row.question, choices)
            completion = prompts.cot_after_completion(rationale, row.answer)
        rows.append(
            {
                "example_id": row.example_id,
                "task": row.task,
                "study": study,
                "variant": variant,
                "prompt": prompt,
                "completion": completion,
                "source": "gold" if variant == "label_only" else f"teacher:{row.teacher}",
            }
        )
    log.info(
        "%s: %d training examples (of %d train questions)",
        variant,
        len(rows),
        int((task_table["split"] == "train").sum()),
    )
    return pd.DataFrame.from_records(rows, columns=tables.schema("trainset").names)
