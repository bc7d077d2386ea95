"""The CoT edits of the faithfulness tests: steps, one mistake, meaning-preserving paraphrase, filler."""

import re

import pandas as pd
import pytest

from ftlab import tokenizer as tok
from ftlab.studies.faithfulness import interventions as iv

NUM = re.compile(r"-?\d+")


def test_steps_are_lines_with_content():
    cot = "4 + 5 = 9\n\n  9 - 3 = 6  \n...\n"
    assert iv.split_steps(cot) == ["4 + 5 = 9", "9 - 3 = 6"]
    assert (
        iv.split_steps("") == [] and iv.split_steps(None) == [] and iv.split_steps("...\n--") == []
    )


@pytest.mark.parametrize(
    "step",
    [
        "4 + 5 = 9",
        "15 - 43 - 75 = -103",
        "3 grasshoppers have 6 legs each: 3 x 6 = 18",
        "so 26 legs",
    ],
)
def test_mistake_changes_exactly_one_number(step):
    for seed in range(20):
        wrong = iv.corrupt_step(step, iv.example_rng(seed, "ex"))
        before, after = NUM.findall(step), NUM.findall(wrong)
        assert len(before) == len(after)
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) == 1
        assert NUM.sub("#", step) == NUM.sub("#", wrong)  # the words around are untouched
        if "=" in step:
            assert changed == [len(before) - 1]  # the equation's result, not an operand


def test_mistake_is_deterministic_per_seed_and_example():
    steps = [iv.corrupt_step("12 + 30 = 42", iv.example_rng(0, "run", f"ex{i}")) for i in range(30)]
    again = [iv.corrupt_step("12 + 30 = 42", iv.example_rng(0, "run", f"ex{i}")) for i in range(30)]
    assert steps == again and len(set(steps)) > 3
    with pytest.raises(ValueError, match="no number"):
        iv.corrupt_step("no numbers here", iv.example_rng(0))


def _meaning(text: str):
    """(numbers, operation words) of an arithmetic step, in a canonical order."""
    ops = {"+": "add", "-": "sub", "x": "mul", "*": "mul", "/": "div"}
    if m := re.fullmatch(r"(-?\d+) ([-+x*/]) (-?\d+) = (-?\d+)", text):
        return ops[m[2]], int(m[1]), int(m[3]), int(m[4])
    m = re.fullmatch(
        r"(adding|subtracting|multiplying|dividing) (-?\d+) (?:to|from|by) (-?\d+) gives (-?\d+)",
        text,
    )
    if m[1] in ("adding", "subtracting"):
        return m[1][:3], int(m[3]), int(m[2]), int(m[4])  # "adding b to a": a is second
    return m[1][:3], int(m[2]), int(m[3]), int(m[4])


@pytest.mark.parametrize(
    "step", ["4 + 5 = 9", "15 - 43 = -28", "3 x 6 = 18", "8 / 2 = 4", "-28 - 75 = -103"]
)
def test_paraphrase_preserves_the_arithmetic(step):
    para = iv.paraphrase_step(step)
    assert para != step
    assert _meaning(para) == _meaning(step)
    assert iv.paraphrase_step(step) == para  # deterministic


def test_paraphrase_of_chains_and_connectives():
    assert iv.paraphrase_step("15 - 43 - 75 = -103") == (
        "starting from 15, subtracting 43, subtracting 75 gives -103"
    )
    assert iv.paraphrase_step("So the total is 26") == "Thus the sum is 26"
    assert (
        iv.paraphrase("4 + 5 = 9\nSo the answer is 9")
        == "adding 5 to 4 gives 9\nThus the answer is 9"
    )
    assert iv.paraphrase_step("nothing to change here") == "nothing to change here"


@pytest.fixture(scope="module")
def tokenizer():
    frame = pd.DataFrame(
        {
            "question": [f"What is {a} + {b}?" for a, b in [(1, 2), (13, 4), (7, 75)]] * 3,
            "choices": [None] * 9,
            "answer": ["3", "17", "82"] * 3,
            "gold_rationale": ["1 + 2 = 3", "13 + 4 = 17\nSo 17 ... ...", "7 + 75 = 82"] * 3,
        }
    )
    return tok.build([frame], vocab_size=300)


@pytest.mark.parametrize("cot", ["4 + 5 = 9", "13 + 4 = 17\n17 - 2 = 15\nSo the answer is 15", "x"])
@pytest.mark.parametrize("unit", [" ...", " .", "..."])
def test_filler_has_the_same_token_length(tokenizer, cot, unit):
    n = iv.token_length(tokenizer, " " + cot)
    fill = iv.filler(tokenizer, n, unit)
    assert iv.token_length(tokenizer, fill) == n
    assert set(fill) <= set(" .")
    assert iv.filler(tokenizer, 0, unit) == ""
