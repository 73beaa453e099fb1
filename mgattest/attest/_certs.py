"""Keyless signing certificates: chain, validity, SCT, Fulcio extensions, identity.

A keyless Sigstore bundle carries a short-lived certificate issued by a Fulcio-compatible
CA. :func:`verify_signing_certificate` decides whether that certificate may vouch for a
signature: it must chain to a certificate authority of the trusted root that was valid at
every verified signing time, be valid itself at each of those times, allow digital
signatures for code signing, and carry an embedded SCT signed by a trusted CT log. The
identity it binds (SAN + Fulcio OID extensions) is returned as a
:class:`~mgattest.attest._results.SignerInfo`; :class:`IdentityPolicy` then matches it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.certificate_transparency import LogEntryType
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError as X509PathError,
)

from mgattest.attest.errors import CertificateError, IdentityMismatchError, SCTError
from mgattest.attest._options import IdentityCheck, TrustedRootSource
from mgattest.attest._results import SignerInfo, VerifiedTime
from mgattest.errors import InputError

from mgattest._files import read_bounded
from mgattest.attest._trustroot import MAX_TRUST_FILE_BYTES, parse_time

__all__ = [
    "CertificateError",
    "SCTError",
    "IdentityMismatchError",
    "IdentityPolicy",
    "FULCIO_EXTENSIONS",
    "verify_signing_certificate",
    "parse_identity",
    "trusted_certificate_authorities",
    "trusted_ctlogs",
    "TrustedCA",
    "TrustedKey",
]

MAX_CERT_BYTES = 64 * 1024
MAX_CHAIN_LENGTH = 8
MAX_SIGNING_TIMES = 64

FULCIO_OID_PREFIX = "1.3.6.1.4.1.57264.1."
# Fulcio certificate extensions by arc under 1.3.6.1.4.1.57264.1 (docs/oid-info.md in
# sigstore/fulcio). Arcs 1-6 hold raw strings (deprecated); 8 and up hold DER UTF8String.
FULCIO_EXTENSIONS: dict[int, str] = {
    1: "issuer_v1",
    2: "github_workflow_trigger",
    3: "github_workflow_sha",
    4: "github_workflow_name",
    5: "github_workflow_repository",
    6: "github_workflow_ref",
    8: "issuer",
    9: "build_signer_uri",
    10: "build_signer_digest",
    11: "runner_environment",
    12: "source_repository_uri",
    13: "source_repository_digest",
    14: "source_repository_ref",
    15: "source_repository_identifier",
    16: "source_repository_owner_uri",
    17: "source_repository_owner_identifier",
    18: "build_config_uri",
    19: "build_config_digest",
    20: "build_trigger",
    21: "run_invocation_uri",
    22: "source_repository_visibility_at_signing",
}
_RAW_STRING_ARCS = frozenset({1, 2, 3, 4, 5, 6})
OTHERNAME_SAN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
_CT_PRECERT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")


# --------------------------------------------------------------------------- trust data


@dataclass(frozen=True)
class TrustedCA:
    """One ``certificateAuthorities`` entry: a chain (leaf-most first) and its window."""

    chain: tuple[x509.Certificate, ...]
    valid_from: datetime | None
    valid_to: datetime | None
    uri: str = ""

    def covers(self, when: datetime) -> bool:
        """True when ``when`` falls inside validFor (end inclusive)."""
        return _window_covers(self.valid_from, self.valid_to, when)


@dataclass(frozen=True)
class TrustedKey:
    """One ``ctlogs``/``tlogs`` entry: key id, public key (None if unusable), window."""

    key_id: bytes
    public_key: Any
    valid_from: datetime | None
    valid_to: datetime | None
    base_url: str = ""
    problem: str | None = None  # why the key could not be loaded

    def covers(self, when: datetime) -> bool:
        """True when ``when`` falls inside validFor (end inclusive)."""
        return _window_covers(self.valid_from, self.valid_to, when)


def _window_covers(start: datetime | None, end: datetime | None, when: datetime) -> bool:
    # A missing start means the entry is malformed: never valid (fail closed).
    if start is None or when < start:
        return False
    return end is None or when <= end


def _read_trusted_root(path: str | Path) -> bytes:
    """The trusted root file's bytes: bounded, regular files only (a FIFO never hangs)."""

    return read_bounded(path, MAX_TRUST_FILE_BYTES, what="trusted root")


