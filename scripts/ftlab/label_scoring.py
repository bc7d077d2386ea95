"""Scoring a model on a task's test split without parsing free text: restricted log-likelihood over
the task's label set (classification), ROUGE-L and exact match of a greedy answer (generation),
zero-shot or with k in-context demonstrations (k-shot).

* **Classification**: each label's summed log-probability as the direct completion
  (`prompts.direct_completion`, then EOS when `label_eos`) of the prompt; the prediction is the
  argmax. Labels come from the task table, never from token ids: a choice task's letters, a row's
  `choices`, or else every distinct `answer` of the table (all splits). Batched: each prompt runs
  once, then the later tokens of all its labels in one more pass from its KV cache, side by side
  as a tree (a label attends to the prompt and to itself only) rather than one cache copy per
  label (`label_logprobs`; the same numbers as one forward pass per label, which the tests check).
* **Generation**: greedy decoding stopped at the end of the line (`generate.greedy`), scored
  against the gold answer by ROUGE-L F1 and by exact match (generation_metrics.py).
* **k-shot**: k demonstrations from the task's train split, the same for every model, laid out
  as plain text or as earlier chat turns (kshot.py); zero-shot prompts are `prompts.render` as in
  `evaluate`.

Each eval setting's mean score is reported with its chance level (`generation_metrics.chance`).
One table per (run, task): `path(run, task)`, schema "label_scores".
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from . import answers, cells, generate, inference, prompts, runs, tables
from .generation_metrics import ROUGE_TOKENS, chance, exact_match, rouge_l
from .kshot import demo_tuples, demonstrations, render, test_rows, train_pool
from .settings import ConfigError
from .settings import from_config as settings_from_config

log = logging.getLogger(__name__)

KINDS = ("classification", "generation")
SETTINGS = ("zero_shot", "k_shot")
METRICS = {"classification": ("accuracy",), "generation": ("rouge_l", "exact_match")}

_str, _f64 = pa.string(), pa.float64()
# one row per test example x eval setting of one run on one task (score_labels)
SCHEMA = tables.register(
    "label_scores",
    pa.schema(
        [
            ("example_id", _str),
            ("task", _str),
            ("run", _str),
            ("setting", _str),  # zero_shot | k_shot
            ("shots", pa.int64()),
            ("kind", _str),  # classification | generation
            ("prompt", _str),  # as the model saw it (chat template applied)
            ("prediction", _str),  # the argmax label, or the generated answer line
            ("answer", _str),
            ("correct", pa.bool_()),  # argmax is the gold label / exact match
            ("rouge_l", _f64),  # generation only (NaN for classification)
            ("score", _f64),  # the kind's primary metric: correct (0/1) or ROUGE-L F1
            ("labels", pa.list_(_str)),  # classification: the label set scored
            ("label_logprobs", pa.list_(_f64)),  # ... each label's summed log-probability
            ("demo_ids", pa.list_(_str)),  # the demonstrations' example ids, in prompt order
            ("prompt_tokens", pa.int64()),
        ]
    ),
)


def path(run: str, task: str) -> str:
    """The label-scores table of `run` (a base model or a fine-tuned run id) on `task`."""
    return f"{runs.RESULTS}/label_scores/{run}/{task}.parquet"


@dataclass(frozen=True)
class Settings:
    """How one task is scored (the study passes these per eval task through `params`)."""

    kind: str = "classification"
    eval_settings: tuple[str, ...] = SETTINGS
    k: int = 2
    seed: int = 0
    limit: int | None = None  # the first N test examples
    batch_size: int = 32  # prompts per batch (classification: each with all its labels)
    max_new_tokens: int = 32  # generation budget of an answer line
    rouge_tokens: str = "words"
    label_eos: bool = True  # a label ends with EOS: "son" cannot win over "son-in-law" as a prefix

    @classmethod
    def from_config(cls, cfg: dict, where: str = "label_scoring") -> Settings:
        s = settings_from_config(cls, cfg, where)
        if s.kind not in KINDS:
            raise ConfigError(f"{where}.kind: {s.kind!r} is not one of {KINDS}")
        if bad := [e for e in s.eval_settings if e not in SETTINGS]:
            raise ConfigError(f"{where}.eval_settings: unknown {bad}; known: {list(SETTINGS)}")
        if s.rouge_tokens not in ROUGE_TOKENS:
            raise ConfigError(f"{where}.rouge_tokens: {s.rouge_tokens!r} not in {ROUGE_TOKENS}")
        if "k_shot" in s.eval_settings and s.k < 1:
            raise ConfigError(f"{where}.k: k-shot needs k >= 1, got {s.k}")
        return s

    def shots(self, setting: str) -> int:
        return 0 if setting == "zero_shot" else self.k


# --- labels and their log-likelihood --------------------------------------------------------------


def label_set(table: pd.DataFrame) -> list[str]:
    """Every distinct answer of the table (all splits), first spelling of each normalised form."""
    seen, out = set(), []
    for answer, task_type in zip(table["answer"], table["task_type"], strict=True):
        key = answers.parse(str(answer), task_type) or str(answer)
        if key.lower() not in seen:
            seen.add(key.lower())
            out.append(str(answer))
    return sorted(out)


def row_labels(task_type: str, choices: list[str] | None, table_labels: list[str]) -> list[str]:
    """A row's labels: a choice task's letters, a row's own choices, or the table's answers."""
    if task_type == "choice" and choices:
        return list(prompts.LETTERS[: len(choices)])
    if choices:
        return list(choices)
    return list(table_labels)


def continuation_ids(
    tokenizer, prompt: str, completion: str, eos: bool, prompt_ids: list[int] | None = None
) -> list[int]:
    """The token ids `completion` adds after `prompt` (as a trainer tokenizes prompt + completion:
    jointly, when the prompt's ids are a prefix of the joint ids), then EOS when `eos`."""
    p = tokenizer(prompt)["input_ids"] if prompt_ids is None else prompt_ids
    full = tokenizer(prompt + completion)["input_ids"]
    ids = full[len(p) :] if full[: len(p)] == p and len(full) > len(p) else None
    if ids is None:
        ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if eos and tokenizer.eos_token_id is not None:
        ids = [*ids, tokenizer.eos_token_id]
    if not ids:
        raise ValueError(f"completion {completion!r} tokenizes to nothing")
    return ids


def _keep(model, n: int) -> dict:
    params = inspect.signature(model.forward).parameters
    takes = "logits_to_keep" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {"logits_to_keep": n} if takes else {}


def _batch_logprobs(model, prompt_rows, conts, pad_id) -> list[list[float]]:
    """Summed log-probabilities of each prompt's continuations: the prompts once (left-padded,
    KV cache kept), each continuation's first token from its prompt's last logits, the later
    tokens of all continuations in one more pass from the prompts' cache (`_tree`, or where the
    model takes no ready 4D mask, `_replicated`)."""
    from transformers import DynamicCache

    device = model.device
    ids, mask = generate.left_pad(prompt_rows, pad_id, device)
    cache = DynamicCache(config=model.config)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
        past_key_values=cache,
        use_cache=True,
        **_keep(model, 1),
    )
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
    owner = torch.tensor([b for b, cs in enumerate(conts) for _ in cs], device=device)
    flat = [c for cs in conts for c in cs]
    total = first[owner, torch.tensor([c[0] for c in flat], device=device)]
    if max(len(c) for c in flat) > 1:
        # SDPA / eager attention over plain full-attention layers get a ready additive 4D mask
        # (in the queries' dtype) from generate, as its decoding steps do; others the 2D one
        prompt_mask, _ = generate.step_mask(model, mask)
        if prompt_mask.dim() == 4:
            total = total + _tree(model, cache, prompt_mask, mask.sum(-1).tolist(), conts, pad_id)
        else:
            total = total + _replicated(model, cache, mask, owner, flat, pad_id)
    values = total.tolist()
    out_rows, start = [], 0
    for cs in conts:
        out_rows.append(values[start : start + len(cs)])
        start += len(cs)
    return out_rows


