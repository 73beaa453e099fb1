"""Typed options for the attest entry points (in the style of sigstore-python).

``verify_bundle``/``verify_model`` take a :class:`TrustOptions` (who is trusted),
``check_model``/``verify_model`` a :class:`CheckOptions` (how a model's files are
compared with a statement), and ``slsa.build_provenance`` a :class:`BuildInputs`
(what a SLSA provenance predicate records). The verify pipeline
(``mgattest.policy._pipeline``) reuses :class:`TrustOptions` as is.

This module is light on purpose (dataclasses only; the attest modules it names are
imported for type checking alone), so the CLI and the policy engine can build options
without loading the verification stack.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from mgattest._jsonutil import JSONObject

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from mgattest.attest._results import SignerInfo
    from mgattest.attest._signers import Verifier
    from mgattest.attest._slsa import CIFacts
    from mgattest.attest._trustroot import TrustedRoot

__all__ = ["BuildInputs", "CheckOptions", "IdentityCheck", "KeySource", "TrustOptions",
           "TrustedRootSource"]


class IdentityCheck(Protocol):
    """What a certificate signer must be: ``attest.certs.IdentityPolicy`` or a policy's
    own check; raises an ``IdentityMismatchError`` for a signer that does not fit."""

    def check(self, signer: SignerInfo) -> None:
        """Raise unless ``signer`` is acceptable."""


TrustedRootSource: TypeAlias = "TrustedRoot | str | os.PathLike[str] | JSONObject | None"
"""A parsed TrustedRoot, a trusted-root (or ClientTrustConfig) file, or its JSON."""

_OneKey: TypeAlias = "str | Path | Verifier | PublicKeyTypes"
KeySource: TypeAlias = "_OneKey | Iterable[_OneKey] | None"
"""Trusted public keys: key files, key objects or ``Verifier``\\ s (one or several)."""


@dataclass(frozen=True)
class TrustOptions:
    """Who is trusted.

    ``trusted_root``: a TrustedRoot, a trusted-root file or its JSON, listing trusted
    logs, CAs and TSAs (a policy merges its own roots in). ``keys``: public keys trusted
    for key-signed bundles. ``identity``: the certificate identity a keyless signer must
    have (an ``IdentityPolicy``, a policy's check, or ``IdentityPolicy`` keyword
    arguments). ``certificate_chain``: PEM CA certificates for private-CA signatures.
    """

    trusted_root: TrustedRootSource = None
    keys: KeySource = ()
    identity: IdentityCheck | Mapping[str, Any] | None = None
    certificate_chain: bytes | None = None


@dataclass(frozen=True)
class CheckOptions:
    """How a model's files are compared with a statement's subjects (``check_model``).

    ``algorithm`` forces a digest key (default: the best the subject offers);
    ``ignore`` adds glob patterns to the default ignores; ``exclude`` leaves paths out
    (e.g. the bundle next to the model); ``allow_symlinks`` follows links inside the
    model; ``allow_unsigned_files`` turns extra files into ``ignored``;
    ``single_file_match_by_digest`` matches a one-file model by digest whatever its
    name; ``allow_unsigned_empty_files`` ignores extra *empty* files; ``workers`` bounds
    the hashing threads; ``progress`` is called with byte counts as hashing advances.
    """

    algorithm: str | None = None
    ignore: Iterable[str] = ()
    exclude: Iterable[str | os.PathLike[str]] = ()
    allow_symlinks: bool = False
    allow_unsigned_files: bool = False
    single_file_match_by_digest: bool = True
    allow_unsigned_empty_files: bool = False
    workers: int | None = None
    progress: Callable[[int], object] | None = None


@dataclass(frozen=True)
class BuildInputs:
    """What a SLSA Provenance v1 predicate records (``slsa.build_provenance``).

    Explicit ``builder_id``/``build_type`` win over CI-derived ones (``ci``, from
    ``slsa.from_ci_env``). ``frameworks`` go to ``internalParameters.frameworks``;
    ``started_on``/``finished_on`` are RFC 3339 times.
    """

    builder_id: str | None = None
    build_type: str | None = None
    parameters: Mapping[str, Any] | None = None
    dependencies: Iterable[Mapping[str, object]] = ()  # SLSA ResourceDescriptors
    ci: CIFacts | None = None
    frameworks: Mapping[str, str] | None = None
    started_on: str | None = None
    finished_on: str | None = None
    invocation_id: str | None = None
    internal_parameters: Mapping[str, Any] | None = None
    byproducts: Iterable[JSONObject] = field(default=())
