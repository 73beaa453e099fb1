"""model_signing's certificate method: signing certificates model_signing accepts (#10 item 9, part).

model_signing (1.1.1, installed) accepts a private-CA signing certificate marked CA:TRUE
when it may sign (digitalSignature or codeSigning); mgattest verifies it too, with a
warning in the verdict, and keeps refusing the CA itself as signer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.helpers.peers import cli
from tests.helpers.bundles import ca_files_for_model_signing, issue_signing_cert

pytestmark = pytest.mark.interop
MODEL_SIGNING = Path(sys.executable).parent / "model_signing"


def _issue(paths: dict, tmp_path: Path, *, ca: bool, code_signing: bool) -> tuple[Path, Path]:
    """A signing certificate from the test CA, with the given CA flag and EKU, on disk."""
    issuer = x509.load_pem_x509_certificate(paths["ca"].read_bytes())
    issuer_key = serialization.load_pem_private_key(paths["ca_key"].read_bytes(), None)
    cert, key = issue_signing_cert(issuer, issuer_key, ca=ca, code_signing=code_signing)
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


def test_ca_true_signing_certificate_verifies_with_a_warning(tmp_path):
    paths = ca_files_for_model_signing(tmp_path)
    cert, key = _issue(paths, tmp_path, ca=True, code_signing=True)
    code, output, theirs = _sign_and_verify(tmp_path, paths, cert, key)
    assert theirs == 0
    assert code == 0 and "warning: signing certificate is marked CA:TRUE" in output, output


def test_no_code_signing_usage_is_a_deliberate_difference(tmp_path):
    """model_signing accepts a leaf that only has digitalSignature; we require the
    codeSigning extended key usage (a CA's TLS or e-mail certificate must not vouch for
    models): listed in docs/realworld.md as a deliberate difference."""
    paths = ca_files_for_model_signing(tmp_path)
    cert, key = _issue(paths, tmp_path, ca=True, code_signing=False)
    code, output, theirs = _sign_and_verify(tmp_path, paths, cert, key)
    assert theirs == 0
    assert code == 1 and "code signing" in output, output


def test_the_ca_itself_as_signer_still_refused(tmp_path):
    paths = ca_files_for_model_signing(tmp_path)
    code, output, theirs = _sign_and_verify(tmp_path, paths, paths["ca"], paths["ca_key"])
    assert theirs != 0
    assert code == 1, output
