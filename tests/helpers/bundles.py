"""Builders shared by the verified-facts tests and the adversarial suite: real
key-signed bundles in the embedded log, a private code-signing CA, policies."""

from __future__ import annotations

import copy
import datetime
import os
import textwrap
from pathlib import Path
from typing import Any

from mgattest.attest._keys import generate_signer, public_key_pem
from mgattest.attest._sign import sign_model

V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
V02 = "application/vnd.dev.sigstore.bundle+json;version=0.2"
V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
CONFORMANCE_ASSETS = "data/sigstore+sigstore-conformance/test/assets/bundle-verify"


def make_model(root: Path) -> Path:
    """A two-file model directory."""
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"hidden": 4}')
    (root / "sub" / "weights.bin").write_bytes(os.urandom(5000))
    return root


def signed_model(tmp_path: Path) -> tuple[Path, Any, dict[str, Any]]:
    """(model dir, signer, v0.3 key-signed bundle with SET + checkpointed proof)."""
    signer = generate_signer("ecdsa-p256")
    model = make_model(tmp_path / "model")
    return model, signer, sign_model(model, signer).bundle


def entry_of(bundle: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The bundle's tlog entry (mutable)."""
    return bundle["verificationMaterial"]["tlogEntries"][index]


def strip_set(bundle: dict[str, Any], *, integrated_time: int | None = None,
              log_index: int | None = None) -> dict[str, Any]:
    """A copy without the SET, optionally claiming another integratedTime/logIndex:
    the inclusion proof and checkpoint still verify, so only the claims change."""
    out = copy.deepcopy(bundle)
    entry = entry_of(out)
    entry.pop("inclusionPromise", None)
    if integrated_time is not None:
        entry["integratedTime"] = str(integrated_time)
    if log_index is not None:
        entry["logIndex"] = str(log_index)
    return out


def iso(seconds: int) -> str:
    """RFC 3339 UTC for policy YAML."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def key_policy(signer: Any, *, key_extra: str = "", rule_extra: str = "") -> Any:
    """A compiled policy trusting *signer*'s key (with optional window), scan off."""
    from mgattest.policy._loader import policy_from_bytes

    pem = textwrap.indent(public_key_pem(signer).decode().strip(), " " * 8)
    extra = textwrap.indent(textwrap.dedent(key_extra).strip(), " " * 6) if key_extra else ""
    rule = textwrap.indent(textwrap.dedent(rule_extra).strip(), " " * 4) if rule_extra else ""
    text = f"""\
apiVersion: mgattest/v1
kind: Policy
metadata: {{name: verified-facts}}
trust:
  keys:
    - name: release
      pem: |
{pem}
{extra}
signers:
  release: {{key: release}}
rules:
  - id: model
    match: ["**"]
    signedBy: {{anyOf: [release]}}
    content: {{scan: "off", pickle: restricted}}
{rule}
"""
    return policy_from_bytes(text.encode(), source="verified-facts.yaml", base_dir=".")


def code_signing_ca(tmp_path: Path, *, eku: bool = True, san: str = "ml@example.com"
                    ) -> dict[str, Any]:
    """A private CA and a leaf (digitalSignature; codeSigning EKU unless ``eku=False``).
    Returns PEM bytes for ``ca`` and ``leaf``, the leaf's signer, and both private keys
    (``ca_key``, ``leaf_key``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from mgattest.attest._keys import load_signer

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test model CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ml-team")]))
               .issuer_name(ca_name).public_key(leaf_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=7))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                            False, False), critical=True)
               .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(san)]),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                   ski), critical=False))
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    leaf = builder.sign(ca_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    key_path = tmp_path / f"leaf-{os.getpid()}-{id(leaf)}.key"
    key_path.write_bytes(private_pem(leaf_key))
    return {"ca": ca.public_bytes(pem), "leaf": leaf.public_bytes(pem),
            "signer": load_signer(key_path), "ca_key": ca_key, "leaf_key": leaf_key}


def private_pem(key: Any) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def issue_signing_cert(issuer, issuer_key, *, ca: bool = False, code_signing: bool = True):
    """A signing certificate (SAN ml@example.com) from ``issuer``: (certificate, key).
    ``ca`` marks it CA:TRUE (with keyCertSign); ``code_signing`` adds the codeSigning EKU."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
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
    return builder.sign(issuer_key, hashes.SHA256()), key


def ca_files_for_model_signing(tmp_path):
    """A private code-signing CA and leaf, written as model_signing's CLI takes them."""
    ca = code_signing_ca(tmp_path)
    paths = {"ca": tmp_path / "ca.pem", "leaf": tmp_path / "leaf.pem",
             "key": tmp_path / "leaf.key", "ca_key": tmp_path / "ca.key"}
    paths["ca"].write_bytes(ca["ca"])
    paths["leaf"].write_bytes(ca["leaf"])
    paths["key"].write_bytes(private_pem(ca["leaf_key"]))
    paths["ca_key"].write_bytes(private_pem(ca["ca_key"]))
    return paths
