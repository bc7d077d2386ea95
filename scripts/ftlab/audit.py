"""Check the whole chain of artifacts against the provenance they recorded.

Every artifact records the sha256 of each of its inputs when it is made (`provenance.collect`):
Parquet files in their key-value metadata, directory artifacts (models, runs, the tokenizer) in a
`provenance.json` beside their weights. The audit walks `results/`, recomputes the sha256 of every
recorded input and reports each edge whose input changed or vanished since. An edited artifact
is therefore caught by whatever was made from it; leaves (summaries, final eval tables) are caught
by the audit's own ledger, `results/analysis/provenance.parquet`, which records the sha256 of every
artifact and is read back as one more consumer the next time the audit runs.

Paths recorded by jobs are relative to the workflow's working directory (the parent of
`results/`), so the audit resolves them against that directory, wherever it is called from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import provenance, runs, tables

LEDGER = "analysis/provenance.parquet"  # relative to results/
REPORT = "analysis/audit.parquet"
# Rewritten by every audit, or made after it (lab, report pages), so not audited themselves.
OWN_OUTPUTS = (LEDGER, REPORT, "analysis/lab.duckdb", "analysis/lab.duckdb.wal")
NOT_ARTIFACTS = (
    "cache",
    "report",
    "mlruns",
)  # results/ dirs: rationale cache, report pages, MLflow store
MODEL_MARKERS = ("config.json", "tokenizer.json", "model.safetensors")


@dataclass
class Artifact:
    path: str  # relative to the working directory, posix ("results/eval/student/chain_sum.parquet")
    provenance: dict | None = None
    problem: tuple[str, str] | None = None  # (kind, message) when its provenance cannot be read
    tracked: bool = True  # False: a plain file (a plot) that records nothing; only hashed


@dataclass
class AuditResult:
    artifacts: list[Artifact]
    findings: pd.DataFrame  # the "audit" schema, without the all-clear row
    edges: pd.DataFrame  # the "provenance" schema
    hashes: dict[str, str] = field(default_factory=dict)  # artifact path -> current sha256

    @property
    def ok(self) -> bool:
        return self.findings.empty

    def report(self) -> pd.DataFrame:
        """The findings, or one row of kind "ok" saying how much was checked."""
        if not self.ok:
            return self.findings
        n_edges = int(self.edges["input"].notna().sum())
        msg = f"{len(self.artifacts)} artifacts, {n_edges} recorded inputs: all match"
        return pd.DataFrame([_finding("ok", None, None, None, None, msg)])


def _finding(kind, artifact, input_, recorded, current, message) -> dict:
    return {
        "kind": kind,
        "artifact": artifact,
        "input": input_,
        "recorded_sha256": recorded,
        "current_sha256": current,
        "message": message,
    }


def find_artifacts(results_dir: str | os.PathLike) -> list[Artifact]:
    """Every artifact under results/: directories holding provenance.json, and Parquet files.

    Parquet files inside a directory artifact (a model's train_log) belong to it; a directory
    that looks like a model but has no provenance.json is reported, not skipped. Other files
    (plots) carry no provenance but are hashed into the ledger, so an edit to them is caught too.
    """
    results = Path(results_dir)
    root = results.parent
    own = {(results / p).resolve() for p in OWN_OUTPUTS}
    found = []
    for dirpath, dirnames, filenames in os.walk(results):
        here = Path(dirpath)
        skip = NOT_ARTIFACTS if here == results else ()
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in skip)
        rel = here.relative_to(root).as_posix()
        if provenance.PROVENANCE_FILE in filenames:
            dirnames[:] = []
            try:
                record = json.loads((here / provenance.PROVENANCE_FILE).read_text())
                found.append(Artifact(rel, record))
            except (OSError, ValueError) as e:
                found.append(Artifact(rel, problem=("unreadable", f"{rel}/provenance.json: {e}")))
            continue
        if here != results and any(m in filenames for m in MODEL_MARKERS):
            dirnames[:] = []
            found.append(Artifact(rel, problem=("no_provenance", f"{rel}: no provenance.json")))
            continue
        for name in sorted(filenames):
            path = here / name
            if name.startswith(".") or path.resolve() in own:
                continue
            relf = path.relative_to(root).as_posix()
            if not name.endswith(".parquet"):
                found.append(Artifact(relf, tracked=False))
                continue
            try:
                record = tables.provenance(path)
            except Exception as e:  # a corrupted footer: pyarrow raises several types
                found.append(Artifact(relf, problem=("unreadable", f"{relf}: {e}")))
                continue
            if not record:
                found.append(Artifact(relf, problem=("no_provenance", f"{relf}: no provenance")))
            else:
                found.append(Artifact(relf, record))
    return found


class _Hasher:
    """sha256 of paths relative to the working directory, each computed once."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[str, str | None] = {}

    def __call__(self, path: str) -> str | None:
        if path not in self.cache:
            full = Path(path) if os.path.isabs(path) else self.root / path
            try:
                self.cache[path] = provenance.sha256_path(full)
            except FileNotFoundError:
                self.cache[path] = None
        return self.cache[path]


def _edge_rows(art: Artifact, sha: str | None) -> list[dict]:
    rec = art.provenance or {}
    code = rec.get("code") or {}
    seed = rec.get("seed")
    base = {
        "artifact": art.path,
        "artifact_sha256": sha,
        "run": runs.run_of(art.path),
        "rule": rec.get("rule"),
        "config_hash": rec.get("config_hash"),
        "commit": code.get("commit"),
        "dirty": code.get("dirty"),
        "packages": json.dumps(rec.get("packages"), sort_keys=True) if rec else None,
        "seed": int(seed) if isinstance(seed, int | float) else None,
        "device": rec.get("device"),
        "started": rec.get("started"),
        "finished": rec.get("finished"),
    }
    inputs = rec.get("inputs") or {}
    if not inputs:
        return [{**base, "input": None, "input_sha256": None}]
    return [{**base, "input": p, "input_sha256": h} for p, h in sorted(inputs.items())]


def _check_inputs(consumer: str, inputs: dict, current) -> list[dict]:
    out = []
    for path, recorded in sorted(inputs.items()):
        now = current(path)
        if now is None:
            msg = f"{path} vanished; {consumer} was made from it"
            out.append(_finding("missing", consumer, path, recorded, None, msg))
        elif now != recorded:
            msg = f"{path} changed since {consumer} was made from it"
            out.append(_finding("changed", consumer, path, recorded, now, msg))
    return out


def run(results_dir: str | os.PathLike = "results", progress: bool = False) -> AuditResult:
    """Audit every artifact under `results_dir` (findings + the provenance edge table)."""
    results = Path(results_dir)
    if not results.is_dir():
        raise FileNotFoundError(f"audit: no results directory at {results}")
    current = _Hasher(results.parent)
    arts = find_artifacts(results)
    findings, edges, hashes = [], [], {}
    it = arts
    if progress:
        try:
            from tqdm import tqdm

            it = tqdm(arts, desc="audit", unit="artifact")
        except ImportError:  # the analysis conda env has no tqdm
            pass
    for art in it:
        if art.problem:
            findings.append(_finding(art.problem[0], art.path, None, None, None, art.problem[1]))
        hashes[art.path] = current(art.path)
        edges += _edge_rows(art, hashes[art.path])
        if art.provenance:
            findings += _check_inputs(art.path, art.provenance.get("inputs") or {}, current)
    ledger = results / LEDGER
    if ledger.exists():  # the last audit recorded every artifact: catches edited leaves
        consumer = ledger.relative_to(results.parent).as_posix()
        try:
            recorded = tables.provenance(ledger).get("inputs") or {}
            findings += _check_inputs(consumer, recorded, current)
        except Exception as e:
            findings.append(_finding("unreadable", consumer, None, None, None, f"{consumer}: {e}"))
    cols = tables.schema("audit").names
    return AuditResult(
        artifacts=arts,
        findings=pd.DataFrame(findings, columns=cols),
        edges=pd.DataFrame(edges, columns=tables.schema("provenance").names),
        hashes=hashes,
    )


def write(result: AuditResult, report_path, ledger_path, record: dict) -> None:
    """Write the findings and the ledger; the ledger records every artifact's sha256 as an input,
    which is what lets the next audit catch an edit to an artifact nothing else consumes."""
    record = {**record, "inputs": dict(sorted(result.hashes.items()))}
    tables.write(result.report(), report_path, "audit", record)
    tables.write(result.edges, ledger_path, "provenance", record)
