"""``mgattest encrypt``, ``decrypt`` and ``keyset`` (new, list, rotate, retire, rewrap).

The key-encryption key set comes from ``--key-env VAR`` (default ``MGATTEST_KEYSET``),
``--key-file PATH`` or ``--key-command "CMD ARGS"`` (what the command prints; run
without a shell). docs/encryption.md describes the format and the rotation steps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from mgattest.cli._common import guarded, out

if TYPE_CHECKING:
    from mgattest.crypt import KekKeyset, KeySource, ManifestFile

DEFAULT_KEY_ENV = "MGATTEST_KEYSET"

keyset_app = typer.Typer(help="Key-encryption key sets for encrypted models: create, "
                              "rotate, retire, re-wrap.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``encrypt``, ``decrypt`` and the ``keyset`` group to the root app."""
    app.command("encrypt")(encrypt_cmd)
    app.command("decrypt")(decrypt_cmd)
    app.add_typer(keyset_app, name="keyset")


_KEY_ENV = typer.Option(None, "--key-env", metavar="VAR",
                        help=f"Read the key set from this variable (default {DEFAULT_KEY_ENV}).")
_KEY_FILE = typer.Option(None, "--key-file", help="Read the key set from this file.")
_KEY_COMMAND = typer.Option(None, "--key-command", metavar='"CMD ARGS"',
                            help="Run this command (no shell) and read the key set it prints.")
_KEY_TIMEOUT = typer.Option(30.0, "--key-timeout", help="Seconds the key command may take.")


def load_kek(key_env: Optional[str], key_file: Optional[Path], key_command: Optional[str],
             key_timeout: float) -> KekKeyset:
    """The key set from the one key source the options name (default: the variable)."""
    return _key_source(key_env, key_file, key_command, key_timeout).load()


def _key_source(key_env: Optional[str], key_file: Optional[Path], key_command: Optional[str],
                key_timeout: float) -> KeySource:
    from mgattest.crypt import KeySource
    from mgattest.errors import InputError

    given = [o for o in (key_env, key_file, key_command) if o is not None]
    if len(given) > 1:
        raise InputError("give one of --key-env, --key-file, --key-command", what="usage")
    if not 0 < key_timeout <= 3600:
        raise InputError("--key-timeout must be in (0, 3600] seconds", what="usage")
    if key_file is not None:
        return KeySource.file(key_file)
    if key_command is not None:
        return KeySource.command(key_command, timeout=key_timeout)
    return KeySource.env(key_env or DEFAULT_KEY_ENV)


@guarded
def encrypt_cmd(
    source: Path = typer.Argument(..., help="Model file or directory to encrypt."),
    output: Path = typer.Option(..., "--output", "-o", help="Encrypted file or directory "
                                "to create (must not exist)."),
    key_env: Optional[str] = _KEY_ENV, key_file: Optional[Path] = _KEY_FILE,
    key_command: Optional[str] = _KEY_COMMAND, key_timeout: float = _KEY_TIMEOUT,
) -> None:
    """Encrypt a model (streaming AEAD per file, names kept, an encrypted manifest)."""
    from mgattest.crypt import encrypt_path

    kek = load_kek(key_env, key_file, key_command, key_timeout)
    _summary("encrypted", encrypt_path(source, output, kek), output,
             f" (key {kek.primary_key_id})")


@guarded
def decrypt_cmd(
    source: Path = typer.Argument(..., help="Encrypted file or directory."),
    output: Path = typer.Option(..., "--output", "-o", help="Plaintext file or directory "
                                "to create (must not exist; written only once authenticated)."),
    name: Optional[str] = typer.Option(None, "--name", help="For a single file renamed "
                                       "since: the name it was encrypted to."),
    key_env: Optional[str] = _KEY_ENV, key_file: Optional[Path] = _KEY_FILE,
    key_command: Optional[str] = _KEY_COMMAND, key_timeout: float = _KEY_TIMEOUT,
) -> None:
    """Decrypt and authenticate an encrypted model (any alteration: exit 1)."""
    from mgattest.crypt import decrypt_path

    kek = load_kek(key_env, key_file, key_command, key_timeout)
    _summary("decrypted", decrypt_path(source, output, kek, name=name), output)


