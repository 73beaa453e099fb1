"""Tink key sets: the key-encryption key set (KEK) and the per-file payload keys.

Envelope encryption: every file gets a fresh one-key Tink streaming key set
(AES256_GCM_HKDF_1MB); that small key set, wrapped (AEAD-encrypted) by the KEK key set,
sits in the file's header. The KEK key set is a Tink JSON key set of AES256_GCM keys:
its primary key wraps, every ENABLED key unwraps, a DISABLED key is *retired* (data it
wrapped is refused with :class:`RetiredKeyError`). Rotation adds a new primary key;
re-wrapping a file rewrites only its header, never its payload.

The wrapped key set is Tink AEAD ciphertext (``0x01 ‖ key id (4 bytes) ‖ IV ‖ ct ‖ tag``)
of the binary ``Keyset`` proto, so any Tink can unwrap it; its key id says which KEK
key wrapped it, which is how a retired or unknown key is named.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Literal

from mgattest._optional import require
from mgattest.crypt._streaming import StreamParams
from mgattest.crypt.errors import CryptInputError, DecryptionError, RetiredKeyError, \
    WrongKeyError

__all__ = ["KeyInfo", "KekKeyset", "new_file_key", "unwrap_file_key"]

_AES_GCM_KEY = "type.googleapis.com/google.crypto.tink.AesGcmKey"
_STREAMING_KEY = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"
_TINK_PREFIX = 1  # OutputPrefixType.TINK: 0x01 ‖ key id
_MAX_KEYSET_JSON = 1 << 20

KeyStatus = Literal["enabled", "retired"]


@cache
def _tink() -> ModuleType:
    """The ``tink`` package with AEAD and streaming AEAD registered (optional extra)."""
    tink = require("tink", "encryption at rest")
    require("tink.aead", "encryption at rest").register()
    require("tink.streaming_aead", "encryption at rest").register()
    return tink


def _secret_token() -> object:
    return require("tink.secret_key_access", "encryption at rest").TOKEN


@dataclass(frozen=True)
class KeyInfo:
    """One key of a KEK key set, as ``mgattest key list`` shows it (no key material)."""

    key_id: int
    status: KeyStatus
    primary: bool


class KekKeyset:
    """A key-encryption key set: Tink JSON of AES256_GCM keys with TINK prefixes."""

    def __init__(self, keyset_json: str, *, source: str) -> None:
        from google.protobuf import json_format  # noqa: PLC0415 - protobuf comes with tink, optional
        from tink.proto import tink_pb2  # noqa: PLC0415 - optional dependency

        _tink()
        self.source = source
        if len(keyset_json) > _MAX_KEYSET_JSON:
            raise CryptInputError(f"key set from {source} is larger than 1 MiB",
                                  what="key set", where=source)
        try:
            self._proto = json_format.Parse(keyset_json, tink_pb2.Keyset())
        except json_format.ParseError:  # its message may quote the (secret) input: not shown
            raise CryptInputError(f"key set from {source} is not a Tink JSON key set",
                                  what="key set", where=source) from None
        self._check(tink_pb2)

    def _check(self, tink_pb2: ModuleType) -> None:
        if not self._proto.key:
            raise CryptInputError(f"key set from {self.source} holds no key", what="key set",
                                  where=self.source)
        for key in self._proto.key:
            if key.key_data.type_url != _AES_GCM_KEY or key.output_prefix_type != _TINK_PREFIX:
                raise CryptInputError(
                    f"key set from {self.source}: key {key.key_id} is not an AES-GCM key "
                    "with a TINK prefix (create key sets with `mgattest key new`)",
                    what="key set", where=self.source)
            if key.status not in (tink_pb2.ENABLED, tink_pb2.DISABLED):
                raise CryptInputError(f"key set from {self.source}: key {key.key_id} has "
                                      "an unknown status", what="key set", where=self.source)
        primary = self._key(self._proto.primary_key_id)
        if primary is None or primary.status != tink_pb2.ENABLED:
            raise CryptInputError(f"key set from {self.source}: the primary key is missing "
                                  "or retired", what="key set", where=self.source)

    @classmethod
    def generate(cls) -> KekKeyset:
        """A new key set with one AES256_GCM primary key."""
        tink = _tink()
        from tink import aead  # noqa: PLC0415 - optional dependency

        handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
        return cls(tink.json_proto_keyset_format.serialize(handle, _secret_token()),
                   source="new key set")

    def to_json(self) -> str:
        """The key set as Tink JSON (secret: store it where the key source reads it)."""
        from google.protobuf import json_format  # noqa: PLC0415 - optional dependency

        return json_format.MessageToJson(self._proto) + "\n"

    def keys(self) -> list[KeyInfo]:
        """Every key's id and status, primary marked."""
        return [KeyInfo(k.key_id, "enabled" if k.status == 1 else "retired",
                        k.key_id == self._proto.primary_key_id) for k in self._proto.key]

    @property
    def primary_key_id(self) -> int:
        """The id of the key that wraps new and re-wrapped file keys."""
        return int(self._proto.primary_key_id)

    def rotated(self) -> KekKeyset:
        """A copy with a new AES256_GCM key added as primary; old keys stay enabled."""
        new = KekKeyset.generate()._proto.key[0]
        taken = {k.key_id for k in self._proto.key}
        while new.key_id in taken:
            new.key_id = secrets.randbits(31) + 1
        copy = self._copy()
        copy._proto.key.append(new)
        copy._proto.primary_key_id = new.key_id
        return copy

    def retired(self, key_id: int) -> KekKeyset:
        """A copy with *key_id* disabled: data it wrapped no longer decrypts."""
        from tink.proto import tink_pb2  # noqa: PLC0415 - optional dependency

        copy = self._copy()
        key = copy._key(key_id)
        if key is None:
            raise CryptInputError(f"key set from {self.source} has no key {key_id}",
                                  what="key id", where=self.source)
        if key_id == copy._proto.primary_key_id:
            raise CryptInputError(f"key {key_id} is the primary key: rotate first "
                                  "(`mgattest key rotate`), re-wrap, then retire it",
                                  what="key id", where=self.source)
        key.status = tink_pb2.DISABLED
        return copy

    def wrap(self, file_keyset: bytes, associated_data: bytes) -> bytes:
        """Encrypt a file's key set with the primary key."""
        return self._aead().encrypt(file_keyset, associated_data)

    def unwrap(self, wrapped: bytes, associated_data: bytes, *, where: str) -> bytes:
        """Decrypt a wrapped file key set; a retired, unknown or altered key is an error
        naming the key id."""
        from tink.proto import tink_pb2  # noqa: PLC0415 - optional dependency

        if len(wrapped) < 5 or wrapped[0] != _TINK_PREFIX:
            raise DecryptionError(f"{where}: the wrapped file key is malformed",
                                  what="wrapped key", where=where)
        key_id = int.from_bytes(wrapped[1:5], "big")
        key = self._key(key_id)
        if key is None:
            raise WrongKeyError(f"{where}: wrapped with key {key_id}, which the key set "
                                f"from {self.source} does not hold (wrong key set?)",
                                what="key", where=where, key_id=key_id)
        if key.status == tink_pb2.DISABLED:
            raise RetiredKeyError(f"{where}: wrapped with key {key_id}, which the key set "
                                  f"from {self.source} has retired; re-wrap it with a key "
                                  "set that still holds the key enabled",
                                  what="key", where=where, key_id=key_id)
        try:
            return bytes(self._aead().decrypt(wrapped, associated_data))
        except _tink().TinkError:
            raise DecryptionError(f"{where}: the wrapped file key fails authentication under "
                                  f"key {key_id} (altered, or moved from another file)",
                                  what="wrapped key", where=where, key_id=key_id) from None

    def _aead(self):  # type: ignore[no-untyped-def]  # noqa: ANN202 - tink ships no types
        tink = _tink()
        from tink import aead  # noqa: PLC0415 - optional dependency

        handle = tink.json_proto_keyset_format.parse(self.to_json(), _secret_token())
        return handle.primitive(aead.Aead)

    def _key(self, key_id: int):  # type: ignore[no-untyped-def]  # noqa: ANN202 - protobuf message, untyped
        return next((k for k in self._proto.key if k.key_id == key_id), None)

    def _copy(self) -> KekKeyset:
        return KekKeyset(self.to_json(), source=self.source)


