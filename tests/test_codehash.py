"""The per-stage code hash follows a rule script's ftlab imports, so a library edit changes the hash
of exactly the stages that reach the edited module (what makes Snakemake rerun only those)."""

from pathlib import Path

import pytest

from ftlab import codehash

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def package(tmp_path, monkeypatch):
    pkg = tmp_path / "ftlab"
    pkg.mkdir()
    (pkg / "a.py").write_text("from . import b\nimport json\n")
    (pkg / "b.py").write_text(
        "from .c import helper\n\ndef f():\n    from ftlab import d  # lazy\n"
    )
    (pkg / "c.py").write_text("def helper():\n    return 1\n")
    (pkg / "d.py").write_text("X = 1\n")
    (pkg / "e.py").write_text("Y = 2\n")
    (tmp_path / "stage_a.py").write_text("from ftlab import a, logs_not_here\n")
    (tmp_path / "stage_e.py").write_text("import ftlab.e\nimport os\n")
    monkeypatch.setattr(codehash, "PACKAGE_DIR", pkg)
    codehash.stage_hash.cache_clear()
    yield tmp_path
    codehash.stage_hash.cache_clear()


def _hash(path):
    codehash.stage_hash.cache_clear()
    return codehash.stage_hash(path)


def test_modules_are_followed_transitively_including_relative_and_lazy_imports(package):
    assert codehash.modules(package / "stage_a.py") == ["a", "b", "c", "d"]
    assert codehash.modules(package / "stage_e.py") == ["e"]


def test_editing_a_module_changes_only_the_stages_that_reach_it(package):
    before_a, before_e = _hash(package / "stage_a.py"), _hash(package / "stage_e.py")
    with open(package / "ftlab" / "c.py", "a") as f:
        f.write("# a comment is an edit too\n")
    assert _hash(package / "stage_a.py") != before_a
    assert _hash(package / "stage_e.py") == before_e


def test_the_script_itself_is_not_hashed_snakemake_code_trigger_sees_it(package):
    before = _hash(package / "stage_a.py")
    with open(package / "stage_a.py", "a") as f:
        f.write("# edited script\n")
    assert _hash(package / "stage_a.py") == before


def test_hash_is_stable_and_short(package):
    h = _hash(package / "stage_a.py")
    assert h == _hash(package / "stage_a.py") and len(h) == 16


def test_real_scripts_reach_their_own_modules_only():
    for script, module in [("evaluate.py", "evaluate"), ("score_faithfulness.py", "faithfulness")]:
        if not (SCRIPTS / script).exists():
            continue  # stage still being written
        assert module in codehash.modules(SCRIPTS / script)
    assert "faithfulness" not in codehash.modules(SCRIPTS / "evaluate.py")
    assert codehash.modules(SCRIPTS / "audit.py") == sorted(
        set(codehash.modules(SCRIPTS / "audit.py"))
    )
    assert {"audit", "provenance", "tables"} <= set(codehash.modules(SCRIPTS / "audit.py"))
