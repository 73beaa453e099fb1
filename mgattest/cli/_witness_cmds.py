"""``mgattest log witness``: run a C2SP tlog-witness that cosigns consistent checkpoints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mgattest.cli._common import check_listen_options, err, guarded, out
from mgattest.cli._log_cmds import log_app

if TYPE_CHECKING:
    from mgattest.tlog import LogVerifier

witness_app = typer.Typer(help="Run a C2SP tlog-witness: cosign only consistent checkpoints.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``log witness`` under the ``log`` group."""
    log_app.add_typer(witness_app, name="witness")


def _logs(specs: list[str]) -> dict[str, LogVerifier]:
    """``ORIGIN=PUBLIC_KEY.pem`` pairs → origin → log verifier."""
    from mgattest._files import read_text
    from mgattest.errors import InputError
    from mgattest.tlog import LogVerifier

    logs: dict[str, LogVerifier] = {}
    for spec in specs:
        origin, sep, path = spec.rpartition("=")
        if not sep or not origin or not path:
            raise InputError(f"--log {spec!r} must be ORIGIN=LOG_PUBLIC_KEY.pem", what="usage")
        if origin in logs:
            raise InputError(f"--log names origin {origin!r} twice", what="usage")
        logs[origin] = LogVerifier.from_pem(read_text(Path(path), "log public key", 64 * 1024))
    if not logs:
        raise InputError("give at least one --log ORIGIN=LOG_PUBLIC_KEY.pem", what="usage")
    return logs


@witness_app.command("keygen")
@guarded
def keygen_cmd(
    name: str = typer.Option(..., "--name", help="The witness's name, e.g. witness.example/w1."),
    key_out: Path = typer.Option(..., "--key-out", help="Where to write the private key (PEM)."),
) -> None:
    """Create a witness key (Ed25519) and print its verifier key (vkey)."""
    from mgattest.errors import InputError
    from mgattest.tlog import WitnessSigner

    if key_out.exists():
        raise InputError(f"{key_out} exists; refusing to overwrite a key", what="usage")
    signer = WitnessSigner.generate(name)
    fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(signer.private_pem())
    err(f"wrote {key_out}; give logs and policies this verifier key:")
    out(signer.key.vkey())


@witness_app.command("vkey")
@guarded
def vkey_cmd(
    name: str = typer.Option(..., "--name", help="The witness's name."),
    key: Path = typer.Option(..., "--key", help="The witness's private key (PEM)."),
) -> None:
    """Print the verifier key (vkey) of a witness key."""
    from mgattest.tlog import WitnessSigner

    out(WitnessSigner.from_file(name, key).key.vkey())


@witness_app.command("serve")
@guarded
def serve_cmd(
    key: Path = typer.Option(..., "--key", help="The witness's private key (PEM, Ed25519)."),
    name: str = typer.Option(..., "--name", help="The witness's name (its cosignature lines)."),
    log: list[str] = typer.Option([], "--log", help="A log to witness: ORIGIN=PUBLIC_KEY.pem "
                                  "(repeatable)."),
    state: Path = typer.Option(..., "--state", help="SQLite file of the latest checkpoint "
                               "cosigned per log (created when missing)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(3100, "--port", help="TCP port."),
    allow_remote: bool = typer.Option(False, "--allow-remote",
                                      help="Listen on a non-loopback address."),
) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness) and GET /<origin hash>/checkpoint."""
    from mgattest.tlog import Witness, WitnessSigner, WitnessState, serve_witness

    check_listen_options(host, port, allow_remote)
    logs = _logs(log)
    signer = WitnessSigner.from_file(name, key)
    witness = Witness(signer, logs, WitnessState(state))
    err(f"witness {name} ({signer.key.vkey()}) following {', '.join(sorted(logs))} "
        f"on http://{host}:{port}")
    serve_witness(witness, host=host, port=port)


@witness_app.command("add-checkpoint")
@guarded
def add_checkpoint_cmd(
    request: Path = typer.Argument(..., help="An add-checkpoint request body: 'old N', proof "
                                   "lines, a blank line, the signed checkpoint."),
    key: Path = typer.Option(..., "--key", help="The witness's private key (PEM, Ed25519)."),
    name: str = typer.Option(..., "--name", help="The witness's name."),
    log: list[str] = typer.Option([], "--log", help="A log to witness: ORIGIN=PUBLIC_KEY.pem "
                                  "(repeatable)."),
    state: Path = typer.Option(..., "--state", help="The witness's SQLite state file."),
) -> None:
    """One-shot (offline) add-checkpoint: print the cosignature line, or exit 1 with the
    refusal (the HTTP status the server would answer and why)."""
    from mgattest._files import read_bounded
    from mgattest.tlog import Witness, WitnessRefusal, WitnessSigner, WitnessState

    body = read_bounded(request, 80 * 1024, what="add-checkpoint request")
    witness = Witness(WitnessSigner.from_file(name, key), _logs(log), WitnessState(state))
    try:
        out(witness.add_checkpoint(body).rstrip("\n"))
    except WitnessRefusal as refusal:
        refusal.message = f"witness refuses (HTTP {refusal.status}): {refusal.message}"
        refusal.where = str(request)
        raise
    finally:
        witness.state.close()

