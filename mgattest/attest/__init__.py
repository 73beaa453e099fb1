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
- blobs (one file signed as itself): :func:`sign_blob` (a message-signature bundle from
  any :class:`BlobSigner`) -> :class:`BlobSignResult`; raw detached signatures as
  ``openssl dgst -sha256`` makes them: :func:`sign_blob_raw` -> :class:`RawSignature`,
  :func:`read_signature_file`, :func:`verify_raw_signature` -> :class:`RawSignatureCheck`;
  :func:`hash_blob` -> :class:`BlobDigest`;
- keys: :func:`generate_signer`, :func:`load_signer`, :func:`load_verifier`,
  :func:`write_keypair`, :class:`Signer`, :class:`Verifier`;
- verification: :func:`verify_bundle` -> :class:`VerifiedAttestation`,
  :func:`verify_model`, :func:`check_model` -> :class:`ModelCheck`,
  :class:`IdentityPolicy` (keyless identities), :func:`load_trusted_root`,
  :func:`embedded_trusted_root`, :class:`TrustedRoot`, :func:`load_bundle`;
- models: :func:`hash_model` -> :class:`ModelDigests` (of :class:`FileDigest`); models where they live:
  :func:`resolve_stored_model` (``ollama:NAME[:TAG]``, ``oci:PATH[:REF]``, an OCI
  layout directory -> :class:`StoredModel`, manifest and blobs verified),
  :func:`resolve_model_path` (``hf:ORG/NAME[@REV]`` -> the local cache snapshot),
  :func:`hub_cache_dir`, :func:`check_cache_blobs` (Hugging Face cache blobs against
  their names);
- watching a log for your signers: :class:`EntryWatcher` over a :class:`WatchList`
  (identities, keys, :func:`parse_expected_digests`) -> :class:`WatchHit`;
- the OpenSSF model-signing predicate: :func:`to_model_signing_statement`,
  :func:`expectations_from_model_signing`;
