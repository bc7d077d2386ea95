"""Rule score_familiarity: a trainset's completions scored under a base model, one row per example."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import familiarity, logs, provenance, tables

with logs.to(snakemake.log[0]):
    started = provenance.now()
    result, device = familiarity.run(
        trainset=tables.read(snakemake.input.trainset, "trainset"),
        model_dir=snakemake.input.model,
        model_name=snakemake.wildcards.model,
        settings=snakemake.params.settings,
        threads=snakemake.threads,
    )
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), device=device, started=started)  # fmt: skip
    tables.write(result, snakemake.output[0], "familiarity", prov)
