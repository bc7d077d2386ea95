"""Rule build_generalization_trainset: a source's label-only training rows, plain or FTICL."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import kshot, logs, provenance, tables
from ftlab.studies.generalization import trainset

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    s, variant = snakemake.params.settings, snakemake.wildcards.variant
    student = snakemake.input.get("student")
    tokenizer = kshot.load_tokenizer(student) if student else None
    rows = trainset.build(tables.read(snakemake.input.table, "tasks"), variant, k=s.get("k", 0),
                          seed=s["seed"], size=s["size"], tokenizer=tokenizer,
                          max_seq_len=s.get("max_seq_len"))  # fmt: skip
    log.info("%d %s training rows (k=%d demonstrations)", len(rows), variant, s.get("k", 0))
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=s["seed"], started=started)  # fmt: skip
    tables.write(rows, snakemake.output[0], "trainset", prov)
