"""Where a number came from: the record every artifact carries, and the hashes it is built of.

`collect` returns a plain dict (rule, the config subset the rule depends on and its hash, the
sha256 of every input, git commit + dirty flag, package versions, seed, device, times). Secrets
never get here: settings hold the *name* of an environment variable, never its value.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformers", "peft", "trl", "tokenizers", "datasets", "reasoning-gym")
PROVENANCE_FILE = "provenance.json"  # inside directory artifacts (models, runs)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def stable_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(obj) -> str:
    return hashlib.sha256(stable_json(obj).encode()).hexdigest()[:16]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_path(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a directory as the sorted (relative path, file hash) pairs."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise FileNotFoundError(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if rel.startswith(".snakemake") or rel.startswith("."):
            continue  # Snakemake's own markers (e.g. .snakemake_timestamp) are not content
        h.update(rel.encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


WORKFLOW_ROOT = str(Path(__file__).resolve().parents[2])  # the checkout holding scripts/ftlab


@functools.cache
def code_version(root: str = WORKFLOW_ROOT) -> dict:
    """git commit and dirty flag of the workflow checkout (None outside a git checkout).

    The checkout is the one ftlab's code was loaded from, not the working directory: with
    `snakemake -d elsewhere` the results live outside the checkout.
    """

    def git(*args):
        return subprocess.run(
            ["git", "-C", root, *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


@functools.cache
def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def collect(
    rule: str,
    inputs: dict[str, str | list[str]],
    config: dict,
    *,
    seed: int | None = None,
    device: str = "cpu",
    started: str | None = None,
    code_root: str = WORKFLOW_ROOT,
) -> dict:
    """The provenance record for one job. `inputs` maps input names to paths (or lists)."""
    hashes = {}
    for paths in inputs.values():
        for p in [paths] if isinstance(paths, str | os.PathLike) else paths:
            hashes[str(p)] = sha256_path(p)
    return {
        "rule": rule,
        "config": config,
        "config_hash": config_hash(config),
        "inputs": hashes,
        "input_names": {k: v if isinstance(v, str) else list(v) for k, v in inputs.items()},
        "code": code_version(code_root),
        "packages": package_versions(),
        "seed": seed,
        "device": device,
        "host": platform.node(),
        "started": started or now(),
        "finished": now(),
    }


def write_json(record: dict, directory: str | os.PathLike) -> Path:
    """Provenance of a directory artifact (a model or a run), beside its weights."""
    path = Path(directory) / PROVENANCE_FILE
    path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    return path
