"""The `teacher_rewrite` source: the teacher writes the gold rationale again in its own words, so
the content stays the gold's and the style becomes the teacher's (Ren et al.'s rewriting test).

Two methods (`rewrite_method`; `auto` picks by the teacher's source):

* `prompt` (real models): `rewrite_prompt`, filled per question ({question}, {question_block},
  {choices}, {rationale}: the study's gold text, {answer}, {cot_prompt}), goes through the same
  cached teacher path as every rationale (`rationales.load_teacher`, `rationales.complete_cached`:
  transformers or an OpenAI-compatible server, generations cached per teacher x decoding x
  prompt, so a new rewrite prompt is just new prompts). A rewrite is kept when it has a rationale
  and its "Answer:" line is the gold answer.
* `constrained` (embedded teachers): a model pretrained only on worked examples cannot follow an
  instruction, so the gold content is imposed while decoding instead. The teacher is given
  `rewrite_prompt` (by default its own CoT prompt) and decodes greedily, choosing every token
  itself, except that each number it writes is the gold's next number: whenever its most likely
  next token is a digit, the digit is the one the gold's next number spells (the teacher decides
  where a number goes and what surrounds it, the gold decides which number), and it cannot stop
  (EOS, "Answer", "Question") before all of the gold's numbers are written, nor write a number
  after them. It stops at the end of the line holding the last one. The gold's numbers are those
  of its steps in the order the human-style text states them (`style.Styled.numbers`), so the
  rewrite keeps the gold's content, numbers and order, in the teacher's words and layout. A
  rewrite is kept when it wrote all of them within the token budget, with the same signs, and
  every equation line it wrote is true (the operators are the teacher's: a wrong one is caught).

A kept question whose rewrite is not kept gets its gold text instead (trainset.py marks the row's
source `gold_fallback`), so the source stays aligned with the others; the summary counts these.
"""

from __future__ import annotations

import logging
import re

import pandas as pd

from ftlab import (
    answers,
    cells,
    generate,
    inference,
    prompts,
    provenance,
    rationales,
    tables,
    teachers,
)

from . import style

log = logging.getLogger(__name__)

DIGITS = "0123456789"
STOP_WORDS = ("Answer", "Question")  # tokens holding these end a CoT: not before the content


def render_prompt(template: str, question: str, choices, rationale: str, answer: str) -> str:
    block = prompts.question_block(question, choices)
    return template.format(
        question=question.strip(),
        question_block=block,
        choices=block[len(f"{prompts.QUESTION} {question.strip()}\n") :],
        rationale=rationale,
        answer=answer,
        cot_prompt=prompts.cot_prompt(question, choices),
    )


class _Vocab:
    """What the constraint needs to know of a tokenizer's ids."""

    def __init__(self, tokenizer):
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        self.digit = {}
        mixed = []
        for i, t in enumerate(texts):
            if any(c in DIGITS for c in t):
                if t in DIGITS and len(t) == 1:
                    self.digit[t] = i
                else:
                    mixed.append(i)
        if sorted(self.digit) != list(DIGITS):
            raise ValueError("constrained rewriting needs a token for each digit 0-9 "
                             f"(this tokenizer has {sorted(self.digit)})")  # fmt: skip
        self.digit_ids = sorted(self.digit.values())
        self.digit_of = {i: d for d, i in self.digit.items()}
        self.never = set(mixed)  # tokens mixing digits with other text cannot spell a gold number
        if tokenizer.pad_token_id is not None:
            self.never.add(tokenizer.pad_token_id)
        self.stop = {i for i, t in enumerate(texts) if any(w in t for w in STOP_WORDS)}
        if tokenizer.eos_token_id is not None:
            self.stop.add(tokenizer.eos_token_id)
        self.line_end = {i for i, t in enumerate(texts) if "\n" in t} | self.stop
        self.eos = tokenizer.eos_token_id
        import torch

        self.never_idx, self.stop_idx, self.digit_idx = (
            torch.tensor(sorted(ids), dtype=torch.long)
            for ids in (self.never, self.stop, self.digit_ids)
        )


