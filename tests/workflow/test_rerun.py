"""Changing one thing reruns exactly what it invalidates, nothing else.

Each test dry-runs (`snakemake -n`) the finished smoke workflow (tests/workflow/conftest.py: run
once per session) with one change and compares the planned jobs, as (rule, first output), with
the jobs of the whole DAG. Also checks the commands the README documents for forcing, preventing
and explaining reruns.

Note: Snakemake options taking several values (-R/--forcerun, --rerun-triggers) swallow the
targets that follow them, so targets go first on the command line.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from ftlab import audit, cli, tables

pytestmark = pytest.mark.workflow

# + every summarize_* rule: analysis jobs rerun whenever any artifact they gather changes
ANALYSIS = {"audit", "build_lab", "render_table", "render_claims", "scorecard", "render_scorecard",
            "check_gates", "render_gates", "plot_train_loss"}  # fmt: skip
MODEL_STAGES = {
    "evaluate",
    "score_faithfulness",
}  # their output is results/<stage>/{run}/{task}.parquet


def is_analysis(rule: str) -> bool:
    return rule in ANALYSIS or rule.startswith("summarize_")


def run_of(output: str) -> str:
    return "/".join(Path(output).parts[2:-1])


def core(jobs):
    """The jobs that are not analysis jobs (which rerun whenever any artifact changes)."""
    return {j for j in jobs if not is_analysis(j[0])}


@pytest.fixture(scope="module")
def all_jobs(smoke):
    jobs = smoke.planned("--forceall")
    assert {"prepare_task", "build_model", "evaluate", "finetune", "audit", "build_lab"} <= {
        r for r, _ in jobs
    }
    return jobs


def changed(smoke, name, edit):
    config = copy.deepcopy(smoke.config)
    edit(config)
    return smoke.write_config(config, name)


def test_second_run_plans_nothing(smoke):
    out = smoke.snakemake("-n")
    assert "Nothing to be done" in out
    assert smoke.planned() == set()


def test_finetune_hyperparameter_reruns_only_runs_and_what_reads_them(smoke, all_jobs):
    config = changed(smoke, "lr", lambda c: c.setdefault("finetune", {}).update(lr=0.0123))
    planned = smoke.planned(config=config)
    finetuned = lambda j: j[0] in MODEL_STAGES and run_of(j[1]) not in smoke.config["models"]  # noqa: E731
    # score_labels: one job per test set scores every model, fine-tuned runs included
    expected = {j for j in all_jobs if j[0] in ("finetune", "score_labels") or finetuned(j)}
    assert core(planned) == expected
    assert {"audit", "build_lab"} <= {r for r, _ in planned}
    if "distillation" in smoke.config["studies"]:
        assert ("summarize_distillation", "results/analysis/distillation.parquet") in planned
    # forcing the rule plans the same jobs as changing its settings
    assert smoke.planned("-R", "finetune") == planned


def test_task_size_reruns_only_that_tasks_chain(smoke, all_jobs):
    task = smoke.eval_only_task
    config = changed(smoke, "size", lambda c: c["tasks"][task]["sizes"].update(test=5))
    planned = smoke.planned(config=config)
    expected = {j for j in all_jobs if not is_analysis(j[0]) and Path(j[1]).stem == task}
    assert {r for r, _ in expected} >= {"prepare_task", "evaluate"}
    assert core(planned) == expected
    assert {j for j in planned if is_analysis(j[0])} == {
        ("audit", "results/analysis/audit.parquet"),
        ("build_lab", "results/analysis/lab.duckdb"),
        ("render_table", "results/report/tables/audit.html"),
    }


def test_adding_a_data_scaling_size_plans_only_that_sizes_runs(smoke):
    """One more N: its subset per seed (nested draws are per seed), their fine-tunes and
    evaluations, the study's summary and the analysis; no other N, study or stage."""
    study = smoke.config["studies"]["data_scaling"]
    new = next(n for n in range(11, 60) if n not in study["sizes"])
    config = changed(smoke, "ds_size", lambda c: c["studies"]["data_scaling"]["sizes"].append(new))
    planned = smoke.planned(config=config)
    cells = [(f"n{new}", t, s) for t in study["tasks"] for s in study["seeds"]]
    expected = set()
    for variant, task, seed in cells:
        run = f"data_scaling/{variant}/{task}/seed{seed}"
        trainset = f"results/trainsets/data_scaling/{variant}/{task}/seed{seed}.parquet"
        expected |= {
            ("build_scaling_trainset", trainset),
            ("finetune", f"results/runs/{run}"),
            ("evaluate", f"results/eval/{run}/{task}.parquet"),
        }
    # plots, like summaries, redraw whenever a run they read changes
    assert {j for j in core(planned) if not j[0].startswith("plot_")} == expected
    assert ("summarize_data_scaling", "results/analysis/data_scaling.parquet") in planned
    assert {r for r, _ in planned if r.startswith("summarize_")} == {"summarize_data_scaling"}


