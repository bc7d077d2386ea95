"""Distillation summary: per-seed accuracy -> mean and t-interval, the verdict, the plot, config refs."""

import copy
import re

import numpy as np
import pandas as pd
import pytest

from ftlab import tables
from ftlab.studies import distillation as study
from ftlab.studies.distillation import summary as distillation


def eval_frame(run, task, mode, correct):
    n = len(correct)
    return pd.DataFrame(
        {
            "example_id": [f"{task}-{i}" for i in range(n)],
            "task": task,
            "run": run,
            "mode": mode,
            "prompt": "",
            "generation": "",
            "rationale": None,
            "parsed_answer": "1",
            "parse_ok": True,
            "answer": "1",
            "correct": correct,
            "prompt_tokens": 1,
            "generated_tokens": 1,
        }
    )


def acc(k, n=10):
    return [True] * k + [False] * (n - k)


def draws(p, n, seed):
    """n seeded 0/1 draws with success rate p: the i-th question is the same across arms
    (a shared difficulty u_i), so arms are correlated as real ones are."""
    u = np.random.default_rng(1000).random(n)  # question difficulty, shared by every arm
    noise = np.random.default_rng(seed).random(n) * 0.1
    return list((u + noise) / 1.1 < p)


def evals(accuracy, n=10, mode_of=None):
    """accuracy: {(variant, task): [correct count (n=10) or rate (n>10) per seed]}."""
    mode_of = {"cot_before": "cot"} if mode_of is None else mode_of
    frames = []
    for (variant, task), values in accuracy.items():
        for seed, v in enumerate(values):
            correct = acc(v, n) if n == 10 else draws(v, n, seed + 7 * len(variant))
            if variant == "base":
                frames += [eval_frame("student", task, m, correct) for m in ("direct", "cot")]
                continue
            run = f"distillation/{variant}/{task}/seed{seed}"
            frames.append(eval_frame(run, task, "direct", correct))
            if variant in mode_of:
                frames.append(eval_frame(run, task, mode_of[variant], correct))
    return frames


PAPER_LIKE = {
    ("base", "t1"): [1],
    ("label_only", "t1"): [3, 3, 4],
    ("cot_before", "t1"): [4, 5, 4],
    ("cot_after", "t1"): [6, 6, 7],
    ("cot_after_shuffled", "t1"): [5, 5, 5],
    ("cot_after_key_tokens", "t1"): [6, 7, 6],
    ("cot_after_random_tokens", "t1"): [4, 4, 3],
}
# rates per seed on 400 questions: every ordering the paper reports, by a clear margin
RATES = {
    ("base", "t1"): [0.05],
    ("label_only", "t1"): [0.30, 0.32, 0.31],
    ("cot_before", "t1"): [0.40, 0.41, 0.39],
    ("cot_after", "t1"): [0.60, 0.61, 0.62],
    ("cot_after_shuffled", "t1"): [0.45, 0.46, 0.44],
    ("cot_after_key_tokens", "t1"): [0.60, 0.62, 0.61],
    ("cot_after_random_tokens", "t1"): [0.35, 0.34, 0.36],
}


def test_summary_means_and_cluster_bootstrap_intervals(tmp_path):
    summary = distillation.summarize(evals(PAPER_LIKE), student="student")
    tables.write(summary, tmp_path / "s.parquet", "distillation")
    direct = summary[summary["mode"] == "direct"]
    assert direct["variant"].tolist() == list(distillation.ORDER)  # base first, then the variants
    assert summary["mode"].tolist() == ["direct"] * 7 + ["cot", "cot"]  # then CoT-at-test rows
    row = direct.set_index("variant").loc["cot_after"]
    assert row["accuracy"] == pytest.approx(19 / 30)
    assert row["ci_low"] < row["accuracy"] < row["ci_high"]
    assert 0 <= row["ci_low"] and row["ci_high"] <= 1  # a proportion's interval stays in [0, 1]
    assert row["seeds"] == 3 and row["examples"] == 10
    assert row["seed_accuracies"] == pytest.approx([0.6, 0.6, 0.7])
    base = direct.set_index("variant").loc["base"]
    assert base["seeds"] == 1 and base["ci_low"] < 0.1 < base["ci_high"]  # one seed: examples
    perfect = distillation.summarize(evals({("label_only", "t1"): [10, 10]}), "student")
    assert perfect["ci_low"].iloc[0] < 1.0 == perfect["ci_high"].iloc[0]  # honest at 1 (Wilson)


