"""The workflow stays lint-clean and formatted: `snakemake --lint`, snakefmt, ruff."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*cmd):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def tool(name):
    return str(BIN / name) if (BIN / name).exists() else shutil.which(name)


def test_snakemake_lint_is_clean():
    for configfile in ("config.yaml", "tests/configs/smoke.yaml"):
        proc = run(sys.executable, "-m", "snakemake", "--lint", "--configfile", configfile)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "Congratulations, your workflow is in a good condition!" in out, out


def test_snakefmt_is_clean():
    proc = run(tool("snakefmt"), "--check", "Snakefile", "rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean():
    for args in (("check",), ("format", "--check")):
        proc = run(tool("ruff"), *args, "scripts", "tests", "bench")
        assert proc.returncode == 0, proc.stdout + proc.stderr
