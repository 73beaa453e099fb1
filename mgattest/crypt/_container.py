"""One encrypted file: a small header holding the wrapped file key, then the stream.

    magic "\\x89MGENC\\r\\n" (8) ‖ version 0x01 (1) ‖ wrapped length (2, BE) ‖
    wrapped file key set (Tink AEAD under the KEK) ‖ Tink AES-GCM-HKDF stream

Both the wrapped key and the stream are bound to the file's *context* as associated
data: ``file ‖ name`` for a file encrypted on its own (the encrypted file's name),
``dir ‖ directory id ‖ name`` for a member of an encrypted directory. Swapping two
files, or moving one between directories, fails authentication. The header is the only part :func:`rewrap` changes
(same length: only the KEK key under which it is wrapped changes), so rotation never
touches the payload.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mgattest._files import open_regular
from mgattest.crypt._keysets import KekKeyset, new_file_key, unwrap_file_key
from mgattest.crypt._streaming import Source, StreamParams, decrypt_stream, encrypt_stream, \
    plaintext_size
from mgattest.crypt.errors import CryptInputError, DecryptionError

__all__ = ["EncryptedFile", "encrypt_to", "file_context", "member_context", "rewrap"]

MAGIC = b"\x89MGENC\r\n"
VERSION = 1
MAX_WRAPPED = 4096
_PREFIX = len(MAGIC) + 3


def file_context(name: str) -> bytes:
    """The context of a file encrypted on its own as *name* (the encrypted file's name)."""
    return b"file\x00" + name.encode("utf-8")


def member_context(directory_id: str, name: str) -> bytes:
    """The context of file *name* in the encrypted directory *directory_id*."""
    return b"dir\x00" + directory_id.encode("ascii") + b"\x00" + name.encode("utf-8")


def _key_ad(context: bytes) -> bytes:
    return b"mgattest-encrypt/v1 key\x00" + context


def _data_ad(context: bytes) -> bytes:
    return b"mgattest-encrypt/v1 data\x00" + context


def encrypt_to(source: Source, sink: BinaryIO, kek: KekKeyset, context: bytes) -> int:
    """Write the header and the encrypted stream of *source* to *sink* under a fresh
    file key wrapped by the KEK's primary key; returns the plaintext size."""
    keyset, params = new_file_key()
    wrapped = kek.wrap(keyset, _key_ad(context))
    sink.write(MAGIC + bytes([VERSION]) + len(wrapped).to_bytes(2, "big") + wrapped)
    return encrypt_stream(source, sink, params, _data_ad(context))


@dataclass(frozen=True)
class EncryptedFile:
    """The parsed header of an encrypted file at *path* (nothing decrypted yet)."""

    path: str
    label: str  # how messages name the file (its name in a directory)
    wrapped: bytes
    stream_offset: int
    size: int

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, label: str | None = None) -> EncryptedFile:
        """Read and check the header of the file at *path*."""
        name = label or os.fspath(path)
        try:
            with _open(path, name) as fh:
                head = fh.read(_PREFIX)
                size = os.fstat(fh.fileno()).st_size
                if len(head) < _PREFIX or head[:len(MAGIC)] != MAGIC:
                    raise CryptInputError(f"{name} is not an mgattest encrypted file",
                                          what="encrypted file", where=name)
                if head[len(MAGIC)] != VERSION:
                    raise DecryptionError(f"{name}: unknown format version "
                                          f"{head[len(MAGIC)]}", what="header", where=name)
                length = int.from_bytes(head[len(MAGIC) + 1:], "big")
                wrapped = fh.read(length) if length <= MAX_WRAPPED else b""
        except OSError as exc:
            raise CryptInputError(f"cannot read {name}: {exc.strerror or exc}",
                                  what="encrypted file", where=name) from None
        if not 0 < length <= MAX_WRAPPED or len(wrapped) != length:
            raise DecryptionError(f"{name}: the header's key length is out of bounds",
                                  what="header", where=name)
        return cls(os.fspath(path), name, wrapped, _PREFIX + length, size)

    def params(self, kek: KekKeyset, context: bytes) -> StreamParams:
        """The stream key, unwrapped by the KEK (errors name a retired or unknown key)."""
        return unwrap_file_key(kek, self.wrapped, _key_ad(context), where=self.label)[1]

    def plaintext_size(self, params: StreamParams) -> int:
        """The size the plaintext will have (checked while decrypting)."""
        size = plaintext_size(self.size - self.stream_offset, params)
        if size is None:
            raise DecryptionError(f"{self.label}: the ciphertext length fits no stream "
                                  "(truncated or padded)", what="stream", where=self.label)
        return size

    def chunks(self, kek: KekKeyset, context: bytes) -> Iterator[bytes]:
        """The plaintext, authenticated segment by segment (valid once exhausted)."""
        params = self.params(kek, context)
        with _open(self.path, self.label) as fh:
            fh.seek(self.stream_offset)
            yield from decrypt_stream(fh, params, _data_ad(context), where=self.label)


def _open(path: str | os.PathLike[str], label: str) -> io.BufferedReader:
    """The regular file at *path*, not through a symlink (a FIFO or device never blocks)."""
    fd = open_regular(path, what=f"encrypted file {label}", error=CryptInputError,
                      flags=os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


def rewrap(path: str | os.PathLike[str], old: KekKeyset, new: KekKeyset, context: bytes, *,
           label: str | None = None) -> bool:
    """Re-wrap the file key of the file at *path* under *new*'s primary key, in place.

    Only the header changes (it keeps its length); returns False when the file was
    already wrapped by that key. The payload is neither read nor rewritten.
    """
    header = EncryptedFile.open(path, label=label)
    if int.from_bytes(header.wrapped[1:5], "big") == new.primary_key_id:
        return False
    keyset = old.unwrap(header.wrapped, _key_ad(context), where=header.label)
    wrapped = new.wrap(keyset, _key_ad(context))
    if len(wrapped) != len(header.wrapped):
        raise CryptInputError(f"{header.label}: the re-wrapped key has another length",
                              what="rewrap", where=header.label)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, wrapped, _PREFIX)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True
