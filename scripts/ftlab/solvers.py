"""Gold step-by-step rationales for reasoning-gym generators, written from each example's metadata.

A rationale is short and regular, one step per line (faithfulness tests cut a chain of thought at
line boundaries and corrupt one intermediate result), and never states the final answer line:
`prompts.cot_completion` appends "Answer: x". Each solver also returns the answer its steps reach,
so `tasks` can check the solver against the generator's gold answer instead of trusting it.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Solution:
    rationale: str
    answer: str


Solver = Callable[[dict, dict], Solution]


# --- arithmetic -----------------------------------------------------------------------------------

_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "/"}


def _apply(op: str, a: int, b: int) -> int:
    # reasoning-gym evaluates "/" as floor division (its divisions are almost always exact)
    match op:
        case "+":
            return a + b
        case "-":
            return a - b
        case "*":
            return a * b
    return a // b


def arithmetic_steps(expression: str) -> tuple[list[str], int]:
    """Evaluate an integer expression one operation per line, respecting precedence and brackets.

    "3 + 4 * (2 - 5)" -> ["2 - 5 = -3", "4 * -3 = -12", "3 + -12 = -9"], -9.
    """
    steps: list[str] = []

    def walk(node: ast.AST) -> int:
        match node:
            case ast.Constant(value=int() as v):
                return v
            case ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=int() as v)):
                return -v
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return walk(operand)
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                value = walk(operand)
                steps.append(f"-({value}) = {-value}")
                return -value
            case ast.BinOp(op=op, left=left, right=right) if type(op) in _OPS:
                a, b = walk(left), walk(right)
                result = _apply(_OPS[type(op)], a, b)
                steps.append(f"{a} {_OPS[type(op)]} {b} = {result}")
                return result
        raise ValueError(f"unsupported arithmetic expression: {expression!r}")

    value = walk(ast.parse(expression.strip(), mode="eval").body)
    return steps, value


def chain_sum(example: dict, config: dict) -> Solution:
    """Left to right, one running total per line: "12 + 7 = 19\\n19 - 5 = 14"."""
    steps, value = arithmetic_steps(example["metadata"]["expression"])
    return Solution("\n".join(steps) or str(value), str(value))


def basic_arithmetic(example: dict, config: dict) -> Solution:
    """Innermost brackets first, then * and /, then + and -, one operation per line."""
    steps, value = arithmetic_steps(example["metadata"]["expression"])
    return Solution("\n".join(steps) or str(value), str(value))


def leg_counting(example: dict, config: dict) -> Solution:
    """One line per animal ("spider: 3 * 8 = 24"), then a running sum, one addition per line
    ("24 + 8 = 32"): a single two-operand step per line is what a small model can learn, and what
    the faithfulness tests cut and corrupt."""
    animals: dict[str, int] = example["metadata"]["animals"]
    legs = _legs_per_animal(animals, int(example["metadata"]["total_legs"]))
    lines, totals = [], []
    for animal, count in animals.items():
        totals.append(count * legs[animal])
        lines.append(f"{animal}: {count} * {legs[animal]} = {totals[-1]}")
    running = totals[0]
    for total in totals[1:]:
        lines.append(f"{running} + {total} = {running + total}")
        running += total
    return Solution("\n".join(lines), str(sum(totals)))


def _legs_per_animal(animals: dict[str, int], total: int) -> dict[str, int]:
    """reasoning-gym's own table; an animal missing from it is derived from the total."""
    try:
        from reasoning_gym.arithmetic.leg_counting import ANIMALS as table
    except ImportError:
        table = {}
    legs = {a: table[a] for a in animals if a in table}
    unknown = [a for a in animals if a not in legs]
    if len(unknown) > 1:
        raise ValueError(f"leg_counting: legs unknown for {unknown}")
    if unknown:
        rest = total - sum(animals[a] * legs[a] for a in legs)
        legs[unknown[0]] = rest // animals[unknown[0]]
    return legs


# --- text -----------------------------------------------------------------------------------------