def _tree(model, cache, prompt_mask, lengths, conts, pad_id) -> torch.Tensor:
    """Each continuation's log-probability after its first token, all continuations of a prompt
    fed as one segment after its cached prompt: a token sits at its prompt's length + its offset
    in its continuation and attends to the prompt's real tokens and to its own continuation's
    earlier tokens only (a tree, not a sequence), so one pass scores every label without copying
    the prompt's cache once per label. `prompt_mask`: the prompts' additive (batch, 1, 1, cached)
    mask; results in the order of the flattened `conts`."""
    rows, n = [], 0  # per prompt: (token, position, its continuation's index or -1, next token)
    for length, cs in zip(lengths, conts, strict=True):
        row = []
        for c in cs:
            row += [
                (t, length + j, n, after)
                for j, (t, after) in enumerate(zip(c[:-1], c[1:], strict=True))
            ]
            n += 1
        rows.append(row)
    width = max(len(r) for r in rows)
    table = torch.tensor([r + [(pad_id, 0, -1, 0)] * (width - len(r)) for r in rows])
    tokens, positions, label, target = table.to(prompt_mask.device).unbind(-1)
    earlier = torch.ones(width, width, dtype=torch.bool, device=label.device).tril()
    own = (label[:, :, None] == label[:, None, :]) & earlier  # padding: only other padding
    tree = torch.zeros(own.shape, dtype=prompt_mask.dtype, device=label.device)
    tree.masked_fill_(~own, float("-inf"))
    attention = torch.cat([prompt_mask.expand(-1, -1, width, -1), tree[:, None]], dim=-1)
    out = model(
        input_ids=tokens,
        attention_mask=attention,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1).gather(2, target[..., None])[..., 0]
    real = label >= 0
    return logp.new_zeros(n).index_add_(0, label[real], logp[real])