class _Row:
    """Decoding state of one prompt: which gold number comes next, and how much of it is out."""

    def __init__(self, targets: list[str]):
        self.targets = targets
        self.started = 0  # gold numbers begun
        self.current: str | None = None  # digits written of the number being written
        self.ids: list[int] = []
        self.done = False

    @property
    def consumed(self) -> bool:
        return self.started == len(self.targets) and (
            self.current is None or self.current == self.targets[-1]
        )

    def choose(self, logits, vocab: _Vocab) -> int:
        """The next token: the teacher's choice within the constraint."""
        import torch

        scores = logits.clone()
        scores[vocab.never_idx.to(scores.device)] = -torch.inf
        digits = vocab.digit_idx.to(scores.device)
        if (
            self.current is not None
            and self.started
            and len(self.current) < len(self.targets[self.started - 1])
        ):
            return vocab.digit[self.targets[self.started - 1][len(self.current)]]
        if self.consumed:
            scores[digits] = -torch.inf
            return int(scores.argmax())
        scores[vocab.stop_idx.to(scores.device)] = -torch.inf
        if self.current is not None:  # a gold number just ended: no digit may follow it
            scores[digits] = -torch.inf
            return int(scores.argmax())
        best = int(scores.argmax())
        if best in vocab.digit_of:  # the teacher starts a number: the gold's next one
            return vocab.digit[self.targets[self.started][0]]
        return best

    def push(self, token: int, vocab: _Vocab) -> None:
        self.ids.append(token)
        digit = vocab.digit_of.get(token)
        if digit is None:
            self.current = None
        elif self.current is None:
            self.started += 1
            self.current = digit
        else:
            self.current += digit
        if token == vocab.eos or (self.consumed and token in vocab.line_end):
            self.done = True


def constrained(
    model, tokenizer, prompt_list: list[str], targets: list[list[str]], max_new_tokens: int,
    batch_size: int = 64,
) -> list[teachers.Completion]:  # fmt: skip
    """Greedy completions of `prompt_list`, each writing its `targets` (digit strings) as its
    numbers, in order (see the module docstring); batched, left-padded, with the KV cache."""
    import torch
    from transformers import DynamicCache

    vocab = _Vocab(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else vocab.eos
    encoded = [tokenizer(prompts.render(tokenizer, p))["input_ids"] for p in prompt_list]
    out: list[teachers.Completion | None] = [None] * len(prompt_list)
    with inference.evaluating(model):
        for batch in inference.longest_first([len(e) for e in encoded], batch_size):
            ids, mask = generate.left_pad([encoded[i] for i in batch], pad, model.device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            rows = [_Row([n.lstrip("-") for n in targets[i]]) for i in batch]
            cache = DynamicCache(config=model.config)
            for _ in range(max_new_tokens):
                logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                               past_key_values=cache, use_cache=True).logits[:, -1].float()  # fmt: skip
                nxt = []
                for j, row in enumerate(rows):
                    token = pad if row.done else row.choose(logits[j], vocab)
                    if not row.done:
                        row.push(token, vocab)
                    nxt.append(token)
                if all(r.done for r in rows):
                    break
                ids = torch.tensor(nxt, device=model.device).unsqueeze(-1)
                mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=-1)
                positions = positions[:, -1:] + 1
            for j, i in enumerate(batch):
                text = tokenizer.decode(rows[j].ids, skip_special_tokens=True)
                complete = rows[j].consumed
                out[i] = teachers.Completion(text if complete else "", len(encoded[i]),
                                             len(rows[j].ids))  # fmt: skip
    return out


def _cut(text: str) -> str:
    """The rationale of a constrained rewrite: its text before any answer cue."""
    for word in STOP_WORDS:
        text = text.split(word, 1)[0]
    return text.strip()


