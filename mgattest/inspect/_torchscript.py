"""TorchScript archives: what the compiled ``code/`` can reach.

``torch.jit.save`` writes the module's TorchScript source under ``<record>/code/``
(``__torch__/...py`` files) and ``data.pkl``/``constants.pkl`` naming the classes that
source defines (``__torch__.M``). ``torch.jit.load`` compiles and runs that source, and
reads the pickles with its own unpickler, which imports no Python modules. So the
questions are about the code, and only these reach beyond tensor math:

* operators outside the ``aten``/``prim``/``quantized`` namespaces (``torch.ops.<ns>``:
  native code from whatever library registered them) and ``torch.classes`` custom
  classes (suspicious);
* operators that read files or talk to other processes: ``from_file``,
  ``torch.distributed`` / RPC (dangerous);
* ``__torch__`` classes or functions the archive does not define, and Python imports
  (suspicious);
* code that does not parse (malformed: it cannot be analysed).

An ordinary module (layers, math, control flow) yields no finding.
"""

from __future__ import annotations

import ast
import posixpath

from mgattest.inspect._pickle_scan import ScanContext
from mgattest.inspect._report import DANGEROUS, MALFORMED, SUSPICIOUS

# What TorchScript's own unpickler resolves in data.pkl / constants.pkl besides the
# archive's classes: identity-like list builders and a type tag (torch/jit/_pickle.py).
PICKLE_HELPERS = frozenset(("torch.jit._pickle", name) for name in (
    "build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
    "build_tensor_from_id", "restore_type_tag"))
_CORE_NAMESPACES = frozenset({"aten", "prim", "quantized", "_quantized", "profiler"})
_IO_OPS = frozenset({"from_file", "_nested_from_file"})
_NETWORK_MARKERS = ("distributed", "rpc", "c10d")


def code_module(member: str) -> str | None:
    """``__torch__.torch.nn.modules.linear`` for ``rec/code/__torch__/torch/nn/modules/linear.py``."""
    path = f"/{member}"
    if "/code/" not in path or not member.endswith(".py"):
        return None
    rel = path.split("/code/", 1)[1][:-3]
    return rel.replace("/", ".") if rel.startswith("__torch__") else None


def analyse(sources: dict[str, bytes], ctx: ScanContext) -> frozenset[tuple[str, str]]:
    """Add findings for the TorchScript ``sources`` (member name → bytes).

    Returns what the archive's pickles may name: the ``(module, class)`` pairs it
    defines and TorchScript's pickle helpers.
    """
    trees: dict[str, ast.Module] = {}
    for member, raw in sorted(sources.items()):
        try:
            trees[member] = ast.parse(raw.decode("utf-8"), filename=member)
        except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
            ctx.add(MALFORMED, "torchscript", f"TorchScript code {member} does not parse: it "
                    "cannot be analysed")
    # (a member outside code/__torch__ has no module and defines nothing a pickle can name)
    defined = frozenset((module, node.name) for m, tree in trees.items()
                        if (module := code_module(m)) is not None
                        for node in tree.body if isinstance(node, ast.ClassDef))
    qualified = {f"{code_module(m)}.{node.name}" for m, tree in trees.items()
                 for node in tree.body
                 if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    for member, tree in trees.items():
        nodes = list(ast.walk(tree))
        inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                ctx.add(SUSPICIOUS, "torchscript", f"TorchScript code {member} has a Python "
                        f"import (line {node.lineno})")
            elif isinstance(node, ast.Attribute) and id(node) not in inner:
                dotted = _dotted(node)  # whole chains only: torch.ops.aten.add, not torch.ops
                if dotted:
                    _check_reference(dotted, member, node.lineno, qualified, ctx)
    return defined | PICKLE_HELPERS


def _dotted(node: ast.Attribute) -> str | None:
    parts = []
    current: ast.AST = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    parts.append(current.id)
    return ".".join(reversed(parts))


def _check_reference(dotted: str, member: str, line: int, defined: set[str],
                     ctx: ScanContext) -> None:
    where = f"{posixpath.basename(member)} line {line}"
    parts = dotted.split(".")
    if parts[-1] in _IO_OPS or any(p in _NETWORK_MARKERS for p in parts):
        ctx.add(DANGEROUS, "torchscript", f"TorchScript code calls {dotted} ({where}): it "
                "reads files or talks to other processes")
    elif parts[:2] == ["torch", "ops"] or parts[0] == "ops":
        namespace = parts[2] if parts[0] == "torch" and len(parts) > 2 else \
            parts[1] if len(parts) > 1 else ""
        if namespace not in _CORE_NAMESPACES:
            ctx.add(SUSPICIOUS, "torchscript", f"TorchScript code calls the custom operator "
                    f"{dotted} ({where}): native code outside torch's core operators")
    elif parts[:2] == ["torch", "classes"]:
        ctx.add(SUSPICIOUS, "torchscript", f"TorchScript code uses the custom class {dotted} "
                f"({where})")
    elif parts[0] == "__torch__" and not any(
            dotted == q or dotted.startswith(q + ".") for q in defined):
        ctx.add(SUSPICIOUS, "torchscript", f"TorchScript code names {dotted} ({where}), which "
                "the archive does not define")
