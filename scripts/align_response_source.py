"""Rule align_response_source: the train questions every aligned source has a response for."""

from ftlab import logs, provenance, tables
from ftlab.studies.response_source import trainset

with logs.to(snakemake.log[0]):
    started = provenance.now()
    sources = snakemake.params.sources
    rationales = {s: tables.read(snakemake.input.get(f"{s}_rationales"), "rationales")
                  for s in sources if s != "gold"}  # fmt: skip
    result = trainset.align(tables.read(snakemake.input.table, "tasks"), sources, rationales)
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), started=started)  # fmt: skip
    tables.write(result, snakemake.output[0], "response_source_questions", prov)
