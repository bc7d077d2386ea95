# Teacher rationales, generated once per (teacher, task) and reused by every study.


include: "inputs/rationales.smk"


rule generate_rationales:
    """A teacher's CoT rationales for a task's questions; finished generations survive crashes in
    results/cache/rationales/{teacher}/ (not an output: Snakemake would delete it on failure).
    """
    input:
        model=f"{RESULTS}/models/{{teacher}}",
        table=run_task_table,
    output:
        f"{RESULTS}/rationales/{{teacher}}/{{task}}.parquet",
    log:
        "logs/generate_rationales/{teacher}/{task}.log",
    benchmark:
        "benchmarks/generate_rationales/{teacher}/{task}.tsv"
    wildcard_constraints:
        teacher=r"[A-Za-z0-9_]+",
    conda:
        "../envs/eval.yaml"
    threads: stage_threads("generate_rationales")
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        settings=config["rationales"],
        cache=f"{RESULTS}/cache/rationales/{{teacher}}",
        code=rationales_code,
    script:
        "../scripts/generate_rationales.py"
