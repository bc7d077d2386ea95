"""Batched decoding: many prompts through one model, fast, with the same output as one at a time.

Prompts are sorted by token length and decoded in batches with left padding, attention masks,
explicit position ids and the KV cache, in a hand-written loop over `past_key_values`; a batch's
prompts are first run in groups of similar length (little padding), each written in place into
its rows of the batch's cache, which has room for exactly the tokens to come. The loop
(rather than `model.generate`) gives us what we need: per-sequence stopping at EOS or at a
newline, sampling from a seeded `torch.Generator`, dropping finished rows from the batch so long
CoT batches do not keep paying for rows that are done, and a KV cache that grows in place instead
of being copied every step (bench/generate.py measures both). Prompts that share their beginning
with a longer text (`shared=`, e.g. the cuts of one CoT in faithfulness scoring) reuse that text's
KV cache instead of running their common tokens again; without `shared`, the tokens that all
prompts start with (a task's instruction) run once and every prompt reuses them.

Greedy decoding is exact: batched outputs equal per-example greedy outputs (tests check this in
fp32 against `model.generate`). Results come back in input order.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers.cache_utils import DynamicCache, DynamicLayer

from . import inference
from .prompts import render

MIN_COMMON_PREFIX = 4  # tokens every prompt starts with, from which they are run once for all
CALL_COST = 32  # padded prompt positions that cost about one more forward call (measured)


@dataclass(frozen=True)
class Generation:
    text: str  # the completion, without EOS; cut before the first "\n" when stop_at_newline
    prompt_tokens: int
    generated_tokens: int  # tokens the model produced, the stopping token included
    finished: bool  # stopped at EOS (or newline), not at max_new_tokens


def _stop_ids(tokenizer, stop_at_newline: bool) -> list[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    if stop_at_newline:
        ids |= _newline_ids(tokenizer)
    if not ids:
        raise ValueError("tokenizer has no eos_token and stop_at_newline is off: nothing stops")
    return sorted(ids)


def _newline_ids(tokenizer) -> set[int]:
    """Every token whose text contains a newline (BPE merges "\\n" into other tokens)."""
    return _newline_ids_cached(tokenizer.name_or_path, len(tokenizer), tokenizer)


@functools.lru_cache(maxsize=8)
def _newline_ids_cached(name: str, size: int, tokenizer) -> frozenset[int]:
    texts = tokenizer.batch_decode([[i] for i in range(size)])
    return frozenset(i for i, t in enumerate(texts) if "\n" in t)


class _GrowingLayer(DynamicLayer):
    """A KV cache layer with spare room: a new token is written in place, not concatenated.

    transformers' DynamicLayer copies the whole cache every step (torch.cat), which costs as much
    as the model itself on long CoT generations; this one writes into a buffer with `room` free
    positions (the caller knows how many tokens will follow) and doubles it when full.
    """

    _k: torch.Tensor | None = None
    _v: torch.Tensor | None = None
    room = 0  # free positions the first buffer gets after the tokens it holds
    into = None  # where the first write goes: a function (like) -> (keys, values) buffers

    def place(self, keys: torch.Tensor, values: torch.Tensor, used: int) -> None:
        """Take `keys`/`values` (rows x heads x capacity x head_dim) as the buffers, of which the
        first `used` positions are filled."""
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self._k, self._v = keys, values
        self.keys, self.values = keys[..., :used, :], values[..., :used, :]

    def update(self, key_states, value_states, *args, **kwargs):
        if self._k is None and self.into is not None:
            self.place(*self.into(key_states), 0)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        used = self.get_seq_length()
        need = used + key_states.shape[-2]
        if self._k is None or need > self._k.shape[-2]:
            room = self.room if self._k is None else need
            shape = (*key_states.shape[:-2], need + room, key_states.shape[-1])
            k, v = key_states.new_empty(shape), value_states.new_empty(shape)
            if used:
                k[..., :used, :], v[..., :used, :] = self.keys, self.values
            self._k, self._v = k, v
        self._k[..., used:need, :] = key_states
        self._v[..., used:need, :] = value_states
        self.keys, self.values = self._k[..., :need, :], self._v[..., :need, :]
        return self.keys, self.values

    def reset(self) -> None:
        self._k = self._v = None
        super().reset()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._k is not None:
            self.place(self._k[indices], self._v[indices], self.get_seq_length())


def _new_cache(model, room: int = 0):
    """The model's own dynamic cache, its plain (full-attention) layers swapped for growing ones
    with `room` free positions."""
    cache = DynamicCache(config=model.config)
    cache.layers = [_GrowingLayer() if type(x) is DynamicLayer else x for x in cache.layers]
    for layer in cache.layers:
        layer.room = room
    return cache


def _can_share(model) -> bool:
    """Caches can be cut, stacked and windowed only when every layer is a plain full-attention
    one."""
    return all(type(x) is _GrowingLayer for x in _new_cache(model).layers)


def _window(whole: _GrowingLayer, rows: int, width: int, group: range, start: int, like):
    """Rows `group` of `whole`'s buffers from position `start` on; the buffers (rows x like's
    heads x width + room x like's head_dim) are allocated at the first call. The padding left of
    `start` is zeroed: it is read (masked out), where the rest is written before it is read."""
    if whole._k is None:
        shape = (rows, like.shape[-3], width + whole.room, like.shape[-1])
        whole.place(like.new_empty(shape), like.new_empty(shape), 0)
    rows_ = slice(group.start, group.stop)
    whole._k[rows_, :, :start], whole._v[rows_, :, :start] = 0, 0
    return whole._k[rows_, :, start:], whole._v[rows_, :, start:]


def _groups(lengths: list[int]) -> list[range]:
    """Split rows sorted longest first into consecutive groups, one left-padded forward call
    each, with the fewest padded positions + `CALL_COST` per call (exact, by dynamic
    programming): one call pads every row to the longest, one call per row pays a forward's
    fixed cost every time."""
    best, cut = [0] + [float("inf")] * len(lengths), [0] * (len(lengths) + 1)
    for j in range(1, len(lengths) + 1):
        for i in range(j):
            cost = best[i] + (j - i) * lengths[i] + CALL_COST
            if cost < best[j]:
                best[j], cut[j] = cost, i
    out, j = [], len(lengths)
    while j:
        out.append(range(cut[j], j))
        j = cut[j]
    return out[::-1]


def _load_prefixes(past, prefixes) -> torch.Tensor:
    """Write per-row prefix caches (None: nothing), right-aligned (left padding), into the empty
    cache `past` (its layers' `into` buffers); returns their attention mask (rows x longest)."""
    lengths = [kv[0][0].shape[-2] if kv else 0 for kv in prefixes]
    width, some = max(lengths), next(kv for kv in prefixes if kv)
    for i, layer in enumerate(past.layers):
        keys, values = layer.into(some[i][0])
        keys[:, :, :width], values[:, :, :width] = 0, 0  # the padding left of shorter prefixes
        for row, (kv, n) in enumerate(zip(prefixes, lengths, strict=True)):
            if n:
                keys[row, :, width - n : width], values[row, :, width - n : width] = kv[i]
        layer.place(keys, values, width)
    return torch.tensor([[0] * (width - n) + [1] * n for n in lengths], device=keys.device)


def _prefill(model, rows: list[list[int]], pad_id: int, prefixes=None, room: int = 0):
    """Run `rows` (sorted longest first; each after its prefix cache in `prefixes`, if given)
    through the model; returns (their cache, right-aligned, with `room` free positions; its
    attention mask; each row's last logits).

    Rows run in groups (`_groups`), each written in place into its rows of one cache: padding
    costs compute in every layer, a group only one forward call. Caches that cannot be windowed
    (not every layer a plain full-attention one) run as one batch."""
    device, last_only = model.device, _last_logits_only(model)
    share = _can_share(model)
    groups = _groups([len(r) for r in rows]) if share else [range(len(rows))]
    cached = [kv[0][0].shape[-2] if kv else 0 for kv in prefixes or [None] * len(rows)]
    spans = [(max(cached[i] for i in g), max(len(rows[i]) for i in g)) for g in groups]
    width = max(p + f for p, f in spans)  # every row ends there, so decoding appends in step
    past, masks, logits = _new_cache(model, room), [], []
    for g, (p, f) in zip(groups, spans, strict=True):
        part = past
        if share:  # the group's own cache, its layers windows into the batch's
            part = _new_cache(model)
            for whole, layer in zip(past.layers, part.layers, strict=True):
                layer.into = functools.partial(_window, whole, len(rows), width, g, width - p - f)
        ids, mask = left_pad(rows[g.start : g.stop], pad_id, device)
        if p:
            mask = torch.cat([_load_prefixes(part, prefixes[g.start : g.stop]), mask], -1)
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :],
            past_key_values=part,
            use_cache=True,
            **last_only,
        )
        masks.append(F.pad(mask, (width - p - f, 0)))
        logits.append(out.logits[:, -1, :])
    if share:
        for layer in past.layers:
            layer.place(layer._k, layer._v, width)
    return past, torch.cat(masks), torch.cat(logits)


