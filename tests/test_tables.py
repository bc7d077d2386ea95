"""tables: the one way to write and read a Parquet table: schema-checked both ways, provenance in
its metadata, atomic (a failed write leaves nothing behind), and study schemas by `register`."""

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from factories import tiny_tasks

from ftlab import tables


def quarantine_frame():
    return pd.DataFrame(
        {
            "task": ["t", "t"],
            "source": ["a.jsonl", "a.jsonl"],
            "row": [2, 5],
            "reason": ["missing or empty question", "repeated question (same as a.jsonl row 1)"],
            "raw": ['{"question": ""}', '{"question": "q?"}'],
        }
    )


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- round trip -----------------------------------------------------------------------------------


def test_write_then_read_round_trips_rows_types_and_provenance(tmp_path):
    df = tiny_tasks(5)
    record = {"rule": "prepare_task", "config_hash": "abc", "inputs": {"x": "0" * 64}, "seed": 3}
    path = tables.write(df, tmp_path / "deep" / "t.parquet", "tasks", record)
    assert path == tmp_path / "deep" / "t.parquet"  # parent directories are created
    back = tables.read(path, "tasks")
    pd.testing.assert_frame_equal(back, df)
    assert back.loc[5, "choices"].tolist() == ["dog", "duck"] and back.loc[0, "choices"] is None
    assert tables.provenance(path) == record
    meta = pq.read_schema(path).metadata
    assert meta[tables.TABLE_KEY] == b"tasks"
    assert json.loads(meta[tables.PROVENANCE_KEY]) == record


def test_read_without_a_name_uses_the_stored_one_and_rejects_another(tmp_path):
    path = tables.write(quarantine_frame(), tmp_path / "q.parquet", "quarantine")
    pd.testing.assert_frame_equal(tables.read(path), quarantine_frame())
    with pytest.raises(tables.SchemaError, match=r"q\.parquet: is a 'quarantine' table, expected"):
        tables.read(path, "tasks")


def test_provenance_is_empty_when_none_was_given_or_the_file_has_none(tmp_path):
    path = tables.write(quarantine_frame(), tmp_path / "q.parquet", "quarantine")
    assert tables.provenance(path) == {}
    plain = tmp_path / "plain.parquet"
    quarantine_frame().to_parquet(plain)
    assert tables.provenance(plain) == {}


def test_provenance_values_that_are_not_json_are_stored_as_text(tmp_path):
    path = tables.write(
        quarantine_frame(), tmp_path / "q.parquet", "quarantine", {"input": tmp_path / "in.csv"}
    )
    assert tables.provenance(path) == {"input": str(tmp_path / "in.csv")}


def test_columns_are_written_in_schema_order_without_the_index(tmp_path):
    df = quarantine_frame()[["raw", "row", "task", "reason", "source"]]
    df.index = [10, 20]
    path = tables.write(df, tmp_path / "q.parquet", "quarantine")
    assert pq.read_schema(path).names == ["task", "source", "row", "reason", "raw"]
    pd.testing.assert_frame_equal(tables.read(path), quarantine_frame())


def test_a_written_file_is_readable_by_others(tmp_path):
    path = tables.write(quarantine_frame(), tmp_path / "q.parquet", "quarantine")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# --- schema mismatches name the table and the column ----------------------------------------------


def test_a_missing_column_is_named(tmp_path):
    with pytest.raises(tables.SchemaError) as error:
        tables.write(
            quarantine_frame().drop(columns="reason"), tmp_path / "q.parquet", "quarantine"
        )
    assert "table 'quarantine'" in str(error.value)
    assert "missing columns ['reason']" in str(error.value)
    assert not (tmp_path / "q.parquet").exists()


def test_an_unexpected_column_is_named(tmp_path):
    df = quarantine_frame().assign(extra=1)
    with pytest.raises(
        tables.SchemaError, match=r"table 'quarantine': .*unexpected columns \['extra'\]"
    ):
        tables.write(df, tmp_path / "q.parquet", "quarantine")


def test_a_value_of_the_wrong_type_names_the_table_and_column(tmp_path):
    df = quarantine_frame().astype({"row": object})
    df.loc[1, "row"] = "five"
    with pytest.raises(tables.SchemaError) as error:
        tables.write(df, tmp_path / "q.parquet", "quarantine")
    assert str(error.value).startswith("table 'quarantine': ")
    assert "column row" in str(error.value)
    assert leftovers(tmp_path) == []


