"""The library's import graph, read from the source with ``ast`` (no module is imported).

* No import cycle between modules of ``hf_robustmed``, lazy (function-level) imports included; imports under
  ``if TYPE_CHECKING:`` never run and do not count. Importing ``a.b.c`` runs the ``__init__`` of every package on
  the way that is not already a package of the importer, so those count as imported too; a package's
  ``__init__`` importing its own submodules is no cycle.
* The command line is the top layer: nothing below an entry point (``hf_robustmed.cli``,
  ``hf_robustmed.reproduce.cli``, any ``__main__``) imports one.
* No module imports a ``_private`` name from another module. A private *module* (``_kernels``, ``_workers``)
  is private to its package: any module inside that package (subpackages included) may import it.
* Production code never imports the test scaffolding of ``hf_robustmed.testing`` (the offline demo, which runs
  on its stand-ins, excepted).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "hf_robustmed"
SOURCE_ROOT = Path(__file__).resolve().parents[1]
TESTING = f"{PACKAGE}.testing"
ENTRY_POINTS = frozenset({f"{PACKAGE}.cli", f"{PACKAGE}.reproduce.cli"})
# The offline demo runs the pipeline on tiny stand-ins by design (see hf_robustmed.testing's docstring).
STANDIN_USERS = frozenset({f"{PACKAGE}.demo"})


@dataclass(frozen=True)
class Edge:
    """One import of an ``hf_robustmed`` module by another.

    Attributes:
        importer: The importing module.
        imported: The module whose code the import runs (a package stands for its ``__init__``).
        line: The import statement's line in the importer.
        names: The names the statement takes from ``imported`` (empty for ``import a.b`` or a submodule).
        lazy: Whether the statement is inside a function.
        type_only: Whether it is under ``if TYPE_CHECKING:`` (never runs).
    """

    importer: str
    imported: str
    line: int
    names: tuple[str, ...] = ()
    lazy: bool = False
    type_only: bool = False

    def __str__(self) -> str:
        kind = " (lazy)" if self.lazy else " (TYPE_CHECKING)" if self.type_only else ""
        return f"{self.importer} -> {self.imported}  [{source_file(self.importer)}:{self.line}{kind}]"


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its ``__init__.py``)."""
    found = {}
    for path in sorted((SOURCE_ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SOURCE_ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def source_file(module: str) -> str:
    return str(modules()[module].relative_to(SOURCE_ROOT))


def is_package(module: str) -> bool:
    return modules()[module].name == "__init__.py"


def package_of(module: str) -> str:
    """The package a module's relative imports start from (a package's own name for its ``__init__``)."""
    return module if is_package(module) else module.rpartition(".")[0]


def ancestors(module: str) -> list[str]:
    """The packages above ``module``, outermost first (``a``, ``a.b`` for ``a.b.c``)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def is_entry_point(module: str) -> bool:
    return module in ENTRY_POINTS or module.endswith(".__main__")


def absolute_base(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module name of a ``from … import`` statement's source."""
    if not node.level:
        return node.module or ""
    base = package_of(importer).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class _ImportVisitor(ast.NodeVisitor):
    """Collects an importer's statements as (statement, lazy, type_only)."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, bool, bool]] = []
        self._depth = 0
        self._type_only = 0

    def _function(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        guard = ast.unparse(node.test)
        if guard in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            self._type_only += 1
            for child in node.body:
                self.visit(child)
            self._type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append((node, self._depth > 0, self._type_only > 0))

    visit_Import = visit_ImportFrom = _import


@cache
def syntax_tree(module: str) -> ast.Module:
    return ast.parse(modules()[module].read_text(encoding="utf-8"), source_file(module))


def statements(module: str) -> list[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    visitor = _ImportVisitor()
    visitor.visit(syntax_tree(module))
    return visitor.found


def targets(importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, tuple[str, ...]]]:
    """The ``hf_robustmed`` modules a statement imports, each with the names taken from it."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in modules():
                yield alias.name, ()
        return
    base = absolute_base(importer, node)
    if base not in modules():
        return
    taken = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in modules():
            yield submodule, ()
        else:
            taken.append(alias.name)
    if taken or not is_package(base):
        yield base, tuple(taken)


@cache
def edges() -> tuple[Edge, ...]:
    """Every import between modules of the package, with the package ``__init__``s each one runs on the way."""
    found = []
    for importer in modules():
        for node, lazy, type_only in statements(importer):
            for imported, names in targets(importer, node):
                own = set(ancestors(importer)) | {importer}
                for module in [*ancestors(imported), imported]:
                    if module not in own:
                        taken = names if module == imported else ()
                        found.append(Edge(importer, module, node.lineno, taken, lazy, type_only))
    return tuple(found)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycle_through(start: str, component: set[str], by_pair: dict[tuple[str, str], Edge]) -> list[Edge]:
    """A shortest cycle from ``start`` back to itself inside one strongly connected component."""
    paths: dict[str, list[Edge]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for (importer, imported), edge in sorted(by_pair.items()):
                if importer != node or imported not in component:
                    continue
                if imported == start:
                    return [*paths[node], edge]
                if imported not in paths:
                    paths[imported] = [*paths[node], edge]
                    following.append(imported)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")


def import_cycles() -> list[tuple[list[str], list[Edge]]]:
    """Each strongly connected component of the runtime import graph, with one cycle through it as imports."""
    by_pair: dict[tuple[str, str], Edge] = {}
    graph: dict[str, set[str]] = {}
    for edge in edges():
        if not edge.type_only:
            by_pair.setdefault((edge.importer, edge.imported), edge)
            graph.setdefault(edge.importer, set()).add(edge.imported)
    return [
        (component, cycle_through(component[0], set(component), by_pair)) for component in strongly_connected(graph)
    ]


def private_modules_on_the_way(module: str) -> list[str]:
    """The ``_private`` packages and modules on the way to ``module`` (``a._b`` and ``a._b._c`` for ``a._b._c``)."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i, part in enumerate(parts) if is_private(part)]


def inside_owner(importer: str, private_module: str) -> bool:
    """Whether ``importer`` is in the package that owns ``private_module`` (so may import it)."""
    owner = private_module.rpartition(".")[0]
    return importer == owner or importer.startswith(owner + ".")


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports() -> list[str]:
    """Imports of private names from another module, and of private modules from outside their package."""
    findings = []
    for edge in edges():
        names = [name for name in edge.names if is_private(name)]
        if names:
            findings.append(f"{edge}: private name(s) {', '.join(names)}")
        foreign = [m for m in private_modules_on_the_way(edge.imported) if not inside_owner(edge.importer, m)]
        if foreign:
            findings.append(f"{edge}: private module {foreign[0]} of another package")
    return findings


def module_aliases(importer: str) -> dict[str, str]:
    """The local names that the importer's statements bind to ``hf_robustmed`` modules (``from . import blur``)."""
    aliases = {}
    for node, _, _ in statements(importer):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in modules()})
            continue
        base = absolute_base(importer, node)
        aliases.update({a.asname or a.name: f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules()})
    return aliases


def private_attribute_uses() -> list[str]:
    """Uses of another module's private names through the module (``blur._kernel``)."""
    findings = []
    for importer in modules():
        aliases = module_aliases(importer)
        for node in ast.walk(syntax_tree(importer)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and is_private(node.attr):
                if node.value.id in aliases:
                    used = f"{aliases[node.value.id]}.{node.attr}"
                    findings.append(f"{importer} uses {used}  [{source_file(importer)}:{node.lineno}]")
    return findings


def format_cycle(component: list[str], cycle: list[Edge]) -> str:
    chain = " -> ".join([cycle[0].importer, *(edge.imported for edge in cycle)])
    lines = [f"  {chain}", *(f"      {edge}" for edge in cycle)]
    others = sorted(set(component) - {edge.importer for edge in cycle})
    if others:
        lines.append(f"      (same cycle group: {', '.join(others)})")
    return "\n".join(lines)


def fail_listing(title: str, findings: list[str]) -> None:
    if findings:
        pytest.fail(f"{title}:\n" + "\n".join(findings), pytrace=False)


def test_the_graph_is_read():
    names = modules()
    assert {f"{PACKAGE}.corruptions.registry", f"{PACKAGE}.cli", TESTING} <= set(names)
    corruption_imports = {e.imported for e in edges() if e.importer == f"{PACKAGE}.corruptions"}
    assert f"{PACKAGE}.corruptions.api" in corruption_imports
    # A submodule's own package is not imported again: ``from .registry import …`` is no edge to the __init__.
    assert not any(e.importer.startswith(e.imported + ".") for e in edges())


def test_a_cycle_is_found_and_named():
    by_pair = {
        ("a", "b"): Edge(f"{PACKAGE}.cli", f"{PACKAGE}.files", 3),
        ("b", "a"): Edge(f"{PACKAGE}.files", f"{PACKAGE}.cli", 7, lazy=True),
    }
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert strongly_connected(graph) == [["a", "b"]]
    assert [e.line for e in cycle_through("a", {"a", "b"}, by_pair)] == [3, 7]
    assert "(lazy)" in str(by_pair[("b", "a")])
    assert "hf_robustmed/files.py:7 (lazy)" in format_cycle(["a", "b", "c"], list(by_pair.values()))


FAKE_PACKAGE = {
    "__init__.py": "",
    "cli.py": "from .lib import helper\n",
    "lib.py": "from . import _impl\nfrom .other import _secret\n\n\ndef helper():\n    from . import cli\n"
    "    return _impl._hidden\n",
    "_impl.py": "",
    "other.py": "import hf_robustmed.testing\n\n_secret = 1\n",
    "sub/__init__.py": "from ._inner import value\n",
    "sub/_inner.py": "value = 1\n",
    "user.py": "from .sub._inner import value\n",
    "testing/__init__.py": "",
}


def clear_caches() -> None:
    for cached in (modules, edges, syntax_tree):
        cached.cache_clear()


def test_the_checks_catch_what_they_forbid(tmp_path, monkeypatch):
    for name, text in FAKE_PACKAGE.items():
        (tmp_path / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / PACKAGE / name).write_text(text)
    monkeypatch.setattr(f"{__name__}.SOURCE_ROOT", tmp_path)
    clear_caches()
    try:
        [(component, cycle)] = import_cycles()
        assert component == [f"{PACKAGE}.cli", f"{PACKAGE}.lib"] and [e.lazy for e in cycle] == [False, True]
        upward = [
            (e.importer, e.line) for e in edges() if is_entry_point(e.imported) and not is_entry_point(e.importer)
        ]
        assert upward == [(f"{PACKAGE}.lib", 6)]
        private = "\n".join([*private_imports(), *private_attribute_uses()])
        assert "private name(s) _secret" in private and "private module hf_robustmed.sub._inner" in private
        assert "hf_robustmed.lib uses hf_robustmed._impl._hidden" in private and "sub/__init__" not in private
        assert [e.importer for e in edges() if e.imported == TESTING] == [f"{PACKAGE}.other"]
    finally:
        clear_caches()


def test_no_import_cycles():
    fail_listing("import cycles between hf_robustmed modules", [format_cycle(*found) for found in import_cycles()])


def test_nothing_below_the_command_line_imports_it():
    upward = [f"  {e}" for e in edges() if is_entry_point(e.imported) and not is_entry_point(e.importer)]
    fail_listing("library modules importing an entry point", upward)


def test_no_private_cross_module_imports():
    findings = [*private_imports(), *private_attribute_uses()]
    fail_listing("private cross-module imports", [f"  {finding}" for finding in findings])


def test_production_code_never_imports_the_test_scaffolding():
    leaks = [
        f"  {e}"
        for e in edges()
        if e.imported.startswith(TESTING) and not e.importer.startswith(TESTING) and e.importer not in STANDIN_USERS
    ]
    fail_listing(f"production modules importing {TESTING}", leaks)
