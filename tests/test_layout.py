"""The house rules of the source tree: no import cycle between modules (function-local imports
included), no private name imported from another package, no module over 400 lines."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("xfer", "sweeps")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, str]]:
    """(module, name) for each ``from module import name`` / ``import module`` of the project's
    modules in ``path``; name is "" for a plain import. A name that is itself a module counts as
    that module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.append((sub, "") if sub in known else (node.module, alias.name))
        elif isinstance(node, ast.Import):
            out += [(alias.name, "") for alias in node.names]
    return [(m, n) for m, n in out if m in known]


def test_no_import_cycle():
    known = modules()
    graph = {m: sorted({dep for dep, _ in imports(p, known) if dep != m})
             for m, p in known.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in graph[module]:
            # a package's __init__ importing its own submodules is how packages export names
            if module == dep.rsplit(".", 1)[0] and known[module].name == "__init__.py":
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep] if dep in path else [module, dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(known):
        if module not in state:
            visit(module, [module])


def test_no_private_name_across_packages():
    known = modules()
    bad = []
    for module, path in known.items():
        package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
        for dep, name in imports(path, known):
            dep_package = dep if known[dep].name == "__init__.py" else dep.rsplit(".", 1)[0]
            if name.startswith("_") and dep_package != package:
                bad.append(f"{module} imports {dep}.{name}")
    assert not bad, "; ".join(bad)


def test_library_does_not_import_the_orchestration():
    """``xfer`` works without Ray Tune's driver code: nothing in it imports ``sweeps``."""
    known = modules()
    bad = [f"{m} imports {dep}" for m, p in known.items() if m.startswith("xfer")
           for dep, _ in imports(p, known) if dep.startswith("sweeps")]
    assert not bad, "; ".join(bad)


def test_no_module_over_the_line_limit():
    long = {m: n for m, p in modules().items()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


# The library's layers: a package imports only the packages below it and the base (BASE: the
# top-level modules errors, units, io, schema, memory, kinds and the xfer.boundary package, which
# imports only errors and kinds; the base imports nothing above it). The model does not know the
# training loop's files; the analysis knows neither training nor downstream.
BASE = {"xfer.errors", "xfer.units", "xfer.io", "xfer.schema", "xfer.memory", "xfer.kinds",
        "xfer.boundary"}
BOUNDARY_IMPORTS = {"xfer.errors", "xfer.kinds", "xfer.boundary"}
LAYERS = {
    "xfer.data": set(),
    "xfer.model": {"xfer.data"},
    "xfer.training": {"xfer.data", "xfer.model"},
    "xfer.analysis": {"xfer.data"},
    "xfer.downstream": {"xfer.data", "xfer.model", "xfer.training", "xfer.analysis"},
}


def forbidden_imports(allowed: Callable[[str, str], bool]) -> list[str]:
    """"M imports D" for each import of a project module that ``allowed(package, dep_package)``
    refuses (a package: the first two parts of a dotted name, e.g. xfer.model or xfer.io)."""
    known = modules()

    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    return sorted({f"{module} imports {dep}" for module, path in known.items()
                   for dep, _ in imports(path, known) if not allowed(top(module), top(dep))})


def test_packages_import_only_the_layers_below() -> None:
    bad = forbidden_imports(lambda package, dep: package not in LAYERS or dep not in LAYERS
                            or dep == package or dep in LAYERS[package])
    assert not bad, "; ".join(bad)


def test_the_base_imports_only_the_base() -> None:
    bad = forbidden_imports(lambda package, dep: package not in BASE or dep in (
        BOUNDARY_IMPORTS if package == "xfer.boundary" else BASE))
    assert not bad, "; ".join(bad)
