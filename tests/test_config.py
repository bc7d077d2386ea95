"""Bad configs fail before any job with one clear line naming the key path; good ones pass.

Every file in tests/configs/bad/ starts with `# expect: <text>`: a line of `configcheck.problems`
(what rules/common.smk runs: presets, schema, defaults, cross-references, the studies' checks)
must contain the text.
"""

import copy
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from ftlab import configcheck, studies

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "resources" / "config.schema.yaml"
BAD_DIR = ROOT / "tests" / "configs" / "bad"
BAD = sorted(BAD_DIR.glob("*.yaml"))
# config/pretrain.yaml is an overlay on config.yaml (`make pretrain`), not a config of its own
PRETRAIN_OVERLAY = ROOT / "config" / "pretrain.yaml"
GOOD = [
    ROOT / "config.yaml",
    *sorted((ROOT / "tests" / "configs").glob("*.yaml")),
    *sorted(p for p in (ROOT / "config").glob("*.yaml") if p != PRETRAIN_OVERLAY),
]
STUDY_CHECKS = {s: importlib.import_module(f"ftlab.studies.{s}").check for s in studies.STUDIES}

# Bad configs whose check belongs to a study's own `check` (ftlab/studies/<study>/__init__.py) and
# is not there yet: they must pass once it is (then drop them from here).
PENDING: dict[str, str] = {}  # bad configs whose check is still to be written: name -> why

# a line names its key path first: `tasks.a.sizes.test: ...`, `models.m.pretrain.tasks[1]: ...`
KEY_PATH_LINE = re.compile(r"^(\(top level\)|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+|\[\d+\])*)[ :]")

BASE = {
    "tasks": {"chain_sum": {"source": "embedded"}},
    "models": {"student": {"source": "embedded", "pretrain": {"tasks": ["chain_sum"]}}},
}


def problems(config):
    return configcheck.problems(config, SCHEMA, STUDY_CHECKS)


def problems_of(path):
    return problems(yaml.safe_load(path.read_text()))


