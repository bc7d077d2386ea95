"""Rule finetune: a study's student fine-tuned on one trainset (full or LoRA), one seed."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import finetune, logs, provenance, runs

with logs.to(snakemake.log[0]):
    w = snakemake.wildcards
    seed = int(w.seed)
    finetune.run(
        trainset=snakemake.input.trainset,
        base_model=snakemake.input.model,
        out_dir=snakemake.output[0],
        settings=snakemake.params.settings,
        seed=seed,
        threads=snakemake.threads,
        record=provenance.collect(
            snakemake.rule, dict(snakemake.input.items()), dict(snakemake.params.items()), seed=seed
        ),
        run_name=runs.run_id(w.study, w.variant, w.task, seed),
        tracking_dir=snakemake.params.tracking_dir,
    )
