"""Settings from config: a frozen dataclass built from a config mapping, with one policy.

`from_config(cls, cfg, where)` is what every `Settings.from_config` of the library calls:

* an unknown key is an error (`ConfigError`, naming the key path and the known keys): a typo in a
  config must not silently leave a default in force. A caller passes only the keys the settings
  use (a rule's `params:` holds just those, so changing another key reruns nothing);
* a list becomes a tuple where the field is a tuple (YAML and JSON have lists only);
* a mapping becomes the nested dataclass where the field's type is one (None: its defaults),
  built by the same rules, its errors naming `where.key`;
* `converters` (field name -> function of the value) go first, for a field that needs more.

A class's own value checks (a method among the known ones, ...) stay in its `from_config`, their
messages naming the key path the same way (`f"{where}.method: ..."`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config section that does not make settings: unknown key, wrong shape or bad value."""


def from_config(
    cls: type[T], cfg: Mapping[str, Any] | None, where: str, **converters: Callable[[Any], Any]
) -> T:
    """`cls` (a dataclass) from config mapping `cfg` (None: all defaults); `where` is its key path."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"settings.from_config: {cls!r} is not a dataclass")
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(cfg).__name__}")
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    if unknown := sorted(str(k) for k in cfg if k not in known):
        keys = ", ".join(repr(k) for k in unknown)
        raise ConfigError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {keys} (known: {sorted(known)})"
        )
    hints = _hints(cls)
    values = {}
    for key, value in cfg.items():
        if key in converters:
            values[key] = converters[key](value)
        else:
            values[key] = _convert(hints[key], value, f"{where}.{key}")
    try:
        return cls(**values)
    except TypeError as e:  # e.g. a required field with no default left out
        raise ConfigError(f"{where}: {e}") from None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The dataclass's field types, resolved (modules here use `from __future__ import annotations`)."""
    return typing.get_type_hints(cls)


def _options(hint) -> tuple:
    """The alternatives of a union type (`X | None`), or the type itself."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _convert(hint, value, where: str):
    options = _options(hint)
    if value is None and type(None) in options:
        return None
    for option in options:
        if dataclasses.is_dataclass(option) and (value is None or isinstance(value, Mapping)):
            return from_config(option, value, where)
        if typing.get_origin(option) is tuple and isinstance(value, list):
            return tuple(value)
    return value


def empty_test_splits(config: dict, tasks: list, key: str) -> list[str]:
    """Config problems: the `tasks` a study evaluates (listed under `key`) with an empty test split."""
    lines = []
    for i, task in enumerate(tasks):
        spec = config["tasks"].get(task)
        if not isinstance(spec, dict):
            continue  # an unknown task is named above
        hf_splits = spec.get("hf_splits") or {}
        if (spec.get("sizes") or {}).get("test") == 0:
            lines.append(
                f"tasks.{task}.sizes.test: 0, but {key}[{i}] evaluates {task!r} on its test "
                f"split (give it test examples, or leave it out of {key})"
            )
        elif spec.get("source") == "hf" and hf_splits and "test" not in hf_splits:
            lines.append(
                f"tasks.{task}.hf_splits: maps no source split to test, but {key}[{i}] "
                f"evaluates {task!r} on its test split (add test: <source split>)"
            )
    return lines
