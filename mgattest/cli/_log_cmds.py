"""``mgattest log``: create, serve, append to, prove, verify and monitor a log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from mgattest.cli._common import LOOPBACK_HOSTS, check_listen_options, err, guarded, out

if TYPE_CHECKING:
    from mgattest.attest import EntryWatcher
    from mgattest.tlog import EntryToVerify, PollResult
    from mgattest.tlog import LogSigner, LogVerifier
    from mgattest.tlog import TransparencyLog
    from mgattest.tlog import TrustedLog
    from mgattest.tlog import TileSource

MAX_JSON_FILE = 64 * 1024 * 1024

log_app = typer.Typer(help="Run and check a Rekor-compatible transparency log.",
                      no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``log`` command group to the root app."""
    app.add_typer(log_app, name="log")


# --- helpers -------------------------------------------------------------------------

def _read_text(path: Path, what: str, limit: int = MAX_JSON_FILE) -> str:
    from mgattest._files import read_text

    return read_text(path, what, limit)


def _read_json(path: Path, what: str) -> object:
    from mgattest._files import read_json

    return read_json(path, what, MAX_JSON_FILE)


def _load_signer(key: Path) -> LogSigner:
    """The log's private key; its password, if any, from MGATTEST_LOG_KEY_PASSWORD."""
    import os

    from mgattest.tlog import LogSigner

    return LogSigner.from_file(key, password=os.environ.get("MGATTEST_LOG_KEY_PASSWORD"))


def _open_log(db: Path, key: Path) -> TransparencyLog:
    from mgattest.errors import InputError
    from mgattest.tlog import TransparencyLog

    if not Path(db).is_file():
        raise InputError(f"no log database at {db} (create one with `mgattest log init`)",
                         what="log database", where=str(db))
    return TransparencyLog.open(db, _load_signer(key))


def _trusted_logs(log_key: Optional[Path], trusted_root: Optional[Path],
                  origin: Optional[str]) -> list[TrustedLog]:
    from mgattest.errors import InputError
    from mgattest.tlog import TrustedLog, trusted_logs_from_root

    if trusted_root is not None and log_key is None:
        return list(trusted_logs_from_root(_read_json(trusted_root, "trusted root")))
    if log_key is None or trusted_root is not None:
        raise InputError("give exactly one of --log-key and --trusted-root", what="usage")
    if not origin:
        raise InputError("--log-key needs --origin: the checkpoint origin of that log "
                         "(`mgattest log init` prints it)", what="usage")
    return [TrustedLog.for_verifier(_verifier(log_key), origin=origin)]


def _check_can_listen(host: str, port: int) -> None:
    """Fail with a usage error (not uvicorn's exit 1) when the address is unusable."""
    import socket

    from mgattest.errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                         what="listen address") from None


def _public_hostname(host: str) -> str:
    """The name a log listening on ``host`` is reached under: the host itself, or this
    machine's name for the any-address."""
    import socket

    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname().strip().lower() or "localhost"
    return host


def _verifier(log_key: Path) -> LogVerifier:
    from mgattest.tlog import LogVerifier

    return LogVerifier.from_pem(_read_text(log_key, "log key"))


def _dump(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)


def _write_json(path: Path, obj: object) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(_dump(obj) + "\n")
    tmp.replace(path)


# The trust options of the commands that verify entries offline (`verify`, `search`).
LOG_KEY_OPTION = typer.Option(None, "--log-key", help="Log public key (PEM).")
TRUSTED_ROOT_OPTION = typer.Option(None, "--trusted-root", help="Sigstore trusted root JSON.")
ORIGIN_OPTION = typer.Option(None, "--origin",
                             help="Expected checkpoint origin (required with --log-key).")
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output.")


# --- commands --------------------------------------------------------------------------

