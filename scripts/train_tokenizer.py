"""Rule train_tokenizer: byte-level BPE on the task texts, saved as a PreTrainedTokenizerFast."""

from ftlab import logs, provenance, tables, tokenizer

with logs.to(snakemake.log[0]):
    started = provenance.now()
    frames = [tables.read(p, "tasks") for p in snakemake.input.tables]
    tokenizer.train(frames, snakemake.output[0], vocab_size=snakemake.params.spec["vocab_size"])
    provenance.write_json(
        provenance.collect(
            snakemake.rule,
            dict(snakemake.input.items()),
            dict(snakemake.params.items()),
            started=started,
        ),
        snakemake.output[0],
    )
