"""The byte-level BPE tokenizer shared by the embedded models, trained on the task texts.

Digits are split one by one so that numbers are spelled digit by digit: a small model can then
learn column arithmetic instead of memorising a token per number. Byte-level BPE never meets an
unknown character. `<|eos|>` ends every training text; `<|pad|>` is a separate token so that
padding can never be mistaken for the end of a generation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from . import prompts, tables

EOS = "<|eos|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [EOS, PAD]


def texts(frames: Iterable[pd.DataFrame]) -> Iterator[str]:
    """Every text the models will read or write: worked examples in all prompt formats."""
    yield " ".join([prompts.QUESTION, prompts.REASONING, prompts.ANSWER])
    for frame in frames:
        for row in frame.itertuples(index=False):
            choices = list(row.choices) if _present(row.choices) else None
            answer = str(row.answer)
            yield prompts.direct_prompt(row.question, choices) + prompts.direct_completion(answer)
            if _present(row.gold_rationale):
                yield prompts.cot_prompt(row.question, choices) + prompts.cot_completion(
                    row.gold_rationale, answer
                )


def _present(value) -> bool:
    """A cell that holds something (pandas may hand missing strings over as None or NaN)."""
    if isinstance(value, str):
        return bool(value)
    return value is not None and not (isinstance(value, float) and value != value)


def build(frames: Iterable[pd.DataFrame], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train the BPE on the texts of `frames` (task tables); deterministic for the same input."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts(frames), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=PAD, clean_up_tokenization_spaces=False
    )


def train(frames: Iterable[pd.DataFrame], out_dir: str | os.PathLike, vocab_size: int) -> Path:
    """Train and save (save_pretrained) into `out_dir`, via a temp dir renamed into place."""
    with tables.atomic_dir(out_dir) as tmp:
        build(frames, vocab_size).save_pretrained(tmp)
    return Path(out_dir)
