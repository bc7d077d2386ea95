"""Settings from config: one unknown-key policy, lists to tuples, nested dataclasses; every
section's settings class takes exactly the keys its rule passes; `cells.choices`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from ftlab import cells, evaluate, finetune, models, pretrain, rationales, settings, sft
from ftlab.studies.distillation import trainset
from ftlab.studies.faithfulness import score

SCHEMA = Path(__file__).resolve().parents[1] / "resources" / "config.schema.yaml"


@dataclass(frozen=True)
class Inner:
    r: int = 8
    names: tuple[str, ...] = ("a",)


@dataclass(frozen=True)
class Outer:
    lr: float = 1e-3
    limit: int | None = None
    splits: tuple[str, ...] = ("train",)
    maybe: tuple[int, ...] | None = None
    inner: Inner = field(default_factory=Inner)


def test_defaults_lists_to_tuples_and_nested_dataclasses():
    assert settings.from_config(Outer, {}, "x") == Outer()
    assert settings.from_config(Outer, None, "x") == Outer()
    s = settings.from_config(
        Outer, {"splits": ["a", "b"], "maybe": [1], "inner": {"names": ["q"]}}, "x"
    )
    assert s == Outer(splits=("a", "b"), maybe=(1,), inner=Inner(names=("q",)))
    assert settings.from_config(Outer, {"inner": None, "maybe": None}, "x") == Outer()
    assert settings.from_config(Outer, {"limit": "3"}, "x", limit=int).limit == 3


def test_unknown_keys_are_rejected_with_their_key_path():
    with pytest.raises(settings.ConfigError) as error:
        settings.from_config(Outer, {"rnak": 4}, "finetune")
    assert str(error.value) == (
        "finetune: unknown key 'rnak' (known: ['inner', 'limit', 'lr', 'maybe', 'splits'])"
    )
    with pytest.raises(settings.ConfigError, match=r"^finetune\.inner: unknown key 'rnak' "):
        settings.from_config(Outer, {"inner": {"rnak": 4}}, "finetune")
    with pytest.raises(settings.ConfigError, match="unknown keys 'a', 'b'"):
        settings.from_config(Outer, {"b": 1, "a": 2}, "x")
    with pytest.raises(settings.ConfigError, match="^x: expected a mapping"):
        settings.from_config(Outer, ["lr"], "x")
    assert issubclass(settings.ConfigError, ValueError)


@pytest.mark.parametrize(
    "build, where",
    [
        (finetune.Settings.from_config, "finetune"),
        (lambda cfg: finetune.Settings.from_config({"lora": cfg}), "finetune.lora"),
        (models.Architecture.from_config, "architecture"),
        (pretrain.Settings.from_config, "pretrain"),
        (rationales.Settings.from_config, "rationales"),
        (evaluate.EvalSettings.from_config, "evaluation"),
        (trainset.Settings.from_config, "studies.distillation"),
        (score.Settings.from_config, "studies.faithfulness"),
    ],
)
def test_every_settings_class_rejects_an_unknown_key(build, where):
    build({})  # all defaults
    with pytest.raises(settings.ConfigError, match=rf"^{where}: unknown key 'rnak' \(known: "):
        build({"rnak": 1})


def test_value_checks_name_their_key_path():
    cases = [
        (finetune.Settings.from_config, {"method": "qdora"}, "finetune.method"),
        (finetune.Settings.from_config, {"num_processes": 0}, "finetune.num_processes"),
        (models.Architecture.from_config, {"hidden_size": 30}, "architecture.hidden_size"),
        (rationales.Settings.from_config, {"filter": "best"}, "rationales.filter"),
        (evaluate.EvalSettings.from_config, {"modes": ["x"]}, "evaluation.modes"),
        (trainset.Settings.from_config, {"importance": "x"}, "studies.distillation.importance"),
        (
            trainset.Settings.from_config,
            {"key_token_fraction": 0},
            "studies.distillation.key_token_fraction",
        ),
        (score.Settings.from_config, {"tests": ["x"]}, "studies.faithfulness.tests"),
    ]
    for build, cfg, where in cases:
        with pytest.raises(settings.ConfigError, match=rf"^{where}: "):
            build(cfg)
    with pytest.raises(settings.ConfigError, match=r"^models\.tiny\.architecture\.hidden_size"):
        models.Architecture.from_config({"hidden_size": 30}, "models.tiny.architecture")


def test_config_lists_become_the_tuples_the_settings_hold():
    assert pretrain.Settings.from_config({"tasks": ["a"]}).tasks == ("a",)
    assert rationales.Settings.from_config({"splits": ["train"]}).splits == ("train",)
    assert evaluate.EvalSettings.from_config({"modes": ["cot"]}).modes == ("cot",)
    assert score.Settings.from_config({"tests": ["paraphrasing"]}).tests == ("paraphrasing",)
    s = finetune.Settings.from_config({"lora": {"target_modules": ["q_proj"]}})
    assert s.lora == sft.LoraSettings(target_modules=("q_proj",))
    assert finetune.Settings.from_config({"lora": None}).lora == sft.LoraSettings()


def _keys(node: dict) -> set[str]:
    return set(node["properties"])


def _fields(cls) -> set[str]:
    return set(cls.__dataclass_fields__)


def test_each_config_section_is_exactly_what_its_settings_take():
    """The schema's keys of each section, less what its rule leaves out, are the class's fields:
    a key the rule passed but the class lacks would fail the job; a field with no key is dead."""
    schema = yaml.safe_load(SCHEMA.read_text())
    top, defs = schema["properties"], schema["$defs"]
    studies = top["studies"]["properties"]
    assert _keys(top["finetune"]) == _fields(finetune.Settings)
    assert _keys(top["finetune"]["properties"]["lora"]) == _fields(sft.LoraSettings)
    assert _keys(defs["finetune_override"]) <= _fields(finetune.Settings)
    assert _keys(top["rationales"]) == _fields(rationales.Settings)
    assert _keys(defs["architecture"]) == _fields(models.Architecture)
    assert _keys(defs["pretrain"]) == _fields(pretrain.Settings)
    # rules/evaluate.smk (evaluate_settings) leaves out the target lists
    assert _keys(top["evaluation"]) - {"models", "tasks"} == _fields(evaluate.EvalSettings)
    # rules/faithfulness.smk (faithfulness_settings) leaves these out and adds the config's seed
    skip = {"models", "baseline", "runs", "tasks", "bootstrap_resamples", "helper"}
    skip |= {"finetune_model", "finetune_tasks", "seeds", "finetune"}
    assert (_keys(studies["faithfulness"]) - skip) | {"seed"} == _fields(score.Settings)
    # rules/distillation.smk (distillation_trainset_settings) passes these, and the config's seed
    used = {"key_token_fraction", "importance", "importance_batch_size"}
    assert used <= _keys(studies["distillation"])
    assert used | {"seed"} == _fields(trainset.Settings)


@pytest.mark.parametrize(
    "cell, expected",
    [
        (None, None),
        (float("nan"), None),
        (math.nan, None),
        (np.array([], dtype=object), None),
        ([], None),
        (np.array(["yes", "no"], dtype=object), ["yes", "no"]),
        (["a", "b"], ["a", "b"]),
        ((1, 2), ["1", "2"]),
    ],
)
def test_choices_cells(cell, expected):
    out = cells.choices(cell)
    assert out == expected
    assert out is None or all(type(c) is str for c in out)
