# Input functions, settings and targets of rules/tasks.smk (kept beside it; `snakemake --lint`
# wants rules and functions in separate files).


def task_spec(wildcards):
    return config["tasks"][wildcards.task]


def task_source_files(wildcards):
    """Local data a task reads (file source, or an hf dataset given as a local directory)."""
    spec = config["tasks"][wildcards.task]
    path = spec.get("path")
    if spec["source"] == "file" or (
        spec["source"] == "hf" and path and Path(path).exists()
    ):
        return [path]
    return []
