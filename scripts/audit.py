"""Rule audit: check every artifact's recorded input hashes; write the findings and the ledger."""

from pathlib import Path

from ftlab import audit, logs, provenance

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    results = Path(snakemake.output.report).parents[1]  # results/analysis/audit.parquet
    result = audit.run(results, progress=True)
    for row in result.findings.itertuples():
        log.warning("audit %s: %s", row.kind, row.message)
    log.info("audit: %d artifacts, %d findings", len(result.artifacts), len(result.findings))
    record = provenance.collect(snakemake.rule, {}, dict(snakemake.params.items()), started=started)
    audit.write(result, snakemake.output.report, snakemake.output.provenance, record)
    if snakemake.params.fail and not result.ok:
        paths = sorted(set(result.findings["input"].dropna()) | set(result.findings["artifact"]))
        raise RuntimeError(
            f"audit: {len(result.findings)} finding(s) (analysis.fail_on_audit_findings is true): "
            + ", ".join(paths)
        )
