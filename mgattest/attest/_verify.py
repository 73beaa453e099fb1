"""Verify Sigstore bundles and models, in DESIGN.md's order.

1. Parse and bound the bundle (size, media type, shape) before any cryptography.
2. Signature over the DSSE PAE (or the artifact digest) with a trusted key, or with a
   certificate's key (the certificate itself is checked in step 3b).
3. Transparency log: every entry verified against the trusted logs (inclusion proof,
   checkpoint, SET), then its canonical body must bind THIS envelope, signature and
   key. 3b. Keyless: the certificate chains to a trusted CA at the verified signing
   times, and the identity matches.
4. Subjects: statement names are safe relative paths; ``verify_model`` re-hashes the
   model and compares.
5. Predicate type, if the caller expects one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence, TypeAlias, TypedDict

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store
from cryptography.x509.verification import VerificationError as PathError

from mgattest.attest import _digests as digests, _trustroot as trustroot
from mgattest._encodings import spki_der
from mgattest._jsonutil import JSONObject, JSONValue
from mgattest.attest._bundle import Bundle, load_bundle
from mgattest.attest._references import resolve_model_path
from mgattest.attest._walk import default_bundle_path
from mgattest.attest._certs import (IdentityPolicy, as_identity_check, load_certificate,
                                    parse_identity, verify_signing_certificate)
from mgattest.attest._digests import digest_target
from mgattest.attest._dsse import IN_TOTO_PAYLOAD_TYPE
from mgattest.attest.errors import (
    ArtifactMismatchError,
    BundleVerificationError,
    LogBindingError,
    PayloadTypeError,
    PredicateTypeError,
    StatementError,
    UnloggedBundleError,
)
from mgattest.attest._keys import load_verifier, public_key_from_pem
from mgattest.attest._locallog import local_trusted_logs
from mgattest.attest._modelsigning import expectations_from_model_signing
from mgattest.attest._options import CheckOptions, KeySource, TrustOptions
from mgattest.attest._results import (FileCheck, LogProof, ModelCheck, SignerInfo,
                                     VerifiedAttestation, VerifiedTime, earliest)
from mgattest.attest._signers import SignatureMismatchError, Verifier, spki_pem
from mgattest.attest._slsa import signed_ignores
from mgattest.attest._statement import ResourceDescriptor, check_subject_name, parse_statement
from mgattest.attest._timestamps import parse_rfc3161_timestamps, verify_rfc3161_timestamps
from mgattest.attest._trustroot import TrustedRoot, embedded_trusted_root
from mgattest.errors import InputError, MgattestError
from mgattest.tlog import parse_body, trusted_logs_from_root, TrustedLog, verify_entry

if TYPE_CHECKING:
    from mgattest.attest._results import TimeSource

BundleSource: TypeAlias = "Bundle | str | Path | bytes | JSONObject"
"""A bundle: parsed, a file path, its JSON bytes or its decoded JSON."""

MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
MODEL_SIGNING_PREDICATES = (MODEL_SIGNING_PREDICATE, "https://model_signing/Digests/v0.1")


# --------------------------------------------------------------------------- inputs

def names_a_digest(target: str) -> bool:
    """Whether a CLI target (``verify TARGET``) is a digest rather than a path.

    ``sha256:``/``sha384:``/``sha512:`` followed by anything, when no file of that name
    exists, is a digest, and must be a well-formed one: ``sha256:zzz`` is reported as a
    malformed digest (InputError), not as a missing file.
    """
    return digest_target(target) is not None


def parse_artifact_digest(value: str | bytes | Path | None,
                          algorithm: str = "sha256") -> tuple[str, bytes] | None:
    """``sha256:HEX`` / ``sha512:HEX`` / a file path → (algorithm, digest bytes).

    A path or bytes are hashed with ``algorithm`` (a message-signature bundle's
    ``messageDigest`` algorithm: sigstore-go signs with P-384 keys over SHA-384)."""
    if value is None:
        return None
    if isinstance(value, str):
        spec = digest_target(value)
        if spec is not None:
            return spec.algorithm, bytes.fromhex(spec.hex_digest)
    path = Path(value) if not isinstance(value, bytes) else None
    if path is None:
        assert isinstance(value, bytes)
        return algorithm, hashlib.new(algorithm, value).digest()
    if not path.is_file():
        raise InputError(f"artifact {path} is not a file (or sha256:HEX / sha512:HEX)",
                         what="artifact", where=str(path))
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return algorithm, h.digest()


def as_verifiers(keys: KeySource) -> list[Verifier]:
    """``keys`` as Verifiers: key files are read, key objects wrapped, Verifiers kept
    (callers verifying many bundles under the same keys convert them once)."""
    if keys is None:
        return []
    if isinstance(keys, (str, Path, Verifier)) or not isinstance(keys, Iterable):
        keys = [keys]
    out: list[Verifier] = []
    for key in keys:
        if isinstance(key, Verifier):
            out.append(key)
        elif isinstance(key, (str, Path)):
            out.append(load_verifier(key))
        else:
            out.append(Verifier(key))
    return out


def _hint_matches(hint: str | None, public_key: PublicKeyTypes) -> bool:
    """Accept the hint conventions in use: base64 or hex SHA-256 of the DER SPKI
    (cosign / mgattest) and hex SHA-256 of the PEM SPKI (model_signing)."""
    if not hint:
        return False

    der, pem = hashlib.sha256(spki_der(public_key)).digest(), hashlib.sha256(
        spki_pem(public_key)).digest()
    return hint in (base64.b64encode(der).decode(), der.hex(), pem.hex())


def public_key_hint(public_key: PublicKeyTypes) -> str:
    """mgattest's ``publicKey.hint``: standard base64 of SHA-256 over the DER SPKI."""
    return base64.b64encode(hashlib.sha256(spki_der(public_key)).digest()).decode()


