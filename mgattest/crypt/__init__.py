"""mgattest.crypt — models encrypted at rest (Tink streaming AEAD, envelope keys).

Entry points (loaded lazily, PEP 562):

- keys: :class:`KeySource` (an environment variable, a file, or a command that prints
  the key set) -> :class:`KekKeyset` (a Tink JSON key set of AES256_GCM key-encryption
  keys: ``generate``, ``rotated``, ``retired``, ``keys`` -> :class:`KeyInfo`);
- files and directories: :func:`encrypt_path`, :func:`decrypt_path`,
  :func:`rewrap_path` (rotation: new header, same payload), :func:`plaintext_files`
  -> :class:`PlaintextFile` (authenticated plaintext in memory, for ``mgattest.load``
  and for hashing an encrypted model), :data:`MANIFEST_NAME`; the functions report
  files as :class:`ManifestFile` (name, plaintext size).

Public module: :mod:`mgattest.crypt.errors`. The format is docs/encryption.md. The
``tink`` package is an optional extra (``pip install 'mgattest[encrypt]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgattest._lazy import LazyExports

if TYPE_CHECKING:
    from mgattest.crypt._keysets import KekKeyset, KeyInfo
    from mgattest.crypt._keysource import KeySource
    from mgattest.crypt._tree import MANIFEST_NAME, ManifestFile, PlaintextFile, \
        decrypt_path, encrypt_path, plaintext_files, rewrap_path

__all__ = ["decrypt_path", "encrypt_path", "KekKeyset", "KeyInfo", "KeySource",
           "MANIFEST_NAME", "ManifestFile", "plaintext_files", "PlaintextFile", "rewrap_path"]

_EXPORTS = LazyExports("mgattest.crypt", {
    "KekKeyset": "mgattest.crypt._keysets",
    "KeyInfo": "mgattest.crypt._keysets",
    "KeySource": "mgattest.crypt._keysource",
    "MANIFEST_NAME": "mgattest.crypt._tree",
    "ManifestFile": "mgattest.crypt._tree",
    "PlaintextFile": "mgattest.crypt._tree",
    "decrypt_path": "mgattest.crypt._tree",
    "encrypt_path": "mgattest.crypt._tree",
    "plaintext_files": "mgattest.crypt._tree",
    "rewrap_path": "mgattest.crypt._tree",
})


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return _EXPORTS.names()
