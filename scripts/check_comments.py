#!/usr/bin/env python3
"""Every ``# noqa`` and ``# type: ignore`` must name its codes and say why.

ruff has no rule for this (PGH004 only asks for codes), so this small check does it:

    # noqa: PLC0415 - heavy (torch), only for .pt files        <- accepted
    # type: ignore[arg-type]  # cryptography's stubs are too narrow  <- accepted
                                      (mypy wants the reason as a second comment)
    # noqa: PLC0415                                            <- refused: no reason
    # noqa                                                     <- refused: no code

Exit status 1 names each offending comment as ``file:line``.

    python scripts/check_comments.py [PATH ...]   (default: mgattest scripts)
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

NOQA = re.compile(r"#\s*noqa\b(?P<codes>:\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?(?P<rest>.*)$", re.I)
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")
REPO = Path(__file__).resolve().parent.parent

# Files exempt from the check (none: every suppression in the package gives its reason).
NOT_YET: frozenset[str] = frozenset()


def directives(path: Path) -> Iterator[tuple[int, str, re.Match[str]]]:
    """``(line, kind, match)`` for each noqa / type: ignore comment in ``path``."""
    source = path.read_text(encoding="utf-8")
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        for kind, pattern in (("noqa", NOQA), ("type: ignore", TYPE_IGNORE)):
            if match := pattern.search(tok.string):
                yield tok.start[0], kind, match


def problems_in(path: Path) -> Iterator[str]:
    """A message per comment of ``path`` that lacks codes or a reason."""
    for line, kind, match in directives(path):
        if not match["codes"]:
            yield f"{path}:{line}: `{kind}` without codes: name what it silences"
        elif not re.search(r"[A-Za-z]", match["rest"]):
            yield f"{path}:{line}: `{kind}{match['codes']}` without a reason: add ' - <why>' (type: ignore: '  # <why>')"


def python_files(paths: list[str]) -> Iterator[Path]:
    """The ``.py`` files under ``paths`` (files or directories)."""
    for name in paths:
        path = Path(name)
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: exit 1 when a comment lacks codes or a reason."""
    args = sys.argv[1:] if argv is None else argv
    paths = args or [str(REPO / "mgattest"), str(REPO / "scripts")]
    found = []
    for path in python_files(paths):
        shown = path.resolve().relative_to(REPO).as_posix() if path.resolve().is_relative_to(REPO) else str(path)
        if shown in NOT_YET:
            continue
        found.extend(problems_in(path))
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"check_comments: {len(found)} comment(s) without codes or reason", file=sys.stderr)
        return 1
    print("check_comments: every noqa / type: ignore names its codes and a reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
