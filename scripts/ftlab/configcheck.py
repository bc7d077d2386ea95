"""The config's checks, in one place and one order, before any job; every message names the key path.

`problems` runs them in order, each stage only on a config the earlier ones accepted:

1. task presets merged in (only into entries that are mappings naming a preset by its string);
2. the JSON schema: types, required keys, unknown keys (one line per unknown key, naming it);
3. the schema's defaults filled in (in place);
4. what the schema cannot express (`cross_references`): names that must refer to declared tasks and
   models, shapes that must fit, evaluated tasks that must have a test split;
5. each configured study's own `check(config) -> list[str]` (passed in, so this core module imports
   no study).

`problems` returns lines and never raises, whatever the config holds: Snakemake prints them under
"Invalid config:" and exits before any job, without a traceback.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jsonschema
import yaml

from ftlab import presets


class ConfigError(ValueError):
    pass


def problems(config: dict, schema_path: str | Path, study_checks: dict | None = None) -> list[str]:
    """Every problem of `config` as one line naming its key path ([] when it is valid).

    Fills in the schema's defaults (in place) once the config is valid as far as types go.
    """
    if not isinstance(config, dict):
        return [f"(top level): the config must be a mapping of sections, not {_kind(config)}"]
    found = _guarded("(top level): presets", expand_presets, config)
    found = found or _guarded("(top level): schema", schema_errors, config, schema_path)
    if found:
        return found
    found = _guarded("(top level): schema defaults", fill_defaults, config, schema_path)
    if found:
        return found
    found = _guarded("(top level): cross-references", cross_references, config)
    for name, study_check in (study_checks or {}).items():
        if name in (config.get("studies") or {}):
            found += _guarded(f"studies.{name}: its check", study_check, config)
    return found


def _guarded(stage: str, fn, *args) -> list[str]:
    """`fn(*args)` (a list of lines, or None), or one line when it raises: never a traceback."""
    try:
        return list(fn(*args) or [])
    except ConfigError as e:
        return str(e).splitlines()
    except Exception as e:  # a check that trips over a config the earlier stages let through
        return [f"{stage} failed on this config ({type(e).__name__}: {e})"]


def _kind(value) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"


# --- 1. presets -----------------------------------------------------------------------------------


def expand_presets(config: dict) -> list[str]:
    """Replace every `tasks.<name>` that names a `preset` by the merged entry (in place).

    Runs before schema validation, so the schema's defaults fill in around the preset's values
    instead of hiding them. Returns one line per unknown preset. An entry that is not a mapping, or
    a `preset` that is not a string, is left alone for the schema to name.
    """
    found = []
    tasks = config.get("tasks")
    for name, spec in (tasks if isinstance(tasks, dict) else {}).items():
        if isinstance(spec, dict) and isinstance(spec.get("preset"), str) and spec["preset"]:
            try:
                tasks[name] = presets.apply(name, spec)
            except ValueError as e:
                found.append(str(e))
    return found


# --- 2. and 3. the schema -------------------------------------------------------------------------


def schema_errors(config: dict, schema_path: str | Path) -> list[str]:
    """Every schema violation as one line naming the key path (jsonschema, draft 2020-12).

    An unknown key is named itself (`models.m.architecture.hidden: unknown key ...`), one line per
    key, with the keys that section knows.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator in ("allOf", "anyOf", "oneOf") and err.context:
            # the branch of the value's own type says what is wrong inside it
            inner = [e for e in err.context if e.validator != "type"] or err.context
            err = jsonschema.exceptions.best_match(inner)
        for line in _lines(err):
            if line not in lines:
                lines.append(line)
    return lines


def _lines(err) -> list[str]:
    where = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "additionalProperties" and err.validator_value is False:
        known = sorted(err.schema.get("properties") or {})
        what = "study" if where == "studies" else "key"
        unknown = [k for k in err.instance if k not in known]
        return [
            f"{where + '.' if where else ''}{key}: unknown {what} (known: {', '.join(known)})"
            for key in unknown
        ]
    return [f"{where or '(top level)'}: {err.message}"]


def fill_defaults(config: dict, schema_path: str | Path) -> None:
    """The schema's defaults, filled in where a key is missing (as Snakemake's `validate` does)."""
    from snakemake.utils import validate

    validate(config, schema=str(schema_path))


# --- 4. cross-references --------------------------------------------------------------------------


