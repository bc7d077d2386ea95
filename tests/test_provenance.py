"""provenance: the record every artifact carries. Config hashes ignore key order and nothing else,
file and directory hashes follow content only, the code version is the checkout's, and `collect`
records what a job read, with what, where and when (never a secret's value)."""

import hashlib
import json
import platform
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from factories import tiny_tasks

from ftlab import provenance, tables


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- config hashes --------------------------------------------------------------------------------


def test_config_hash_ignores_key_order_at_every_depth():
    a = {"lr": 0.01, "lora": {"r": 8, "alpha": 16}, "tasks": ["x", "y"]}
    b = {"tasks": ["x", "y"], "lora": {"alpha": 16, "r": 8}, "lr": 0.01}
    assert provenance.config_hash(a) == provenance.config_hash(b)
    assert provenance.stable_json(a) == provenance.stable_json(b)
    assert provenance.stable_json(a) == '{"lora":{"alpha":16,"r":8},"lr":0.01,"tasks":["x","y"]}'


@pytest.mark.parametrize(
    "other",
    [
        {"lr": 0.02, "lora": {"r": 8, "alpha": 16}, "tasks": ["x", "y"]},  # a value
        {"lr": 0.01, "lora": {"r": 8, "alpha": 16}, "tasks": ["y", "x"]},  # list order matters
        {"lr": 0.01, "lora": {"r": 8}, "tasks": ["x", "y"]},  # a key fewer
        {"lr": 0.01, "lora": {"r": "8", "alpha": 16}, "tasks": ["x", "y"]},  # a type
    ],
)
def test_config_hash_follows_every_value(other):
    base = {"lr": 0.01, "lora": {"r": 8, "alpha": 16}, "tasks": ["x", "y"]}
    assert provenance.config_hash(other) != provenance.config_hash(base)


def test_config_hash_is_short_hex_and_takes_values_json_cannot():
    h = provenance.config_hash({"path": Path("/data/x.jsonl")})
    assert len(h) == 16 and int(h, 16) >= 0
    assert h == provenance.config_hash({"path": "/data/x.jsonl"})  # stored as its text
    assert h == sha(b'{"path":"/data/x.jsonl"}')[:16]


# --- file and directory hashes --------------------------------------------------------------------


def test_sha256_file_is_the_content_hash_whatever_the_chunk(tmp_path):
    data = bytes(range(256)) * 50
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert provenance.sha256_file(path) == sha(data)
    assert provenance.sha256_file(path, chunk=7) == sha(data)
    assert provenance.sha256_path(path) == sha(data)
    (tmp_path / "empty").write_bytes(b"")
    assert provenance.sha256_file(tmp_path / "empty") == sha(b"")


def make_dir(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


FILES = {"config.json": b"{}", "model.safetensors": b"weights", "sub/tokenizer.json": b"tok"}


def test_directory_hash_is_the_sorted_relative_paths_and_file_hashes(tmp_path):
    d = make_dir(tmp_path / "m", FILES)
    expected = hashlib.sha256()
    for rel in sorted(FILES):
        expected.update(rel.encode() + b"\0" + sha(FILES[rel]).encode() + b"\n")
    assert provenance.sha256_path(d) == expected.hexdigest()


def test_directory_hash_ignores_creation_order_times_and_location(tmp_path):
    a = make_dir(tmp_path / "a", FILES)
    b = make_dir(tmp_path / "elsewhere" / "b", dict(reversed(list(FILES.items()))))
    (b / "empty_dir").mkdir()  # directories are not content, only files are
    assert provenance.sha256_path(a) == provenance.sha256_path(b)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: (d / "model.safetensors").write_bytes(b"weightz"),  # content
        lambda d: (d / "model.safetensors").rename(d / "model2.safetensors"),  # a name
        lambda d: (d / "sub" / "tokenizer.json").rename(d / "tokenizer.json"),  # a place
        lambda d: (d / "extra.txt").write_bytes(b""),  # a new file, even empty
        lambda d: (d / "sub" / "tokenizer.json").unlink(),  # a file less
    ],
)
def test_directory_hash_follows_every_file(tmp_path, edit):
    d = make_dir(tmp_path / "m", FILES)
    before = provenance.sha256_path(d)
    edit(d)
    assert provenance.sha256_path(d) != before


def test_directory_hash_skips_snakemake_markers_and_hidden_files(tmp_path):
    d = make_dir(tmp_path / "m", FILES)
    before = provenance.sha256_path(d)
    (d / ".snakemake_timestamp").write_text("123")
    (d / ".cache").mkdir()
    (d / ".cache" / "x").write_text("y")
    assert provenance.sha256_path(d) == before


def test_hash_of_a_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        provenance.sha256_path(tmp_path / "nope")


# --- code version ---------------------------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(root, *args):
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "checkout"
    root.mkdir()
    git(root, "init", "-q")
    (root / "code.py").write_text("x = 1\n")
    git(root, "add", "code.py")
    git(root, "commit", "-q", "-m", "first")
    provenance.code_version.cache_clear()
    yield root
    provenance.code_version.cache_clear()