def test_adding_a_generalization_eval_task_scores_only_its_cells(smoke):
    """One more (task, domain) test set: every model of the matrix scored on it (one job, one file
    per model), the study's summary and the analysis; no trainset, run or other cell."""
    from ftlab.studies import generalization

    task = smoke.eval_only_task  # prepared in the smoke run, scored by no study yet

    def add(c):
        study = c["studies"]["generalization"]
        study["sources"] = generalization.sources(study)  # the same sources, named
        study["tasks"]["arithmetic"] = {"kind": "generation", "domains": [task]}

    planned = smoke.planned(config=changed(smoke, "gen_eval_task", add))
    assert core(planned) == {("score_labels", f"results/label_scores/student/{task}.parquet")}
    assert ("summarize_generalization", "results/analysis/generalization.parquet") in planned
    assert {r for r, _ in planned if r.startswith("summarize_")} == {"summarize_generalization"}


def test_changing_the_rewrite_prompt_reruns_only_the_rewrite_sources_chain(smoke, all_jobs):
    """A new rewrite prompt: the rewrites, the teacher_rewrite trainset, its familiarity, runs and
    their evaluations (in-task and forgetting), the study's summary and the analysis; the gold
    and teacher chains stay as they are."""
    prompt = "Question: {question}\nReasoning:"
    assert smoke.config["studies"]["response_source"]["rewrite_prompt"] != prompt
    config = changed(smoke, "rewrite_prompt",
                     lambda c: c["studies"]["response_source"].update(rewrite_prompt=prompt))  # fmt: skip
    planned = smoke.planned(config=config)
    chain = {j for j in all_jobs if j[0] == "rewrite_gold"
             or (not is_analysis(j[0]) and "/teacher_rewrite/" in j[1])}  # fmt: skip
    assert {r for r, _ in chain} == {"rewrite_gold", "build_response_source_trainset",
                                     "score_familiarity", "finetune", "evaluate"}  # fmt: skip
    # every artifact job planned (not the tables, plots and pages that gather all artifacts)
    gathered = ("results/analysis/", "results/plots/", "results/report/")
    assert {j for j in planned if not j[1].startswith(gathered)} == chain
    assert {r for r, _ in planned if r.startswith("summarize_")} == {"summarize_response_source"}


def edited(smoke, relpath, *args):
    """The jobs planned (and `--summary`) while `relpath` of the copied workflow has an edit."""
    module = smoke.code / relpath
    original = module.read_text()
    try:
        module.write_text(original + "\n# an edit\n")
        return smoke.planned(*args), smoke.snakemake("--summary")
    finally:
        module.write_text(original)


def test_editing_the_faithfulness_scoring_reruns_only_faithfulness(smoke, all_jobs):
    planned, summary = edited(smoke, "scripts/ftlab/studies/faithfulness/score.py")
    assert core(planned) == {j for j in all_jobs if j[0] == "score_faithfulness"}
    assert {r for r, _ in planned} - {"score_faithfulness"} <= {"summarize_faithfulness"} | ANALYSIS
    # --summary says why: the code hash is a param of the rule
    lines = [line.split("\t") for line in summary.splitlines() if "\tscore_faithfulness\t" in line]
    assert lines and all(
        cols[4] == "params changed" and cols[5] == "update pending" for cols in lines
    )
    assert smoke.planned() == set()  # restoring the file restores the hash


