# The generalization study (Yang et al. 2024): label-only trainsets of each source, plain and FTICL
# (k demonstrations in every training prompt, masked from the loss); fine-tuning by the shared
# finetune rule (rules/finetune.smk); every model of the matrix (the base student and every run)
# scored on every (task, domain) test set, zero-shot and k-shot (score_labels: one job per eval
# task, one file per model); then the matrix, its aggregates, the claims and one heatmap per eval
# setting.


include: "inputs/generalization.smk"


if "generalization" in config["studies"]:

    rule build_generalization_trainset:
        """A source's label-only training rows, plain or FTICL (ftlab/studies/generalization/trainset.py)."""
        input:
            unpack(generalization_trainset_inputs),
        output:
            f"{RESULTS}/trainsets/generalization/{{variant}}/{{task}}.parquet",
        log:
            "logs/build_trainset/generalization/{variant}/{task}.log",
        benchmark:
            "benchmarks/build_trainset/generalization/{variant}/{task}.tsv"
        wildcard_constraints:
            variant="|".join(GENERALIZATION.VARIANTS),
        conda:
            "../envs/train.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            settings=generalization_trainset_settings,
            code=code_hash("build_generalization_trainset.py"),
        script:
            "../scripts/build_generalization_trainset.py"

    rule score_labels:
        """Every model of the matrix on one eval task, zero-shot and k-shot: restricted label
        log-likelihood (classification) or ROUGE-L and exact match (generation) (ftlab/label_scoring.py).
        """
        input:
            unpack(score_labels_inputs),
        output:
            [LABEL_SCORING.path(m, "{task}") for m in generalization_models()],
        log:
            "logs/score_labels/{task}.log",
        benchmark:
            "benchmarks/score_labels/{task}.tsv"
        wildcard_constraints:
            task="|".join(generalization_eval_tasks()),
        conda:
            "../envs/label_scoring.yaml"
        threads: stage_threads("evaluate")
        resources:
            gpu=1,
            mem_mb=4000,
            runtime=60,
        params:
            settings=score_labels_settings,
            runs=generalization_models(),
            code=code_hash("score_labels.py"),
        script:
            "../scripts/score_labels.py"

    rule summarize_generalization:
        """The train x eval matrix with paired differences and aggregates, the claims, heatmaps."""
        input:
            scores=generalization_scores,
        output:
            table=f"{RESULTS}/analysis/generalization.parquet",
            claims=f"{RESULTS}/analysis/claims/generalization.parquet",
            heatmaps=[
                report(
                    path,
                    category="generalization",
                    caption="../report/generalization.rst",
                )
                for path in generalization_heatmaps()
            ],
        log:
            "logs/summarize_generalization.log",
        benchmark:
            "benchmarks/summarize_generalization.tsv"
        conda:
            "../envs/analysis.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            student=config["studies"]["generalization"]["student"],
            study={
                k: config["studies"]["generalization"][k]
                for k in ("tasks", "sources", "variants", "eval_settings")
            },
            resamples=config["studies"]["generalization"]["bootstrap_resamples"],
            seed=config["seed"],
            code=code_hash("summarize_generalization.py"),
        script:
            "../scripts/summarize_generalization.py"