# --------------------------------------------------------------------------- step 2

def _signed_message(bundle: Bundle, artifact: tuple[str, bytes] | None) -> tuple[bytes, bool]:
    """(data the signature covers, prehashed?) for this bundle."""
    if bundle.envelope is not None:
        return bundle.envelope.pae(), False
    ms = bundle.message_signature
    assert ms is not None
    if artifact is None:
        if not ms.digest:
            raise InputError("this bundle signs an artifact: give the artifact (a path, "
                             "or sha256:HEX)", what="artifact", where=bundle.source)
        return ms.digest, True
    alg, digest = artifact
    if ms.digest and (alg != ms.algorithm or digest != ms.digest):
        raise ArtifactMismatchError(
            f"bundle messageDigest ({ms.algorithm}:{ms.digest.hex()[:16]}…) is not the "
            f"artifact's ({alg}:{digest.hex()[:16]}…)", what="message digest",
            where=bundle.source)
    return digest, True


def _verify_signature(key: PublicKeyTypes, bundle: Bundle, message: bytes, prehashed: bool,
                      algorithm: str) -> None:
    if not prehashed:
        Verifier(key).verify(bundle.signature, message, where=bundle.source)
        return
    hash_alg = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
                "sha512": hashes.SHA512()}[algorithm]
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(bundle.signature, message, ec.ECDSA(utils.Prehashed(hash_alg)))
            return
        if isinstance(key, rsa.RSAPublicKey):
            for pad in (padding.PKCS1v15(),
                        padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)):
                try:
                    key.verify(bundle.signature, message, pad, utils.Prehashed(hash_alg))
                    return
                except InvalidSignature:
                    continue
        raise InvalidSignature()
    except (InvalidSignature, ValueError):
        raise SignatureMismatchError("message signature does not verify over the artifact "
                                     "digest", what="signature", where=bundle.source) from None


# --------------------------------------------------------------------------- step 3

def _key_from_pem_or_cert(data: bytes, where: str) -> PublicKeyTypes:
    try:
        return public_key_from_pem(data, where=where)
    except InputError as exc:
        raise LogBindingError(f"log entry verifier is unreadable: {exc.message}",
                              what="log entry", where=where) from None


def _same_key(a: PublicKeyTypes, b: PublicKeyTypes) -> bool:
    return spki_der(a) == spki_der(b)


def _b64d(value: JSONValue, where: str) -> bytes:
    if not isinstance(value, str):
        raise LogBindingError(f"log entry field {where} is not a base64 string",
                              what="log entry", where=where)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LogBindingError(f"log entry field {where} is not valid base64",
                              what="log entry", where=where) from None


def _intoto_decodings(value: JSONValue) -> tuple[bytes, ...]:
    """intoto 0.0.2 bodies base64-encode payloads and signatures twice (Rekor's
    behaviour); some writers encode once. Return every decoding that exists."""
    out: list[bytes] = []
    try:
        once = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return ()
    out.append(once)
    try:
        out.append(base64.b64decode(once, validate=True))
    except (binascii.Error, ValueError):
        pass
    return tuple(out)


