"""Every Parquet table ftlab writes: its schema, and the one way to write and read it.

The shared stages' schemas live here; a study declares its own tables with `register` in the
module that writes them, so a study's schema edit reruns only that study. `write` checks a frame against its schema, attaches
provenance as key-value metadata and renames a temp file into place, so an interrupted job never
leaves a file that looks complete. `read` checks the schema again on the way in.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PROVENANCE_KEY = b"ftlab.provenance"
TABLE_KEY = b"ftlab.table"

_str = pa.string()
_strs = pa.list_(pa.string())

SCHEMAS: dict[str, pa.Schema] = {
    # one row per example of a task (prepare_task)
    "tasks": pa.schema(
        [
            ("example_id", _str),
            ("task", _str),
            ("split", _str),
            ("task_type", _str),
            ("question", _str),
            ("choices", _strs),
            ("answer", _str),
            ("gold_rationale", _str),
            ("metadata", _str),
        ]
    ),
    # rows a task source rejected, kept with the reason (prepare_task with on_bad_rows: skip)
    "quarantine": pa.schema(
        [("task", _str), ("source", _str), ("row", pa.int64()), ("reason", _str), ("raw", _str)]
    ),
    # one row per optimiser step (build_model, finetune)
    "train_log": pa.schema(
        [
            ("step", pa.int64()),
            ("loss", pa.float64()),
            ("lr", pa.float64()),
            ("tokens", pa.int64()),
            ("seconds", pa.float64()),
            ("tokens_per_s", pa.float64()),
        ]
    ),
    # one row per example x mode (evaluate)
    "eval": pa.schema(
        [
            ("example_id", _str),
            ("task", _str),
            ("run", _str),
            ("mode", _str),
            ("prompt", _str),
            ("generation", _str),
            ("rationale", _str),
            ("parsed_answer", _str),
            ("parse_ok", pa.bool_()),
            ("answer", _str),
            ("correct", pa.bool_()),
            ("prompt_tokens", pa.int64()),
            ("generated_tokens", pa.int64()),
        ]
    ),
    # one row per train/validation question (generate_rationales)
    "rationales": pa.schema(
        [
            ("example_id", _str),
            ("task", _str),
            ("split", _str),
            ("teacher", _str),
            ("prompt", _str),
            ("prompt_hash", _str),
            ("rationale", _str),
            ("parsed_answer", _str),
            ("answer", _str),
            ("correct", pa.bool_()),
            ("kept", pa.bool_()),
            ("prompt_tokens", pa.int64()),
            ("rationale_tokens", pa.int64()),
            ("decoding", _str),
        ]
    ),
    # one row per training example of a study variant (build_trainset)
    "trainset": pa.schema(
        [
            ("example_id", _str),
            ("task", _str),
            ("study", _str),
            ("variant", _str),
            ("prompt", _str),
            ("completion", _str),
            ("source", _str),
        ]
    ),
    # one row per example x faithfulness test x level (score_faithfulness)
    "faithfulness": pa.schema(
        [
            ("example_id", _str),
            ("task", _str),
            ("run", _str),
            ("test", _str),
            ("level", pa.float64()),
            ("condition", _str),  # truncated|full|mistake|paraphrased|no_cot|filler|real_cot|none
            ("cot", _str),  # the (edited) CoT the answer was read after
            ("answer", _str),
            ("full_cot_answer", _str),
            ("same_as_full", pa.bool_()),
            ("correct", pa.bool_()),
            ("reason", _str),
        ]
    ),
    # one row per artifact -> recorded input edge (audit); input None for an artifact without inputs
    "provenance": pa.schema(
        [
            ("artifact", _str),
            ("artifact_sha256", _str),
            ("run", _str),
            ("rule", _str),
            ("input", _str),
            ("input_sha256", _str),
            ("config_hash", _str),
            ("commit", _str),
            ("dirty", pa.bool_()),
            ("packages", _str),
            ("seed", pa.int64()),
            ("device", _str),
            ("started", _str),
            ("finished", _str),
        ]
    ),
    # one row per audit finding, or one all-clear row (kind "ok") (audit)
    "audit": pa.schema(
        [
            ("kind", _str),
            ("artifact", _str),
            ("input", _str),
            ("recorded_sha256", _str),
            ("current_sha256", _str),
            ("message", _str),
        ]
    ),
}


class SchemaError(ValueError):
    """A table does not match its declared schema."""


def register(table: str, sch: pa.Schema) -> pa.Schema:
    """Declare a study's own table (called where the study defines it); the same name twice must
    mean the same schema."""
    if table in SCHEMAS and not SCHEMAS[table].equals(sch):
        raise SchemaError(f"table {table!r} is already declared with another schema")
    SCHEMAS[table] = sch
    return sch


def schema(table: str) -> pa.Schema:
    try:
        return SCHEMAS[table]
    except KeyError:
        raise SchemaError(f"unknown table {table!r}; known: {sorted(SCHEMAS)}") from None


def to_arrow(df: pd.DataFrame, table: str) -> pa.Table:
    """Frame -> Arrow table with exactly the declared columns, in order, with their types."""
    sch = schema(table)
    missing = [n for n in sch.names if n not in df.columns]
    extra = [c for c in df.columns if c not in sch.names]
    if missing or extra:
        raise SchemaError(f"table {table!r}: missing columns {missing}, unexpected columns {extra}")
    try:
        return pa.Table.from_pandas(df[sch.names], schema=sch, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaError(f"table {table!r}: {e}") from e


def atomic_path(path: str | os.PathLike) -> tuple[Path, Path]:
    """A temp path beside `path` (same filesystem, so the final rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are for the whole group to read
    return path, Path(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temp directory beside `path`, renamed into place only if the block succeeds.

    Temp directories left by a killed earlier attempt at the same output are removed first; the
    directory gets ordinary permissions (mkdtemp makes it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write(
    df: pd.DataFrame, path: str | os.PathLike, table: str, provenance: dict | None = None
) -> Path:
    """Write `df` as table `table` to `path` with provenance metadata, atomically."""
    arrow = to_arrow(df, table)
    meta = dict(arrow.schema.metadata or {})
    meta[TABLE_KEY] = table.encode()
    meta[PROVENANCE_KEY] = json.dumps(provenance or {}, sort_keys=True, default=str).encode()
    arrow = arrow.replace_schema_metadata(meta)
    final, tmp = atomic_path(path)
    try:
        pq.write_table(arrow, tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def read(path: str | os.PathLike, table: str | None = None) -> pd.DataFrame:
    """Read a table, checking its columns and types against the declared schema."""
    arrow = pq.read_table(path)
    stored = (arrow.schema.metadata or {}).get(TABLE_KEY, b"").decode()
    table = table or stored
    if stored and table != stored:
        raise SchemaError(f"{path}: is a {stored!r} table, expected {table!r}")
    sch = schema(table)
    got = arrow.schema.remove_metadata()
    if not got.equals(sch):
        raise SchemaError(f"{path}: columns do not match the {table!r} schema:\n{got}\n!=\n{sch}")
    return arrow.to_pandas()


def provenance(path: str | os.PathLike) -> dict:
    """The provenance dict stored in a Parquet file's metadata ({} if none)."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}
