"""Rule summarize_distillation: accuracy over seeds per task x variant, the plot, the verdict."""

from ftlab import distillation, logs, provenance, tables

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    evals = [tables.read(p, "eval") for p in [*snakemake.input.base, *snakemake.input.runs]]
    summary = distillation.summarize(evals, student=snakemake.params.student)
    for line in distillation.findings(summary):
        log.info("paper's ordering: %s", line)
    distillation.plot(summary, snakemake.output.plot)
    prov = provenance.collect(
        snakemake.rule,
        dict(snakemake.input.items()),
        dict(snakemake.params.items()),
        started=started,
    )
    prov["findings"] = distillation.findings(summary)
    tables.write(summary, snakemake.output.table, "distillation", prov)