def _trust_dict(trusted_root: Any) -> dict[str, Any]:
    """Return the trusted-root JSON object behind whatever the caller handed us.

    Accepts a parsed trusted root or ClientTrustConfig dict, a path to either, or an
    object from :mod:`mgattest.attest._trustroot` exposing its JSON.
    """
    if isinstance(trusted_root, (str, Path)):
        try:
            trusted_root = json.loads(_read_trusted_root(trusted_root))
        except (ValueError, RecursionError) as exc:
            raise InputError(f"cannot read trusted root {trusted_root}: {exc}",
                             what="trusted-root", where=str(trusted_root)) from None
    if not isinstance(trusted_root, dict):
        for attr in ("raw", "json", "data", "document"):
            value = getattr(trusted_root, attr, None)
            if isinstance(value, dict):
                trusted_root = value
                break
        else:
            for meth in ("to_dict", "as_dict", "to_json_dict"):
                fn = getattr(trusted_root, meth, None)
                if callable(fn):
                    trusted_root = fn()
                    break
    if not isinstance(trusted_root, dict):
        raise InputError("trusted root is not a JSON object", what="trusted-root")
    inner = trusted_root.get("trustedRoot")
    return inner if isinstance(inner, dict) else trusted_root


def _parse_time(value: Any, where: str) -> datetime | None:
    """A trusted root's RFC 3339 validity bound (parsed as trustroot does) as a datetime."""

    seconds = parse_time(value, where=where)
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"{where}: expected base64 string", what="trusted-root", where=where)
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise InputError(f"{where}: invalid base64", what="trusted-root", where=where) from None


def trusted_certificate_authorities(trusted_root: TrustedRootSource, *,
                                    section: str = "certificateAuthorities") -> list[TrustedCA]:
    """Parse the certificate authorities (or ``timestampAuthorities``) of a trusted root."""
    root = _trust_dict(trusted_root)
    out: list[TrustedCA] = []
    entries = root.get(section) or []
    if not isinstance(entries, list):
        raise InputError(f"trusted root {section} is not a list", what="trusted-root")
    for i, entry in enumerate(entries):
        where = f"trusted root {section}[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where} is not an object", what="trusted-root", where=where)
        certs_json = (entry.get("certChain") or {}).get("certificates") or []
        chain = []
        for j, cert in enumerate(certs_json):
            der = _b64((cert or {}).get("rawBytes"), f"{where}.certChain[{j}]")
            try:
                chain.append(x509.load_der_x509_certificate(der))
            except (ValueError, x509.InvalidVersion):
                raise InputError(f"{where}.certChain[{j}] is not a DER certificate",
                                 what="trusted-root", where=where) from None
        if not chain:
            continue
        valid = entry.get("validFor") or {}
        out.append(TrustedCA(tuple(chain), _parse_time(valid.get("start"), where),
                             _parse_time(valid.get("end"), where), entry.get("uri", "")))
    return out


def trusted_ctlogs(trusted_root: TrustedRootSource, *, section: str = "ctlogs") -> list[TrustedKey]:
    """Parse the CT log (or ``tlogs``) keys of a trusted root.

    A key that cannot be loaded is kept with ``public_key=None`` and a ``problem``, so a
    certificate whose SCT names it fails with that reason instead of a vague miss.
    """
    root = _trust_dict(trusted_root)
    out: list[TrustedKey] = []
    for i, entry in enumerate(root.get(section) or []):
        where = f"trusted root {section}[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where} is not an object", what="trusted-root", where=where)
        pk = entry.get("publicKey") or {}
        valid = pk.get("validFor") or {}
        problem = None
        public_key = None
        raw = None
        try:
            raw = _b64(pk.get("rawBytes"), f"{where}.publicKey")
            public_key = serialization.load_der_public_key(raw)
        except (InputError, ValueError, UnsupportedAlgorithm) as exc:
            problem = f"{where}: public key unusable ({exc})"
        key_id_b64 = (entry.get("logId") or {}).get("keyId")
        if key_id_b64 is not None:
            key_id = _b64(key_id_b64, f"{where}.logId")
        elif raw is not None:
            key_id = hashlib.sha256(raw).digest()
        else:
            key_id = b""
        out.append(TrustedKey(key_id, public_key, _parse_time(valid.get("start"), where),
                              _parse_time(valid.get("end"), where),
                              entry.get("baseUrl", ""), problem))
    return out


