"""Rule check_gates: can this run's measurements resolve the papers' claims?"""

import pandas as pd

from ftlab import claims, gates, logs, provenance, settings, tables  # noqa: F401 (claims: its schema)

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    t = settings.from_config(gates.Thresholds, snakemake.params.thresholds, "analysis.gates")
    rows = []
    for gate, subject, table, evals, mode in snakemake.params.plan:
        majority = gates.majority_rate(tables.read(table, "tasks"))
        ev = pd.concat([tables.read(p, "eval") for p in evals], ignore_index=True)
        ev = ev[ev["mode"] == mode]
        if gate == "teacher_reasons":
            rows.append(gates.teacher_reasons(ev, t, subject))
        elif gate == "learns_with_room":
            rows.append(gates.learns_with_room(ev, majority, t, subject))
        else:
            rows.append(gates.student_knows_its_pretraining(ev, majority, t, subject))
    claims = [tables.read(p, "claims") for p in snakemake.input.claims]
    if claims:
        rows += gates.precise(pd.concat(claims, ignore_index=True), t)
    result = gates.frame(rows)
    log.info("\n%s", gates.to_text(result))
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), started=started)  # fmt: skip
    tables.write(result, snakemake.output[0], "gates", prov)