def _common_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _shared_prefixes(model, trunks: list[list[int]], pad_id: int, probes, kept=None):
    """Cut, for each probe (trunk index, prompt ids), the KV cache of the tokens it shares with
    its trunk (None: none) from the trunks' caches in `kept` (by token ids), first running those
    it lacks through the model; returns [(prefix cache, ids still to feed)] in the order of
    `probes`. At least the probe's last token is always fed, so the model has logits to decode
    from."""
    kept = {} if kept is None else kept
    cuts = [min(_common_length(prompt, trunks[t]), len(prompt) - 1) for t, prompt in probes]
    wanted = dict.fromkeys(tuple(trunks[t]) for (t, _), n in zip(probes, cuts, strict=True) if n)
    run = [ids for ids in wanted if ids not in kept]
    if run:
        run.sort(key=len, reverse=True)
        cache, mask, _ = _prefill(model, [list(ids) for ids in run], pad_id)
        for r, ids in enumerate(run):
            start = mask.shape[1] - len(ids)
            kept[ids] = [(x.keys[r, :, start:], x.values[r, :, start:]) for x in cache.layers]
    out = []
    for (t, prompt), n in zip(probes, cuts, strict=True):
        kv = [(k[:, :n], v[:, :n]) for k, v in kept[tuple(trunks[t])]] if n else None
        out.append((kv, prompt[n:]))
    return out


