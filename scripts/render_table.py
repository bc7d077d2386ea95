"""Rules render_table, render_claims, render_scorecard: a table as an HTML page for the report."""

import pandas as pd

from ftlab import lab, logs

with logs.to(snakemake.log[0]):
    frame = pd.read_parquet(snakemake.input[0])
    title = getattr(snakemake.params, "title", None) or snakemake.wildcards.name
    with open(snakemake.output[0], "w") as f:
        f.write(lab.render_html(frame, title, max_rows=snakemake.params.max_rows))
