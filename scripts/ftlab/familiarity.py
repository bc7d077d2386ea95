"""Familiarity: how likely a model finds a training target before it is fine-tuned on it.

For every (prompt, completion) row of a trainset, the completion's log-likelihood given its prompt
under a model (Ren, Wu, Liu 2024 measure "familiarity" as the perplexity of a response under the
model before fine-tuning). The text is laid out exactly as fine-tuning sees it (TRL's prompt-
completion format, `finetune.py`): the prompt rendered for the model (`prompts.render`: a chat
template for instruct models, unchanged for embedded ones), prompt + completion tokenized as one
text, the completion being the tokens after the prompt's, then EOS. So the summed log-likelihood
is minus the example's fine-tuning loss (summed) at step 0.

Rows are scored in batched forward passes (sorted by length, padded, attention mask and explicit
position ids), in float32; batched scores equal one-at-a-time scores with either padding side
(tests/test_familiarity.py). One row per example ("familiarity" table):

* `logprob_sum`   sum of the completion tokens' log-probabilities (natural log), EOS included
* `logprob_mean`  `logprob_sum / completion_tokens`: the example's mean log-probability per token

Two perplexities summarise a set of rows (`perplexities`); they differ and are named apart:

* mean perplexity    mean over examples of exp(-logprob_mean): every example weighs the same
* corpus perplexity  exp(-sum(logprob_sum) / sum(completion_tokens)): every token weighs the same
  (long completions weigh more), the usual language-model figure.

Torch and transformers are imported where they are used, so the workflow can read this module's
names (and the lab its schema) without loading them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ftlab import inference, prompts, tables
from ftlab.settings import ConfigError
from ftlab.settings import from_config as settings_from_config

log = logging.getLogger(__name__)

PADDING_SIDES = ("right", "left")

# one row per trainset example scored under one model (score_familiarity)
SCHEMA = tables.register(
    "familiarity",
    pa.schema(
        [
            ("example_id", pa.string()),
            ("task", pa.string()),
            ("study", pa.string()),
            ("variant", pa.string()),
            ("source", pa.string()),  # the trainset's `source` column
            ("model", pa.string()),  # the model scored under (before any fine-tuning)
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),  # EOS included
            ("logprob_sum", pa.float64()),
            ("logprob_mean", pa.float64()),
        ]
    ),
)


@dataclass(frozen=True)
class Settings:
    """How a trainset is scored: sequences per forward pass, and where the padding goes."""

    batch_size: int = 32
    padding_side: str = "right"

    @classmethod
    def from_config(cls, cfg: dict, where: str = "familiarity") -> Settings:
        s = settings_from_config(cls, cfg, where)
        if s.batch_size < 1:
            raise ConfigError(f"{where}.batch_size: must be >= 1, got {s.batch_size}")
        if s.padding_side not in PADDING_SIDES:
            raise ConfigError(f"{where}.padding_side: {s.padding_side!r} not in {PADDING_SIDES}")
        return s


@dataclass(frozen=True)
class Encoded:
    """One example's token ids: the prompt's first `prompt_tokens`, then the completion's."""

    ids: list[int]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return len(self.ids) - self.prompt_tokens


@dataclass(frozen=True)
class Score:
    logprob_sum: float
    completion_tokens: int

    @property
    def logprob_mean(self) -> float:
        return self.logprob_sum / self.completion_tokens if self.completion_tokens else math.nan


def encode(tokenizer, prompt: str, completion: str, add_eos: bool = True) -> Encoded:
    """Token ids as fine-tuning builds them: render(prompt) + completion as one text, the
    completion being everything after the prompt's tokens, then EOS."""
    text = prompts.render(tokenizer, prompt)
    n_prompt = len(tokenizer(text)["input_ids"])
    ids = list(tokenizer(text + completion)["input_ids"])
    if add_eos and tokenizer.eos_token_id is not None and ids[-1:] != [tokenizer.eos_token_id]:
        ids.append(tokenizer.eos_token_id)
    if n_prompt < 1 or len(ids) <= n_prompt:
        raise ValueError(f"nothing to score: prompt {prompt[:60]!r} has no completion tokens")
    return Encoded(ids, n_prompt)


