"""Rule rewrite_gold: the teacher's rewrite of every kept question's gold rationale."""

from ftlab.worker import delegated  # noqa: F401, I001 (first: may hand this job to a warm worker)
from ftlab import logs, provenance, tables, teachers
from ftlab.studies.response_source import rewrite, trainset

with logs.to(snakemake.log[0]):
    started = provenance.now()
    s = snakemake.params.settings
    questions = trainset.kept_questions(
        tables.read(snakemake.input.table, "tasks"),
        tables.read(snakemake.input.questions, "response_source_questions"),
    )
    d = s["decoding"]
    result, device, fingerprint = rewrite.rewrite(
        questions,
        teacher_dir=snakemake.input.model,
        teacher_name=snakemake.wildcards.teacher,
        method=s["method"],
        template=s["prompt"],
        gold_style=s["gold_style"],
        seed=s["seed"],
        decoding=teachers.Decoding(
            d["max_new_tokens"], d["do_sample"], d["temperature"], d["seed"]
        ),
        batch_size=d["batch_size"],
        cache_dir=snakemake.params.cache,
        threads=snakemake.threads,
    )
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), seed=s["seed"], device=device,
                              started=started)  # fmt: skip
    prov["teacher_fingerprint"] = fingerprint
    tables.write(result, snakemake.output[0], "rationales", prov)
