"""Rule build_lab: the DuckDB database of views over every artifact family."""

from pathlib import Path

from ftlab import lab, logs

with logs.to(snakemake.log[0]) as log:
    views = lab.build(snakemake.output[0], root=Path.cwd())
    log.info("lab: %d views: %s", len(views), ", ".join(views))
