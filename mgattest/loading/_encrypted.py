"""An encrypted model's plaintext, decrypted straight into private memory.

``mgattest.load(path, ..., decrypt=KeySource)`` reads the model through
:func:`read_encrypted_model_bytes`: every segment is authenticated as it is decrypted,
hashed as it lands in an anonymous ``mmap`` (no file backs it, nothing is written to
disk), and the result is the same :class:`ModelBytes` an unencrypted model gives, so
the verification pipeline judges the *plaintext* digests (the ones the attestation's
subjects name) and the loaders deserialise exactly those bytes.

:func:`hash_encrypted_model` is the signing side: the SHA-256 of every plaintext file,
hashed while decrypting (constant memory), as the :class:`ModelDigests` that
``attest.sign_digests`` signs, so a model signed encrypted and one signed before
encryption carry the same subjects.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

from mgattest.attest import FileDigest, ModelDigests
from mgattest.crypt import KekKeyset, KeySource, plaintext_files
from mgattest.errors import InputError
from mgattest.policy import MAX_MODEL_FILES, ModelBytes

__all__ = ["hash_encrypted_model", "read_encrypted_model_bytes"]


def read_encrypted_model_bytes(path: str | os.PathLike[str],
                               key: KeySource | KekKeyset) -> ModelBytes:
    """Decrypt the encrypted file or directory at *path* into memory, with the SHA-256
    of each file's plaintext; raises a :mod:`mgattest.crypt.errors` error on any
    authentication failure (nothing partially decrypted is returned)."""
    kek = key.load() if isinstance(key, KeySource) else key
    single, plain = plaintext_files(path, kek)
    if len(plain) > MAX_MODEL_FILES:
        raise InputError(f"model has more than {MAX_MODEL_FILES} files", what="model",
                         where=str(path))
    root = Path(path)
    files: dict[str, mmap.mmap | bytearray] = {}
    digests: dict[str, str] = {}
    identity = []
    for item in plain:
        buffer: mmap.mmap | bytearray = mmap.mmap(-1, item.size) if item.size else bytearray()
        digest = hashlib.sha256()
        pos = 0
        for chunk in item.chunks:  # the plaintext size is authenticated (manifest, stream)
            buffer[pos:pos + len(chunk)] = chunk
            digest.update(chunk)
            pos += len(chunk)
        files[item.name] = buffer
        digests[item.name] = digest.hexdigest()
        st = os.stat(root if single else root / item.name)
        identity.append((item.name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return ModelBytes(os.path.realpath(root), single, dict(files), digests, tuple(identity))


def hash_encrypted_model(path: str | os.PathLike[str], key: KeySource | KekKeyset, *,
                         name: str | None = None) -> ModelDigests:
    """The plaintext SHA-256 digests of the encrypted model at *path*, for signing.

    Each file is decrypted, authenticated and hashed segment by segment; nothing is
    kept in memory or written to disk. An encrypted directory keeps its files' names;
    a single encrypted file does not store its plaintext name, so the subject is named
    *name* (default: the encrypted file's name; single-file subjects are matched by
    digest when verifying, so the name does not decide a verdict).
    """
    kek = key.load() if isinstance(key, KeySource) else key
    single, plain = plaintext_files(path, kek)
    files = []
    for item in plain:
        digest = hashlib.sha256()
        for chunk in item.chunks:
            digest.update(chunk)
        subject = name if single and name else item.name
        files.append(FileDigest(subject, item.size, {"sha256": digest.hexdigest()}))
    if not files:
        raise InputError(f"model {path} has no files to sign", what="model", where=str(path))
    return ModelDigests(os.path.realpath(path), "sha256", None, (), files, single_file=single,
                        model_name=Path(path).name)
