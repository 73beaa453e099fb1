"""Rekor signed entry timestamps (SET, the bundle's ``inclusionPromise``).

The log signs the RFC 8785 (JCS) serialisation of
``{"body": base64(body), "integratedTime": int, "logID": hex, "logIndex": int}``.
"""

from __future__ import annotations

import base64
import re

import rfc8785

from mgattest.errors import VerificationError
from mgattest.tlog.errors import SETError
from mgattest.tlog._keys import LogSigner, LogVerifier

_JCS_SAFE_INT = 1 << 53
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def set_payload(body: bytes, integrated_time: int, log_id_hex: str, log_index: int) -> bytes:
    """The canonical bytes a SET signs."""
    for label, value in (("integrated time", integrated_time), ("log index", log_index)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SETError(f"SET {label} must be a non-negative integer", what="SET")
    if not isinstance(log_id_hex, str) or len(log_id_hex) != 64:
        raise SETError("SET log ID must be 64 hex characters", what="SET")
    b64 = base64.b64encode(body)
    if integrated_time < _JCS_SAFE_INT and log_index < _JCS_SAFE_INT \
            and _HEX.fullmatch(log_id_hex):
        # Fast path, byte-identical to RFC 8785 for these value types: keys already in
        # order, base64/hex need no escaping, integers below 2**53 print plainly.
        return b'{"body":"%s","integratedTime":%d,"logID":"%s","logIndex":%d}' % (
            b64, integrated_time, log_id_hex.encode("ascii"), log_index)
    try:
        return rfc8785.dumps({
            "body": b64.decode("ascii"),
            "integratedTime": integrated_time,
            "logID": log_id_hex,
            "logIndex": log_index,
        })
    except rfc8785.CanonicalizationError as exc:
        raise SETError(f"cannot build the SET payload: {exc}", what="SET") from None


def sign_set(signer: LogSigner, body: bytes, integrated_time: int, log_id_hex: str,
             log_index: int) -> bytes:
    """Sign a SET for one entry with the log key."""
    return signer.sign(set_payload(body, integrated_time, log_id_hex, log_index))


def verify_set(verifier: LogVerifier, set_bytes: bytes, body: bytes, integrated_time: int,
               log_id_hex: str, log_index: int) -> None:
    """Raise :class:`SETError` unless ``set_bytes`` is the log's SET for this entry."""
    payload = set_payload(body, integrated_time, log_id_hex, log_index)
    try:
        verifier.verify(set_bytes, payload)
    except VerificationError:
        raise SETError(
            f"signed entry timestamp for log index {log_index} does not verify with log key "
            f"{log_id_hex}", what="SET", where=f"log index {log_index}") from None
