"""The import architecture of data_prep/ and models/ (docs/contracts.md, layout).

Every module is read with ``ast`` — nothing is imported, so the test is fast and sees the imports
inside functions too. Checked:

(a) no import cycle between project modules (function-level imports count: a cycle hidden in a
    function is still two modules that need each other);
(b) no upward arrow: ``data_prep`` never imports ``models``; inside ``models`` the layers are,
    lowest first, spec < frequentist = bayes < study < simulation < api (and the face,
    ``models/__init__.py``) < cli; a module imports only its own layer or lower ones;
(c) no module imports another module's private name (``from x import _y``);
(d) a project import inside a function carries a ``# lazy:`` comment saying why it cannot sit
    at the top of the module: on its line, the line just above it, or the line just above the
    block of imports it belongs to;
(e) no top-level ``common`` package, no module left at a path the redesign moved away from, and
    no project import (anywhere in the repository) of a module that does not exist;
(f) no test file imports another test file (shared test code lives in helper modules).

``ALLOWED`` lists the known violations in files that are being edited elsewhere; remove an entry
once its file is fixed (the test then also fails on an entry that no longer matches anything).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data_prep", "models")
# every folder whose Python files may import the project (checked for imports of missing modules)
IMPORTERS = ("data_prep", "models", "scripts", "tests", "benchmarks")

# rank of each layer, lowest first; equal ranks may import each other (frequentist ↔ bayes)
LAYERS = {
    "data_prep": 0,
    "models.spec": 1,
    "models.frequentist": 2,
    "models.bayes": 2,
    "models.study": 3,
    "models.simulation": 4,
    "models.api": 5,
    "models": 5,  # the face (models/__init__.py) sits beside models.api, on top of the rooms
    "models.cli": 6,
}

# paths the redesign moved (84fbb35); a file reappearing here would shadow or duplicate a room
OLD_PATHS = (
    "common", "configs",
    "data_prep/spectrum.py", "data_prep/extremes.py", "data_prep/quadrature.py",
    "data_prep/simulate_censored.py", "data_prep/synthetic.py", "data_prep/demo_employment.py",
    "data_prep/synthetic_output.py", "data_prep/shaping.py", "data_prep/simulate.py",
    "data_prep/demo_system.py", "data_prep/maps.py",
    "models/cli.py", "models/spec.py", "models/results.py", "models/factor_data.py",
    "models/formula.py", "models/identification.py", "models/inputs.py", "models/instruments.py",
    "models/quadratic.py", "models/compare.py", "models/figures.py", "models/report.py",
    "models/quadratic_plot.py", "models/study.py", "models/study_config.py",
    "models/study_plan.py", "models/study_run.py", "models/tables",
    "models/recovery.py", "models/recovery_report.py", "models/recovery_run.py", "models/sbc.py",
    "models/frequentist/het_coverage.py",
)

# Known violations in files other people are editing right now, as (check, module, detail):
# detail is the imported module for (b) and (d), "module.name" for (c), the cycle for (a).
# Delete an entry when its file has been fixed (test_allow_list_is_current insists).
ALLOWED = {
    # (d) function-level project imports without a `# lazy:` reason
}


@dataclass(frozen=True)
class Import:
    """One imported name: ``target`` is the project module it resolves to."""

    module: str          # the importing module
    target: str          # the imported project module
    name: str | None     # the name taken from ``target`` (``from target import name``), if any
    line: int
    in_function: bool
    lazy_reason: bool    # a ``# lazy:`` comment on the statement or the line above it


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def project_modules() -> dict[str, Path]:
    """Every module of data_prep/ and models/, by dotted name."""
    return {module_name(p): p for package in PACKAGES
            for p in sorted((ROOT / package).rglob("*.py"))}


def is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module of ``from ... import`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _function_lines(tree: ast.AST) -> set[int]:
    """Line numbers of the import statements nested in a function body."""
    lines = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    lines.add(node.lineno)
    return lines


def _import_lines(tree: ast.AST) -> dict[int, int]:
    """Line (1-based) -> first line of the import statement that covers it."""
    return {line: node.lineno for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for line in range(node.lineno, node.end_lineno + 1)}


def _has_lazy_reason(source_lines: list[str], node: ast.stmt, covered: dict[int, int]) -> bool:
    """A ``# lazy: <why>`` comment on a line of the statement, or on the line just above it or
    just above the block of import statements (no line between them) that it ends."""
    first = node.lineno
    while first - 1 in covered:   # climb to the first statement of the import block
        first = covered[first - 1]
    return any(re.search(r"#\s*lazy:\s*\S", text)
               for text in source_lines[max(first - 2, 0):node.end_lineno])


def imports_of(path: Path) -> list[Import]:
    """The project imports of one file, each imported name resolved to its module."""
    known = project_modules()
    module = module_name(path)
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    nested = _function_lines(tree)
    covered = _import_lines(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, path.name == "__init__.py")
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            pairs = [(f"{base}.{a.name}", None) if f"{base}.{a.name}" in known else (base, a.name)
                     for a in node.names]
        else:
            continue
        for target, name in pairs:
            if is_project(target):
                found.append(Import(module, target, name, node.lineno, node.lineno in nested,
                                    _has_lazy_reason(lines, node, covered)))
    return sorted(found, key=lambda i: i.line)


@lru_cache(maxsize=None)
def all_imports() -> tuple[Import, ...]:
    return tuple(i for path in project_modules().values() for i in imports_of(path))


def layer(module: str) -> str:
    """The layer a project module belongs to: the longest prefix named in LAYERS (``models``
    alone is the face, not a prefix: a new room of models must be given its own layer)."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        prefix = ".".join(parts[:k])
        if prefix in LAYERS and (prefix != "models" or module == "models"):
            return prefix
    raise AssertionError(f"{module} belongs to no layer: add its room to LAYERS in {__file__}")


