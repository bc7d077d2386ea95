# Input functions, settings and targets of rules/generalization.smk (kept beside it; `snakemake
# --lint` wants rules and functions in separate files).


GENERALIZATION = importlib.import_module("ftlab.studies.generalization")
LABEL_SCORING = importlib.import_module("ftlab.label_scoring")


def generalization_study():
    return config["studies"].get("generalization")


def generalization_runs():
    """Every fine-tuned run: source x variant x seed."""
    study = generalization_study()
    return GENERALIZATION.run_ids(study) if study else []


STUDY_RUNS["generalization"] = generalization_runs


def generalization_models():
    """The matrix's rows: the base student, then every run (score_labels writes one file each)."""
    study = generalization_study()
    return [study["student"], *generalization_runs()] if study else []


def generalization_eval_tasks():
    study = generalization_study()
    return GENERALIZATION.eval_tasks(study) if study else []


def generalization_trainset_inputs(wildcards):
    """The source's task table; for FTICL also the student, whose tokenizer renders the prompts."""
    inputs = {"table": task_table(wildcards.task)}
    if wildcards.variant == "fticl":
        inputs["student"] = model_dir(generalization_study()["student"])
    return inputs


def generalization_trainset_settings(wildcards):
    """Only what a variant uses: changing k rebuilds the FTICL trainsets, not the plain ones."""
    study = generalization_study()
    settings = {"size": study["train_size"], "seed": config["seed"]}
    if wildcards.variant == "fticl":
        settings["k"] = study["k"]
        override = study.get("finetune") or {}
        settings["max_seq_len"] = override.get(
            "max_seq_len", config["finetune"]["max_seq_len"]
        )
    return settings


def score_labels_inputs(wildcards):
    models = [model_dir(m) for m in generalization_models()]
    return {"table": task_table(wildcards.task), "models": models}


def score_labels_settings(wildcards):
    """How one eval task is scored (label_scoring.Settings): its task's kind, the eval settings."""
    study = generalization_study()
    task = GENERALIZATION.task_of(study)[wildcards.task]
    spec = GENERALIZATION.groups(study)[task]
    settings = {
        "kind": spec["kind"],
        "eval_settings": study["eval_settings"],
        "k": study["k"],
        "seed": config["seed"],
        "limit": study["limit"],
        "batch_size": study["batch_size"],
    }
    if spec["kind"] == "generation":
        settings["max_new_tokens"] = study["max_new_tokens"]
        settings["rouge_tokens"] = spec["rouge_tokens"]
    else:
        settings["label_eos"] = study["label_eos"]
    return settings


def generalization_scores(wildcards=None):
    """Every cell's label scores: each model (base and runs) on each eval task."""
    return [
        LABEL_SCORING.path(m, t)
        for t in generalization_eval_tasks()
        for m in generalization_models()
    ]


def generalization_heatmaps():
    study = generalization_study()
    settings = study["eval_settings"] if study else []
    return [f"{RESULTS}/plots/generalization_{s}.png" for s in settings]


def generalization_targets():
    if "generalization" not in config["studies"]:
        return []
    return [
        f"{RESULTS}/analysis/generalization.parquet",
        f"{RESULTS}/analysis/claims/generalization.parquet",
        *generalization_heatmaps(),
    ]


TARGET_FUNCTIONS.append(generalization_targets)
