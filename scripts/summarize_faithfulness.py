"""Rule summarize_faithfulness: per-task scores with CIs, accuracies, the verdict, two plots."""

import pandas as pd

from ftlab import faithfulness_summary as fs
from ftlab import logs, provenance, tables

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    p = snakemake.params
    faith = pd.concat(
        [tables.read(f, "faithfulness") for f in snakemake.input.faith], ignore_index=True
    )
    evals = pd.concat([tables.read(f, "eval") for f in snakemake.input.evals], ignore_index=True)
    summary = fs.summarize(faith, evals, p.base_models, p.baseline, p.resamples, p.seed)
    verdict = fs.findings(summary, p.baseline)
    for line in verdict:
        log.info("seed finding: %s", line)
    fs.plot_early_answering(fs.early_curve(faith, p.base_models), snakemake.output.early)
    fs.plot_before_after(summary, snakemake.output.before_after)
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=p.seed, started=started)  # fmt: skip
    prov["findings"] = verdict
    tables.write(summary, snakemake.output.table, "faithfulness_summary", prov)