# --------------------------------------------------------------------------- parsing


def load_certificate(der: object, where: str) -> x509.Certificate:
    """Parse a DER certificate from a bundle, extensions included.

    ``cryptography`` parses extensions lazily: a malformed one would otherwise raise a
    bare ValueError at whichever later check first reads it. Reading them here turns
    that into a :class:`CertificateError` naming the certificate.
    """
    if not isinstance(der, (bytes, bytearray)) or not der:
        raise CertificateError(f"{where}: certificate is missing or empty",
                               what="certificate", where=where)
    if len(der) > MAX_CERT_BYTES:
        raise CertificateError(f"{where}: certificate larger than {MAX_CERT_BYTES} bytes",
                               what="certificate", where=where)
    try:
        cert = x509.load_der_x509_certificate(bytes(der))
        len(cert.extensions)  # parse every extension now (see above)
        return cert
    # InvalidVersion and DuplicateExtension (one bit flipped can repeat an extension's
    # OID; tests/adversarial found it) are no ValueErrors
    except (ValueError, x509.InvalidVersion, x509.DuplicateExtension) as exc:
        raise CertificateError(f"{where}: not a DER X.509 certificate ({exc})",
                               what="certificate", where=where) from None


def _is_self_signed_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not bc.ca or cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _der_utf8string(data: bytes, where: str) -> str:
    """Decode a DER UTF8String (tag 0x0C), bounded and strict."""
    if len(data) < 2 or data[0] != 0x0C:
        raise CertificateError(f"{where}: extension is not a DER UTF8String",
                               what="certificate-extension", where=where)
    length = data[1]
    offset = 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 3 or len(data) < 2 + count:
            raise CertificateError(f"{where}: bad DER length", what="certificate-extension",
                                   where=where)
        length = int.from_bytes(data[2:2 + count], "big")
        offset = 2 + count
    if offset + length != len(data):
        raise CertificateError(f"{where}: DER length does not match the extension",
                               what="certificate-extension", where=where)
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError:
        raise CertificateError(f"{where}: UTF8String is not UTF-8",
                               what="certificate-extension", where=where) from None


def _fulcio_extensions(cert: x509.Certificate) -> dict[str, str]:
    found: dict[str, str] = {}
    for ext in cert.extensions:
        dotted = ext.oid.dotted_string
        if not dotted.startswith(FULCIO_OID_PREFIX):
            continue
        tail = dotted[len(FULCIO_OID_PREFIX):]
        if not tail.isdigit() or int(tail) not in FULCIO_EXTENSIONS:
            continue
        arc = int(tail)
        raw = ext.value.value  # UnrecognizedExtension: the extnValue content
        where = f"certificate extension {dotted}"
        if arc in _RAW_STRING_ARCS:
            try:
                found[FULCIO_EXTENSIONS[arc]] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise CertificateError(f"{where} is not UTF-8",
                                       what="certificate-extension", where=where) from None
        else:
            found[FULCIO_EXTENSIONS[arc]] = _der_utf8string(raw, where)
    return found


def _san_identity(cert: x509.Certificate) -> str:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateError("signing certificate has no SubjectAlternativeName",
                               what="certificate-san", where="certificate") from None
    for name in san:
        if isinstance(name, (x509.RFC822Name, x509.UniformResourceIdentifier)):
            return name.value
        if isinstance(name, x509.OtherName) and name.type_id == OTHERNAME_SAN_OID:
            return _der_utf8string(name.value, "certificate SAN otherName")
    raise CertificateError("signing certificate SAN has no email, URI or Fulcio username",
                           what="certificate-san", where="certificate")


def parse_identity(cert: x509.Certificate) -> tuple[str, str | None, dict[str, str]]:
    """Return ``(san_identity, oidc_issuer, fulcio_extensions)`` of a certificate."""
    extensions = _fulcio_extensions(cert)
    issuer = extensions.get("issuer") or extensions.get("issuer_v1")
    return _san_identity(cert), issuer, extensions


# --------------------------------------------------------------------------- SCT


