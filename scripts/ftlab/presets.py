"""Task presets: named, ready-made task entries for real datasets (resources/presets/tasks.yaml).

A task written as `{preset: gsm8k, sizes: {...}}` is the preset's entry with the task's own keys
on top. `apply` is the one place that merges: `columns` and `sizes` merge key by key, every other
key the task sets replaces the preset's. It runs before the config is validated (so the schema's
defaults never hide a preset's values, and `params:` carries the whole merged entry), and again,
harmlessly, inside `tasks.TaskSpec.from_config`.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

PRESETS = Path(__file__).resolve().parents[2] / "resources" / "presets" / "tasks.yaml"
MERGED_KEYS = ("columns", "sizes")


@functools.cache
def load(path: str | Path = PRESETS) -> dict:
    """{preset name: task entry} from the presets file."""
    return yaml.safe_load(Path(path).read_text()) or {}


def names(path: str | Path = PRESETS) -> list[str]:
    return sorted(load(path))


def apply(task: str, spec: dict, path: str | Path = PRESETS) -> dict:
    """`spec` (a `tasks.<task>` entry) on top of its preset; unchanged when it names none."""
    name = spec.get("preset")
    if not name:
        return spec
    presets = load(path)
    if name not in presets:
        raise ValueError(f"tasks.{task}.preset: unknown preset {name!r} (known: {sorted(presets)})")
    merged = copy.deepcopy(presets[name])
    for key, value in spec.items():
        if key in MERGED_KEYS and isinstance(value, dict):
            merged[key] = {**(merged.get(key) or {}), **copy.deepcopy(value)}
        else:
            merged[key] = copy.deepcopy(value)
    return merged