def _same_numbers(rationale: str, gold: list[str]) -> bool:
    return re.findall(r"-?\d+", rationale) == list(gold)


def _steps_true(rationale: str) -> bool:
    """Every line that is an equation step (a op b = c) is arithmetically true: the numbers were
    imposed, the operators and signs around them were the teacher's."""
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
           "/": lambda a, b: a // b if b else None}  # fmt: skip
    return all(ops[s.op](int(s.a), int(s.b)) == int(s.c)
               for s in style.parse(rationale) if s.is_equation)  # fmt: skip


def rewrite(
    questions: pd.DataFrame,
    teacher_dir,
    teacher_name: str,
    method: str,
    template: str,
    gold_style: str,
    seed: int,
    decoding: teachers.Decoding,
    batch_size: int,
    cache_dir=None,
    threads: int = 1,
) -> tuple[pd.DataFrame, str, str | None]:
    """Rows of the "rationales" table, one per question (train rows of a task table, in order),
    and the device and teacher fingerprint used. `questions` carries the gold rationale."""
    golds = [style.style(r, e, gold_style, seed)
             for r, e in zip(questions["gold_rationale"], questions["example_id"], strict=True)]  # fmt: skip
    prompt_list = [
        render_prompt(template, q, cells.choices(c), g.text, a)
        for q, c, g, a in zip(
            questions["question"], questions["choices"], golds, questions["answer"], strict=True
        )  # fmt: skip
    ]
    device, fingerprint = "cpu", None
    if method == "constrained":
        from ftlab import models

        models.set_threads(threads)
        model, tokenizer = models.load(teacher_dir)
        device, fingerprint = model.device.type, teachers.fingerprint(teacher_dir)
        done = constrained(model, tokenizer, prompt_list, [g.numbers() for g in golds],
                           decoding.max_new_tokens, batch_size)  # fmt: skip
    elif method == "prompt":
        teacher = rationales.load_teacher(teacher_dir, batch_size=batch_size)
        cache = rationales.Cache(cache_dir, f"{questions['task'].iloc[0]}.rewrite")
        done = rationales.complete_cached(teacher, prompt_list, decoding, cache, batch_size)
        device, fingerprint = getattr(teacher, "device", None) or "cpu", teacher.fingerprint
    else:
        raise ValueError(f"rewrite method must be prompt or constrained, not {method!r}")
    record = provenance.stable_json({"method": method, **decoding.key()})
    rows = []
    for row, prompt, gold, comp in zip(questions.itertuples(index=False), prompt_list, golds,
                                       done, strict=True):  # fmt: skip
        choices = cells.choices(row.choices)
        if method == "constrained":
            rationale, parsed = _cut(comp.text), row.answer if comp.text else None
            kept = (bool(rationale) and _same_numbers(rationale, gold.numbers())
                    and _steps_true(rationale))  # fmt: skip
            correct = kept
        else:
            rationale, raw = prompts.split_cot(comp.text)
            parsed = answers.parse(raw, row.task_type, choices)
            correct = parsed is not None and bool(
                answers.is_correct(parsed, row.answer, row.task_type, choices)
            )
            kept = bool(rationale) and correct
        rows.append({
            "example_id": row.example_id, "task": row.task, "split": row.split,
            "teacher": teacher_name, "prompt": prompt, "prompt_hash": rationales.prompt_hash(prompt),
            "rationale": rationale, "parsed_answer": parsed, "answer": row.answer,
            "correct": correct, "kept": kept, "prompt_tokens": comp.prompt_tokens,
            "rationale_tokens": comp.completion_tokens, "decoding": record,
        })  # fmt: skip
    frame = pd.DataFrame.from_records(rows, columns=tables.schema("rationales").names)
    log.info("%s rewrites (%s) of %d gold rationales: %d kept, %d fall back to the gold text",
             teacher_name, method, len(frame), int(frame["kept"].sum()),
             int((~frame["kept"]).sum()))  # fmt: skip
    return frame, device, fingerprint
