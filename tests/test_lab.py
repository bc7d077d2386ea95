"""The lab database: a view per family, typed even when empty, joinable with provenance, and
usable from any directory and after the project is moved."""

import shutil

import duckdb
import pandas as pd
import pytest

from ftlab import audit, cli, lab, provenance, tables

DB = "results/analysis/lab.duckdb"


def _eval_frame(run, task, correct):
    n = len(correct)
    return pd.DataFrame(
        {
            "example_id": [f"e{i}" for i in range(n)],
            "task": task,
            "run": run,
            "mode": "direct",
            "prompt": "q",
            "generation": "1",
            "rationale": None,
            "parsed_answer": "1",
            "parse_ok": True,
            "answer": "1",
            "correct": correct,
            "prompt_tokens": 3,
            "generated_tokens": 1,
        }
    )


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    (root / "results/models/student").mkdir(parents=True)
    provenance.write_json(
        provenance.collect("build_model", {}, {}, seed=0), root / "results/models/student"
    )
    log = pd.DataFrame(
        {
            "step": [1, 2],
            "loss": [2.0, 1.5],
            "lr": 0.1,
            "tokens": 8,
            "seconds": 1.0,
            "tokens_per_s": 8.0,
        }
    )
    tables.write(log, root / "results/models/student/train_log.parquet", "train_log", {})
    for run, task, correct in [
        ("student", "a", [True, False]),
        ("student", "b", [True, True, True]),
        ("distillation/cot_after/a/seed0", "a", [False, False]),
    ]:
        rec = provenance.collect("evaluate", {}, {})
        tables.write(
            _eval_frame(run, task, correct),
            root / f"results/eval/{run}/{task}.parquet",
            "eval",
            rec,
        )
    (root / "results/analysis").mkdir()
    summary = pd.DataFrame({"variant": ["x"], "accuracy": [0.5]})
    summary.to_parquet(root / "results/analysis/distillation.parquet")
    result = audit.run(root / "results")
    audit.write(result, root / "results" / audit.REPORT, root / "results" / audit.LEDGER, {})
    lab.build(root / DB, root)
    return root


def test_every_family_has_a_view_and_empty_ones_are_typed(project):
    con = lab.connect(project / DB)
    views = {
        r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    assert set(lab.FAMILIES) | {"runs", "summary_distillation"} <= views
    assert con.sql("SELECT count(*) FROM faithfulness").fetchall()[0][0] == 0
    types = dict(con.sql("DESCRIBE faithfulness").fetchall()[i][:2] for i in range(11))
    assert types["level"] == "DOUBLE" and types["same_as_full"] == "BOOLEAN"
    assert dict(r[:2] for r in con.sql("DESCRIBE tasks").fetchall())["choices"] == "VARCHAR[]"
    # a query over an empty family composes with a full one
    n = con.sql("SELECT count(*) FROM eval LEFT JOIN faithfulness USING (run, task)").fetchall()[0][
        0
    ]
    assert n == 7


def test_eval_view_answers_the_design_question(project):
    df = lab.query(
        "SELECT run, task, avg(correct::INT) AS acc FROM eval GROUP BY ALL ORDER BY ALL",
        project / DB,
    )
    assert df.to_dict("list") == {
        "run": ["distillation/cot_after/a/seed0", "student", "student"],
        "task": ["a", "a", "b"],
        "acc": [0.0, 0.5, 1.0],
    }


def test_rows_join_with_their_provenance_by_path(project):
    df = lab.query(
        "SELECT DISTINCT e.path, p.rule, p.run FROM eval e JOIN provenance p ON p.artifact = e.path ORDER BY 1",
        project / DB,
    )
    assert list(df["path"]) == [
        "results/eval/distillation/cot_after/a/seed0/a.parquet",
        "results/eval/student/a.parquet",
        "results/eval/student/b.parquet",
    ]
    assert set(df["rule"]) == {"evaluate"}
    logs = lab.query("SELECT run, max(step) AS steps FROM train_log GROUP BY run", project / DB)
    assert logs.to_dict("list") == {"run": ["student"], "steps": [2]}
    runs = lab.query("SELECT run, kind, seed FROM runs", project / DB)
    assert runs.to_dict("list") == {"run": ["student"], "kind": ["base"], "seed": [None]}


def test_works_from_any_directory_and_after_moving_the_project(project, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere" / "proj"
    shutil.copytree(project, moved)
    shutil.rmtree(project)
    monkeypatch.chdir(tmp_path)
    assert lab.query("SELECT count(*) AS n FROM eval", moved / DB)["n"][0] == 7
    monkeypatch.chdir(moved)  # plain duckdb opened from the workflow directory also works
    con = duckdb.connect(DB, read_only=True)
    assert con.sql("SELECT count(*) FROM summary_distillation").fetchall()[0][0] == 1
    assert con.sql("SELECT DISTINCT path FROM tasks").fetchall() == []


def test_cli_query_prints_a_table_and_reports_errors(project, capsys):
    assert (
        cli.main(["query", "SELECT task, count(*) AS n FROM eval GROUP BY task ORDER BY task"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["task", "n"] and out[1].split() == ["a", "4"]
    assert cli.main(["query", "SELECT * FROM no_such_view"]) == 2
    assert "no_such_view" in capsys.readouterr().err
