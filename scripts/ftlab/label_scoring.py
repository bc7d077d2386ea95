"""Scoring a model on a task's test split without parsing free text: restricted log-likelihood over
the task's label set (classification), ROUGE-L and exact match of a greedy answer (generation),
zero-shot or with k in-context demonstrations (k-shot).

* **Classification**: each label's summed log-probability as the direct completion
  (`prompts.direct_completion`, then EOS when `label_eos`) of the prompt; the prediction is the
  argmax. Labels come from the task table, never from token ids: a choice task's letters, a row's
  `choices`, or else every distinct `answer` of the table (all splits). Batched: each prompt runs
  once, and all its labels continue from its KV cache in one pass (`label_logprobs`; the same
  numbers as one forward pass per label, which the tests check).
* **Generation**: greedy decoding stopped at the end of the line (`generate.greedy`), scored
  against the gold answer by ROUGE-L F1 (`rouge-score`: its word tokenizer, or characters, for
  one-word answers) and by exact match after the task type's normalisation (`answers.py`).
* **k-shot**: k demonstrations from the task's train split, drawn per test example by a generator
  seeded with (seed, example id), so every model sees the same ones (paired comparisons). Plain
  text: the demonstrations' direct prompts and answers, a blank line between examples, then the
  question (`fewshot_text`). A model with a chat template sees each demonstration as an earlier
  user/assistant exchange (`render`); zero-shot prompts are `prompts.render` as in `evaluate`.

`chance` is what a model that knows the output's form but not the input would score: the most
common label's share (classification), or each gold answer scored against another example's
(generation). One table per (run, task): `path(run, task)`, schema "label_scores".
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from . import answers, cells, generate, hub, prompts, runs, tables
from .settings import ConfigError
from .settings import from_config as settings_from_config

log = logging.getLogger(__name__)

KINDS = ("classification", "generation")
SETTINGS = ("zero_shot", "k_shot")
ROUGE_TOKENS = ("words", "characters")
METRICS = {"classification": ("accuracy",), "generation": ("rouge_l", "exact_match")}
DEMO_SEPARATOR = "\n\n"

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


# --- examples and demonstrations ------------------------------------------------------------------


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


def _left_pad(rows: list[list[int]], pad_id: int, device):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def _batch_logprobs(model, prompt_rows, conts, pad_id) -> list[list[float]]:
    """Summed log-probabilities of each prompt's continuations: the prompts once (left-padded,
    KV cache kept), then every continuation from its prompt's cache in one right-padded pass."""
    from transformers import DynamicCache

    device = model.device
    ids, mask = _left_pad(prompt_rows, pad_id, device)
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
    width = max(len(c) for c in flat)
    cont = torch.full((len(flat), width), pad_id, dtype=torch.long)
    cmask = torch.zeros((len(flat), width), dtype=torch.long)
    for i, c in enumerate(flat):
        cont[i, : len(c)], cmask[i, : len(c)] = torch.tensor(c, dtype=torch.long), 1
    cont, cmask = cont.to(device), cmask.to(device)
    total = first[owner].gather(1, cont[:, :1]).squeeze(1)
    if width > 1:
        cache.batch_select_indices(owner)  # each prompt's cache, once per continuation
        lengths = mask.sum(-1)[owner]
        positions = lengths[:, None] + torch.arange(width - 1, device=device)[None]
        out = model(
            input_ids=cont[:, :-1],
            attention_mask=torch.cat([mask[owner], cmask[:, :-1]], dim=-1),
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
        logp = torch.log_softmax(out.logits.float(), dim=-1)
        picked = logp.gather(2, cont[:, 1:, None]).squeeze(-1)
        total = total + (picked * cmask[:, 1:]).sum(dim=1)
    values = total.tolist()
    out_rows, start = [], 0
    for cs in conts:
        out_rows.append(values[start : start + len(cs)])
        start += len(cs)
    return out_rows


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
    order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
    results: list[np.ndarray | None] = [None] * len(texts)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for b in range(0, len(order), batch_size):
                batch = order[b : b + batch_size]
                rows = _batch_logprobs(
                    model, [encoded[i] for i in batch], [conts[i] for i in batch], pad_id
                )
                for i, values in zip(batch, rows, strict=True):
                    results[i] = np.asarray(values, dtype=float)
    finally:
        model.train(was_training)
    return results


# --- generation metrics ---------------------------------------------------------------------------


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
