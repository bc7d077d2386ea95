"""Rule build_trainset: one distillation variant's (prompt, completion) table for a task."""

from ftlab import logs, provenance, tables, trainsets

with logs.to(snakemake.log[0]):
    started = provenance.now()
    variant = snakemake.wildcards.variant
    settings = trainsets.Settings.from_config(snakemake.params.settings)
    task_table = tables.read(snakemake.input.table, "tasks")
    rationale_table = tables.read(snakemake.input.rationales, "rationales")
    scores, device = None, "cpu"
    if variant in trainsets.NEEDS_TEACHER:
        scores, device = trainsets.key_token_scores(
            trainsets.examples(task_table, rationale_table),
            snakemake.input.teacher,
            settings,
            snakemake.threads,
        )
    result = trainsets.build(variant, task_table, rationale_table, settings, scores=scores)
    prov = provenance.collect(
        snakemake.rule,
        dict(snakemake.input.items()),
        dict(snakemake.params.items()),
        seed=settings.seed,
        device=device,
        started=started,
    )
    tables.write(result, snakemake.output[0], "trainset", prov)
