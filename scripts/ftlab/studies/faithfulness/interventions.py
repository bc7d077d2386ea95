"""The text edits the faithfulness tests make to a chain of thought (Lanham et al. 2023).

All of them are rule-based and deterministic, made for the embedded world's arithmetic
rationales ("4 + 5 = 9"): split a CoT into steps, put one mistake into one step, paraphrase a
step without changing its meaning, and fill the CoT's token budget with filler. For real models a
helper model may write the mistakes and paraphrases instead (`faithfulness.rewrite_with_helper`).
"""

from __future__ import annotations

import hashlib
import random
import re

NUMBER = r"-?\d+(?:\.\d+)?"
_NUMBER = re.compile(rf"(?<![\w.]){NUMBER}(?!\w)")
_OP_WORDS = {"+": "adding", "-": "subtracting", "*": "multiplying by", "x": "multiplying by",
             "×": "multiplying by", "/": "dividing by"}  # fmt: skip
_OP = r"[-+*/x×]"
# "a op b (op c ...) = c", the shape of an arithmetic step
_EQUATION = re.compile(rf"(?P<lhs>{NUMBER}(?:\s*{_OP}\s*{NUMBER})+)\s*=\s*(?P<rhs>{NUMBER})")
_FIRST = re.compile(NUMBER)
_TERM = re.compile(rf"\s*(?P<op>{_OP})\s*(?P<num>{NUMBER})")
# connective words -> synonyms (whole words, case kept for the first letter)
SYNONYMS = {
    "so": "thus",
    "then": "next",
    "therefore": "hence",
    "because": "since",
    "total": "sum",
    "first": "to begin,",
    "finally": "lastly",
    "gives": "yields",
    "makes": "yields",
}
_SYNONYM = re.compile(r"\b(" + "|".join(SYNONYMS) + r")\b", re.IGNORECASE)


def split_steps(cot: str | None) -> list[str]:
    """The steps of a CoT: its non-empty lines that hold at least one letter or digit."""
    if not cot:
        return []
    return [line.strip() for line in cot.splitlines() if re.search(r"\w", line)]


def join_steps(steps: list[str]) -> str:
    return "\n".join(steps)


def example_rng(seed: int, *keys) -> random.Random:
    """A generator seeded by the run's seed and the example: the same edit on every rerun."""
    digest = hashlib.sha256(repr((seed, *keys)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _numbers(step: str) -> list[re.Match]:
    return list(_NUMBER.finditer(step))


def can_corrupt(step: str) -> bool:
    return bool(_numbers(step))


def corrupt_step(step: str, rng: random.Random) -> str:
    """`step` with exactly one number changed: the result of its last equation, else its last number.

    The new value differs by a nonzero offset of 1..9 (never turning into the same text).
    """
    equations = list(_EQUATION.finditer(step))
    if equations:
        start, end = equations[-1].span("rhs")
    else:
        found = _numbers(step)
        if not found:
            raise ValueError(f"no number to corrupt in step {step!r}")
        start, end = found[-1].span()
    old = step[start:end]
    value = float(old) if "." in old else int(old)
    offset = rng.choice([-1, 1]) * rng.randint(1, 9)
    new = value + offset
    text = f"{new:.{len(old.split('.')[1])}f}" if isinstance(value, float) else str(new)
    return step[:start] + text + step[end:]


def _paraphrase_equation(m: re.Match) -> str:
    first = _FIRST.match(m["lhs"])[0]
    rest = [(t["op"], t["num"]) for t in _TERM.finditer(m["lhs"], len(first))]
    result = m["rhs"]
    if len(rest) == 1:
        op, num = rest[0]
        if op == "+":
            return f"adding {num} to {first} gives {result}"
        if op == "-":
            return f"subtracting {num} from {first} gives {result}"
        if op == "/":
            return f"dividing {first} by {num} gives {result}"
        return f"multiplying {first} by {num} gives {result}"
    parts = ", ".join(f"{_OP_WORDS[op]} {num}" for op, num in rest)
    return f"starting from {first}, {parts} gives {result}"


def _synonym(m: re.Match) -> str:
    word = m[0]
    new = SYNONYMS[word.lower()]
    return new[0].upper() + new[1:] if word[0].isupper() else new


def paraphrase_step(step: str) -> str:
    """A meaning-preserving rewording: equations spelled out in words, connectives swapped."""
    spelled = _EQUATION.sub(_paraphrase_equation, step)
    if spelled != step:
        # the spelled-out equation is new text: swap connectives only outside it
        return spelled
    return _SYNONYM.sub(_synonym, step)


def paraphrase(cot: str) -> str:
    return join_steps([paraphrase_step(s) for s in split_steps(cot)])


def token_length(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def filler(tokenizer, n_tokens: int, unit: str = " ...") -> str:
    """Filler text of exactly `n_tokens` tokens (as the CoT it replaces, which starts after " ").

    Repeats `unit`; when merges make the count overshoot or the unit does not divide the budget,
    the tail is padded with single dots, re-checked by tokenizing the whole text.
    """
    if n_tokens <= 0:
        return ""
    text = ""
    while token_length(tokenizer, text + unit) <= n_tokens:
        text += unit
        if unit.strip() == "":
            raise ValueError(f"filler unit {unit!r} must contain a visible character")
    for pad in (".", " .", "..."):
        for _ in range(4 * n_tokens):  # merges may swallow a dot; the count still only grows
            if token_length(tokenizer, text) >= n_tokens:
                break
            longer = text + pad
            if token_length(tokenizer, longer) > n_tokens:
                break
            text = longer
    if token_length(tokenizer, text) != n_tokens:
        raise ValueError(f"cannot build {n_tokens} tokens of filler from {unit!r}")
    return text
