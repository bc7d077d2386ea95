"""Gates: a failed gate is a line, a passed one too, and `ftlab gates` exits 1 on a failure."""

import pandas as pd
import pytest

from ftlab import cli, gates, tables

T = gates.Thresholds()


def task_table(answers):
    return pd.DataFrame({"split": "test", "answer": answers})


def evals(correct, mode="direct"):
    return pd.DataFrame({"correct": correct, "mode": mode})


def test_majority_rate_is_the_most_frequent_test_answer():
    assert gates.majority_rate(task_table(["Yes", "yes ", "No", "Yes"])) == 0.75
    with pytest.raises(ValueError, match="no test rows"):
        gates.majority_rate(pd.DataFrame({"split": ["train"], "answer": ["1"]}))


def test_learns_with_room_needs_majority_plus_margin_and_headroom():
    at_floor = gates.learns_with_room(evals([True] * 55 + [False] * 45), 0.5, T, "x")
    assert not at_floor["passed"] and "majority answer 0.500" in at_floor["detail"]
    good = gates.learns_with_room(evals([True] * 70 + [False] * 30), 0.5, T, "x")
    assert good["passed"] and good["value"] == pytest.approx(0.7)
    saturated = gates.learns_with_room(evals([True] * 95 + [False] * 5), 0.5, T, "x")
    assert not saturated["passed"]


def test_precision_gate_reads_every_measured_claim():
    claims = pd.DataFrame([
        dict(study="s", claim="a", task="t", models="m", verdict="supported", ci_low=0.01,
             ci_high=0.05, level=0.95),
        dict(study="s", claim="b", task="t", models="m", verdict="inconclusive", ci_low=-0.2,
             ci_high=0.1, level=0.95),
        dict(study="s", claim="c", task="t", models="m", verdict="not_tested", ci_low=None,
             ci_high=None, level=None),
        dict(study="s", claim="d", task="t", models="m", verdict="supported", ci_low=2.2,
             ci_high=2.4, level=0.95, unit="nats/token"),
    ]).fillna({"unit": "proportion"})  # fmt: skip
    rows = gates.precise(claims, T)
    # not-tested claims have no interval; an NLL gap is not in points
    assert [r["passed"] for r in rows] == [True, False]
    assert [r["subject"] for r in rows] == ["s/a/t (m)", "s/b/t (m)"]


def test_cli_prints_every_gate_and_fails_on_one(tmp_path, capsys):
    rows = [gates.teacher_reasons(evals([True] * 95 + [False] * 5, "cot"), T, "teacher on t"),
            gates.learns_with_room(evals([True] * 50 + [False] * 50), 0.5, T, "label_only on t")]  # fmt: skip
    path = tmp_path / "gates.parquet"
    tables.write(gates.frame(rows), path, "gates")
    assert cli.main(["gates", "--file", str(path)]) == 1
    out = capsys.readouterr().out
    assert "PASS  teacher_reasons" in out and "FAIL  learns_with_room" in out
    assert "1 of 2 gates pass" in out
