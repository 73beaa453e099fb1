#!/usr/bin/env python3
"""Print the code-shape counts issue 12 tracks, for the package ``mgattest/``.

Standard library only (``ast``, ``tokenize``), so it runs on any checkout:

    python scripts/code_metrics.py [--list] [PACKAGE_DIR]

How each figure is counted:

* **public signatures**: ``def``/``async def`` whose name has no leading underscore
  (dunder methods such as ``__init__`` and ``__call__`` count too: they are callable
  API), defined at module level or directly in a class whose name has no leading
  underscore, in ANY module of the package: a function an internal (``_``) module
  exposes to the other modules is a seam too, and counting only unprefixed modules would
  let a rename to ``_`` names empty the count.  A signature *mentions Any* when any parameter or
  return annotation contains the name ``Any`` (``Any``, ``typing.Any``, ``dict[str, Any]``).
* **10+ parameters**: every function (public or not) with ten or more parameters,
  ``self``/``cls`` excluded, ``*args``/``**kwargs`` included.
* **function-local imports**: ``import`` statements (one per statement, not per name)
  nested anywhere inside a function body, in modules outside ``cli/``.
* **noqa / type: ignore**: comments (found with ``tokenize``, so strings never count).
  A comment *carries a reason* when text follows the directive and its codes, e.g.
  ``# noqa: PLC0415 - heavy import`` or ``# type: ignore[attr-defined] - untyped lib``.
* **importable modules**: every ``.py`` file of the package (``__init__.py`` = the package),
  and apart from that the public ones: not ``__init__.py``, no ``_`` path part.
* **public names**: per public module, its ``__all__`` when it has one, otherwise every
  top-level def, class or assignment without a leading underscore (re-exports through
  ``import`` are not counted twice).
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

NOQA = re.compile(r"#\s*noqa\b(?::\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?(?P<rest>.*)$", re.I)
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(?:\[[^\]]*\])?(?P<rest>.*)$")
MANY_PARAMETERS = 10


@dataclass
class Metrics:
    """Running totals over the package's modules."""

    public_signatures: int = 0
    any_signatures: list[str] = field(default_factory=list)
    json_alias_signatures: list[str] = field(default_factory=list)
    many_parameters: list[tuple[str, int]] = field(default_factory=list)
    local_imports: list[str] = field(default_factory=list)
    noqa: list[tuple[str, bool]] = field(default_factory=list)
    type_ignores: list[tuple[str, bool]] = field(default_factory=list)
    modules: int = 0
    public_modules: int = 0
    public_names: int = 0


def has_reason(rest: str) -> bool:
    """True when a directive is followed by an explanation (not only punctuation)."""
    return bool(re.search(r"[A-Za-z]", rest))


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of ``path`` inside the package rooted at ``root``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_public_module(path: Path, root: Path) -> bool:
    """No path part below the package root starts with an underscore (``__init__`` aside)."""
    parts = path.relative_to(root).with_suffix("").parts
    return not any(p.startswith("_") and p != "__init__" for p in parts)


# Aliases of Any for data that is genuinely arbitrary JSON (mgattest._jsonutil): counted
# apart, so the Any share cannot fall just by renaming Any.
JSON_ALIASES = ("JSONValue", "JSONObject")


def mentions_any(node: ast.AST | None, names: tuple[str, ...] = ("Any",)) -> bool:
    """True when an annotation expression names ``Any`` (or one of ``names``)."""
    if node is None:
        return False
    pattern = re.compile(r"\b(" + "|".join(names) + r")\b")
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in names:
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in names:
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and pattern.search(sub.value):
            return True
    return False


def parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> list[ast.arg]:
    """All parameters of ``fn`` (``self``/``cls`` of a method left out)."""
    a = fn.args
    params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    if a.vararg:
        params.append(a.vararg)
    if a.kwarg:
        params.append(a.kwarg)
    if in_class and params and params[0].arg in ("self", "cls"):
        params = params[1:]
    return params


def signature_mentions_any(fn: ast.FunctionDef | ast.AsyncFunctionDef,
                           names: tuple[str, ...] = ("Any",)) -> bool:
    """True when a parameter or the return annotation of ``fn`` names ``Any`` (or ``names``)."""
    return mentions_any(fn.returns, names) or any(mentions_any(p.annotation, names)
                                                  for p in parameters(fn, False))