def new_file_key() -> tuple[bytes, StreamParams]:
    """A fresh one-key Tink streaming key set (binary proto) and its stream parameters."""
    tink = _tink()
    from tink import streaming_aead  # noqa: PLC0415 - optional dependency

    handle = tink.new_keyset_handle(
        streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
    keyset = tink.proto_keyset_format.serialize(handle, _secret_token())
    return keyset, stream_params(keyset, where="new key")


def unwrap_file_key(kek: KekKeyset, wrapped: bytes, associated_data: bytes, *,
                    where: str) -> tuple[bytes, StreamParams]:
    """The file's key set (binary proto) and stream parameters from its wrapped form."""
    keyset = kek.unwrap(wrapped, associated_data, where=where)
    return keyset, stream_params(keyset, where=where)


def stream_params(keyset: bytes, *, where: str) -> StreamParams:
    """The AES-GCM-HKDF streaming key of a one-key Tink key set (binary proto)."""
    from google.protobuf.message import DecodeError  # noqa: PLC0415 - optional dependency
    from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2  # noqa: PLC0415 - optional dependency

    try:
        proto = tink_pb2.Keyset.FromString(keyset)
        if len(proto.key) != 1 or proto.key[0].key_data.type_url != _STREAMING_KEY:
            raise DecodeError("not one AES-GCM-HKDF streaming key")
        key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey.FromString(
            proto.key[0].key_data.value)
    except DecodeError as exc:
        raise DecryptionError(f"{where}: the file key set is unusable ({exc})",
                              what="file key", where=where) from None
    params = key.params
    if (params.hkdf_hash_type != common_pb2.SHA256 or params.derived_key_size not in (16, 32)
            or len(key.key_value) < params.derived_key_size
            or not 1 << 12 <= params.ciphertext_segment_size <= 1 << 24):
        raise DecryptionError(f"{where}: the file key has unsupported parameters",
                              what="file key", where=where)
    return StreamParams(bytes(key.key_value), params.derived_key_size,
                        params.ciphertext_segment_size)