def by_claim(rows):
    return {r["claim"]: r for r in rows}


def test_claims_follow_the_paired_intervals():
    rows = distillation.claim_rows(evals(RATES, n=400), "student", 0.05, 1000, 0)
    got = by_claim(rows)
    assert set(got) == {c.id for c, _, _ in distillation.paper_claims(0.05)}
    for claim in ("cot_after_gt_cot_before", "cot_after_gt_label_only", "shuffled_gt_label_only",
                  "key_tokens_gt_random_tokens"):  # fmt: skip
        r = got[claim]
        assert r["verdict"] == "supported" and r["ci_low"] > 0, r
        assert r["n"] == 1200 and r["n_seeds"] == 3 and r["p_holm"] >= r["p_value"]
    assert got["key_tokens_eq_cot_after"]["verdict"] == "equivalent"
    assert got["key_tokens_eq_cot_after"]["level"] == pytest.approx(0.90)  # TOST reads the 90% CI
    # CoT-before is read with its own CoT at test time, the others directly
    assert got["cot_after_gt_cot_before"]["comparison"] == "cot_after/direct - cot_before/cot"
    pd.DataFrame(rows).pipe(tables.to_arrow, "claims")  # rows fit the claims schema


def test_reversed_and_unresolvable_claims_are_not_supported():
    reversed_ = {**RATES, ("cot_before", "t1"): [0.9, 0.9, 0.9]}
    got = by_claim(distillation.claim_rows(evals(reversed_, n=400), "student", 0.05, 1000, 0))
    assert got["cot_after_gt_cot_before"]["verdict"] == "contradicted"
    # point estimates differ, the interval does not say which is larger: inconclusive
    close = {**RATES, ("cot_after_shuffled", "t1"): [0.31, 0.33, 0.32]}
    got = by_claim(distillation.claim_rows(evals(close, n=400), "student", 0.05, 1000, 0))
    assert got["shuffled_gt_label_only"]["verdict"] == "inconclusive"
    assert (
        "contains 0" in got["shuffled_gt_label_only"]["reason"]
        or "Holm" in (got["shuffled_gt_label_only"]["reason"])
    )


def test_a_claim_without_its_arms_is_not_tested():
    no_cot = evals(RATES, n=400, mode_of={})  # cot_before evaluated only directly
    got = by_claim(distillation.claim_rows(no_cot, "student", 0.05, 1000, 0))
    row = got["cot_after_gt_cot_before"]
    assert row["verdict"] == "not_tested" and "cot_before/cot" in row["reason"]


def test_seeds_scored_on_other_questions_are_rejected():
    frames = evals(PAPER_LIKE)
    frames[3] = frames[3].assign(example_id=[f"other-{i}" for i in range(10)])
    with pytest.raises(ValueError, match="other test questions"):
        distillation.summarize(frames, "student")


def test_plot_is_written(tmp_path):
    frames = evals({**PAPER_LIKE, ("label_only", "t2"): [2], ("base", "t2"): [1]})
    summary = distillation.summarize(frames, "student")
    path = tmp_path / "d.png"
    distillation.plot(summary, str(path), distillation.claim_rows(frames, "student", 0.05, 200, 0))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_unknown_runs_are_rejected():
    with pytest.raises(ValueError, match="neither the student"):
        distillation.summarize(
            [eval_frame("other_model", "t1", "direct", acc(1))], student="student"
        )


BASE_CONFIG = {
    "tasks": {"t1": {"source": "embedded"}},
    "models": {"teacher": {"source": "hf"}, "student": {"source": "hf"}},
    "studies": {"distillation": {"teacher": "teacher", "student": "student", "tasks": ["t1"]}},
}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("teacher",), "nope", "studies.distillation.teacher: unknown model 'nope'"),
        (("student",), "nope", "studies.distillation.student: unknown model 'nope'"),
        (("tasks",), ["t1", "t9"], r"studies.distillation.tasks\[1\]: unknown task 't9'"),
        (
            ("eval_modes",),
            {"cot_sideways": ["direct"]},
            "eval_modes.cot_sideways: not a distillation variant",
        ),
    ],
)
def test_config_references_are_checked(path, value, message):
    config = copy.deepcopy(BASE_CONFIG)
    assert study.check(config) == []  # the valid one passes
    config["studies"]["distillation"][path[0]] = value
    (problem,) = study.check(config)
    assert re.search(message, problem)
