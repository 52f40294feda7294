"""Every module of the twoends package, parsed (no import): shared by the architecture and error tests."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "twoends"


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "twoends.head.kernels"; a package is its __init__: "twoends.head"
    path: Path
    tree: ast.Module
    is_package: bool


def modules() -> list[Module]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out.append(Module(".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"), str(path)), is_package))
    return out


def imports(module: Module) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import anywhere in the module, functions and classes included.

    ``from .x import y`` is resolved against the module's package; ``from . import y`` and
    ``from pkg import y`` give ``pkg.y`` when ``pkg.y`` is a module of twoends, else ``pkg``.
    """
    known = {m.name for m in modules_cached()}
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    out = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in known else target, node.lineno))
    return out


_CACHE: list[Module] = []


def modules_cached() -> list[Module]:
    if not _CACHE:
        _CACHE.extend(modules())
    return _CACHE