def _pad(rows: list[Encoded], pad_id: int, side: str):
    """(ids, attention mask, position ids, per-row offset of its first token) of a padded batch."""
    import torch

    width = max(len(r.ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    offsets = []
    for i, r in enumerate(rows):
        start = width - len(r.ids) if side == "left" else 0
        ids[i, start : start + len(r.ids)] = torch.tensor(r.ids, dtype=torch.long)
        mask[i, start : start + len(r.ids)] = 1
        offsets.append(start)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions, offsets


def score_encoded(
    model, rows: list[Encoded], batch_size: int = 32, padding_side: str = "right", pad_id=None
) -> list[Score]:
    """The completion log-likelihood of every row, in batched passes; results in input order."""
    import torch

    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be one of {PADDING_SIDES}, not {padding_side!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if pad_id is None:
        pad_id = getattr(model.config, "pad_token_id", None) or 0
    out: list[Score | None] = [None] * len(rows)
    with inference.evaluating(model):
        for batch in inference.longest_first([len(r.ids) for r in rows], batch_size):
            ids, mask, positions, offsets = _pad([rows[i] for i in batch], pad_id, padding_side)
            ids, mask, positions = (t.to(model.device) for t in (ids, mask, positions))
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            # token t is predicted by the logits at t - 1
            logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            token_lp = logprobs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1).double()
            for j, i in enumerate(batch):
                r, start = rows[i], offsets[j]
                first, last = start + r.prompt_tokens - 1, start + len(r.ids) - 1
                out[i] = Score(float(token_lp[j, first:last].sum()), r.completion_tokens)
    return out


def score(
    model, tokenizer, prompt_list: list[str], completions: list[str], settings: Settings
) -> list[tuple[Encoded, Score]]:
    """(encoding, score) of every (prompt, completion) pair, batched as `settings` say."""
    if len(prompt_list) != len(completions):
        raise ValueError(f"{len(prompt_list)} prompts for {len(completions)} completions")
    encoded = [encode(tokenizer, p, c) for p, c in zip(prompt_list, completions, strict=True)]
    scores = score_encoded(
        model, encoded, settings.batch_size, settings.padding_side, tokenizer.pad_token_id
    )
    return list(zip(encoded, scores, strict=True))


def score_trainset(trainset: pd.DataFrame, model, tokenizer, model_name: str, settings: Settings):
    """Rows of the "familiarity" table: one per trainset example, under `model`."""
    scored = score(model, tokenizer, list(trainset["prompt"]), list(trainset["completion"]),
                   settings)  # fmt: skip
    frame = pd.DataFrame(
        {
            "example_id": trainset["example_id"].to_numpy(),
            "task": trainset["task"].to_numpy(),
            "study": trainset["study"].to_numpy(),
            "variant": trainset["variant"].to_numpy(),
            "source": trainset["source"].to_numpy(),
            "model": model_name,
            "prompt_tokens": [e.prompt_tokens for e, _ in scored],
            "completion_tokens": [s.completion_tokens for _, s in scored],
            "logprob_sum": [s.logprob_sum for _, s in scored],
            "logprob_mean": [s.logprob_mean for _, s in scored],
        }
    )
    return frame[SCHEMA.names]


def run(trainset: pd.DataFrame, model_dir, model_name: str, settings: dict, threads: int):
    """(the "familiarity" table of `trainset` under the model in `model_dir`, the device used)."""
    from ftlab import models

    s = Settings.from_config(settings)
    models.set_threads(threads)
    model, tokenizer = models.load(model_dir)
    model = model.float()  # log-likelihoods in fp32, whatever the weights were stored in
    device = model.device.type
    log.info("scoring %d completions under %s (%s, batch %d)", len(trainset), model_name, device,
             s.batch_size)  # fmt: skip
    frame = score_trainset(trainset, model, tokenizer, model_name, s)
    p = perplexities(frame)
    log.info(
        "%s: mean NLL/token %.4f, mean perplexity %.3f, corpus perplexity %.3f, %.1f tokens",
        model_name, p["mean_nll"], p["mean_perplexity"], p["corpus_perplexity"], p["mean_tokens"],
    )  # fmt: skip
    return frame, device


def perplexities(frame: pd.DataFrame) -> dict[str, float]:
    """Per-set summaries of "familiarity" rows (see the module docstring for which is which)."""
    if frame.empty:
        nan = math.nan
        return {"mean_nll": nan, "mean_perplexity": nan, "corpus_perplexity": nan,
                "mean_tokens": nan, "examples": 0}  # fmt: skip
    nll = -frame["logprob_mean"].to_numpy(float)
    tokens = frame["completion_tokens"].to_numpy(float)
    return {
        "mean_nll": float(nll.mean()),
        "mean_perplexity": float(np.exp(nll).mean()),
        "corpus_perplexity": float(np.exp(-frame["logprob_sum"].sum() / tokens.sum())),
        "mean_tokens": float(tokens.mean()),
        "examples": len(frame),
    }