def left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def _last_logits_only(model) -> dict:
    """`logits_to_keep=1` where the model takes it: no full-vocabulary logits for the prompt."""
    params = inspect.signature(model.forward).parameters
    takes = "logits_to_keep" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {"logits_to_keep": 1} if takes else {}


def _next_tokens(logits, do_sample, temperature, generator):
    if not do_sample:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _decode_batch(
    model, rows, max_new_tokens, stop_ids, pad_id, do_sample, temperature, generator, prefixes=None
):
    """Decode one batch; returns (generated ids, finished) per row, in the batch's order.

    `prefixes`: per row, the KV cache of tokens that come before its `rows` ids (a list over
    layers of (keys, values), each heads x length x head_dim), from `_shared_prefixes`.
    """
    device, last_only = model.device, _last_logits_only(model)
    past, mask, logits = _prefill(model, rows, pad_id, prefixes, room=max_new_tokens - 1)
    positions = mask.sum(-1, keepdim=True)  # of the next token, per row
    mask, new_column = step_mask(model, mask)
    stop = torch.tensor(stop_ids, device=device)
    out: list[list[int]] = [[] for _ in rows]
    finished = [False] * len(rows)
    live = torch.arange(len(rows), device=device)  # batch rows still decoding -> original rows
    for step in range(max_new_tokens):
        tokens = _next_tokens(logits, do_sample, temperature, generator)
        done = torch.isin(tokens, stop)
        done_rows = done.tolist()  # the one host sync per step
        for row, tok, d in zip(live.tolist(), tokens.tolist(), done_rows, strict=True):
            out[row].append(tok)
            finished[row] = d
        if all(done_rows) or step == max_new_tokens - 1:
            break
        if any(done_rows):  # drop finished rows from the batch and the cache
            keep = (~done).nonzero().squeeze(-1)
            past.batch_select_indices(keep)
            live, tokens, mask, positions = live[keep], tokens[keep], mask[keep], positions[keep]
        mask = torch.cat([mask, new_column.expand(mask.shape[0], *new_column.shape[1:])], dim=-1)
        result = model(
            input_ids=tokens.unsqueeze(-1),
            attention_mask=mask,
            position_ids=positions,
            past_key_values=past,
            use_cache=True,
            **last_only,
        )
        logits, positions = result.logits[:, -1, :], positions + 1
    return out, finished


