"""mgattest.attest: statements, DSSE, key and keyless signing, Sigstore bundles, verification.

Entry points (re-exported lazily, PEP 562, so importing ``mgattest.attest`` or
``mgattest.attest.errors`` stays cheap and import cycles cannot form):

- signing: :func:`sign_model` (hash + statement + signature + log entry + bundle) with
  :class:`SignOptions` (:class:`DigestOptions`, :class:`ProvenanceOptions`) and a
  :class:`BundleSigner` — :class:`KeySigner` (logged to a :class:`LogTarget`) or
  :class:`KeylessSigner` (:func:`sign_keyless`); the two halves :func:`hash_for_signing`
  and :func:`sign_digests`; :class:`SignResult`; :class:`ProvenanceRecorder` for
  training code; :func:`sign_statement`, :func:`make_statement`,
  :func:`serialize_statement`, :func:`build_provenance`, :class:`Envelope`, :func:`pae`;
- keys: :func:`generate_signer`, :func:`load_signer`, :func:`load_verifier`,
  :func:`write_keypair`, :class:`Signer`, :class:`Verifier`;
- verification: :func:`verify_bundle` -> :class:`VerifiedAttestation`,
  :func:`verify_model`, :func:`check_model` -> :class:`ModelCheck`,
  :class:`IdentityPolicy` (keyless identities), :func:`load_trusted_root`,
  :func:`embedded_trusted_root`, :class:`TrustedRoot`, :func:`load_bundle`;
- models: :func:`hash_model` -> :class:`ModelDigests`;
- the OpenSSF model-signing predicate: :func:`to_model_signing_statement`,
  :func:`expectations_from_model_signing`.

The remaining names serve the packages above ``attest`` (``policy``, ``load``, ``cli``):
bundle writing (:func:`make_bundle`, :func:`dump_bundle`), digest parsing
(:func:`digest_target`, :class:`DigestSpec`, :func:`supported_algorithms`,
:func:`shard_tree_root`), model walking (:func:`walk_model_detailed`,
:func:`open_model_file`, :class:`IgnoreRules`, :func:`refuse_trust_files_in_model`), key
helpers and attestation sources. Typed errors live in the public module
:mod:`mgattest.attest.errors`. Every other module is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgattest._lazy import LazyExports

if TYPE_CHECKING:  # the public names, for type checkers; at run time they load lazily
    from mgattest.attest.bundle import dump_bundle, load_bundle, make_bundle
    from mgattest.attest.certs import IdentityPolicy
    from mgattest.attest.digests import (
        DigestSpec,
        ModelDigests,
        check_model,
        digest_target,
        hash_model,
        raise_for_model_check,
        shard_tree_root,
        supported_algorithms,
    )
    from mgattest.attest.dsse import Envelope, pae, sign_envelope
    from mgattest.attest.errors import SubjectMismatchError
    from mgattest.attest.keyless import public_good_trust_config, sign_keyless
    from mgattest.attest.keys import (
        MAX_KEY_FILE_BYTES,
        generate_signer,
        load_signer,
        load_verifier,
        public_key_from_pem,
        resolve_password,
        write_keypair,
    )
    from mgattest.attest.locallog import local_log_info
    from mgattest.attest.modelsigning import (
        expectations_from_model_signing,
        to_model_signing_statement,
    )
    from mgattest.attest.recorder import ProvenanceRecorder
    from mgattest.attest.results import (
        FileCheck,
        LogProof,
        ModelCheck,
        SignerInfo,
        VerifiedAttestation,
        VerifiedTime,
    )
    from mgattest.attest.sign import (
        BundleSigner,
        DigestOptions,
        KeySigner,
        KeylessSigner,
        LogTarget,
        PendingBundleFile,
        ProvenanceOptions,
        SignOptions,
        SignResult,
        hash_for_signing,
        sign_digests,
        sign_model,
        sign_statement,
    )
    from mgattest.attest.signers import Signer, Verifier, check_public_key, key_fingerprint
    from mgattest.attest.slsa import build_provenance
    from mgattest.attest.sources import load_attestations
    from mgattest.attest.statement import make_statement, serialize_statement
    from mgattest.attest.trustroot import TrustedRoot, embedded_trusted_root, load_trusted_root
    from mgattest.attest.verify import (
        attestation_to_json,
        default_bundle_path,
        names_a_digest,
        public_key_hint,
        verify_bundle,
        verify_model,
    )
    from mgattest.attest.walk import (
        IgnoreRules,
        open_model_file,
        refuse_trust_files_in_model,
        walk_model_detailed,
    )
    from mgattest.attest.trustroot import combined_trusted_root
    from mgattest.attest.options import BuildInputs, CheckOptions, IdentityCheck, TrustOptions, TrustedRootSource

_EXPORTS = LazyExports("mgattest.attest", {
    "verify_bundle": "mgattest.attest.verify",
    "verify_model": "mgattest.attest.verify",
    "default_bundle_path": "mgattest.attest.verify",
    "public_key_hint": "mgattest.attest.verify",
    "names_a_digest": "mgattest.attest.verify",
    "attestation_to_json": "mgattest.attest.verify",
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
    "PendingBundleFile": "mgattest.attest.sign",
    "hash_for_signing": "mgattest.attest.sign",
    "sign_digests": "mgattest.attest.sign",
    "make_statement": "mgattest.attest.statement",
    "serialize_statement": "mgattest.attest.statement",
    "build_provenance": "mgattest.attest.slsa",
    "ProvenanceRecorder": "mgattest.attest.recorder",
    "Envelope": "mgattest.attest.dsse",
    "pae": "mgattest.attest.dsse",
    "sign_envelope": "mgattest.attest.dsse",
    "Signer": "mgattest.attest.signers",
    "Verifier": "mgattest.attest.signers",
    "check_public_key": "mgattest.attest.signers",
    "key_fingerprint": "mgattest.attest.signers",
    "generate_signer": "mgattest.attest.keys",
    "load_signer": "mgattest.attest.keys",
    "load_verifier": "mgattest.attest.keys",
    "write_keypair": "mgattest.attest.keys",
    "resolve_password": "mgattest.attest.keys",
    "public_key_from_pem": "mgattest.attest.keys",
    "MAX_KEY_FILE_BYTES": "mgattest.attest.keys",
    "load_bundle": "mgattest.attest.bundle",
    "make_bundle": "mgattest.attest.bundle",
    "dump_bundle": "mgattest.attest.bundle",
    "load_attestations": "mgattest.attest.sources",
    "local_log_info": "mgattest.attest.locallog",
    "TrustedRoot": "mgattest.attest.trustroot",
    "load_trusted_root": "mgattest.attest.trustroot",
    "embedded_trusted_root": "mgattest.attest.trustroot",
    "hash_model": "mgattest.attest.digests",
    "check_model": "mgattest.attest.digests",
    "raise_for_model_check": "mgattest.attest.digests",
    "ModelDigests": "mgattest.attest.digests",
    "DigestSpec": "mgattest.attest.digests",
    "digest_target": "mgattest.attest.digests",
    "supported_algorithms": "mgattest.attest.digests",
    "shard_tree_root": "mgattest.attest.digests",
    "IgnoreRules": "mgattest.attest.walk",
    "open_model_file": "mgattest.attest.walk",
    "walk_model_detailed": "mgattest.attest.walk",
    "refuse_trust_files_in_model": "mgattest.attest.walk",
    "SubjectMismatchError": "mgattest.attest.errors",
    "to_model_signing_statement": "mgattest.attest.modelsigning",
    "expectations_from_model_signing": "mgattest.attest.modelsigning",
    "IdentityPolicy": "mgattest.attest.certs",
    "sign_keyless": "mgattest.attest.keyless",
    "public_good_trust_config": "mgattest.attest.keyless",
    "VerifiedAttestation": "mgattest.attest.results",
    "ModelCheck": "mgattest.attest.results",
    "FileCheck": "mgattest.attest.results",
    "SignerInfo": "mgattest.attest.results",
    "LogProof": "mgattest.attest.results",
    "VerifiedTime": "mgattest.attest.results",
    "combined_trusted_root": "mgattest.attest.trustroot",
    "BuildInputs": "mgattest.attest.options",
    "CheckOptions": "mgattest.attest.options",
    "IdentityCheck": "mgattest.attest.options",
    "TrustOptions": "mgattest.attest.options",
    "TrustedRootSource": "mgattest.attest.options",
})

__all__ = [
    "BundleSigner", "DigestOptions", "DigestSpec", "Envelope", "FileCheck", "IdentityPolicy",
    "IgnoreRules", "KeySigner", "KeylessSigner", "LogProof", "LogTarget", "MAX_KEY_FILE_BYTES",
    "ModelCheck", "ModelDigests", "PendingBundleFile", "ProvenanceOptions",
    "ProvenanceRecorder", "SignOptions", "SignResult", "Signer", "SignerInfo",
    "SubjectMismatchError", "TrustedRoot", "VerifiedAttestation", "VerifiedTime", "Verifier",
    "attestation_to_json", "build_provenance", "check_model", "check_public_key",
    "default_bundle_path", "digest_target", "dump_bundle", "embedded_trusted_root",
    "expectations_from_model_signing", "generate_signer", "hash_for_signing", "hash_model",
    "key_fingerprint", "load_attestations", "load_bundle", "load_signer", "load_trusted_root",
    "load_verifier", "local_log_info", "make_bundle", "make_statement", "names_a_digest",
    "open_model_file", "pae", "public_good_trust_config", "public_key_from_pem",
    "public_key_hint", "raise_for_model_check", "refuse_trust_files_in_model",
    "resolve_password", "serialize_statement", "shard_tree_root", "sign_digests",
    "sign_envelope", "sign_keyless", "sign_model", "sign_statement", "supported_algorithms",
    "to_model_signing_statement", "verify_bundle", "verify_model", "walk_model_detailed",
    "write_keypair",
    "combined_trusted_root",
    "BuildInputs", "CheckOptions", "IdentityCheck", "TrustOptions", "TrustedRootSource",
]


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return list(__all__)
