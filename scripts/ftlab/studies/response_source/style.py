"""A human style for the embedded gold rationales: the same steps, in words the models never wrote.

Ren et al. compare human-written responses with LLM-written ones. In the embedded world the
teacher was pretrained on the solvers' gold rationales ("5 - 7 = -2", one step per line), so its
own rationales are nearly the gold text and there would be no contrast to measure. The study's
`gold` source therefore rewrites each solver rationale the way a person might, deterministically
from (seed, example_id):

* phrasing: each equation step in one of several verbal forms ("5 minus 7 is -2", "taking 7 away
  from 5 leaves -2", ...), sometimes leaving the running total implicit ("then subtract 7 to get
  -9"); labelled steps ("spider: 5 * 8 = 40") as "for the spider, 5 times 8 makes 40", ...;
* connectives: "First,", "Then", "After that,", "Finally," ... between steps;
* sentence order: an opening remark or none, the result stated up front ("It comes to -9. ...")
  or at the end, and products of labelled steps (leg counts) listed in a shuffled order, the
  running sum then added up in that order;
* layout: one sentence per line, or a paragraph.

Every number stays in digits and every step stays arithmetically true (tests check this): only
the style changes. Lines that are not an equation step (other tasks' rationales) keep their text,
with a connective in front. `style` returns the text and the steps in the order it states them,
which is the gold content the embedded rewrite (`rewrite.py`) keeps.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

STYLES = ("human", "original")

# "a op b = c", optionally labelled ("spider: 5 * 8 = 40"): the solvers' equation steps
_STEP = re.compile(
    r"^(?:(?P<label>[A-Za-z][A-Za-z ]*?): )?(?P<a>-?\d+) (?P<op>[-+*/]) (?P<b>-?\d+) = (?P<c>-?\d+)$"
)
NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Step:
    """One line of a rationale: an equation step (a op b = c), or free text."""

    text: str
    a: str | None = None
    op: str | None = None
    b: str | None = None
    c: str | None = None
    label: str | None = None

    @property
    def is_equation(self) -> bool:
        return self.op is not None

    def numbers(self) -> list[str]:
        """Its numbers, signed, in reading order: a, b, c (free text: as they appear)."""
        if self.is_equation:
            return [self.a, self.b, self.c]
        return re.findall(r"-?\d+", self.text)


@dataclass(frozen=True)
class Styled:
    text: str
    steps: tuple[Step, ...]  # in the order the text states them: the content

    def numbers(self) -> list[str]:
        return [n for s in self.steps for n in s.numbers()]


def parse(rationale: str) -> list[Step]:
    steps = []
    for line in (rationale or "").splitlines():
        line = line.strip()
        if not line:
            continue
        m = _STEP.match(line)
        steps.append(Step(line, m["a"], m["op"], m["b"], m["c"], m["label"]) if m else Step(line))
    return steps


def _rng(seed: int, example_id: str) -> np.random.Generator:
    return np.random.default_rng(
        [int(seed), int(hashlib.sha256(f"style/{example_id}".encode()).hexdigest()[:15], 16)]
    )


def _reorder_products(steps: list[Step], rng) -> list[Step]:
    """Labelled products followed by their running sum (leg counting) in a shuffled order, the
    sum recomputed in the new order; any other shape unchanged."""
    k = 0
    while k < len(steps) and steps[k].is_equation and steps[k].label:
        k += 1
    sums = steps[k:]
    if k < 2 or len(sums) != k - 1 or any(not s.is_equation or s.op != "+" or s.label
                                          for s in sums):  # fmt: skip
        return steps
    running = int(steps[0].c)
    for s, product in zip(sums, steps[1:k], strict=True):
        if int(s.a) != running or int(s.b) != int(product.c):
            return steps
        running += int(product.c)
    products = [steps[i] for i in rng.permutation(k)]
    out, running = list(products), int(products[0].c)
    for p in products[1:]:
        total = running + int(p.c)
        out.append(Step(f"{running} + {p.c} = {total}", str(running), "+", p.c, str(total)))
        running = total
    return out


_FORMS = {
    "+": ["{a} plus {b} is {c}", "adding {b} to {a} gives {c}", "{a} and {b} make {c}",
          "if you add {a} and {b} you get {c}", "{a} added to {b} comes to {c}"],
    "-": ["{a} minus {b} is {c}", "taking {b} away from {a} leaves {c}",
          "{a} take away {b} gives {c}", "subtracting {b} from {a} we get {c}"],
    "*": ["{a} times {b} is {c}", "{a} lots of {b} make {c}", "multiplying {a} by {b} gives {c}"],
    "/": ["{a} divided by {b} is {c}", "{a} shared into {b} equal parts gives {c}"],
}  # fmt: skip
# the running total left implicit (a is the previous step's result)
_IMPLICIT = {
    "+": ["add {b} and we have {c}", "plus {b} brings it to {c}", "adding {b} gets us to {c}"],
    "-": ["take away {b} and it is {c}", "minus {b} leaves {c}", "subtract {b} to get {c}"],
    "*": ["times {b} makes {c}", "multiply by {b} for {c}"],
    "/": ["divide by {b} for {c}", "split into {b} parts, that is {c}"],
}
_LABELLED = ["for the {label}, {a} times {b} makes {c}", "the {label} gives {a} lots of {b}, so {c}",
             "with the {label} it is {a} times {b}, which is {c}"]  # fmt: skip
_FIRST = ["First, ", "To start, ", "", "Well, ", "OK so "]
_MIDDLE = ["Then ", "Next, ", "After that, ", "Now ", "And ", ""]
_LAST = ["Finally, ", "Last of all, ", "In the end ", "Then "]
_TEXT_LEAD = ["", "Also: ", "Next: ", "Note: "]
_OPENING = ["Let me work through it.", "We can do this one step at a time.",
            "Here is how I worked it out."]  # fmt: skip
_CLOSING = ["So the result is {r}.", "That gives {r} altogether.", "So we end up with {r}."]
_UPFRONT = ["It comes to {r}.", "The result is {r}, and here is why."]


def _pick(rng, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _sentence(step: Step, previous: Step | None, rng) -> str:
    if not step.is_equation:
        return step.text
    fields = {"a": step.a, "b": step.b, "c": step.c, "label": step.label}
    if step.label and step.op == "*":
        return _pick(rng, _LABELLED).format(**fields)
    implicit = previous is not None and previous.is_equation and previous.c == step.a
    if implicit and step.op in _IMPLICIT and rng.random() < 0.5:
        return _pick(rng, _IMPLICIT[step.op]).format(**fields)
    form = _pick(rng, _FORMS.get(step.op, ["{a} " + step.op + " {b} is {c}"]))
    return form.format(**fields)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def human(rationale: str, example_id: str, seed: int = 0) -> Styled:
    """The human-style version of a solver rationale (deterministic in seed and example_id)."""
    rng = _rng(seed, example_id)
    steps = parse(rationale)
    if not steps:
        return Styled((rationale or "").strip(), ())
    steps = _reorder_products(steps, rng) if rng.random() < 0.7 else steps
    equations = [s for s in steps if s.is_equation]
    result = equations[-1].c if equations else None
    sentences, previous = [], None
    for i, step in enumerate(steps):
        body = _sentence(step, previous, rng)
        if not step.is_equation:
            lead = "" if i == 0 else _pick(rng, _TEXT_LEAD)
            sentences.append(lead + body)
        else:
            where = _FIRST if i == 0 else _LAST if i == len(steps) - 1 and i > 1 else _MIDDLE
            sentences.append(_capital(_pick(rng, where) + body).rstrip(".") + ".")
        previous = step
    if result is not None:
        order = rng.random()
        if order < 0.25:
            sentences.insert(0, _pick(rng, _UPFRONT).format(r=result))
        elif order < 0.65:
            sentences.append(_pick(rng, _CLOSING).format(r=result))
    if rng.random() < 0.35:
        sentences.insert(0, _pick(rng, _OPENING))
    joiner = "\n" if rng.random() < 0.5 else " "
    return Styled(joiner.join(_capital(s) for s in sentences), tuple(steps))


def original(rationale: str) -> Styled:
    steps = parse(rationale)
    return Styled("\n".join(s.text for s in steps), tuple(steps))


def style(rationale: str, example_id: str, gold_style: str, seed: int = 0) -> Styled:
    """The study's gold rationale for one example: `human` (above) or the `original` text."""
    if gold_style not in STYLES:
        raise ValueError(f"gold_style must be one of {STYLES}, not {gold_style!r}")
    return human(rationale, example_id, seed) if gold_style == "human" else original(rationale)
