"""The lab database: one DuckDB view per artifact family, so results can be queried without paths.

`results/analysis/lab.duckdb` holds views only (no copies of data) over the Parquet globs, e.g.
`eval` = `read_parquet('results/eval/**/*.parquet', union_by_name=true)`. Globs are RELATIVE to
the workflow directory (the parent of `results/`), so the database keeps working when the project
is moved or copied: open it from that directory (`duckdb results/analysis/lab.duckdb`), or with
`connect()` / `ftlab query`, which point DuckDB's `file_search_path` at it from anywhere. Every
view has a `path` column: the file a row came from, relative to the workflow directory, the same
string as `provenance.artifact`, so any row joins with its provenance.

A family with no files yet still gets a view: empty, typed from its schema in `tables.py`, so a
query written today keeps working on a half-finished run.
"""

from __future__ import annotations

import glob
import html
import os
from pathlib import Path

import duckdb
import pandas as pd

from . import familiarity, runs, scorecard, tables  # noqa: F401 (familiarity, scorecard: register their schemas)

# view name -> (schema in tables.SCHEMAS, globs relative to the workflow directory)
FAMILIES: dict[str, tuple[str, list[str]]] = {
    "tasks": ("tasks", ["results/data/tasks/*.parquet"]),
    "quarantine": ("quarantine", ["results/data/quarantine/*.parquet"]),
    "rationales": ("rationales", ["results/rationales/**/*.parquet"]),
    "trainsets": ("trainset", ["results/trainsets/**/*.parquet"]),
    "train_log": (
        "train_log",
        ["results/models/*/train_log.parquet", "results/runs/**/train_log.parquet"],
    ),
    "eval": ("eval", ["results/eval/**/*.parquet"]),
    "faithfulness": ("faithfulness", ["results/faithfulness/**/*.parquet"]),
    "familiarity": ("familiarity", ["results/familiarity/**/*.parquet"]),
    "provenance": ("provenance", ["results/analysis/provenance.parquet"]),
    "audit": ("audit", ["results/analysis/audit.parquet"]),
    "claims": ("claims", ["results/analysis/claims.parquet"]),  # every study's claims rows
    "scorecard": ("scorecard", ["results/analysis/scorecard.parquet"]),
}
# columns a family's files do not store but its path tells (train_log: whose log it is)
EXTRA = {
    "train_log": (
        "run",
        r"regexp_extract(path, '^results/(?:runs|models)/(.*)/train_log\.parquet$', 1)",
    )
}
SUMMARIES = "results/analysis/*.parquet"  # each other file here gets a view summary_<stem>

# The file a row came from, relative to the workflow directory whether DuckDB resolved the glob
# against the current directory (relative filename) or against file_search_path (absolute).
PATH_EXPR = (
    "CASE WHEN starts_with(filename, current_setting('file_search_path') || '/') "
    "THEN filename[length(current_setting('file_search_path')) + 2:] ELSE filename END"
)

# Derived views: a base model or fine-tuned run per row, joinable with eval.run / faithfulness.run.
_PART = f"NULLIF(regexp_extract(run, '{runs.RUN_PATTERN}', {{}}), '')"
DERIVED = {
    "runs": f"""
        SELECT DISTINCT
            run,
            CASE WHEN artifact LIKE 'results/runs/%' THEN 'finetuned' ELSE 'base' END AS kind,
            {_PART.format(1)} AS study,
            {_PART.format(2)} AS variant,
            {_PART.format(3)} AS task,
            TRY_CAST({_PART.format(4)} AS BIGINT) AS seed,
            artifact AS path, rule, config_hash, commit, dirty, device, started, finished
        FROM provenance
        WHERE artifact LIKE 'results/runs/%' OR artifact LIKE 'results/models/%'
    """,
}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _empty_view_sql(table: str) -> str:
    """SELECT of zero rows with the columns and types of a tables.py schema (+ path)."""
    sch = tables.schema(table)
    types = duckdb.from_arrow(sch.empty_table()).types
    cols = [f"CAST(NULL AS {t}) AS {_ident(n)}" for n, t in zip(sch.names, types, strict=True)]
    return f"SELECT {', '.join(cols)}, CAST(NULL AS VARCHAR) AS path WHERE false"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parquet_view_sql(globs: list[str]) -> str:
    files = ", ".join(_lit(g) for g in globs)
    return (
        f"SELECT * EXCLUDE (filename), {PATH_EXPR} AS path "
        f"FROM read_parquet([{files}], filename=true, union_by_name=true)"
    )


def view_sql(root: str | os.PathLike) -> dict[str, str]:
    """name -> SELECT for every view, given which globs match under `root` right now."""
    root = Path(root)
    found = lambda g: glob.glob(g, root_dir=root, recursive=True)  # noqa: E731
    out = {}
    for name, (table, globs) in FAMILIES.items():
        present = [g for g in globs if found(g)]
        sql = _parquet_view_sql(present) if present else _empty_view_sql(table)
        if name in EXTRA:
            col, expr = EXTRA[name]
            sql = f"SELECT *, {expr} AS {col} FROM ({sql})"
        out[name] = sql
    out.update({name: sql.strip() for name, sql in DERIVED.items()})
    own = {Path(g).name for _, globs in FAMILIES.values() for g in globs}
    for f in sorted(found(SUMMARIES)):
        if Path(f).name not in own:
            out[f"summary_{Path(f).stem}"] = _parquet_view_sql([Path(f).as_posix()])
    return out


def build(db_path: str | os.PathLike, root: str | os.PathLike = ".") -> list[str]:
    """(Re)create the database at `db_path` with a view per family; returns the view names.

    Written to a temp file and renamed, so a reader never sees a half-built database.
    """
    db_path, root = Path(db_path), Path(root).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(f".{db_path.name}.tmp")
    tmp.unlink(missing_ok=True)
    views = view_sql(root)
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"SET file_search_path = {_lit(root.as_posix())}")
        for name, sql in views.items():
            con.execute(f"CREATE VIEW {_ident(name)} AS {sql}")
    finally:
        con.close()
    os.replace(tmp, db_path)
    return list(views)


def root_of(db_path: str | os.PathLike) -> Path:
    """The workflow directory of a lab database at <root>/results/analysis/lab.duckdb."""
    return Path(db_path).resolve().parents[2]


def connect(
    db_path: str | os.PathLike = "results/analysis/lab.duckdb",
) -> duckdb.DuckDBPyConnection:
    """Open the lab database read-only, resolving its relative globs from its workflow directory."""
    if not Path(db_path).exists():
        raise FileNotFoundError(f"no lab database at {db_path} (run: snakemake build_lab)")
    con = duckdb.connect(str(db_path), read_only=True)
    con.execute(f"SET file_search_path = {_lit(root_of(db_path).as_posix())}")
    return con


def query(sql: str, db_path: str | os.PathLike = "results/analysis/lab.duckdb") -> pd.DataFrame:
    con = connect(db_path)
    try:
        rel = con.sql(sql)
        return rel.df() if rel is not None else pd.DataFrame()
    finally:
        con.close()


def render_html(frame: pd.DataFrame, title: str, max_rows: int = 500) -> str:
    """A table as a small standalone HTML page (the report embeds it as is)."""
    title = html.escape(title)
    shown = frame.head(max_rows)
    note = f"<p>first {max_rows} of {len(frame)} rows</p>" if len(frame) > max_rows else ""
    table = shown.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4g}", border=0)
    style = "table{border-collapse:collapse;font:13px sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body><h3>{title}</h3>{note}{table}</body></html>\n"
    )
