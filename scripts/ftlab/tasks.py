"""Task tables: one typed, split, de-duplicated table per task, from any of three sources.

* embedded: a seeded reasoning-gym generator; ftlab's solvers write the gold rationales.
* file: a local JSONL / CSV / Parquet file, with a column mapping.
* hf: `datasets.load_dataset` (or `load_from_disk` for a local `save_to_disk` directory).

The readers live in `task_sources.py`; this module maps columns, checks rows and splits. A task
may start from a preset (`presets.py`). The column mapping (`columns:`) names a source column, or a
dotted path into a nested one (`choices.text`, `answers.text.0`), for each field, plus a few
declarative transforms for real schemas: `question_template` composes the question from several
columns, `answer_labels` maps label ids (or booleans) to answers, `answer_pattern` pulls the answer
out of a longer text (what precedes it becomes the rationale), `rationale_remove` deletes noise.

Every row is checked; a bad row stops the job naming the file and the row, or (with
`on_bad_rows: skip`) goes to the quarantine table. Repeated questions are dropped so that the
splits are disjoint: counted in the log, and with `on_bad_rows: skip` also quarantined, each
naming the row whose copy was kept. Nothing disappears without a trace.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ftlab import presets, task_columns, task_sources
from ftlab.task_sources import SPLITS, TASK_COLUMNS, example_id

log = logging.getLogger(__name__)

__all__ = ["SPLITS", "TASK_COLUMNS", "TaskSpec", "example_id", "prepare"]

COLUMN_DEFAULTS = {
    "id": None,
    "question": "question",
    "answer": "answer",
    "rationale": None,
    "choices": None,
    "split": None,
    "question_template": None,
    "answer_labels": None,
    "answer_pattern": None,
    "rationale_remove": None,
}
QUARANTINE_COLUMNS = ["task", "source", "row", "reason", "raw"]
HIDDEN = ["_key", "_source", "_row"]  # a collected row's dedupe key, and where it came from


@dataclass(frozen=True)
class TaskSpec:
    """A task's config entry (`tasks.<name>`), with the schema's defaults filled in."""

    name: str
    source: str
    task_type: str = "numeric"
    preset: str | None = None
    generator: str | None = None
    generator_config: dict = field(default_factory=dict)
    path: str | None = None
    hf_name: str | None = None
    hf_splits: dict = field(default_factory=dict)
    revision: str | None = None
    columns: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    seed: int = 0
    on_bad_rows: str = "error"

    @classmethod
    def from_config(cls, name: str, spec: dict) -> TaskSpec:
        spec = presets.apply(name, spec)
        if not spec.get("source"):
            raise ValueError(f"tasks.{name}.source: required (or a preset that sets it)")
        if spec["source"] != "embedded" and not spec.get("path"):
            raise ValueError(f"tasks.{name}.path: required for source {spec['source']!r}")
        columns = COLUMN_DEFAULTS | dict(spec.get("columns") or {})
        if columns["answer_labels"] is not None:
            columns["answer_labels"] = {
                task_columns.label_key(k): str(v) for k, v in columns["answer_labels"].items()
            }
        for key in ("answer_pattern", "rationale_remove"):
            if columns[key]:
                try:
                    re.compile(columns[key])
                except re.error as e:
                    raise ValueError(
                        f"tasks.{name}.columns.{key}: not a valid regex ({e})"
                    ) from None
        sizes = {"train": 1000, "validation": 100, "test": 200} | dict(spec.get("sizes") or {})
        return cls(
            name=name,
            source=spec["source"],
            task_type=spec.get("task_type", "numeric"),
            preset=spec.get("preset"),
            generator=spec.get("generator"),
            generator_config=dict(spec.get("generator_config") or {}),
            path=spec.get("path"),
            hf_name=spec.get("name"),
            hf_splits=dict(spec.get("hf_splits") or {}),
            revision=spec.get("revision"),
            columns=columns,
            sizes={s: int(sizes[s]) for s in SPLITS},
            seed=int(spec.get("seed", 0)),
            on_bad_rows=spec.get("on_bad_rows", "error"),
        )


def prepare(name: str, spec: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tasks table, quarantine table) for task `name` configured by `spec` (preset applied)."""
    s = TaskSpec.from_config(name, spec)
    if s.source == "embedded":
        table, quarantine = _assign_splits(task_sources.embedded(s), s), _quarantine_frame([])
    else:
        if s.source == "file":
            frames = task_sources.read_file(s.path)
        else:
            frames = task_sources.read_hf(s)
        table, quarantine = from_records(s, frames)
    counts = table["split"].value_counts().to_dict()
    log.info("task %s: %s, %d quarantined", name, counts, len(quarantine))
    return table, quarantine