def gsm_symbolic(example: dict, config: dict) -> Solution:
    """The human-written GSM8K-style rationale, without its trailing "#### n" line."""
    cot = example["metadata"]["answer_cot"].strip()
    lines = cot.splitlines()
    answer = str(example["answer"])
    if lines and lines[-1].startswith("####"):
        answer = lines.pop().removeprefix("####").strip()
    return Solution("\n".join(line.strip() for line in lines if line.strip()), answer)


def spell_backward(example: dict, config: dict) -> Solution:
    word = example["metadata"]["word"]
    rationale = f"The word is {word}.\nIts letters are {'-'.join(word)}.\nIn reverse: {'-'.join(word[::-1])}."
    return Solution(rationale, word[::-1])


# --- syllogism ------------------------------------------------------------------------------------

_STATEMENT = re.compile(r"^(All|No|Some) (.+?) are (not )?(.+)$")


def _statement(text: str) -> tuple[str, str, str]:
    """ "Some cats are not dogs" -> ("Some-not", "cats", "dogs")."""
    m = _STATEMENT.match(text.strip())
    if not m:
        raise ValueError(f"syllogism: cannot read statement {text!r}")
    quantifier = "Some-not" if m.group(3) else m.group(1)
    return quantifier, m.group(2), m.group(4)


def syllogism(example: dict, config: dict) -> Solution:
    """Why the conclusion does or does not follow, from the quantifiers of the premises."""
    meta = example["metadata"]
    if meta.get("type") == "inversion":
        return _inversion(meta)
    p1, p2, c = (_statement(meta[k]) for k in ("premise1", "premise2", "conclusion"))
    negative, particular = {"No", "Some-not"}, {"Some", "Some-not"}
    (q1, a, b), (q2, _, _), (q3, subj, pred) = p1, p2, c
    lines = [f"Statement 1 relates {a} to {b}; statement 2 relates {b} to {p2[2]}."]
    reason = None
    if q1 in negative and q2 in negative:
        reason = "Both statements are negative, so nothing follows."
    elif q1 in particular and q2 in particular:
        reason = "Both statements are only about some, so nothing follows."
    elif q3 in {"All", "No"} and (q1 in particular or q2 in particular):
        reason = "A statement is only about some, so a conclusion about all cannot follow."
    elif q3 in negative and not (q1 in negative or q2 in negative):
        reason = "Both statements are positive, so a negative conclusion cannot follow."
    elif q3 in {"All", "No"} and _distributed(p1, subj) is False:
        reason = f"The conclusion is about all {subj}, but statement 1 is not."
    elif q3 in negative and _distributed(p2, pred) is False:
        reason = f"The conclusion is about all {pred}, but statement 2 is not."
    elif (q1 in negative or q2 in negative) and q3 not in negative:
        reason = "A statement is negative, so a positive conclusion cannot follow."
    if reason is None:
        lines.append(f"Through {b}, the two statements together give: {meta['conclusion']}.")
    else:
        lines.append(reason)
    return Solution("\n".join(lines), "No" if reason else "Yes")


def _distributed(statement: tuple[str, str, str], term: str) -> bool | None:
    """Whether `statement` speaks about every member of `term` (None: term not in it)."""
    q, subj, pred = statement
    if term == subj:
        return q in {"All", "No"}
    if term == pred:
        return q in {"No", "Some-not"}
    return None


_INVERSIONS = {  # (premise quantifier, conclusion quantifier) -> why the swap does or does not hold
    ("No", "No"): "'No X are Y' also means 'No Y are X'.",
    ("All", "Some"): "If all X are Y, then some Y are X.",
    ("Some", "Some"): "'Some X are Y' also means 'Some Y are X'.",
}


def _form(quantifier: str, x: str, y: str) -> str:
    return f"Some {x} are not {y}" if quantifier == "Some-not" else f"{quantifier} {x} are {y}"


def _inversion(meta: dict) -> Solution:
    premise = meta[f"premise{meta['selected_premise']}"]
    q, qc = _statement(premise)[0], _statement(meta["conclusion"])[0]
    valid = (q, qc) in _INVERSIONS
    why = _INVERSIONS.get((q, qc), f"'{_form(q, 'X', 'Y')}' does not mean '{_form(qc, 'Y', 'X')}'.")
    lines = [f"The conclusion turns statement {meta['selected_premise']} around: {premise}.", why]
    return Solution("\n".join(lines), "Yes" if valid else "No")


