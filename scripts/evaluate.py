"""Rule evaluate: a model on a task's test split, direct and CoT, one row per example x mode."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import evaluate, logs, provenance, tables

with logs.to(snakemake.log[0]):
    started = provenance.now()
    result, device = evaluate.run(
        model_dir=snakemake.input.model,
        table=tables.read(snakemake.input.table, "tasks"),
        run=snakemake.wildcards.run,
        settings=snakemake.params.settings,
        threads=snakemake.threads,
    )
    prov = provenance.collect(
        snakemake.rule,
        dict(snakemake.input.items()),
        dict(snakemake.params.items()),
        device=device,
        started=started,
    )
    tables.write(result, snakemake.output[0], "eval", prov)
