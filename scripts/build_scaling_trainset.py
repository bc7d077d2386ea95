"""Rule build_scaling_trainset: seed's first N gold CoT examples of a task (data_scaling)."""

from ftlab import logs, provenance, tables
from ftlab.studies.data_scaling import trainset

with logs.to(snakemake.log[0]):
    started = provenance.now()
    n, seed = int(snakemake.wildcards.n), int(snakemake.wildcards.seed)
    result = trainset.build(tables.read(snakemake.input.table, "tasks"), n, seed)
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=seed, started=started)  # fmt: skip
    tables.write(result, snakemake.output[0], "trainset", prov)
