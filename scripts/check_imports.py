#!/usr/bin/env python3
"""Check mgattest's import graph against the layering of docs/architecture.md.

Standard library only. Every ``import``/``from ... import`` of the package counts,
at top level, under ``if TYPE_CHECKING:`` or inside a function (a lazy import is
still a dependency). Modules map to packages:

* ``cli``, ``integrations``, ``loading``, ``policy``, ``attest``, ``tlog``, ``inspect``,
  ``ca``, ``crypt``: the subpackages, by their first name part;
* **leaf**: ``mgattest.errors`` and every ``mgattest._*`` module. Every package may
  import them; they import only each other;
* **root**: ``mgattest/__init__.py`` (``__version__`` and the lazy ``mgattest.load`` function
  re-export) and ``mgattest/__main__.py``. Reading ``__version__`` from the root is
  allowed everywhere; the root may import ``cli`` and ``loading``.

Allowed edges between packages (besides imports inside one package):

    cli    -> loading, policy, attest, tlog, inspect, ca, crypt
    integrations -> loading, policy, attest, tlog, inspect
    loading -> policy, attest, tlog, inspect, crypt
    policy -> attest, tlog, inspect
    attest -> tlog
    ca, crypt, inspect, tlog -> leaf only

The package graph must also be free of cycles. Exit status 1 names each offending
import as ``file:line``; 0 when the graph fits.

    python scripts/check_imports.py [--graph]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "mgattest"
PACKAGES = ("cli", "integrations", "loading", "policy", "attest", "tlog", "inspect", "ca", "crypt")
LEAF = "leaf"
ROOT = "root"

ALLOWED: dict[str, frozenset[str]] = {
    "cli": frozenset({"loading", "policy", "attest", "tlog", "inspect", "ca", "crypt"}),
    "integrations": frozenset({"loading", "policy", "attest", "tlog", "inspect"}),
    "loading": frozenset({"policy", "attest", "tlog", "inspect", "crypt"}),
    "policy": frozenset({"attest", "tlog", "inspect"}),
    "attest": frozenset({"tlog"}),
    "tlog": frozenset(),
    "inspect": frozenset(),
    "ca": frozenset(),
    "crypt": frozenset(),
    LEAF: frozenset(),
    ROOT: frozenset({"cli", "loading"}),
}

# Known violations, each with the reason it is tolerated for now. Keys are
# (importing module, imported module). Remove an entry as soon as its import goes
# (a stale entry is printed as a note, not an error, so merging the fix stays green).
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import of an mgattest module by another."""

    source: str  # dotted name of the importing module
    target: str  # dotted name of the imported module
    path: Path
    line: int

    @property
    def where(self) -> str:
        """``file:line`` of the import statement."""
        return f"{self.path}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    """Dotted name of the module at ``path`` (``root`` is the package directory)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    """The package (or ``leaf``/``root``) that ``module`` belongs to."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return ROOT
    if parts[1] in PACKAGES:
        return parts[1]
    if parts[1] == "errors" or parts[1].startswith("_"):
        return LEAF
    raise ValueError(f"{module}: not mapped to a layer; add it to scripts/check_imports.py")


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """Absolute module name a ``from`` import refers to (``None`` outside mgattest)."""
    if node.level == 0:
        return node.module
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, root: Path, modules: set[str]) -> Iterator[Import]:
    """Every import of an mgattest module in the file at ``path``."""
    module = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield Import(module, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node, module, path.name == "__init__.py")
            if base is None or base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                # `from mgattest.x import y` imports the module mgattest.x.y when it is one.
                submodule = f"{base}.{alias.name}"
                yield Import(module, submodule if submodule in modules else base, path, node.lineno)


def collect(root: Path) -> list[Import]:
    """All intra-package imports of the package at ``root``."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(p, root) for p in files}
    return [imp for path in files for imp in imports_of(path, root, modules)]


def allowed(imp: Import) -> bool:
    """True when the layering permits ``imp``."""
    src, dst = layer(imp.source), layer(imp.target)
    if src == dst:
        return True
    if dst == ROOT:
        # Only the root's own constants (``from mgattest import __version__``) may be read.
        return imp.target == PACKAGE and src != LEAF
    return dst == LEAF or dst in ALLOWED[src]


def reaches_into(imp: Import) -> bool:
    """True when ``imp`` crosses into another package's internal (``_``) module: packages
    talk through each other's public names (the package, or its public modules such as
    ``errors``), never through ``mgattest.<package>._module``."""
    src, dst = layer(imp.source), layer(imp.target)
    if src == dst or dst in (LEAF, ROOT):
        return False
    return any(part.startswith("_") for part in imp.target.split(".")[2:])


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the package graph as a list of nodes, or ``None``."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def check(imports: list[Import]) -> list[str]:
    """Problems found in ``imports`` (empty when the graph fits the layering)."""
    problems: list[str] = []
    used_exceptions: set[tuple[str, str]] = set()
    edges: dict[str, set[str]] = {}
    for imp in imports:
        key = (imp.source, imp.target)
        if key in KNOWN_EXCEPTIONS:
            used_exceptions.add(key)
            continue
        if reaches_into(imp):
            problems.append(f"{imp.where}: {imp.source} imports {imp.target}, an internal "
                            f"module of {layer(imp.target)}: import its public name instead")
        if not allowed(imp):
            problems.append(f"{imp.where}: {imp.source} ({layer(imp.source)}) imports {imp.target} "
                            f"({layer(imp.target)}): not allowed by docs/architecture.md")
        src, dst = layer(imp.source), layer(imp.target)
        # The root's `__version__` is a constant, not a dependency on the whole package.
        if src != dst and dst != ROOT:
            edges.setdefault(src, set()).add(dst)
    for key in sorted(set(KNOWN_EXCEPTIONS) - used_exceptions):
        print(f"note: known exception {key[0]} -> {key[1]} no longer occurs; delete it from "
              "KNOWN_EXCEPTIONS in scripts/check_imports.py", file=sys.stderr)
    if cycle := find_cycle(edges):
        problems.append("package cycle: " + " -> ".join(cycle))
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: print problems, exit 1 when there are any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default=str(Path(__file__).resolve().parent.parent / PACKAGE))
    parser.add_argument("--graph", action="store_true", help="print the package graph")
    args = parser.parse_args(argv)
    root = Path(args.package)
    imports = collect(root)
    if args.graph:
        pairs = sorted({(layer(i.source), layer(i.target)) for i in imports if layer(i.source) != layer(i.target)})
        for src, dst in pairs:
            print(f"{src} -> {dst}")
    for key, reason in KNOWN_EXCEPTIONS.items():
        if any((i.source, i.target) == key for i in imports):
            print(f"known exception: {key[0]} -> {key[1]} ({reason})", file=sys.stderr)
    problems = check(imports)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check_imports: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_imports: {len(imports)} imports fit the layering of docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
