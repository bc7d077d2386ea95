"""The scorecard: every headline claim of the five papers, measured or not, in the table, the
terminal and JSON."""

import json
import math
from pathlib import Path

import pandas as pd
import yaml

from ftlab import claims, cli, scorecard, stats, tables
from ftlab.studies.distillation import summary as distillation

HEADLINES = yaml.safe_load((Path(__file__).parents[1] / "resources/scorecard.yaml").read_text())


def est(effect, low, high, n=200, seeds=3):
    return stats.Estimate(effect, low, high, n, seeds, 0.01, stats.BOOTSTRAP)


def distillation_rows():
    """Claims rows of every verdict kind."""
    c = {k.id: k for k, _, _ in distillation.paper_claims(0.05)}
    return [
        claims.row("distillation", c["cot_after_gt_cot_before"], "t", est(0.1, 0.05, 0.15), "m"),
        claims.row("distillation", c["cot_after_gt_label_only"], "t", est(-0.1, -0.15, -0.05), "m"),
        claims.row("distillation", c["shuffled_gt_label_only"], "t", est(0.01, -0.03, 0.05), "m"),
        claims.row("distillation", c["key_tokens_eq_cot_after"], "t", est(0.0, -0.02, 0.02), "m"),
        claims.not_tested_row(
            "distillation", c["key_tokens_gt_random_tokens"], "t", "Not tested: x."
        ),
    ]


def card():
    frame = pd.DataFrame(distillation_rows(), columns=claims.SCHEMA.names)
    return scorecard.build([frame], HEADLINES, ["distillation"])


def test_every_paper_has_its_headline_claims_and_every_verdict_shows():
    c = card()
    assert set(c["study"]) == {"distillation", "faithfulness", "response_source",
                               "generalization", "data_scaling"}  # fmt: skip
    got = c[c["study"] == "distillation"].set_index("claim")["verdict"].to_dict()
    assert got == {
        "cot_after_gt_cot_before": "supported",
        "cot_after_gt_label_only": "contradicted",
        "shuffled_gt_label_only": "inconclusive",
        "key_tokens_eq_cot_after": "equivalent",
        "key_tokens_gt_random_tokens": "not_tested",
    }
    missing = c[c["study"] == "generalization"]
    assert set(missing["verdict"]) == {"not_tested"}
    assert missing["reason"].str.contains("not configured").all()
    tables.to_arrow(c, "scorecard")
    counts = scorecard.counts(c).set_index("study")
    assert (
        counts.loc["distillation", "supported"] == 1
        and counts.loc["data_scaling", "not_tested"] == 2
    )


def test_unknown_claims_are_named():
    frame = pd.DataFrame(distillation_rows(), columns=claims.SCHEMA.names)
    frame.loc[0, "claim"] = "made_up"
    assert scorecard.unknown_claims([frame], HEADLINES) == ["distillation/made_up"]


def test_cli_prints_the_scorecard_and_json(tmp_path, capsys):
    path = tmp_path / "scorecard.parquet"
    tables.write(card(), path, "scorecard")
    assert cli.main(["scorecard", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    for verdict in ("SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "EQUIVALENT", "NOT_TESTED"):
        assert verdict in out
    assert "+0.100 [+0.050, +0.150]" in out and "paper: CoT after the label" in out
    assert cli.main(["scorecard", "--file", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(card()) and rows[0]["study"] == "distillation"
    untested = [r for r in rows if r["verdict"] == "not_tested" and r["task"] == ""]
    assert untested and all(r["effect"] is None or math.isnan(r["effect"]) for r in untested)


def test_cli_names_a_missing_scorecard(tmp_path, capsys):
    assert cli.main(["scorecard", "--file", str(tmp_path / "nope.parquet")]) == 2
    assert "nope.parquet" in capsys.readouterr().err