def check_body_binding(body: JSONObject, bundle: Bundle, signing_key: PublicKeyTypes,
                       artifact: tuple[str, bytes] | None, *, where: str) -> None:
    """Raise :class:`LogBindingError` unless the log entry body records this bundle's
    payload (or artifact digest), signature and signing key."""
    kind, version = body.get("kind"), body.get("apiVersion")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise LogBindingError("log entry body has no spec", what="log entry", where=where)

    def mismatch(field: str) -> LogBindingError:
        return LogBindingError(f"log entry ({kind} {version}) records a different {field} "
                               "than this bundle", what="log entry binding", where=where,
                               field=field)

    sig = bundle.signature
    env = bundle.envelope
    try:
        if (kind, version) == ("dsse", "0.0.1"):
            if env is None:
                raise mismatch("content type (dsse entry for a message signature)")
            ph = spec.get("payloadHash") or {}
            if ph.get("algorithm") != "sha256" or ph.get("value") != hashlib.sha256(
                    env.payload).hexdigest():
                raise mismatch("payload")
            sigs = spec.get("signatures")
            if not isinstance(sigs, list) or len(sigs) != 1:
                raise mismatch("signature list")
            if _b64d(sigs[0].get("signature"), f"{where} signature") != sig:
                raise mismatch("signature")
            key = _key_from_pem_or_cert(_b64d(sigs[0].get("verifier"), where), where)
            if not _same_key(key, signing_key):
                raise mismatch("verifier key")
        elif (kind, version) == ("intoto", "0.0.2"):
            if env is None:
                raise mismatch("content type (intoto entry for a message signature)")
            content = spec.get("content") or {}
            ph = content.get("payloadHash") or {}
            if ph.get("value") != hashlib.sha256(env.payload).hexdigest():
                raise mismatch("payload")
            e = content.get("envelope") or {}
            if e.get("payloadType") != env.payload_type:
                raise mismatch("payloadType")
            if "payload" in e and env.payload not in _intoto_decodings(e["payload"]):
                raise mismatch("payload")
            sigs = e.get("signatures")
            if not isinstance(sigs, list) or len(sigs) != 1:
                raise mismatch("signature list")
            if sig not in _intoto_decodings(sigs[0].get("sig")):
                raise mismatch("signature")
            key = _key_from_pem_or_cert(_b64d(sigs[0].get("publicKey"), where), where)
            if not _same_key(key, signing_key):
                raise mismatch("verifier key")
        elif (kind, version) == ("hashedrekord", "0.0.1"):
            if env is not None:
                raise mismatch("content type (hashedrekord 0.0.1 entry for a DSSE envelope)")
            h = (spec.get("data") or {}).get("hash") or {}
            if artifact is None:
                raise mismatch("artifact (none given)")
            if h.get("algorithm") != artifact[0] or h.get("value") != artifact[1].hex():
                raise mismatch("artifact digest")
            s = spec.get("signature") or {}
            if _b64d(s.get("content"), where) != sig:
                raise mismatch("signature")
            key = _key_from_pem_or_cert(
                _b64d((s.get("publicKey") or {}).get("content"), where), where)
            if not _same_key(key, signing_key):
                raise mismatch("verifier key")
        elif (kind, version) in (("hashedrekord", "0.0.2"), ("dsse", "0.0.2")):
            inner = spec.get("hashedRekordV002") or spec.get("dsseV002") or {}
            if "hashedRekordV002" not in spec:
                raise mismatch("entry type (dsse 0.0.2 is not produced by Rekor v2 clients)")
            data = inner.get("data") or {}
            named = data.get("algorithm")
            alg = {"SHA2_256": "sha256", "SHA2_384": "sha384",
                   "SHA2_512": "sha512"}.get(named) if isinstance(named, str) else None
            if alg is None:
                raise mismatch("digest algorithm")
            if env is not None:
                expected = hashlib.new(alg, env.pae()).digest()
            else:
                if artifact is None:
                    raise mismatch("artifact (none given)")
                if artifact[0] != alg:
                    raise mismatch("digest algorithm")
                expected = artifact[1]
            if _b64d(data.get("digest"), where) != expected:
                raise mismatch("signed digest")
            s = inner.get("signature") or {}
            if _b64d(s.get("content"), where) != sig:
                raise mismatch("signature")
            verifier = s.get("verifier") or {}
            if "x509Certificate" in verifier:
                der = _b64d((verifier["x509Certificate"] or {}).get("rawBytes"), where)
            else:
                der = _b64d((verifier.get("publicKey") or {}).get("rawBytes"), where)
            if not _same_key(_key_from_pem_or_cert(der, where), signing_key):
                raise mismatch("verifier key")
        else:
            raise LogBindingError(f"unsupported log entry kind {kind} {version}",
                                  what="log entry", where=where)
    except (AttributeError, TypeError, UnicodeDecodeError):
        raise LogBindingError("log entry body is malformed", what="log entry",
                              where=where) from None


def _trusted_logs(root: TrustedRoot | None, extra: Sequence[TrustedLog]) -> list[TrustedLog]:
    logs = list(extra)
    if root is not None and root.tlogs:
        known = {log.log_id for log in logs}
        logs += [log for log in trusted_logs_from_root(root.to_dict())
                 if log.log_id not in known]
    return logs


