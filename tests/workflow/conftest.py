"""The smoke workflow, run once per test session in a temp dir, shared by the workflow tests that
only look at (or dry-run against) its results: rerun semantics, the report.

The workflow code is COPIED (so a test may edit a library module in its copy) and run with
`-d work/`; the config is tests/configs/smoke.yaml plus one evaluation-only task, so that changing
a task's size has a chain of its own (every smoke task also feeds the tokenizer and pretraining,
which would make any change to them rerun everything).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CODE_PARTS = (
    "Snakefile",
    "rules",
    "scripts",
    "resources",
    "envs",
    "report",
    "profiles",
    "config.yaml",
)
EVAL_ONLY_TASK = "basic_arithmetic"
# one job in `snakemake -n` output: "rule x:" (or "localrule x:"), optional input line, output line
JOB = re.compile(r"^(?:local)?rule (\w+):\n(?:    input: .*\n)?    output: ([^,\n]+)", re.M)


def smoke_config() -> dict:
    config = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
    base_tasks = list(config["tasks"])
    config.setdefault("tokenizer", {})["tasks"] = base_tasks
    config["tasks"][EVAL_ONLY_TASK] = {
        "source": "embedded",
        "task_type": "numeric",
        "generator_config": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1},
        "sizes": {"train": 8, "validation": 2, "test": 6},
    }
    return config


@dataclass
class Smoke:
    code: Path  # the copied workflow
    work: Path  # its working directory (results/, .snakemake/)
    config: dict
    eval_only_task: str = EVAL_ONLY_TASK

    def write_config(self, config: dict, name: str) -> Path:
        path = self.work.parent / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def snakemake(self, *args: str, config: Path | None = None, check: bool = True, work=None):
        cmd = [sys.executable, "-m", "snakemake", "-s", str(self.code / "Snakefile")]
        cmd += ["-d", str(work or self.work), "--configfile", str(config or self.configfile)]
        cmd += ["--cores", "2", *args]
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
        out = proc.stdout + proc.stderr
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out[-6000:]}")
        return out

    def planned(self, *args: str, **kw) -> set[tuple[str, str]]:
        """(rule, first output) of every job a dry run plans (rule `all` has no output)."""
        return set(JOB.findall(self.snakemake("-n", *args, **kw)))

    @property
    def configfile(self) -> Path:
        return self.work.parent / "smoke.yaml"


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake", "*.pyc")
    for part in CODE_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> Smoke:
    base = tmp_path_factory.mktemp("smoke")
    work = base / "work"
    work.mkdir()
    sm = Smoke(code=copy_workflow(base / "code"), work=work, config=smoke_config())
    sm.write_config(sm.config, "smoke")
    sm.snakemake()
    return sm
