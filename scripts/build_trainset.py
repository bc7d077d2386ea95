"""Rule build_trainset: one distillation variant's (prompt, completion) table for a task."""

from ftlab import logs, provenance, tables
from ftlab.studies import distillation
from ftlab.studies.distillation import trainset

with logs.to(snakemake.log[0]):
    started = provenance.now()
    variant = snakemake.wildcards.variant
    settings = trainset.Settings.from_config(snakemake.params.settings)
    task_table = tables.read(snakemake.input.table, "tasks")
    rationale_table = tables.read(snakemake.input.rationales, "rationales")
    scores, device = None, "cpu"
    if variant in distillation.NEEDS_TEACHER:
        scores, device = trainset.key_token_scores(
            trainset.examples(task_table, rationale_table),
            snakemake.input.teacher,
            settings,
            snakemake.threads,
        )
    result = trainset.build(variant, task_table, rationale_table, settings, scores=scores)
    prov = provenance.collect(
        snakemake.rule,
        dict(snakemake.input.items()),
        dict(snakemake.params.items()),
        seed=settings.seed,
        device=device,
        started=started,
    )
    tables.write(result, snakemake.output[0], "trainset", prov)
