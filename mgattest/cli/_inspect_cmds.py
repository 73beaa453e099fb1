"""``mgattest inspect``, ``mgattest quarantine list|show|restore`` and ``mgattest watch``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from mgattest._text import show
from mgattest.cli._common import EXIT_OK, EXIT_REJECTED, err, guarded, out

if TYPE_CHECKING:
    from mgattest.inspect import FileReport
    from mgattest.loading import SentryStatus

quarantine_app = typer.Typer(help="List, show and restore quarantined artifacts.",
                             no_args_is_help=True)


def _allowed_pairs(values: list[str]) -> list[tuple[str, str]]:
    from mgattest.errors import InputError

    pairs = []
    for value in values:
        module, sep, name = value.rpartition(":")
        if not sep or not module or not name or "." in name:
            raise InputError(f"--allow expects MODULE:NAME (e.g. mypkg.layers:MyLayer), got "
                             f"{value!r}", what="allow")
        pairs.append((module, name))
    return pairs


@guarded
def inspect_cmd(
    paths: list[Path] = typer.Argument(..., help="Model files or directories to inspect "
                                       "(also hf:ORG/NAME[@REV] from the local hub cache)."),
    as_json: bool = typer.Option(False, "--json", help="Print reports as JSON."),
    quarantine_dir: Optional[Path] = typer.Option(
        None, "--quarantine", metavar="DIR",
        help="Move every rejected PATH into this quarantine directory."),
    allow: list[str] = typer.Option(
        [], "--allow", metavar="MODULE:NAME",
        help="Also allow this pickle global (exact module and name). Repeatable."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show info findings too."),
    ignore: list[str] = typer.Option(
        [], "--ignore", metavar="GLOB",
        help="Anchored glob of files to leave out of a directory (repeatable), as for "
             "sign/verify; .git, .github, .gitignore and .gitattributes are always left out."),
) -> None:
    """Inspect model files without loading them (exit 0 clean, 1 findings, 2 usage)."""
    from mgattest.attest import IgnoreRules, resolve_model_path, resolve_stored_model
    from mgattest.inspect import SAFE, scan_path, worst
    from mgattest.policy import scan_stored_model

    extra = _allowed_pairs(allow)
    rules = IgnoreRules(ignore)  # the walk rules of sign/verify: VCS metadata by default
    results: list[tuple[Path, list[FileReport]]] = []
    for given in paths:
        stored = resolve_stored_model(str(given))  # ollama:NAME, oci:PATH, an OCI layout
        if stored is not None:
            results.append((given, list(scan_stored_model(stored).values())))
            continue
        path = Path(resolve_model_path(str(given)))  # hf:ORG/NAME[@REV]: its snapshot
        results.append((path, scan_path(path, extra_allowed=extra, skip=rules.match)))
    incidents = []
    if quarantine_dir is not None:
        from mgattest.loading import quarantine_findings

        for path, reports in results:
            incident = quarantine_findings(path, quarantine_dir, reports,
                                           source="mgattest inspect")
            if incident is None:
                continue
            incidents.append({"path": str(path), "incident": incident.id,
                              "dir": str(incident.path)})
    all_reports = [r for _p, reports in results for r in reports]
    overall = worst(*(r.verdict for r in all_reports)) if all_reports else SAFE
    if as_json:
        doc: dict[str, object] = {"ok": overall == SAFE, "verdict": overall,
                               "files": [r.to_dict() for r in all_reports]}
        if quarantine_dir is not None:
            doc["quarantined"] = incidents
        out(json.dumps(doc, indent=2))
    else:
        for report in all_reports:
            shown = [f for f in report.findings if verbose or f.severity != "info"]
            fmt = report.format + (f"+{report.compression}" if report.compression else "")
            out(f"{report.verdict.upper():10} {show(report.path)} ({show(fmt)})")
            for finding in shown:
                out(f"    {finding.severity}: {show(finding.detail)} "
                    f"[{show(finding.where(report.path))}]")
        for inc in incidents:
            out(f"quarantined {show(inc['path'])} -> {show(inc['dir'])}")
        bad = sum(1 for r in all_reports if r.verdict != SAFE)
        (out if not bad else err)(f"{len(all_reports)} file(s) inspected, {bad} with findings")
    raise typer.Exit(EXIT_OK if overall == SAFE else EXIT_REJECTED)


@quarantine_app.command("list")
@guarded
def quarantine_list(
    directory: Path = typer.Option(..., "--dir", "-d", help="The quarantine directory."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List incidents (oldest first), including interrupted ones."""
    from mgattest.loading import list_incidents

    incidents = list_incidents(directory)
    if as_json:
        out(json.dumps([i.to_dict() for i in incidents], indent=2))
        return
    if not incidents:
        out("no incidents")
    for inc in incidents:
        items = ", ".join(show(e.get("original")) for e in inc.record.get("items", []))
        out(f"{show(inc.id)}  {show(inc.status):12} {show(inc.record.get('verdict', '?')):10} "
            f"{items}")


