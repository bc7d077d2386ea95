# Input functions, settings and targets of rules/finetune.smk (kept beside it; `snakemake --lint`
# wants rules and functions in separate files).


def finetune_trainset(wildcards):
    """The run's trainset: one per study/variant/task, or per seed (SEEDED_TRAINSETS)."""
    w = wildcards
    seed = int(w.seed) if w.study in SEEDED_TRAINSETS else None
    return runs.trainset_path(w.study, w.variant, w.task, seed)


def finetune_base_model(wildcards):
    """The model a study fine-tunes: its `student`, or the faithfulness study's `finetune_model`."""
    study = study_config(wildcards.study)
    return model_dir(study.get("finetune_model") or study["student"])


def finetune_gpus(wildcards):
    """GPUs of a fine-tuning job: one per training process (finetune.num_processes)."""
    return finetune_settings(wildcards).get("num_processes", 1)


def finetune_settings(wildcards):
    """The `finetune:` defaults with the study's own `finetune:` override merged on top."""
    override = study_config(wildcards.study).get("finetune") or {}
    settings = dict(config["finetune"])
    for key, value in override.items():
        if isinstance(value, dict):
            value = {**settings.get(key, {}), **value}
        settings[key] = value
    return settings
