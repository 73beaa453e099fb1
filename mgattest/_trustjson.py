"""The proto-JSON shapes of Sigstore trust documents, as mgattest writes them.

``attest/trustroot.py`` (which parses and re-serialises trusted roots) and
``ca/trustconfig.py`` (which builds a private deployment's client trust config) both
produce these documents; ``ca`` may not import ``attest``, so the shapes live in this
leaf module. Readers still parse untrusted input with ``attest.trustroot``'s parsers:
these types describe what is written, not what is accepted.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from mgattest._jsonutil import JSONObject


class ValidForJSON(TypedDict, total=False):
    """proto-JSON ``TimeRange``: RFC 3339 start and (optional) end."""

    start: str
    end: str


class KeyIdJSON(TypedDict):
    """proto-JSON ``LogId``: a key id, base64."""

    keyId: str


class PublicKeyJSON(TypedDict):
    """proto-JSON ``PublicKey``: DER key (base64), its details and validity."""

    rawBytes: str
    keyDetails: str
    validFor: ValidForJSON


class LogInstanceJSON(TypedDict):
    """proto-JSON ``TransparencyLogInstance`` (a ``tlogs``/``ctlogs`` item) as written."""

    baseUrl: str
    hashAlgorithm: str
    publicKey: PublicKeyJSON
    logId: KeyIdJSON
    checkpointKeyId: NotRequired[KeyIdJSON]


class RawBytesJSON(TypedDict):
    """proto-JSON ``X509Certificate``: DER (base64)."""

    rawBytes: str


class CertChainJSON(TypedDict):
    """proto-JSON ``X509CertificateChain``, leaf first."""

    certificates: list[RawBytesJSON]


class AuthorityJSON(TypedDict):
    """proto-JSON ``CertificateAuthority`` (also used for timestamp authorities)."""

    subject: dict[str, str]
    uri: str
    certChain: CertChainJSON
    validFor: ValidForJSON


class TrustedRootJSON(TypedDict):
    """A ``trustedroot+json;version=0.1`` document as :meth:`TrustedRoot.to_dict` writes it."""

    mediaType: str
    tlogs: list[LogInstanceJSON]
    certificateAuthorities: list[AuthorityJSON]
    ctlogs: list[LogInstanceJSON]
    timestampAuthorities: list[AuthorityJSON]


class ClientTrustConfigJSON(TypedDict):
    """A ``clienttrustconfig.v0.1+json`` document. The signing config's members are not
    read by mgattest beyond its object shape, so it stays arbitrary JSON."""

    mediaType: str
    trustedRoot: TrustedRootJSON
    signingConfig: JSONObject
