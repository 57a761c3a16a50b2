"""Fail when modules, or the folders of one package, import each other in a circle.

import-linter's layers contract (pyproject.toml) keeps the top-level folders in order; this
check covers what it cannot see: a circle of modules anywhere (`a` imports `b` imports
`a`, however long), and a circle of sibling folders or modules inside any package. The
graph is grimp's (import-linter's own), built from the source without running it.

    .venv/bin/python .ci/import_cycles.py [PACKAGE]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping

import grimp


def circles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def sibling_edges(graph: grimp.ImportGraph, package: str) -> dict[str, set[str]]:
    """Imports between the direct children of `package`, each child standing for its
    whole subtree (a folder imports another if any module in it does)."""
    depth = package.count(".") + 1
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.find_descendants(package):
        if module.count(".") < depth:
            continue
        child = ".".join(module.split(".")[: depth + 1])
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(package + ".") and imported.count(".") >= depth:
                other = ".".join(imported.split(".")[: depth + 1])
                if other != child:
                    edges[child].add(other)
    return edges


def main(package: str) -> int:
    graph = grimp.build_graph(package)
    problems = []
    modules = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    for circle in circles(modules):
        problems.append(("modules", circle))
    packages = [m for m in graph.modules if graph.find_children(m)]
    for pkg in sorted(packages):
        for circle in circles(sibling_edges(graph, pkg)):
            problems.append((f"folders and modules in {pkg}", circle))
    for what, circle in problems:
        print(f"circle of {what}: {' <-> '.join(circle)}")
        for a in circle:
            for b in circle:
                if a != b and graph.direct_import_exists(
                    importer=a, imported=b, as_packages=a in packages or b in packages
                ):
                    print(f"  {a} imports {b}")
    if problems:
        return 1
    print(f"{package}: no modules or folders import each other in a circle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "haishin"))
