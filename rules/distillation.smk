# The distillation study (Wadhwa, Amir, Wallace 2024): a trainset per variant from the teacher's
# rationales; fine-tuning (rules/finetune.smk) and evaluation (rules/evaluate.smk) of each
# variant x task x seed; then accuracy per variant, the paper's claims as data, and a plot.


include: "inputs/distillation.smk"


rule build_trainset:
    """One distillation variant's (prompt, completion) table for a task (ftlab/studies/distillation/trainset.py)."""
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
    threads: stage_threads("build_trainset")
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
    """Accuracy per task x variant with intervals, the paper's claims (paired), the plot."""
    input:
        runs=distillation_run_evals,
        base=distillation_base_evals,
    output:
        table=f"{RESULTS}/analysis/distillation.parquet",
        claims=f"{RESULTS}/analysis/claims/distillation.parquet",
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
        margin=config["studies"].get("distillation", {}).get("equivalence_margin"),
        resamples=config["studies"].get("distillation", {}).get("bootstrap_resamples"),
        seed=config["seed"],
        code=code_hash("summarize_distillation.py"),
    script:
        "../scripts/summarize_distillation.py"