def _replicated(model, cache, mask, owner, flat, pad_id) -> torch.Tensor:
    """`_tree` for models that take only a 2D mask: each prompt's cache copied once per
    continuation, the continuations right-padded after it."""
    device = mask.device
    width = max(len(c) for c in flat)
    cont = torch.full((len(flat), width), pad_id, dtype=torch.long)
    cmask = torch.zeros((len(flat), width), dtype=torch.long)
    for i, c in enumerate(flat):
        cont[i, : len(c)], cmask[i, : len(c)] = torch.tensor(c, dtype=torch.long), 1
    cont, cmask = cont.to(device), cmask.to(device)
    cache.batch_select_indices(owner)  # each prompt's cache, once per continuation
    positions = mask.sum(-1)[owner][:, None] + torch.arange(width - 1, device=device)[None]
    out = model(
        input_ids=cont[:, :-1],
        attention_mask=torch.cat([mask[owner], cmask[:, :-1]], dim=-1),
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1)
    picked = logp.gather(2, cont[:, 1:, None]).squeeze(-1)
    return (picked * cmask[:, 1:]).sum(dim=1)


def label_logprobs(
    model, tokenizer, texts: list[str], label_sets: list[list[str]], batch_size: int = 32,
    eos: bool = True,
) -> list[np.ndarray]:  # fmt: skip
    """Per prompt, each label's summed log-probability as its direct completion (then EOS).

    `texts` are rendered prompts (`render`). Prompts are sorted by length and scored
    `batch_size` at a time; results come back in input order.
    """
    if len(texts) != len(label_sets):
        raise ValueError(f"{len(texts)} prompts but {len(label_sets)} label sets")
    if any(not labels for labels in label_sets):
        raise ValueError("a prompt has no labels to score")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    conts = [
        [continuation_ids(tokenizer, t, prompts.direct_completion(lab), eos, p) for lab in labels]
        for t, p, labels in zip(texts, encoded, label_sets, strict=True)
    ]
    limit = getattr(model.config, "max_position_embeddings", None)
    longest = max(len(p) + max(len(c) for c in cs) for p, cs in zip(encoded, conts, strict=True))
    if limit and longest > limit:
        raise ValueError(
            f"a prompt and label take {longest} tokens, more than the model's {limit} positions "
            "(fewer demonstrations, k, or shorter examples)"
        )
    results: list[np.ndarray | None] = [None] * len(texts)
    with inference.evaluating(model):
        for batch in inference.longest_first([len(e) for e in encoded], batch_size):
            rows = _batch_logprobs(
                model, [encoded[i] for i in batch], [conts[i] for i in batch], pad_id
            )
            for i, values in zip(batch, rows, strict=True):
                results[i] = np.asarray(values, dtype=float)
    return results