def _issuer_for_sct(path: list[x509.Certificate]) -> x509.Certificate:
    # path = [leaf, issuer, ...]. A dedicated precertificate signing cert (EKU
    # 1.3.6.1.4.1.11129.2.4.4) is skipped: the SCT binds the real CA's key (RFC 6962 §3.1).
    if len(path) < 2:
        raise SCTError("SCT check: no issuer certificate for the leaf",
                       what="sct", where="certificate")
    issuer = path[1]
    try:
        eku = issuer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if _CT_PRECERT_SIGNING_EKU in eku:
            if len(path) < 3:
                raise SCTError("SCT check: precertificate signer has no issuer",
                               what="sct", where="certificate")
            issuer = path[2]
    except x509.ExtensionNotFound:
        pass
    return issuer


def _sct_signed_data(sct: x509.certificate_transparency.SignedCertificateTimestamp, leaf: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """RFC 6962 §3.2 ``digitally-signed`` input for a precertificate SCT."""
    tbs = leaf.tbs_precertificate_bytes
    if len(tbs) >= 1 << 24:
        raise SCTError("SCT check: TBSCertificate too large", what="sct", where="certificate")
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()
    ts = sct.timestamp.replace(tzinfo=timezone.utc)
    millis = int(round(ts.timestamp() * 1000))
    ext = sct.extension_bytes
    return (struct.pack("!BBQH", 0, 0, millis, 1) + issuer_key_hash
            + len(tbs).to_bytes(3, "big") + tbs + struct.pack("!H", len(ext)) + ext)


def _verify_with_key(public_key: Any, signature: bytes, data: bytes) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature, data)
    else:
        raise InvalidSignature("unsupported CT log key type")


def verify_embedded_sct(leaf: x509.Certificate, path: list[x509.Certificate],
                        ctlogs: list[TrustedKey]) -> datetime:
    """Verify the leaf's embedded SCT(s) against trusted CT logs; return the SCT time.

    Every SCT from a trusted log must verify (a forged one is an error, not skipped), and
    at least one must come from a trusted log whose validFor covers the SCT timestamp.
    """
    try:
        scts = list(leaf.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps).value)
    except x509.ExtensionNotFound:
        raise SCTError("signing certificate carries no embedded SCT",
                       what="sct", where="certificate") from None
    except ValueError as exc:
        raise SCTError(f"signing certificate SCT list is malformed ({exc})",
                       what="sct", where="certificate") from None
    if not scts:
        raise SCTError("signing certificate SCT list is empty", what="sct", where="certificate")
    issuer = _issuer_for_sct(path)
    verified: datetime | None = None
    problems: list[str] = []
    for n, sct in enumerate(scts):
        where = f"certificate SCT[{n}] log {sct.log_id.hex()}"
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            raise SCTError(f"{where}: embedded SCT is not for a precertificate",
                           what="sct", where=where)
        if not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
            raise SCTError(f"{where}: SCT hash is not SHA-256", what="sct", where=where)
        logs = [k for k in ctlogs if k.key_id == sct.log_id]
        if not logs:
            problems.append(f"{where}: log not in the trusted root")
            continue
        data = _sct_signed_data(sct, leaf, issuer)
        when = sct.timestamp.replace(tzinfo=timezone.utc)
        ok = False
        for log in logs:
            if log.public_key is None:
                problems.append(log.problem or f"{where}: trusted CT key unusable")
                continue
            try:
                _verify_with_key(log.public_key, sct.signature, data)
            except InvalidSignature:
                raise SCTError(f"{where}: SCT signature does not verify with the trusted "
                               "CT log key (forged or for another certificate)",
                               what="sct", where=where) from None
            if not log.covers(when):
                problems.append(f"{where}: SCT time {when.isoformat()} outside the CT "
                                "log's validFor")
                continue
            ok = True
        if ok and verified is None:
            verified = when
    if verified is None:
        raise SCTError("no embedded SCT verified against a trusted CT log: "
                       + "; ".join(problems), what="sct", where="certificate")
    return verified


# --------------------------------------------------------------------------- chain


def _build_path(leaf: x509.Certificate, ca: TrustedCA, when: datetime) -> list[x509.Certificate]:
    # The trust anchor is the last certificate of the CA's chain; the rest are
    # intermediates. Bundle-supplied intermediates are never trusted (protobuf-specs
    # client policy): the trusted root alone must let us build the path.
    anchor = ca.chain[-1]
    intermediates = list(ca.chain[:-1])
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
    verifier = (PolicyBuilder().store(Store([anchor])).time(when)
                .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
                .build_client_verifier())
    return list(verifier.verify(leaf, intermediates).chain)