def public_names(tree: ast.Module) -> int:
    """``len(__all__)`` when the module declares it, else its public top-level names."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return len(ast.literal_eval(node.value))
            except ValueError:  # computed __all__ (e.g. sorted(_EXPORTS)): fall back
                break
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return sum(1 for n in names if not n.startswith("_"))


def scan_functions(tree: ast.Module, where: str, public_module: bool, outside_cli: bool, m: Metrics) -> None:
    """Count signatures, parameter piles and local imports of one module."""

    def visit(node: ast.AST, in_class: bool, public_scope: bool, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{where}:{child.lineno} {child.name}"
                if public_scope and not in_function and not child.name.startswith("_") or (
                    public_scope and not in_function and in_class and child.name.startswith("__")
                    and child.name.endswith("__")
                ):
                    m.public_signatures += 1
                    if signature_mentions_any(child):
                        m.any_signatures.append(name)
                    elif signature_mentions_any(child, JSON_ALIASES):
                        m.json_alias_signatures.append(name)
                count = len(parameters(child, in_class))
                if count >= MANY_PARAMETERS:
                    m.many_parameters.append((name, count))
                visit(child, False, False, True)
            elif isinstance(child, ast.ClassDef):
                visit(child, True, public_scope and not in_function and not child.name.startswith("_"), in_function)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                if in_function and outside_cli:
                    m.local_imports.append(f"{where}:{child.lineno}")
            else:
                visit(child, in_class, public_scope, in_function)

    visit(tree, False, public_module, False)


def scan_comments(source: str, where: str, m: Metrics) -> None:
    """Collect ``noqa`` and ``type: ignore`` comments and whether each gives a reason."""
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        at = f"{where}:{tok.start[0]}"
        if match := NOQA.search(tok.string):
            m.noqa.append((at, has_reason(match["rest"])))
        if match := TYPE_IGNORE.search(tok.string):
            m.type_ignores.append((at, has_reason(match["rest"])))


def measure(root: Path) -> Metrics:
    """Walk every module of the package at ``root``."""
    m = Metrics()
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        where = str(path)
        public = is_public_module(path, root)
        m.modules += 1
        if public and path.name != "__init__.py":
            m.public_modules += 1
        if public:
            m.public_names += public_names(tree)
        outside_cli = "cli" not in path.relative_to(root).parts
        scan_functions(tree, where, True, outside_cli, m)
        scan_comments(source, where, m)
    return m


def report(m: Metrics, show_lists: bool) -> None:
    """Print the figures (and, with ``show_lists``, where each comes from)."""
    share = 100 * len(m.any_signatures) / max(m.public_signatures, 1)
    print(f"public signatures mentioning Any: {len(m.any_signatures)}/{m.public_signatures} ({share:.1f} %)")
    json_share = 100 * len(m.json_alias_signatures) / max(m.public_signatures, 1)
    print(f"  ... and others naming a JSON alias of Any ({', '.join(JSON_ALIASES)}): "
          f"{len(m.json_alias_signatures)} ({json_share:.1f} %)")
    print(f"functions with {MANY_PARAMETERS}+ parameters: {len(m.many_parameters)}")
    for name, count in sorted(m.many_parameters, key=lambda x: -x[1]):
        print(f"  {count:3d}  {name}")
    print(f"function-local imports outside cli/: {len(m.local_imports)}")
    with_reason = sum(1 for _, r in m.noqa if r)
    print(f"noqa comments: {len(m.noqa)} ({with_reason} with a reason)")
    ti_reason = sum(1 for _, r in m.type_ignores if r)
    print(f"type: ignore comments: {len(m.type_ignores)} ({ti_reason} with a reason)")
    print(f"importable modules: {m.modules} ({m.public_modules} public, packages' __init__ aside)")
    print(f"public names: {m.public_names}")
    if show_lists:
        print("\nsignatures mentioning Any:", *m.any_signatures, sep="\n  ")
        print("\nsignatures naming a JSON alias:", *m.json_alias_signatures, sep="\n  ")
        print("\nfunction-local imports:", *m.local_imports, sep="\n  ")
        print("\nnoqa without reason:", *(w for w, r in m.noqa if not r), sep="\n  ")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default=str(Path(__file__).resolve().parent.parent / "mgattest"))
    parser.add_argument("--list", action="store_true", help="also list where each count comes from")
    args = parser.parse_args(argv)
    report(measure(Path(args.package)), args.list)
    return 0


if __name__ == "__main__":
    sys.exit(main())
