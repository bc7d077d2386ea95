"""Rule summarize_distillation: accuracy per task x variant, the paper's claims, the plot."""

import pandas as pd

from ftlab import claims, logs, provenance, tables
from ftlab.studies.distillation import summary as distillation

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    p = snakemake.params
    evals = [tables.read(f, "eval") for f in [*snakemake.input.base, *snakemake.input.runs]]
    table = distillation.summarize(evals, p.student, p.resamples, p.seed)
    rows = distillation.claim_rows(evals, p.student, p.margin, p.resamples, p.seed)
    for r in rows:
        log.info("claim %s on %s: %s. %s", r["claim"], r["task"], r["verdict"], r["reason"])
    distillation.plot(table, snakemake.output.plot, rows)
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=p.seed, started=started)  # fmt: skip
    tables.write(table, snakemake.output.table, "distillation", prov)
    tables.write(pd.DataFrame(rows, columns=claims.SCHEMA.names), snakemake.output.claims,
                 "claims", prov)  # fmt: skip