- migration from home-grown schemes: :func:`migrate_tree` (:class:`MigrateOptions`,
  :func:`read_hmac_key`) -> :class:`MigrationReport`; checksum files
  (``sha256sum``/``sha512sum``/BSD) through :func:`parse_checksum_text`, the one parser
  ``migrate`` and ``watch --manifest`` share.

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
    from mgattest.attest._blobs import (
        BlobDigest,
        BlobSignResult,
        RawSignature,
        RawSignatureCheck,
        hash_blob,
        read_signature_file,
        sign_blob,
        sign_blob_raw,
        verify_raw_signature,
    )
    from mgattest.attest._bundle import dump_bundle, load_bundle, make_bundle
    from mgattest.attest._certs import IdentityPolicy
    from mgattest.attest._log_watch import (
        EntryWatcher,
        WatchHit,
        WatchList,
        parse_expected_digests,
    )
    from mgattest.attest._digests import (
        DigestSpec,
        FileDigest,
        ModelDigests,
        check_model,
        digest_target,
        hash_model,
        raise_for_model_check,
        shard_tree_root,
        supported_algorithms,
    )
    from mgattest._encodings import pae
    from mgattest.attest._dsse import Envelope, sign_envelope
    from mgattest.attest.errors import SubjectMismatchError
    from mgattest.attest._keyless import public_good_trust_config, sign_keyless
    from mgattest.attest._keys import (
        MAX_KEY_FILE_BYTES,
        generate_signer,
        load_signer,
        load_verifier,
        public_key_from_pem,
        resolve_password,
        write_keypair,
    )
    from mgattest.attest._locallog import local_log_info
    from mgattest.attest._modelsigning import (
        expectations_from_model_signing,
        to_model_signing_statement,
    )
    from mgattest.attest._recorder import ProvenanceRecorder
    from mgattest.attest._results import (
        FileCheck,
        LogProof,
        ModelCheck,
        SignerInfo,
        VerifiedAttestation,
        VerifiedTime,
    )
    from mgattest.attest._sign import (
        BlobSigner,
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
    from mgattest.attest._signers import (Signer, SigningKey, Verifier, check_public_key,
                                          key_fingerprint)
    from mgattest.attest._keycommand import CommandKey, KeyCommandError
    from mgattest.attest._kms import (KMS_SCHEMES, KMSUnavailableError, kms_scheme,
                                      open_kms_key, register_kms_provider)
    from mgattest.attest._slsa import build_provenance
    from mgattest.attest._sources import load_attestations
    from mgattest.attest._statement import make_statement, serialize_statement
    from mgattest.attest._trustroot import TrustedRoot, embedded_trusted_root, load_trusted_root
    from mgattest.attest._references import (
        StoredModel,
        default_bundle_path,
        is_store_reference,
        model_schemes,
        refuse_store_reference,
        resolve_model_path,
        resolve_stored_model,
    )
    from mgattest.attest._verify import (
        as_verifiers,
        attestation_to_json,
        names_a_digest,
        public_key_hint,
        verify_bundle,
        verify_model,
    )
    from mgattest.attest._walk import (
        IgnoreRules,
        open_model_file,
        refuse_trust_files_in_model,
        walk_model_detailed,
    )
    from mgattest.attest._trustroot import combined_trusted_root
    from mgattest.attest._options import BuildInputs, CheckOptions, IdentityCheck, TrustOptions, TrustedRootSource
    from mgattest.attest._bundle import BundleJSON
    from mgattest.attest._statement import ResourceDescriptor, Statement
    from mgattest.attest._trustroot import as_trusted_root, log_instance_for_key, merge_roots, parse_client_trust_config, write_trusted_root
    from mgattest.attest._slsa import framework_versions, from_ci_env, parse_build_times, parse_dependency, parse_params
    from mgattest.attest._locallog import default_db_path, local_trusted_root
    from mgattest.attest._certs import as_identity_check
    from mgattest.attest._discover import (DEFAULT_MODEL_PATTERNS, DiscoveredModel, Discovery,
                                           RefusedEntry, discover_models)
    from mgattest.attest._signall import TreeSignResult, sign_tree
    from mgattest.attest._hfcache import check_cache_blobs, hub_cache_dir
    from mgattest.attest._checksums import ChecksumFile, ChecksumLine, parse_checksum_text
    from mgattest.attest._migrate import (
        FileMigration,
        MigrateOptions,
        MigrationReport,
        migrate_tree,
        read_hmac_key,
    )

_EXPORTS = LazyExports("mgattest.attest", {
    "EntryWatcher": "mgattest.attest._log_watch",
    "WatchHit": "mgattest.attest._log_watch",
    "WatchList": "mgattest.attest._log_watch",
    "parse_expected_digests": "mgattest.attest._log_watch",
    "verify_bundle": "mgattest.attest._verify",
    "verify_model": "mgattest.attest._verify",
    "default_bundle_path": "mgattest.attest._references",
    "resolve_stored_model": "mgattest.attest._references",
    "model_schemes": "mgattest.attest._references",
    "is_store_reference": "mgattest.attest._references",
    "refuse_store_reference": "mgattest.attest._references",
    "StoredModel": "mgattest.attest._references",
    "public_key_hint": "mgattest.attest._verify",
    "names_a_digest": "mgattest.attest._verify",
    "attestation_to_json": "mgattest.attest._verify",
    "as_verifiers": "mgattest.attest._verify",
    "sign_model": "mgattest.attest._sign",
    "sign_statement": "mgattest.attest._sign",
    "LogTarget": "mgattest.attest._sign",
    "SignOptions": "mgattest.attest._sign",
    "DigestOptions": "mgattest.attest._sign",
    "ProvenanceOptions": "mgattest.attest._sign",
    "SignResult": "mgattest.attest._sign",
    "BundleSigner": "mgattest.attest._sign",
    "BlobSigner": "mgattest.attest._sign",
    "sign_blob": "mgattest.attest._blobs",
    "sign_blob_raw": "mgattest.attest._blobs",
    "hash_blob": "mgattest.attest._blobs",
    "read_signature_file": "mgattest.attest._blobs",
    "verify_raw_signature": "mgattest.attest._blobs",
    "BlobDigest": "mgattest.attest._blobs",
    "BlobSignResult": "mgattest.attest._blobs",
    "RawSignature": "mgattest.attest._blobs",
    "RawSignatureCheck": "mgattest.attest._blobs",
    "KeySigner": "mgattest.attest._sign",
    "KeylessSigner": "mgattest.attest._sign",
    "PendingBundleFile": "mgattest.attest._sign",
    "hash_for_signing": "mgattest.attest._sign",
    "sign_digests": "mgattest.attest._sign",
    "make_statement": "mgattest.attest._statement",
    "serialize_statement": "mgattest.attest._statement",
    "build_provenance": "mgattest.attest._slsa",
    "ProvenanceRecorder": "mgattest.attest._recorder",
    "Envelope": "mgattest.attest._dsse",
    "pae": "mgattest._encodings",
    "sign_envelope": "mgattest.attest._dsse",
    "Signer": "mgattest.attest._signers",
    "SigningKey": "mgattest.attest._signers",
    "CommandKey": "mgattest.attest._keycommand",
    "KeyCommandError": "mgattest.attest._keycommand",
    "KMS_SCHEMES": "mgattest.attest._kms",
    "KMSUnavailableError": "mgattest.attest._kms",
    "kms_scheme": "mgattest.attest._kms",
    "open_kms_key": "mgattest.attest._kms",
    "register_kms_provider": "mgattest.attest._kms",
    "Verifier": "mgattest.attest._signers",
    "check_public_key": "mgattest.attest._signers",
    "key_fingerprint": "mgattest.attest._signers",
    "generate_signer": "mgattest.attest._keys",
    "load_signer": "mgattest.attest._keys",
    "load_verifier": "mgattest.attest._keys",
    "write_keypair": "mgattest.attest._keys",
    "resolve_password": "mgattest.attest._keys",
    "public_key_from_pem": "mgattest.attest._keys",
    "MAX_KEY_FILE_BYTES": "mgattest.attest._keys",
    "load_bundle": "mgattest.attest._bundle",
    "make_bundle": "mgattest.attest._bundle",
    "dump_bundle": "mgattest.attest._bundle",
    "load_attestations": "mgattest.attest._sources",
    "local_log_info": "mgattest.attest._locallog",
    "TrustedRoot": "mgattest.attest._trustroot",
    "load_trusted_root": "mgattest.attest._trustroot",
    "embedded_trusted_root": "mgattest.attest._trustroot",
    "hash_model": "mgattest.attest._digests",
    "check_model": "mgattest.attest._digests",
    "raise_for_model_check": "mgattest.attest._digests",
    "ModelDigests": "mgattest.attest._digests",
    "FileDigest": "mgattest.attest._digests",
    "DigestSpec": "mgattest.attest._digests",
    "digest_target": "mgattest.attest._digests",
    "supported_algorithms": "mgattest.attest._digests",
    "shard_tree_root": "mgattest.attest._digests",
    "IgnoreRules": "mgattest.attest._walk",
    "open_model_file": "mgattest.attest._walk",
    "walk_model_detailed": "mgattest.attest._walk",
    "refuse_trust_files_in_model": "mgattest.attest._walk",
    "SubjectMismatchError": "mgattest.attest.errors",
    "to_model_signing_statement": "mgattest.attest._modelsigning",
    "expectations_from_model_signing": "mgattest.attest._modelsigning",
    "IdentityPolicy": "mgattest.attest._certs",
    "sign_keyless": "mgattest.attest._keyless",
    "public_good_trust_config": "mgattest.attest._keyless",
    "VerifiedAttestation": "mgattest.attest._results",
    "ModelCheck": "mgattest.attest._results",
    "FileCheck": "mgattest.attest._results",
    "SignerInfo": "mgattest.attest._results",
    "LogProof": "mgattest.attest._results",
    "VerifiedTime": "mgattest.attest._results",
    "combined_trusted_root": "mgattest.attest._trustroot",
    "BuildInputs": "mgattest.attest._options",
    "CheckOptions": "mgattest.attest._options",
    "IdentityCheck": "mgattest.attest._options",
    "TrustOptions": "mgattest.attest._options",
    "TrustedRootSource": "mgattest.attest._options",
    "BundleJSON": "mgattest.attest._bundle",
    "ResourceDescriptor": "mgattest.attest._statement",
    "Statement": "mgattest.attest._statement",
    "as_trusted_root": "mgattest.attest._trustroot",
    "log_instance_for_key": "mgattest.attest._trustroot",
    "merge_roots": "mgattest.attest._trustroot",
    "parse_client_trust_config": "mgattest.attest._trustroot",
    "write_trusted_root": "mgattest.attest._trustroot",
    "parse_params": "mgattest.attest._slsa",
    "parse_dependency": "mgattest.attest._slsa",
    "from_ci_env": "mgattest.attest._slsa",
    "parse_build_times": "mgattest.attest._slsa",
    "framework_versions": "mgattest.attest._slsa",
    "local_trusted_root": "mgattest.attest._locallog",
    "default_db_path": "mgattest.attest._locallog",
    "as_identity_check": "mgattest.attest._certs",
    # the models of a repository tree (audit, sign --all, verify --all)
    "DEFAULT_MODEL_PATTERNS": "mgattest.attest._discover",
    "DiscoveredModel": "mgattest.attest._discover",
    "Discovery": "mgattest.attest._discover",
    "RefusedEntry": "mgattest.attest._discover",
    "discover_models": "mgattest.attest._discover",
    "TreeSignResult": "mgattest.attest._signall",
    "sign_tree": "mgattest.attest._signall",
    "resolve_model_path": "mgattest.attest._references",
    "check_cache_blobs": "mgattest.attest._hfcache",
    "hub_cache_dir": "mgattest.attest._hfcache",
    "ChecksumFile": "mgattest.attest._checksums",
    "ChecksumLine": "mgattest.attest._checksums",
    "parse_checksum_text": "mgattest.attest._checksums",
    "FileMigration": "mgattest.attest._migrate",
    "MigrateOptions": "mgattest.attest._migrate",
    "MigrationReport": "mgattest.attest._migrate",
    "migrate_tree": "mgattest.attest._migrate",
    "read_hmac_key": "mgattest.attest._migrate",
})

__all__ = [
    "EntryWatcher", "WatchHit", "WatchList", "parse_expected_digests",
    "as_identity_check", "as_trusted_root", "as_verifiers", "attestation_to_json", "BlobDigest",
    "BlobSigner", "BlobSignResult", "build_provenance", "hash_blob", "RawSignature",
    "RawSignatureCheck", "read_signature_file", "sign_blob", "sign_blob_raw",
    "verify_raw_signature",
    "BuildInputs", "BundleJSON", "BundleSigner", "check_model", "check_public_key",
    "CheckOptions", "ChecksumFile", "ChecksumLine", "combined_trusted_root", "default_bundle_path", "default_db_path",
    "digest_target", "DigestOptions", "DigestSpec", "dump_bundle",
    "embedded_trusted_root", "Envelope", "expectations_from_model_signing", "FileCheck",
    "FileMigration",
    "framework_versions", "from_ci_env", "generate_signer", "hash_for_signing",
    "hash_model", "IdentityCheck", "IdentityPolicy", "IgnoreRules", "key_fingerprint",
    "KeylessSigner", "KeySigner", "load_attestations", "load_bundle", "load_signer",
    "load_trusted_root", "load_verifier", "local_log_info", "local_trusted_root",
    "log_instance_for_key", "LogProof", "LogTarget", "make_bundle", "make_statement",
    "MAX_KEY_FILE_BYTES", "merge_roots", "migrate_tree", "MigrateOptions",
    "MigrationReport", "ModelCheck", "ModelDigests", "names_a_digest",
    "FileDigest",
    "open_model_file", "pae", "parse_build_times", "parse_checksum_text", "parse_client_trust_config",
    "parse_dependency", "parse_params", "PendingBundleFile", "ProvenanceOptions",
    "ProvenanceRecorder", "public_good_trust_config", "public_key_from_pem",
    "public_key_hint", "raise_for_model_check", "read_hmac_key", "refuse_trust_files_in_model",
    "resolve_stored_model", "resolve_password", "ResourceDescriptor", "serialize_statement", "shard_tree_root",
    "sign_digests", "sign_envelope", "sign_keyless", "sign_model", "sign_statement",
    "Signer", "SignerInfo", "SignOptions", "SignResult", "Statement", "StoredModel",
    "SubjectMismatchError", "supported_algorithms", "to_model_signing_statement",
    "TrustedRoot", "TrustedRootSource", "TrustOptions", "VerifiedAttestation",
    "VerifiedTime", "Verifier", "verify_bundle", "verify_model", "walk_model_detailed",
    "write_keypair", "write_trusted_root",
    # the models of a repository tree
    "DEFAULT_MODEL_PATTERNS", "DiscoveredModel", "Discovery", "RefusedEntry", "discover_models",
    "sign_tree", "TreeSignResult",
    "is_store_reference", "model_schemes", "refuse_store_reference", "resolve_model_path",
    "check_cache_blobs", "hub_cache_dir",
    # keys held elsewhere
    "SigningKey", "CommandKey", "KeyCommandError", "KMS_SCHEMES", "KMSUnavailableError",
    "kms_scheme", "open_kms_key", "register_kms_provider",
]


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return list(__all__)
