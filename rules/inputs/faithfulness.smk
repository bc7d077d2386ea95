# Input functions, settings and targets of rules/faithfulness.smk (kept beside it; `snakemake --lint`
# wants rules and functions in separate files).


def faithfulness_runs():
    """(run, task) pairs: the base models on every study task, then the listed studies' runs
    (each scored on its own task only)."""
    study = study_config("faithfulness")
    pairs = [(m, t) for m in study["models"] for t in study["tasks"]]
    for entry in study["runs"]:
        other = study_config(entry["from_study"])
        for variant in entry["variants"]:
            for task in other["tasks"]:
                if task not in study["tasks"]:
                    continue
                for seed in other.get("seeds", [config["seed"]]):
                    run = runs.run_id(entry["from_study"], variant, task, seed)
                    pairs.append((run, task))
    for run in faithfulness_own_runs():
        pairs += [(run, task) for task in study["tasks"]]
    return pairs


def faithfulness_own_runs():
    """The study's own runs: `finetune_model` fine-tuned label-only on each finetune task."""
    study = study_config("faithfulness")
    return [
        runs.run_id("faithfulness", "label_only", task, seed)
        for task in study["finetune_tasks"]
        for seed in study["seeds"]
    ]


STUDY_RUNS["faithfulness"] = faithfulness_own_runs


def faithfulness_inputs(wildcards):
    """The model, its task table and its evaluation (whose CoT rows are scored); the helper."""
    inputs = {
        "model": model_dir(wildcards.run),
        "table": task_table(wildcards.task),
        "eval": runs.eval_path(wildcards.run, wildcards.task),
    }
    helper = study_config("faithfulness")["helper"]
    if helper:
        inputs["helper"] = model_dir(helper)
    return inputs


def faithfulness_settings(wildcards):
    """What scoring uses (not the target lists or the bootstrap: those rerun only the summary)."""
    skip = ("models", "baseline", "runs", "tasks", "bootstrap_resamples", "helper")
    skip += ("finetune_model", "finetune_tasks", "seeds", "finetune")
    settings = {k: v for k, v in study_config("faithfulness").items() if k not in skip}
    return settings | {"seed": config["seed"]}


def faithfulness_tables(wildcards=None):
    return [runs.faithfulness_path(run, task) for run, task in faithfulness_runs()]


def faithfulness_evals(wildcards=None):
    return [runs.eval_path(run, task) for run, task in faithfulness_runs()]


def faithfulness_targets():
    if "faithfulness" not in config["studies"]:
        return []
    return [
        f"{RESULTS}/analysis/faithfulness.parquet",
        f"{RESULTS}/analysis/claims/faithfulness.parquet",
        f"{RESULTS}/plots/faithfulness_early_answering.png",
        f"{RESULTS}/plots/faithfulness_before_after.png",
    ]


TARGET_FUNCTIONS.append(faithfulness_targets)