def _verify_log_entries(bundle: Bundle, root: TrustedRoot | None, extra_logs: Sequence[TrustedLog],
                        signing_key: PublicKeyTypes,
                        artifact: tuple[str, bytes] | None, allow_unlogged: bool,
                        origin: str | None, stamped: Sequence[VerifiedTime] = ()
                        ) -> tuple[list[LogProof], list[str]]:
    """Verify every log entry and its binding to this bundle; return the proofs and
    notes on what was judged without evidence. ``stamped`` are the bundle's verified
    RFC 3161 times: an entry without a SET has no time of its own, so its log key must
    have been valid at those (or, lacking them, now — which a note says)."""
    if not bundle.tlog_entries:
        if allow_unlogged:
            return [], []
        raise UnloggedBundleError(
            "bundle carries no transparency-log entry (pass --allow-unlogged to accept "
            "key-only signatures)", what="transparency log", where=bundle.source)

    logs = _trusted_logs(root, extra_logs)
    if not logs:
        raise BundleVerificationError(
            "bundle has a transparency-log entry but no log is trusted (give --trusted-root, "
            "or verify on the machine that owns the log)", what="transparency log",
            where=bundle.source)
    proofs, notes = [], []
    for i, entry in enumerate(bundle.tlog_entries):
        where = f"{bundle.source} tlogEntries[{i}] (claimed logIndex {entry.claimed_log_index})"
        verified = verify_entry(entry, logs, origin=origin,
                                require_inclusion_proof=bundle.version != "0.1",
                                verified_times=[t.seconds for t in stamped])
        check_body_binding(parse_body(verified.body), bundle, signing_key, artifact,
                           where=where)
        proofs.append(_log_proof(verified))
        if verified.window_checked_at == "now":
            notes.append(f"tlogEntries[{i}]: the log key's validity was judged at the current "
                         "time: the entry has no verified time (no SET, no RFC 3161 timestamp)")
        if verified.log_index is None:
            notes.append(f"tlogEntries[{i}]: logIndex {verified.claimed_log_index} is claimed, "
                         "not proven")
    return proofs, notes


def _log_proof(verified: Any) -> LogProof:
    """The policy-facing record of a verified entry; the integrated time becomes a
    :class:`VerifiedTime` only when the entry's SET verified."""
    set_time = None
    if verified.integrated_time is not None and verified.set_verified:
        set_time = VerifiedTime(verified.integrated_time, "set",
                                f"log {verified.log_id[:16]}… index {verified.log_index}")
    return LogProof(
        log_id=verified.log_id, log_index=verified.log_index, integrated_time=set_time,
        kind=verified.kind, kind_version=verified.kind_version,
        inclusion_proof_verified=verified.inclusion_proof_verified,
        checkpoint_origin=verified.checkpoint_origin, tree_size=verified.tree_size,
        set_verified=verified.set_verified, leaf_hash=verified.leaf_hash.hex(),
        claimed_log_index=verified.claimed_log_index,
        claimed_integrated_time=verified.claimed_integrated_time,
        checkpoint_note=verified.checkpoint_note)


def _verified_timestamps(bundle: Bundle, root: TrustedRoot | None) -> tuple[list[VerifiedTime], list[str]]:
    """The bundle's RFC 3161 timestamps, verified in every mode (key, certificate
    chain, keyless), and notes on any that could not be.

    A timestamp that does not decode is a rejection; so is a set of timestamps none of
    which the trusted root's authorities vouch for. With several, at least one must
    verify (sigstore-go's and sigstore-python's threshold) and the others are reported in
    the notes. Without any trusted root (key mode), they are decoded, not used, and
    reported — never silently ignored.
    """
    raw_ts = ((bundle.raw.get("verificationMaterial") or {}).get(
        "timestampVerificationData") or {}).get("rfc3161Timestamps") or []
    if not raw_ts:
        return [], []
    if root is None:
        count = len(parse_rfc3161_timestamps(raw_ts))
        return [], [f"{count} RFC 3161 timestamp(s) not verified and not used: no trusted "
                    "root with timestamp authorities was given"]
    notes: list[str] = []
    return verify_rfc3161_timestamps(raw_ts, bundle.signature, root, unverified=notes), notes


# --------------------------------------------------------------------------- step 3b

def _verify_keyless(bundle: Bundle, root: TrustedRoot | None, signing_times: Sequence[VerifiedTime],
                    identity: Any) -> SignerInfo:
    """Certificate branch: chain, SCT, validity at the verified signing times
    (SET-backed integrated times, RFC 3161 timestamps), identity policy."""
    if root is None:
        raise InputError("a certificate-signed bundle needs a trusted root (--trusted-root, "
                         "or --instance production|staging)", what="trusted root",
                         where=bundle.source)
    if identity is None:
        raise InputError("a certificate-signed bundle needs an identity policy "
                         "(--identity/--identity-regex with --issuer)", what="identity",
                         where=bundle.source)
    identity = as_identity_check(identity)
    if isinstance(identity, IdentityPolicy) and not identity.issuer:
        # any OIDC provider could mint the same identity
        raise InputError("a keyless identity needs its OIDC issuer too (--issuer)",
                         what="identity", where=bundle.source)
    assert bundle.certificate_der is not None
    signer = verify_signing_certificate(bundle.certificate_der, list(bundle.chain_der),
                                        root, list(signing_times))
    identity.check(signer)
    return signer