def _check_usage(leaf: x509.Certificate) -> None:
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateError("signing certificate has no KeyUsage extension",
                               what="certificate-key-usage", where="certificate") from None
    if not ku.digital_signature:
        raise CertificateError("signing certificate KeyUsage lacks digitalSignature",
                               what="certificate-key-usage", where="certificate")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateError("signing certificate has no ExtendedKeyUsage extension",
                               what="certificate-eku", where="certificate") from None
    if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise CertificateError("signing certificate ExtendedKeyUsage lacks codeSigning",
                               what="certificate-eku", where="certificate")
    try:
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise CertificateError("signing certificate is a CA certificate",
                                   what="certificate", where="certificate")
    except x509.ExtensionNotFound:
        pass


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _verified_moments(signing_times: Sequence[VerifiedTime]) -> list[datetime]:
    """The verified signing times as UTC datetimes; bare numbers are refused."""
    if not signing_times:
        raise CertificateError("no verified signing time (log integrated time or RFC 3161 "
                               "timestamp) to check the certificate against",
                               what="signing-time", where="certificate")
    if len(signing_times) > MAX_SIGNING_TIMES:
        raise CertificateError("too many signing times", what="signing-time",
                               where="certificate")
    times = []
    for t in signing_times:
        if not isinstance(t, VerifiedTime):
            raise CertificateError(f"signing time {t!r} is not a verified time",
                                   what="signing-time", where="certificate")
        times.append(_utc(t.seconds))
    return times


def verify_signing_certificate(leaf_der: bytes, chain_der: list[bytes],
                               trusted_root: TrustedRootSource,
                               signing_times: Sequence[VerifiedTime]) -> SignerInfo:
    """Verify a keyless signing certificate and return who it identifies.

    ``signing_times`` are :class:`VerifiedTime` values (a log's SET-backed
    integratedTime, RFC 3161 timestamps) — a bare int is refused, so a time the
    bundle merely claims cannot be passed by mistake; at least one is required, and the certificate
    must be valid at each. ``chain_der`` is the rest of the bundle's chain: parsed, and
    otherwise ignored (trust comes only from the trusted root).

    Raises :class:`CertificateError` / :class:`SCTError` (VerificationError) on failure.
    """
    leaf = load_certificate(leaf_der, "certificate")
    if len(chain_der) > MAX_CHAIN_LENGTH:
        raise CertificateError(f"certificate chain longer than {MAX_CHAIN_LENGTH}",
                               what="certificate-chain", where="certificate chain")
    for i, der in enumerate(chain_der):
        # Parsed (bounded, well-formed) but never trusted: the path is built from the
        # trusted root alone (_build_path), so intermediates and even a root shipped in a
        # v0.1/v0.2 bundle's x509CertificateChain — as slsa-github-generator's bundles do —
        # decide nothing, as in sigstore-go.
        load_certificate(der, f"certificate chain[{i + 1}]")
    if _is_self_signed_ca(leaf):
        raise CertificateError("signing certificate is a self-signed CA",
                               what="certificate", where="certificate")
    times = _verified_moments(signing_times)
    not_before = leaf.not_valid_before_utc
    not_after = leaf.not_valid_after_utc
    for when in times:
        if not (not_before <= when <= not_after):
            raise CertificateError(
                f"signing certificate was not valid at signing time {when.isoformat()} "
                f"(valid {not_before.isoformat()} to {not_after.isoformat()})",
                what="certificate-validity", where="certificate")

    cas = trusted_certificate_authorities(trusted_root)
    if not cas:
        raise CertificateError("trusted root lists no certificate authorities",
                               what="certificate-chain", where="trusted root")
    path: list[x509.Certificate] | None = None
    reasons: list[str] = []
    for idx, ca in enumerate(cas):
        label = f"certificateAuthorities[{idx}] ({ca.uri or ca.chain[-1].subject.rfc4514_string()})"
        if not all(ca.covers(w) for w in times):
            reasons.append(f"{label}: validFor does not cover the signing time")
            continue
        try:
            for when in times:
                path = _build_path(leaf, ca, when)
        except X509PathError as exc:
            path = None
            reasons.append(f"{label}: {exc}")
            continue
        except (ValueError, TypeError) as exc:  # unsupported names/keys in the leaf
            path = None
            reasons.append(f"{label}: {exc}")
            continue
        break
    if path is None:
        raise CertificateError("signing certificate does not chain to a trusted certificate "
                               "authority at the signing time: " + "; ".join(reasons),
                               what="certificate-chain", where="certificate")

    _check_usage(leaf)
    verify_embedded_sct(leaf, path, trusted_ctlogs(trusted_root))
    identity, issuer, extensions = parse_identity(leaf)
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return SignerInfo(
        kind="certificate",
        key_fingerprint=hashlib.sha256(spki).hexdigest(),
        identity=identity,
        issuer=issuer,
        extensions=extensions,
        certificate_pem=leaf.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        not_before=int(not_before.timestamp()),
        not_after=int(not_after.timestamp()),
    )


