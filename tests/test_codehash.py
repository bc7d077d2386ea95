"""The per-stage code hash follows a rule script's ftlab imports, so a library edit changes the hash
of exactly the stages that reach the edited module (what makes Snakemake rerun only those)."""

from pathlib import Path

import pytest

from ftlab import codehash

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# Modules under scripts/ftlab/ that no rule script runs, so no stage hash needs to cover them.
NOT_RUN_BY_ANY_RULE = {
    "cli",  # the `ftlab` command-line entry point (pyproject [project.scripts])
    "codehash",  # run by the Snakefile itself (rules/common.smk) to compute these hashes
    "configcheck",  # run by the Snakefile itself (rules/common.smk) to validate the config
    "openai_teacher",  # imported by name; hashed per openai teacher (rules/inputs/rationales.smk)
    "worker",  # codehash.UNHASHED: runs a script unchanged in a fork, cannot change an output
    "worker_child",  # codehash.UNHASHED: the worker's forked child (see "worker")
    "worker_protocol",  # codehash.UNHASHED: what the worker's two sides agree on
    "worker_server",  # codehash.UNHASHED: the worker itself (`python -m ftlab.worker`)
}

TREE = {
    "__init__.py": '"""the package"""\n',
    "a.py": "from . import b\nimport json\n",
    "b.py": "from .c import helper\n\ndef f():\n    from ftlab import d  # lazy\n",
    "c.py": "def helper():\n    return 1\n",
    "d.py": "X = 1\n",
    "e.py": "Y = 2\n",
    "stats.py": "MEAN = 0\n",
    "tables.py": "def write():\n    pass\n",
    # level 2 from a package's __init__: `..` of studies/__init__.py is the top package
    "studies/__init__.py": "from .. import stats\n",
    "studies/common.py": "helper = 1\n",
    "studies/other.py": "Z = 3\n",
    "studies/distillation/__init__.py": "",
    # levels 1, 2 and 3 from a module of a sub-subpackage, one inside a function
    "studies/distillation/summary.py": (
        "from .plots import draw\nfrom ..common import helper\n\n"
        "def run():\n    from ...tables import write\n"
    ),
    "studies/distillation/plots.py": "def draw():\n    pass\n",
    "studies/faithfulness/__init__.py": "from . import score\n",  # level 1 from a package
    "studies/faithfulness/score.py": "from .. import other\n",
}

SUMMARY = [
    "__init__",
    "stats",
    "studies",
    "studies.common",
    "studies.distillation",
    "studies.distillation.plots",
    "studies.distillation.summary",
    "tables",
]


@pytest.fixture
def package(tmp_path, monkeypatch):
    for name, text in TREE.items():
        (tmp_path / "ftlab" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ftlab" / name).write_text(text)
    (tmp_path / "stage_a.py").write_text("from ftlab import a\n")
    (tmp_path / "stage_e.py").write_text("import ftlab.e\nimport os\n")
    monkeypatch.setattr(codehash, "PACKAGE_DIR", tmp_path / "ftlab")
    codehash.stage_hash.cache_clear()
    yield tmp_path
    codehash.stage_hash.cache_clear()


def _script(package, source, name="stage.py"):
    (package / name).write_text(source)
    return package / name


def _hash(path):
    codehash.stage_hash.cache_clear()
    return codehash.stage_hash(path)


def test_modules_are_followed_transitively_including_relative_and_lazy_imports(package):
    assert codehash.modules(package / "stage_a.py") == ["__init__", "a", "b", "c", "d"]
    assert codehash.modules(package / "stage_e.py") == ["__init__", "e"]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import ftlab\n", ["__init__"]),
        ("from ftlab import studies\n", ["__init__", "stats", "studies"]),
        ("from ftlab.studies import distillation\n", SUMMARY[:3] + ["studies.distillation"]),
        ("from ftlab.studies.distillation import summary\n", SUMMARY),
        ("import ftlab.studies.distillation.summary as s\n", SUMMARY),
        ("from ftlab.studies.distillation.summary import run\n", SUMMARY),
        ("from ftlab.studies.common import helper\n", SUMMARY[:4]),
        (
            "def main():\n    from ftlab.studies import faithfulness\n",
            SUMMARY[:3] + ["studies.faithfulness", "studies.faithfulness.score", "studies.other"],
        ),
    ],
)
def test_each_import_form_is_followed_with_its_parent_packages(package, source, expected):
    assert codehash.modules(_script(package, source)) == expected


def test_editing_a_module_changes_only_the_stages_that_reach_it(package):
    before_a, before_e = _hash(package / "stage_a.py"), _hash(package / "stage_e.py")
    with open(package / "ftlab" / "c.py", "a") as f:
        f.write("# a comment is an edit too\n")
    assert _hash(package / "stage_a.py") != before_a
    assert _hash(package / "stage_e.py") == before_e


