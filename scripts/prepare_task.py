"""Rule prepare_task: one typed, split, de-duplicated table per task (+ quarantined rows)."""

from ftlab import logs, provenance, tables, tasks

with logs.to(snakemake.log[0]):
    started = provenance.now()
    spec = snakemake.params.spec
    table, quarantine = tasks.prepare(snakemake.wildcards.task, spec)  # logs its split counts
    prov = provenance.collect(
        snakemake.rule,
        dict(snakemake.input.items()),
        dict(snakemake.params.items()),
        seed=spec["seed"],
        started=started,
    )
    tables.write(quarantine, snakemake.output.quarantine, "quarantine", prov)
    tables.write(table, snakemake.output.table, "tasks", prov)
