# Input functions, settings and targets of rules/models.smk (kept beside it; `snakemake --lint`
# wants rules and functions in separate files).


def model_spec(wildcards):
    return config["models"][wildcards.model]


def pretrain_tables(wildcards):
    spec = config["models"][wildcards.model]
    if spec["source"] != "embedded":
        return []
    pre = spec["pretrain"]
    return [
        task_table(t)
        for t in sorted(set(pre["tasks"]) | set(pre["question_only_tasks"]))
    ]


def tokenizer_tables(wildcards):
    return [task_table(t) for t in (config["tokenizer"]["tasks"] or TASKS)]


def tokenizer_for(wildcards):
    """Embedded models share the pipeline's tokenizer; hub/GGUF models bring their own."""
    if config["models"][wildcards.model]["source"] == "embedded":
        return f"{RESULTS}/tokenizer"
    return []


def checkpoint_for(wildcards):
    """An embedded model's shipped checkpoint (relative to the workflow directory), or nothing."""
    spec = config["models"][wildcards.model]
    if spec["source"] != "embedded" or not spec.get("checkpoint"):
        return []
    return str(Path(workflow.basedir) / spec["checkpoint"])