@pytest.mark.parametrize(
    ("module", "summary_rule"),
    [
        ("scripts/ftlab/studies/distillation/summary.py", "summarize_distillation"),
        ("scripts/ftlab/studies/faithfulness/summary.py", "summarize_faithfulness"),
    ],
)
def test_editing_a_study_summary_reruns_only_its_summary_and_the_analysis(smoke, module,
                                                                          summary_rule):  # fmt: skip
    planned, _ = edited(smoke, module)
    assert summary_rule in {r for r, _ in planned}
    assert core(planned) == set()  # no model job, no trainset, no other study's summary
    others = {r for r, _ in planned if r.startswith("summarize_")} - {summary_rule}
    assert others == set()


def test_editing_a_teacher_backend_plans_no_evaluation_or_finetuning(smoke):
    """The OpenAI-compatible backend is hashed only into teachers served by it: the smoke
    teachers are local, so an edit there plans nothing at all."""
    planned, _ = edited(smoke, "scripts/ftlab/openai_teacher.py")
    assert planned == set()


def test_editing_a_core_schema_module_reruns_what_reads_it(smoke, all_jobs):
    planned, _ = edited(smoke, "scripts/ftlab/tables.py")
    rules_ = {r for r, _ in planned}
    # every stage writes through tables.py: the whole chain, pretraining included
    assert {"prepare_task", "build_model", "finetune", "evaluate", "score_faithfulness"} <= rules_


def test_editing_the_statistics_reruns_no_model_job(smoke, all_jobs):
    planned, _ = edited(smoke, "scripts/ftlab/stats.py")
    assert core(planned) == set()
    assert {"summarize_distillation", "summarize_faithfulness"} <= {r for r, _ in planned}


def test_documented_ways_to_prevent_reruns(smoke, tmp_path):
    config = changed(smoke, "lr_mtime", lambda c: c.setdefault("finetune", {}).update(lr=0.0123))
    # only file modification times decide
    assert smoke.planned("--rerun-triggers", "mtime", config=config) == set()
    # --touch marks everything up to date (on a copy: it rewrites metadata)
    work = tmp_path / "work"
    shutil.copytree(smoke.work, work, symlinks=True)
    smoke.snakemake("--touch", config=config, work=work)
    assert smoke.planned(config=config, work=work) == set()


def test_audit_of_the_smoke_results_is_clean_and_catches_an_edit(smoke, tmp_path, capsys):
    report = tables.read(smoke.work / "results/analysis/audit.parquet", "audit")
    assert list(report["kind"]) == ["ok"]
    edges = tables.read(smoke.work / "results/analysis/provenance.parquet", "provenance")
    assert {"prepare_task", "build_model", "finetune", "evaluate"} <= set(edges["rule"])
    assert cli.main(["audit", str(smoke.work / "results")]) == 0
    # a hand edit of a leaf table keeps its old provenance; the audit still names it
    results = tmp_path / "results"
    shutil.copytree(smoke.work / "results", results)
    leaf = sorted((results / "eval").rglob("*.parquet"))[0]
    frame = tables.read(leaf, "eval")
    frame.loc[0, "correct"] = not frame.loc[0, "correct"]
    tables.write(frame, leaf, "eval", tables.provenance(leaf))
    assert cli.main(["audit", str(results)]) == 1
    assert leaf.relative_to(tmp_path).as_posix() in capsys.readouterr().out
    assert not audit.run(results).ok


def test_foundation_target_plans_only_the_foundation(smoke, tmp_path):
    """`snakemake foundation` from nothing: task tables, tokenizer, models and their base
    evaluations on every task, and no study job."""
    planned = smoke.planned("foundation", work=tmp_path)
    models, tasks = smoke.config["models"], smoke.config["tasks"]
    assert {r for r, _ in planned} == {"prepare_task", "train_tokenizer", "build_model", "evaluate"}
    assert {o for r, o in planned if r == "evaluate"} == {
        f"results/eval/{m}/{t}.parquet" for m in models for t in tasks
    }
    assert {o for r, o in planned if r == "build_model"} == {f"results/models/{m}" for m in models}
