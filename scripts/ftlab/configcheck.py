"""Checks the JSON schema cannot express: names that must refer to declared tasks and models.

Runs right after Snakemake's `validate`, before any job; every message names the key path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jsonschema
import yaml

from ftlab import presets, prompts


class ConfigError(ValueError):
    pass


def schema_errors(config: dict, schema_path: str | Path) -> list[str]:
    """Every schema violation as one line naming the key path (jsonschema, draft 2020-12)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator in ("allOf", "anyOf", "oneOf") and err.context:
            # the branch of the value's own type says what is wrong inside it
            inner = [e for e in err.context if e.validator != "type"] or err.context
            err = jsonschema.exceptions.best_match(inner)
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        lines.append(f"{where}: {err.message}")
    return lines


def expand_presets(config: dict) -> list[str]:
    """Replace every `tasks.<name>` that names a `preset` by the merged entry (in place).

    Runs before schema validation, so the schema's defaults fill in around the preset's values
    instead of hiding them. Returns one line per unknown preset.
    """
    problems = []
    for name, spec in (config.get("tasks") or {}).items():
        if isinstance(spec, dict) and spec.get("preset"):
            try:
                config["tasks"][name] = presets.apply(name, spec)
            except ValueError as e:
                problems.append(str(e))
    return problems


def _names(config: dict, section: str) -> set[str]:
    return set(config.get(section) or {})


def _refs(value, known: set[str], path: str, kind: str) -> None:
    for i, name in enumerate(value or []):
        if name not in known:
            raise ConfigError(f"{path}[{i}]: unknown {kind} {name!r} (known: {sorted(known)})")


def _ref(name, known: set[str], path: str, kind: str) -> None:
    if name not in known:
        raise ConfigError(f"{path}: unknown {kind} {name!r} (known: {sorted(known)})")


def check(config: dict) -> None:
    tasks, models = _names(config, "tasks"), _names(config, "models")
    _refs(config.get("tokenizer", {}).get("tasks"), tasks, "tokenizer.tasks", "task")
    for name, spec in config["models"].items():
        pre = spec.get("pretrain") or {}
        _refs(pre.get("tasks"), tasks, f"models.{name}.pretrain.tasks", "task")
        _refs(
            pre.get("question_only_tasks"),
            tasks,
            f"models.{name}.pretrain.question_only_tasks",
            "task",
        )
        if spec["source"] == "embedded" and not pre.get("tasks"):
            raise ConfigError(
                f"models.{name}.pretrain.tasks: an embedded model needs at least one task"
            )
        arch = spec.get("architecture") or {}
        if arch and arch["hidden_size"] % arch["num_heads"]:
            raise ConfigError(
                f"models.{name}.architecture: hidden_size {arch['hidden_size']} is not divisible "
                f"by num_heads {arch['num_heads']}"
            )
    for name, spec in config["tasks"].items():
        if spec["source"] in ("file", "hf") and not spec.get("path"):
            raise ConfigError(f"tasks.{name}.path: required for source {spec['source']!r}")
    ev = config.get("evaluation", {})
    _refs(ev.get("models"), models, "evaluation.models", "model")
    _refs(ev.get("tasks"), tasks, "evaluation.tasks", "task")
    _check_distillation(config.get("studies", {}).get("distillation"), tasks, models)
    _check_qlora(config)


def _check_qlora(config: dict) -> None:
    """QLoRA needs bitsandbytes; its CUDA GPU is the job's check (a submit host may have none)."""
    methods = {"finetune.method": (config.get("finetune") or {}).get("method")}
    for name, study in (config.get("studies") or {}).items():
        override = (study or {}).get("finetune") or {}
        methods[f"studies.{name}.finetune.method"] = override.get("method")
    for path, method in methods.items():
        if method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(
                f"{path}: qlora needs bitsandbytes, which is not installed here "
                "(pip install bitsandbytes; it also needs a CUDA GPU when the job runs)"
            )


def _check_distillation(study: dict | None, tasks: set[str], models: set[str]) -> None:
    if not study:
        return
    _ref(study["teacher"], models, "studies.distillation.teacher", "model")
    _ref(study["student"], models, "studies.distillation.student", "model")
    _refs(study["tasks"], tasks, "studies.distillation.tasks", "task")
    for variant in study.get("eval_modes") or {}:
        if variant not in prompts.DISTILLATION_VARIANTS:
            raise ConfigError(
                f"studies.distillation.eval_modes.{variant}: not a distillation variant "
                f"(known: {list(prompts.DISTILLATION_VARIANTS)})"
            )