# --- family relationships -------------------------------------------------------------------------

_MARRIED = re.compile(r"(\w+) is married to (\w+)\.")
_CHILDREN = re.compile(r"They have (?:a child|children) called ([\w ,]+?)\.")


def family_relationships(example: dict, config: dict) -> Solution:
    """The chain of family links from person1 to person2, one link per line."""
    meta, story = example["metadata"], example["question"].split("\n\n")[0]
    female = set(config.get("female_names") or _default_names("female_names"))
    spouse: dict[str, str] = {}
    parents: dict[str, list[str]] = {}
    couple: tuple[str, str] | None = None
    for m in re.finditer(f"{_MARRIED.pattern}|{_CHILDREN.pattern}", story):
        if m.group(1):
            couple = (m.group(1), m.group(2))
            spouse[m.group(1)], spouse[m.group(2)] = m.group(2), m.group(1)
        elif couple:
            for child in re.split(r", | and ", m.group(3)):
                parents.setdefault(child.strip(), []).extend(couple)

    def word(person: str, pair: tuple[str, str]) -> str:
        return pair[0] if person in female else pair[1]

    def links(person: str):
        if person in spouse:
            yield spouse[person], word(person, ("wife", "husband"))
        for parent in parents.get(person, []):
            yield parent, word(person, ("daughter", "son"))
        for child in (c for c, ps in parents.items() if person in ps):
            yield child, word(person, ("mother", "father"))

    start, goal = meta["person1"], meta["person2"]
    previous: dict[str, tuple[str, str] | None] = {start: None}
    queue = deque([start])
    while queue and goal not in previous:
        person = queue.popleft()
        for other, relation in links(person):
            if other not in previous:
                previous[other] = (person, relation)
                queue.append(other)
    if goal not in previous:
        raise ValueError(f"family_relationships: no link between {start} and {goal}")
    lines, person = [], goal
    while previous[person] is not None:
        before, relation = previous[person]
        lines.append(f"{before} is {person}'s {relation}.")
        person = before
    lines.reverse()
    return Solution("\n".join(lines), _relationship(start, goal, spouse, parents, female))


def _relationship(p1: str, p2: str, spouse: dict, parents: dict, female: set) -> str:
    """reasoning-gym's own rules (its in-law answer names person2's relation to person1)."""

    def par(person: str) -> list[str]:
        return parents.get(person, [])

    def grand(person: str) -> list[str]:
        return [g for parent in par(person) for g in par(parent)]

    f1 = p1 in female
    if p1 in par(p2):
        return "mother" if f1 else "father"
    if p2 in par(p1):
        return "daughter" if f1 else "son"
    if spouse.get(p1) == p2:
        return "wife" if f1 else "husband"
    if par(p1) and set(par(p1)) == set(par(p2)):
        return "sister" if f1 else "brother"
    if p1 in grand(p2):
        return "grandmother" if f1 else "grandfather"
    if any(p in grand(p2) for p in par(p1)):
        return "aunt" if f1 else "uncle"
    if any(p in grand(p1) for p in par(p2)):
        return "niece" if p2 in female else "nephew"
    if p1 in spouse and p2 in par(spouse[p1]):
        return "mother-in-law" if p2 in female else "father-in-law"
    return "unknown"


def _default_names(field: str) -> list[str]:
    from reasoning_gym.graphs.family_relationships import FamilyRelationshipsConfig

    return getattr(FamilyRelationshipsConfig(), field)


SOLVERS: dict[str, Solver] = {
    "chain_sum": chain_sum,
    "leg_counting": leg_counting,
    "basic_arithmetic": basic_arithmetic,
    "syllogism": syllogism,
    "family_relationships": family_relationships,
    "gsm_symbolic": gsm_symbolic,
    "spell_backward": spell_backward,
}


def solve(generator: str, example: dict, config: dict) -> Solution | None:
    """The gold rationale for one generated example, or None if ftlab has no solver for it."""
    solver = SOLVERS.get(generator)
    return solver(example, config) if solver else None