@needs_git
def test_code_version_is_the_checkouts_commit_and_dirty_flag(checkout):
    clean = provenance.code_version(str(checkout))
    assert clean == {"commit": git(checkout, "rev-parse", "HEAD"), "dirty": False}
    (checkout / "notes.txt").write_text("untracked files do not make it dirty")
    provenance.code_version.cache_clear()
    assert provenance.code_version(str(checkout)) == clean
    (checkout / "code.py").write_text("x = 2\n")  # an uncommitted edit of tracked code
    provenance.code_version.cache_clear()
    assert provenance.code_version(str(checkout)) == {"commit": clean["commit"], "dirty": True}


@needs_git
def test_code_version_outside_a_checkout_is_unknown(tmp_path):
    provenance.code_version.cache_clear()
    assert provenance.code_version(str(tmp_path)) == {"commit": None, "dirty": None}


@needs_git
def test_code_version_defaults_to_the_checkout_holding_ftlab(tmp_path, monkeypatch):
    """Not the working directory: `snakemake -d elsewhere` keeps results outside the checkout."""
    root = Path(provenance.WORKFLOW_ROOT)
    assert (root / "scripts" / "ftlab" / "provenance.py").is_file()
    monkeypatch.chdir(tmp_path)  # no checkout here
    provenance.code_version.cache_clear()
    try:
        commit = provenance.code_version()["commit"]
    finally:
        provenance.code_version.cache_clear()
    if (root / ".git").exists():
        assert commit == git(root, "rev-parse", "HEAD")
    else:  # an exported copy of the workflow: unknown, not the working directory's
        assert commit is None


def test_package_versions_name_python_and_every_tracked_package(monkeypatch):
    monkeypatch.setattr(provenance, "PACKAGES", ("pandas", "no-such-package-ftlab"))
    provenance.package_versions.cache_clear()
    try:
        import pandas

        versions = provenance.package_versions()
        assert versions == {
            "python": platform.python_version(),
            "pandas": pandas.__version__,
            "no-such-package-ftlab": None,
        }
    finally:
        provenance.package_versions.cache_clear()


# --- collect --------------------------------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path):
    table = tmp_path / "t.parquet"
    table.write_bytes(b"table")
    model = make_dir(tmp_path / "model", FILES)
    extra = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for i, p in enumerate(extra):
        p.write_text(str(i))
    return {"table": str(table), "model": str(model), "extra": [str(p) for p in extra]}


@needs_git
def test_collect_records_the_job(inputs, checkout, monkeypatch):
    monkeypatch.setenv("FTLAB_TEST_KEY", "sk-do-not-record-me")
    config = {"lr": 0.01, "api_key_env": "FTLAB_TEST_KEY"}
    started = "2024-01-02T03:04:05+00:00"
    record = provenance.collect(
        "finetune",
        inputs,
        config,
        seed=7,
        device="cuda",
        started=started,
        code_root=str(checkout),
    )
    assert record["rule"] == "finetune" and record["seed"] == 7 and record["device"] == "cuda"
    assert record["config"] == config
    assert record["config_hash"] == provenance.config_hash(
        {"api_key_env": "FTLAB_TEST_KEY", "lr": 0.01}
    )
    assert record["inputs"] == {
        inputs["table"]: sha(b"table"),
        inputs["model"]: provenance.sha256_path(inputs["model"]),
        inputs["extra"][0]: sha(b"0"),
        inputs["extra"][1]: sha(b"1"),
    }
    assert record["input_names"] == {
        "table": inputs["table"],
        "model": inputs["model"],
        "extra": inputs["extra"],
    }
    assert record["code"] == {"commit": git(checkout, "rev-parse", "HEAD"), "dirty": False}
    assert record["packages"] == provenance.package_versions()
    assert record["host"] == platform.node()
    assert record["started"] == started
    finished = datetime.fromisoformat(record["finished"])
    assert finished.tzinfo is not None and finished > datetime.fromisoformat(started)
    assert "sk-do-not-record-me" not in json.dumps(record, default=str)  # the name, not the key


def test_collect_defaults_and_a_missing_input(tmp_path):
    record = provenance.collect("prepare_task", {}, {})
    assert record["inputs"] == {} and record["seed"] is None and record["device"] == "cpu"
    started = datetime.fromisoformat(record["started"])
    assert started <= datetime.fromisoformat(record["finished"])
    assert started.tzinfo is not None and started.microsecond == 0  # UTC, to the second
    with pytest.raises(FileNotFoundError):
        provenance.collect("x", {"gone": str(tmp_path / "gone.parquet")}, {})


def test_a_record_survives_both_stores(inputs, tmp_path):
    record = provenance.collect("evaluate", inputs, {"batch_size": 4}, seed=0)
    path = provenance.write_json(record, tmp_path / "model")
    assert path == tmp_path / "model" / provenance.PROVENANCE_FILE
    stored = json.loads(path.read_text())
    assert stored == json.loads(json.dumps(record, default=str))
    assert list(stored) == sorted(stored)  # sorted keys: diffs of two records line up
    table = tables.write(tiny_tasks(2), tmp_path / "t.parquet", "tasks", record)
    assert tables.provenance(table) == stored
