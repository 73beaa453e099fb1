"""Keyless signing through sigstore-python: OIDC token → Fulcio certificate → Rekor.

:func:`sign_keyless` signs an in-toto Statement payload as a DSSE envelope and returns
the Sigstore bundle (v0.3 proto-JSON) as a dict; :func:`sign_keyless_digest` signs an
artifact digest (a message-signature bundle, logged as a hashedrekord entry). The services come from a
ClientTrustConfig: Sigstore's public-good production (default) or staging instance, or
a file (``--trust-config``) such as the one ``mgattest trust private`` writes for a
private CA + log.

The public-good trust material is the copy embedded in the installed sigstore package
unless ``refresh_trust=True`` asks sigstore-python for a TUF update (network).
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypedDict

from cryptography import x509

from mgattest._files import read_bounded
from mgattest._jsonutil import JSONObject
from mgattest.attest._bundle import BundleJSON
from mgattest.attest._certs import IdentityPolicy, parse_identity
from mgattest.attest._oidc import TokenInfo, select_identity_token
from mgattest.attest._options import TrustOptions
from mgattest.attest._verify import verify_bundle
from mgattest.errors import InputError, MgattestError

if TYPE_CHECKING:  # sigstore is heavy: imported at run time only when signing keylessly
    from sigstore.models import ClientTrustConfig

__all__ = ["KeylessSigningError", "sign_keyless", "sign_keyless_digest",
           "check_own_verify_accepts", "load_sigstore_trust_config", "signing_services",
           "public_good_trust_config", "IN_TOTO_PAYLOAD_TYPE"]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
MAX_TRUST_CONFIG_BYTES = 8 * 1024 * 1024
_INSTANCE_DIRS = {"production": "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev",
                  "staging": "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"}


class KeylessSigningError(InputError):
    """Keyless signing could not complete (token, trust config, CA or log refused)."""


def _embedded_config_json(instance: str) -> str:
    import sigstore  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing

    base = Path(sigstore.__file__).parent / "_store" / _INSTANCE_DIRS[instance]
    return json.dumps({
        "mediaType": CLIENT_TRUST_CONFIG_MEDIA_TYPE,
        "trustedRoot": json.loads((base / "trusted_root.json").read_text(encoding="utf-8")),
        "signingConfig": json.loads((base / "signing_config.v0.2.json").read_text(
            encoding="utf-8")),
    })


def load_sigstore_trust_config(trust_config: str | Path | None = None, *,
                               staging: bool = False, refresh_trust: bool = False) -> ClientTrustConfig:
    """A ``sigstore.models.ClientTrustConfig`` for signing.

    ``trust_config`` (a path) wins; else Sigstore staging or production — embedded in
    the sigstore package, or refreshed over TUF when ``refresh_trust``.
    """
    from sigstore.errors import Error as SigstoreError  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing
    from sigstore.models import ClientTrustConfig  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing

    if trust_config is not None and staging:
        raise KeylessSigningError("give either --trust-config or --staging, not both",
                                  what="usage")
    try:
        if trust_config is not None:
            raw = read_bounded(trust_config, MAX_TRUST_CONFIG_BYTES, what="trust config",
                               error=KeylessSigningError)
            return ClientTrustConfig.from_json(raw.decode("utf-8"))
        instance = "staging" if staging else "production"
        if refresh_trust:
            return (ClientTrustConfig.staging(offline=False) if staging
                    else ClientTrustConfig.production(offline=False))
        return ClientTrustConfig.from_json(_embedded_config_json(instance))
    except KeylessSigningError:
        raise
    except OSError as exc:
        raise KeylessSigningError(f"cannot read trust config {trust_config}: {exc.strerror}",
                                  what="trust-config", where=str(trust_config)) from None
    except (SigstoreError, ValueError, UnicodeDecodeError) as exc:
        if trust_config is None:
            source = ("Sigstore staging" if staging else "Sigstore production") + (
                " (TUF refresh)" if refresh_trust else " (embedded)")
        else:
            source = str(trust_config)
        raise KeylessSigningError(f"unusable trust config from {source}: {exc}",
                                  what="trust-config", where=source) from None


def public_good_trust_config(*, staging: bool = False, refresh_trust: bool = False
                             ) -> JSONObject:
    """Sigstore's production (or staging) ClientTrustConfig as a proto-JSON dict.

    Offline by default (the copy embedded in sigstore-python); ``refresh_trust`` runs a
    TUF update first (network) — what ``verify --refresh-trust`` should call.
    """
    config = load_sigstore_trust_config(staging=staging, refresh_trust=refresh_trust)
    trust_config: dict[str, Any] = json.loads(config._inner.to_json())
    return trust_config


class SigningServices(TypedDict):
    """The URLs keyless signing talks to (``tlog``/``tlog_kind`` None: no log configured;
    ``oidc`` None: the config names no identity provider)."""

    ca: str
    tlog: str | None
    tlog_kind: str | None
    oidc: str | None
    tsas: list[str]


def signing_services(config: ClientTrustConfig) -> SigningServices:
    """The CA, log and OIDC URLs sigstore-python will use with ``config``."""
    from sigstore.errors import Error as SigstoreError  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing

    try:
        signing = config.signing_config
        # The abstract RekorLogSubmitter does not declare ``url``; both its clients have it.
        tlogs: list[Any] = signing.get_tlogs()
        oidc = None
        try:
            oidc = signing.get_oidc_url()
        except SigstoreError:
            pass
        return {"ca": signing.get_fulcio().url, "tlog": tlogs[0].url if tlogs else None,
                "tlog_kind": type(tlogs[0]).__name__ if tlogs else None, "oidc": oidc,
                "tsas": [t.url for t in signing.get_tsas()]}
    except (SigstoreError, ValueError) as exc:
        raise KeylessSigningError(f"signing config unusable: {exc}",
                                  what="trust-config") from None


def _describe_failure(exc: BaseException) -> str:
    """A readable reason, including the server's JSON ``message`` when it sent one
    (sigstore-python drops it for 4xx answers)."""
    message = str(exc) or type(exc).__name__
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    if response is not None:
        try:
            detail = response.json().get("message")
        except (ValueError, AttributeError):
            detail = None
        message += f" (HTTP {response.status_code}{': ' + detail if detail else ''})"
    elif cause is not None and str(cause):
        message += f" ({cause})"
    return message


def sign_keyless(payload: bytes, *, payload_type: str = IN_TOTO_PAYLOAD_TYPE,
                 identity_token: str | None = None, trust_config: str | Path | None = None,
                 staging: bool = False, refresh_trust: bool = False,
                 interactive: bool | None = None) -> BundleJSON:
    """Sign ``payload`` (an in-toto Statement) keylessly; return the Sigstore bundle dict.

    The identity token is ``identity_token`` (``@file`` allowed), else
    ``SIGSTORE_ID_TOKEN``, else ambient CI credentials, else — when ``interactive``
    (default: when stdin is a terminal) — the browser flow of the signing config's OIDC
    provider.
    """
    from sigstore.dsse import Statement  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing
    from sigstore.errors import Error as SigstoreError  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing

    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise KeylessSigningError(f"keyless DSSE signing supports {IN_TOTO_PAYLOAD_TYPE} "
                                  f"payloads only, not {payload_type!r}", what="payload-type")
    if not isinstance(payload, (bytes, bytearray)):
        raise KeylessSigningError("payload must be bytes", what="payload")
    try:
        statement = Statement(bytes(payload))
    except SigstoreError as exc:
        raise KeylessSigningError(f"payload is not an in-toto Statement: {exc}",
                                  what="payload") from None
    return _sign_with_sigstore(lambda signer: signer.sign_dsse(statement), _KeylessRequest(
        identity_token, trust_config, staging, refresh_trust, interactive))


def sign_keyless_digest(algorithm: str, digest: bytes, *, identity_token: str | None = None,
                        trust_config: str | Path | None = None, staging: bool = False,
                        refresh_trust: bool = False,
                        interactive: bool | None = None) -> BundleJSON:
    """Sign an artifact's SHA-256 ``digest`` keylessly (what ``sigstore sign FILE`` does):
    a message-signature bundle whose log entry is a hashedrekord. The identity token is
    chosen as :func:`sign_keyless` chooses it."""
    from sigstore.hashes import Hashed  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing
    from sigstore_models.common.v1 import HashAlgorithm  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing

    if algorithm != "sha256" or len(digest) != 32:
        raise KeylessSigningError(f"keyless blob signing signs SHA-256 digests, not "
                                  f"{algorithm} ({len(digest)} bytes)", what="digest")
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes(digest))
    return _sign_with_sigstore(lambda signer: signer.sign_artifact(hashed), _KeylessRequest(
        identity_token, trust_config, staging, refresh_trust, interactive))


@dataclass(frozen=True)
class _KeylessRequest:
    """Who signs keylessly and through which services (the options of ``--keyless``)."""

    identity_token: str | None
    trust_config: str | Path | None
    staging: bool
    refresh_trust: bool
    interactive: bool | None


def _sign_with_sigstore(sign: Callable[[Any], Any], request: _KeylessRequest) -> BundleJSON:
    """Run ``sign(signer)`` with a sigstore-python signer for ``request``'s identity and
    services; map every failure to :class:`KeylessSigningError`; refuse a bundle our
    own verify would reject."""
    import requests  # noqa: PLC0415 - requests costs CLI start-up time; only keyless signing needs it here
    from sigstore.errors import Error as SigstoreError  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing
    from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing
    from sigstore._internal.rekor import RekorClientError  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing
    from sigstore._internal.timestamp import TimestampError  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing
    from sigstore.oidc import ExpiredIdentity, IdentityError, IdentityToken  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing
    from sigstore.sign import SigningContext  # noqa: PLC0415 - sigstore is heavy: it loads only for keyless signing

    config = load_sigstore_trust_config(request.trust_config, staging=request.staging,
                                        refresh_trust=request.refresh_trust)
    services = signing_services(config)
    interactive = request.interactive
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    token: TokenInfo = select_identity_token(
        request.identity_token, interactive_oidc_url=services["oidc"] if interactive else None)
    try:
        context = SigningContext.from_trust_config(config)
        with context.signer(IdentityToken(token.raw), cache=True) as signer:
            bundle = sign(signer)
    except IdentityError as exc:
        raise KeylessSigningError(f"identity token refused: {exc}", what="identity-token") \
            from None
    except requests.RequestException as exc:
        raise KeylessSigningError(f"network error talking to {services['ca']} / "
                                  f"{services['tlog']}: {exc}", what="keyless-signing") from None
    except (SigstoreError, FulcioClientError, RekorClientError, ExpiredCertificate,
            ExpiredIdentity, TimestampError, ValueError) as exc:
        message = _describe_failure(exc)
        raise KeylessSigningError(f"keyless signing failed ({type(exc).__name__}): {message}",
                                  what="keyless-signing",
                                  where=f"CA {services['ca']}, log {services['tlog']}") from None
    decoded = json.loads(bundle.to_json())
    check_own_verify_accepts(decoded, json.loads(config._inner.to_json())["trustedRoot"])
    signed: BundleJSON = decoded  # sigstore-python's v0.3 bundle, which verify just accepted
    return signed


def check_own_verify_accepts(bundle: JSONObject, trusted_root: JSONObject) -> None:
    """Refuse a bundle that ``mgattest verify`` would reject with this trusted root.

    The identity is the certificate's own (who signed is the caller's question, not
    this check's); everything else — signature, log entry, checkpoint, certificate
    chain, SCT, validity at the logged time — is verified as ``verify`` does, so a
    deployment that cannot be verified is reported at signing time, not after the
    bundle has shipped.
    """
    try:
        leaf_der = base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
        identity, issuer, _ = parse_identity(x509.load_der_x509_certificate(leaf_der))
        verify_bundle(bundle, TrustOptions(trusted_root=trusted_root, identity=IdentityPolicy(
            identity=identity, issuer=issuer)), use_local_log=False)
    except MgattestError as exc:
        raise KeylessSigningError(
            f"signed, but mgattest verify would reject the bundle, so it was not written: "
            f"{exc.message}", what="self-check", where=exc.where or "bundle") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeylessSigningError(f"the signing service returned an unusable bundle: {exc}",
                                  what="self-check") from None
