"""Distillation summary: per-seed accuracy -> mean and t-interval, the verdict, the plot, config refs."""

import copy

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ftlab import configcheck, distillation, tables


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


def evals(accuracy):
    """accuracy: {(variant, task): [correct count per seed]}; base = the student's own eval."""
    frames = []
    for (variant, task), counts in accuracy.items():
        if variant == "base":
            frames.append(eval_frame("student", task, "direct", acc(counts[0])))
            frames.append(eval_frame("student", task, "cot", acc(counts[0])))
            continue
        for seed, k in enumerate(counts):
            frames.append(
                eval_frame(f"distillation/{variant}/{task}/seed{seed}", task, "direct", acc(k))
            )
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


def test_summary_means_and_t_intervals(tmp_path):
    summary = distillation.summarize(evals(PAPER_LIKE), student="student")
    tables.write(summary, tmp_path / "s.parquet", "distillation")
    direct = summary[summary["mode"] == "direct"]
    assert direct["variant"].tolist() == list(distillation.ORDER)  # base first, then the variants
    assert summary["mode"].tolist() == ["direct"] * 7 + ["cot"]  # then the CoT-at-test rows
    row = direct.set_index("variant").loc["cot_after"]
    a = np.array([0.6, 0.6, 0.7])
    low, high = stats.t.interval(0.95, 2, loc=a.mean(), scale=stats.sem(a))
    assert row["accuracy"] == pytest.approx(a.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    assert (
        row["seeds"] == 3 and row["examples"] == 10 and row["seed_accuracies"] == pytest.approx(a)
    )
    base = direct.set_index("variant").loc["base"]
    assert base["seeds"] == 1 and np.isnan(base["ci_low"])  # no interval from a single seed
    same = direct.set_index("variant").loc["cot_after_shuffled"]
    assert same["ci_low"] == same["ci_high"] == pytest.approx(0.5)


def test_verdict_says_whether_the_papers_ordering_holds():
    (line,) = distillation.findings(distillation.summarize(evals(PAPER_LIKE), student="student"))
    assert (
        line.startswith("t1 (3 seeds)") and "does NOT hold" not in line and line.count("holds") == 4
    )
    reversed_ = dict(PAPER_LIKE)
    reversed_[("cot_before", "t1")] = [9, 9, 9]
    reversed_[("cot_after_random_tokens", "t1")] = [9, 9, 9]
    (line,) = distillation.findings(distillation.summarize(evals(reversed_), student="student"))
    assert "cot_after >= cot_before does NOT hold" in line
    assert "cot_after_key_tokens > cot_after_random_tokens does NOT hold" in line
    assert "cot_after_shuffled > label_only holds" in line


def test_plot_is_written(tmp_path):
    summary = distillation.summarize(
        evals({**PAPER_LIKE, ("label_only", "t2"): [2], ("base", "t2"): [1]}), "student"
    )
    path = tmp_path / "d.png"
    distillation.plot(summary, str(path))
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
    configcheck.check(config)  # the valid one passes
    config["studies"]["distillation"][path[0]] = value
    with pytest.raises(configcheck.ConfigError, match=message):
        configcheck.check(config)
