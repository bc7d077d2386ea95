"""Rule finetune: a study's student fine-tuned on one trainset (full or LoRA), one seed."""

from ftlab import finetune, logs, provenance

with logs.to(snakemake.log[0]):
    seed = int(snakemake.wildcards.seed)
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
    )
