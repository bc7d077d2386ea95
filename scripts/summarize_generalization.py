"""Rule summarize_generalization: the train x eval matrix, aggregates, claims, heatmaps."""

import pandas as pd

from ftlab import claims, label_scoring, logs, provenance, tables  # noqa: F401 (label_scoring: its schema)
from ftlab.studies.generalization import summary as generalization

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    p = snakemake.params
    frames = [tables.read(f, "label_scores") for f in snakemake.input.scores]
    table = generalization.summarize(frames, p.student, p.study, p.resamples, p.seed)
    rows = generalization.claim_rows(frames, p.student, p.study, p.resamples, p.seed)
    for r in rows:
        log.info("claim %s on %s: %s. %s", r["claim"], r["task"], r["verdict"], r["reason"])
    for setting, path in zip(p.study["eval_settings"], snakemake.output.heatmaps, strict=True):
        generalization.heatmap(table, p.study, setting, path, rows)
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=p.seed, started=started)  # fmt: skip
    tables.write(table, snakemake.output.table, "generalization", prov)
    tables.write(pd.DataFrame(rows, columns=claims.SCHEMA.names), snakemake.output.claims,
                 "claims", prov)  # fmt: skip