def test_read_rejects_a_file_whose_column_types_differ(tmp_path):
    path = tmp_path / "t.parquet"
    df = tiny_tasks(3).head(3).drop(columns="choices").assign(choices=None)  # order, types off
    df["answer"] = df["answer"].astype(int)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    with pytest.raises(tables.SchemaError) as error:
        tables.read(path, "tasks")
    message = str(error.value)
    assert message.startswith(f"{path}: columns do not match the 'tasks' schema")
    assert "answer: int64" in message and "answer: string" in message


def test_an_unknown_table_lists_the_known_ones(tmp_path):
    with pytest.raises(tables.SchemaError, match=r"unknown table 'taks'; known: \[.*'tasks'"):
        tables.write(tiny_tasks(2), tmp_path / "t.parquet", "taks")


# --- atomic: a failed write leaves no file that looks complete ------------------------------------


def test_a_failed_write_leaves_no_file_and_no_temp_file(tmp_path, monkeypatch):
    def crash(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")  # a partial write, then the job dies
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        tables.write(quarantine_frame(), tmp_path / "q.parquet", "quarantine")
    assert leftovers(tmp_path) == []


def test_a_failed_rewrite_keeps_the_previous_file_whole(tmp_path, monkeypatch):
    path = tables.write(quarantine_frame(), tmp_path / "q.parquet", "quarantine", {"run": 1})

    def crash(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        tables.write(quarantine_frame().head(1), path, "quarantine", {"run": 2})
    assert leftovers(tmp_path) == ["q.parquet"]
    pd.testing.assert_frame_equal(tables.read(path), quarantine_frame())
    assert tables.provenance(path) == {"run": 1}


def test_a_schema_error_writes_nothing_at_all(tmp_path):
    target = tmp_path / "new" / "q.parquet"
    with pytest.raises(tables.SchemaError):
        tables.write(quarantine_frame().drop(columns="raw"), target, "quarantine")
    assert not target.parent.exists()


def test_atomic_dir_appears_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), tables.atomic_dir(target) as work:
        (work / "weights.bin").write_bytes(b"half")
        raise RuntimeError("killed")
    assert leftovers(tmp_path) == []
    (tmp_path / ".model.stale.tmp").mkdir()  # left by a killed earlier attempt
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    with tables.atomic_dir(target) as work:
        (work / "weights.bin").write_bytes(b"whole")
        assert not (target / "weights.bin").exists()  # nothing visible until the block ends
    assert leftovers(tmp_path) == ["model"]  # the stale temp directory is gone too
    assert leftovers(target) == ["weights.bin"]  # the new directory replaced the old one
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask


# --- study schemas: tables.register ---------------------------------------------------------------

STUDY_SCHEMA = pa.schema([("run", pa.string()), ("score", pa.float64()), ("n", pa.int64())])


@pytest.fixture
def registry(monkeypatch):
    """tables.SCHEMAS as it is, restored after the test."""
    monkeypatch.setattr(tables, "SCHEMAS", dict(tables.SCHEMAS))
    return tables.SCHEMAS


def test_a_registered_study_table_is_written_and_read_like_a_shared_one(registry, tmp_path):
    assert tables.register("study_scores", STUDY_SCHEMA) is STUDY_SCHEMA
    assert tables.schema("study_scores").equals(STUDY_SCHEMA)
    df = pd.DataFrame({"run": ["a", "b"], "score": [0.5, 1.0], "n": [3, 4]})
    path = tables.write(df, tmp_path / "s.parquet", "study_scores", {"study": "x"})
    pd.testing.assert_frame_equal(tables.read(path), df)
    with pytest.raises(tables.SchemaError, match=r"table 'study_scores': missing columns \['n'\]"):
        tables.write(df.drop(columns="n"), tmp_path / "s2.parquet", "study_scores")


def test_registering_a_name_again_needs_the_same_schema(registry):
    tables.register("study_scores", STUDY_SCHEMA)
    same = pa.schema([("run", pa.string()), ("score", pa.float64()), ("n", pa.int64())])
    assert tables.register("study_scores", same).equals(STUDY_SCHEMA)  # a module re-imported
    other = pa.schema([("run", pa.string()), ("score", pa.float32()), ("n", pa.int64())])
    with pytest.raises(tables.SchemaError, match="'study_scores' is already declared"):
        tables.register("study_scores", other)
    assert tables.schema("study_scores").equals(STUDY_SCHEMA)  # the first one still holds
    with pytest.raises(tables.SchemaError, match="'tasks' is already declared"):
        tables.register("tasks", STUDY_SCHEMA)  # nor can a study replace a shared schema
