"""Tiny builders the tests share: tokenizers, random Llama models, model directories, task tables.

Tests import these (`from factories import ...`; tests/ is on sys.path through its conftest.py)
instead of importing each other: a test module is never imported by another. Every builder is
deterministic: the same arguments give the same tokenizer, weights and rows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ftlab.task_sources import TASK_COLUMNS

if TYPE_CHECKING:  # imported where used: a child process that needs only a table stays light
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

# --- tokenizers -----------------------------------------------------------------------------------

CORPUS = [
    "Question: What is 3 + 4 + 5?\nReasoning: 3 + 4 = 7, 7 + 5 = 12.\nAnswer: 12",
    "Question: How many legs do 2 cats have?\nReasoning: 2 * 4 = 8.\nAnswer: 8",
    "Question: All birds fly. Is a robin a bird?\n(A) yes\n(B) no\nAnswer: A",
]


def bpe_tokenizer(
    corpus: Iterable[str] = CORPUS, vocab_size: int = 300, repeat: int = 4
) -> PreTrainedTokenizerFast:
    """A byte-level BPE like the pipeline's embedded tokenizer, with <pad> (id 0) and <eos> (1),
    trained on `corpus` repeated `repeat` times."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(corpus) * repeat, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """`bpe_tokenizer` on the shared CORPUS (300 tokens)."""
    return bpe_tokenizer(CORPUS, vocab_size=300)


# --- models ---------------------------------------------------------------------------------------


def tiny_llama(
    tokenizer,
    seed: int = 0,
    *,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int | None = 2,
    max_positions: int = 256,
    **config,
) -> LlamaForCausalLM:
    """A random fp32 Llama (eval mode) sized for `tokenizer`, its weights fixed by `seed`.

    No BOS token (the tokenizers here have none); `config` passes further LlamaConfig fields
    (`tie_word_embeddings=True`, ...). `kv_heads=None` means as many as `heads`.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fields = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads or heads,
        "max_position_embeddings": max_positions,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
    }
    torch.manual_seed(seed)
    cfg = LlamaConfig(**(fields | config))
    return LlamaForCausalLM(cfg).eval()


def tiny_sliding_window(tokenizer, window: int = 6):
    """A random fp32 Mistral (eval mode) whose layers attend within a sliding window: the model
    that must keep transformers' own attention masks (no shared 4D mask, no shared caches)."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           sliding_window=window, max_position_embeddings=256,
                           eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return MistralForCausalLM(config).eval()


def tiny_model(tokenizer, seed: int = 0, boost: float = 2.5) -> LlamaForCausalLM:
    """`tiny_llama` whose EOS and newline logits are boosted, so generation lengths vary."""
    import torch

    model = tiny_llama(tokenizer, seed)
    with torch.no_grad():
        for tid in {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("Ċ")}:
            model.lm_head.weight[tid] *= boost
    return model


def save_model_dir(model, tokenizer, path: str | Path) -> Path:
    """`model` and `tokenizer` saved (save_pretrained) into `path`: a loadable model directory."""
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# --- task tables ----------------------------------------------------------------------------------

TASK_DEFAULTS = {
    "task": "chain_sum",
    "split": "train",
    "task_type": "numeric",
    "choices": None,
    "gold_rationale": None,
    "metadata": "{}",
}


def task_table(rows: Iterable[dict]) -> pd.DataFrame:
    """A `tasks` table (ftlab.tables) from rows naming at least example_id, question and answer;
    every other column takes TASK_DEFAULTS."""
    return pd.DataFrame([TASK_DEFAULTS | row for row in rows], columns=TASK_COLUMNS)


def sum_row(example_id: str, a: int, b: int, rationale: str | None = "{a} + {b} = {s}", **fields):
    """A task row asking `What is a + b?` (gold answer and, unless None, rationale filled in)."""
    s = a + b
    return {
        "example_id": example_id,
        "question": f"What is {a} + {b}?",
        "answer": str(s),
        "gold_rationale": rationale.format(a=a, b=b, s=s) if rationale else None,
        **fields,
    }


def tiny_tasks(n: int = 30) -> pd.DataFrame:
    """`n` chain_sum train rows with gold rationales, and one choice row without one."""
    rows = [sum_row(f"e{i}", 3 * i + 7, 11 * i + 5) for i in range(n)]
    rows.append(
        {
            "example_id": "c",
            "task": "pick",
            "task_type": "choice",
            "question": "Which is a bird?",
            "choices": ["dog", "duck"],
            "answer": "B",
        }
    )
    return task_table(rows)


def split_sums(n_train: int = 12, n_val: int = 3, n_test: int = 2) -> pd.DataFrame:
    """chain_sum rows `{split}-{i}` in each split (distinct questions, gold rationales)."""
    rows = []
    for offset, (split, n) in enumerate(
        (("train", n_train), ("validation", n_val), ("test", n_test))
    ):
        rows += [
            sum_row(f"{split}-{i}", i + 1 + 100 * offset, 2 * i + 3, split=split) for i in range(n)
        ]
    return task_table(rows)


# --- a fake teacher ------------------------------------------------------------------------------


class FakeTeacher:
    """A teacher backend (ftlab.teachers) that adds the first two numbers of each prompt; wrong
    whenever the first one is a multiple of 3. Records its calls; `delay` seconds per call."""

    fingerprint = "fake-teacher-v1"

    def __init__(self, delay: float = 0.0):
        self.calls: list[list[str]] = []
        self.delay = delay

    def complete(self, prompt_list, decoding):
        from ftlab import teachers

        self.calls.append(list(prompt_list))
        time.sleep(self.delay)
        out = []
        for p in prompt_list:
            a, b = map(int, re.findall(r"\d+", p)[:2])
            s = a + b + (1 if a % 3 == 0 else 0)
            out.append(teachers.Completion(f" {a} + {b} = {s}\nAnswer: {s}", len(p.split()), 9))
        return out

    @property
    def prompts_seen(self):
        return [p for call in self.calls for p in call]


def rationale_settings(**kw):
    """Small-batch rationale settings (`rationales` section keys in `kw` win)."""
    from ftlab import rationales

    return rationales.Settings.from_config({"batch_size": 4, "max_new_tokens": 32, **kw})
