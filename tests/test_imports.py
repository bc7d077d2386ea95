"""The ftlab import graph, read statically with `ast`: no cycles, and the layering the code hash
relies on (a module's hash covers every module it reaches, so a reach that is too wide reruns
stages for edits that cannot change them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "ftlab"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "scripts" / PACKAGE


def module_names(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Every module under `root` as a dotted name: `a/b.py` is "ftlab.a.b", `a/__init__.py` "ftlab.a"."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join((package, *parts))] = path
    return out


def import_graph(root: Path = PACKAGE_DIR, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the ftlab modules it imports: every `import`/`from` statement, those inside
    functions too (a lazy import still runs, and still counts for the code hash).

    `from X import name` is an edge to the submodule X.name when there is one, else to X (a name
    bound there). A submodule's implicit import of its parent packages is no edge: a package's
    `__init__` may import its own submodules without that counting as a loop.
    """
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = own_package.split(".")
                    base_parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first, deterministic order)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_ftlab_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_graph_sees_lazy_relative_and_package_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")  # lazy
    (pkg / "b.py").write_text("from .sub import c\n")  # relative
    (pkg / "sub" / "__init__.py").write_text("from . import c\nX = 1\n")  # its own submodule
    (pkg / "sub" / "c.py").write_text("import pkg.a\n")
    (pkg / "sub" / "d.py").write_text("from . import X\nfrom .. import b\n")  # names, parent
    graph = import_graph(pkg, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.sub.c"},
        "pkg.sub": {"pkg.sub.c"},
        "pkg.sub.c": {"pkg.a"},
        "pkg.sub.d": {"pkg.sub", "pkg.b"},
    }
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    (pkg / "sub" / "c.py").write_text("")
    # pkg.sub.c runs pkg.sub's __init__ when imported, which imports pkg.sub.c: no loop
    assert find_cycle(import_graph(pkg, "pkg")) is None


def test_the_launcher_knows_nothing_of_the_trainer():
    graph = import_graph()
    assert "ftlab.finetune" not in reach(graph, "ftlab.launch")
    assert "ftlab.launch" in graph["ftlab.finetune"]


def test_models_reach_no_openai_client():
    """An HTTP-retry tweak in the OpenAI client must not rerun every evaluation and fine-tune."""
    graph = import_graph()
    for module in ("ftlab.models", "ftlab.hub", "ftlab.evaluate", "ftlab.finetune"):
        assert not {"ftlab.openai_teacher", "ftlab.teachers"} & reach(graph, module), module
