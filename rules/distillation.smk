# The distillation study (Wadhwa, Amir, Wallace 2024): a trainset per variant from the teacher's
# rationales; fine-tuning (rules/finetune.smk) and evaluation (rules/evaluate.smk) of each
# variant x task x seed; then accuracy over seeds, a plot and a verdict on the paper's orderings.

DISTILLATION_VARIANTS = (
    "label_only",
    "cot_before",
    "cot_after",
    "cot_after_shuffled",
    "cot_after_key_tokens",
    "cot_after_random_tokens",
)


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


rule build_trainset:
    """One distillation variant's (prompt, completion) table for a task (trainsets.py)."""
    input:
        unpack(distillation_trainset_inputs),
    output:
        f"{RESULTS}/trainsets/distillation/{{variant}}/{{task}}.parquet",
    log:
        "logs/build_trainset/distillation/{variant}/{task}.log",
    benchmark:
        "benchmarks/build_trainset/distillation/{variant}/{task}.tsv"
    wildcard_constraints:
        variant="|".join(DISTILLATION_VARIANTS),
    conda:
        "../envs/train.yaml"
    threads: config["threads"]
    resources:
        gpu=distillation_trainset_gpus,
        mem_mb=4000,
        runtime=30,
    params:
        settings=distillation_trainset_settings,
        code=code_hash("build_trainset.py"),
    script:
        "../scripts/build_trainset.py"


rule summarize_distillation:
    """Accuracy per task x variant (mean, 95% t-interval over seeds), the plot and the verdict."""
    input:
        runs=distillation_run_evals,
        base=distillation_base_evals,
    output:
        table=f"{RESULTS}/analysis/distillation.parquet",
        plot=report(
            f"{RESULTS}/plots/distillation.png",
            category="distillation",
            caption="../report/distillation.rst",
        ),
    log:
        "logs/summarize_distillation.log",
    benchmark:
        "benchmarks/summarize_distillation.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        student=config["studies"].get("distillation", {}).get("student"),
        code=code_hash("summarize_distillation.py"),
    script:
        "../scripts/summarize_distillation.py"
