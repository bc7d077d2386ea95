"""Running a model for inference: eval mode without autograd, and batches longest first.

Shared by every stage that scores or decodes with a model (generation, familiarity, label
scoring, key-token saliency, the constrained rewrite), so each restores the model's mode the same
way however its loop ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence


@contextlib.contextmanager
def evaluating(model, grad: bool = False):
    """Eval mode (and `torch.inference_mode` unless `grad`) for the block; the model's
    train/eval mode is restored afterwards, also on an exception."""
    import torch  # here: config checks import the modules that import this one

    was_training = model.training
    model.eval()
    try:
        if grad:
            yield model
        else:
            with torch.inference_mode():
                yield model
    finally:
        model.train(was_training)


def longest_first(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of `batch_size`, longest first (an out-of-memory batch fails early)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for b in range(0, len(order), batch_size):
        yield order[b : b + batch_size]