def _summary(verb: str, files: list[ManifestFile], output: Path, note: str = "") -> None:
    out(f"{verb} {len(files)} file(s), {sum(f['size'] for f in files)} bytes, to {output}{note}")


def _write_keyset(keyset: KekKeyset, output: Path) -> None:
    """Write a key set to *output* (mode 0600, never over an existing file) or stdout."""
    from mgattest.errors import InputError

    text = keyset.to_json()
    if str(output) == "-":
        typer.echo(text, nl=False)
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"{output} already exists (key sets are never overwritten)",
                         what="output", where=str(output)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    out(f"wrote key set to {output} (primary key {keyset.primary_key_id})")


@keyset_app.command("new")
@guarded
def keyset_new_cmd(
    output: Path = typer.Option(..., "--output", "-o", help="File to create (0600), or - "
                                "for stdout (to pipe into a secret manager)."),
) -> None:
    """Create a key set with one AES256-GCM key-encryption key."""
    from mgattest.crypt import KekKeyset

    _write_keyset(KekKeyset.generate(), output)


@keyset_app.command("list")
@guarded
def keyset_list_cmd(
    key_env: Optional[str] = _KEY_ENV, key_file: Optional[Path] = _KEY_FILE,
    key_command: Optional[str] = _KEY_COMMAND, key_timeout: float = _KEY_TIMEOUT,
) -> None:
    """List the key ids and their status (no key material)."""
    for key in load_kek(key_env, key_file, key_command, key_timeout).keys():
        out(f"{key.key_id}  {key.status}{'  primary' if key.primary else ''}")


@keyset_app.command("rotate")
@guarded
def keyset_rotate_cmd(
    output: Path = typer.Option(..., "--output", "-o", help="File (0600) or - for the "
                                "new key set."),
    key_env: Optional[str] = _KEY_ENV, key_file: Optional[Path] = _KEY_FILE,
    key_command: Optional[str] = _KEY_COMMAND, key_timeout: float = _KEY_TIMEOUT,
) -> None:
    """Add a new primary key; old keys still decrypt. Then `keyset rewrap` your models."""
    kek = load_kek(key_env, key_file, key_command, key_timeout)
    _write_keyset(kek.rotated(), output)


@keyset_app.command("retire")
@guarded
def keyset_retire_cmd(
    key_id: int = typer.Argument(..., help="Id of the key to retire (`keyset list`)."),
    output: Path = typer.Option(..., "--output", "-o", help="File (0600) or - for the "
                                "new key set."),
    key_env: Optional[str] = _KEY_ENV, key_file: Optional[Path] = _KEY_FILE,
    key_command: Optional[str] = _KEY_COMMAND, key_timeout: float = _KEY_TIMEOUT,
) -> None:
    """Retire (disable) a key: data still wrapped by it is refused from then on."""
    kek = load_kek(key_env, key_file, key_command, key_timeout)
    _write_keyset(kek.retired(key_id), output)


@keyset_app.command("rewrap")
@guarded
def keyset_rewrap_cmd(
    paths: list[Path] = typer.Argument(..., help="Encrypted files or directories."),
    key_env: Optional[str] = _KEY_ENV, key_file: Optional[Path] = _KEY_FILE,
    key_command: Optional[str] = _KEY_COMMAND, key_timeout: float = _KEY_TIMEOUT,
) -> None:
    """Re-wrap file keys under the key set's primary key, in place; payloads untouched."""
    from mgattest.crypt import rewrap_path

    kek = load_kek(key_env, key_file, key_command, key_timeout)
    for path in paths:
        changed, current = rewrap_path(path, kek)
        out(f"{path}: re-wrapped {changed} file key(s) under key {kek.primary_key_id}"
            + (f", {current} already under it" if current else ""))
