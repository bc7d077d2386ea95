"""Which ftlab code a rule script runs, as one hash, so library edits invalidate exactly that stage.

Snakemake's code trigger sees only the script file. `stage_hash(script)` follows the script's
imports of `ftlab` modules transitively (static `import` statements, parsed with `ast`) and hashes
the source of every module reached. The hash goes into the rule's `params:`, so editing
`ftlab/faithfulness.py` reruns only the stages whose scripts reach that module.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "ftlab"
PACKAGE_DIR = Path(__file__).resolve().parent


def _imported_modules(source: str, current: str | None) -> set[str]:
    """Top-level ftlab module names imported by `source` (`current`: the module's own name)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0 and mod == PACKAGE or (node.level == 1 and not mod):
                found.update(
                    alias.name for alias in node.names
                )  # from ftlab import x / from . import x
            elif node.level == 0 and mod.startswith(PACKAGE + "."):
                found.add(mod.split(".")[1])
            elif node.level == 1 and current is not None:
                found.add(mod.split(".")[0])  # from .x import y
    return {m for m in found if (PACKAGE_DIR / f"{m}.py").exists()}


def modules(script: str | Path) -> list[str]:
    """Sorted ftlab modules reached from `script`, transitively."""
    todo = _imported_modules(Path(script).read_text(), None)
    seen: set[str] = set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo |= _imported_modules((PACKAGE_DIR / f"{mod}.py").read_text(), mod) - seen
    return sorted(seen)


@functools.cache
def stage_hash(script: str | Path) -> str:
    """Hash of the ftlab modules a rule script reaches (not the script: Snakemake sees that)."""
    h = hashlib.sha256()
    for mod in modules(script):
        h.update(mod.encode() + b"\0" + (PACKAGE_DIR / f"{mod}.py").read_bytes())
    return h.hexdigest()[:16]
