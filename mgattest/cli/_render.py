"""Rendering of verification results for the terminal (the library returns, the CLI prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mgattest.policy import Verdict


def print_verdict(verdict: "Verdict", *, verbose: bool = False, stderr: bool = False) -> None:
    """Print the verdict tree to stdout (or stderr)."""
    from rich.console import Console

    from mgattest.policy import verdict_tree

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=200)  # logs and pipes: do not cut reasons
    console.print(verdict_tree(verdict, verbose=verbose))
