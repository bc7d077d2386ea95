# Input functions, settings and targets of rules/evaluate.smk (kept beside it; `snakemake --lint`
# wants rules and functions in separate files).


def evaluate_settings(wildcards):
    """The evaluation settings a job uses (not the model/task target lists, which would rerun all)."""
    settings = run_settings(wildcards, "evaluation")
    return {k: v for k, v in settings.items() if k not in ("models", "tasks")}
