# Helpers shared by every rule: config checks, paths, lookups, targets, wildcard constraints.
# Each rule's own input functions sit beside it in its rules/*.smk.
import importlib
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from ftlab import codehash, configcheck, runs, studies  # noqa: E402

SCHEMA = str(Path(workflow.basedir) / "resources" / "config.schema.yaml")

# One line per problem, naming the key path, before any job runs (no traceback): types first (the
# schema, after task presets are merged in), then cross-references, then each study's own checks.
_problems = configcheck.problems(
    config,
    SCHEMA,
    {s: importlib.import_module(f"ftlab.studies.{s}").check for s in studies.STUDIES},
)
if _problems:
    sys.exit("Invalid config:\n  " + "\n  ".join(_problems))


wildcard_constraints:
    task=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    run=r"[A-Za-z0-9_./-]+",


RESULTS = runs.RESULTS
TASKS = list(config["tasks"])
MODELS = list(config["models"])


def stage_threads(rule):
    """Torch threads of a model stage: `threads`, or its per-stage entry / `default`."""
    threads = config["threads"]
    return (
        threads if isinstance(threads, int) else threads.get(rule, threads["default"])
    )


def code_hash(script):
    """Hash of the ftlab modules `script` imports: library edits rerun exactly these jobs."""
    return codehash.stage_hash(Path(workflow.basedir) / "scripts" / script)


def study_config(name):
    return config["studies"][name]


# --- paths (ftlab/runs.py names every artifact) ---
task_table = runs.task_table
model_dir = runs.model_dir


def run_model_dir(wildcards):
    return model_dir(wildcards.run)


def run_task_table(wildcards):
    return task_table(wildcards.task)


def run_settings(wildcards, section):
    """`config[section]` for a run: a fine-tuned run's study may override it per variant
    (`studies.<study>.eval_modes: {variant: [modes]}` for the evaluation's modes)."""
    settings = dict(config[section])
    run = runs.parse(wildcards.run)
    if run and section == "evaluation":
        modes = study_config(run.study).get("eval_modes", {}).get(run.variant)
        if modes:
            settings["modes"] = modes
    return settings


# --- targets: each rules/*.smk appends a function returning its final targets ---
def eval_models():
    return config["evaluation"]["models"] or MODELS


def eval_tasks():
    return config["evaluation"]["tasks"] or TASKS


def base_eval_targets():
    return [runs.eval_path(m, t) for m in eval_models() for t in eval_tasks()]


def foundation_targets():
    targets = [task_table(t) for t in TASKS]
    targets += [model_dir(m) for m in MODELS]
    return targets + base_eval_targets()


TARGET_FUNCTIONS = [foundation_targets]
# study -> function returning its fine-tuned run ids (set in rules/inputs/<study>.smk): their
# training curves are plotted in the study's report section
STUDY_RUNS = {}
# studies whose trainsets are per seed: results/trainsets/{study}/{variant}/{task}/seed{n}.parquet
SEEDED_TRAINSETS = set()


def all_targets():
    return [t for fn in TARGET_FUNCTIONS for t in fn()]
