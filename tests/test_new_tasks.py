"""Few-label embedded tasks (`generator_config.wrap`): compare (Yes/No over a numeric generator)
and balance (a generator's own labels, rebalanced)."""

import re

import pytest

from ftlab import answers, solvers, task_wrappers, tasks

SIZES = {"train": 300, "validation": 40, "test": 60}
COMPARE = {
    "chain_sum_gt": (
        "chain_sum",
        {"min_terms": 2, "max_terms": 4, "min_digits": 1, "max_digits": 1},
    ),
    "leg_counting_gt": (
        "leg_counting",
        {"min_animals": 2, "max_animals": 3, "max_instances": 4},
    ),
}
STEP = re.compile(r"^(-?\d+) is (not )?greater than (-?\d+)\.$")


def compare_task(name, seed=0, max_offset=4, sizes=SIZES, difference=False):
    generator, config = COMPARE[name]
    wrap = {"kind": "compare", "max_offset": max_offset, "difference": difference}
    spec = {
        "source": "embedded",
        "generator": generator,
        "task_type": "classification",
        "generator_config": config | {"wrap": wrap},
        "sizes": sizes,
        "seed": seed,
    }
    return tasks.prepare(name, spec)[0]


def balanced_syllogism(seed=0, sizes=SIZES):
    spec = {
        "source": "embedded",
        "task_type": "classification",
        "generator_config": {"wrap": {"kind": "balance", "labels": ["Yes", "No"]}},
        "sizes": sizes,
        "seed": seed,
    }
    return tasks.prepare("syllogism", spec)[0]


@pytest.mark.parametrize("name", list(COMPARE))
def test_compare_labels_are_balanced_and_yes_or_no(name):
    table = compare_task(name)
    counts = table["answer"].value_counts()
    assert set(counts.index) == {"Yes", "No"}
    assert counts["Yes"] == counts["No"] == len(table) // 2  # each label fills its share
    for split in tasks.SPLITS:  # a seeded shuffle of a balanced table: each split near 50/50
        share = (table[table["split"] == split]["answer"] == "Yes").mean()
        assert 0.3 <= share <= 0.7, (split, share)


@pytest.mark.parametrize("difference", [False, True])
@pytest.mark.parametrize("name", list(COMPARE))
def test_compare_rationale_final_step_implies_the_label(name, difference):
    table = compare_task(name, difference=difference)
    assert table["gold_rationale"].notna().all()
    for row in table.itertuples(index=False):
        lines = row.gold_rationale.splitlines()
        m = STEP.match(lines[-1])
        assert m, lines[-1]
        value, negated, threshold = int(m.group(1)), bool(m.group(2)), int(m.group(3))
        assert negated == (value <= threshold)
        assert row.answer == ("No" if negated else "Yes")
        assert str(threshold) in row.question
        if difference:  # before it, the difference whose sign it reads
            assert lines.pop(-2) == f"{value} - {threshold} = {value - threshold}"
        assert lines[-2].rstrip().endswith(f"= {value}")  # the steps reach the base answer v
        assert answers.is_correct(answers.parse(row.answer, "classification"), row.answer,
                                  "classification")  # fmt: skip


@pytest.mark.parametrize("max_offset", [1, 3])
def test_compare_threshold_lies_within_the_offset(max_offset):
    import json

    table = compare_task("chain_sum_gt", max_offset=max_offset)
    for row in table.itertuples(index=False):
        meta = json.loads(row.metadata)
        value, threshold = meta["base_answer"], meta["threshold"]
        assert value - max_offset <= threshold <= value + max_offset - 1
        assert (row.answer == "Yes") == (value > threshold)


def test_balance_rebalances_syllogism_and_keeps_its_rationales():
    table = balanced_syllogism()
    counts = table["answer"].value_counts()
    assert counts["Yes"] == counts["No"] == len(table) // 2
    assert table["gold_rationale"].notna().all()
    yes_steps = ("the two statements together give", *solvers._INVERSIONS.values())
    for row in table.itertuples(index=False):  # the final step says whether it follows
        last = row.gold_rationale.splitlines()[-1]
        assert (row.answer == "Yes") == any(s in last for s in yes_steps), last


@pytest.mark.parametrize(
    "make", [lambda s: compare_task("chain_sum_gt", seed=s), balanced_syllogism]
)
def test_deterministic_under_a_seed(make):
    a, b, c = make(3), make(3), make(4)
    assert a.equals(b)
    assert list(a["example_id"]) != list(c["example_id"])


@pytest.mark.parametrize("make", [lambda: compare_task("leg_counting_gt"), balanced_syllogism])
def test_splits_are_complete_and_disjoint(make):
    table = make()
    assert table["split"].value_counts().to_dict() == SIZES
    assert table["example_id"].is_unique
    assert table["question"].is_unique


def test_wrap_is_not_passed_to_the_generator_and_unknown_kinds_fail():
    config, wrap = task_wrappers.split_wrap({"min_terms": 2, "wrap": {"kind": "compare"}})
    assert config == {"min_terms": 2} and wrap == {"kind": "compare"}
    assert task_wrappers.split_wrap({"min_terms": 2}) == ({"min_terms": 2}, None)
    with pytest.raises(ValueError, match="wrap.kind"):
        task_wrappers.split_wrap({"wrap": {"kind": "parity"}})


def test_compare_step_wording():
    assert task_wrappers.difference_step(-2, -3) == "-2 - -3 = 1"
    assert task_wrappers.compare_step(10, 9) == "10 is greater than 9."
    assert task_wrappers.compare_step(9, 9) == "9 is not greater than 9."
    assert task_wrappers.compare_label(9, 9) == "No"
    assert task_wrappers.compare_label(-1, -3) == "Yes"
