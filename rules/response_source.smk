# The response_source study (Ren, Wu, Liu 2024): the same questions with gold, teacher-written and
# teacher-rewritten responses (optionally the student's own); how familiar each is to the student
# before fine-tuning; fine-tuning (rules/finetune.smk) and evaluation (rules/evaluate.smk) of each
# source x task x seed, in-task and on the student's other tasks; then the claims and the plots.
# score_familiarity is a shared stage: any study may request results/familiarity/... of a trainset.


include: "inputs/response_source.smk"


rule score_familiarity:
    """Each trainset completion's log-likelihood given its prompt under a base model, before any
    fine-tuning (ftlab/familiarity.py): summed and per token, batched."""
    input:
        model=familiarity_model,
        trainset=f"{RESULTS}/trainsets/{{study}}/{{variant}}/{{task}}.parquet",
    output:
        f"{RESULTS}/familiarity/{{model}}/{{study}}/{{variant}}/{{task}}.parquet",
    log:
        "logs/score_familiarity/{model}/{study}/{variant}/{task}.log",
    benchmark:
        "benchmarks/score_familiarity/{model}/{study}/{variant}/{task}.tsv"
    wildcard_constraints:
        study=r"[A-Za-z0-9_]+",
        variant=r"[A-Za-z0-9_]+",
    conda:
        "../envs/eval.yaml"
    threads: stage_threads("score_familiarity")
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    params:
        settings=familiarity_settings,
        code=code_hash("score_familiarity.py"),
    script:
        "../scripts/score_familiarity.py"


rule align_response_source:
    """The train questions every aligned source (gold, teacher, self) has a response for; the
    rest are dropped from all, with the sources that lacked them."""
    input:
        unpack(response_source_align_inputs),
    output:
        f"{RESULTS}/response_source/questions/{{task}}.parquet",
    log:
        "logs/response_source/align/{task}.log",
    benchmark:
        "benchmarks/response_source/align/{task}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        sources=response_source_aligned,
        code=code_hash("align_response_source.py"),
    script:
        "../scripts/align_response_source.py"


rule rewrite_gold:
    """The teacher's rewrite of each kept question's gold rationale in its own words
    (ftlab/studies/response_source/rewrite.py); prompted rewrites go through the rationale cache.
    """
    input:
        unpack(response_source_rewrite_inputs),
    output:
        f"{RESULTS}/response_source/rewrites/{{teacher}}/{{task}}.parquet",
    log:
        "logs/response_source/rewrite/{teacher}/{task}.log",
    benchmark:
        "benchmarks/response_source/rewrite/{teacher}/{task}.tsv"
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
        settings=response_source_rewrite_settings,
        cache=f"{RESULTS}/cache/rationales/{{teacher}}",
        code=response_source_rewrite_code,
    script:
        "../scripts/rewrite_gold.py"


rule build_response_source_trainset:
    """One source's (prompt, completion) rows over the kept questions (CoT, gold answer)."""
    input:
        unpack(response_source_trainset_inputs),
    output:
        f"{RESULTS}/trainsets/response_source/{{source}}/{{task}}.parquet",
    log:
        "logs/build_trainset/response_source/{source}/{task}.log",
    benchmark:
        "benchmarks/build_trainset/response_source/{source}/{task}.tsv"
    wildcard_constraints:
        source="|".join(RESPONSE_SOURCE.SOURCES),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=response_source_trainset_settings,
        code=code_hash("build_response_source_trainset.py"),
    script:
        "../scripts/build_response_source_trainset.py"


rule summarize_response_source:
    """Accuracy, familiarity and forgetting per source with intervals, the claims, the plots."""
    input:
        runs=response_source_run_evals,
        base=response_source_base_evals,
        familiarity=response_source_familiarity,
        questions=response_source_questions,
    output:
        table=f"{RESULTS}/analysis/response_source.parquet",
        claims=f"{RESULTS}/analysis/claims/response_source.parquet",
        familiarity=report(
            f"{RESULTS}/plots/response_source_familiarity.png",
            category="response_source",
            caption="../report/response_source_familiarity.rst",
        ),
        forgetting=report(
            f"{RESULTS}/plots/response_source_forgetting.png",
            category="response_source",
            caption="../report/response_source_forgetting.rst",
        ),
    log:
        "logs/summarize_response_source.log",
    benchmark:
        "benchmarks/summarize_response_source.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        student=config["studies"].get("response_source", {}).get("student"),
        tasks=config["studies"].get("response_source", {}).get("tasks"),
        forgetting_tasks=(
            RESPONSE_SOURCE.forgetting_tasks(config)
            if "response_source" in config["studies"]
            else []
        ),
        mode=config["studies"].get("response_source", {}).get("mode"),
        resamples=config["studies"]
        .get("response_source", {})
        .get("bootstrap_resamples"),
        seed=config["seed"],
        code=code_hash("summarize_response_source.py"),
    script:
        "../scripts/summarize_response_source.py"
