"""Rule build_response_source_trainset: one response source's rows over the kept questions."""

from ftlab import logs, provenance, tables
from ftlab.studies.response_source import trainset

with logs.to(snakemake.log[0]):
    started = provenance.now()
    responses = snakemake.input.get("responses")
    result = trainset.build(
        snakemake.wildcards.source,
        tables.read(snakemake.input.table, "tasks"),
        tables.read(snakemake.input.questions, "response_source_questions"),
        responses=tables.read(responses, "rationales") if responses else None,
        **snakemake.params.settings,
    )
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()),
                              seed=snakemake.params.settings.get("seed"), started=started)  # fmt: skip
    tables.write(result, snakemake.output[0], "trainset", prov)
