"""Rule score_faithfulness: Lanham's tests on a model's own CoTs, one row per example x test x level."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import logs, provenance, tables
from ftlab.studies.faithfulness import score as faithfulness

with logs.to(snakemake.log[0]):
    started = provenance.now()
    result, device = faithfulness.run(
        model_dir=snakemake.input.model,
        eval_df=tables.read(snakemake.input.eval, "eval"),
        tasks_df=tables.read(snakemake.input.table, "tasks"),
        settings=snakemake.params.settings,
        threads=snakemake.threads,
        helper_dir=snakemake.input.get("helper"),
    )
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=snakemake.params.settings["seed"],
                              device=device, started=started)  # fmt: skip
    tables.write(result, snakemake.output[0], "faithfulness", prov)
