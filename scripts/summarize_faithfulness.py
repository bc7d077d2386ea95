"""Rule summarize_faithfulness: per-task scores with CIs, accuracies, the claims, two plots."""

import pandas as pd

from ftlab import claims, logs, provenance, tables
from ftlab.studies.faithfulness import summary as fs

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    p = snakemake.params
    faith = pd.concat(
        [tables.read(f, "faithfulness") for f in snakemake.input.faith], ignore_index=True
    )
    evals = pd.concat([tables.read(f, "eval") for f in snakemake.input.evals], ignore_index=True)
    summary = fs.summarize(faith, evals, p.base_models, p.baseline, p.resamples, p.seed)
    rows = fs.claim_rows(faith, evals, p.finetune_model, p.resamples, p.seed)
    for r in rows:
        log.info("claim %s on %s (%s): %s. %s", r["claim"], r["task"], r["models"], r["verdict"],
                 r["reason"])  # fmt: skip
    fs.plot_early_answering(fs.early_curve(faith, p.base_models), snakemake.output.early)
    fs.plot_before_after(summary, snakemake.output.before_after)
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=p.seed, started=started)  # fmt: skip
    tables.write(summary, snakemake.output.table, "faithfulness_summary", prov)
    tables.write(pd.DataFrame(rows, columns=claims.SCHEMA.names), snakemake.output.claims,
                 "claims", prov)  # fmt: skip
