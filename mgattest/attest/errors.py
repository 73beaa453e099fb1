"""Typed errors of ``mgattest.attest``, one definition each.

Evidence that does not check out (a bundle, certificate, signature, subject or timestamp)
raises a :class:`~mgattest.errors.VerificationError` subclass (CLI exit 1); bad input from
the operator (a missing file, a bad option, an unusable key) raises an
:class:`~mgattest.errors.InputError` subclass (CLI exit 2).

``TrustRootError`` is the transparency log's (:mod:`mgattest.tlog.errors`): a trusted root
is one error whether its log keys or its CA part is malformed.
"""

from __future__ import annotations

from mgattest.errors import InputError, VerificationError
from mgattest.tlog.errors import TrustRootError

__all__ = [
    "ArtifactMismatchError",
    "AttestationSourceError",
    "BundleFormatError",
    "BundleOutputError",
    "BundleReadError",
    "BundleVerificationError",
    "CacheCorruptionError",
    "CertificateError",
    "DSSEFormatError",
    "DescriptorMismatchError",
    "DigestError",
    "IdentityMismatchError",
    "InvalidSubjectError",
    "KeyFileError",
    "LayoutError",
    "LayoutFormatError",
    "LogBindingError",
    "ModelChangedError",
    "ModelPathError",
    "ModelReferenceError",
    "ModelSigningFormatError",
    "OIDCTokenError",
    "PatternError",
    "PayloadTypeError",
    "PredicateTypeError",
    "ProvenanceInputError",
    "SCTError",
    "StatementError",
    "StoreCorruptionError",
    "SubjectMismatchError",
    "TimestampError",
    "TrustRootError",
    "UnloggedBundleError",
    "UnsafePathError",
    "UnsafeSubjectNameError",
]


# -- DSSE envelopes (dsse.py) ----------------------------------------------------

class DSSEFormatError(InputError):
    """A DSSE envelope is malformed (bad base64, missing field, over a bound)."""


# -- Sigstore bundle files (bundle.py) -------------------------------------------

class BundleReadError(InputError):
    """The bundle file named by the operator cannot be read (missing, a directory...)."""


class BundleFormatError(VerificationError):
    """A bundle whose content is malformed: bad JSON, unknown media type, wrong shape,
    over a size bound. The bundle is untrusted evidence, so this is a rejection."""


# -- model digests and subjects (digests.py) -------------------------------------

class DigestError(InputError):
    """Bad digest parameters or digest strings (unknown algorithm, bad shard size, bad hex)."""


class InvalidSubjectError(VerificationError):
    """A statement's subject list is malformed or unsafe (bad name, duplicate, bad digest)."""


class SubjectMismatchError(VerificationError):
    """The model on disk does not match the statement's subjects."""


# -- in-toto statements (statement.py) -------------------------------------------

class StatementError(InputError):
    """A statement that is not well-formed in-toto Statement v1."""


class UnsafeSubjectNameError(VerificationError):
    """A signed subject name that would reach outside the model root."""


# -- walking a model directory (walk.py) -----------------------------------------

class UnsafePathError(InputError):
    """A model entry cannot be signed or verified safely (special file, escaping link...)."""


class ModelPathError(InputError):
    """The model path (or a file in it) is missing or unreadable."""


class PatternError(InputError):
    """An ignore pattern is malformed."""


class ModelChangedError(InputError):
    """A file changed while the model was being hashed; hash a stable copy."""


# -- models where they live: references and the Hugging Face cache ---------------

class ModelReferenceError(InputError):
    """A model reference (``hf:ORG/NAME@REV``) that is malformed, or that the local
    cache cannot resolve (unknown scheme, repository, ref or revision)."""


class CacheCorruptionError(VerificationError):
    """A Hugging Face cache blob whose content does not hash to its name (the SHA-256
    of an LFS file, the git blob id of a small file): the cache is corrupt."""


# -- certificates and identities (certs.py) --------------------------------------

class CertificateError(VerificationError):
    """The signing certificate (or its chain) is not acceptable."""


class SCTError(CertificateError):
    """The certificate's embedded Signed Certificate Timestamp did not verify."""


class IdentityMismatchError(VerificationError):
    """The certificate's identity does not match what the caller requires."""


# -- bundle verification (verify.py) ---------------------------------------------

class BundleVerificationError(VerificationError):
    """A bundle failed a cryptographic or consistency check."""


class LogBindingError(BundleVerificationError):
    """A log entry verified, but it records a different signature, key or payload."""


class UnloggedBundleError(BundleVerificationError):
    """The bundle carries no transparency-log entry and unlogged bundles were not allowed."""


class PayloadTypeError(BundleVerificationError):
    """The DSSE payload is not an in-toto statement."""


class PredicateTypeError(BundleVerificationError):
    """The statement's predicate type is not the expected one."""


class ArtifactMismatchError(BundleVerificationError):
    """The bundle signs a different artifact than the one given."""


# -- model-signing (OpenSSF) statements (modelsigning.py) ------------------------

class ModelSigningFormatError(InvalidSubjectError):
    """A model-signing statement is malformed or internally inconsistent."""


# -- RFC 3161 timestamps (timestamps.py) -----------------------------------------

class TimestampError(VerificationError):
    """An RFC 3161 timestamp is malformed, untrusted or does not cover the signature."""


# -- OIDC identity tokens (oidc.py) ----------------------------------------------

class OIDCTokenError(InputError):
    """An identity token is missing, malformed, expired or for another audience."""


# -- SLSA provenance inputs (slsa.py) --------------------------------------------

class ProvenanceInputError(InputError):
    """A builder, parameter, dependency or CI variable that cannot be used."""


# -- attestation containers (sources.py) -----------------------------------------

class AttestationSourceError(InputError):
    """The file is not any attestation container mgattest knows."""


# -- key files (keys.py) ---------------------------------------------------------

class KeyFileError(InputError):
    """A key file that cannot be read, decrypted or used."""


# -- writing bundles (sign.py) ---------------------------------------------------

class BundleOutputError(InputError):
    """The bundle cannot be written where it was asked for (checked before signing)."""


# -- blobs and raw detached signatures (blobs.py) --------------------------------

class SignatureFileError(InputError):
    """A detached signature file that cannot be used (unreadable, empty, too large)."""


class MalformedSignatureError(VerificationError):
    """A raw signature that cannot be one of its key's signatures (not DER ECDSA, the
    wrong length for the RSA modulus or for Ed25519): truncated or corrupted."""


class RawSignatureMismatchError(VerificationError):
    """A well-formed raw signature that does not verify over the file with the key: the
    file changed, or another file or key was signed."""
# -- model stores: OCI image layouts and the Ollama store (_blobstore.py, _oci.py, _ollama.py)

class LayoutError(InputError):
    """A store reference does not resolve: no such layout, store, manifest or ref, or a
    ref that names more than one manifest."""


class LayoutFormatError(VerificationError):
    """A document of a store (an OCI index or manifest, an Ollama manifest) is not what
    its format allows: bad JSON, a duplicate key, a bad media type or descriptor."""


class DescriptorMismatchError(VerificationError):
    """A blob's size or media type differs from the descriptor that points to it."""


class StoreCorruptionError(VerificationError):
    """A blob of a content-addressed store is missing, or its bytes do not hash to the
    digest its name (and the descriptor pointing to it) states."""
