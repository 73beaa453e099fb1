"""``mgattest provenance MODEL``: a model's lineage, every attestation verified.

The library verifies and traces (``policy.trace_provenance``) and renders JSON and
Mermaid (``policy.lineage_to_json``/``lineage_to_mermaid``); this module parses the
options, prints and picks the exit code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

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
    from mgattest.policy import LineageGraph

_FORMATS = ("table", "json", "mermaid")


def register(app: typer.Typer) -> None:
    """Add ``provenance`` to the app."""
    app.command("provenance")(provenance_cmd)


@guarded
def provenance_cmd(
    model: str = typer.Argument(..., help="Model file or directory, sha256:HEX (with "
                                "--bundles), hf:ORG/NAME[@REV], ollama:NAME, oci:LAYOUT."),
    log: List[str] = typer.Option([], "--log", metavar="URL",
                                  help="Rekor v1-compatible log searched by digest "
                                       "(POST /api/v1/index/retrieve; repeatable)."),
    bundles: List[Path] = typer.Option([], "--bundles", metavar="PATH",
                                       help="Bundle file or directory searched for "
                                            "attestations (recursive; repeatable)."),
    depth: int = typer.Option(5, "--depth", min=0, max=32,
                              help="Dependency levels followed (1: direct inputs)."),
    fmt: str = typer.Option("table", "--format", help="table, json or mermaid."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    require_complete: bool = typer.Option(
        False, "--require-complete",
        help="Exit 1 when any input is unattested, unverifiable or unpinned."),
    policy: Optional[Path] = typer.Option(None, "--policy",
                                          help="Verify under this policy (its trust)."),
    key: List[Path] = KEY_OPTION,
    trusted_root: Optional[Path] = TRUSTED_ROOT_OPTION,
    trust_config: Optional[Path] = TRUST_CONFIG_OPTION,
    identity: Optional[str] = IDENTITY_OPTION,
    identity_regex: Optional[str] = IDENTITY_REGEX_OPTION,
    issuer: Optional[str] = ISSUER_OPTION,
) -> None:
    """Trace a model's lineage: its verified attestations, the SLSA resolvedDependencies
    they name (datasets, base models, code) and, recursively, theirs. Exit 1 when the
    model has no verified attestation (or, with --require-complete, an input has none)."""
    from mgattest.cli._verify_cmds import TreeTrust, tree_verifier
    from mgattest.policy import BundleFiles, LineageRequest, LogIndex, trace_provenance

    chosen = output_format(fmt, as_json, _FORMATS)
    verifier = tree_verifier(Path(model), TreeTrust(
        policy=policy, key=tuple(key), trusted_root=trusted_root, trust_config=trust_config,
        identity=identity, identity_regex=identity_regex, issuer=issuer))
    sources = ([BundleFiles(tuple(str(b) for b in bundles))] if bundles else []) + \
        [LogIndex(url) for url in log]
    graph = trace_provenance(model, verifier, LineageRequest(tuple(sources), depth))
    if chosen == "json":
        from mgattest.policy import lineage_to_json

        out(json.dumps(lineage_to_json(graph), indent=2))
    elif chosen == "mermaid":
        from mgattest.policy import lineage_to_mermaid

        out(lineage_to_mermaid(graph).rstrip("\n"))
    else:
        _print_table(graph)
    failed = graph.root.status != "verified" or (require_complete and not graph.complete)
    raise typer.Exit(EXIT_REJECTED if failed else EXIT_OK)


def _print_table(graph: LineageGraph) -> None:
    """A rich table on a terminal, plain lines otherwise; then a summary line."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mgattest.policy import lineage_rows

    rows = lineage_rows(graph)
    console = Console()
    columns = ("subject", "kind", "status", "signer", "verified time", "builder", "source")
    if console.is_terminal:
        table = Table(title=f"mgattest provenance: {escape(show(graph.root.name))}")
        for column in columns:
            table.add_column(column)
        for r in rows:
            style = "green" if r.status == "verified" else \
                "blue" if r.status in ("source", "not-followed") else "red"
            table.add_row(*(escape(show(v)) for v in (r.subject, r.kind)),
                          f"[{style}]{r.status}[/]",
                          *(escape(show(v)) for v in (r.signer, r.verified_time, r.builder,
                                                     r.source_repository or r.note)))
        console.print(table)
    else:
        for r in rows:
            fields = [r.status, r.subject.strip(), r.kind, r.signer, r.verified_time,
                      r.builder, r.source_repository, r.note]
            out("  ".join(show(f) for f in fields if f))
    flagged = graph.flagged
    summary = f"{len(graph.nodes)} artifact(s); root {graph.root.status}"
    if flagged:
        summary += "; not attested: " + ", ".join(
            f"{show(n.name)} ({n.status})" for n in flagged)
    out(summary)