def verify_certificate_chain(bundle: Bundle, anchors_pem: bytes, *,
                             at_time: VerifiedTime | None = None) -> SignerInfo:
    """Private-CA certificate mode (model_signing ``certificate``): the leaf must chain
    to a certificate in ``anchors_pem`` (bundle intermediates allowed), be valid at
    ``at_time`` (a verified signing time, else now), be an end-entity certificate for
    code signing (extended key usage codeSigning, and digitalSignature when it has a
    key usage extension), as cosign requires with ``--certificate-chain``."""
    assert bundle.certificate_der is not None

    try:
        anchors = x509.load_pem_x509_certificates(anchors_pem)
    except ValueError as exc:
        raise InputError(f"cannot parse the --certificate-chain certificates: {exc}",
                         what="certificate-chain") from None
    leaf = load_certificate(bundle.certificate_der, f"{bundle.source} certificate")
    intermediates = [load_certificate(d, f"{bundle.source} chain[{i + 1}]")
                     for i, d in enumerate(bundle.chain_der)]
    when = (datetime.fromtimestamp(at_time.seconds, tz=timezone.utc) if at_time is not None
            else datetime.now(timezone.utc))
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
    verifier = (PolicyBuilder().store(Store(anchors)).time(when)
                .extension_policies(ca_policy=ca_policy,
                                    ee_policy=ExtensionPolicy.permit_all())
                .build_client_verifier())
    try:
        verifier.verify(leaf, intermediates)
    except PathError as exc:
        raise BundleVerificationError(
            f"signing certificate does not chain to the given CA at {when.isoformat()}: {exc}",
            what="certificate chain", where=bundle.source) from None
    warnings = _ca_signer_warnings(leaf, bundle.source)
    _require_code_signing(leaf, bundle.source)

    try:
        ident, issuer, extensions = parse_identity(leaf)
    except MgattestError:  # a private-CA leaf may lack a SAN: identity is optional here
        ident, issuer, extensions = None, None, {}
    return SignerInfo(kind="certificate",
                      key_fingerprint=hashlib.sha256(spki_der(leaf.public_key())).hexdigest(),
                      identity=ident or leaf.subject.rfc4514_string(), issuer=issuer,
                      extensions=extensions,
                      certificate_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
                      not_before=int(leaf.not_valid_before_utc.timestamp()),
                      not_after=int(leaf.not_valid_after_utc.timestamp()),
                      warnings=warnings)


def _ca_signer_warnings(leaf: x509.Certificate, source: str) -> tuple[str, ...]:
    """A private-CA signing certificate marked CA:TRUE: model_signing accepts it, so
    mgattest does too (when it is issued for code signing, checked next), with a warning
    in the verdict. A self-signed one is the trust anchor itself signing:
    refused."""
    try:
        is_ca = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return ()
    if not is_ca:
        return ()
    if leaf.issuer == leaf.subject:
        raise BundleVerificationError("signing certificate is a self-signed CA certificate",
                                      what="certificate", where=source)
    return ("signing certificate is marked CA:TRUE (accepted as model_signing accepts it; "
            "ask your CA for CA:FALSE)",)


def _verify_private_ca(bundle: Bundle, anchors_pem: bytes,
                       signing_times: Sequence[VerifiedTime],
                       identity: Any) -> tuple[SignerInfo, list[str]]:
    """``--certificate-chain`` mode: the chain, the code-signing usage, the identity
    when one is given; notes say what was judged without evidence (no verified time:
    validity at now; no identity constraint: any code-signing certificate of the CA)."""
    at_time = earliest(signing_times)
    signer = verify_certificate_chain(bundle, anchors_pem, at_time=at_time)
    notes = []
    if at_time is None:
        notes.append("certificate validity judged at the current time: no verified signing "
                     "time (SET or RFC 3161 timestamp)")
    if identity is None:
        notes.append("no identity constraint was given: any code-signing certificate issued "
                     "by the given CA is accepted (pass --identity)")
    else:
        as_identity_check(identity).check(signer)
    return signer, notes


