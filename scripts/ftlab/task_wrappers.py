"""Few-label tasks over a reasoning-gym generator (`generator_config.wrap`), for task_sources.py.

`generator_config.wrap` (popped before the generator sees its config) turns a generator's
examples into a task whose label is one of a few options, with the label balanced:

* {kind: compare, max_offset: k}: a numeric generator becomes a Yes/No question "Is <the
  expression / the question's answer> greater than t?", t drawn within k of the true answer
  (t in [v-k, v-1] for Yes, [v, v+k-1] for No), so answering it directly needs a close estimate
  of v; the rationale is the generator's own steps, then "v is (not) greater than t.".
  `difference: true` puts "v - t = d" before that last step, so the comparison reads the sign
  of d (untested idea: bench/pilot_tasks.py measured the 3.5M teacher's last step alone right
  only ~85% of the time, most errors on negative or close numbers).
* {kind: balance, labels: [Yes, No]}: the generator's questions unchanged, drawn until each
  label fills its share (e.g. syllogism, 70% "Yes" as generated, becomes 50/50).

Both keep at most ceil(need / len(labels)) examples of each label, so the table is balanced
(exactly, when the draws suffice). Randomness comes from (seed, draw index) only.
"""

from __future__ import annotations

from .solvers import Solution

WRAP_KINDS = ("compare", "balance")


def split_wrap(config: dict) -> tuple[dict, dict | None]:
    """(the generator's own config, the `wrap` spec or None)."""
    config = dict(config or {})
    wrap = config.pop("wrap", None)
    if wrap is not None:
        wrap = dict(wrap)
        if wrap.get("kind") not in WRAP_KINDS:
            raise ValueError(
                f"generator_config.wrap.kind: {wrap.get('kind')!r} is not one of {WRAP_KINDS}"
            )
    return config, wrap


class Wrapper:
    """A `wrap` spec at work over one draw of `need` examples."""

    def __init__(self, spec: dict, seed: int, need: int):
        self.kind = spec["kind"]
        self.max_offset = int(spec.get("max_offset", 3))
        self.difference = bool(spec.get("difference", False))
        if self.kind == "compare" and self.max_offset < 1:
            raise ValueError("generator_config.wrap.max_offset: must be >= 1")
        self.labels = [str(x) for x in spec.get("labels", ["Yes", "No"])]
        self.seed = seed
        self.cap = -(-need // len(self.labels))
        self.counts = dict.fromkeys(self.labels, 0)

    def transform(self, item: dict, solution: Solution | None, index: int):
        """(item, solution) as the wrapped task asks them (compare: a new question and label)."""
        if self.kind != "compare":
            return item, solution
        import random

        rng = random.Random(f"{self.seed}:{index}")
        value = int(str(item["answer"]).strip())
        yes = rng.random() < 0.5
        offset = rng.randint(1, self.max_offset)
        threshold = value - offset if yes else value + offset - 1
        meta = dict(item.get("metadata") or {})
        expression = meta.get("expression")
        if expression:
            question = f"Is {expression} greater than {threshold}? (Answer Yes or No)"
        else:
            question = (
                f"{str(item['question']).strip()}\n"
                f"Is the answer greater than {threshold}? (Answer Yes or No)"
            )
        label = "Yes" if value > threshold else "No"
        meta |= {"wrap": "compare", "base_answer": value, "threshold": threshold}
        wrapped = {**item, "question": question, "answer": label, "metadata": meta}
        if solution is None:
            return wrapped, None
        reached = int(solution.answer)
        lines = [line for line in solution.rationale.splitlines() if line.strip()]
        if self.difference:
            lines.append(difference_step(reached, threshold))
        steps = [*lines, compare_step(reached, threshold)]
        return wrapped, Solution("\n".join(steps), compare_label(reached, threshold))

    def accept(self, answer: str) -> bool:
        """Whether an example with this label still fits (counts it if so)."""
        if answer not in self.counts or self.counts[answer] >= self.cap:
            return False
        self.counts[answer] += 1
        return True


def difference_step(value: int, threshold: int) -> str:
    """The subtraction the comparison reads its sign from: "14 - 13 = 1", "-2 - 0 = -2"."""
    return f"{value} - {threshold} = {value - threshold}"


def compare_step(value: int, threshold: int) -> str:
    return f"{value} is {'' if value > threshold else 'not '}greater than {threshold}."


def compare_label(value: int, threshold: int) -> str:
    return "Yes" if value > threshold else "No"
