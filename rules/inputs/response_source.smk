# Input functions, settings and targets of rules/response_source.smk (kept beside it; `snakemake
# --lint` wants rules and functions in separate files).


RESPONSE_SOURCE = importlib.import_module("ftlab.studies.response_source")


def familiarity_model(wildcards):
    """The model a trainset is scored under (a base model: familiarity before fine-tuning)."""
    return model_dir(wildcards.model)


def familiarity_settings(wildcards):
    """Only what scoring uses: the requesting study's familiarity batch size."""
    study = config["studies"].get(wildcards.study) or {}
    return {"batch_size": study.get("familiarity_batch_size", 32)}


def _rs():
    return study_config("response_source")


def response_source_rationales(source, task):
    """The shared rationale table a source reads: the teacher's, or the student's own (self)."""
    author = _rs()["student"] if source == "self" else _rs()["teacher"]
    return runs.rationales_path(author, task)


def response_source_aligned(wildcards=None):
    """The configured sources the questions are aligned over (not the rewrite, made after)."""
    return [s for s in _rs()["sources"] if s in RESPONSE_SOURCE.ALIGNED]


def response_source_align_inputs(wildcards):
    inputs = {"table": task_table(wildcards.task)}
    for source in response_source_aligned():
        if source != "gold":
            inputs[f"{source}_rationales"] = response_source_rationales(
                source, wildcards.task
            )
    return inputs


def response_source_rewrites(task):
    return f"{RESULTS}/response_source/rewrites/{_rs()['teacher']}/{task}.parquet"


def response_source_rewrite_inputs(wildcards):
    return {
        "model": model_dir(wildcards.teacher),
        "table": task_table(wildcards.task),
        "questions": f"{RESULTS}/response_source/questions/{wildcards.task}.parquet",
    }


def response_source_rewrite_settings(wildcards):
    """What the rewrite uses: method, prompt, the gold text's style, the teacher's decoding."""
    study = _rs()
    decoding = ("batch_size", "max_new_tokens", "do_sample", "temperature", "seed")
    return {
        "method": RESPONSE_SOURCE.rewrite_method(config),
        "prompt": study["rewrite_prompt"],
        "gold_style": study["gold_style"],
        "seed": config["seed"],
        "decoding": {k: config["rationales"][k] for k in decoding},
    }


def response_source_rewrite_code(wildcards):
    """The rule script's hash, plus the OpenAI-compatible backend for a teacher behind a server
    (imported by name: only those rewrites rerun on its edits)."""
    code = code_hash("rewrite_gold.py")
    if config["models"][wildcards.teacher]["source"] != "openai":
        return code
    backend = Path(workflow.basedir) / "scripts" / "ftlab" / "openai_teacher.py"
    return f"{code}/{codehash.stage_hash(backend)}"


def response_source_trainset_inputs(wildcards):
    """The task table and the aligned questions; the source's own responses."""
    source, task = wildcards.source, wildcards.task
    inputs = {
        "table": task_table(task),
        "questions": f"{RESULTS}/response_source/questions/{task}.parquet",
    }
    if source == RESPONSE_SOURCE.REWRITE:
        inputs["responses"] = response_source_rewrites(task)
    elif source != "gold":
        inputs["responses"] = response_source_rationales(source, task)
    return inputs


def response_source_trainset_settings(wildcards):
    """Only what a source's trainset uses, so a change reruns only the sources it affects."""
    source, study = wildcards.source, _rs()
    settings = {}
    if source in (
        "gold",
        RESPONSE_SOURCE.REWRITE,
    ):  # the gold text (the rewrite's fallback)
        settings |= {"gold_style": study["gold_style"], "seed": config["seed"]}
    if source != "gold":
        settings["author"] = study["student"] if source == "self" else study["teacher"]
    return settings


def response_source_runs():
    """Every source x task x seed run of the study."""
    study = _rs()
    return [
        runs.run_id("response_source", source, task, seed)
        for source in study["sources"]
        for task in study["tasks"]
        for seed in study["seeds"]
    ]


STUDY_RUNS["response_source"] = response_source_runs


def response_source_run_evals(wildcards=None):
    """Each run on its own task, then on every forgetting task."""
    others = RESPONSE_SOURCE.forgetting_tasks(config)
    return [
        runs.eval_path(run, t)
        for run in response_source_runs()
        for t in [runs.parse(run).task, *others]
    ]


def response_source_base_evals(wildcards=None):
    """The untrained student on the study tasks and the forgetting tasks."""
    tasks = [*_rs()["tasks"], *RESPONSE_SOURCE.forgetting_tasks(config)]
    return [runs.eval_path(_rs()["student"], t) for t in tasks]


def response_source_familiarity(wildcards=None):
    study = _rs()
    return [
        f"{RESULTS}/familiarity/{study['student']}/response_source/{source}/{task}.parquet"
        for source in study["sources"]
        for task in study["tasks"]
    ]


def response_source_questions(wildcards=None):
    return [f"{RESULTS}/response_source/questions/{t}.parquet" for t in _rs()["tasks"]]


def response_source_targets():
    if "response_source" not in config["studies"]:
        return []
    return [
        f"{RESULTS}/analysis/response_source.parquet",
        f"{RESULTS}/analysis/claims/response_source.parquet",
        f"{RESULTS}/plots/response_source_familiarity.png",
        f"{RESULTS}/plots/response_source_forgetting.png",
    ]


TARGET_FUNCTIONS.append(response_source_targets)
