"""Rule generate_rationales: a teacher's rationales for a task's questions, via the prompt cache."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import logs, models, provenance, rationales, tables

with logs.to(snakemake.log[0]):
    started = provenance.now()
    models.set_threads(snakemake.threads)
    settings = rationales.Settings.from_config(snakemake.params.settings)
    teacher = rationales.load_teacher(snakemake.input.model, batch_size=settings.batch_size)
    result = rationales.generate(
        table=tables.read(snakemake.input.table, "tasks"),
        teacher=teacher,
        teacher_name=snakemake.wildcards.teacher,
        settings=settings,
        cache=rationales.Cache(snakemake.params.cache, snakemake.wildcards.task),
    )
    prov = provenance.collect(
        snakemake.rule,
        dict(snakemake.input.items()),
        dict(snakemake.params.items()),
        seed=settings.seed,
        device=getattr(teacher, "device", None) or "cpu",
        started=started,
    )
    prov["teacher_fingerprint"] = teacher.fingerprint
    tables.write(result, snakemake.output[0], "rationales", prov)
