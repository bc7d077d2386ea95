# Task tables: one typed table per task, from reasoning-gym, a local file or the hub.


include: "inputs/tasks.smk"


rule prepare_task:
    """One typed table per task (train/validation/test, disjoint), plus the rows it rejected."""
    input:
        source=task_source_files,
    output:
        table=f"{RESULTS}/data/tasks/{{task}}.parquet",
        quarantine=f"{RESULTS}/data/quarantine/{{task}}.parquet",
    log:
        "logs/prepare_task/{task}.log",
    benchmark:
        "benchmarks/prepare_task/{task}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=task_spec,
        code=code_hash("prepare_task.py"),
    script:
        "../scripts/prepare_task.py"