def _require_code_signing(leaf: x509.Certificate, source: str) -> None:
    """A signing certificate must be issued for code signing: EKU codeSigning, and
    digitalSignature in its key usage when it has one. A CA's TLS or e-mail leaf
    (digitalSignature alone) does not vouch for models."""
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not key_usage.digital_signature:
            raise BundleVerificationError("signing certificate's key usage does not allow "
                                          "digitalSignature", what="certificate key usage",
                                          where=source)
    except x509.ExtensionNotFound:
        pass
    usages: list[x509.ObjectIdentifier] = []
    try:
        usages = list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        pass
    if ExtendedKeyUsageOID.CODE_SIGNING not in usages:
        raise BundleVerificationError("signing certificate is not issued for code signing "
                                      "(no extended key usage codeSigning)",
                                      what="certificate extended key usage", where=source)


# --------------------------------------------------------------------------- API

@dataclass(frozen=True)
class _Signing:
    key: PublicKeyTypes
    signer: SignerInfo | None  # known before the log step (key mode)


def _select_key(bundle: Bundle, verifiers: list[Verifier], message: bytes, prehashed: bool,
                algorithm: str, identity_required: bool) -> _Signing:
    if not verifiers:
        if identity_required:  # a certificate identity was asked for; a bare key has none
            raise BundleVerificationError(
                "bundle is signed with a bare key, but a certificate identity was required",
                what="identity", where=bundle.source)
        raise InputError("this bundle is signed with a key: give the trusted public key "
                         "(--key PUB.pem)", what="key", where=bundle.source)
    ordered = sorted(verifiers, key=lambda v: not _hint_matches(bundle.public_key_hint,
                                                                v.public_key))
    for v in ordered:
        try:
            if prehashed:
                _verify_signature(v.public_key, bundle, message, True, algorithm)
            else:
                v.verify(bundle.signature, message, where=bundle.source)
        except SignatureMismatchError:
            continue
        # The hint is the bundle's claim: pass it on only when it names this key.
        hint = bundle.public_key_hint if _hint_matches(bundle.public_key_hint,
                                                       v.public_key) else None
        return _Signing(v.public_key, SignerInfo(kind="key", key_fingerprint=v.fingerprint,
                                                 key_hint=hint))
    names = ", ".join(v.fingerprint[:16] for v in verifiers)
    raise SignatureMismatchError(
        f"bundle signature does not verify with any trusted key ({names})",
        what="signature", where=bundle.source)


def instance_root_for(bundle: Bundle) -> TrustedRoot | None:
    """Sigstore's embedded production trusted root when its logs recorded this bundle,
    else None. Offline: the root shipped inside the ``sigstore`` package.

    The bundle's ``logId`` is a claim: it may choose among roots the operator trusts
    by default (production), never widen trust. A bundle of the staging instance
    needs ``--instance staging`` (as sigstore-python needs ``--staging``).
    """
    wanted = _claimed_log_ids(bundle)
    if not wanted:
        return None
    production = embedded_trusted_root("production")
    if any(t.log_id in wanted for t in production.tlogs):
        return production
    if any(t.log_id in wanted for t in embedded_trusted_root("staging").tlogs):
        raise InputError("this bundle was logged by Sigstore's staging instance, which is "
                         "not trusted by default: pass --instance staging to trust it",
                         what="trusted root", where=bundle.source)
    return None


def _claimed_log_ids(bundle: Bundle) -> set[bytes]:
    """The log ids the bundle's entries claim (parsed, not yet verified)."""
    return {entry.log_id for entry in bundle.tlog_entries}


