"""Rule scorecard: every study's claims rows gathered, and the five papers' scorecard."""

import pandas as pd
import yaml

from ftlab import claims, logs, provenance, scorecard, tables

with logs.to(snakemake.log[0]) as log:
    started = provenance.now()
    frames = [tables.read(f, "claims") for f in snakemake.input.claims]
    headlines = yaml.safe_load(open(snakemake.input.headlines))
    for name in scorecard.unknown_claims(frames, headlines):
        log.warning("claim %s is not in %s: listed in claims.parquet only", name,
                    snakemake.input.headlines)  # fmt: skip
    card = scorecard.build(frames, headlines, snakemake.params.studies)
    log.info("\n%s", scorecard.to_text(card))
    prov = provenance.collect(snakemake.rule, dict(snakemake.input.items()),
                              dict(snakemake.params.items()), started=started)  # fmt: skip
    gathered = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=claims.SCHEMA.names)  # fmt: skip
    tables.write(gathered, snakemake.output.claims, "claims", prov)
    tables.write(card, snakemake.output.scorecard, "scorecard", prov)
