# Helpers shared by every rule: config validation, lookups, targets, wildcard constraints.
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from ftlab import codehash, configcheck  # noqa: E402

SCHEMA = str(Path(workflow.basedir) / "resources" / "config.schema.yaml")

# One clear line per problem, naming the key path, before any job runs (no traceback).
# Task presets are merged first, so the schema's defaults fill in around their values.
_problems = configcheck.expand_presets(config)
_problems = _problems or configcheck.schema_errors(config, SCHEMA)
if not _problems:
    validate(config, schema=SCHEMA)  # fills in the schema's defaults
    try:
        configcheck.check(config)
    except configcheck.ConfigError as e:
        _problems = [str(e)]
if _problems:
    sys.exit("Invalid config:\n  " + "\n  ".join(_problems))


wildcard_constraints:
    task=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    run=r"[A-Za-z0-9_./-]+",


RESULTS = "results"
TASKS = list(config["tasks"])
MODELS = list(config["models"])
EMBEDDED_MODELS = [
    m for m, spec in config["models"].items() if spec["source"] == "embedded"
]


def code_hash(script):
    """Hash of the ftlab modules `script` imports: library edits rerun exactly these jobs."""
    return codehash.stage_hash(Path(workflow.basedir) / "scripts" / script)


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


def model_spec(wildcards):
    return config["models"][wildcards.model]


def task_table(task):
    return f"{RESULTS}/data/tasks/{task}.parquet"


def model_dir(name):
    """A base model (a name in `models:`) or a fine-tuned run (a path under results/runs/)."""
    if name in config["models"]:
        return f"{RESULTS}/models/{name}"
    return f"{RESULTS}/runs/{name}"


def run_model_dir(wildcards):
    return model_dir(wildcards.run)


def run_task_table(wildcards):
    return task_table(wildcards.task)


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


def eval_settings(wildcards):
    """Evaluation settings for a base model or a fine-tuned run.

    A run's path starts with its study ("distillation/cot_after/chain_sum/seed0"); a study may set
    `eval_modes: {variant: [modes]}` to evaluate some variants only directly.
    """
    settings = dict(config["evaluation"])
    parts = wildcards.run.split("/")
    if wildcards.run not in config["models"] and len(parts) > 1:
        study = config["studies"].get(parts[0], {})
        modes = study.get("eval_modes", {}).get(parts[1])
        if modes:
            settings["modes"] = modes
    return settings


def eval_models():
    return config["evaluation"]["models"] or MODELS


def eval_tasks():
    return config["evaluation"]["tasks"] or TASKS


def base_eval_targets():
    return [
        f"{RESULTS}/eval/{m}/{t}.parquet" for m in eval_models() for t in eval_tasks()
    ]


def foundation_targets():
    targets = [task_table(t) for t in TASKS]
    targets += [model_dir(m) for m in MODELS]
    return targets + base_eval_targets()


# Each rules/*.smk appends a function returning its final targets (studies present in the config).
TARGET_FUNCTIONS = [foundation_targets]


def all_targets():
    return [t for fn in TARGET_FUNCTIONS for t in fn()]


# Analysis (rules/analysis.smk): the audit, the lab database and the report tables.


def study_targets(wildcards=None):
    """Every final artifact the other stages request (all targets but this file's own)."""
    return [t for fn in TARGET_FUNCTIONS if fn is not analysis_targets for t in fn()]


def summary_tables():
    """Names of the studies' summary tables (results/analysis/{name}.parquet) among the targets."""
    prefix, suffix = f"{RESULTS}/analysis/", ".parquet"
    return sorted(
        t[len(prefix) : -len(suffix)]
        for t in study_targets()
        if t.startswith(prefix) and t.endswith(suffix) and "/" not in t[len(prefix) :]
    )


def analysis_targets():
    names = ["audit", *summary_tables()]
    tables_ = [f"{RESULTS}/report/tables/{n}.html" for n in names]
    return [f"{RESULTS}/analysis/lab.duckdb", *tables_]


TARGET_FUNCTIONS.append(analysis_targets)