def verify_bundle(bundle: BundleSource, trust: TrustOptions | None = None, *,
                  allow_unlogged: bool = False,
                  artifact_digest: str | bytes | Path | None = None,
                  expected_predicate_type: str | None = None, origin: str | None = None,
                  use_local_log: bool = True) -> VerifiedAttestation:
    """Verify one Sigstore bundle and return what it proves.

    ``bundle``: a path, JSON bytes, a decoded dict or a parsed :class:`Bundle`.
    ``trust`` (:class:`~mgattest.attest._options.TrustOptions`): ``keys``, trusted public
    keys (paths, key objects or :class:`Verifier`) for key mode; ``trusted_root``, a
    path/dict/TrustedRoot listing trusted logs, CAs, TSAs (the embedded local log, see
    :mod:`locallog`, is trusted too when it exists and ``use_local_log``); ``identity``,
    an ``IdentityPolicy`` (or its kwargs) for certificate bundles; ``certificate_chain``,
    PEM anchors for private-CA certificate bundles.
    ``artifact_digest``: ``sha256:HEX``, a file path or bytes. messageSignature bundles:
    must equal the bundle's messageDigest (without it, the signed messageDigest is what
    is verified and reported as ``message_digest``); DSSE bundles: must be a subject.
    Raises :class:`~mgattest.errors.VerificationError` subclasses on any failure.
    """
    trust = trust or TrustOptions()
    trusted_root, keys, identity = trust.trusted_root, trust.keys, trust.identity
    certificate_chain = trust.certificate_chain
    # (1) parse and bound
    parsed = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    root = trustroot.as_trusted_root(trusted_root)
    if root is None and parsed.certificate_der is not None and certificate_chain is None:
        root = instance_root_for(parsed)
    extra_logs: list[Any] = []
    if use_local_log:
        extra_logs = local_trusted_logs()
    artifact = parse_artifact_digest(artifact_digest, algorithm=(
        parsed.message_signature.algorithm if parsed.message_signature else "sha256"))
    verifiers = as_verifiers(keys)
    if parsed.envelope is not None and parsed.envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise PayloadTypeError(
            f"DSSE payloadType {parsed.envelope.payload_type!r} is not "
            f"{IN_TOTO_PAYLOAD_TYPE}", what="payloadType", where=parsed.source)

    # (2) signature
    message, prehashed = _signed_message(parsed, artifact)
    algorithm = (parsed.message_signature.algorithm if parsed.message_signature else "sha256")
    if parsed.message_signature is not None and artifact is None:
        artifact = (parsed.message_signature.algorithm, parsed.message_signature.digest)
    if parsed.certificate_der is not None:
        leaf_key = load_certificate(parsed.certificate_der,
                                    f"{parsed.source} certificate").public_key()
        _verify_signature(leaf_key, parsed, message, prehashed, algorithm)
        signing = _Signing(leaf_key, None)
    else:
        signing = _select_key(parsed, verifiers, message, prehashed, algorithm,
                              identity is not None)

    # (3) RFC 3161 timestamps (every mode), log entries, then (3b) the certificate at
    # the verified times. Only verified times flow on: SETs and RFC 3161 timestamps.
    stamped, notes = _verified_timestamps(parsed, root)
    proofs, log_notes = _verify_log_entries(parsed, root, extra_logs, signing.key, artifact,
                                            allow_unlogged, origin, stamped)
    notes += log_notes
    signing_times = tuple(p.integrated_time for p in proofs
                          if p.integrated_time is not None) + tuple(stamped)
    signer = signing.signer
    if signer is None:
        if certificate_chain is not None:
            signer, chain_notes = _verify_private_ca(parsed, certificate_chain,
                                                     signing_times, identity)
            notes += chain_notes
        else:
            signer = _verify_keyless(parsed, root, signing_times, identity)

    # (4) statement and subject names, (5) predicate type
    statement = predicate = predicate_type = None
    subjects: list[ResourceDescriptor] = []
    payload_sha256 = None
    if parsed.envelope is not None:
        try:
            statement = parse_statement(parsed.envelope.payload, where=parsed.source)
        except StatementError as exc:  # signed, but not a statement: a rejection
            raise BundleVerificationError(f"signed payload: {exc.message}", what=exc.what,
                                          where=parsed.source) from None
        subjects = statement["subject"]
        for i, subject in enumerate(subjects):
            check_subject_name(subject.get("name"), where=f"{parsed.source} subject {i}")
        predicate_type = statement["predicateType"]
        predicate = statement.get("predicate")
        payload_sha256 = hashlib.sha256(parsed.envelope.payload).hexdigest()
        if expected_predicate_type and predicate_type != expected_predicate_type:
            raise PredicateTypeError(f"predicateType {predicate_type!r} is not the expected "
                                     f"{expected_predicate_type!r}", what="predicateType",
                                     where=parsed.source)
        if artifact is not None:
            alg, digest = artifact
            if not any(s.get("digest", {}).get(alg) == digest.hex() for s in subjects):
                raise ArtifactMismatchError(
                    f"no statement subject has {alg} digest {digest.hex()}",
                    what="subject digest", where=parsed.source)
    if expected_predicate_type and parsed.envelope is None:
        raise PredicateTypeError(f"expected predicateType {expected_predicate_type!r}, but "
                                 "the bundle signs an artifact, not a statement",
                                 what="predicateType", where=parsed.source)
    message_digest = None
    if parsed.message_signature is not None and artifact is not None:
        message_digest = {artifact[0]: artifact[1].hex()}
    return VerifiedAttestation(
        source=parsed.source, media_type=parsed.media_type, statement=statement,
        predicate_type=predicate_type, predicate=predicate, subjects=subjects,
        signer=signer, log_entries=proofs, message_digest=message_digest,
        payload_sha256=payload_sha256, signing_times=signing_times, notes=tuple(notes))


