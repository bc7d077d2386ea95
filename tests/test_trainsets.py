"""Distillation trainsets: same questions in every variant, the right format, seeded word edits."""

import numpy as np
import pandas as pd
import pytest

from ftlab import prompts, tables
from ftlab.studies import distillation
from ftlab.studies.distillation import trainset as trainsets

RATIONALE = " ".join(f"w{j}" for j in range(16))  # + the row number: 17 distinct words


def task_table() -> pd.DataFrame:
    rows = [
        {
            "example_id": f"e{i}",
            "task": "chain_sum",
            "split": split,
            "task_type": "numeric",
            "question": f"What is 3 + 4 + {i}?",
            "choices": None,
            "answer": str(7 + i),
            "gold_rationale": None,
            "metadata": "{}",
        }
        for i, split in enumerate(["train"] * 6 + ["validation"] * 2)
    ]
    rows[1]["task_type"], rows[1]["choices"] = "choice", ["yes", "no"]
    return pd.DataFrame(rows)


def rationale_table(kept=(True, True, True, False, True, True, True, True)) -> pd.DataFrame:
    t = task_table()
    return pd.DataFrame(
        {
            "example_id": t["example_id"],
            "task": t["task"],
            "split": t["split"],
            "teacher": "teacher",
            "prompt": "",
            "prompt_hash": "",
            "rationale": [f"{RATIONALE} {i}" for i in range(len(t))],
            "parsed_answer": t["answer"],
            "answer": t["answer"],
            "correct": list(kept),
            "kept": list(kept),
            "prompt_tokens": 1,
            "rationale_tokens": 1,
            "decoding": "{}",
        }
    )


def scores_for(n):
    # word j scores j mod 7: the top 15% of 17 words (3) are 6 and 13, then 5 (tie with 12: earlier wins)
    return [
        np.array([j % 7 for j in range(len(RATIONALE.split()) + 1)], dtype=float) for _ in range(n)
    ]


def build(variant, seed=0, tt=None, rt=None):
    settings = trainsets.Settings(seed=seed)
    tt, rt = task_table() if tt is None else tt, rationale_table() if rt is None else rt
    scores = (
        scores_for(len(trainsets.examples(tt, rt))) if variant == "cot_after_key_tokens" else None
    )
    return trainsets.build(variant, tt, rt, settings, scores=scores)


@pytest.mark.parametrize("variant", distillation.VARIANTS)
def test_every_variant_uses_the_kept_train_questions_and_the_shared_format(variant, tmp_path):
    out = build(variant)
    tables.write(out, tmp_path / "t.parquet", "trainset")
    assert out["example_id"].tolist() == ["e0", "e1", "e2", "e4", "e5"]  # train only, e3 dropped
    row = out.iloc[0]
    assert row["completion"].endswith(" 7") or row["completion"].startswith(" 7\n")
    direct, cot = (
        prompts.direct_prompt("What is 3 + 4 + 0?"),
        prompts.cot_prompt("What is 3 + 4 + 0?"),
    )
    expected_prompt = cot if variant == "cot_before" else direct
    assert row["prompt"] == expected_prompt
    assert out.iloc[1]["prompt"].endswith(
        "(A) yes\n(B) no\nAnswer:" if variant != "cot_before" else "Reasoning:"
    )
    assert (out["source"] == ("gold" if variant == "label_only" else "teacher:teacher")).all()


def test_exact_completions_of_the_plain_variants():
    r = f"{RATIONALE} 0"
    assert build("label_only").iloc[0]["completion"] == " 7"
    assert build("cot_before").iloc[0]["completion"] == f" {r}\nAnswer: 7"
    assert build("cot_after").iloc[0]["completion"] == f" 7\nReasoning: {r}"


def _words(completion):
    return completion.split("\nReasoning: ", 1)[1].split()


def test_shuffled_keeps_the_words_changes_the_order_and_is_seeded():
    a, b, c = (
        build("cot_after_shuffled", 0),
        build("cot_after_shuffled", 0),
        build("cot_after_shuffled", 1),
    )
    pd.testing.assert_frame_equal(a, b)
    original = f"{RATIONALE} 0".split()
    words = _words(a.iloc[0]["completion"])
    assert sorted(words) == sorted(original) and words != original
    assert a.iloc[0]["completion"].startswith(" 7\nReasoning: ")
    assert not a["completion"].equals(c["completion"])
    # a row's shuffle does not depend on the other rows
    reordered = build(
        "cot_after_shuffled", 0, task_table().iloc[::-1], rationale_table().iloc[::-1]
    )
    assert dict(zip(reordered["example_id"], reordered["completion"], strict=False)) == dict(
        zip(a["example_id"], a["completion"], strict=False)
    )


def test_key_tokens_keep_the_top_fraction_in_order_and_random_tokens_match_the_count():
    key = build("cot_after_key_tokens")
    original = f"{RATIONALE} 0".split()
    assert _words(key.iloc[0]["completion"]) == [original[5], original[6], original[13]]
    rnd, rnd2 = build("cot_after_random_tokens", 0), build("cot_after_random_tokens", 0)
    pd.testing.assert_frame_equal(rnd, rnd2)
    for k_row, r_row in zip(key["completion"], rnd["completion"], strict=False):
        kept = _words(r_row)
        assert len(kept) == len(_words(k_row)) == 3
        positions = [original.index(w) if w.startswith("w") else len(original) - 1 for w in kept]
        assert positions == sorted(positions)  # a subsequence: original order kept


def test_errors_name_the_problem():
    rt = rationale_table()
    rt.loc[0, "example_id"] = "not-a-question"
    with pytest.raises(ValueError, match="not in the task's train split"):
        build("cot_after", rt=rt)
    with pytest.raises(ValueError, match="needs one importance score"):
        trainsets.build(
            "cot_after_key_tokens", task_table(), rationale_table(), trainsets.Settings()
        )
    with pytest.raises(ValueError, match="unknown distillation variant"):
        build("cot_sideways")
    with pytest.raises(ValueError, match="importance"):
        trainsets.Settings.from_config({"importance": "vibes"})
