"""Rule summarize_data_scaling: error vs N by kind with power-law fits, the claims, the plot."""

import pandas as pd

from ftlab import claims, logs, provenance, tables
from ftlab.studies.data_scaling import plots
from ftlab.studies.data_scaling import summary as data_scaling

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    p = snakemake.params
    evals = [tables.read(f, "eval") for f in [*snakemake.input.base, *snakemake.input.runs]]
    table = data_scaling.summarize(evals, p.student, p.resamples, p.seed)
    rows = data_scaling.claim_rows(evals, p.student, p.mode, p.format_threshold, p.resamples,
                                   p.seed)  # fmt: skip
    for r in rows:
        log.info("claim %s on %s: %s. %s", r["claim"], r["task"], r["verdict"], r["reason"])
    plots.plot(table, snakemake.output.plot, rows)
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=p.seed, started=started)  # fmt: skip
    tables.write(table, snakemake.output.table, "data_scaling", prov)
    tables.write(pd.DataFrame(rows, columns=claims.SCHEMA.names), snakemake.output.claims,
                 "claims", prov)  # fmt: skip
