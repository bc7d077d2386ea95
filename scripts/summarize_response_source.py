"""Rule summarize_response_source: accuracy, familiarity and forgetting per source, the claims,
the plots."""

import pandas as pd

from ftlab import claims, logs, provenance, tables
from ftlab.studies.response_source import plots, summary

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    p = snakemake.params
    evals = [tables.read(f, "eval") for f in [*snakemake.input.base, *snakemake.input.runs]]
    fam = [tables.read(f, "familiarity") for f in snakemake.input.familiarity]
    questions = [tables.read(f, "response_source_questions") for f in snakemake.input.questions]
    table = summary.summarize(evals, fam, questions, p.student, p.tasks, p.forgetting_tasks,
                              p.mode, p.resamples, p.seed)  # fmt: skip
    rows = summary.claim_rows(evals, fam, table, p.student, p.tasks, p.forgetting_tasks, p.mode,
                              p.resamples, p.seed)  # fmt: skip
    for r in rows:
        log.info("claim %s on %s: %s. %s", r["claim"], r["task"], r["verdict"], r["reason"])
    plots.plot_familiarity(table, snakemake.output.familiarity, rows)
    plots.plot_forgetting(table, snakemake.output.forgetting, rows)
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=p.seed, started=started)  # fmt: skip
    tables.write(table, snakemake.output.table, "response_source", prov)
    tables.write(pd.DataFrame(rows, columns=claims.SCHEMA.names), snakemake.output.claims,
                 "claims", prov)  # fmt: skip