def verify_model(model: str | Path, bundles: BundleSource | Sequence[BundleSource] | None = None,
                 trust: TrustOptions | None = None, *, allow_unlogged: bool = False,
                 check: CheckOptions | None = None,
                 expected_predicate_type: str | None = None,
                 ) -> tuple[list[VerifiedAttestation], ModelCheck]:
    """Verify every bundle of a model, then re-hash the model against the subjects.

    ``bundles`` defaults to ``<model>.sigstore.json``; ``trust`` says who is trusted
    (see :func:`verify_bundle`). Of ``check``, ``ignore`` (added to the statement's
    signed ignores), ``allow_symlinks``, ``allow_unsigned_files`` and ``progress``
    apply (the bundle files themselves are always excluded). Returns the verified
    attestations and the last model check; raises on the first failure (a bundle that
    does not verify, or a file that is missing, extra or changed, naming the file and
    shard).
    """
    check = check or CheckOptions()
    ignore, allow_symlinks = check.ignore, check.allow_symlinks
    allow_unsigned_files, progress = check.allow_unsigned_files, check.progress
    model = Path(resolve_model_path(model))
    if not model.exists() and not model.is_symlink():
        raise InputError(f"model {model} does not exist", what="model", where=str(model))
    bundle_list: Sequence[BundleSource]
    if bundles is None:
        bundle_list = [default_bundle_path(model)]
    elif isinstance(bundles, (str, Path, dict, bytes, Bundle)):
        bundle_list = [bundles]
    else:
        bundle_list = bundles
    bundle_paths = [b for b in bundle_list if isinstance(b, (str, Path))]
    attestations = []
    for b in bundle_list:
        parsed = b if isinstance(b, Bundle) else load_bundle(b)
        artifact = model if parsed.message_signature is not None else None
        if artifact is not None and not model.is_file():
            raise InputError("a message-signature bundle signs one file, but the model is "
                             "a directory", what="model", where=str(model))
        attestations.append(verify_bundle(
            parsed, trust, allow_unlogged=allow_unlogged, artifact_digest=artifact,
            expected_predicate_type=expected_predicate_type))
    model_check = None
    for att in attestations:
        if att.statement is None:  # message signature: the artifact digest was checked
            model_check = ModelCheck(str(model), [FileCheck(
                model.name, "ok", att.message_digest, "message signature over the file")])
            continue

        kwargs: dict[str, Any] = dict(ignore=list(ignore) + signed_ignores(att.statement),
                                      exclude=bundle_paths,
                                      allow_unsigned_files=allow_unsigned_files)
        if progress is not None:
            kwargs["progress"] = progress
        if att.predicate_type in MODEL_SIGNING_PREDICATES:
            expectations = expectations_from_model_signing(att.statement)
            model_check = expectations.check(model, **kwargs)
        else:
            if not att.subjects:
                raise BundleVerificationError("bundle has no statement subjects to check a "
                                              "model against", what="subjects",
                                              where=att.source)
            model_check = digests.check_model(model, att.subjects, CheckOptions(
                allow_symlinks=allow_symlinks, **kwargs))
        digests.raise_for_model_check(model_check)
    assert model_check is not None
    return attestations, model_check


class VerifiedTimeJSON(TypedDict):
    """:class:`~mgattest.attest._results.VerifiedTime` in ``--json`` output."""

    seconds: int
    source: TimeSource
    where: str


class LogProofJSON(TypedDict):
    """:class:`~mgattest.attest._results.LogProof` in ``--json`` output."""

    log_id: str
    log_index: int | None
    integrated_time: VerifiedTimeJSON | None
    kind: str
    kind_version: str
    inclusion_proof_verified: bool
    checkpoint_origin: str | None
    tree_size: int | None
    set_verified: bool
    leaf_hash: str
    claimed_log_index: int | None
    claimed_integrated_time: int | None
    checkpoint_note: str | None  # the verified checkpoint, witness cosignatures included


class SignerInfoJSON(TypedDict):
    """:class:`~mgattest.attest._results.SignerInfo` in ``--json`` output."""

    kind: str
    key_fingerprint: str
    key_hint: str | None
    identity: str | None
    issuer: str | None
    extensions: dict[str, str]
    certificate_pem: str | None
    not_before: int | None
    not_after: int | None
    warnings: list[str]


class AttestationSummaryJSON(TypedDict):
    """:func:`attestation_to_json`: a verified attestation's fields (tuples as lists)
    without its statement and subjects, plus how many subjects it has. The predicate is
    whatever the attestation's type defines, so it stays arbitrary JSON."""

    source: str
    media_type: str
    predicate_type: str | None
    predicate: JSONObject | None
    signer: SignerInfoJSON
    log_entries: list[LogProofJSON]
    message_digest: dict[str, str] | None
    payload_sha256: str | None
    signing_times: list[VerifiedTimeJSON]
    notes: list[str]
    subject_count: int


def attestation_to_json(att: VerifiedAttestation) -> AttestationSummaryJSON:
    """A JSON-ready summary of a verified attestation (for ``--json`` output)."""
    out = asdict(att)
    out.pop("statement", None)
    out["subject_count"] = len(att.subjects)
    out.pop("subjects", None)
    # The dataclass fields above, round-tripped through JSON: the shape is the one declared.
    summary: AttestationSummaryJSON = json.loads(json.dumps(out, default=str))
    return summary
