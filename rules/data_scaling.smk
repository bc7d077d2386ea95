# The data_scaling study (Raghavendra, Nath, Hendryx 2024): nested subsets of N gold CoT examples
# per seed; fine-tuning (rules/finetune.smk) and evaluation (rules/evaluate.smk) of each
# N x task x seed; then the error split (format / reasoning) vs N, power-law fits and the claims.


include: "inputs/data_scaling.smk"


rule build_scaling_trainset:
    """Seed `seed`'s first N gold CoT examples of a task (nested in N: N=32 holds N=16)."""
    input:
        table=run_task_table,
    output:
        f"{RESULTS}/trainsets/data_scaling/n{{n}}/{{task}}/seed{{seed}}.parquet",
    log:
        "logs/build_trainset/data_scaling/n{n}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/build_trainset/data_scaling/n{n}/{task}/seed{seed}.tsv"
    wildcard_constraints:
        n=r"\d+",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code_hash("build_scaling_trainset.py"),
    script:
        "../scripts/build_scaling_trainset.py"


rule summarize_data_scaling:
    """Error (total, format, reasoning) vs N with power-law fits and intervals, claims, plot."""
    input:
        runs=data_scaling_run_evals,
        base=data_scaling_base_evals,
    output:
        table=f"{RESULTS}/analysis/data_scaling.parquet",
        claims=f"{RESULTS}/analysis/claims/data_scaling.parquet",
        plot=report(
            f"{RESULTS}/plots/data_scaling.png",
            category="data_scaling",
            caption="../report/data_scaling.rst",
        ),
    log:
        "logs/summarize_data_scaling.log",
    benchmark:
        "benchmarks/summarize_data_scaling.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        student=config["studies"].get("data_scaling", {}).get("student"),
        mode=config["studies"].get("data_scaling", {}).get("mode"),
        format_threshold=config["studies"]
        .get("data_scaling", {})
        .get("format_threshold"),
        resamples=config["studies"].get("data_scaling", {}).get("bootstrap_resamples"),
        seed=config["seed"],
        code=code_hash("summarize_data_scaling.py"),
    script:
        "../scripts/summarize_data_scaling.py"
