"""Rule score_labels: every model of the generalization matrix on one eval task, zero-shot and
k-shot; one label_scores table per model (ftlab/label_scoring.py)."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import label_scoring, logs, models, provenance, tables

with logs.to(snakemake.log[0]) as log:
    p = snakemake.params
    s = label_scoring.Settings.from_config(p.settings)
    table = tables.read(snakemake.input.table, "tasks")
    prepared = label_scoring.prepare(table, s)  # the same demonstrations for every model
    models.set_threads(snakemake.threads)
    task = snakemake.wildcards.task
    dirs = snakemake.input.models
    dirs = [dirs] if isinstance(dirs, str) else list(dirs)
    for run, model_dir, out in zip(p.runs, dirs, snakemake.output, strict=True):
        started = provenance.now()
        model, tokenizer = models.load(model_dir)
        frame = label_scoring.score(model, tokenizer, table, run, s, prepared)
        for setting, mean, chance in label_scoring.summary_line(frame, s.kind, s.rouge_tokens,
                                                                s.seed):  # fmt: skip
            above = "above" if mean > chance else "NOT above"
            log.info("%s on %s (%s, %s): %s %.3f, chance %.3f: %s chance", run, task, setting,
                     s.kind, label_scoring.METRICS[s.kind][0], mean, chance, above)  # fmt: skip
        inputs = {"model": model_dir, "table": snakemake.input.table}
        prov = provenance.collect(snakemake.rule, inputs, dict(p.items()),
                                  device=model.device.type, started=started)  # fmt: skip
        tables.write(frame, out, "label_scores", prov)
