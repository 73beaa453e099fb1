"""A CT log signer: RFC 6962 Signed Certificate Timestamps for precertificates.

The private CA does not run a full CT log; like Fulcio with an embedded-SCT CT log, it
holds a CT key (listed under ``ctlogs`` in the trusted root) and returns a v1 SCT over
each precertificate, which the CA embeds in the final certificate.
"""

from __future__ import annotations

import hashlib
import struct
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
# DER of the precertificate poison OID 1.3.6.1.4.1.11129.2.4.3 (RFC 6962 §3.1).
_POISON_OID_DER = bytes.fromhex("060a2b06010401d679020403")
_HASH_SHA256 = 4  # RFC 5246 HashAlgorithm
_SIG_ECDSA = 3  # RFC 5246 SignatureAlgorithm


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


class CTLogSigner:
    """Signs SCTs with an ECDSA P-256 key; ``log_id`` = SHA-256 of the key's DER SPKI."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise TypeError("CT log key must be an ECDSA key")
        self._key = private_key
        self.public_key_der = _spki(private_key.public_key())
        self.log_id = hashlib.sha256(self.public_key_der).digest()

    def sign_precertificate(self, precert: x509.Certificate, issuer: x509.Certificate,
                            timestamp_ms: int | None = None) -> bytes:
        """Return one TLS-encoded SCT (RFC 6962 §3.2) for ``precert`` issued by ``issuer``."""
        millis = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        tbs = precert_tbs_without_poison(precert.tbs_certificate_bytes)
        issuer_key_hash = hashlib.sha256(_spki(issuer.public_key())).digest()
        extensions = b""
        signed = (struct.pack("!BBQH", 0, 0, millis, 1) + issuer_key_hash
                  + len(tbs).to_bytes(3, "big") + tbs
                  + struct.pack("!H", len(extensions)) + extensions)
        signature = self._key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return (struct.pack("!B", 0) + self.log_id + struct.pack("!Q", millis)
                + struct.pack("!H", len(extensions)) + extensions
                + struct.pack("!BBH", _HASH_SHA256, _SIG_ECDSA, len(signature)) + signature)


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """Return (tag, content_start, content_end) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or pos + 2 + count > len(data):
        raise ValueError("bad DER length")
    length = int.from_bytes(data[pos + 2:pos + 2 + count], "big")
    start = pos + 2 + count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def _children(data: bytes, start: int, end: int) -> list[bytes]:
    out = []
    pos = start
    while pos < end:
        _, _, stop = _read_tlv(data, pos)
        out.append(data[pos:stop])
        pos = stop
    return out


def precert_tbs_without_poison(tbs: bytes) -> bytes:
    """The precertificate's TBSCertificate with the poison extension removed (RFC 6962 §3.2)."""
    tag, start, end = _read_tlv(tbs, 0)
    if tag != 0x30 or end != len(tbs):
        raise ValueError("TBSCertificate is not one DER SEQUENCE")
    fields = _children(tbs, start, end)
    if not fields or fields[-1][0] != 0xA3:
        raise ValueError("precertificate has no extensions")
    _, ext_start, ext_end = _read_tlv(fields[-1], 0)
    seq = fields[-1][ext_start:ext_end]
    _, seq_start, seq_end = _read_tlv(seq, 0)
    extensions = _children(seq, seq_start, seq_end)
    kept = []
    for ext in extensions:
        _, e_start, _ = _read_tlv(ext, 0)
        if not ext[e_start:].startswith(_POISON_OID_DER):
            kept.append(ext)
    if len(kept) != len(extensions) - 1:
        raise ValueError("precertificate must carry exactly one poison extension")
    fields[-1] = _der(0xA3, _der(0x30, b"".join(kept)))
    return _der(0x30, b"".join(fields))


def _der_octet_string(content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        header = bytes([0x04, n])
    elif n < 0x100:
        header = bytes([0x04, 0x81, n])
    else:
        header = bytes([0x04, 0x82]) + n.to_bytes(2, "big")
    return header + content


def sct_list_extension(scts: list[bytes]) -> x509.UnrecognizedExtension:
    """The X.509 SCT-list extension (OID 1.3.6.1.4.1.11129.2.4.2) embedding ``scts``."""
    body = b"".join(struct.pack("!H", len(s)) + s for s in scts)
    tls_list = struct.pack("!H", len(body)) + body
    return x509.UnrecognizedExtension(SCT_LIST_OID, _der_octet_string(tls_list))
