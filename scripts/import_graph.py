"""The import graph of tracekit, measured: import circles, imports running up a floor, loose modules.

Every `import tracekit...` counts, wherever it is written (module level, inside a function, under
`if TYPE_CHECKING:`), since a function-level import hides a dependency without removing it.

Floors, bottom to top (a module may import its own floor or the ones below, never one above):

  0  foundation  tracekit/__init__.py, record, versions, _lazy
  1  stages      every other subpackage: sources, teachers, parse, sandbox, verify, filters, ledger,
                 dedup, decontam, mix, stats, publish, train, eval
  2  build       recipe/ (the models gather every component's config, the executor's included) and
                 engine/ (plan, output layout, run, executors, build process, status: it calls the
                 stages, which never import it); the two must not form a circle between files
  3  cli

A private name (`_name`) imported from another package is reported too: a package's own helpers
are its business.

Usage: python scripts/import_graph.py [--json]   (exit 1 when a circle, an upward import or a private
import across packages exists, or more than MAX_LOOSE modules sit at tracekit/'s top level)
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LOOSE = 4
FOUNDATION = {"tracekit", "tracekit.record", "tracekit.versions", "tracekit._lazy"}
FLOOR_OF_PACKAGE = {"recipe": 2, "engine": 2, "cli": 3}
FLOOR_NAMES = ("foundation", "stages", "build", "cli")


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: set[tuple[str, str]] = field(default_factory=set)
    private: set[str] = field(default_factory=set)  # "importer: module.name" of a _private name


def _package(module: str) -> str:
    """The subpackage (or loose module) of tracekit a module belongs to."""
    return ".".join(module.split(".")[:2])


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package at root/tracekit."""
    mods = {}
    for f in sorted((root / "tracekit").rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _imported(node: ast.AST, module: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: resolve against the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    # `from pkg import name`: an edge to pkg.name when that is a module, else to pkg
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def build_graph(root: Path) -> Graph:
    g = Graph(modules=module_files(root))
    for mod, path in g.modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            _note_private(g, node, mod)
            for target in _imported(node, mod, path.name == "__init__.py", g.modules):
                if not target.startswith("tracekit"):
                    continue
                while target not in g.modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != mod:
                    g.edges.add((mod, target))
    return g


def _note_private(g: Graph, node: ast.AST, mod: str) -> None:
    """`from tracekit.x import _name` in a module of another package than x: a private import."""
    if not isinstance(node, ast.ImportFrom) or node.level or not (node.module or "").startswith("tracekit."):
        return
    for a in node.names:
        if a.name.startswith("_") and _package(node.module or "") != _package(mod):
            g.private.add(f"{mod}: {node.module}.{a.name}")


def floor(module: str) -> int:
    if module in FOUNDATION:
        return 0
    top = module.split(".")[1]
    return FLOOR_OF_PACKAGE.get(top, 1)


def circles(g: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    succ: dict[str, list[str]] = {m: [] for m in g.modules}
    for a, b in sorted(g.edges):
        succ[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in g.modules:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if i < len(succ[node]):
                work.append((node, i + 1))
                nxt = succ[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(found)


def upward(g: Graph) -> list[tuple[str, str]]:
    return sorted((a, b) for a, b in g.edges if floor(b) > floor(a))


def loose_modules(g: Graph) -> list[str]:
    """Modules sitting directly in tracekit/ (the package's own __init__ not counted)."""
    return sorted(m for m, p in g.modules.items() if m.count(".") == 1 and p.name != "__init__.py")


def measure(root: Path = REPO) -> dict[str, object]:
    g = build_graph(root)
    return {
        "modules": len(g.modules),
        "imports": len(g.edges),
        "circles": circles(g),
        "upward": [f"{a} -> {b} ({FLOOR_NAMES[floor(a)]} -> {FLOOR_NAMES[floor(b)]})" for a, b in upward(g)],
        "loose": loose_modules(g),
        "private": sorted(g.private),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the measurement as JSON")
    ap.add_argument("--root", type=Path, default=REPO, help="checkout to measure (default: this one)")
    args = ap.parse_args(argv)
    m = measure(args.root)
    if args.json:
        print(json.dumps(m, indent=1))
    else:
        circ, up, loose = m["circles"], m["upward"], m["loose"]
        assert isinstance(circ, list) and isinstance(up, list) and isinstance(loose, list)
        print(f"{m['modules']} modules, {m['imports']} imports between them")
        print(f"import circles: {len(circ)}")
        for c in circ:
            print("  " + " <-> ".join(c))
        print(f"imports running up a floor: {len(up)}")
        for u in up:
            print("  " + u)
        print(f"modules at tracekit/'s top level: {len(loose)} (at most {MAX_LOOSE}): {', '.join(loose)}")
        private = m["private"]
        assert isinstance(private, list)
        print(f"private names imported from another package: {len(private)}")
        for name in private:
            print("  " + name)
    ok = not m["circles"] and not m["upward"] and not m["private"] and len(m["loose"]) <= MAX_LOOSE  # type: ignore[arg-type]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
