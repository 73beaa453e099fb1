"""Sigstore trusted roots and client trust configs.

* ``application/vnd.dev.sigstore.trustedroot+json;version=0.1``: transparency logs
  (``tlogs``), CT logs (``ctlogs``), certificate authorities and timestamp
  authorities, each with raw DER key/certificates and a validity window.
* ``application/vnd.dev.sigstore.clienttrustconfig.v0.1+json``: a trusted root plus a
  signing config.

The public-good production and staging roots are read from the assets shipped inside
the installed ``sigstore`` package (no network, no TUF refresh).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mgattest._files import read_bounded
from mgattest._encodings import spki_der
from mgattest._jsonutil import JSONObject, JSONValue
from mgattest._trustjson import (
    AuthorityJSON,
    ClientTrustConfigJSON,
    LogInstanceJSON,
    TrustedRootJSON,
    ValidForJSON,
)
from mgattest.attest._dsse import b64, b64decode_strict
from mgattest.attest.errors import DSSEFormatError, TrustRootError
from mgattest.errors import InputError

if TYPE_CHECKING:
    from mgattest.attest._options import TrustedRootSource

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
MAX_TRUST_FILE_BYTES = 4 * 1024 * 1024
MAX_ITEMS = 64
MAX_DER_BYTES = 64 * 1024
_EMBEDDED = {"production": "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev",
             "staging": "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"}


def parse_time(value: JSONValue, *, where: str) -> int | None:
    """RFC 3339 timestamp → unix seconds (None for a missing value)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TrustRootError(f"{where}: timestamp must be an RFC 3339 string",
                             what="trusted root", where=where)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TrustRootError(f"{where}: bad timestamp {value!r}", what="trusted root",
                             where=where) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def format_time(seconds: int) -> str:
    """Unix seconds → RFC 3339 UTC with a ``Z`` suffix."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _der(value: Any, where: str) -> bytes:
    try:
        data = b64decode_strict(value, what=where, where=where, max_bytes=MAX_DER_BYTES)
    except DSSEFormatError as exc:
        raise TrustRootError(exc.message, what="trusted root", where=where) from None
    if not data:
        raise TrustRootError(f"{where} is empty", what="trusted root", where=where)
    return data


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, []) or []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise TrustRootError(f"{where}.{key} must be a list of at most {MAX_ITEMS}",
                             what="trusted root", where=where)
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TrustRootError(f"{where} must be an object", what="trusted root", where=where)
    return value


@dataclass(frozen=True)
class LogInstance:
    """A transparency or CT log: its key (DER SPKI), id and validity window."""

    base_url: str
    public_key_der: bytes
    key_details: str
    log_id: bytes
    valid_from: int | None
    valid_to: int | None = None
    hash_algorithm: str = "SHA2_256"
    checkpoint_key_id: bytes | None = None

    @property
    def log_id_hex(self) -> str:
        """The log id as lowercase hex."""
        return self.log_id.hex()

    def to_dict(self) -> LogInstanceJSON:
        """Proto-JSON form."""
        valid: ValidForJSON = {}
        if self.valid_from is not None:
            valid["start"] = format_time(self.valid_from)
        if self.valid_to is not None:
            valid["end"] = format_time(self.valid_to)
        out: LogInstanceJSON = {
            "baseUrl": self.base_url, "hashAlgorithm": self.hash_algorithm,
            "publicKey": {"rawBytes": b64(self.public_key_der), "keyDetails": self.key_details,
                          "validFor": valid},
            "logId": {"keyId": b64(self.log_id)}}
        if self.checkpoint_key_id is not None:
            out["checkpointKeyId"] = {"keyId": b64(self.checkpoint_key_id)}
        return out


@dataclass(frozen=True)
class Authority:
    """A certificate or timestamp authority: DER chain (leaf first) and validity."""

    uri: str
    chain_der: tuple[bytes, ...]
    valid_from: int | None
    valid_to: int | None = None
    subject: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> AuthorityJSON:
        """Proto-JSON form."""
        valid: ValidForJSON = {}
        if self.valid_from is not None:
            valid["start"] = format_time(self.valid_from)
        if self.valid_to is not None:
            valid["end"] = format_time(self.valid_to)
        return {"subject": dict(self.subject), "uri": self.uri,
                "certChain": {"certificates": [{"rawBytes": b64(c)} for c in self.chain_der]},
                "validFor": valid}


def _parse_log(data: Any, where: str) -> LogInstance:
    data = _obj(data, where)
    pk = _obj(data.get("publicKey"), f"{where}.publicKey")
    valid = pk.get("validFor") or {}
    log_id = _der(_obj(data.get("logId"), f"{where}.logId").get("keyId"), f"{where}.logId")
    cp = data.get("checkpointKeyId")
    return LogInstance(
        base_url=str(data.get("baseUrl", "")),
        public_key_der=_der(pk.get("rawBytes"), f"{where}.publicKey.rawBytes"),
        key_details=str(pk.get("keyDetails", "")),
        log_id=log_id,
        valid_from=parse_time(_obj(valid, where).get("start"), where=f"{where}.validFor"),
        valid_to=parse_time(valid.get("end"), where=f"{where}.validFor"),
        hash_algorithm=str(data.get("hashAlgorithm", "SHA2_256")),
        checkpoint_key_id=_der(_obj(cp, where).get("keyId"), f"{where}.checkpointKeyId")
        if cp else None)


def _parse_authority(data: Any, where: str) -> Authority:
    data = _obj(data, where)
    certs = _list(_obj(data.get("certChain"), f"{where}.certChain"), "certificates", where)
    if not certs:
        raise TrustRootError(f"{where}.certChain is empty", what="trusted root", where=where)
    chain = tuple(_der(_obj(c, where).get("rawBytes"), f"{where}.certChain[{i}]")
                  for i, c in enumerate(certs))
    valid = _obj(data.get("validFor") or {}, f"{where}.validFor")
    subject = data.get("subject") or {}
    return Authority(uri=str(data.get("uri", "")), chain_der=chain,
                     valid_from=parse_time(valid.get("start"), where=f"{where}.validFor"),
                     valid_to=parse_time(valid.get("end"), where=f"{where}.validFor"),
                     subject={k: str(v) for k, v in _obj(subject, where).items()})


@dataclass(frozen=True)
class TrustedRoot:
    """Everything a verifier trusts: logs, CT logs, CAs and TSAs."""

    tlogs: tuple[LogInstance, ...] = ()
    ctlogs: tuple[LogInstance, ...] = ()
    certificate_authorities: tuple[Authority, ...] = ()
    timestamp_authorities: tuple[Authority, ...] = ()
    source: str = field(default="trusted root", compare=False)

    def to_dict(self) -> TrustedRootJSON:
        """Proto-JSON ``trustedroot+json;version=0.1`` document."""
        return {"mediaType": TRUSTED_ROOT_MEDIA_TYPE,
                "tlogs": [t.to_dict() for t in self.tlogs],
                "certificateAuthorities": [c.to_dict() for c in self.certificate_authorities],
                "ctlogs": [c.to_dict() for c in self.ctlogs],
                "timestampAuthorities": [t.to_dict() for t in self.timestamp_authorities]}

    def merged(self, other: "TrustedRoot") -> "TrustedRoot":
        """A root trusting everything either root trusts (duplicate logs dropped)."""
        seen = {t.log_id for t in self.tlogs}
        return TrustedRoot(
            tlogs=self.tlogs + tuple(t for t in other.tlogs if t.log_id not in seen),
            ctlogs=self.ctlogs + other.ctlogs,
            certificate_authorities=self.certificate_authorities
            + other.certificate_authorities,
            timestamp_authorities=self.timestamp_authorities + other.timestamp_authorities,
            source=f"{self.source} + {other.source}")


def merge_roots(roots: "list[TrustedRoot]") -> TrustedRoot | None:
    """One root trusting everything ``roots`` trust, in order (None for no roots)."""
    if not roots:
        return None
    merged = roots[0]
    for root in roots[1:]:
        merged = merged.merged(root)
    return merged


def combined_trusted_root(files: "Sequence[str | Path]",
                          instance: "TrustedRoot | str | None" = None) -> TrustedRoot | None:
    """One root trusting every file in ``files`` (each a trusted root or a ClientTrustConfig)
    and, last, ``instance``: Sigstore's embedded ``"production"``/``"staging"`` root, or a
    TrustedRoot already in hand (one refreshed over TUF). None when nothing is given."""
    roots = [load_trusted_root(path) for path in files]
    if instance is not None:
        roots.append(instance if isinstance(instance, TrustedRoot)
                     else embedded_trusted_root(instance))
    return merge_roots(roots)


def parse_trusted_root(data: JSONValue, *, where: str = "trusted root") -> TrustedRoot:
    """Parse a decoded trusted root (media type v0.1)."""
    data = _obj(data, where)
    if data.get("mediaType") != TRUSTED_ROOT_MEDIA_TYPE:
        raise TrustRootError(f"{where}: media type {data.get('mediaType')!r} is not "
                             f"{TRUSTED_ROOT_MEDIA_TYPE}", what="trusted root", where=where)
    return TrustedRoot(
        tlogs=tuple(_parse_log(t, f"{where} tlogs[{i}]")
                    for i, t in enumerate(_list(data, "tlogs", where))),
        ctlogs=tuple(_parse_log(t, f"{where} ctlogs[{i}]")
                     for i, t in enumerate(_list(data, "ctlogs", where))),
        certificate_authorities=tuple(
            _parse_authority(c, f"{where} certificateAuthorities[{i}]")
            for i, c in enumerate(_list(data, "certificateAuthorities", where))),
        timestamp_authorities=tuple(
            _parse_authority(c, f"{where} timestampAuthorities[{i}]")
            for i, c in enumerate(_list(data, "timestampAuthorities", where))),
        source=where)


def _read_json(path: str | Path) -> Any:

    data = read_bounded(path, MAX_TRUST_FILE_BYTES, what="trusted root", error=TrustRootError)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise TrustRootError(f"{path} is not valid JSON: {exc}", what="trusted root",
                             where=str(path)) from None


def as_trusted_root(source: TrustedRootSource) -> TrustedRoot | None:
    """``source`` as a TrustedRoot: None stays None; a TrustedRoot is kept; a path is read
    (a trusted root or a ClientTrustConfig); parsed JSON of either is parsed."""
    if source is None or isinstance(source, TrustedRoot):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_trusted_root(os.fspath(source))
    if isinstance(source, dict):
        if source.get("mediaType") == CLIENT_TRUST_CONFIG_MEDIA_TYPE:
            return parse_client_trust_config(source).trusted_root
        return parse_trusted_root(source)
    raise InputError(f"unsupported trusted root {type(source).__name__}",
                     what="trusted root")


def load_trusted_root(path: str | Path) -> TrustedRoot:
    """Read a trusted root, or the trusted root inside a client trust config file."""
    data = _read_json(path)
    if isinstance(data, dict) and data.get("mediaType") == CLIENT_TRUST_CONFIG_MEDIA_TYPE:
        return parse_client_trust_config(data, where=str(path)).trusted_root
    return parse_trusted_root(data, where=str(path))


def write_trusted_root(root: TrustedRoot, path: str | Path) -> None:
    """Write a trusted root as indented JSON."""
    Path(path).write_text(json.dumps(root.to_dict(), indent=2) + "\n", encoding="utf-8")


def _embedded_dir(instance: str) -> Path:
    if instance not in _EMBEDDED:
        raise TrustRootError(f"unknown Sigstore instance {instance!r} "
                             "(production or staging)", what="instance")
    import sigstore  # noqa: PLC0415 - heavy (sigstore), only to read its bundled public-good roots

    return Path(sigstore.__file__).parent / "_store" / _EMBEDDED[instance]


def embedded_trusted_root(instance: str = "production") -> TrustedRoot:
    """The public-good trusted root shipped inside the installed sigstore package."""
    path = _embedded_dir(instance) / "trusted_root.json"
    return parse_trusted_root(_read_json(path), where=f"sigstore {instance} trusted root")


def embedded_signing_config(instance: str = "production") -> JSONObject:
    """The public-good signing config (services URLs) shipped inside sigstore."""
    config: dict[str, Any] = _read_json(_embedded_dir(instance) / "signing_config.v0.2.json")
    return config


@dataclass(frozen=True)
class ClientTrustConfig:
    """A trusted root and the signing config (CA, log, TSA, OIDC URLs) that go with it."""

    trusted_root: TrustedRoot
    signing_config: dict[str, Any]

    def to_dict(self) -> ClientTrustConfigJSON:
        """Proto-JSON ``clienttrustconfig.v0.1+json`` document."""
        return {"mediaType": CLIENT_TRUST_CONFIG_MEDIA_TYPE,
                "trustedRoot": self.trusted_root.to_dict(),
                "signingConfig": self.signing_config}


def parse_client_trust_config(data: JSONValue, *, where: str = "trust config") -> ClientTrustConfig:
    """Parse a decoded client trust config."""
    data = _obj(data, where)
    if data.get("mediaType") != CLIENT_TRUST_CONFIG_MEDIA_TYPE:
        raise TrustRootError(f"{where}: media type {data.get('mediaType')!r} is not "
                             f"{CLIENT_TRUST_CONFIG_MEDIA_TYPE}", what="trust config",
                             where=where)
    signing = _obj(data.get("signingConfig"), f"{where}.signingConfig")
    return ClientTrustConfig(parse_trusted_root(data.get("trustedRoot"),
                                                where=f"{where}.trustedRoot"), signing)


def load_client_trust_config(path: str | Path) -> ClientTrustConfig:
    """Read a client trust config file."""
    return parse_client_trust_config(_read_json(path), where=str(path))


def log_instance_for_key(public_key: PublicKeyTypes, *, base_url: str, valid_from: int) -> LogInstance:
    """Describe a log whose key we hold (e.g. the embedded local log) for a trusted root."""

    der = spki_der(public_key)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        details = "PKIX_ED25519"
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp384r1":
        details = "PKIX_ECDSA_P384_SHA_384"
    else:
        details = "PKIX_ECDSA_P256_SHA_256"
    return LogInstance(base_url=base_url, public_key_der=der, key_details=details,
                       log_id=hashlib.sha256(der).digest(), valid_from=valid_from)