def step_mask(model, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the attention mask of the decoding steps, the column each step appends to it).

    For SDPA and eager attention over plain full-attention layers an additive 4D mask (0, or
    -inf on padding), which a step only grows by a column: from the 2D `mask`, transformers
    would build a 4D one every step and SDPA turn it into an additive one in every layer. Other
    attention (and sliding-window layers, which need their own masks) take `mask` itself."""
    if model.config._attn_implementation not in ("sdpa", "eager") or not _can_share(model):
        return mask, mask.new_ones((1, 1))
    dtype = model.get_input_embeddings().weight.dtype  # the queries' (masks must match)
    additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    additive.masked_fill_(mask == 0, float("-inf"))
    return additive[:, None, None, :], additive.new_zeros((1, 1, 1, 1))


def _text(tokenizer, ids: list[int], stop_at_newline: bool) -> str:
    if ids and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    return text.split("\n", 1)[0] if stop_at_newline else text


def _batches(model, encoded, trunk_of, trunks, batch_size, pad_id, kept):
    """(prompt indices, rows to feed, per-row prefix caches or None) per decoding batch.

    Without trunks: prompts sorted by length, longest first (OOM early). With trunks: up to
    `batch_size` trunks at a time run once (unless `kept` has them), then their prompts, each fed
    only the tokens after what it shares with its trunk, in batches of similar whole length (the
    cache width every decoding step reads), longest fed part first."""
    n = len(encoded)
    if trunks is None:
        for batch in inference.longest_first([len(e) for e in encoded], batch_size):
            yield batch, [encoded[i] for i in batch], None
        return
    by_trunk: dict[int, list[int]] = {}
    for i in range(n):
        by_trunk.setdefault(trunk_of[i], []).append(i)
    keys = sorted(by_trunk, key=lambda t: -len(trunks[t]))
    for c in range(0, len(keys), batch_size):
        chunk = keys[c : c + batch_size]
        members = [i for t in chunk for i in by_trunk[t]]
        local = {t: j for j, t in enumerate(chunk)}
        cut = _shared_prefixes(
            model,
            [trunks[t] for t in chunk],
            pad_id,
            [(local[trunk_of[i]], encoded[i]) for i in members],
            kept,
        )
        order = sorted(range(len(members)), key=lambda j: -len(encoded[members[j]]))
        for b in range(0, len(order), batch_size):  # similar cache widths decode together
            part = sorted(order[b : b + batch_size], key=lambda j: -len(cut[j][1]))
            yield [members[j] for j in part], [cut[j][1] for j in part], [cut[j][0] for j in part]


def greedy(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = 64,
    stop_at_newline: bool = False,
    do_sample: bool = False,
    seed: int | None = None,
    temperature: float = 1.0,
    progress: bool = True,
    shared: list[str] | None = None,
    kept: dict | None = None,
) -> list[Generation]:
    """Complete every prompt (greedy unless `do_sample`); results in the order of `prompts`.

    Sampling draws from a `torch.Generator` seeded with `seed`, so the same prompts, seed and
    batch size give the same samples. Greedy decoding ignores `seed` and `temperature`.

    `shared` (one text per prompt) names a text each prompt shares its beginning with, e.g. the
    whole CoT that early-answering prompts are cut from: every distinct one runs through the model
    once, and its prompts reuse its KV cache for the tokens they have in common with it (exact:
    only identical token ids at identical positions are reused). Same outputs, far less prefill.
    `kept`: a dict that keeps those caches (by token ids) for later calls with the same model,
    e.g. the two passes of faithfulness scoring over the same CoTs, so each text runs once.
    """
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(
            f"max_new_tokens ({max_new_tokens}) and batch_size ({batch_size}) must be >= 1"
        )
    if do_sample and (seed is None or temperature <= 0):
        raise ValueError(f"sampling needs a seed and temperature > 0 (got {seed=}, {temperature=})")
    if shared is not None and len(shared) != len(prompts):
        raise ValueError(f"shared has {len(shared)} texts for {len(prompts)} prompts")
    if not prompts:
        return []
    stop_ids = _stop_ids(tokenizer, stop_at_newline)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    encoded = tokenizer([render(tokenizer, p) for p in prompts])["input_ids"]  # chat template
    if empty := [i for i, ids in enumerate(encoded) if not ids]:
        raise ValueError(f"prompts {empty[:5]} tokenize to nothing: cannot condition on them")
    trunk_of = trunks = None
    can_share = _can_share(model)
    if can_share and shared is not None:
        distinct = list(dict.fromkeys(shared))
        index = {t: j for j, t in enumerate(distinct)}
        trunk_of = [index[t] for t in shared]
        trunks = [ids or [pad_id] for ids in
                  tokenizer([render(tokenizer, t) for t in distinct])["input_ids"]]  # fmt: skip
    elif can_share and len(encoded) > 1:
        common = min(_common_length(encoded[0], ids) for ids in encoded[1:])
        if common >= MIN_COMMON_PREFIX:  # e.g. a task's instruction: run once, not per prompt
            trunk_of, trunks = [0] * len(encoded), [encoded[0][:common]]
    generator = None
    if do_sample:
        generator = torch.Generator(device=model.device).manual_seed(seed)
    results: list[Generation | None] = [None] * len(prompts)
    bar = tqdm(total=len(prompts), desc="generate", unit="prompt", disable=not progress)
    with bar, inference.evaluating(model):
        batches = _batches(model, encoded, trunk_of, trunks, batch_size, pad_id, kept)
        for batch, rows, prefixes in batches:
            outs, done = _decode_batch(
                model, rows, max_new_tokens, stop_ids, pad_id, do_sample, temperature,
                generator, prefixes,
            )  # fmt: skip
            for i, ids, fin in zip(batch, outs, done, strict=True):
                results[i] = Generation(
                    text=_text(tokenizer, ids, stop_at_newline),
                    prompt_tokens=len(encoded[i]),
                    generated_tokens=len(ids),
                    finished=fin,
                )
            bar.update(len(batch))
    return results
