"""``mgattest migrate``: check home-grown claims, then sign the files they vouch for."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from mgattest.cli._common import EXIT_OK, EXIT_REJECTED, err, guarded, out
from mgattest.cli._sign_cmds import (_KEY, _KEY_COMMAND, _KEY_COMMAND_PUB, _KEYLESS, _LOG, _LOG_DB, _LOG_KEY, _NO_LOG,
                                     _PW_ENV, _PW_PROMPT, _REFRESH, _STAGING, _TOKEN,
                                     _TRUST_CONFIG, _SignerArgs)

if TYPE_CHECKING:
    from mgattest.attest import BundleSigner, MigrationReport


def register(app: typer.Typer) -> None:
    """Add ``migrate`` to the CLI."""
    app.command("migrate")(migrate_cmd)


_STATUS_STYLE = {"signed": "green", "verified": "green", "bundle-exists": "cyan",
                 "unclaimed": "yellow", "failed": "red"}


def _signer(who: _SignerArgs, dry_run: bool) -> "BundleSigner | None":
    """The signer, or None for a dry run (options still checked when given)."""
    if dry_run and who.key is None and who.key_command is None and not who.keyless:
        return None
    target = who.log_target()
    return None if dry_run else who.signer(target)


def _render_text(report: "MigrationReport") -> None:
    """One line per file (and per failed claim): logs and pipes."""
    for f in report.files:
        where = f" -> {f.bundle}" if f.bundle and f.status in ("signed", "verified") else ""
        action = "would sign" if report.dry_run and f.status == "verified" else f.status
        out(f"{action}: {f.name}{where}")
        for reason in f.reasons:
            out(f"  {reason}")


def _render_table(report: "MigrationReport") -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from mgattest._text import escape_text

    table = Table(title=f"migrate {report.root}" + (" (dry run)" if report.dry_run else ""))
    for column in ("file", "status", "claims"):
        table.add_column(column, overflow="fold")
    table.add_column("bundle / reason", overflow="fold", ratio=2)  # full digests, never cut
    for f in report.files:
        action = "would sign" if report.dry_run and f.status == "verified" else f.status
        claims = ", ".join(sorted({f"{c.claim.kind} ({c.claim.scheme})" for c in f.checks}))
        detail = "\n".join(f.reasons) if f.reasons else (f.bundle or "")
        table.add_row(Text(escape_text(f.name)), Text(action, style=_STATUS_STYLE[f.status]),
                      Text(claims or "-"), Text(escape_text(detail, keep_newlines=True)))
    Console().print(table)


def _render(report: "MigrationReport") -> None:
    (_render_table if sys.stdout.isatty() else _render_text)(report)
    for problem in report.problems:
        out(f"claim problem: {problem.source}: {problem.message}")
    for note in report.notes:
        err(f"note: {note.source}: {note.message}")
    counts = Counter(f.status for f in report.files)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    out(f"{'dry run: ' if report.dry_run else ''}{summary or 'no model files or claims'}"
        f"{f'; {len(report.problems)} claim problem(s)' if report.problems else ''}")


@guarded
def migrate_cmd(
    directory: Path = typer.Argument(..., help="Model tree with the old claims."),
    hmac_key_env: Optional[str] = typer.Option(
        None, "--hmac-key-env", metavar="VAR",
        help="Environment variable holding the old HMAC key."),
    hmac_key_file: Optional[Path] = typer.Option(
        None, "--hmac-key-file", metavar="FILE", help="File holding the old HMAC key."),
    hmac_key_encoding: str = typer.Option(
        "raw", "--hmac-key-encoding", help="How the key is written: raw, hex or base64."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Check the claims and print the plan; write nothing."),
    sign_unclaimed: bool = typer.Option(False, "--sign-unclaimed",
                                        help="Also sign model files no old claim covers."),
    authenticated_only: bool = typer.Option(
        False, "--authenticated-only",
        help="Sign only files an HMAC claim vouches for (checksum files are unauthenticated)."),
    force: bool = typer.Option(False, "--force",
                               help="Replace existing <file>.sigstore.json bundles."),
    key: Optional[Path] = _KEY,
    key_command: Optional[str] = _KEY_COMMAND,
    key_command_public_key: Optional[Path] = _KEY_COMMAND_PUB,
    keyless: bool = _KEYLESS,
    identity_token: Optional[str] = _TOKEN,
    trust_config: Optional[Path] = _TRUST_CONFIG,
    staging: bool = _STAGING,
    refresh_trust: bool = _REFRESH,
    password_env: Optional[str] = _PW_ENV,
    password_prompt: bool = _PW_PROMPT,
    log: Optional[str] = _LOG,
    log_db: Optional[Path] = _LOG_DB,
    log_key: Optional[Path] = _LOG_KEY,
    no_log: bool = _NO_LOG,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Verify the claims old signing scripts left (HMAC .sig, manifests, checksums) and
    sign each file whose claims hold (exit 1 when any claim failed)."""
    from mgattest.attest import MigrateOptions, migrate_tree, read_hmac_key
    from mgattest.errors import InputError

    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory", what="directory",
                         where=str(directory))
    hmac_key = read_hmac_key(env=hmac_key_env, file=hmac_key_file, encoding=hmac_key_encoding)
    who = _SignerArgs(key=key, keyless=keyless, identity_token=identity_token,
                      trust_config=trust_config, staging=staging, refresh_trust=refresh_trust,
                      password_env=password_env, password_prompt=password_prompt, log=log,
                      log_db=log_db, log_key=log_key, no_log=no_log,
                      key_command=key_command, key_command_public_key=key_command_public_key)
    signer = _signer(who, dry_run)
    report = migrate_tree(directory, signer, MigrateOptions(
        hmac_key=hmac_key, dry_run=dry_run, sign_unclaimed=sign_unclaimed, overwrite=force,
        authenticated_only=authenticated_only))
    if as_json:
        out(json.dumps(report.to_json(), indent=2))
    else:
        _render(report)
    raise typer.Exit(EXIT_REJECTED if report.failed else EXIT_OK)
