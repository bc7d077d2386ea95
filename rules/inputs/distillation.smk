# Input functions, settings and targets of rules/distillation.smk (kept beside it; `snakemake --lint`
# wants rules and functions in separate files).


DISTILLATION_VARIANTS = importlib.import_module("ftlab.studies.distillation").VARIANTS


def distillation_trainset_inputs(wildcards):
    """Task table and rationales; the teacher model too, for the key-token variant only."""
    study = study_config("distillation")
    inputs = {
        "table": task_table(wildcards.task),
        "rationales": runs.rationales_path(study["teacher"], wildcards.task),
    }
    if wildcards.variant == "cot_after_key_tokens":
        inputs["teacher"] = model_dir(study["teacher"])
    return inputs


def distillation_trainset_settings(wildcards):
    """Only the settings a variant uses, so changing one reruns only the variants it affects."""
    study, variant = study_config("distillation"), wildcards.variant
    settings = {}
    if variant in ("cot_after_shuffled", "cot_after_random_tokens"):
        settings["seed"] = config["seed"]
    if variant in ("cot_after_key_tokens", "cot_after_random_tokens"):
        settings["key_token_fraction"] = study["key_token_fraction"]
    if variant == "cot_after_key_tokens":
        settings["importance"] = study["importance"]
        settings["importance_batch_size"] = study["importance_batch_size"]
    return settings


def distillation_trainset_gpus(wildcards):
    return 1 if wildcards.variant == "cot_after_key_tokens" else 0


def distillation_runs():
    study = study_config("distillation")
    return [
        runs.run_id("distillation", variant, task, seed)
        for variant in study["variants"]
        for task in study["tasks"]
        for seed in study["seeds"]
    ]


STUDY_RUNS["distillation"] = distillation_runs


def distillation_run_evals(wildcards=None):
    return [runs.eval_path(run, runs.parse(run).task) for run in distillation_runs()]


def distillation_base_evals(wildcards=None):
    study = study_config("distillation")
    return [runs.eval_path(study["student"], task) for task in study["tasks"]]


def distillation_targets():
    if "distillation" not in config["studies"]:
        return []
    return [
        f"{RESULTS}/analysis/distillation.parquet",
        f"{RESULTS}/analysis/claims/distillation.parquet",
        f"{RESULTS}/plots/distillation.png",
    ]


TARGET_FUNCTIONS.append(distillation_targets)
