"""The per-stage conda environments pin the same versions as pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements):
    pins = {}
    for req in requirements:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", req.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_every_env_pin_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _pins(project["dependencies"])
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs, "no conda environments under envs/"
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        pins = _pins(p for p in pip if not p.startswith("-"))
        assert pins, f"{env.name}: no pinned pip packages"
        for name, version in pins.items():
            assert name in declared, f"{env.name}: {name} is not a dependency in pyproject.toml"
            assert version == declared[name], (
                f"{env.name}: {name}=={version} but pyproject.toml pins {declared[name]}"
            )


def test_every_rule_conda_env_exists():
    for smk in (ROOT / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"\.\./(envs/[^"]+)"', smk.read_text()):
            assert (ROOT / env).exists(), f"{smk.name} names missing {env}"
