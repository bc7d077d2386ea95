"""The audit catches any edited or vanished artifact, names it, and the CLI exits non-zero."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from ftlab import audit, cli, provenance, runs, tables

TASK = "results/data/tasks/t.parquet"
MODEL = "results/models/m"
EVAL = "results/eval/m/t.parquet"
SUMMARY = "results/analysis/summary.parquet"
PLOT = "results/plots/summary.png"  # no provenance of its own: only the ledger records it


def _tasks_frame():
    return pd.DataFrame(
        {
            "example_id": ["a", "b"],
            "task": "t",
            "split": "test",
            "task_type": "numeric",
            "question": ["1+1", "2+2"],
            "choices": None,
            "answer": ["2", "4"],
            "gold_rationale": None,
            "metadata": "{}",
        }
    )


def _eval_frame(run):
    return pd.DataFrame(
        {
            "example_id": ["a", "b"],
            "task": "t",
            "run": run,
            "mode": "direct",
            "prompt": "q",
            "generation": ["2", "5"],
            "rationale": None,
            "parsed_answer": ["2", "5"],
            "parse_ok": True,
            "answer": ["2", "4"],
            "correct": [True, False],
            "prompt_tokens": 3,
            "generated_tokens": 1,
        }
    )


def make_tree(root: Path) -> None:
    """tasks -> model dir -> eval -> summary, each recording its inputs as the rules do."""
    tables.write(_tasks_frame(), root / TASK, "tasks", provenance.collect("prepare_task", {}, {}))
    (root / MODEL).mkdir(parents=True)
    (root / MODEL / "model.safetensors").write_bytes(b"weights" * 100)
    rec = provenance.collect("build_model", {"tables": [TASK]}, {"steps": 1}, seed=0)
    provenance.write_json(rec, root / MODEL)
    rec = provenance.collect("evaluate", {"model": MODEL, "table": TASK}, {})
    tables.write(_eval_frame("m"), root / EVAL, "eval", rec)
    tables.write(
        _eval_frame("m"), root / SUMMARY, "eval", provenance.collect("summ", {"e": EVAL}, {})
    )
    (root / PLOT).parent.mkdir(parents=True)
    (root / PLOT).write_bytes(b"\x89PNG fake plot")
    (root / "results/report").mkdir()
    (root / "results/report/page.html").write_text("made after the audit: not an artifact")


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # jobs record paths relative to the workflow directory
    make_tree(tmp_path)
    result = audit.run(tmp_path / "results")
    audit.write(
        result,
        tmp_path / "results" / audit.REPORT,
        tmp_path / "results" / audit.LEDGER,
        provenance.collect("audit", {}, {}),
    )
    return tmp_path


def test_clean_tree_is_all_clear(tree):
    result = audit.run(tree / "results")
    assert result.ok
    report = result.report()
    assert list(report["kind"]) == ["ok"]
    assert "5 artifacts" in report["message"].iloc[0]
    assert cli.main(["audit", str(tree / "results")]) == 0


def test_provenance_edges_one_row_per_input_and_joinable_by_run(tree):
    edges = tables.read(tree / "results" / audit.LEDGER, "provenance")
    by_artifact = edges.groupby("artifact")["input"].apply(lambda s: sorted(s.dropna()))
    assert by_artifact[EVAL] == [TASK, MODEL]
    assert by_artifact[TASK] == []  # an artifact without inputs still has its row
    row = lambda a: edges[edges["artifact"] == a].iloc[0]  # noqa: E731
    ev = row(EVAL)
    assert ev["run"] == "m" and ev["rule"] == "evaluate"
    assert row(MODEL)["seed"] == 0 and row(MODEL)["run"] == "m"
    assert ev["input_sha256"] in {
        provenance.sha256_path(tree / TASK),
        provenance.sha256_path(tree / MODEL),
    }
    # the ledger records the current sha256 of every artifact
    recorded = tables.provenance(tree / "results" / audit.LEDGER)["inputs"]
    assert recorded[SUMMARY] == provenance.sha256_path(tree / SUMMARY)
    assert PLOT in recorded and not any(p.startswith("results/report/") for p in recorded)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "edited, artifact",
    [
        (TASK, TASK),
        (MODEL + "/model.safetensors", MODEL),
        (MODEL + "/provenance.json", MODEL),
        (EVAL, EVAL),
        (SUMMARY, SUMMARY),  # a leaf: caught through the last audit's ledger
        (PLOT, PLOT),
    ],
)
def test_one_byte_change_to_any_artifact_is_caught(
    tree, tmp_path_factory, edited, artifact, capsys
):
    copy = tmp_path_factory.mktemp("edited")
    shutil.copytree(tree / "results", copy / "results")
    _flip_one_byte(copy / edited)
    result = audit.run(copy / "results")
    assert not result.ok
    named = set(result.findings["input"].dropna()) | set(result.findings["artifact"])
    assert artifact in named
    assert cli.main(["audit", str(copy / "results")]) == 1
    assert artifact in capsys.readouterr().out


def test_vanished_input_is_reported_as_missing(tree):
    (tree / TASK).unlink()
    f = audit.run(tree / "results").findings
    missing = f[f["kind"] == "missing"]
    assert set(missing["input"]) == {TASK}
    assert {MODEL, EVAL} <= set(missing["artifact"])


def test_model_dir_without_provenance_is_a_finding(tree):
    (tree / "results/models/x").mkdir()
    (tree / "results/models/x/config.json").write_text("{}")
    f = audit.run(tree / "results").findings
    assert list(f["kind"]) == ["no_provenance"] and list(f["artifact"]) == ["results/models/x"]


def test_run_of_matches_eval_run_column():
    assert runs.run_of("results/eval/distillation/cot_after/t/seed0/t.parquet") == (
        "distillation/cot_after/t/seed0"
    )
    assert (
        runs.run_of("results/runs/distillation/cot_after/t/seed0")
        == "distillation/cot_after/t/seed0"
    )
    assert runs.run_of("results/models/student") == "student"
    assert runs.run_of("results/data/tasks/t.parquet") is None


def test_missing_results_dir_exits_2(tmp_path):
    assert cli.main(["audit", str(tmp_path / "nope")]) == 2
