"""``mgattest policy lint|explain|init``: check, describe and bootstrap policy files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from mgattest.cli._common import EXIT_OK, EXIT_USAGE, err, guarded, out

if TYPE_CHECKING:
    from mgattest.policy import KeyEdit

policy_app = typer.Typer(help="Write, check and explain policy files.", no_args_is_help=True)


@policy_app.command("lint")
@guarded
def lint(
    policy: Path = typer.Argument(..., help="Policy file (YAML)."),
    as_json: bool = typer.Option(False, "--json", help="Print problems as JSON."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
) -> None:
    """Check a policy file against the schema and its own references (file:line)."""
    import json

    from mgattest.policy import lint_policy

    issues = lint_policy(policy)
    errors = [i for i in issues if i.kind == "error" or strict]
    if as_json:
        out(json.dumps({"ok": not errors, "problems": [
            {"where": i.where, "kind": i.kind, "message": i.message} for i in issues]}, indent=2))
    else:
        for issue in issues:
            err(str(issue))
        if not issues:
            out(f"{policy}: ok")
    raise typer.Exit(EXIT_USAGE if errors else EXIT_OK)


@policy_app.command("explain")
@guarded
def explain(policy: Path = typer.Argument(..., help="Policy file (YAML).")) -> None:
    """Say in words what a policy requires."""
    from mgattest.policy import describe_policy
    from mgattest.policy import load_policy

    for line in describe_policy(load_policy(policy)):
        out(line)


@policy_app.command("init")
@guarded
def init(
    model: Path = typer.Argument(..., help="Model file or directory."),
    bundle: List[Path] = typer.Option(..., "--bundle", "-b", help="Bundle(s) to trust on first use."),
    key: List[Path] = typer.Option([], "--key", help="Public key(s) for key-signed bundles."),
    trusted_root: Optional[Path] = typer.Option(None, "--trusted-root",
                                                help="trusted_root.json (default: public good)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write the policy here (default: stdout)."),
    pin_digests: bool = typer.Option(False, "--pin-digests",
                                     help="Allow only the model's current file digests."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
) -> None:
    """Write a starting policy pinned to what the bundles prove (trust on first use)."""
    from mgattest.errors import InputError
    from mgattest.policy import generate_policy

    if output is not None and output.exists() and not force:
        raise InputError(f"{output} exists (use --force to overwrite)", what="output",
                         where=str(output))
    generated = generate_policy(model, bundle, keys=key, trusted_root=trusted_root,
                                pin_digests=pin_digests,
                                base_dir=output.parent if output is not None else Path.cwd())
    for warning in generated.warnings:
        err(f"warning: {warning}")
    if output is None:
        out(generated.text.rstrip("\n"))
    else:
        output.write_text(generated.text, encoding="utf-8")
        err(f"wrote {output}: {len(generated.document['signers'])} signer(s) trusted on "
            "first use; review it")


key_app = typer.Typer(help="Rotate a policy's trusted keys (validFrom / validUntil).",
                      no_args_is_help=True)
policy_app.add_typer(key_app, name="key")


@key_app.command("add")
@guarded
def key_add(
    policy: Path = typer.Argument(..., help="Policy file (YAML), edited in place."),
    name: str = typer.Option(..., "--name", help="Name of the new trust.keys entry."),
    key: Path = typer.Option(..., "--key", help="The new public key (PEM)."),
    valid_from: Optional[str] = typer.Option(
        None, "--valid-from", metavar="TIME",
        help="Accept it for signatures whose verified signing time is at or after TIME."),
    signer: Optional[str] = typer.Option(None, "--signer",
                                         help="Also add a signer of this name for the key."),
    alongside: Optional[str] = typer.Option(
        None, "--alongside", metavar="SIGNER",
        help="Add --signer next to SIGNER in every rule's signedBy.anyOf."),
) -> None:
    """Add a key to trust.keys, keeping the file's comments and layout."""
    from mgattest.policy import add_key, parse_window_time

    start = parse_window_time(valid_from, "--valid-from") if valid_from else None
    edit = add_key(policy, name, key, valid_from=start, signer=signer, alongside=alongside)
    _report_key(edit, "added")
    if edit.added_to_rules:
        out(f"  signer {edit.signer!r} accepted by rule(s): {', '.join(edit.added_to_rules)}")


@key_app.command("retire")
@guarded
def key_retire(
    policy: Path = typer.Argument(..., help="Policy file (YAML), edited in place."),
    name: str = typer.Option(..., "--name", help="The trust.keys entry to retire."),
    valid_until: str = typer.Option(
        ..., "--valid-until", metavar="TIME",
        help="Refuse its signatures whose verified signing time is at or after TIME."),
) -> None:
    """Set a key's validUntil, keeping the file's comments and layout."""
    from mgattest.policy import parse_window_time, retire_key

    _report_key(retire_key(policy, name, parse_window_time(valid_until, "--valid-until")),
                "retired")


def _report_key(edit: "KeyEdit", verb: str) -> None:
    out(edit.describe(verb))


def register(app: typer.Typer) -> None:
    """Add the ``policy`` command group."""
    app.add_typer(policy_app, name="policy")
