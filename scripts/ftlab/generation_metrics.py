"""Metrics of label scoring (label_scoring.py) that need no model: ROUGE-L F1 and exact match of a
generated answer against the gold one, and the chance level of each metric.

* **ROUGE-L** F1 by `rouge-score`: its word tokenizer, or characters (for one-word answers).
* **Exact match** after the task type's normalisation (`answers.py`).
* **Chance** is what a model that knows the output's form but not the input would score: the most
  common label's share (accuracy), or each gold answer scored against another example's
  (ROUGE-L, exact match).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from . import answers

ROUGE_TOKENS = ("words", "characters")


class _Characters:
    """rouge-score tokenizer over characters (lower-cased, whitespace dropped)."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text.lower() if not c.isspace()]


@functools.cache
def _scorer(tokens: str):
    from rouge_score import rouge_scorer

    if tokens not in ROUGE_TOKENS:
        raise ValueError(f"rouge tokens {tokens!r} not in {ROUGE_TOKENS}")
    tokenizer = _Characters() if tokens == "characters" else None
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=tokenizer)


def rouge_l(prediction: str | None, reference: str, tokens: str = "words") -> float:
    """ROUGE-L F1 of `prediction` against `reference` (0 for an empty prediction)."""
    if not prediction or not str(prediction).strip():
        return 0.0
    return float(_scorer(tokens).score(str(reference), str(prediction))["rougeL"].fmeasure)


def exact_match(prediction: str | None, reference: str, task_type: str = "generation") -> bool:
    """Equal after the task type's normalisation (answers.py)."""
    return answers.is_correct(answers.parse(prediction, task_type), str(reference), task_type)


def chance(
    gold: list[str], metric: str, task_type: str = "generation", rouge_tokens: str = "words",
    seed: int = 0,
) -> float:  # fmt: skip
    """The score of a model that knows the output's form but not the input.

    accuracy: the share of the most common gold label (the best constant guess). rouge_l and
    exact_match: each gold answer scored against another example's, paired by a seeded
    permutation with no fixed point. NaN with fewer than two examples.
    """
    n = len(gold)
    if n < 2:
        return math.nan
    if metric == "accuracy":
        keys = [str(answers.parse(str(g), task_type) or g).lower() for g in gold]
        return max(pd.Series(keys).value_counts()) / n
    order = np.random.default_rng(seed).permutation(n)
    partner = np.empty(n, dtype=int)
    partner[order] = np.roll(order, -1)  # a cycle through every example: no one pairs with itself
    if metric == "rouge_l":
        return float(np.mean([rouge_l(gold[partner[i]], gold[i], rouge_tokens) for i in range(n)]))
    if metric == "exact_match":
        return float(np.mean([exact_match(gold[partner[i]], gold[i], task_type) for i in range(n)]))
    raise ValueError(f"unknown metric {metric!r}")