@log_app.command("init")
@guarded
def init_cmd(
    db: Path = typer.Option(..., "--db", help="SQLite file to create."),
    key_out: Path = typer.Option(..., "--key-out", help="Where to write the new log key (PEM)."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Checkpoint origin line."),
    key_type: str = typer.Option("ecdsa-p256", "--key-type", help="ecdsa-p256 or ed25519."),
    pub_out: Optional[Path] = typer.Option(None, "--pub-out",
                                           help="Also write the public key (PEM) here."),
) -> None:
    """Create an empty log and its signing key."""
    from mgattest.errors import InputError
    from mgattest.tlog import TransparencyLog

    if key_type not in ("ecdsa-p256", "ed25519"):
        raise InputError(f"--key-type must be ecdsa-p256 or ed25519, got {key_type!r}",
                         what="usage")
    for path, what in ((db, "log database"), (key_out, "key file"), (pub_out, "public key file")):
        if path is not None and Path(path).exists():
            raise InputError(f"{what} {path} already exists; refusing to overwrite it",
                             what=what, where=str(path))
    log = TransparencyLog.init(db, key_out, origin=origin, key_type=key_type)
    if pub_out is not None:
        Path(pub_out).write_bytes(log.signer.public_pem())
    out(f"created log {db}")
    out(f"origin: {log.origin}")
    out(f"log id: {bytes(log.log_id).hex()}")
    out(f"private key: {key_out} (keep it secret; publish the public key)")
    out(log.signer.public_pem().decode().rstrip())


@log_app.command("serve")
@guarded
def serve_cmd(
    db: Path = typer.Option(..., "--db", help="The log's SQLite file."),
    key: Path = typer.Option(..., "--key", help="The log's private key (PEM)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(3000, "--port", help="TCP port."),
    token_file: Optional[Path] = typer.Option(None, "--token-file",
                                              help="File holding the bearer token for writes."),
    allow_remote: bool = typer.Option(False, "--allow-remote",
                                      help="Listen on a non-loopback address."),
    max_body: int = typer.Option(4 * 1024 * 1024, "--max-body", help="Largest POST body."),
    max_connections: int = typer.Option(4096, "--max-connections",
                                        help="Open connections in total (lowered to fit "
                                             "the file-descriptor limit)."),
    max_per_client: int = typer.Option(64, "--max-per-client",
                                       help="Open connections from one client address "
                                            "(IPv4 address or IPv6 /64)."),
    header_timeout: float = typer.Option(10.0, "--header-timeout",
                                         help="Seconds to receive a request's headers."),
    body_timeout: float = typer.Option(30.0, "--body-timeout",
                                       help="Seconds to receive a request's body."),
    hostname: Optional[str] = typer.Option(
        None, "--hostname", help="Host clients reach the log under (in its URL); checkpoints "
        "are signed under this name as Rekor does. Default: --host, or this machine's name "
        "when listening on all addresses."),
    witness: list[str] = typer.Option(
        [], "--witness", help="A C2SP tlog-witness to ask for cosignatures of each new "
        "checkpoint: URL=VKEY (repeatable; see `mgattest log witness`)."),
) -> None:
    """Serve the log over HTTP: Rekor v1 API and C2SP tlog-tiles."""
    from mgattest.errors import InputError
    from mgattest._httpguard import ConnectionLimits
    from mgattest.tlog import WitnessEndpoint, serve

    check_listen_options(host, port, allow_remote)
    if max_body < 1024:
        raise InputError("--max-body must be at least 1024 bytes", what="usage")
    if not 1 <= max_per_client <= max_connections:
        raise InputError("need 1 <= --max-per-client <= --max-connections", what="usage")
    if not (0 < header_timeout <= 3600 and 0 < body_timeout <= 3600):
        raise InputError("--header-timeout and --body-timeout must be 0 < seconds <= 3600",
                         what="usage")
    limits = ConnectionLimits(header_timeout=header_timeout, body_timeout=body_timeout,
                              max_connections=max_connections, max_per_client=max_per_client)
    token = None
    if token_file is not None:
        token = _read_text(token_file, "token file", limit=4096).strip()
        if len(token) < 16 or any(c.isspace() for c in token):
            raise InputError(f"token in {token_file} must be at least 16 characters without "
                             "whitespace", what="token file", where=str(token_file))
    elif host not in LOOPBACK_HOSTS:
        err("warning: serving a remote address without --token-file: anyone can append")
    witnesses = [WitnessEndpoint.parse(spec) for spec in witness]
    _check_can_listen(host, port)
    log = _open_log(db, key)
    log.serve_as(hostname or _public_hostname(host))
    err(f"serving {db} (origin {log.origin!r}, size {log.size}) on http://{host}:{port}")
    serve(log, host=host, port=port, token=token, max_body=max_body, limits=limits,
          witnesses=witnesses)


@log_app.command("append")
@guarded
def append_cmd(
    entry: Path = typer.Argument(..., help="Proposed entry JSON (hashedrekord/dsse)."),
    db: Path = typer.Option(..., "--db"),
    key: Path = typer.Option(..., "--key"),
) -> None:
    """Append a proposed entry locally and print its bundle TransparencyLogEntry."""
    from mgattest.errors import InputError
    from mgattest.tlog.errors import DuplicateEntryError

    proposed = _read_json(entry, "proposed entry")
    if not isinstance(proposed, dict):
        raise InputError(f"{entry} must hold a JSON object", what="proposed entry",
                         where=str(entry))
    log = _open_log(db, key)
    try:
        logged = log.append(proposed)
    except DuplicateEntryError as dup:
        logged = dup.existing
        err(f"already in the log at index {logged.log_index}")
    out(_dump(logged.to_bundle_entry(log.inclusion_proof(logged.log_index))))


@log_app.command("checkpoint")
@guarded
def checkpoint_cmd(db: Path = typer.Option(..., "--db"),
                   key: Path = typer.Option(..., "--key")) -> None:
    """Print the log's current signed checkpoint (C2SP signed note)."""
    log = _open_log(db, key)
    note = log.signed_checkpoint()
    typer.echo(note.decode() if isinstance(note, bytes) else note, nl=False)


@log_app.command("proof")
@guarded
def proof_cmd(
    index: int = typer.Option(..., "--index", help="Log index of the entry."),
    db: Path = typer.Option(..., "--db"),
    key: Path = typer.Option(..., "--key"),
    tree_size: Optional[int] = typer.Option(None, "--tree-size",
                                            help="Prove against this size (default: current)."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Write the entry JSON here."),
) -> None:
    """Write an entry with its inclusion proof and checkpoint for offline verification."""
    from mgattest.errors import InputError

    log = _open_log(db, key)
    if not 0 <= index < log.size:
        raise InputError(f"--index {index} is outside the log (size {log.size})",
                         what="log index", where=f"log index {index}")
    logged = log.entry_by_index(index)
    entry = logged.to_bundle_entry(log.inclusion_proof(index, tree_size))
    if out_path is None:
        out(_dump(entry))
    else:
        _write_json(out_path, entry)
        err(f"wrote entry {index} with an inclusion proof to {out_path}")


@log_app.command("consistency-proof")
@guarded
def consistency_proof_cmd(
    first: int = typer.Option(..., "--first", help="Size of the older tree."),
    last: Optional[int] = typer.Option(None, "--last",
                                       help="Size of the newer tree (default: current)."),
    db: Path = typer.Option(..., "--db"),
    key: Path = typer.Option(..., "--key"),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Write the proof JSON here."),
) -> None:
    """Write a Rekor ConsistencyProof (first → last) from a local log, for offline audits."""
    from mgattest.errors import InputError

    log = _open_log(db, key)
    last = log.size if last is None else last
    if not 0 <= first <= last <= log.size:
        raise InputError(f"need 0 <= --first ({first}) <= --last ({last}) <= log size "
                         f"({log.size})", what="tree sizes")
    hashes = log.consistency_proof(first, last) if 0 < first < last else []
    proof = {"hashes": [h.hex() for h in hashes], "rootHash": log.root_hash(last).hex()}
    if out_path is None:
        out(_dump(proof))
    else:
        _write_json(out_path, proof)
        err(f"wrote the consistency proof {first} → {last} to {out_path}")


def _entries_to_verify(entry: Optional[Path],
                       bundle: Optional[Path]) -> list[EntryToVerify]:
    """The entries named on the command line (``--entry`` or ``--bundle``)."""
    from mgattest.errors import InputError
    from mgattest.tlog import entries_from_bundle, entry_from_json

    if (entry is None) == (bundle is None):
        raise InputError("give exactly one of --entry and --bundle", what="usage")
    if entry is not None:
        return [entry_from_json(_read_json(entry, "log entry"), str(entry))]
    assert bundle is not None
    return entries_from_bundle(_read_json(bundle, "bundle"), str(bundle))


@log_app.command("verify")
@guarded
def verify_cmd(
    entry: Optional[Path] = typer.Option(None, "--entry",
                                         help="Bundle TransparencyLogEntry or Rekor v1 LogEntry."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Sigstore bundle."),
    log_key: Optional[Path] = LOG_KEY_OPTION,
    trusted_root: Optional[Path] = TRUSTED_ROOT_OPTION,
    origin: Optional[str] = ORIGIN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Verify log entries offline: leaf, inclusion proof, checkpoint, origin, SET."""
    from mgattest.tlog import verify_entries

    logs = _trusted_logs(log_key, trusted_root, origin)
    items = _entries_to_verify(entry, bundle)
    results = [(item.label, verified)
               for item, verified in verify_entries(items, logs, origin=origin)]
    if as_json:
        out(json.dumps({"ok": True, "entries": [
            {"source": label, "log_id": v.log_id, "log_index": v.log_index,
             "kind": v.kind, "kind_version": v.kind_version,
             "integrated_time": v.integrated_time, "checkpoint_origin": v.checkpoint_origin,
             "tree_size": v.tree_size, "inclusion_proof_verified": v.inclusion_proof_verified,
             "set_verified": v.set_verified} for label, v in results]}, indent=2))
        return
    for label, v in results:
        checks = []
        if v.inclusion_proof_verified:
            checks.append(f"inclusion in tree of {v.tree_size} ({v.checkpoint_origin})")
        if v.set_verified:
            checks.append("SET")
        out(f"ok: {label}: {v.kind} {v.kind_version} at log index {v.log_index}: "
            + ", ".join(checks))


@log_app.command("consistency")
@guarded
def consistency_cmd(
    old: Path = typer.Option(..., "--old", help="Older signed checkpoint (text file)."),
    new: Optional[Path] = typer.Option(None, "--new", help="Newer signed checkpoint."),
    proof_file: Optional[Path] = typer.Option(None, "--proof",
                                              help="Rekor ConsistencyProof JSON for --new."),
    url: Optional[str] = typer.Option(None, "--url", help="Log URL to fetch proof/checkpoint."),
    log_key: Path = typer.Option(..., "--log-key", help="Log public key (PEM)."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Expected checkpoint origin."),
) -> None:
    """Verify that a newer checkpoint extends an older one (append-only)."""
    from mgattest.errors import InputError
    from mgattest.tlog import RekorClient, parse_consistency_proof, verify_extension, verify_note

    if url is None and (new is None or proof_file is None):
        raise InputError("give --new with --proof, or --url", what="usage")
    verifier = _verifier(log_key)
    old_cp = verify_note(_read_text(old, "checkpoint"), verifier, origin, str(old))
    def proof_from_file() -> list[bytes]:
        assert proof_file is not None
        return parse_consistency_proof(_read_json(proof_file, "consistency proof"),
                                       str(proof_file))

    new_cp = verify_extension(
        old_cp, verifier, origin=origin,
        newer_note=_read_text(new, "checkpoint") if new is not None else None,
        newer_label=str(new) if new is not None else "",
        proof=proof_from_file if proof_file is not None else None,
        log=RekorClient(url) if url is not None else None)
    out(f"ok: checkpoint {old_cp.size} is a prefix of checkpoint {new_cp.size} "
        f"(origin {new_cp.origin})")


def _watcher(identity: list[str], issuer: list[str], keys: list[Path],
             expected: Optional[Path]) -> Optional[EntryWatcher]:
    """The entry watcher for ``log monitor``'s watch options (None without any)."""
    from mgattest.attest import EntryWatcher, WatchList, parse_expected_digests
    from mgattest.errors import InputError

    if len(identity) != len(issuer):
        raise InputError("give one --issuer for each --identity (in the same order)",
                         what="usage")
    if not identity and not keys:
        if expected is not None:
            raise InputError("--expected needs --identity/--issuer or --key to watch",
                             what="usage")
        return None
    digests = frozenset[str]()
    if expected is not None:
        digests = parse_expected_digests(_read_text(expected, "expected digests"),
                                         str(expected))
    pems = [_read_text(k, "watched key").encode() for k in keys]
    return EntryWatcher(WatchList.build(list(zip(identity, issuer, strict=True)), pems, digests))


def _report_watch(watcher: EntryWatcher, as_json: bool, result: PollResult) -> bool:
    """Print what the scan found; True when something unexpected was found."""
    scan = result.scan
    first, end = (scan.start, scan.end) if scan is not None else (0, 0)
    bad = bool(watcher.unexpected or watcher.unreadable)
    if as_json:
        out(json.dumps({"ok": not bad, "treeSize": result.checkpoint.size,
                        "scanned": {"from": first, "to": end},
                        "hits": [h.to_json() for h in watcher.hits],
                        "unreadable": [{"logIndex": i, "problem": p}
                                       for i, p in watcher.unreadable],
                        "skippedKinds": dict(watcher.skipped_kinds)}, indent=2))
        return bad
    for hit in watcher.hits:
        tag = "expected" if hit.expected else "UNEXPECTED"
        out(f"{tag}: log index {hit.index}: {hit.kind} signed by {hit.signer}: "
            f"{', '.join(hit.digests)} ({hit.visible})")
    for index, problem in watcher.unreadable:
        out(f"UNREADABLE: log index {index}: {problem} (cannot rule out a watched signer)")
    for kind, n in sorted(watcher.skipped_kinds.items()):
        err(f"note: {n} entries of kind {kind} not inspected")
    return bad


@log_app.command("monitor")
@guarded
def monitor_cmd(
    url: str = typer.Option(..., "--url", help="Log URL."),
    log_key: Path = typer.Option(..., "--log-key", help="Log public key (PEM)."),
    state: Path = typer.Option(..., "--state", help="File keeping the last verified checkpoint."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Expected checkpoint origin."),
    interval: float = typer.Option(60.0, "--interval", help="Seconds between checks."),
    count: int = typer.Option(1, "--count", help="Number of checks (0 = forever)."),
    evidence: Optional[Path] = typer.Option(
        None, "--evidence", help="Where to write the evidence of an inconsistent log "
        "(default: beside --state)."),
    identity: list[str] = typer.Option([], "--identity",
                                       help="Watch this certificate identity (SAN); "
                                            "repeatable, each with an --issuer."),
    issuer: list[str] = typer.Option([], "--issuer", help="OIDC issuer of the --identity."),
    keys: list[Path] = typer.Option([], "--key", help="Watch this public key (PEM); "
                                                      "repeatable."),
    expected: Optional[Path] = typer.Option(
        None, "--expected", help="Digests the watched signers may sign (hex per line, or "
        "a JSON list); any other hit exits 1."),
    scan_from: Optional[int] = typer.Option(
        None, "--scan-from", help="First run only: scan the entries from this index "
        "(default: start watching at the current size)."),
    tiles: bool = typer.Option(False, "--tiles", help="Read the log as tlog-tiles "
                               "(implied by --identity/--key)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable scan report."),
) -> None:
    """Watch a log: every new checkpoint must extend the last verified one; with
    --identity/--key, report entries signed by them."""
    from mgattest.errors import InputError
    from mgattest.tlog import LogUnavailableError
    from mgattest.tlog import LogMonitor

    if count < 0 or interval < 0:
        raise InputError("--count and --interval must be >= 0", what="usage")
    watcher = _watcher(identity, issuer, keys, expected)
    if evidence is not None and not evidence.parent.resolve().is_dir():
        # Checked now: evidence of a fork must not be lost for a typo in its path.
        raise InputError(f"--evidence {evidence}: no directory {evidence.parent}",
                         what="evidence file", where=str(evidence))
    monitor = LogMonitor.open(url, _verifier(log_key), state, origin=origin,
                              evidence_path=evidence)
    done = 0
    while True:
        done += 1
        final = bool(count) and done >= count
        round_watcher = None if watcher is None else watcher.fresh()
        visit = round_watcher if round_watcher is not None else (
            (lambda index, leaf: None) if tiles else None)
        try:
            result = monitor.check(visit, scan_from=scan_from)
        except LogUnavailableError as exc:
            if final or count == 1:
                raise
            # An outage is not evidence against the log: report it and keep watching.
            err(f"warning: {exc.message}")
            time.sleep(interval)
            continue
        current = result.checkpoint
        grew = "" if result.growth is None else f" (+{result.growth})"
        scanned = "" if result.scan is None else f", scanned {result.scan.entries} entries"
        (err if as_json else out)(f"ok: {current.origin} size {current.size}{grew} root "
                                  f"{bytes(current.root_hash).hex()}{scanned}")
        if round_watcher is not None and _report_watch(round_watcher, as_json, result):
            # The state stays put: the next run reports the same entries until they are
            # expected (or the state is reset by hand).
            raise typer.Exit(1)
        monitor.commit(result)
        if final:
            return
        time.sleep(interval)


# --- backup and mirroring --------------------------------------------------------------

def _import_source(source: str) -> TileSource:
    from mgattest.tlog import DirectorySource, URLSource

    if source.startswith(("http://", "https://")):
        return URLSource(source)
    return DirectorySource(source)


@log_app.command("export")
@guarded
def export_cmd(
    directory: Path = typer.Argument(..., help="Directory to write the tiles to (created, "
                                               "or an earlier export to bring up to date)."),
    db: Optional[Path] = typer.Option(None, "--db", help="The log's SQLite file."),
    key: Optional[Path] = typer.Option(
        None, "--key", help="With --db: the log's private key, to sign a checkpoint for the "
        "current size (default: export at the latest checkpoint the log issued)."),
    url: Optional[str] = typer.Option(None, "--url", help="Mirror a served log or mirror "
                                                          "instead (verified first)."),
    log_key: Optional[Path] = typer.Option(None, "--log-key",
                                           help="With --url: the log's public key (PEM)."),
    origin: Optional[str] = typer.Option(None, "--origin",
                                         help="With --url: expected checkpoint origin."),
) -> None:
    """Write the log as C2SP tlog-tiles: a verifiable backup and a static mirror."""
    import tempfile

    from mgattest.errors import InputError
    from mgattest.tlog import export_log, import_log

    if (db is None) == (url is None):
        raise InputError("give exactly one of --db and --url", what="usage")
    if url is not None:
        if log_key is None or key is not None:
            raise InputError("--url needs --log-key (and takes no --key)", what="usage")
        with tempfile.TemporaryDirectory(prefix="mgattest-mirror-") as tmp:
            copy = Path(tmp) / "log.db"  # the verified copy the mirror is written from
            import_log(_import_source(url), copy, _verifier(log_key), origin=origin)
            result = export_log(copy, directory)
    else:
        if log_key is not None or origin is not None:
            raise InputError("--log-key and --origin go with --url", what="usage")
        assert db is not None  # exactly one of --db and --url, checked above
        note = None
        if key is not None:
            log = _open_log(db, key)
            with log:
                note = log.signed_checkpoint()
        elif not Path(db).is_file():
            raise InputError(f"no log database at {db}", what="log database", where=str(db))
        result = export_log(db, directory, note=note)
    out(f"exported tree of {result.tree_size} entries (root {result.root_hash.hex()}) to "
        f"{directory}: {result.written} files written, {result.unchanged} already there")


@log_app.command("import")
@guarded
def import_cmd(
    source: str = typer.Argument(..., help="Export directory or tiles mirror URL."),
    db: Path = typer.Option(..., "--db", help="Database to create, or an existing one that "
                                              "is a prefix of the export."),
    log_key: Path = typer.Option(..., "--log-key", help="The log's public key (PEM): the "
                                                        "checkpoint and SETs must verify."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Expected checkpoint origin."),
) -> None:
    """Rebuild a log database from an export, verifying every tile, entry and SET."""
    from mgattest.tlog import import_log

    result = import_log(_import_source(source), db, _verifier(log_key),
                        origin=origin)
    out(f"imported tree of {result.tree_size} entries (root {result.root_hash.hex()}, "
        f"origin {result.origin}) into {db}: {result.appended} entries added")


@log_app.command("verify-evidence")
@guarded
def verify_evidence_cmd(
    evidence: Path = typer.Argument(..., help="Evidence file written by `log monitor`."),
    log_key: Path = typer.Option(..., "--log-key", help="The log's public key (PEM)."),
) -> None:
    """Re-check a monitor's evidence of an inconsistent log, offline."""
    from mgattest.tlog import read_evidence, verify_evidence

    verdict = verify_evidence(read_evidence(evidence), _verifier(log_key))
    strength = "conclusive" if verdict.conclusive else "observation"
    out(f"confirmed ({verdict.kind}, {strength}): {verdict.summary}")
