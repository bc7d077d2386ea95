"""Which ftlab code a rule script runs, as one hash, so library edits invalidate exactly that stage.

Snakemake's code trigger sees only the script file. `stage_hash(script)` follows the script's
imports of `ftlab` modules transitively (static `import` statements anywhere, functions included,
parsed with `ast`; not `importlib` calls) and hashes the source of every module reached. The hash
goes into the rule's `params:`, so a library edit reruns only the stages whose scripts reach it.

Modules are named by their path in the package: `a/b.py` is "a.b", `a/__init__.py` is "a", the
package's own `__init__.py` is "__init__". Importing a submodule runs its parents' `__init__.py`,
so those are reached too. An import of ftlab code that names no file raises `UnresolvedImport`: a
hash that silently missed a module would leave stale results looking fresh.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "ftlab"
PACKAGE_DIR = Path(__file__).resolve().parent
TOP = "__init__"  # the name of the package's own __init__.py


class UnresolvedImport(ValueError):
    """An import of ftlab code that resolves to no file under the package."""


def _file(name: str) -> Path | None:
    """The file of module `name`, or None. A package (a/__init__.py) wins over a.py, as in Python."""
    base = PACKAGE_DIR.joinpath(*name.split("."))  # TOP: base.py is the package's __init__.py
    return next((p for p in (base / "__init__.py", base.with_suffix(".py")) if p.is_file()), None)


def module_file(name: str) -> Path:
    """The file of module `name` ("a.b", "a", or "__init__")."""
    if (path := _file(name)) is None:
        raise FileNotFoundError(f"no module {name!r} under {PACKAGE_DIR}")
    return path


def all_modules() -> list[str]:
    """Every .py file under the package, as a dotted module name."""
    names = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts) or TOP)
    return sorted(names)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _unresolved(stmt: ast.stmt, path: Path) -> UnresolvedImport:
    return UnresolvedImport(
        f"{_shown(path)}:{stmt.lineno}: '{ast.unparse(stmt)}' does not resolve to a file"
        f" under {_shown(PACKAGE_DIR)}/"
    )


def _binds(path: Path, name: str) -> bool:
    """Whether the file binds `name` at module level (or may: `import *`, `__getattr__`)."""
    names, todo = set(), list(ast.parse(path.read_bytes(), str(path)).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue  # a body binds nothing at module level
        todo.extend(ast.iter_child_nodes(node))
    return bool({name, "*", "__getattr__"} & names)


def _from_base(node: ast.ImportFrom, name: str | None, path: Path) -> str | None:
    """The module name X of `from X import ...`, or None if X is not ftlab code."""
    if node.level == 0:
        head, _, rest = (node.module or "").partition(".")
        return (rest or TOP) if head == PACKAGE else None
    if name is None:
        return None  # a rule script is in no package: not ftlab code (and fails at run time)
    own = [] if name == TOP else name.split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    up = node.level - 1
    if up > len(package):
        raise _unresolved(node, path)  # above the top package
    parts = package[: len(package) - up] + (node.module.split(".") if node.module else [])
    return ".".join(parts) or TOP


def _from_target(base: str, name: str, stmt: ast.ImportFrom, path: Path) -> str:
    """The module `from base import name` reaches: the submodule, else `base` itself. A name taken
    from a package must be bound in its __init__: else it is most likely a submodule moved away."""
    sub = name if base == TOP else f"{base}.{name}"
    if name != "*" and _file(sub) is not None:
        return sub
    file = _file(base)
    if file is None or (name != "*" and file.name == "__init__.py" and not _binds(file, name)):
        raise _unresolved(stmt, path)
    return base


def _imports(path: Path, name: str | None) -> set[str]:
    """The modules file `path` imports (`name`: its module name; None for a rule script)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head, _, rest = alias.name.partition(".")
                if head == PACKAGE and _file(rest or TOP) is None:
                    raise _unresolved(ast.Import([alias], lineno=node.lineno), path)
                if head == PACKAGE:
                    found.add(rest or TOP)
        elif isinstance(node, ast.ImportFrom):
            if (base := _from_base(node, name, path)) is None:
                continue
            for alias in node.names:
                stmt = ast.ImportFrom(node.module, [alias], node.level, lineno=node.lineno)
                found.add(_from_target(base, alias.name, stmt, path))
    return found


# Execution infrastructure that cannot change an output, left out of every hash so that editing
# it reruns nothing: the worker runs a rule script unchanged in a pre-imported fork
# (tests/test_worker.py and a smoke run check that its tables equal in-process ones).
UNHASHED = frozenset({"worker", "worker_child", "worker_protocol", "worker_server"})


def modules(script: str | Path) -> list[str]:
    """Sorted names of the ftlab modules `script` reaches, transitively, with their parents."""
    reached: set[str] = set()
    todo = _imports(Path(script), None)
    while todo:
        parts = todo.pop().split(".")  # the module and its parent packages, whose __init__ runs
        for mod in ({TOP} | {".".join(parts[:i]) for i in range(1, len(parts) + 1)}) - reached:
            if mod not in UNHASHED and (path := _file(mod)) is not None:
                reached.add(mod)
                todo |= _imports(path, mod) - reached
    return sorted(reached)


@functools.cache
def stage_hash(script: str | Path) -> str:
    """Hash of the ftlab modules a rule script reaches (not the script: Snakemake sees that)."""
    h = hashlib.sha256()
    for mod in modules(script):
        h.update(mod.encode() + b"\0" + module_file(mod).read_bytes())
    return h.hexdigest()[:16]
