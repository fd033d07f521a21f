"""Packages depend one way, core ← context ← directory ← reports ← callbacks ← voice, desk ← app, and tests stand
alone; read from the source."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import keys

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "context", "directory", "reports", "callbacks", "voice", "desk", "carrier")


def _modules() -> dict[str, Path]:
    """Every module of the app by dotted name: the packages' modules and app.py."""
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _imported(name: str) -> Iterator[str]:
    """The app's modules that module name imports, at any level (an import inside a function counts)."""
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from voice import admin_api` imports the module voice.admin_api; `from voice.x import y` voice.x.
            targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                       for alias in node.names]
        else:
            continue
        yield from (target for target in targets if target in MODULES)


IMPORTS = {name: set(_imported(name)) for name in MODULES}


def _package(module: str) -> str:
    return module.split(".")[0]


def _package_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, targets in IMPORTS.items():
        for target in targets:
            edge = (_package(module), _package(target))
            if edge[0] != edge[1]:
                edges.setdefault(edge[0], set()).add(edge[1])
    return edges


def _route_modules() -> set[str]:
    """Modules that define a Flask blueprint or attach routes to one (they import a `bp`), outside core (whose
    core.openapi gives every API its route decorator and serves the docs) and app (tested on its own below)."""
    routes = set()
    for name, tree in TREES.items():
        if _package(name) in ("core", "app"):
            continue
        for node in ast.walk(tree):
            defines = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Blueprint"
            attaches = isinstance(node, ast.ImportFrom) and any(alias.name == "bp" for alias in node.names)
            if defines or attaches:
                routes.add(name)
                break
    return routes


def _imports_of(package: str) -> set[str]:
    return {target for module, targets in IMPORTS.items() if _package(module) == package for target in targets}


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for target in sorted(edges.get(node, ())):
            if found := visit(target, [*path, node]):
                return found
        done.add(node)
        return None

    return next((found for node in sorted(edges) if (found := visit(node, []))), None)


def test_the_graph_is_read():
    assert "directory.routing" in IMPORTS["callbacks.dialer"]
    assert "voice.admin_api" in _route_modules() and "desk.pages" in _route_modules()


def test_packages_import_each_other_without_a_cycle():
    assert _cycle(_package_edges()) is None


def test_directory_imports_only_core_and_context():
    assert {_package(m) for m in _imports_of("directory")} <= {"core", "context", "directory"}


def test_directory_imports_no_flask():
    for name in (m for m in MODULES if _package(m) == "directory"):
        for node in ast.walk(TREES[name]):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(m.split(".")[0] in ("flask", "werkzeug") for m in modules), name


@pytest.mark.parametrize("package", ["callbacks", "context", "directory"])
def test_lower_packages_import_no_route_module(package):
    assert not _imports_of(package) & _route_modules()


@pytest.mark.parametrize("package", ["context", "directory"])
def test_lower_packages_import_nothing_from_app(package):
    assert "app" not in _imports_of(package)


def test_callbacks_import_nothing_from_voice_or_desk():
    assert not {m for m in _imports_of("callbacks") if _package(m) in ("voice", "desk")}


def test_callbacks_import_nothing_from_app():
    assert "app" not in _imports_of("callbacks")


# --- the tests themselves ------------------------------------------------------------------------------------------

TEST_TREES = {path.relative_to(ROOT).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
              for path in (ROOT / "tests").rglob("*.py")}


def _test_imports(tree: ast.Module) -> Iterator[tuple[str, str]]:
    """(module, name) for each name a test file imports, at any level; name is "" for `import module`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from ((node.module, alias.name) for alias in node.names)


def _private_uses(tree: ast.Module) -> Iterator[str]:
    """The app's private names a test file reaches: imported by name, or read off an imported app module."""
    modules = {}
    for module, name in _test_imports(tree):
        dotted = f"{module}.{name}" if name else module
        if name.startswith("_") and not name.startswith("__") and module in MODULES:
            yield dotted
        elif dotted in MODULES:
            modules[name or module] = dotted
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            yield f"{modules[node.value.id]}.{node.attr}"


def test_no_test_module_imports_another():
    found = {path: sorted({f"{module}.{name}" if name else module for module, name in _test_imports(tree)
                           if f"{module}.{name}".startswith(("tests.test_", "tests.conftest"))})
             for path, tree in TEST_TREES.items()}
    assert {path: names for path, names in found.items() if names} == {}


def test_tests_reach_no_private_name_of_the_app():
    found = {path: sorted(set(_private_uses(tree))) for path, tree in TEST_TREES.items()}
    assert {path: names for path, names in found.items() if names} == {}


def test_tests_name_no_redis_key_by_hand():
    """Keys are spelled in core/keys.py and read through their stores; no test writes one out."""
    found = {path: [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                    and isinstance(node.value, str) and node.value.startswith(f"{keys.PREFIX}:")]
             for path, tree in TEST_TREES.items()}
    assert {path: keys for path, keys in found.items() if keys} == {}
