"""model_signing's certificate method: signing certificates model_signing accepts (#10 item 9, part).

model_signing (1.1.1, installed) accepts a private-CA signing certificate marked CA:TRUE
when it may sign (digitalSignature or codeSigning); mgattest verifies it too, with a
warning in the verdict, and keeps refusing the CA itself as signer.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rw_peers import cli
from tests.test_modelsigning_interop import _make_ca

pytestmark = pytest.mark.interop
MODEL_SIGNING = Path(sys.executable).parent / "model_signing"


def _issue(paths: dict, tmp_path: Path, *, ca: bool, code_signing: bool) -> tuple[Path, Path]:
    """A signing certificate from the test CA, with the given CA flag and EKU."""
    issuer = x509.load_pem_x509_certificate(paths["ca"].read_bytes())
    issuer_key = serialization.load_pem_private_key(paths["ca_key"].read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ml-team")]))
               .issuer_name(issuer.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=7))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, ca, False, False,
                                            False), critical=True)
               .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("ml@example.com")]),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer.public_key()), critical=False))
    if code_signing:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    cert_path, key_path = tmp_path / "signer.pem", tmp_path / "signer.key"
    cert_path.write_bytes(cert.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _sign_and_verify(tmp_path: Path, paths: dict, cert: Path, key: Path) -> tuple[int, str, int]:
    from model_signing import signing

    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text('{"layers": 2}')
    (model / "weights.bin").write_bytes(b"w" * 4096)
    sig = tmp_path / "model.sig"
    signing.Config().use_certificate_signer(private_key=key, signing_certificate=cert,
                                            certificate_chain=[paths["ca"]]).sign(model, sig)
    theirs = subprocess.run([str(MODEL_SIGNING), "verify", "certificate", "--signature", str(sig),
                             "--certificate_chain", str(paths["ca"]), str(model)],
                            capture_output=True, text=True, timeout=120).returncode
    code, output = cli("verify", model, "--bundle", sig, "--certificate-chain", paths["ca"],
                       "--allow-unlogged")
    return code, output, theirs


@pytest.mark.parametrize("code_signing", [True, False])
def test_ca_true_signing_certificate_verifies_with_a_warning(tmp_path, code_signing):
    paths = _make_ca(tmp_path)
    cert, key = _issue(paths, tmp_path, ca=True, code_signing=code_signing)
    code, output, theirs = _sign_and_verify(tmp_path, paths, cert, key)
    assert theirs == 0
    assert code == 0 and "warning: signing certificate is marked CA:TRUE" in output, output


def test_the_ca_itself_as_signer_still_refused(tmp_path):
    paths = _make_ca(tmp_path)
    code, output, theirs = _sign_and_verify(tmp_path, paths, paths["ca"], paths["ca_key"])
    assert theirs != 0
    assert code == 1, output
