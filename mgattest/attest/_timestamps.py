"""RFC 3161 signed timestamps in Sigstore bundles.

A bundle's ``verificationMaterial.timestampVerificationData.rfc3161Timestamps[]`` holds
TimeStampResponses over the bundle's signature bytes. Each one must verify against a
timestamp authority of the trusted root (chain valid at the timestamp's genTime, the
TSA's ``validFor`` covering genTime, end inclusive); the verified genTimes become
signing times for :func:`mgattest.attest._certs.verify_signing_certificate`.

CMS/PKCS#7 parsing and signature checks use ``rfc3161-client`` (a dependency of
sigstore-python); trust decisions — which TSA, which window, how many — are made here.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timezone
from typing import TYPE_CHECKING, Any

from mgattest._jsonutil import JSONObject, JSONValue
from mgattest.attest._certs import TrustedCA, trusted_certificate_authorities
from mgattest.attest.errors import TimestampError
from mgattest.attest._options import TrustedRootSource
from mgattest.attest._results import VerifiedTime

if TYPE_CHECKING:  # rfc3161-client loads only when a bundle carries RFC 3161 timestamps
    from rfc3161_client import TimeStampResponse

__all__ = ["verify_rfc3161_timestamps", "parse_rfc3161_timestamps",
           "MAX_TIMESTAMPS"]

MAX_TIMESTAMPS = 32
MAX_TIMESTAMP_BYTES = 64 * 1024


def _decode(entry: Any, index: int) -> bytes:
    where = f"rfc3161Timestamps[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("signedTimestamp"), str):
        raise TimestampError(f"{where}: missing signedTimestamp", what="timestamp", where=where)
    # Go's protojson (which wrote many real bundles) tolerates line breaks in base64.
    text = entry["signedTimestamp"].replace("\r", "").replace("\n", "")
    if len(text) > MAX_TIMESTAMP_BYTES * 4 // 3 + 4:
        raise TimestampError(f"{where}: larger than {MAX_TIMESTAMP_BYTES} bytes",
                             what="timestamp", where=where)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TimestampError(f"{where}: invalid base64", what="timestamp", where=where) from None


def _verify_with_tsa(response: Any, signature: bytes, tsa: TrustedCA) -> str | None:
    """Return None when ``tsa`` vouches for ``response``, else the reason it does not."""
    from rfc3161_client import VerificationError as RfcError  # noqa: PLC0415 - rfc3161-client loads only when a bundle carries RFC 3161 timestamps
    from rfc3161_client import VerifierBuilder  # noqa: PLC0415 - rfc3161-client loads only when a bundle carries RFC 3161 timestamps

    chain = list(tsa.chain)
    builder = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
    for cert in chain[1:-1]:
        builder = builder.add_intermediate_certificate(cert)
    try:
        builder.build().verify_message(response, signature)
    except (RfcError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    gen_time = response.tst_info.gen_time
    if gen_time.tzinfo is None:
        gen_time = gen_time.replace(tzinfo=timezone.utc)
    if not tsa.covers(gen_time):
        return (f"genTime {gen_time.isoformat()} outside the authority's validFor "
                f"({tsa.valid_from} to {tsa.valid_to or 'open'})")
    return None


def parse_rfc3161_timestamps(bundle_timestamps: JSONValue) -> list[TimeStampResponse]:
    """Decode every RFC 3161 timestamp of a bundle (no trust decision yet).

    A timestamp that does not decode is a rejection, never skipped: it is evidence
    the bundle carries, and a verifier that ignores what it cannot read can be fed
    anything. Also refuses duplicates and more than :data:`MAX_TIMESTAMPS` entries.
    """
    from rfc3161_client import decode_timestamp_response  # noqa: PLC0415 - rfc3161-client loads only when a bundle carries RFC 3161 timestamps

    if not bundle_timestamps:
        return []
    if not isinstance(bundle_timestamps, list):
        raise TimestampError("rfc3161Timestamps is not a list", what="timestamp")
    if len(bundle_timestamps) > MAX_TIMESTAMPS:
        raise TimestampError(f"too many RFC 3161 timestamps: {len(bundle_timestamps)} > "
                             f"{MAX_TIMESTAMPS}", what="timestamp")
    raw = [_decode(entry, i) for i, entry in enumerate(bundle_timestamps)]
    if len(set(raw)) != len(raw):
        raise TimestampError("duplicate RFC 3161 timestamp in bundle", what="timestamp")
    responses = []
    for index, der in enumerate(raw):
        where = f"rfc3161Timestamps[{index}]"
        try:
            responses.append(decode_timestamp_response(der))
        except (ValueError, TypeError) as exc:
            raise TimestampError(f"{where}: not a TimeStampResponse ({exc})",
                                 what="timestamp", where=where) from None
    return responses


def verify_rfc3161_timestamps(bundle_timestamps: list[JSONObject], signature: bytes,
                              trusted_root: TrustedRootSource, *, unverified: list[str] | None = None
                              ) -> list[VerifiedTime]:
    """Verify the RFC 3161 timestamps of a bundle; return the verified genTimes.

    Strict by default: a timestamp that no trusted authority vouches for raises
    :class:`TimestampError`. With an ``unverified`` list, the threshold is the one
    sigstore-go (``WithSignedTimestamps(1)``) and sigstore-python apply: at least one
    timestamp must verify; each other one that does not is described in ``unverified``
    (reported, never used). Always refused: undecodable timestamps, duplicates, more than
    :data:`MAX_TIMESTAMPS`, or timestamps without any authority in the root.
    """
    responses = parse_rfc3161_timestamps(bundle_timestamps)
    if not responses:
        return []
    authorities = trusted_certificate_authorities(trusted_root, section="timestampAuthorities")
    if not authorities:
        raise TimestampError("bundle carries RFC 3161 timestamps but the trusted root lists "
                             "no timestamp authorities", what="timestamp",
                             where="trusted root timestampAuthorities")
    times: list[VerifiedTime] = []
    failures: list[TimestampError] = []
    for index, response in enumerate(responses):
        where = f"rfc3161Timestamps[{index}]"
        reasons = []
        for n, tsa in enumerate(authorities):
            problem = _verify_with_tsa(response, signature, tsa)
            if problem is None:
                break
            reasons.append(f"timestampAuthorities[{n}] ({tsa.uri or 'no uri'}): {problem}")
        else:
            failure = TimestampError(f"{where}: no trusted timestamp authority verifies it: "
                                     + "; ".join(reasons), what="timestamp", where=where)
            if unverified is None:
                raise failure
            failures.append(failure)
            continue
        gen_time = response.tst_info.gen_time
        if gen_time.tzinfo is None:
            gen_time = gen_time.replace(tzinfo=timezone.utc)
        times.append(VerifiedTime(int(gen_time.timestamp()), "rfc3161", where))
    if failures and not times:
        raise failures[0]
    if unverified is not None:
        unverified.extend(f"{f.message} (not used)" for f in failures)
    return times