@quarantine_app.command("show")
@guarded
def quarantine_show(
    incident: str = typer.Argument(..., help="Incident id (or a unique prefix)."),
    directory: Path = typer.Option(..., "--dir", "-d", help="The quarantine directory."),
) -> None:
    """Print one incident record as JSON."""
    from mgattest.loading import get_incident

    out(json.dumps(get_incident(directory, incident).to_dict(), indent=2))


@quarantine_app.command("restore")
@guarded
def quarantine_restore(
    incident: str = typer.Argument(..., help="Incident id (or a unique prefix)."),
    directory: Path = typer.Option(..., "--dir", "-d", help="The quarantine directory."),
    to: Optional[Path] = typer.Option(None, "--to", metavar="DIR",
                                      help="Restore into directory DIR (created if missing), "
                                      "each artifact under its original file name, instead "
                                      "of to its original path."),
    force: bool = typer.Option(False, "--force", help="Restore even if the quarantined "
                               "bytes changed."),
) -> None:
    """Move an incident's artifacts back to where they were, or into --to DIR (never
    overwriting anything)."""
    from mgattest.loading import restore

    restored = restore(directory, incident, to=to, force=force)
    for dest in restored.record.get("restored_to", []):
        out(f"restored {show(dest)}")
    if not restored.record.get("restored_to"):
        out(f"incident {restored.id}: nothing to move (the originals are intact); "
            "marked restored")


def _text(path: Optional[Path]) -> Optional[str]:
    """A path option as the library's text, or None."""
    return None if path is None else str(path)


@guarded
def watch_cmd(
    model: Path = typer.Argument(..., help="Model file or directory to watch."),
    bundle: list[Path] = typer.Option([], "--bundle", "-b", help="Sigstore bundle(s)."),
    policy: Optional[Path] = typer.Option(None, "--policy", "-p", help="Policy file."),
    key: list[Path] = typer.Option([], "--key", "-k", help="Trusted public key(s)."),
    trusted_root: Optional[Path] = typer.Option(None, "--trusted-root"),
    allow_unlogged: bool = typer.Option(False, "--allow-unlogged", help="Accept key-mode "
                                        "bundles without a transparency-log entry."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Digests to check "
                                            "instead of bundles: JSON {name: sha256} or "
                                            "a sha256sum file."),
    rehash_interval: float = typer.Option(60.0, "--rehash-interval", help="Seconds between "
                                          "full re-hashes."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this "
                                             "many seconds (default: until interrupted)."),
    once: bool = typer.Option(False, "--once", help="Verify once and exit."),
    check_timeout: float = typer.Option(600.0, "--check-timeout", help="A verification "
                                        "still running after this many seconds makes "
                                        "the model compromised."),
    exit_on_compromise: bool = typer.Option(True, "--exit-on-compromise/--keep-running"),
    as_json: bool = typer.Option(False, "--json", help="Print status changes as JSON lines."),
) -> None:
    """Re-verify MODEL on every change (exit 1 as soon as it is compromised)."""
    import threading
    import time

    from mgattest.attest import refuse_trust_files_in_model
    from mgattest.errors import InputError
    from mgattest.loading import Sentry, WatchSources, watch_verifier

    if not model.exists():
        raise InputError(f"model {model} does not exist", what="model", where=str(model))
    refuse_trust_files_in_model(model, [("policy", policy), ("trusted root", trusted_root),
                                        ("manifest", manifest), *(("key", k) for k in key)])
    verify = watch_verifier(model, WatchSources(
        bundles=tuple(str(b) for b in bundle), policy=_text(policy),
        keys=tuple(str(k) for k in key), manifest=_text(manifest),
        trusted_root=_text(trusted_root), allow_unlogged=allow_unlogged))
    changed = threading.Event()
    last: list[tuple[bool, str | None] | None] = [None]

    def report(status: SentryStatus) -> None:
        state = (status.healthy, status.reason)
        if state == last[0]:
            return
        last[0] = state
        if as_json:
            out(json.dumps({"model": str(model), **status.to_dict()}))
        elif status.healthy:
            out(f"healthy: {show(model)}")
        else:
            err(f"compromised: {show(model)}: {show(status.reason)}")
        if not status.healthy:
            changed.set()

    sentry = Sentry(model, verify, rehash_interval=rehash_interval, on_change=report,
                    check_timeout=check_timeout)
    if once:
        status = sentry.check(force=True)
        raise typer.Exit(EXIT_OK if status.healthy else EXIT_REJECTED)
    sentry.start()
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while deadline is None or time.monotonic() < deadline:
            timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            if changed.wait(timeout) and exit_on_compromise:
                break
            if not sentry.healthy:  # e.g. a check that does not finish: never "healthy"
                report(sentry.status())
                if exit_on_compromise:
                    break
            changed.clear() if not exit_on_compromise else None
    finally:
        sentry.stop()
    raise typer.Exit(EXIT_OK if sentry.healthy else EXIT_REJECTED)


def register(app: typer.Typer) -> None:
    """Add ``inspect``, ``quarantine`` and ``watch`` to the CLI."""
    app.command("inspect")(inspect_cmd)
    app.command("watch")(watch_cmd)
    app.add_typer(quarantine_app, name="quarantine")
