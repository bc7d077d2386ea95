# The faithfulness study (Lobo, Agarwal, Lakkaraju 2024; tests of Lanham et al. 2023): Lanham's
# four tests on each model's own CoT (read from its evaluation table), for base models ("before")
# and fine-tuned runs of other studies ("after"); then per-task scores, plots and the verdict.


include: "inputs/faithfulness.smk"


rule build_faithfulness_trainset:
    """Label-only (question -> answer) training rows of a task, to fine-tune `finetune_model`."""
    input:
        table=run_task_table,
    output:
        f"{RESULTS}/trainsets/faithfulness/label_only/{{task}}.parquet",
    log:
        "logs/build_trainset/faithfulness/label_only/{task}.log",
    benchmark:
        "benchmarks/build_trainset/faithfulness/label_only/{task}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code_hash("build_faithfulness_trainset.py"),
    script:
        "../scripts/build_faithfulness_trainset.py"


rule score_faithfulness:
    """Lanham's tests on one model's (or run's) own CoTs for a task: a row per example x test x level."""
    input:
        unpack(faithfulness_inputs),
    output:
        f"{RESULTS}/faithfulness/{{run}}/{{task}}.parquet",
    log:
        "logs/faithfulness/{run}/{task}.log",
    benchmark:
        "benchmarks/faithfulness/{run}/{task}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: stage_threads("score_faithfulness")
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        settings=faithfulness_settings,
        code=code_hash("score_faithfulness.py"),
    script:
        "../scripts/score_faithfulness.py"


rule summarize_faithfulness:
    """Per model/run group x task x test: score and 95% CI, accuracies, before/after verdict, plots."""
    input:
        faith=faithfulness_tables,
        evals=faithfulness_evals,
    output:
        table=f"{RESULTS}/analysis/faithfulness.parquet",
        claims=f"{RESULTS}/analysis/claims/faithfulness.parquet",
        early=report(
            f"{RESULTS}/plots/faithfulness_early_answering.png",
            caption="../report/faithfulness_early_answering.rst",
            category="faithfulness",
        ),
        before_after=report(
            f"{RESULTS}/plots/faithfulness_before_after.png",
            caption="../report/faithfulness_before_after.rst",
            category="faithfulness",
        ),
    log:
        "logs/summarize_faithfulness.log",
    benchmark:
        "benchmarks/summarize_faithfulness.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        base_models=MODELS,
        baseline=config["studies"].get("faithfulness", {}).get("baseline"),
        finetune_model=config["studies"].get("faithfulness", {}).get("finetune_model"),
        resamples=config["studies"].get("faithfulness", {}).get("bootstrap_resamples"),
        seed=config["seed"],
        code=code_hash("summarize_faithfulness.py"),
    script:
        "../scripts/summarize_faithfulness.py"
