"""Rule build_model: pretrain an embedded Llama here, or resolve a hub / GGUF model."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import logs, models, provenance

with logs.to(snakemake.log[0]):
    started = provenance.now()
    spec = snakemake.params.spec
    if snakemake.input.checkpoint:  # the config's path, resolved against the workflow directory
        spec = {**spec, "checkpoint": snakemake.input.checkpoint}
    device = models.build(
        name=snakemake.wildcards.model,
        spec=spec,
        out_dir=snakemake.output[0],
        tokenizer_dir=snakemake.input.tokenizer or None,
        tables=list(snakemake.input.tables),
        threads=snakemake.threads,
    )
    provenance.write_json(
        provenance.collect(
            snakemake.rule,
            dict(snakemake.input.items()),
            dict(snakemake.params.items()),
            seed=spec["seed"],
            device=device,
            started=started,
        ),
        snakemake.output[0],
    )