# --------------------------------------------------------------------------- identity

# Short names accepted by IdentityPolicy.extensions, besides FULCIO_EXTENSIONS values.
_EXTENSION_ALIASES = {
    "workflow": "build_config_uri",
    "repository": "source_repository_uri",
    "ref": "source_repository_ref",
    "sha": "source_repository_digest",
    "digest": "source_repository_digest",
    "trigger": "build_trigger",
}


@dataclass
class IdentityPolicy:
    """What a keyless signer must be: SAN identity (exact or anchored regex), OIDC issuer
    and Fulcio extension values.

    ``identity_regex`` is matched with :func:`re.fullmatch` — a pattern that matches only
    part of the SAN does not pass. A regex without ``issuer`` is refused: any OIDC
    provider could mint a matching identity.
    """

    identity: str | None = None
    identity_regex: str | None = None
    issuer: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.identity is None and self.identity_regex is None:
            raise InputError("an identity policy needs an identity or an identity regex",
                             what="identity-policy")
        if self.identity is not None and self.identity_regex is not None:
            raise InputError("give either an identity or an identity regex, not both",
                             what="identity-policy")
        if self.identity_regex is not None and not self.issuer:
            raise InputError("an identity regex without an issuer is refused: pin the OIDC "
                             "issuer too", what="identity-policy")
        self._compiled = None
        if self.identity_regex is not None:
            try:
                self._compiled = re.compile(self.identity_regex)
            except re.error as exc:
                raise InputError(f"invalid identity regex {self.identity_regex!r}: {exc}",
                                 what="identity-policy") from None
        normalized: dict[str, str] = {}
        known = set(FULCIO_EXTENSIONS.values())
        for key, value in (self.extensions or {}).items():
            name = _EXTENSION_ALIASES.get(key, key)
            if name not in known:
                raise InputError(f"unknown certificate extension {key!r} in identity policy "
                                 f"(known: {', '.join(sorted(known))})", what="identity-policy")
            normalized[name] = value
        self.extensions = normalized

    def check(self, signer: SignerInfo) -> None:
        """Raise :class:`IdentityMismatchError` unless ``signer`` satisfies this policy."""
        if signer.kind != "certificate" or signer.identity is None:
            raise IdentityMismatchError("an identity policy requires a keyless (certificate) "
                                        "signer", what="identity", where="signer")
        if self.identity is not None and signer.identity != self.identity:
            raise IdentityMismatchError(
                f"certificate identity {signer.identity!r} is not the expected "
                f"{self.identity!r}", what="identity", where="certificate SAN")
        if self._compiled is not None and not self._compiled.fullmatch(signer.identity):
            raise IdentityMismatchError(
                f"certificate identity {signer.identity!r} does not fully match "
                f"regex {self.identity_regex!r}", what="identity", where="certificate SAN")
        if self.issuer is not None and signer.issuer != self.issuer:
            raise IdentityMismatchError(
                f"certificate OIDC issuer {signer.issuer!r} is not the expected "
                f"{self.issuer!r}", what="issuer", where="certificate extension 1.3.6.1.4.1.57264.1.8")
        for name, expected in self.extensions.items():
            actual = signer.extensions.get(name)
            if actual != expected:
                raise IdentityMismatchError(
                    f"certificate extension {name} is {actual!r}, expected {expected!r}",
                    what="certificate-extension", where=f"certificate extension {name}")


def as_identity_check(identity: IdentityCheck | Mapping[str, Any]) -> IdentityCheck:
    """``identity`` as a check: an :class:`IdentityPolicy` built from its keyword arguments
    when it is a mapping (``{"identity": ..., "issuer": ...}``), else ``identity`` itself."""
    return IdentityPolicy(**identity) if isinstance(identity, Mapping) else identity
