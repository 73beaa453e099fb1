"""mgattest.attest: statements, DSSE, key signing, Sigstore bundles and verification.

The public surface is re-exported lazily (PEP 562), so importing a submodule such as
``mgattest.attest.results`` stays cheap and import cycles cannot form.
"""

from __future__ import annotations

from typing import Any

from mgattest._lazy import LazyExports

_EXPORTS = LazyExports("mgattest.attest", {
    "verify_bundle": "mgattest.attest.verify",
    "verify_model": "mgattest.attest.verify",
    "sign_model": "mgattest.attest.sign",
    "sign_statement": "mgattest.attest.sign",
    "LogTarget": "mgattest.attest.sign",
    "SignOptions": "mgattest.attest.sign",
    "DigestOptions": "mgattest.attest.sign",
    "ProvenanceOptions": "mgattest.attest.sign",
    "SignResult": "mgattest.attest.sign",
    "BundleSigner": "mgattest.attest.sign",
    "KeySigner": "mgattest.attest.sign",
    "KeylessSigner": "mgattest.attest.sign",
    "hash_for_signing": "mgattest.attest.sign",
    "sign_digests": "mgattest.attest.sign",
    "make_statement": "mgattest.attest.statement",
    "serialize_statement": "mgattest.attest.statement",
    "build_provenance": "mgattest.attest.slsa",
    "ProvenanceRecorder": "mgattest.attest.recorder",
    "Envelope": "mgattest.attest.dsse",
    "pae": "mgattest.attest.dsse",
    "Signer": "mgattest.attest.signers",
    "Verifier": "mgattest.attest.signers",
    "generate_signer": "mgattest.attest.keys",
    "load_signer": "mgattest.attest.keys",
    "load_verifier": "mgattest.attest.keys",
    "load_bundle": "mgattest.attest.bundle",
    "TrustedRoot": "mgattest.attest.trustroot",
    "load_trusted_root": "mgattest.attest.trustroot",
    "embedded_trusted_root": "mgattest.attest.trustroot",
    "hash_model": "mgattest.attest.digests",
    "check_model": "mgattest.attest.digests",
    "raise_for_model_check": "mgattest.attest.digests",
    "ModelDigests": "mgattest.attest.digests",
    "SubjectMismatchError": "mgattest.attest.errors",
    "to_model_signing_statement": "mgattest.attest.modelsigning",
    "expectations_from_model_signing": "mgattest.attest.modelsigning",
    "IdentityPolicy": "mgattest.attest.certs",
    "sign_keyless": "mgattest.attest.keyless",
    "VerifiedAttestation": "mgattest.attest.results",
    "ModelCheck": "mgattest.attest.results",
    "SignerInfo": "mgattest.attest.results",
    "LogProof": "mgattest.attest.results",
    "VerifiedTime": "mgattest.attest.results",
})

__all__ = _EXPORTS.names()


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return __all__
