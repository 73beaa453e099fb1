"""KMS key URIs (``--key awskms://…``): the extension point for keys in a cloud KMS.

mgattest reads the URI schemes cosign uses for KMS keys, so a ``--key`` written for
cosign names the same key here. This build ships no KMS client: a scheme resolves only
when a plug-in provides a factory for it, either registered in-process with
:func:`register_kms_provider` or installed as an entry point in the
``mgattest.kms_providers`` group (name = scheme, object = ``factory(uri) -> SigningKey``).
Without one the URI is refused with a pointer to ``--key-command``, which reaches any KMS
through its own CLI (recipes in docs/signing.md, "Keys held elsewhere").
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable

from mgattest.attest._signers import SigningKey
from mgattest.errors import InputError

KMS_SCHEMES = ("awskms", "gcpkms", "azurekms", "hashivault")
ENTRY_POINT_GROUP = "mgattest.kms_providers"

KMSProvider = Callable[[str], SigningKey]
_PROVIDERS: dict[str, KMSProvider] = {}


class KMSUnavailableError(InputError):
    """A KMS key URI whose scheme no installed provider handles."""


def kms_scheme(key: str) -> str | None:
    """The KMS scheme of a ``--key`` value (``awskms`` for ``awskms:///arn…``), else None."""
    scheme, sep, _ = key.partition("://")
    if not sep:  # pathlib collapses "awskms:///x" to "awskms:/x"
        scheme, sep, _ = key.partition(":/")
    return scheme if sep and scheme in KMS_SCHEMES else None


def register_kms_provider(scheme: str, provider: KMSProvider) -> None:
    """Make ``provider(uri)`` open ``--key`` values of ``scheme`` (one of :data:`KMS_SCHEMES`)."""
    if scheme not in KMS_SCHEMES:
        raise ValueError(f"{scheme!r} is not a KMS scheme ({', '.join(KMS_SCHEMES)})")
    _PROVIDERS[scheme] = provider


def open_kms_key(uri: str) -> SigningKey:
    """The signing key a KMS URI names, from its provider; refused (exit 2) without one."""
    scheme = kms_scheme(uri)
    if scheme is None:
        raise InputError(f"{uri!r} is not a KMS key URI ({', '.join(KMS_SCHEMES)})",
                         what="--key")
    provider = _PROVIDERS.get(scheme)
    if provider is None:
        for entry in entry_points(group=ENTRY_POINT_GROUP, name=scheme):
            provider = entry.load()
            break
    if provider is None:
        raise KMSUnavailableError(
            f"{scheme}:// keys are not available in this build (no {ENTRY_POINT_GROUP} "
            f"provider for {scheme!r} is installed); use --key-command with your KMS CLI "
            "and --key-command-public-key (docs/signing.md, \"Keys held elsewhere\")",
            what="--key", where=uri)
    return provider(uri)
