"""Which logs are trusted: keys, IDs, validity windows and origins.

:func:`trusted_logs_from_root` reads the ``tlogs`` of a Sigstore trusted root
(``application/vnd.dev.sigstore.trustedroot+json;version=0.1``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone

from mgattest.errors import InputError
from mgattest.tlog.errors import TrustRootError
from mgattest.tlog._keys import LogVerifier, log_id_for

MAX_TLOGS = 256


@dataclass(frozen=True)
class TrustedLog:
    """One transparency log a verifier trusts.

    ``log_id`` is the ID entries name (``logId.keyId``): SHA-256 of the DER SPKI for
    Rekor v1 and mgattest logs, the C2SP key ID for Rekor v2 logs.
    """

    log_id: bytes
    verifier: LogVerifier
    base_url: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    origin: str | None = None

    def valid_at(self, when: datetime) -> bool:
        """Whether the log key was valid at ``when`` (closed interval)."""
        if self.valid_from is not None and when < self.valid_from:
            return False
        if self.valid_to is not None and when > self.valid_to:
            return False
        return True

    @classmethod
    def for_verifier(cls, verifier: LogVerifier, *, origin: str | None = None,
                     base_url: str | None = None) -> "TrustedLog":
        """Trust one log key (no validity window), e.g. a private mgattest log.

        The log ID is derived as :func:`~mgattest.tlog._keys.log_id_for` does; an
        Ed25519 log needs its ``origin`` for that (its ID is the C2SP key ID).
        """
        log_id = log_id_for(verifier.public_key, origin) if origin else verifier.log_id
        return cls(log_id, verifier, base_url, None, None, origin)


def parse_rfc3339(value: object, field: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or offset) as an aware datetime."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise TrustRootError(f"{field} must be an RFC 3339 timestamp", where=field)
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise TrustRootError(f"{field} is not an RFC 3339 timestamp: {value!r}",
                             where=field) from None
    if parsed.tzinfo is None:
        raise TrustRootError(f"{field} has no time zone: {value!r}", where=field)
    return parsed.astimezone(timezone.utc)


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise TrustRootError(f"{field} must be a base64 string", where=field)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TrustRootError(f"{field} is not base64", where=field) from None


def trusted_log_from_instance(tlog: object, where: str) -> TrustedLog:
    """One ``TransparencyLogInstance`` of a trusted root."""
    if not isinstance(tlog, dict):
        raise TrustRootError(f"{where} must be an object", where=where)
    pk = tlog.get("publicKey")
    if not isinstance(pk, dict):
        raise TrustRootError(f"{where}.publicKey is missing", where=where)
    der = _b64(pk.get("rawBytes"), f"{where}.publicKey.rawBytes")
    try:
        verifier = LogVerifier.from_der(der)
    except InputError as exc:
        raise TrustRootError(f"{where}.publicKey: {exc.message}", where=where) from None
    valid_for = pk.get("validFor")
    if not isinstance(valid_for, dict) or "start" not in valid_for:
        raise TrustRootError(
            f"{where}.publicKey.validFor.start is missing: a log key without a start of "
            "validity is not trusted", what="trusted root", where=where)
    valid_from = parse_rfc3339(valid_for["start"], f"{where}.publicKey.validFor.start")
    valid_to = None
    if valid_for.get("end") is not None:
        valid_to = parse_rfc3339(valid_for["end"], f"{where}.publicKey.validFor.end")
        if valid_to < valid_from:
            raise TrustRootError(f"{where}.publicKey.validFor ends before it starts",
                                 where=where)
    log_id_obj = tlog.get("logId")
    if not isinstance(log_id_obj, dict):
        raise TrustRootError(f"{where}.logId is missing", where=where)
    log_id = _b64(log_id_obj.get("keyId"), f"{where}.logId.keyId")
    if len(log_id) != 32:
        raise TrustRootError(f"{where}.logId.keyId is {len(log_id)} bytes, expected 32",
                             where=where)
    base_url = tlog.get("baseUrl")
    if base_url is not None and not isinstance(base_url, str):
        raise TrustRootError(f"{where}.baseUrl must be a string", where=where)
    origin = tlog.get("origin")  # not in protobuf-specs; honoured if present
    if origin is not None and not isinstance(origin, str):
        raise TrustRootError(f"{where}.origin must be a string", where=where)
    return TrustedLog(log_id, verifier, base_url or None, valid_from, valid_to, origin)


def trusted_logs_from_root(trusted_root: object) -> list[TrustedLog]:
    """The transparency logs (``tlogs``) of a Sigstore trusted root, as parsed JSON (any
    JSON value: anything but an object is refused here)."""
    if not isinstance(trusted_root, dict):
        raise TrustRootError("trusted root must be a JSON object")
    tlogs = trusted_root.get("tlogs")
    if not isinstance(tlogs, list) or not tlogs:
        raise TrustRootError("trusted root lists no transparency logs (tlogs)",
                             where="tlogs")
    if len(tlogs) > MAX_TLOGS:
        raise TrustRootError(f"trusted root lists more than {MAX_TLOGS} tlogs", where="tlogs")
    return [trusted_log_from_instance(t, f"tlogs[{i}]") for i, t in enumerate(tlogs)]
