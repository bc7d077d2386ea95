"""The smoke workflow through `--profile profiles/slurm` on a real single-node SLURM.

`.ci/run` starts the cluster with tests/slurm/start.sh (a node with one fake GPU); elsewhere the
test is skipped unless SLURM answers. It checks what a cluster user relies on: every job of the
run went through SLURM and completed, the GPU stages asked for their GPU, and the tables are the
same as a local run's. The cluster runs one fine-tuned run's chain (its evaluation: task tables,
tokenizer, both models, teacher rationales, trainset, fine-tuning, evaluation; 13 jobs, every
model stage kind), not the whole smoke DAG: each SLURM job pays a cold Python start (the warm
worker is off under SLURM), and the other jobs are the same rules with other wildcards.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles" / "slurm"
# Test-cluster settings on top of the profile: no slurmdbd here, so status comes from squeue
# (tests/slurm/start.sh keeps finished jobs visible for 15 minutes); poll soon after submitting.
SLURM_ARGS = [
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--slurm-keep-successful-logs",
    "--retries",
    "0",
]
TARGET = "results/eval/distillation/cot_after/chain_sum/seed0/chain_sum.parquet"
RUN_TIMEOUT_S = 1800  # the smoke run takes a few minutes on an idle 2-core machine
# What differs between any two runs by design: the provenance table (hashes of files with their
# metadata, times) and wall-clock columns.
RUN_RECORD_TABLES = {"analysis/provenance.parquet"}
TIMING_COLUMNS = {"seconds", "tokens_per_s", "started", "finished"}


def slurm_running() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    states = out.stdout.split()
    return out.returncode == 0 and any(s.startswith(("idle", "mixed", "allocated")) for s in states)


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.workflow,
    pytest.mark.skipif(not slurm_running(), reason="no SLURM running (tests/slurm/start.sh)"),
]


def snakemake(code: Path, workdir: Path, configfile: Path, *args: str) -> str:
    """Run the workflow at `code` in `workdir`; return its output (fail the test with it on error)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [
        "timeout", "-k", "20", str(RUN_TIMEOUT_S),
        sys.executable, "-m", "snakemake",
        "-s", str(code / "Snakefile"),
        "-d", str(workdir),
        *args,
        "--configfile", str(configfile),  # last: it takes every argument up to the next option
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        run_id = re.search(r"SLURM run ID: (\S+)", out)
        if run_id:  # a timed-out run leaves jobs behind: cancel exactly this run's
            subprocess.run(["scancel", "--name", run_id.group(1)], check=False)
        pytest.fail(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{out[-6000:]}")
    return out


def executed_jobs(log: str) -> list[tuple[str, bool, bool]]:
    """(rule, asks for a GPU, ran locally) of each job in a Snakemake log."""
    jobs = []
    for m in re.finditer(r"^(local)?(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n)*)", log, re.M):
        resources = re.search(r"^\s+resources: (.*)$", m.group(3), re.M)
        gpu = resources is not None and re.search(r"\bgpu=[1-9]", resources.group(1)) is not None
        jobs.append((m.group(2), gpu, m.group(1) is not None))
    return jobs


def slurm_jobs(run_id: str) -> list[dict[str, str]]:
    """Every SLURM job of one Snakemake run (its job name is the run id), as scontrol fields."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=True
    ).stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if fields.get("JobName") == run_id:
            jobs.append(fields)
    return jobs


def tables(results: Path) -> dict[str, object]:
    """Every result table under results/, by relative path: contents only (no metadata, timings)."""
    out = {}
    for path in sorted(results.rglob("*.parquet")):
        name = str(path.relative_to(results))
        if name not in RUN_RECORD_TABLES:
            table = pq.read_table(path).replace_schema_metadata(None)
            out[name] = table.drop_columns([c for c in table.column_names if c in TIMING_COLUMNS])
    return out


def test_smoke_workflow_on_slurm_matches_local_run(smoke, tmp_path):
    """`smoke` (tests/workflow/conftest.py) is the session's local run: same code copy, same config."""
    slurm_dir = tmp_path / "slurm"
    planned = smoke.snakemake(TARGET, "-n", work=slurm_dir)  # every job, with its resources
    slurm_log = snakemake(
        smoke.code, slurm_dir, smoke.configfile, TARGET, "--profile", str(PROFILE), *SLURM_ARGS
    )
    run_id = re.search(r"SLURM run ID: (\S+)", slurm_log).group(1)
    submitted = slurm_jobs(run_id)

    # Every job went through SLURM, once per planned job, and completed there.
    on_login_node = {rule for rule, _, local in executed_jobs(slurm_log) if local}
    assert not on_login_node, f"jobs that bypassed SLURM: {on_login_node}"
    expected = [(rule, gpu) for rule, gpu, _ in executed_jobs(planned)]
    assert len(expected) > 5, f"the smoke workflow plans only {expected}"
    assert {j["JobState"] for j in submitted} == {"COMPLETED"}, submitted

    # ... and the GPU stages were submitted with their GPU request (--gpus=1), the others without.
    assert any(gpu for _, gpu in expected), "no GPU stage in the smoke workflow"
    for job in submitted:
        assert job.get("TresPerJob", "gres:gpu:1") == "gres:gpu:1", job.get("TresPerJob")
    got = collections.Counter(
        (j["Comment"].split("_wildcards_")[0].removeprefix("rule_"), "TresPerJob" in j)
        for j in submitted
    )
    assert got == collections.Counter(expected)

    # The same tables as the local run's (contents; provenance metadata differs by design).
    local, cluster = tables(smoke.work / "results"), tables(slurm_dir / "results")
    assert TARGET.removeprefix("results/") in cluster, sorted(cluster)
    assert set(cluster) <= set(local), f"tables the local run lacks: {set(cluster) - set(local)}"
    for name, table in cluster.items():
        assert table.equals(local[name]), f"{name} differs between the SLURM and the local run"
