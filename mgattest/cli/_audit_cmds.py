"""``mgattest audit DIR``, and the tree run behind ``verify --all``.

The library finds and verifies the models (``policy.audit_tree``) and renders the
formats (``policy.audit_to_json/sarif/junit``); this module parses options, shows a
progress bar on a terminal, prints a table (plain lines when not a terminal) and writes
the report files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional

import typer

from mgattest._text import show
from mgattest.cli._common import EXIT_OK, EXIT_REJECTED, guarded, out, output_format
from mgattest.cli._verify_cmds import (
    IDENTITY_OPTION,
    IDENTITY_REGEX_OPTION,
    ISSUER_OPTION,
    KEY_OPTION,
    TRUST_CONFIG_OPTION,
    TRUSTED_ROOT_OPTION,
)

if TYPE_CHECKING:
    import contextlib

    from mgattest.policy import ArtifactResult, AuditOptions, AuditReport, ModelVerifier

_FORMATS = ("table", "json", "sarif", "junit")


def register(app: typer.Typer) -> None:
    """Add ``audit`` to the app."""
    app.command("audit")(audit_cmd)


@guarded
def audit_cmd(
    directory: Path = typer.Argument(..., help="Repository tree to audit."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy file (YAML/JSON) "
                                          "every model is verified under."),
    pattern: List[str] = typer.Option([], "--pattern", metavar="GLOB",
                                      help="Model file pattern (repeatable; replaces the "
                                           "defaults *.pt *.pth *.bin *.safetensors ...)."),
    ignore: List[str] = typer.Option([], "--ignore", metavar="GLOB",
                                     help="Anchored glob of paths to leave out (repeatable)."),
    key: List[Path] = KEY_OPTION,
    trusted_root: Optional[Path] = TRUSTED_ROOT_OPTION,
    trust_config: Optional[Path] = TRUST_CONFIG_OPTION,
    identity: Optional[str] = IDENTITY_OPTION,
    identity_regex: Optional[str] = IDENTITY_REGEX_OPTION,
    issuer: Optional[str] = ISSUER_OPTION,
    allow_unlogged: bool = typer.Option(False, "--allow-unlogged",
                                        help="Accept bundles without a transparency-log entry "
                                             "(without --policy)."),
    fmt: str = typer.Option("table", "--format",
                            help="What to print on stdout: table, json, sarif or junit."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    sarif: Optional[Path] = typer.Option(None, "--sarif", metavar="FILE",
                                         help="Also write a SARIF 2.1.0 report to FILE."),
    junit: Optional[Path] = typer.Option(None, "--junit", metavar="FILE",
                                         help="Also write a JUnit XML report to FILE."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1,
                                       help="Models verified at once (default: the CPUs)."),
) -> None:
    """Audit every model in a tree: verified, unsigned, invalid, policy violation, unsafe
    content or size anomaly. Exit 1 when any model is not verified."""
    from mgattest.cli._verify_cmds import TreeTrust, tree_verifier
    from mgattest.policy import AuditOptions

    chosen = output_format(fmt, as_json, _FORMATS)
    verifier = tree_verifier(directory, TreeTrust(
        policy=policy, key=tuple(key), trusted_root=trusted_root, trust_config=trust_config,
        identity=identity, identity_regex=identity_regex, issuer=issuer,
        allow_unlogged=allow_unlogged))
    options = AuditOptions(patterns=tuple(pattern), ignore=tuple(ignore), scan_content=True,
                           workers=jobs)
    report = run_tree(directory, verifier, options, show_progress=chosen == "table")
    if sarif is not None:
        _write(sarif, _sarif_text(report))
    if junit is not None:
        _write(junit, _junit_text(report))
    if chosen == "json":
        out(_json_text(report))
    elif chosen == "sarif":
        sys.stdout.write(_sarif_text(report))
    elif chosen == "junit":
        sys.stdout.write(_junit_text(report))
    else:
        print_table(report, "audit")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_REJECTED)


def verify_tree(directory: Path, verifier: "ModelVerifier", as_json: bool) -> None:
    """``verify --all``: every model of the tree verified (no content scan, as ``verify``),
    a table or JSON; exit 1 when any did not verify."""
    from mgattest.policy import AuditOptions

    report = run_tree(directory, verifier, AuditOptions(scan_content=False),
                      show_progress=not as_json)
    if as_json:
        out(_json_text(report))
    else:
        print_table(report, "verify --all")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_REJECTED)


def run_tree(directory: Path, verifier: "ModelVerifier", options: "AuditOptions", *,
             show_progress: bool) -> "AuditReport":
    """Audit the tree (``audit``, ``verify --all``) with a progress bar on a terminal."""
    from mgattest.errors import InputError
    from mgattest.policy import audit_tree

    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory", what="directory",
                         where=str(directory))
    with _progress(show_progress and sys.stderr.isatty()) as (on_start, on_result):
        return audit_tree(directory, verifier, options, on_start=on_start,
                          on_result=on_result)


def print_table(report: "AuditReport", command: str) -> None:
    """One row per model (a rich table on a terminal, plain lines otherwise) and a
    summary line."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    rows = [(r.status, r.name, _first_reason(r)) for r in report.results]
    if console.is_terminal:
        table = Table(title=f"mgattest {command}: {escape(show(report.root))}")
        for column in ("status", "model", "reason"):
            table.add_column(column)
        for status, name, reason in rows:
            style = "green" if status == "verified" else \
                "yellow" if status in ("unsigned", "size_anomaly") else "red"
            table.add_row(f"[{style}]{status}[/]", escape(show(name)), escape(show(reason)))
        console.print(table)
    else:
        for status, name, reason in rows:
            out(f"{status:<16} {name}" + (f"  {reason}" if reason else ""))
    counts = report.counts()
    parts = [f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n]
    out(f"{len(report.results)} model(s): " + (", ".join(parts) or "none found"))


def _first_reason(result: "ArtifactResult") -> str:
    if not result.findings:
        return ""
    first = result.findings[0]
    more = f" (+{len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
    where = "" if first.file == result.name else f"{first.file}: "
    return f"{where}{first.message}{more}"


def _json_text(report: "AuditReport") -> str:
    from mgattest.policy import audit_to_json

    return json.dumps(audit_to_json(report), indent=2)


def _sarif_text(report: "AuditReport") -> str:
    from mgattest.policy import audit_to_sarif

    return json.dumps(audit_to_sarif(report), indent=2) + "\n"


def _junit_text(report: "AuditReport") -> str:
    from mgattest.policy import audit_to_junit

    return audit_to_junit(report)


def _write(path: Path, text: str) -> None:
    from mgattest.errors import InputError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}", what="report file",
                         where=str(path)) from None


_Callbacks = tuple[Optional[Callable[[int], None]], Optional[Callable[["ArtifactResult"], None]]]


def _progress(enabled: bool) -> "contextlib.AbstractContextManager[_Callbacks]":
    import contextlib

    @contextlib.contextmanager
    def bar() -> Iterator[_Callbacks]:
        if not enabled:
            yield None, None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("verifying models", total=None)

            def on_start(total: int) -> None:
                progress.update(task, total=total)

            def on_result(_result: "ArtifactResult") -> None:
                progress.advance(task)

            yield on_start, on_result

    return bar()
