# Input functions and targets of rules/data_scaling.smk (kept beside it; `snakemake --lint` wants
# rules and functions in separate files).


DATA_SCALING = importlib.import_module("ftlab.studies.data_scaling")


def data_scaling_runs():
    """(run, task): every N x seed x task (variant n{N}; seed s trains on its own subset)."""
    study = study_config("data_scaling")
    return [
        (runs.run_id("data_scaling", DATA_SCALING.variant(n), task, seed), task)
        for task in study["tasks"]
        for n in study["sizes"]
        for seed in study["seeds"]
    ]


def data_scaling_run_ids():
    return [run for run, _ in data_scaling_runs()]


STUDY_RUNS["data_scaling"] = data_scaling_run_ids
SEEDED_TRAINSETS.add("data_scaling")


def data_scaling_run_evals(wildcards=None):
    return [runs.eval_path(run, task) for run, task in data_scaling_runs()]


def data_scaling_base_evals(wildcards=None):
    """The untrained student on each task: the N = 0 reference of the table and the plot."""
    study = study_config("data_scaling")
    return [runs.eval_path(study["student"], task) for task in study["tasks"]]


def data_scaling_targets():
    if "data_scaling" not in config["studies"]:
        return []
    return [
        f"{RESULTS}/analysis/data_scaling.parquet",
        f"{RESULTS}/analysis/claims/data_scaling.parquet",
        f"{RESULTS}/plots/data_scaling.png",
    ]


TARGET_FUNCTIONS.append(data_scaling_targets)
