"""A Fulcio-compatible certificate authority kept in a directory.

``init`` creates a root CA, an intermediate and a CT log key; ``CertificateAuthority.issue``
returns a short-lived code-signing certificate in Fulcio's profile with an embedded SCT
(RFC 6962 precertificate flow). Private keys are PEM files with mode 0600; they are never
overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mgattest._keys import check_rsa_parameters
from mgattest._files import open_regular, read_bounded
from mgattest.ca._ctlog import CTLogSigner, precert_tbs_without_poison, sct_list_extension
from mgattest.ca.errors import CAError
from mgattest.ca._identity import CertIdentity

ROOT_KEY = "root.key.pem"
ROOT_CERT = "root.pem"
INTERMEDIATE_KEY = "intermediate.key.pem"
INTERMEDIATE_CERT = "intermediate.pem"
CTLOG_KEY = "ctlog.key.pem"
CTLOG_PUB = "ctlog.pub.pem"
META = "ca.json"
ISSUED_LOG = "issued.jsonl"

CERT_LIFETIME = dt.timedelta(minutes=10)
# notBefore is backdated so a log's integratedTime (taken moments later, possibly on a
# host whose clock is slightly behind) still falls inside the certificate's validity.
CLOCK_SKEW = dt.timedelta(seconds=30)
FULCIO_ARC = "1.3.6.1.4.1.57264.1."
_RAW_ARCS = frozenset({1, 2, 3, 4, 5, 6})
MAX_CA_FILE_BYTES = 1 << 20  # keys, certificates and metadata in the CA directory


def _der_utf8(text: str) -> bytes:
    data = text.encode("utf-8")
    n = len(data)
    if n < 0x80:
        return bytes([0x0C, n]) + data
    if n < 0x100:
        return bytes([0x0C, 0x81, n]) + data
    return bytes([0x0C, 0x82]) + n.to_bytes(2, "big") + data


def _write_private(path: Path, key: Any) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _write_public(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _name(org: str, cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ski(public_key: Any) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _ca_cert(subject: x509.Name, issuer: x509.Name, public_key: Any, signing_key: Any,
             issuer_public: Any, path_length: int, not_before: dt.datetime,
             not_after: dt.datetime) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length),
                              critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(_ski(public_key), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public),
                              critical=False))
    return builder.sign(signing_key, hashes.SHA384())


def init(directory: str | os.PathLike[str], *, organization: str = "mgattest private CA",
         validity_days: int = 3650) -> Path:
    """Create a root CA, an intermediate and a CT log key in ``directory``.

    Refuses to touch a directory that already holds CA material.
    """
    root_dir = Path(directory)
    root_dir.mkdir(parents=True, exist_ok=True)
    for name in (ROOT_KEY, INTERMEDIATE_KEY, CTLOG_KEY, ROOT_CERT, INTERMEDIATE_CERT, META):
        if (root_dir / name).exists():
            raise CAError(f"{root_dir / name} already exists: refusing to overwrite CA material",
                          what="ca-init", where=str(root_dir / name))
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    start = now - dt.timedelta(minutes=5)
    end = now + dt.timedelta(days=validity_days)
    root_key = ec.generate_private_key(ec.SECP384R1())
    inter_key = ec.generate_private_key(ec.SECP384R1())
    ct_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(organization, "mgattest root")
    inter_name = _name(organization, "mgattest intermediate")
    root = _ca_cert(root_name, root_name, root_key.public_key(), root_key,
                    root_key.public_key(), 1, start, end)
    inter = _ca_cert(inter_name, root_name, inter_key.public_key(), root_key,
                     root_key.public_key(), 0, start, end)
    _write_private(root_dir / ROOT_KEY, root_key)
    _write_private(root_dir / INTERMEDIATE_KEY, inter_key)
    _write_private(root_dir / CTLOG_KEY, ct_key)
    _write_public(root_dir / ROOT_CERT, root.public_bytes(serialization.Encoding.PEM))
    _write_public(root_dir / INTERMEDIATE_CERT, inter.public_bytes(serialization.Encoding.PEM))
    _write_public(root_dir / CTLOG_PUB, ct_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    meta = {"created": start.isoformat().replace("+00:00", "Z"), "organization": organization}
    _write_public(root_dir / META, (json.dumps(meta, indent=2) + "\n").encode())
    return root_dir


def _load_key(path: Path) -> Any:
    data = read_bounded(path, MAX_CA_FILE_BYTES, what="CA key", error=CAError)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise CAError(f"CA key {path} is readable by group/others: chmod 600 it",
                      what="ca-load", where=str(path))
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CAError(f"CA key {path} is not an unencrypted PEM private key ({exc})",
                      what="ca-load", where=str(path)) from None


def _load_cert(path: Path) -> x509.Certificate:
    data = read_bounded(path, MAX_CA_FILE_BYTES, what="CA certificate", error=CAError)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CAError(f"{path} is not a PEM certificate ({exc})", what="ca-load",
                      where=str(path)) from None


@dataclass
class CertificateAuthority:
    """A loaded CA: root and intermediate certificates/keys plus the CT log signer."""

    root: x509.Certificate
    intermediate: x509.Certificate
    intermediate_key: Any
    ct_signer: CTLogSigner
    created: dt.datetime
    # Append-only record of every certificate issued (one JSON object per line), so an
    # operator can audit issuance; None keeps no record (in-memory use).
    issued_log: Path | None = None
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> "CertificateAuthority":
        """Load CA material written by :func:`init`."""
        d = Path(directory)
        if not (d / META).is_file():
            raise CAError(f"{d} is not a CA directory (no {META}); run `mgattest ca init`",
                          what="ca-load", where=str(d))
        root = _load_cert(d / ROOT_CERT)
        inter = _load_cert(d / INTERMEDIATE_CERT)
        inter_key = _load_key(d / INTERMEDIATE_KEY)
        ct_key = _load_key(d / CTLOG_KEY)
        if inter_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != inter.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise CAError(f"{d / INTERMEDIATE_KEY} does not match {d / INTERMEDIATE_CERT}",
                          what="ca-load", where=str(d))
        try:
            inter.verify_directly_issued_by(root)
        except (ValueError, TypeError, Exception) as exc:  # noqa: BLE001 - InvalidSignature has no base
            raise CAError(f"{d / INTERMEDIATE_CERT} is not issued by {d / ROOT_CERT} ({exc})",
                          what="ca-load", where=str(d)) from None
        try:
            meta = json.loads(read_bounded(d / META, MAX_CA_FILE_BYTES, what="CA metadata",
                                           error=CAError))
            created = dt.datetime.fromisoformat(meta["created"].replace("Z", "+00:00"))
        except (CAError, ValueError, KeyError, TypeError, AttributeError):
            created = root.not_valid_before_utc
        return cls(root, inter, inter_key, CTLogSigner(ct_key), created, d / ISSUED_LOG)

    @property
    def chain(self) -> list[x509.Certificate]:
        """Intermediate then root: the chain issued certificates hang from."""
        return [self.intermediate, self.root]

    def issue(self, public_key: PublicKeyTypes, identity: CertIdentity, *,
              now: dt.datetime | None = None) -> x509.Certificate:
        """Issue a 10-minute code-signing certificate for ``public_key`` with an embedded SCT."""
        if not isinstance(public_key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey,
                                       ed25519.Ed25519PublicKey)):
            raise CAError("unsupported public key type (use ECDSA, RSA or Ed25519)",
                          what="public-key")
        check_rsa_parameters(public_key, what="public-key", error=CAError)
        if isinstance(public_key, ec.EllipticCurvePublicKey) and not isinstance(
                public_key.curve, (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)):
            raise CAError("ECDSA keys must use P-256, P-384 or P-521", what="public-key")
        now = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
        not_before = now - CLOCK_SKEW
        not_after = not_before + CERT_LIFETIME
        if identity.san_kind == "email":
            san: x509.GeneralName = x509.RFC822Name(identity.san_value)
        elif identity.san_kind == "uri":
            san = x509.UniformResourceIdentifier(identity.san_value)
        else:
            san = x509.OtherName(x509.ObjectIdentifier(FULCIO_ARC + "7"),
                                 _der_utf8(identity.san_value))
        serial = x509.random_serial_number()
        builder = (x509.CertificateBuilder().subject_name(x509.Name([]))
                   .issuer_name(self.intermediate.subject).public_key(public_key)
                   .serial_number(serial).not_valid_before(not_before)
                   .not_valid_after(not_after)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False,
                                                crl_sign=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                                  critical=False)
                   .add_extension(_ski(public_key), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.intermediate.public_key()),  # type: ignore[arg-type]  # a CA key signs: never X25519/X448
                       critical=False)
                   # The subject is empty, so the SAN must be critical (RFC 5280 §4.2.1.6).
                   .add_extension(x509.SubjectAlternativeName([san]), critical=True))
        fulcio = {1: identity.issuer, 8: identity.issuer, **identity.extensions}
        for arc in sorted(fulcio):
            value = fulcio[arc]
            raw = value.encode("utf-8") if arc in _RAW_ARCS else _der_utf8(value)
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{FULCIO_ARC}{arc}"), raw),
                critical=False)
        precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(
            self.intermediate_key, hashes.SHA384())
        sct = self.ct_signer.sign_precertificate(precert, self.intermediate)
        cert = builder.add_extension(sct_list_extension([sct]), critical=False).sign(
            self.intermediate_key, hashes.SHA384())
        if cert.tbs_precertificate_bytes != precert_tbs_without_poison(
                precert.tbs_certificate_bytes):
            raise AssertionError("final certificate TBS differs from the precertificate")
        self._record(cert, identity)
        return cert

    def _record(self, cert: x509.Certificate, identity: CertIdentity) -> None:
        if self.issued_log is None:
            return
        line = json.dumps({
            "serial": format(cert.serial_number, "x"),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "san": identity.san_value, "san_kind": identity.san_kind,
            "issuer": identity.issuer,
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        }, sort_keys=True)
        with self._log_lock:
            fd = open_regular(self.issued_log, what="issued-certificate log", error=CAError,
                              flags=os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def ct_log_id(self) -> bytes:
        """The CT log id (SHA-256 of the CT key's DER SPKI)."""
        return hashlib.sha256(self.ct_signer.public_key_der).digest()
