include: "inputs/evaluate.smk"


rule evaluate:
    """A base model or a fine-tuned run on a task's test split: direct and CoT, per example."""
    input:
        model=run_model_dir,
        table=run_task_table,
    output:
        f"{RESULTS}/eval/{{run}}/{{task}}.parquet",
    log:
        "logs/evaluate/{run}/{task}.log",
    benchmark:
        "benchmarks/evaluate/{run}/{task}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: stage_threads("evaluate")
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        settings=evaluate_settings,
        code=code_hash("evaluate.py"),
    script:
        "../scripts/evaluate.py"