def _unexpected(check: str, findings: dict[tuple[str, str], str]) -> list[str]:
    """Findings of ``check`` not covered by ALLOWED, as report lines."""
    return [text for (module, detail), text in sorted(findings.items())
            if (check, module, detail) not in ALLOWED]


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a self-loop), each
    reported as one concrete cycle through its first module (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_cycle_through(c, edges) for c in components]


def _cycle_through(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    start, members = component[0], set(component)
    paths, frontier = {start: [start]}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ()) & members):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return component


def test_every_module_has_a_layer():
    """Every module of data_prep/ and models/ is in one of the LAYERS."""
    for module in project_modules():
        layer(module)


def test_no_import_cycle():
    """(a) No two project modules import each other, directly or through others."""
    edges: dict[str, set[str]] = {}
    for i in all_imports():
        if i.target != i.module and i.target in project_modules():
            edges.setdefault(i.module, set()).add(i.target)
    cycles = {(c[0], " -> ".join(c)): " -> ".join(c) for c in find_cycles(edges)}
    bad = _unexpected("a", cycles)
    assert not bad, "import cycles:\n  " + "\n  ".join(bad)


def test_no_upward_import():
    """(b) A module imports only its own layer or lower ones (data_prep never imports models;
    nothing but models.cli imports models.cli)."""
    findings = {}
    for i in all_imports():
        here, there = layer(i.module), layer(i.target)
        if LAYERS[there] > LAYERS[here]:
            findings[(i.module, i.target)] = (f"{i.module}:{i.line} imports {i.target} "
                                              f"({here} must not import {there})")
    bad = _unexpected("b", findings)
    assert not bad, "upward imports:\n  " + "\n  ".join(bad)


def test_no_private_name_from_another_module():
    """(c) ``from x import _y`` only when x is the importing module itself."""
    findings = {}
    for i in all_imports():
        if i.name and i.name.startswith("_") and not i.name.startswith("__") \
                and i.target != i.module:
            findings[(i.module, f"{i.target}.{i.name}")] = \
                f"{i.module}:{i.line} imports the private {i.target}.{i.name}"
    bad = _unexpected("c", findings)
    assert not bad, ("private names used across modules (make them public):\n  "
                     + "\n  ".join(bad))


def test_function_level_imports_say_why():
    """(d) A project import inside a function has a ``# lazy: <reason>`` comment."""
    findings = {}
    for i in all_imports():
        if i.in_function and not i.lazy_reason:
            findings.setdefault((i.module, i.target),
                                f"{i.module}:{i.line} imports {i.target} inside a function "
                                f"without a '# lazy:' reason")
    bad = _unexpected("d", findings)
    assert not bad, ("function-level imports: move them to the top of the module, or say why "
                     "not with '# lazy: ...':\n  " + "\n  ".join(bad))


def test_no_old_layout():
    """(e) No top-level ``common`` package and nothing left at a path the redesign moved."""
    left = [p for p in OLD_PATHS if (ROOT / p).exists() or (ROOT / f"{p}.py").exists()]
    assert not left, f"old layout still present: {', '.join(left)}"


def test_project_imports_resolve():
    """(e) Every project import anywhere in the repository names an existing module (or a
    name defined in one): an old module path fails here."""
    known = project_modules()
    missing = []
    for folder in IMPORTERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                missing += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}"
                            for n in names if is_project(n) and n not in known]
    assert not missing, "imports of modules that do not exist:\n  " + "\n  ".join(missing)


def test_allow_list_is_current():
    """Every ALLOWED entry still matches a finding, so a fixed file leaves no stale exemption."""
    found = set()
    for i in all_imports():
        if i.in_function and not i.lazy_reason:
            found.add(("d", i.module, i.target))
        if LAYERS[layer(i.target)] > LAYERS[layer(i.module)]:
            found.add(("b", i.module, i.target))
        if i.name and i.name.startswith("_") and not i.name.startswith("__") \
                and i.target != i.module:
            found.add(("c", i.module, f"{i.target}.{i.name}"))
    stale = sorted(entry for entry in ALLOWED if entry[0] != "a" and entry not in found)
    assert not stale, f"ALLOWED entries that no longer match anything: {stale}"


def test_no_test_file_imports_another():
    """Test files share code through helper modules (tests/fixtures.py, tests/references.py,
    conftest.py), never by importing another test file: that couples two subjects and breaks
    when a file moves (a bare ``from test_x import`` works only from test_x's folder)."""
    tests = {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[-1] in tests]
    assert not found, "test files importing test files:\n  " + "\n  ".join(found)
