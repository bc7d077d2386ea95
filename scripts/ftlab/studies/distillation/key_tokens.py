"""Which rationale words the teacher's answer depends on: importance scores for key-token training.

A word's importance is how much the teacher's log-probability of the gold answer (the text after
"Answer:" in the CoT format) depends on it. Two estimators:

* `saliency` (default): gradient x input on the token embeddings, |sum over the hidden dimension|,
  summed over the tokenizer tokens of each word. One forward and one backward pass per batch, so
  it scales to thousands of rationales on a CPU; it is also what Wadhwa et al. (2024) used.
* `leave_one_out`: |log p(answer | rationale) - log p(answer | rationale without word i)|, one
  forward pass per ablated copy (batched). Exact about the removed word but costs n+1 passes per
  rationale of n words; use it on a GPU or for small sets.

Words are whitespace tokens of the rationale (what the trainset variants shuffle and select);
tokenizer tokens map to words through the fast tokenizer's character offsets, so BPE pieces of
one word add up to that word and prompt, newline and answer tokens belong to no word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ftlab import inference, prompts

METHODS = ("saliency", "leave_one_out")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class _Encoded:
    ids: list[int]
    word_of_token: list[int]  # word index per token, -1 outside the rationale
    target: list[bool]  # token belongs to the answer


def keep_count(n_words: int, fraction: float) -> int:
    """How many words a k% selection keeps: round(fraction * n), at least one of a non-empty list."""
    return 0 if n_words == 0 else max(1, min(n_words, round(fraction * n_words)))


def top_words(scores: np.ndarray, fraction: float) -> list[int]:
    """Indices of the top `fraction` words by score, in their original order (ties: earlier wins)."""
    k = keep_count(len(scores), fraction)
    return sorted(np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k].tolist())


def _encode(tokenizer, prompt: str, rationale: str, answer: str) -> _Encoded:
    """Tokenize prompt + CoT completion, labelling each token with its rationale word / answer."""
    rationale = rationale.strip()
    prompt = prompts.render(tokenizer, prompt)  # chat template, if the teacher has one
    completion = prompts.cot_completion(rationale, answer)
    if not completion.endswith(" " + str(answer)):
        raise ValueError(f"CoT completion does not end with the answer {answer!r}")
    text = prompt + completion
    answer_start = len(text) - len(str(answer)) - 1
    start = len(prompt) + 1  # cot_completion puts one space before the rationale
    char_word = np.full(len(text), -1)
    for i, m in enumerate(_WORD.finditer(rationale)):
        char_word[start + m.start() : start + m.end()] = i
    enc = tokenizer(text, return_offsets_mapping=True)
    if "offset_mapping" not in enc:
        raise ValueError("importance needs a fast tokenizer (character offsets)")
    words, target = [], []
    for s, e in enc["offset_mapping"]:
        inside = char_word[s:e]
        inside = inside[inside >= 0]
        words.append(int(inside[0]) if len(inside) else -1)
        target.append(e > answer_start and e > s)
    return _Encoded(list(enc["input_ids"]), words, target)


def _pad(batch: list[_Encoded], pad_id: int, device):
    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    target = torch.zeros((len(batch), width), dtype=torch.bool)
    for i, e in enumerate(batch):
        n = len(e.ids)
        ids[i, :n] = torch.tensor(e.ids)
        mask[i, :n] = 1
        target[i, :n] = torch.tensor(e.target)
    return ids.to(device), mask.to(device), target.to(device)


def _answer_logprob(logits, ids, target):
    """Per row: sum of log p(token) over the answer tokens (right padding)."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tok = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (tok * target[:, 1:]).sum(-1)


def _batches(n: int, lengths: list[int], batch_size: int):
    order = sorted(range(n), key=lambda i: lengths[i])  # similar lengths share a batch
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _saliency(model, tokenizer, encoded: list[_Encoded], batch_size: int, progress: bool):
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    embed = model.get_input_embeddings()
    out: list[np.ndarray | None] = [None] * len(encoded)
    batches = _batches(len(encoded), [len(e.ids) for e in encoded], batch_size)
    for batch in tqdm(batches, desc="saliency", unit="batch", disable=not progress):
        ids, mask, target = _pad([encoded[i] for i in batch], pad, model.device)
        with torch.enable_grad():
            emb = embed(ids).detach().requires_grad_(True)
            logits = model(inputs_embeds=emb, attention_mask=mask).logits
            (grad,) = torch.autograd.grad(_answer_logprob(logits, ids, target).sum(), emb)
        per_token = (grad.float() * emb.detach().float()).sum(-1).abs().cpu().numpy()
        for row, i in enumerate(batch):
            words = np.asarray(encoded[i].word_of_token)
            n = words.max() + 1 if len(words) else 0
            scores = np.zeros(max(n, 0))
            np.add.at(scores, words[words >= 0], per_token[row, : len(words)][words >= 0])
            out[i] = scores
    return out


def _drop_word(rationale: str, i: int) -> str:
    spans = [m.span() for m in _WORD.finditer(rationale)]
    s, e = spans[i]
    if i + 1 < len(spans):
        e = spans[i + 1][0]  # take the following whitespace with it
    elif i > 0:
        s = spans[i - 1][1]
    return rationale[:s] + rationale[e:]


def _leave_one_out(model, tokenizer, examples, batch_size: int, progress: bool):
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    copies, owner = [], []  # (example index, dropped word or -1 for the full rationale)
    for j, (prompt, rationale, answer) in enumerate(examples):
        rationale = rationale.strip()
        n = len(_WORD.findall(rationale))
        for w in range(-1, n if n > 1 else 0):  # a one-word rationale cannot lose its only word
            text = rationale if w < 0 else _drop_word(rationale, w)
            copies.append(_encode(tokenizer, prompt, text, answer))
            owner.append((j, w))
    lp = np.zeros(len(copies))
    batches = _batches(len(copies), [len(c.ids) for c in copies], batch_size)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="leave-one-out", unit="batch", disable=not progress):
            ids, mask, target = _pad([copies[i] for i in batch], pad, model.device)
            logits = model(input_ids=ids, attention_mask=mask).logits
            lp[batch] = _answer_logprob(logits, ids, target).float().cpu().numpy()
    full = {j: lp[k] for k, (j, w) in enumerate(owner) if w < 0}
    out = [np.zeros(len(_WORD.findall(r.strip()))) for _, r, _ in examples]
    for k, (j, w) in enumerate(owner):
        if w >= 0:
            out[j][w] = abs(full[j] - lp[k])
    return out


def score(
    model,
    tokenizer,
    examples: list[tuple[str, str, str]],
    method: str = "saliency",
    batch_size: int = 32,
    progress: bool = True,
) -> list[np.ndarray]:
    """Importance of every word of every rationale; `examples` are (CoT prompt, rationale, gold answer)."""
    if method not in METHODS:
        raise ValueError(f"importance method {method!r} is not one of {METHODS}")
    with inference.evaluating(model, grad=True):  # saliency needs gradients
        if method == "saliency":
            encoded = [_encode(tokenizer, p, r, a) for p, r, a in examples]
            scores = _saliency(model, tokenizer, encoded, batch_size, progress)
        else:
            scores = _leave_one_out(model, tokenizer, examples, batch_size, progress)
    # words with no token of their own (cannot happen with offsets, but be total) score 0
    return [
        np.pad(s, (0, len(_WORD.findall(r.strip())) - len(s)))[: len(_WORD.findall(r.strip()))]
        for s, (_, r, _) in zip(scores, examples, strict=True)
    ]
