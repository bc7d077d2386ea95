# Input functions, settings and targets of rules/analysis.smk (kept beside it; `snakemake --lint`
# wants rules and functions in separate files).


def study_targets(wildcards=None):
    """Every final artifact the other stages request (all targets but this file's own)."""
    return [t for fn in TARGET_FUNCTIONS if fn is not analysis_targets for t in fn()]


def summary_tables():
    """Names of the studies' summary tables (results/analysis/{name}.parquet) among the targets."""
    prefix, suffix = f"{RESULTS}/analysis/", ".parquet"
    return sorted(
        t[len(prefix) : -len(suffix)]
        for t in study_targets()
        if t.startswith(prefix) and t.endswith(suffix) and "/" not in t[len(prefix) :]
    )


def claims_tables(wildcards=None):
    """Each configured study's claims rows (results/analysis/claims/{study}.parquet)."""
    prefix = f"{RESULTS}/analysis/claims/"
    return sorted(t for t in study_targets() if t.startswith(prefix))


def audited(wildcards=None):
    return [*study_targets(), *SCORECARD, f"{RESULTS}/analysis/gates.parquet"]


def train_loss_studies():
    """Configured studies with fine-tuning runs of their own: each gets a training-curve plot."""
    return [s for s, fn in STUDY_RUNS.items() if s in config["studies"] and fn()]


def train_loss_inputs(wildcards):
    return {"runs": [model_dir(run) for run in STUDY_RUNS[wildcards.study]()]}


def analysis_targets():
    names = ["audit", *summary_tables()]
    tables_ = [f"{RESULTS}/report/tables/{n}.html" for n in names]
    studies_ = [Path(t).stem for t in claims_tables()]
    tables_ += [f"{RESULTS}/report/claims/{s}.html" for s in studies_]
    plots = [f"{RESULTS}/plots/train_loss/{s}.png" for s in train_loss_studies()]
    return [
        f"{RESULTS}/analysis/lab.duckdb",
        f"{RESULTS}/report/scorecard.html",
        f"{RESULTS}/report/gates.html",
        *tables_,
        *plots,
    ]


SCORECARD = [
    f"{RESULTS}/analysis/scorecard.parquet",
    f"{RESULTS}/analysis/claims.parquet",
]
# the papers' headline claims
HEADLINES = str(Path(workflow.basedir) / "resources" / "scorecard.yaml")


TARGET_FUNCTIONS.append(analysis_targets)


def gates_plan():
    """What each gate reads: (gate, subject, task table, eval tables, mode)."""
    plan = []
    studies_ = config["studies"]
    if "distillation" in studies_:
        study = studies_["distillation"]
        for task in study["tasks"]:
            plan.append(("teacher_reasons", f"{study['teacher']} on {task}", task_table(task),
                         [runs.eval_path(study["teacher"], task)], "cot"))  # fmt: skip
            if "label_only" in study["variants"]:
                evals = [
                    runs.eval_path(
                        runs.run_id("distillation", "label_only", task, s), task
                    )
                    for s in study["seeds"]
                ]
                plan.append(("learns_with_room", f"distillation/label_only on {task}",
                             task_table(task), evals, "direct"))  # fmt: skip
    # a student's pretraining tasks, scored in the format most of its worked examples showed
    # (with their rationale unless pretrain.direct_fraction > 0.5)
    students = {s["student"] for s in studies_.values() if "student" in s}
    tasks_, models_ = set(eval_tasks()), set(eval_models())
    for student in sorted(students & models_):
        pretrain = config["models"][student].get("pretrain") or {}
        mode = "direct" if pretrain.get("direct_fraction", 0) > 0.5 else "cot"
        if mode not in config["evaluation"]["modes"]:
            continue
        for task in [t for t in pretrain.get("tasks", []) if t in tasks_]:
            plan.append(("student_pretrained", f"{student} on {task} ({mode})",
                         task_table(task), [runs.eval_path(student, task)], mode))  # fmt: skip
    return plan


def gates_inputs(wildcards):
    paths = {p for _, _, table, evals, _ in gates_plan() for p in [table, *evals]}
    return {"tables": sorted(paths), "claims": claims_tables()}
