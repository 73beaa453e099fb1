"""A certificate whose version field is not v1–v3 is a typed error, not a crash.

``cryptography`` raises ``x509.InvalidVersion`` (not a ValueError) for it; the fuzz test
``tests/adversarial/test_adversarial_fuzz.py::test_certificate_bit_flips`` found it.
"""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mgattest.attest._certs import load_certificate
from mgattest.attest.errors import CertificateError

V3 = bytes([0xA0, 0x03, 0x02, 0x01, 0x02])  # [0] EXPLICIT INTEGER 2 (v3)


def _der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "v")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_an_unknown_certificate_version_is_a_certificate_error() -> None:
    der = _der()
    assert der.count(V3) == 1
    bad = der.replace(V3, V3[:-1] + b"\x03")
    with pytest.raises(CertificateError, match="not a DER X.509 certificate"):
        load_certificate(bad, "certificate")


def test_a_key_file_holding_such_a_certificate_is_a_key_file_error() -> None:
    from mgattest.attest.errors import KeyFileError
    from mgattest.attest._keys import public_key_from_pem

    bad = _der().replace(V3, V3[:-1] + b"\x03")
    with pytest.raises(KeyFileError, match="cannot parse public key"):
        public_key_from_pem(bad, where="k.der")
