# The finetune stage, shared by every study: a study's student fine-tuned on one of its trainsets
# (results/trainsets/{study}/{variant}/{task}.parquet), one run directory per seed. Studies request
# runs (through their eval targets); this file adds no targets.


include: "inputs/finetune.smk"


rule finetune:
    """Fine-tune the study's student on a trainset (TRL SFT, completion-only loss; full, LoRA or
    QLoRA; finetune.num_processes > 1 runs data-parallel under accelerate launch)."""
    input:
        trainset=finetune_trainset,
        model=finetune_base_model,
    output:
        directory(f"{RESULTS}/runs/{{study}}/{{variant}}/{{task}}/seed{{seed}}"),
    log:
        "logs/finetune/{study}/{variant}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune/{study}/{variant}/{task}/seed{seed}.tsv"
    wildcard_constraints:
        study=r"[A-Za-z0-9_]+",
        variant=r"[A-Za-z0-9_]+",
    conda:
        "../envs/train.yaml"
    threads: stage_threads("finetune")
    resources:
        gpu=finetune_gpus,
        mem_mb=8000,
        runtime=120,
    params:
        settings=finetune_settings,
        tracking_dir=f"{RESULTS}/mlruns",  # finetune.report_to mlflow: the local store
        code=code_hash("finetune.py"),
    script:
        "../scripts/finetune.py"