def expected(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <text>'"
    return first.removeprefix("# expect: ")


def bad_params():
    for p in BAD:
        marks = (
            [pytest.mark.xfail(reason=PENDING[p.stem], strict=False)] if p.stem in PENDING else []
        )
        yield pytest.param(p, id=p.stem, marks=marks)


@pytest.mark.parametrize("path", list(bad_params()))
def test_bad_config_is_rejected_naming_the_key(path):
    found = problems_of(path)
    assert found, f"{path.name} was accepted"
    assert any(expected(path) in line for line in found), found
    for line in found:
        assert "\n" not in line and KEY_PATH_LINE.match(line), line


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_shipped_configs_are_valid(path):
    assert problems_of(path) == []


def test_pretrain_overlay_turns_every_checkpoint_off_and_nothing_else():
    """`--configfile config.yaml config/pretrain.yaml` (Snakemake deep-merges them) is the default
    with every shipped checkpoint off, so build_model pretrains the same specs here."""
    from snakemake.utils import update_config

    default = yaml.safe_load((ROOT / "config.yaml").read_text())
    merged = copy.deepcopy(default)
    update_config(merged, yaml.safe_load(PRETRAIN_OVERLAY.read_text()))
    assert problems(copy.deepcopy(merged)) == []  # (problems fills in defaults in place)
    shipped = {n for n, m in default["models"].items() if m.get("checkpoint")}
    assert shipped and all(merged["models"][n]["checkpoint"] is None for n in shipped)
    for n in shipped:
        merged["models"][n]["checkpoint"] = default["models"][n]["checkpoint"]
    assert merged == default


def test_pending_bad_configs_exist():
    assert {p.stem for p in BAD} >= set(PENDING)


def dry_run(configfile, workdir):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(workdir),
            "-n",
            "--configfile",
            str(configfile),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


# one of each kind that could trip a rules file before the check runs: a section of the wrong
# type, an entry of the wrong type, an unknown key, an unknown study, a cross-reference
SNAKEMAKE_CASES = [
    "section_tasks_not_a_mapping",
    "section_models_a_list",
    "section_studies_a_number",
    "section_evaluation_a_string",
    "task_entry_a_string",
    "unknown_study",
    "test_split_empty_evaluated",
    "unknown_task",
]


@pytest.mark.parametrize("name", SNAKEMAKE_CASES)
def test_snakemake_reports_bad_config_without_traceback(name, tmp_path):
    bad = BAD_DIR / f"{name}.yaml"
    proc = dry_run(bad, tmp_path)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Invalid config:" in out, out
    assert expected(bad) in out, out
    assert "Traceback" not in out and 'File "' not in out, out
    assert not (tmp_path / "results").exists()


def test_one_line_per_problem_in_snakemake_output(tmp_path):
    config = copy.deepcopy(BASE)
    config["models"]["student"]["pretrain"]["tasks"] = ["chain_sum", "nope", "nah"]
    config["evaluation"] = {"models": ["teachr"]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = dry_run(path, tmp_path / "work").stderr
    block = out[out.index("Invalid config:") :].splitlines()[1:4]
    assert [line.strip().split(":")[0] for line in block] == [
        "models.student.pretrain.tasks[1]",
        "models.student.pretrain.tasks[2]",
        "evaluation.models[0]",
    ]


# --- problems never raises, whatever the config holds ---------------------------------------------

ODD_VALUES = ["x", "", [1, 2], [], 3, 0.5, None, True, {"zz": 1}, {"preset": [1]}]
ODD_PLACES = [
    ("tasks",),
    ("models",),
    ("studies",),
    ("evaluation",),
    ("finetune",),
    ("threads",),
    ("tasks", "chain_sum"),
    ("tasks", "chain_sum", "sizes"),
    ("tasks", "chain_sum", "columns"),
    ("tasks", "chain_sum", "preset"),
    ("tasks", "chain_sum", "hf_splits"),
    ("models", "student"),
    ("models", "student", "architecture"),
    ("models", "student", "pretrain"),
    ("finetune", "lora"),
    ("studies", "distillation"),
    ("studies", "faithfulness"),
    ("studies", "faithfulness", "runs"),
    ("evaluation", "tasks"),
]


def put(config, place, value):
    node = config
    for key in place[:-1]:
        node = node.setdefault(key, {})
    node[place[-1]] = value
    return config


@pytest.mark.parametrize("place", ODD_PLACES, ids=[".".join(p) for p in ODD_PLACES])
def test_problems_returns_lines_and_never_raises(place):
    for value in ODD_VALUES:
        config = put(copy.deepcopy(BASE), place, copy.deepcopy(value))
        found = problems(config)
        assert isinstance(found, list) and all(isinstance(line, str) for line in found), found
        for line in found:
            assert KEY_PATH_LINE.match(line), (place, value, line)


@pytest.mark.parametrize("config", [None, [], "tasks: x", 3])
def test_a_config_that_is_not_a_mapping_is_one_line(config):
    assert problems(config) == [
        f"(top level): the config must be a mapping of sections, not {configcheck._kind(config)}"
    ]


def test_a_study_check_that_raises_is_one_line_naming_the_study():
    def broken(config):
        raise KeyError("teacher")

    study = {"teacher": "student", "student": "student", "tasks": ["chain_sum"]}
    config = put(copy.deepcopy(BASE), ("studies", "distillation"), study)
    found = configcheck.problems(config, SCHEMA, {"distillation": broken})
    assert found == ["studies.distillation: its check failed on this config (KeyError: 'teacher')"]


# --- the order: presets, schema, defaults, cross-references, studies --------------------------------


def test_schema_problems_come_alone_before_cross_references_and_studies():
    calls = []
    config = copy.deepcopy(BASE)
    config["models"]["student"]["pretrain"]["tasks"] = ["nope"]  # a cross-reference problem
    config["models"]["student"]["seed"] = "zero"  # a type problem
    config["studies"] = {"distillation": {"teacher": "x", "student": "x", "tasks": ["y"]}}
    found = configcheck.problems(config, SCHEMA, {"distillation": calls.append})
    assert found == ["models.student.seed: 'zero' is not of type 'integer'"]
    assert calls == []  # a study's check only sees a config the schema accepted


def test_cross_references_and_study_checks_report_every_problem_at_once():
    config = copy.deepcopy(BASE)
    config["tokenizer"] = {"tasks": ["nope"]}
    config["evaluation"] = {"models": ["teachr"], "tasks": ["chain_sum"]}
    config["tasks"]["chain_sum"]["sizes"] = {"test": 0}
    config["studies"] = {"distillation": {"teacher": "x", "student": "student", "tasks": ["y"]}}
    found = problems(config)
    assert [line.split(":")[0] for line in found] == [
        "tokenizer.tasks[0]",
        "evaluation.models[0]",
        "tasks.chain_sum.sizes.test",
        "studies.distillation.teacher",
        "studies.distillation.tasks[0]",
    ]


def test_problems_fills_in_defaults_once_types_are_valid():
    config = copy.deepcopy(BASE)
    assert problems(config) == []
    assert config["tasks"]["chain_sum"]["sizes"] == {"train": 1000, "validation": 100, "test": 200}
    assert config["evaluation"]["modes"] == ["direct", "cot"] and config["studies"] == {}


def test_presets_merge_before_the_schema_fills_defaults():
    config = copy.deepcopy(BASE)
    config["tasks"]["csqa"] = {"preset": "commonsense_qa", "sizes": {"train": 10}}
    assert problems(config) == []
    csqa = config["tasks"]["csqa"]
    assert csqa["task_type"] == "choice"  # the preset's, not the schema default (numeric)
    assert csqa["sizes"]["train"] == 10 and csqa["source"] == "hf"


def test_check_raises_one_line_per_problem():
    config = copy.deepcopy(BASE)
    config["models"]["student"]["pretrain"]["tasks"] = ["a", "b"]
    with pytest.raises(configcheck.ConfigError) as error:
        configcheck.check(config)
    assert str(error.value).splitlines() == [
        "models.student.pretrain.tasks[0]: unknown task 'a' (known: ['chain_sum'])",
        "models.student.pretrain.tasks[1]: unknown task 'b' (known: ['chain_sum'])",
    ]


def test_test_split_check_only_for_evaluated_tasks():
    config = copy.deepcopy(BASE)
    config["tasks"]["pretrain_only"] = {"source": "embedded", "sizes": {"test": 0}}
    config["evaluation"] = {"tasks": ["chain_sum"]}
    assert problems(config) == []  # not evaluated: an empty test split is fine
    config = copy.deepcopy(BASE)
    config["tasks"]["pretrain_only"] = {"source": "embedded", "sizes": {"test": 0}}
    assert problems(config) == [
        "tasks.pretrain_only.sizes.test: 0, but evaluation.tasks (empty: every task) evaluates "
        "'pretrain_only' on its test split (give it test examples, or do not evaluate it)"
    ]


def test_unknown_keys_are_named_one_line_each():
    config = copy.deepcopy(BASE)
    config["models"]["student"]["architecture"] = {"hidden": 64, "layers": 2}
    assert problems(config) == [
        f"models.student.architecture.{key}: unknown key (known: hidden_size, intermediate_size, "
        "max_position_embeddings, num_heads, num_layers)"
        for key in ("hidden", "layers")
    ]


def test_every_fixed_section_of_the_schema_rejects_unknown_keys():
    """Objects with `properties` are fixed sets of keys; only named maps stay open."""
    schema = yaml.safe_load(SCHEMA.read_text())
    open_ = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("properties") and node.get("additionalProperties") is not False:
                open_.append(path)
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    # if/then branches only narrow the types of keys their object already declares
    walk(schema, "")
    assert [p for p in open_ if "/if" not in p and "/then" not in p and "/else" not in p] == []


def test_schema_declares_exactly_the_known_studies():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert set(schema["properties"]["studies"]["properties"]) == set(studies.STUDIES)


def test_defaults_are_filled_in_nested_sections():
    config = yaml.safe_load((ROOT / "tests/configs/bad/unknown_task.yaml").read_text())
    validate(config, schema=str(SCHEMA))
    task = config["tasks"]["chain_sum"]
    assert task["sizes"] == {"train": 1000, "validation": 100, "test": 200}
    assert task["on_bad_rows"] == "error"
    assert config["models"]["student"]["architecture"]["hidden_size"] == 128
    assert config["models"]["student"]["trust_remote_code"] is False