def test_editing_a_subpackage_module_or_parent_init_changes_the_stages_that_reach_it(package):
    summary = _script(package, "from ftlab.studies.distillation import summary\n", "s.py")
    common = _script(package, "from ftlab.studies import common\n", "c.py")
    before_summary, before_common = _hash(summary), _hash(common)
    with open(package / "ftlab" / "studies" / "distillation" / "plots.py", "a") as f:
        f.write("# edited\n")
    assert _hash(summary) != before_summary
    assert _hash(common) == before_common
    before_summary = _hash(summary)
    with open(package / "ftlab" / "studies" / "__init__.py", "a") as f:
        f.write("# edited\n")  # a parent of both
    assert _hash(summary) != before_summary and _hash(common) != before_common


@pytest.mark.parametrize(
    "source, statement",
    [
        ("from ftlab import nosuch\n", "from ftlab import nosuch"),
        ("from ftlab import a, nosuch\n", "from ftlab import nosuch"),
        ("import ftlab.nosuch\n", "import ftlab.nosuch"),
        ("from ftlab.nosuch import x\n", "from ftlab.nosuch import x"),
        ("from ftlab.studies.nosuch import x\n", "from ftlab.studies.nosuch import x"),
    ],
)
def test_an_unresolvable_import_in_a_script_names_the_file_and_line(package, source, statement):
    script = _script(package, "import os\n\n" + source)
    with pytest.raises(codehash.UnresolvedImport) as e:
        codehash.modules(script)
    assert str(e.value) == (
        f"{script}:3: '{statement}' does not resolve to a file under {package / 'ftlab'}/"
    )
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "source, statement",
    [
        ("from .nosuch import x", "from .nosuch import x"),
        ("from .. import nosuch", "from .. import nosuch"),
        ("from .... import x", "from .... import x"),  # above the top package
    ],
)
def test_an_unresolvable_relative_import_in_a_module_names_the_file_and_line(
    package, source, statement
):
    bad = package / "ftlab" / "studies" / "distillation" / "bad.py"
    bad.write_text(f"import os\n\ndef f():\n    {source}\n")
    script = _script(package, "from ftlab.studies.distillation import bad\n")
    with pytest.raises(codehash.UnresolvedImport, match=f"^{bad}:4: '{statement}' does not"):
        codehash.modules(script)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from ftlab.studies.common import anything\n", SUMMARY[:4]),  # a plain module: any name
        ("from ftlab.studies import stats\n", SUMMARY[:3]),  # bound in studies/__init__.py
        ("from ftlab.e import Y\nfrom ftlab import e\n", ["__init__", "e"]),
    ],
)
def test_a_name_defined_in_a_module_is_not_an_unresolved_import(package, source, expected):
    assert codehash.modules(_script(package, source)) == expected


def test_a_name_a_package_does_not_bind_is_a_submodule_gone(package):
    # `from ftlab import distillation` after distillation.py moved to studies/ must not pass as a
    # name in ftlab/__init__.py: that would leave the moved module out of the hash
    with pytest.raises(codehash.UnresolvedImport, match=r"stage.py:1: 'from ftlab import gone'"):
        codehash.modules(_script(package, "from ftlab import gone\n"))
    with pytest.raises(codehash.UnresolvedImport, match=r"'from ftlab.studies import gone'"):
        codehash.modules(_script(package, "from ftlab.studies import gone\n"))
    (package / "ftlab" / "studies" / "__init__.py").write_text("from .common import *\n")
    script = _script(package, "from ftlab.studies import maybe\n")  # unknowable: let it pass
    assert codehash.modules(script) == ["__init__", "studies", "studies.common"]


def test_module_files_and_all_modules(package):
    assert codehash.module_file("studies.distillation") == (
        package / "ftlab" / "studies" / "distillation" / "__init__.py"
    )
    assert codehash.module_file("__init__") == package / "ftlab" / "__init__.py"
    assert codehash.module_file("studies.common") == package / "ftlab" / "studies" / "common.py"
    assert codehash.all_modules() == [
        *["__init__", "a", "b", "c", "d", "e", "stats", "studies", "studies.common"],
        *["studies.distillation", "studies.distillation.plots", "studies.distillation.summary"],
        *["studies.faithfulness", "studies.faithfulness.score", "studies.other", "tables"],
    ]


def test_the_script_itself_is_not_hashed_snakemake_code_trigger_sees_it(package):
    before = _hash(package / "stage_a.py")
    with open(package / "stage_a.py", "a") as f:
        f.write("# edited script\n")
    assert _hash(package / "stage_a.py") == before


def test_hash_is_stable_and_short(package):
    h = _hash(package / "stage_a.py")
    assert h == _hash(package / "stage_a.py") and len(h) == 16


def test_every_real_module_is_reached_by_some_rule_script():
    reached = set()
    for script in sorted(SCRIPTS.glob("*.py")):
        reached |= set(codehash.modules(script))  # also: no rule script has an unresolved import
    modules = set(codehash.all_modules())
    assert sorted(modules - reached - NOT_RUN_BY_ANY_RULE) == []
    assert sorted(NOT_RUN_BY_ANY_RULE - (modules - reached)) == []  # the allow-list is not stale


def test_real_scripts_reach_their_own_modules():
    assert "evaluate" in codehash.modules(SCRIPTS / "evaluate.py")
    assert {"audit", "provenance", "tables"} <= set(codehash.modules(SCRIPTS / "audit.py"))
