"""Encrypt, decrypt and re-wrap a model: one file, or a directory file by file.

An encrypted directory keeps every file's name (each file encrypted on its own, see
``_container``) and adds one encrypted manifest, ``.mgattest-encrypted``, listing the
names and plaintext sizes and a random directory id that every member's associated
data includes. Decryption refuses a directory whose files are not exactly the
manifest's (a file removed, added or renamed), a member moved from another encrypted
directory, and a size that differs from the manifest.

Outputs appear only complete and authenticated: plaintext and ciphertext are written
to a temporary sibling and renamed into place at the end, so a failure leaves no
partial or unauthenticated output behind.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypedDict

from mgattest.crypt._container import EncryptedFile, encrypt_to, file_context, \
    member_context, rewrap
from mgattest.crypt._keysets import KekKeyset
from mgattest.crypt.errors import CryptInputError, DecryptionError

__all__ = ["MANIFEST_NAME", "PlaintextFile", "decrypt_path", "encrypt_path",
           "plaintext_files", "rewrap_path"]

MANIFEST_NAME = ".mgattest-encrypted"
MANIFEST_FORMAT = "mgattest-encrypted-directory/v1"
MANIFEST_CONTEXT = b"manifest"
MAX_MANIFEST = 64 << 20


class ManifestFile(TypedDict):
    """One member of an encrypted directory."""

    name: str
    size: int


class ManifestJSON(TypedDict):
    """The (encrypted) manifest of an encrypted directory."""

    format: str
    directory_id: str
    files: list[ManifestFile]


@dataclass(frozen=True)
class PlaintextFile:
    """One file of an encrypted model, ready to decrypt: its name in the model, its
    plaintext size and the authenticated plaintext segments."""

    name: str
    size: int
    chunks: Iterator[bytes]


def encrypt_path(source: str | os.PathLike[str], output: str | os.PathLike[str],
                 kek: KekKeyset) -> list[ManifestFile]:
    """Encrypt the file or directory *source* to *output* (which must not exist)."""
    src, out = Path(source), Path(output)
    _refuse_existing(out)
    if not src.is_dir():
        with _open_plain(src, str(src)) as fh, _staged_file(out) as sink:
            size = encrypt_to(fh, sink, kek, file_context(out.name))
            return [ManifestFile(name=src.name, size=size)]
    names = _plain_members(src)
    if MANIFEST_NAME in names:
        raise CryptInputError(f"{src} holds {MANIFEST_NAME}: it is encrypted already",
                              what="model", where=str(src / MANIFEST_NAME))
    directory_id = secrets.token_hex(16)
    listed: list[ManifestFile] = []
    with _staged_dir(out) as staging:
        for name in names:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with _open_plain(src / name, name) as fh, open(target, "xb") as sink:
                size = encrypt_to(fh, sink, kek, member_context(directory_id, name))
            listed.append(ManifestFile(name=name, size=size))
        manifest = ManifestJSON(format=MANIFEST_FORMAT, directory_id=directory_id,
                                files=listed)
        with open(staging / MANIFEST_NAME, "xb") as sink:
            encrypt_to(io.BytesIO(json.dumps(manifest, sort_keys=True).encode()), sink,
                       kek, MANIFEST_CONTEXT)
    return listed


def plaintext_files(source: str | os.PathLike[str], kek: KekKeyset, *,
                    name: str | None = None) -> tuple[bool, list[PlaintextFile]]:
    """(single file?, the files of the encrypted model at *source*) without writing
    anything: each file's chunks are decrypted and authenticated as they are read.

    A file encrypted on its own is bound to the name it was encrypted to; *name* gives
    that name when the file has been renamed since (default: its current name).

    For a directory the member set is checked against the manifest first; each
    file's total size is checked against the manifest as its last chunk arrives.
    """
    src = Path(source)
    if not src.is_dir():
        header = EncryptedFile.open(src)
        context = file_context(name or src.name)
        size = header.plaintext_size(header.params(kek, context))
        return True, [PlaintextFile(src.name, size, _sized(header.chunks(kek, context),
                                                           size, src.name))]
    manifest = _read_manifest(src, kek)
    files = []
    for entry in manifest["files"]:
        name = entry["name"]
        header = EncryptedFile.open(src / name, label=name)
        context = member_context(manifest["directory_id"], name)
        size = header.plaintext_size(header.params(kek, context))
        if size != entry["size"]:
            raise DecryptionError(f"{name}: holds {size} bytes, the manifest says "
                                  f"{entry['size']}", what="manifest", where=name)
        files.append(PlaintextFile(name, size, _sized(header.chunks(kek, context), size, name)))
    return False, files


def decrypt_path(source: str | os.PathLike[str], output: str | os.PathLike[str],
                 kek: KekKeyset, *, name: str | None = None) -> list[ManifestFile]:
    """Decrypt the encrypted file or directory *source* to *output* (must not exist);
    *name*: see :func:`plaintext_files`."""
    out = Path(output)
    _refuse_existing(out)
    single, files = plaintext_files(source, kek, name=name)
    if single:
        with _staged_file(out) as sink:
            _drain(files[0], sink)
        return [ManifestFile(name=files[0].name, size=files[0].size)]
    with _staged_dir(out) as staging:
        for plain in files:
            target = staging / plain.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as sink:
                _drain(plain, sink)
    return [ManifestFile(name=f.name, size=f.size) for f in files]


def rewrap_path(path: str | os.PathLike[str], kek: KekKeyset, *,
                name: str | None = None) -> tuple[int, int]:
    """Re-wrap every file key of the encrypted file or directory at *path* under the
    KEK's primary key (any enabled key of *kek* unwraps); payloads stay untouched.
    Returns (files re-wrapped, files already under the primary key); *name*: see
    :func:`plaintext_files`."""
    src = Path(path)
    if not src.is_dir():
        changed = rewrap(src, kek, kek, file_context(name or src.name))
        return int(changed), int(not changed)
    manifest = _read_manifest(src, kek)
    done = [rewrap(src / e["name"], kek, kek,
                   member_context(manifest["directory_id"], e["name"]), label=e["name"])
            for e in manifest["files"]]
    done.append(rewrap(src / MANIFEST_NAME, kek, kek, MANIFEST_CONTEXT, label=MANIFEST_NAME))
    return sum(done), len(done) - sum(done)


def _read_manifest(directory: Path, kek: KekKeyset) -> ManifestJSON:
    if not (directory / MANIFEST_NAME).is_file():
        raise CryptInputError(f"{directory} is not an encrypted directory (no "
                              f"{MANIFEST_NAME})", what="encrypted directory",
                              where=str(directory))
    header = EncryptedFile.open(directory / MANIFEST_NAME, label=MANIFEST_NAME)
    data = bytearray()
    for chunk in header.chunks(kek, MANIFEST_CONTEXT):
        data += chunk
        if len(data) > MAX_MANIFEST:
            raise CryptInputError(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST} bytes",
                                  what="manifest", where=str(directory))
    manifest = _parse_manifest(bytes(data), str(directory))
    listed = {e["name"] for e in manifest["files"]}
    present = set(_plain_members(directory)) - {MANIFEST_NAME}
    if present != listed:
        extra, missing = sorted(present - listed), sorted(listed - present)
        raise DecryptionError(f"{directory}: files differ from the encrypted manifest "
                              f"(missing: {missing[:5]}, not listed: {extra[:5]})",
                              what="manifest", where=str(directory),
                              missing=missing[:20], extra=extra[:20])
    return manifest


def _parse_manifest(data: bytes, where: str) -> ManifestJSON:
    """The manifest's JSON (authenticated already, so a bad shape is our own bug or a
    foreign writer: refused all the same)."""
    try:
        value = json.loads(data)
        ok = (value["format"] == MANIFEST_FORMAT and isinstance(value["directory_id"], str)
              and all(isinstance(f["name"], str) and isinstance(f["size"], int)
                      for f in value["files"]))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise DecryptionError(f"{where}: the manifest is not a {MANIFEST_FORMAT} document",
                              what="manifest", where=where)
    return value  # type: ignore[no-any-return]  # shape checked above


def _sized(chunks: Iterator[bytes], size: int, name: str) -> Iterator[bytes]:
    got = 0
    for chunk in chunks:
        got += len(chunk)
        if got > size:
            break
        yield chunk
    if got != size:
        raise DecryptionError(f"{name}: decrypted to {got} bytes, expected {size}",
                              what="stream", where=name)


def _drain(plain: PlaintextFile, sink: BinaryIO) -> None:
    for chunk in plain.chunks:
        sink.write(chunk)


def _plain_members(directory: Path) -> list[str]:
    """POSIX names of the regular files under *directory*; a symlink or special file
    is refused (encryption neither follows links nor copies devices)."""
    names = []
    for dirpath, dirnames, filenames in os.walk(directory):
        base = Path(dirpath)
        for entry in sorted(dirnames) + sorted(filenames):
            mode = os.lstat(base / entry).st_mode
            relative = (base / entry).relative_to(directory).as_posix()
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise CryptInputError(f"{relative} in {directory} is not a regular file or "
                                      "directory (symlinks and special files are refused)",
                                      what="model file", where=relative)
            if stat.S_ISREG(mode):
                names.append(relative)
    return sorted(names)


def _open_plain(path: Path, label: str) -> io.BufferedReader:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise CryptInputError(f"cannot read {label}: {exc.strerror or exc}",
                              what="input file", where=label) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CryptInputError(f"{label} is not a regular file", what="input file",
                              where=label)
    return os.fdopen(fd, "rb")


def _refuse_existing(out: Path) -> None:
    if os.path.lexists(out):
        raise CryptInputError(f"output {out} already exists", what="output", where=str(out))


@contextmanager
def _staged_file(target: Path) -> Iterator[BinaryIO]:
    """A temporary sibling of *target*, renamed to it only when the block succeeds."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        sink = open(tmp, "xb")  # closed below; renamed only on success
    except OSError as exc:
        raise CryptInputError(f"cannot write {target}: {exc.strerror or exc}",
                              what="output", where=str(target)) from None
    try:
        with sink:
            yield sink
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


@contextmanager
def _staged_dir(target: Path) -> Iterator[Path]:
    """A temporary sibling directory of *target*, renamed to it when the block succeeds."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        tmp.mkdir(mode=0o700)
    except OSError as exc:
        raise CryptInputError(f"cannot write {target}: {exc.strerror or exc}",
                              what="output", where=str(target)) from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.rename(tmp, target)
