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
from typing import Any, Literal, Protocol

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


class _Aead(Protocol):
    """What mgattest uses of a Tink ``Aead`` primitive (tink ships no type hints)."""

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes: ...

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes: ...


@dataclass(frozen=True)
class _TinkModules:
    """The parts of ``tink`` (an optional extra) and of its protobuf this module uses."""

    tink: ModuleType
    aead: ModuleType
    streaming_aead: ModuleType
    secret_token: object  # tink.secret_key_access.TOKEN
    json_format: ModuleType  # google.protobuf.json_format
    decode_error: type[Exception]  # google.protobuf.message.DecodeError
    tink_pb2: ModuleType
    streaming_pb2: ModuleType  # tink.proto.aes_gcm_hkdf_streaming_pb2
    common_pb2: ModuleType


@cache
def _tink() -> _TinkModules:
    """Import tink on first use (importing mgattest.crypt stays cheap) and register
    AEAD and streaming AEAD."""
    def need(module: str) -> ModuleType:
        return require(module, "encryption at rest")

    modules = _TinkModules(
        need("tink"), need("tink.aead"), need("tink.streaming_aead"),
        need("tink.secret_key_access").TOKEN, need("google.protobuf.json_format"),
        need("google.protobuf.message").DecodeError, need("tink.proto.tink_pb2"),
        need("tink.proto.aes_gcm_hkdf_streaming_pb2"), need("tink.proto.common_pb2"))
    modules.aead.register()
    modules.streaming_aead.register()
    return modules


@dataclass(frozen=True)
class KeyInfo:
    """One key of a KEK key set, as ``mgattest key list`` shows it (no key material)."""

    key_id: int
    status: KeyStatus
    primary: bool


class KekKeyset:
    """A key-encryption key set: Tink JSON of AES256_GCM keys with TINK prefixes."""

    def __init__(self, keyset_json: str, *, source: str) -> None:
        t = _tink()
        self.source = source
        self._primitive: _Aead | None = None
        if len(keyset_json) > _MAX_KEYSET_JSON:
            raise CryptInputError(f"key set from {source} is larger than 1 MiB",
                                  what="key set", where=source)
        try:
            self._proto = t.json_format.Parse(keyset_json, t.tink_pb2.Keyset())
        except t.json_format.ParseError:  # its message may quote the (secret) input: not shown
            raise CryptInputError(f"key set from {source} is not a Tink JSON key set",
                                  what="key set", where=source) from None
        self._check(t.tink_pb2)

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
        t = _tink()
        handle = t.tink.new_keyset_handle(t.aead.aead_key_templates.AES256_GCM)
        return cls(t.tink.json_proto_keyset_format.serialize(handle, t.secret_token),
                   source="new key set")

    def to_json(self) -> str:
        """The key set as Tink JSON (secret: store it where the key source reads it)."""
        return str(_tink().json_format.MessageToJson(self._proto)) + "\n"

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
        copy = self._copy()
        key = copy._key(key_id)
        if key is None:
            raise CryptInputError(f"key set from {self.source} has no key {key_id}",
                                  what="key id", where=self.source)
        if key_id == copy._proto.primary_key_id:
            raise CryptInputError(f"key {key_id} is the primary key: rotate first "
                                  "(`mgattest key rotate`), re-wrap, then retire it",
                                  what="key id", where=self.source)
        key.status = _tink().tink_pb2.DISABLED
        return copy

    def wrap(self, file_keyset: bytes, associated_data: bytes) -> bytes:
        """Encrypt a file's key set with the primary key."""
        return self._aead().encrypt(file_keyset, associated_data)

    def unwrap(self, wrapped: bytes, associated_data: bytes, *, where: str) -> bytes:
        """Decrypt a wrapped file key set; a retired, unknown or altered key is an error
        naming the key id."""
        if len(wrapped) < 5 or wrapped[0] != _TINK_PREFIX:
            raise DecryptionError(f"{where}: the wrapped file key is malformed",
                                  what="wrapped key", where=where)
        key_id = int.from_bytes(wrapped[1:5], "big")
        key = self._key(key_id)
        if key is None:
            raise WrongKeyError(f"{where}: wrapped with key {key_id}, which the key set "
                                f"from {self.source} does not hold (wrong key set?)",
                                what="key", where=where, key_id=key_id)
        if key.status == _tink().tink_pb2.DISABLED:
            raise RetiredKeyError(f"{where}: wrapped with key {key_id}, which the key set "
                                  f"from {self.source} has retired; re-wrap it with a key "
                                  "set that still holds the key enabled",
                                  what="key", where=where, key_id=key_id)
        try:
            return bytes(self._aead().decrypt(wrapped, associated_data))
        except _tink().tink.TinkError:
            raise DecryptionError(f"{where}: the wrapped file key fails authentication under "
                                  f"key {key_id} (altered, renamed, or moved from another file)",
                                  what="wrapped key", where=where, key_id=key_id) from None

    def _aead(self) -> _Aead:
        if self._primitive is None:
            t = _tink()
            handle = t.tink.json_proto_keyset_format.parse(self.to_json(), t.secret_token)
            self._primitive = handle.primitive(t.aead.Aead)
        return self._primitive

    def _key(self, key_id: int) -> Any:  # a tink_pb2.Keyset.Key message (protobuf, untyped)
        return next((k for k in self._proto.key if k.key_id == key_id), None)

    def _copy(self) -> KekKeyset:
        return KekKeyset(self.to_json(), source=self.source)


def new_file_key() -> tuple[bytes, StreamParams]:
    """A fresh one-key Tink streaming key set (binary proto) and its stream parameters."""
    t = _tink()
    handle = t.tink.new_keyset_handle(
        t.streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
    keyset: bytes = t.tink.proto_keyset_format.serialize(handle, t.secret_token)
    return keyset, stream_params(keyset, where="new key")


def unwrap_file_key(kek: KekKeyset, wrapped: bytes, associated_data: bytes, *,
                    where: str) -> tuple[bytes, StreamParams]:
    """The file's key set (binary proto) and stream parameters from its wrapped form."""
    keyset = kek.unwrap(wrapped, associated_data, where=where)
    return keyset, stream_params(keyset, where=where)


def stream_params(keyset: bytes, *, where: str) -> StreamParams:
    """The AES-GCM-HKDF streaming key of a one-key Tink key set (binary proto)."""
    t = _tink()
    try:
        proto = t.tink_pb2.Keyset.FromString(keyset)
        if len(proto.key) != 1 or proto.key[0].key_data.type_url != _STREAMING_KEY:
            raise t.decode_error("not one AES-GCM-HKDF streaming key")
        key = t.streaming_pb2.AesGcmHkdfStreamingKey.FromString(proto.key[0].key_data.value)
    except t.decode_error as exc:
        raise DecryptionError(f"{where}: the file key set is unusable ({exc})",
                              what="file key", where=where) from None
    params = key.params
    if (params.hkdf_hash_type != t.common_pb2.SHA256 or params.derived_key_size not in (16, 32)
            or len(key.key_value) < params.derived_key_size
            or not 1 << 12 <= params.ciphertext_segment_size <= 1 << 24):
        raise DecryptionError(f"{where}: the file key has unsupported parameters",
                              what="file key", where=where)
    return StreamParams(bytes(key.key_value), params.derived_key_size,
                        params.ciphertext_segment_size)