def _names(config: dict, section: str) -> set[str]:
    return set(config.get(section) or {})


def _refs(value, known: set[str], path: str, kind: str) -> list[str]:
    return [
        f"{path}[{i}]: unknown {kind} {name!r} (known: {sorted(known)})"
        for i, name in enumerate(value or [])
        if name not in known
    ]


def cross_references(config: dict) -> list[str]:
    """What the schema cannot express, one line per problem (on a config the schema accepted)."""
    tasks, models = _names(config, "tasks"), _names(config, "models")
    found = _refs((config.get("tokenizer") or {}).get("tasks"), tasks, "tokenizer.tasks", "task")
    for name, spec in config["models"].items():
        pre = spec.get("pretrain") or {}
        found += _refs(pre.get("tasks"), tasks, f"models.{name}.pretrain.tasks", "task")
        found += _refs(
            pre.get("question_only_tasks"),
            tasks,
            f"models.{name}.pretrain.question_only_tasks",
            "task",
        )
        if spec.get("checkpoint") and spec.get("source") != "embedded":
            found.append(f"models.{name}.checkpoint: only an embedded model has a checkpoint "
                         f"(source is {spec.get('source')!r})")  # fmt: skip
        if spec.get("source") == "embedded" and not pre.get("tasks"):
            found.append(f"models.{name}.pretrain.tasks: an embedded model needs at least one task")
        arch = spec.get("architecture") or {}
        hidden, heads = arch.get("hidden_size", 128), arch.get("num_heads", 4)
        if arch and hidden % heads:
            found.append(
                f"models.{name}.architecture: hidden_size {hidden} is not divisible "
                f"by num_heads {heads}"
            )
    for name, spec in config["tasks"].items():
        if spec.get("source") in ("file", "hf") and not spec.get("path"):
            found.append(f"tasks.{name}.path: required for source {spec['source']!r}")
    ev = config.get("evaluation") or {}
    found += _refs(ev.get("models"), models, "evaluation.models", "model")
    found += _refs(ev.get("tasks"), tasks, "evaluation.tasks", "task")
    if ev.get("tasks"):
        evaluated = {t: f"evaluation.tasks[{i}]" for i, t in enumerate(ev["tasks"])}
    else:
        evaluated = {t: "evaluation.tasks (empty: every task)" for t in config["tasks"]}
    for task, where in evaluated.items():
        found += test_split_problems(config, task, where)
    return found + _qlora_problems(config)


def test_split_problems(config: dict, task: str, where: str) -> list[str]:
    """Lines for a task that `where` evaluates on its test split while that split is empty.

    Known before any job: `sizes.test: 0` (a seeded split, or a source split cut to its size), or
    an `hf_splits` mapping without `test`. A study's own check does the same for the tasks it
    evaluates (its code is in its `check`, so a core edit never reruns a study).
    """
    spec = (config.get("tasks") or {}).get(task)
    if not isinstance(spec, dict):
        return []  # an unknown task is named by the reference check
    if (spec.get("sizes") or {}).get("test") == 0:
        return [
            f"tasks.{task}.sizes.test: 0, but {where} evaluates {task!r} on its test split "
            f"(give it test examples, or do not evaluate it)"
        ]
    if spec.get("source") == "hf" and spec.get("hf_splits") and "test" not in spec["hf_splits"]:
        return [
            f"tasks.{task}.hf_splits: maps no source split to test, but {where} evaluates "
            f"{task!r} on its test split (add test: <source split>, or do not evaluate it)"
        ]
    return []


def _qlora_problems(config: dict) -> list[str]:
    """QLoRA needs bitsandbytes; its CUDA GPU is the job's check (a submit host may have none)."""
    methods = {"finetune.method": (config.get("finetune") or {}).get("method")}
    for name, study in (config.get("studies") or {}).items():
        override = (study or {}).get("finetune") or {}
        methods[f"studies.{name}.finetune.method"] = override.get("method")
    if "qlora" not in methods.values() or importlib.util.find_spec("bitsandbytes") is not None:
        return []
    return [
        f"{path}: qlora needs bitsandbytes, which is not installed here "
        "(pip install bitsandbytes; it also needs a CUDA GPU when the job runs)"
        for path, method in methods.items()
        if method == "qlora"
    ]


def check(config: dict) -> None:
    """`cross_references` as an exception: ConfigError with one line per problem."""
    found = cross_references(config)
    if found:
        raise ConfigError("\n".join(found))
