"""Bad configs fail before any job with one clear line naming the key path; good ones pass."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from ftlab import configcheck

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "resources" / "config.schema.yaml"
BAD = sorted((ROOT / "tests" / "configs" / "bad").glob("*.yaml"))
GOOD = [
    ROOT / "config.yaml",
    *sorted((ROOT / "tests" / "configs").glob("*.yaml")),
    *sorted((ROOT / "config").glob("*.yaml")),
]


def problems(path):
    """What common.smk does: presets, schema errors, else Snakemake's validate (defaults), then names."""
    config = yaml.safe_load(path.read_text())
    found = configcheck.expand_presets(config) or configcheck.schema_errors(config, SCHEMA)
    if found:
        return found
    validate(config, schema=str(SCHEMA))
    try:
        configcheck.check(config)
    except configcheck.ConfigError as e:
        return [str(e)]
    return []


def expected(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <text>'"
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_is_rejected_naming_the_key(path):
    found = problems(path)
    assert found, f"{path.name} was accepted"
    assert any(expected(path) in line for line in found), found


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_shipped_configs_are_valid(path):
    assert problems(path) == []


def test_snakemake_reports_bad_config_without_traceback(tmp_path):
    bad = ROOT / "tests" / "configs" / "bad" / "unknown_task.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(tmp_path),
            "-n",
            "--configfile",
            str(bad),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Invalid config:" in out
    assert "models.student.pretrain.tasks[1]: unknown task 'chain_summ'" in out
    assert "Traceback" not in out and 'File "' not in out
    assert not (tmp_path / "results").exists()


def test_defaults_are_filled_in_nested_sections():
    config = yaml.safe_load((ROOT / "tests/configs/bad/unknown_task.yaml").read_text())
    validate(config, schema=str(SCHEMA))
    task = config["tasks"]["chain_sum"]
    assert task["sizes"] == {"train": 1000, "validation": 100, "test": 200}
    assert task["on_bad_rows"] == "error"
    assert config["models"]["student"]["architecture"]["hidden_size"] == 128
    assert config["models"]["student"]["trust_remote_code"] is False
