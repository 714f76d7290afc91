"""No import cycle anywhere (docs/architecture.md): neither between two modules nor between
two of an app's packages (``billing.metering`` and ``billing.invoicing``, say), counting the
imports that run (``if TYPE_CHECKING:`` imports are left out: they never run)."""

from __future__ import annotations

from collections import defaultdict

import grimp
import pytest

ROOTS = ("billing", "plans", "wallets", "core", "config")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def modules() -> dict[str, set[str]]:
    graph = grimp.build_graph(*ROOTS, exclude_type_checking_imports=True)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others(modules):
    assert cycles(modules) == []


def test_no_two_packages_of_an_app_import_each_other(modules):
    packages: dict[str, set[str]] = defaultdict(set)
    for module, imported in modules.items():
        for other in imported:
            if package(module) != package(other):
                packages[package(module)].add(package(other))
    assert cycles(packages) == []