# --- one model on one task ------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompted:
    """The test examples of one eval setting, with their demonstrations (model-independent)."""

    setting: str
    shots: int
    test: pd.DataFrame
    demos: list[list[tuple[str, list[str] | None, str]]]
    demo_ids: list[list[str]]


def prepare(table: pd.DataFrame, s: Settings) -> list[Prompted]:
    """Each eval setting's test examples and their demonstrations (the same for every model)."""
    test, pool = test_rows(table, s.limit), train_pool(table)
    out = []
    for setting in s.eval_settings:
        k = s.shots(setting)
        drawn = [demonstrations(pool, k, s.seed, eid) for eid in test["example_id"]]
        out.append(
            Prompted(
                setting,
                k,
                test,
                [demo_tuples(d) for d in drawn],
                [list(d["example_id"]) for d in drawn],
            )  # fmt: skip
        )
    return out


def score(
    model, tokenizer, table: pd.DataFrame, run: str, s: Settings,
    prepared: list[Prompted] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Rows of the "label_scores" table: `run` (its model and tokenizer) on the task in `table`."""
    prepared = prepare(table, s) if prepared is None else prepared
    table_labels = label_set(table) if s.kind == "classification" else []
    frames = []
    for p in prepared:
        test = p.test
        choices = [cells.choices(c) for c in test["choices"]]
        texts = [
            render(tokenizer, q, c, d)
            for q, c, d in zip(test["question"], choices, p.demos, strict=True)
        ]
        n_tokens = [len(tokenizer(t)["input_ids"]) for t in texts]
        rows = {
            "example_id": test["example_id"].tolist(),
            "task": test["task"].tolist(),
            "run": run,
            "setting": p.setting,
            "shots": p.shots,
            "kind": s.kind,
            "prompt": texts,
            "answer": test["answer"].astype(str).tolist(),
            "demo_ids": p.demo_ids,
            "prompt_tokens": n_tokens,
        }
        if s.kind == "classification":
            sets = [
                row_labels(t, c, table_labels)
                for t, c in zip(test["task_type"], choices, strict=True)
            ]
            logps = label_logprobs(model, tokenizer, texts, sets, s.batch_size, s.label_eos)
            preds = [labels[int(np.argmax(lp))] for labels, lp in zip(sets, logps, strict=True)]
            correct = [
                answers.is_correct(answers.parse(pred, t, c), gold, t, c)
                for pred, gold, t, c in zip(preds, rows["answer"], test["task_type"], choices,
                                            strict=True)
            ]  # fmt: skip
            rows |= {
                "prediction": preds,
                "correct": correct,
                "rouge_l": math.nan,
                "score": [float(c) for c in correct],
                "labels": sets,
                "label_logprobs": [lp.tolist() for lp in logps],
            }
        else:
            gens = generate.greedy(
                model, tokenizer, texts, max_new_tokens=s.max_new_tokens,
                batch_size=s.batch_size, stop_at_newline=True, progress=False,
            )  # fmt: skip
            preds = [prompts.split_direct(g.text) for g in gens]
            rouge = [rouge_l(pr, g, s.rouge_tokens) for pr, g in zip(preds, rows["answer"],
                                                                   strict=True)]  # fmt: skip
            correct = [
                exact_match(pr, g, t)
                for pr, g, t in zip(preds, rows["answer"], test["task_type"], strict=True)
            ]
            rows |= {
                "prediction": preds,
                "correct": correct,
                "rouge_l": rouge,
                "score": rouge,
                "labels": [[] for _ in preds],
                "label_logprobs": [[] for _ in preds],
            }
        frames.append(pd.DataFrame(rows, columns=SCHEMA.names))
    return pd.concat(frames, ignore_index=True)


def summary_line(frame: pd.DataFrame, kind: str, rouge_tokens: str = "words", seed: int = 0):
    """Per eval setting of one scored table: (setting, mean primary score, its chance level)."""
    metric = METRICS[kind][0]
    return [
        (setting, float(part["score"].mean()),
         chance(part["answer"].tolist(), metric, rouge_tokens=rouge_tokens, seed=seed))
        for setting, part in frame.groupby("setting", sort=False)
    ]  # fmt: skip