def _assign_splits(table: pd.DataFrame, s: TaskSpec) -> pd.DataFrame:
    """Seeded shuffle, then the first `sizes.test` rows are test, the next validation, then train."""
    order = np.random.default_rng(s.seed).permutation(len(table))
    table = table.iloc[order].reset_index(drop=True)
    bounds = np.cumsum([s.sizes["test"], s.sizes["validation"], s.sizes["train"]])
    labels = np.full(len(table), None, dtype=object)
    for split, lo, hi in zip(
        ("test", "validation", "train"), [0, *bounds[:-1]], bounds, strict=True
    ):
        labels[lo:hi] = split
    table["split"] = labels
    return _ordered(table[table["split"].notna()])


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    rank = table["split"].map({s: i for i, s in enumerate(SPLITS)})
    return (
        table.assign(_rank=rank)
        .sort_values("_rank", kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def _row(s: TaskSpec, eid, question, choices, answer, rationale, meta, split=None) -> dict:
    return {
        "example_id": eid,
        "task": s.name,
        "split": split,
        "task_type": s.task_type,
        "question": question,
        "choices": choices,
        "answer": answer,
        "gold_rationale": rationale,
        "metadata": meta,
    }


# --- rows from files and hub datasets ------------------------------------------------------------


def from_records(
    s: TaskSpec, frames: list[tuple[str, pd.DataFrame]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check and map raw rows; bad rows raise or go to quarantine; then de-duplicate and split."""
    cols = s.columns
    paths = task_columns.paths(cols)
    for label, df in frames:
        missing = [p for p in paths if not task_columns.present(p, df.columns)]
        if missing:
            raise ValueError(
                f"{label}: missing column(s) {missing} (tasks.{s.name}.columns maps "
                f"{ {k: v for k, v in cols.items() if v} }; file has {list(df.columns)})"
            )
    rows, bad, seen_ids = [], [], set()
    raws = []  # the raw record of each kept row, to quarantine a repeated question (skip only)
    for label, df in frames:
        mapped = (
            {p.split(".")[0] for p in paths} | set(paths) | {"__split__", "__error__", "__raw__"}
        )
        for i, raw in enumerate(df.to_dict(orient="records"), start=1):
            try:
                row = _check_row(s, raw, mapped)
                if row["example_id"] in seen_ids and cols["id"] is not None:
                    raise task_columns.BadRow(f"duplicate id {row['example_id']!r}")
                seen_ids.add(row["example_id"])
                rows.append(row | {"_source": label, "_row": i})
                if s.on_bad_rows == "skip":
                    raws.append(raw)
            except task_columns.BadRow as e:
                if s.on_bad_rows != "skip":
                    raise ValueError(
                        f"{label}: row {i}: {e} (set tasks.{s.name}.on_bad_rows: skip "
                        "to quarantine bad rows instead)"
                    ) from None
                bad.append(_bad_row(s, label, i, str(e), raw))
    if bad:
        log.warning("task %s: %d bad rows quarantined", s.name, len(bad))
    table, repeats = _dedupe(s, pd.DataFrame(rows, columns=[*TASK_COLUMNS, *HIDDEN]))
    if s.on_bad_rows == "skip" and repeats:  # with error, a repeat is dropped (and logged) only
        bad += [_bad_row(s, source, i, reason, raws[pos]) for source, i, reason, pos in repeats]
        order = {label: n for n, (label, _) in enumerate(frames)}
        bad.sort(key=lambda b: (order[b["source"]], b["row"]))
    if table["split"].isna().all():
        need = sum(s.sizes.values())
        if len(table) < need:
            raise ValueError(
                f"tasks.{s.name}.sizes: ask for {need} examples but the source has "
                f"{len(table)} usable unique questions"
            )
        if len(table) > need:
            log.info(
                "task %s: using %d of %d examples (tasks.%s.sizes)",
                s.name,
                need,
                len(table),
                s.name,
            )
        return _assign_splits(table, s), _quarantine_frame(bad)
    if table["split"].isna().any():
        raise ValueError(f"tasks.{s.name}: some rows have a split and some do not")
    return _cap_splits(table, s), _quarantine_frame(bad)


def _bad_row(s: TaskSpec, source: str, row: int, reason: str, raw: dict) -> dict:
    """One quarantine row (the `quarantine` table's columns)."""
    raw_text = task_columns.dumps(raw)
    return {"task": s.name, "source": source, "row": row, "reason": reason, "raw": raw_text}


def _check_row(s: TaskSpec, raw: dict, mapped: set) -> dict:
    if raw.get("__error__") is not None and not task_columns.missing(raw.get("__error__")):
        raise task_columns.BadRow(raw["__error__"])
    cols = s.columns
    question, choices, answer, rationale = task_columns.fields(cols, raw)
    split = (
        raw.get("__split__")
        if "__split__" in raw
        else (task_columns.get(raw, cols["split"]) if cols["split"] else None)
    )
    if split is not None and split not in SPLITS:
        raise task_columns.BadRow(f"split {split!r} is not one of {list(SPLITS)}")
    if cols["id"]:
        eid = task_columns.text(task_columns.get(raw, cols["id"]), "id", numbers_ok=True)
    else:
        eid = example_id(s.name, question, choices)
    extra = {k: v for k, v in raw.items() if k not in mapped}
    row = _row(s, eid, question, choices, answer, rationale, task_columns.dumps(extra), split)
    row["_key"] = example_id(s.name, question, choices)
    return row


def _dedupe(s: TaskSpec, table: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple]]:
    """Keep the first copy of each question (train before validation before test).

    Returns the kept rows, and one `(source, row, reason, position)` per dropped copy: the reason
    names the row that was kept, `position` indexes the rows as `from_records` collected them.
    """
    rank = table["split"].map({sp: i for i, sp in enumerate(SPLITS)}).fillna(0)
    table = table.assign(_rank=rank, _pos=range(len(table))).sort_values("_rank", kind="stable")
    dup = table["_key"].duplicated()
    repeats = []
    if dup.any():
        kept = table[~dup].set_index("_key")
        for r in table[dup].to_dict(orient="records"):
            first = kept.loc[r["_key"]]
            where = f"{first['_source']} row {first['_row']}"
            if pd.notna(first["split"]):
                where += f", kept in {first['split']}"
            reason = f"repeated question (same as {where})"
            repeats.append((r["_source"], int(r["_row"]), reason, int(r["_pos"])))
        by_split = table.loc[dup, "split"].value_counts().to_dict()
        log.info(
            "task %s: %d repeated questions dropped%s%s",
            s.name,
            int(dup.sum()),
            f" (from {by_split})" if by_split else "",
            " and quarantined" if s.on_bad_rows == "skip" else "",
        )
    hidden = ["_rank", "_pos", *HIDDEN]
    return table[~dup].drop(columns=hidden).reset_index(drop=True), repeats


def _cap_splits(table: pd.DataFrame, s: TaskSpec) -> pd.DataFrame:
    """A source's own splits, each cut to `sizes` after a seeded shuffle (logged when cut)."""
    parts = []
    for split in SPLITS:
        part = table[table["split"] == split]
        if len(part) > s.sizes[split]:
            log.info(
                "task %s: using %d of %d %s examples (tasks.%s.sizes.%s)",
                s.name,
                s.sizes[split],
                len(part),
                split,
                s.name,
                split,
            )
            keep = np.sort(np.random.default_rng(s.seed).permutation(len(part))[: s.sizes[split]])
            part = part.iloc[keep]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _quarantine_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=QUARANTINE_COLUMNS).astype({"row": "int64"})
