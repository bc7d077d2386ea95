# The faithfulness study (Lobo, Agarwal, Lakkaraju 2024; tests of Lanham et al. 2023): Lanham's
# four tests on each model's own CoT (read from its evaluation table), for base models ("before")
# and fine-tuned runs of other studies ("after"); then per-task scores, plots and the verdict.
from types import SimpleNamespace


def faithfulness_study():
    return config["studies"]["faithfulness"]


def faithfulness_runs():
    """(run, task) pairs: the base models on every study task, then the listed studies' runs.

    A run is "{study}/{variant}/{task}/seed{seed}" and is scored on its own task only.
    """
    study = faithfulness_study()
    pairs = [(m, t) for m in study["models"] for t in study["tasks"]]
    for i, entry in enumerate(study["runs"]):
        key = f"studies.faithfulness.runs[{i}]"
        other = config["studies"].get(entry["from_study"])
        if other is None:
            raise WorkflowError(
                f"{key}.from_study: study {entry['from_study']!r} is not configured"
            )
        for variant in entry["variants"]:
            if variant not in other.get("variants", []):
                raise WorkflowError(
                    f"{key}.variants: {variant!r} is not a variant of {entry['from_study']!r}"
                )
            for task in other["tasks"]:
                if task not in study["tasks"]:
                    continue
                for seed in other.get("seeds", [config["seed"]]):
                    pairs.append(
                        (f"{entry['from_study']}/{variant}/{task}/seed{seed}", task)
                    )
    for run, _ in pairs:
        modes = eval_settings(SimpleNamespace(run=run))["modes"]
        if "cot" not in modes:
            parts = run.split("/")
            where = (
                "evaluation.modes"
                if len(parts) == 1
                else f"studies.{parts[0]}.eval_modes.{parts[1]}"
            )
            raise WorkflowError(
                f"studies.faithfulness: {run!r} is evaluated with modes {modes}, without cot "
                f"(the faithfulness tests read its CoT): add cot to {where}"
            )
    return pairs


def faithfulness_check():
    """Names the study refers to must exist (the JSON schema cannot say so)."""
    study = faithfulness_study()
    for key in ("models", "tasks"):
        known = config[key]
        for i, name in enumerate(study[key]):
            if name not in known:
                raise WorkflowError(
                    f"studies.faithfulness.{key}[{i}]: unknown {name!r}"
                )
    for key in ("baseline", "helper"):
        if study[key] is not None and study[key] not in config["models"]:
            raise WorkflowError(
                f"studies.faithfulness.{key}: unknown model {study[key]!r}"
            )


def faithfulness_inputs(wildcards):
    """The model, its task table and its evaluation (whose CoT rows are scored); the helper."""
    inputs = {
        "model": model_dir(wildcards.run),
        "table": task_table(wildcards.task),
        "eval": f"{RESULTS}/eval/{wildcards.run}/{wildcards.task}.parquet",
    }
    helper = faithfulness_study()["helper"]
    if helper:
        inputs["helper"] = model_dir(helper)
    return inputs


def faithfulness_settings(wildcards):
    """What scoring uses (not the target lists or the bootstrap: those rerun only the summary)."""
    skip = ("models", "baseline", "runs", "tasks", "bootstrap_resamples", "helper")
    settings = {k: v for k, v in faithfulness_study().items() if k not in skip}
    return settings | {"seed": config["seed"]}


def faithfulness_tables(wildcards=None):
    return [
        f"{RESULTS}/faithfulness/{run}/{task}.parquet"
        for run, task in faithfulness_runs()
    ]


def faithfulness_evals(wildcards=None):
    return [f"{RESULTS}/eval/{run}/{task}.parquet" for run, task in faithfulness_runs()]


def faithfulness_targets():
    if "faithfulness" not in config["studies"]:
        return []
    faithfulness_check()
    return [
        f"{RESULTS}/analysis/faithfulness.parquet",
        f"{RESULTS}/plots/faithfulness_early_answering.png",
        f"{RESULTS}/plots/faithfulness_before_after.png",
    ]


TARGET_FUNCTIONS.append(faithfulness_targets)


rule score_faithfulness:
    """Lanham's tests on one model's (or run's) own CoTs for a task: a row per example x test x level."""
    input:
        unpack(faithfulness_inputs),
    output:
        f"{RESULTS}/faithfulness/{{run}}/{{task}}.parquet",
    log:
        "logs/faithfulness/{run}/{task}.log",
    benchmark:
        "benchmarks/faithfulness/{run}/{task}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        settings=faithfulness_settings,
        code=code_hash("score_faithfulness.py"),
    script:
        "../scripts/score_faithfulness.py"


rule summarize_faithfulness:
    """Per model/run group x task x test: score and 95% CI, accuracies, before/after verdict, plots."""
    input:
        faith=faithfulness_tables,
        evals=faithfulness_evals,
    output:
        table=f"{RESULTS}/analysis/faithfulness.parquet",
        early=report(
            f"{RESULTS}/plots/faithfulness_early_answering.png",
            caption="../report/faithfulness_early_answering.rst",
            category="faithfulness",
        ),
        before_after=report(
            f"{RESULTS}/plots/faithfulness_before_after.png",
            caption="../report/faithfulness_before_after.rst",
            category="faithfulness",
        ),
    log:
        "logs/summarize_faithfulness.log",
    benchmark:
        "benchmarks/summarize_faithfulness.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        base_models=MODELS,
        baseline=config["studies"].get("faithfulness", {}).get("baseline"),
        resamples=config["studies"].get("faithfulness", {}).get("bootstrap_resamples"),
        seed=config["seed"],
        code=code_hash("summarize_faithfulness.py"),
    script:
        "../scripts/summarize_faithfulness.py"
