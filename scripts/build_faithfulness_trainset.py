"""Rule build_faithfulness_trainset: a task's train split as label-only fine-tuning rows."""

from ftlab import logs, provenance, tables
from ftlab.studies.faithfulness import trainset

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    rows = trainset.label_only(tables.read(snakemake.input.table, "tasks"))
    log.info("%d label-only training rows", len(rows))
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), started=started)  # fmt: skip
    tables.write(rows, snakemake.output[0], "trainset", prov)
