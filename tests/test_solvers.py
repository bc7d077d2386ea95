"""Gold rationales: one step per line, arithmetically right, reaching the generator's answer."""

import re

import pytest
import reasoning_gym

from ftlab import answers, solvers

GENERATORS = {  # generator -> (config, task_type)
    "chain_sum": ({"min_terms": 2, "max_terms": 5, "min_digits": 1, "max_digits": 3}, "numeric"),
    "leg_counting": ({"min_animals": 2, "max_animals": 5, "max_instances": 6}, "numeric"),
    "basic_arithmetic": (
        {"min_terms": 2, "max_terms": 6, "min_digits": 1, "max_digits": 2},
        "numeric",
    ),
    "syllogism": ({}, "classification"),
    "family_relationships": ({"min_family_size": 3, "max_family_size": 11}, "short_answer"),
    "gsm_symbolic": ({}, "numeric"),
    "spell_backward": ({"min_word_len": 3, "max_word_len": 8}, "generation"),
}
STEP = re.compile(r"^(?:[\w ]+: )?([-\d\s+*/()]+?) = (-?\d+)$")


def examples(name, n=150):
    config, _ = GENERATORS[name]
    return list(reasoning_gym.create_dataset(name, seed=7, size=n, **config)), config


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_solver_reaches_gold_answer_in_short_lines(name):
    items, config = examples(name, 60 if name == "gsm_symbolic" else 150)
    task_type = GENERATORS[name][1]
    for item in items:
        sol = solvers.solve(name, item, config)
        assert sol.rationale.strip() and "Answer:" not in sol.rationale
        assert all(line.strip() == line and line for line in sol.rationale.split("\n"))
        parsed = answers.parse(sol.answer, task_type)
        assert answers.is_correct(parsed, item["answer"], task_type), (item["question"], sol)


@pytest.mark.parametrize("name", ["chain_sum", "basic_arithmetic", "leg_counting"])
def test_every_arithmetic_step_is_right(name):
    items, config = examples(name)
    for item in items:
        lines = solvers.solve(name, item, config).rationale.split("\n")
        for line in lines:
            m = STEP.match(line)
            assert m, line
            # reasoning-gym's "/" is floor division; every step must evaluate to what it claims
            assert eval(m.group(1).replace("/", "//")) == int(m.group(2)), line  # noqa: S307
        assert lines[-1].endswith(f"= {item['answer']}")


def test_arithmetic_respects_precedence_and_brackets():
    steps, value = solvers.arithmetic_steps("3 + 4 * (2 - 5)")
    assert steps == ["2 - 5 = -3", "4 * -3 = -12", "3 + -12 = -9"] and value == -9
    steps, value = solvers.arithmetic_steps("-(1 + 2) * 2")
    assert steps == ["1 + 2 = 3", "-(3) = -3", "-3 * 2 = -6"] and value == -6


def test_chain_sum_runs_left_to_right():
    item = {"metadata": {"expression": "12 + 7 - 5"}, "answer": "14"}
    assert solvers.chain_sum(item, {}).rationale == "12 + 7 = 19\n19 - 5 = 14"


def test_leg_counting_derives_an_unknown_animal_from_the_total():
    meta = {"animals": {"spider": 2, "unicorn": 3}, "total_legs": 28}
    sol = solvers.leg_counting({"metadata": meta, "answer": "28"}, {})
    assert sol.rationale.split("\n") == [
        "spider: 2 * 8 = 16",
        "unicorn: 3 * 4 = 12",
        "16 + 12 = 28",
    ]


def test_family_rationale_follows_the_relation_chain():
    item = {
        "question": "Ethan is married to Jennifer. They have a child called Edward. Edward is "
        "married to Luna.\n\nHow is Luna related to Jennifer? Provide the relationship in one word.",
        "answer": "mother-in-law",
        "metadata": {"person1": "Luna", "person2": "Jennifer"},
    }
    sol = solvers.family_relationships(item, {})
    assert sol.rationale == "Luna is Edward's wife.\nEdward is Jennifer's son."
    assert sol.answer == "mother-in-law"


def test_gsm_symbolic_strips_the_final_answer_line():
    item = {"answer": "44", "metadata": {"answer_cot": "72 - 36 = 36\n36 + 8 = 44\n#### 44"}}
    sol = solvers.gsm_symbolic(item, {})
    assert sol.rationale == "72 - 36 = 36\n36 + 8 = 44" and sol.answer == "44"


def test_spell_backward_spells_letters_in_reverse():
    sol = solvers.spell_backward({"metadata": {"word": "sun"}, "answer": "nus"}, {})
    assert "n-u-s" in sol.rationale.split("\n")[-1] and sol.answer == "nus"


def test_unknown_generator_has_no_solver():
    assert solvers.solve("no_such_generator", {}, {}) is None
