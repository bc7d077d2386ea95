# Helpers shared by every rule: config validation, lookups, targets, wildcard constraints.
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.utils import min_version, validate

min_version("9.0")


sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from ftlab import codehash, configcheck, prompts  # noqa: E402

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


def stage_threads(rule):
    """Torch threads of a model stage: `threads`, or its per-stage entry / `default`."""
    threads = config["threads"]
    return (
        threads if isinstance(threads, int) else threads.get(rule, threads["default"])
    )


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


# --- evaluate (helpers for rules/evaluate.smk) ---
def evaluate_settings(wildcards):
    """The evaluation settings a job uses (not the model/task target lists, which would rerun all)."""
    settings = eval_settings(wildcards)
    return {k: v for k, v in settings.items() if k not in ("models", "tasks")}


# --- distillation (helpers for rules/distillation.smk) ---
DISTILLATION_VARIANTS = prompts.DISTILLATION_VARIANTS


def distillation_study():
    return config["studies"]["distillation"]


def distillation_trainset_inputs(wildcards):
    """Task table and rationales; the teacher model too, for the key-token variant only."""
    study = distillation_study()
    inputs = {
        "table": task_table(wildcards.task),
        "rationales": f"{RESULTS}/rationales/{study['teacher']}/{wildcards.task}.parquet",
    }
    if wildcards.variant == "cot_after_key_tokens":
        inputs["teacher"] = model_dir(study["teacher"])
    return inputs


def distillation_trainset_settings(wildcards):
    """Only the settings a variant uses, so changing one reruns only the variants it affects."""
    study, variant = distillation_study(), wildcards.variant
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


def distillation_run_evals(wildcards=None):
    study = distillation_study()
    return [
        f"{RESULTS}/eval/distillation/{variant}/{task}/seed{seed}/{task}.parquet"
        for variant in study["variants"]
        for task in study["tasks"]
        for seed in study["seeds"]
    ]


def distillation_base_evals(wildcards=None):
    study = distillation_study()
    return [
        f"{RESULTS}/eval/{study['student']}/{task}.parquet" for task in study["tasks"]
    ]


def distillation_targets():
    if "distillation" not in config["studies"]:
        return []
    return [
        f"{RESULTS}/analysis/distillation.parquet",
        f"{RESULTS}/plots/distillation.png",
    ]


TARGET_FUNCTIONS.append(distillation_targets)


# --- finetune (helpers for rules/finetune.smk) ---
def finetune_base_model(wildcards):
    return model_dir(config["studies"][wildcards.study]["student"])


def finetune_gpus(wildcards):
    """GPUs of a fine-tuning job: one per training process (finetune.num_processes)."""
    return finetune_settings(wildcards).get("num_processes", 1)


def finetune_settings(wildcards):
    """The `finetune:` defaults with the study's own `finetune:` override merged on top."""
    override = config["studies"][wildcards.study].get("finetune") or {}
    settings = dict(config["finetune"])
    for key, value in override.items():
        if isinstance(value, dict):
            value = {**settings.get(key, {}), **value}
        settings[key] = value
    return settings


# --- faithfulness (helpers for rules/faithfulness.smk) ---


def faithfulness_study():
    return config["studies"]["faithfulness"]


def faithfulness_runs():
    """(run, task) pairs: the base models on every study task, then the listed studies' runs.

    A run is "{study}/{variant}/{task}/seed{seed}" and is scored on its own task only.
    """
    study = faithfulness_study()
    pairs = [(m, t) for m in study["models"] for t in study["tasks"]]
    for i, entry in enumerate(study["runs"]):
        key = f"studies.faithfulness.runs[{i}]"
        other = config["studies"].get(entry["from_study"])
        if other is None:
            raise WorkflowError(
                f"{key}.from_study: study {entry['from_study']!r} is not configured"
            )
        for variant in entry["variants"]:
            if variant not in other.get("variants", []):
                raise WorkflowError(
                    f"{key}.variants: {variant!r} is not a variant of {entry['from_study']!r}"
                )
            for task in other["tasks"]:
                if task not in study["tasks"]:
                    continue
                for seed in other.get("seeds", [config["seed"]]):
                    pairs.append(
                        (f"{entry['from_study']}/{variant}/{task}/seed{seed}", task)
                    )
    for run, _ in pairs:
        modes = eval_settings(SimpleNamespace(run=run))["modes"]
        if "cot" not in modes:
            parts = run.split("/")
            where = (
                "evaluation.modes"
                if len(parts) == 1
                else f"studies.{parts[0]}.eval_modes.{parts[1]}"
            )
            raise WorkflowError(
                f"studies.faithfulness: {run!r} is evaluated with modes {modes}, without cot "
                f"(the faithfulness tests read its CoT): add cot to {where}"
            )
    return pairs


def faithfulness_check():
    """Names the study refers to must exist (the JSON schema cannot say so)."""
    study = faithfulness_study()
    for key in ("models", "tasks"):
        known = config[key]
        for i, name in enumerate(study[key]):
            if name not in known:
                raise WorkflowError(
                    f"studies.faithfulness.{key}[{i}]: unknown {name!r}"
                )
    baseline = study["baseline"]
    names = {"helper": [study["helper"]] if study["helper"] else []}
    names["baseline"] = [baseline] if isinstance(baseline, str) else baseline
    for key, values in names.items():
        for name in values:
            if name not in config["models"]:
                raise WorkflowError(
                    f"studies.faithfulness.{key}: unknown model {name!r}"
                )


def faithfulness_inputs(wildcards):
    """The model, its task table and its evaluation (whose CoT rows are scored); the helper."""
    inputs = {
        "model": model_dir(wildcards.run),
        "table": task_table(wildcards.task),
        "eval": f"{RESULTS}/eval/{wildcards.run}/{wildcards.task}.parquet",
    }
    helper = faithfulness_study()["helper"]
    if helper:
        inputs["helper"] = model_dir(helper)
    return inputs


def faithfulness_settings(wildcards):
    """What scoring uses (not the target lists or the bootstrap: those rerun only the summary)."""
    skip = ("models", "baseline", "runs", "tasks", "bootstrap_resamples", "helper")
    settings = {k: v for k, v in faithfulness_study().items() if k not in skip}
    return settings | {"seed": config["seed"]}


def faithfulness_tables(wildcards=None):
    return [
        f"{RESULTS}/faithfulness/{run}/{task}.parquet"
        for run, task in faithfulness_runs()
    ]


def faithfulness_evals(wildcards=None):
    return [f"{RESULTS}/eval/{run}/{task}.parquet" for run, task in faithfulness_runs()]


def faithfulness_targets():
    if "faithfulness" not in config["studies"]:
        return []
    faithfulness_check()
    return [
        f"{RESULTS}/analysis/faithfulness.parquet",
        f"{RESULTS}/plots/faithfulness_early_answering.png",
        f"{RESULTS}/plots/faithfulness_before_after.png",
    ]


TARGET_FUNCTIONS.append(faithfulness_targets)
