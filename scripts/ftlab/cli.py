"""The `ftlab` command: audit the artifacts of a run, query the lab database.

ftlab audit [results_dir]        exit 1 and name the paths if any recorded input changed
ftlab query "SELECT ..." [--db results/analysis/lab.duckdb]
ftlab scorecard [--json] [--file results/analysis/scorecard.parquet]
ftlab gates [--file results/analysis/gates.parquet]   exit 1 if any gate failed
ftlab ship MODEL_DIR DEST [--root RUN_DIR]   a pretrained embedded model -> a shipped checkpoint
"""

from __future__ import annotations

import argparse
import sys

import duckdb
import pandas as pd

from . import audit, gates, lab, scorecard, tables


def _print(df: pd.DataFrame, max_rows: int) -> None:
    with pd.option_context("display.max_colwidth", 120, "display.width", 200):
        print(df.to_string(index=False, max_rows=max_rows) if len(df.columns) else "(no rows)")


def _audit(args) -> int:
    result = audit.run(args.results_dir)
    if result.ok:
        print(result.report()["message"].iloc[0])
        return 0
    _print(result.findings[["kind", "artifact", "input", "message"]], args.max_rows)
    print(f"{len(result.findings)} finding(s) in {args.results_dir}", file=sys.stderr)
    return 1


def _query(args) -> int:
    _print(lab.query(args.sql, args.db), args.max_rows)
    return 0


def _scorecard(args) -> int:
    card = tables.read(args.file, "scorecard")
    print(scorecard.to_json(card) if args.json else scorecard.to_text(card))
    if not args.json:
        _print(scorecard.counts(card), args.max_rows)
    return 0


def _gates(args) -> int:
    result = tables.read(args.file, "gates")
    print(gates.to_text(result))
    return 0 if result["passed"].all() else 1


def _ship(args) -> int:
    from . import checkpoints  # torch + transformers: only this command needs them

    dest = checkpoints.ship(args.model_dir, args.dest, args.root)
    print(f"shipped {args.model_dir} -> {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftlab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("audit", help="check every artifact's recorded input hashes")
    p.add_argument("results_dir", nargs="?", default="results")
    p.set_defaults(func=_audit)
    p = sub.add_parser("query", help="run SQL against the lab database's views")
    p.add_argument("sql")
    p.add_argument("--db", default="results/analysis/lab.duckdb")
    p.set_defaults(func=_query)
    p = sub.add_parser(
        "scorecard", help="every seed paper's headline claims and this run's verdict"
    )
    p.add_argument("--file", default="results/analysis/scorecard.parquet")
    p.add_argument("--json", action="store_true", help="the rows as JSON, for scripts")
    p.set_defaults(func=_scorecard)
    p = sub.add_parser("gates", help="can this run resolve the claims? exit 1 if a gate failed")
    p.add_argument("--file", default="results/analysis/gates.parquet")
    p.set_defaults(func=_gates)
    p = sub.add_parser(
        "ship", help="copy a model pretrained here into a checkpoint (make pretrain)"
    )
    p.add_argument("model_dir")
    p.add_argument("dest")
    p.add_argument("--root", default=".", help="the run directory its provenance paths are in")
    p.set_defaults(func=_ship)
    for p in sub.choices.values():
        p.add_argument("--max-rows", type=int, default=200, help="rows printed at most")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, duckdb.Error) as e:  # a message, not a traceback
        print(f"ftlab {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
