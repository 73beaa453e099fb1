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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from mgattest.attest.bundle import Bundle, load_bundle
from mgattest.attest.dsse import IN_TOTO_PAYLOAD_TYPE
from mgattest.attest.results import (FileCheck, LogProof, ModelCheck, SignerInfo,
                                     VerifiedAttestation)
from mgattest.attest.signers import SignatureMismatchError, Verifier, spki_der
from mgattest.attest.statement import StatementError, check_subject_name, parse_statement
from mgattest.errors import InputError, MgattestError, VerificationError

MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
MODEL_SIGNING_PREDICATES = (MODEL_SIGNING_PREDICATE, "https://model_signing/Digests/v0.1")


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


# --------------------------------------------------------------------------- inputs

def parse_artifact_digest(value: str | bytes | Path | None) -> tuple[str, bytes] | None:
    """``sha256:HEX`` / ``sha512:HEX`` / a file path → (algorithm, digest bytes)."""
    if value is None:
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"(sha256|sha384|sha512):([0-9a-fA-F]+)", value)
        if match:
            alg, hexval = match.group(1), match.group(2).lower()
            if len(hexval) != hashlib.new(alg).digest_size * 2:
                raise InputError(f"artifact digest {value!r} has the wrong length for {alg}",
                                 what="artifact digest")
            return alg, bytes.fromhex(hexval)
    path = Path(value) if not isinstance(value, bytes) else None
    if path is None:
        assert isinstance(value, bytes)
        return "sha256", hashlib.sha256(value).digest()
    if not path.is_file():
        raise InputError(f"artifact {path} is not a file (or sha256:HEX / sha512:HEX)",
                         what="artifact", where=str(path))
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256", h.digest()


def _as_verifiers(keys: Any) -> list[Verifier]:
    if keys is None:
        return []
    if isinstance(keys, (str, Path, Verifier)) or not isinstance(keys, Iterable):
        keys = [keys]
    out: list[Verifier] = []
    for key in keys:
        if isinstance(key, Verifier):
            out.append(key)
        elif isinstance(key, (str, Path)):
            from mgattest.attest.keys import load_verifier

            out.append(load_verifier(key))
        else:
            out.append(Verifier(key))
    return out


def _as_trusted_root(trusted_root: Any) -> Any:
    """None, a TrustedRoot, a dict, or a path → a TrustedRoot (or None)."""
    from mgattest.attest import trustroot

    if trusted_root is None or isinstance(trusted_root, trustroot.TrustedRoot):
        return trusted_root
    if isinstance(trusted_root, (str, Path)):
        return trustroot.load_trusted_root(trusted_root)
    if isinstance(trusted_root, dict):
        if trusted_root.get("mediaType") == trustroot.CLIENT_TRUST_CONFIG_MEDIA_TYPE:
            return trustroot.parse_client_trust_config(trusted_root).trusted_root
        return trustroot.parse_trusted_root(trusted_root)
    raise InputError(f"unsupported trusted root {type(trusted_root).__name__}",
                     what="trusted root")


def _hint_matches(hint: str | None, public_key: Any) -> bool:
    """Accept the hint conventions in use: base64 or hex SHA-256 of the DER SPKI
    (cosign / mgattest) and hex SHA-256 of the PEM SPKI (model_signing)."""
    if not hint:
        return False
    from mgattest.attest.signers import spki_pem

    der, pem = hashlib.sha256(spki_der(public_key)).digest(), hashlib.sha256(
        spki_pem(public_key)).digest()
    return hint in (base64.b64encode(der).decode(), der.hex(), pem.hex())


def public_key_hint(public_key: Any) -> str:
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


def _verify_signature(key: Any, bundle: Bundle, message: bytes, prehashed: bool,
                      algorithm: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

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

def _key_from_pem_or_cert(data: bytes, where: str) -> Any:
    from mgattest.attest.keys import public_key_from_pem

    try:
        return public_key_from_pem(data, where=where)
    except InputError as exc:
        raise LogBindingError(f"log entry verifier is unreadable: {exc.message}",
                              what="log entry", where=where) from None


def _same_key(a: Any, b: Any) -> bool:
    return spki_der(a) == spki_der(b)


def _b64d(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise LogBindingError(f"log entry field {where} is not a base64 string",
                              what="log entry", where=where)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LogBindingError(f"log entry field {where} is not valid base64",
                              what="log entry", where=where) from None


def _intoto_decodings(value: Any) -> tuple[bytes, ...]:
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


def check_body_binding(body: dict[str, Any], bundle: Bundle, signing_key: Any,
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
            alg = {"SHA2_256": "sha256", "SHA2_384": "sha384",
                   "SHA2_512": "sha512"}.get(data.get("algorithm"))
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


def _trusted_logs(root: Any, extra: Sequence[Any]) -> list[Any]:
    from mgattest.tlog.trust import trusted_logs_from_root

    logs = list(extra)
    if root is not None and root.tlogs:
        known = {log.log_id for log in logs}
        logs += [log for log in trusted_logs_from_root(root.to_dict())
                 if log.log_id not in known]
    return logs


def _verify_log_entries(bundle: Bundle, root: Any, extra_logs: Sequence[Any], signing_key: Any,
                        artifact: tuple[str, bytes] | None, allow_unlogged: bool,
                        origin: str | None) -> list[LogProof]:
    if not bundle.tlog_entries:
        if allow_unlogged:
            return []
        raise UnloggedBundleError(
            "bundle carries no transparency-log entry (pass --allow-unlogged to accept "
            "key-only signatures)", what="transparency log", where=bundle.source)
    from mgattest.tlog.entries import parse_body
    from mgattest.tlog.verify import verify_entry

    logs = _trusted_logs(root, extra_logs)
    if not logs:
        raise BundleVerificationError(
            "bundle has a transparency-log entry but no log is trusted (give --trusted-root, "
            "or verify on the machine that owns the log)", what="transparency log",
            where=bundle.source)
    proofs = []
    for i, entry in enumerate(bundle.tlog_entries):
        where = f"{bundle.source} tlogEntries[{i}] (logIndex {entry.get('logIndex')})"
        verified = verify_entry(entry, logs, origin=origin,
                                require_inclusion_proof=bundle.version != "0.1")
        body = getattr(verified, "body", None)
        if isinstance(body, (bytes, bytearray)):
            body = parse_body(bytes(body))
        if not isinstance(body, dict):
            body = parse_body(base64.b64decode(entry["canonicalizedBody"]))
        check_body_binding(body, bundle, signing_key, artifact, where=where)
        proofs.append(LogProof(
            log_id=verified.log_id, log_index=verified.log_index,
            integrated_time=verified.integrated_time, kind=verified.kind,
            kind_version=verified.kind_version,
            inclusion_proof_verified=verified.inclusion_proof_verified,
            checkpoint_origin=getattr(verified, "checkpoint_origin", None),
            tree_size=getattr(verified, "tree_size", None),
            set_verified=verified.set_verified))
    return proofs


# --------------------------------------------------------------------------- step 3b

def _verify_keyless(bundle: Bundle, root: Any, proofs: list[LogProof],
                    identity: Any) -> SignerInfo:
    """Certificate branch (owned with the keyless helper): chain, SCT, validity at the
    verified signing times (SET-backed integrated times, RFC 3161), identity policy."""
    from mgattest.attest.certs import IdentityPolicy, verify_signing_certificate
    from mgattest.attest.timestamps import verify_rfc3161_timestamps

    if root is None:
        raise InputError("a certificate-signed bundle needs a trusted root (--trusted-root, "
                         "or --instance production|staging)", what="trusted root",
                         where=bundle.source)
    times = [p.integrated_time for p in proofs
             if p.integrated_time is not None and p.set_verified]
    raw_ts = ((bundle.raw.get("verificationMaterial") or {}).get(
        "timestampVerificationData") or {}).get("rfc3161Timestamps") or []
    if raw_ts:
        stamped = verify_rfc3161_timestamps(raw_ts, bundle.signature, root)
        _require_log_valid_at(proofs, root, stamped, bundle.source)
        times += stamped
    assert bundle.certificate_der is not None
    signer = verify_signing_certificate(bundle.certificate_der, list(bundle.chain_der),
                                        root, times)
    if identity is None:
        raise InputError("a certificate-signed bundle needs an identity policy "
                         "(--identity/--identity-regex with --issuer)", what="identity",
                         where=bundle.source)
    if isinstance(identity, dict):
        identity = IdentityPolicy(**identity)
    identity.check(signer)
    return signer


def _require_log_valid_at(proofs: list[LogProof], root: Any, stamped: list[int],
                          source: str) -> None:
    """Entries without an integrated time (Rekor v2) get their time from RFC 3161
    timestamps: the log key must have been valid then, as it must be at integratedTime
    for v1 entries (which tlog.verify checks)."""
    from datetime import datetime, timezone

    undated = [p for p in proofs if p.integrated_time is None]
    if not undated or not stamped:
        return
    logs = {log.log_id.hex(): log for log in _trusted_logs(root, [])}
    for proof in undated:
        log = logs.get(proof.log_id)
        if log is None:
            continue  # a log the local machine trusts directly carries no window
        for t in stamped:
            if not log.valid_at(datetime.fromtimestamp(t, tz=timezone.utc)):
                raise BundleVerificationError(
                    f"log {proof.log_id[:16]}… was not a trusted log at the timestamped "
                    f"signing time {datetime.fromtimestamp(t, tz=timezone.utc).isoformat()}",
                    what="transparency log validity",
                    where=f"{source} (log index {proof.log_index})")


def verify_certificate_chain(bundle: Bundle, anchors_pem: bytes, *,
                             at_time: int | None = None) -> SignerInfo:
    """Private-CA certificate mode (model_signing ``certificate``): the leaf must chain
    to a certificate in ``anchors_pem`` (bundle intermediates allowed), be valid at
    ``at_time`` (a verified signing time, else now) and allow digital signatures."""
    from datetime import datetime, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from cryptography.x509.verification import (Criticality, ExtensionPolicy, PolicyBuilder,
                                                Store)
    from cryptography.x509.verification import VerificationError as PathError

    assert bundle.certificate_der is not None
    try:
        anchors = x509.load_pem_x509_certificates(anchors_pem)
        leaf = x509.load_der_x509_certificate(bundle.certificate_der)
        intermediates = [x509.load_der_x509_certificate(d) for d in bundle.chain_der]
    except ValueError as exc:
        raise InputError(f"cannot parse certificates: {exc}", what="certificate",
                         where=bundle.source) from None
    when = (datetime.fromtimestamp(at_time, tz=timezone.utc) if at_time is not None
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
    usable = False
    try:
        usable = leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    except x509.ExtensionNotFound:
        pass
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        usable = usable or ExtendedKeyUsageOID.CODE_SIGNING in eku
    except x509.ExtensionNotFound:
        pass
    if not usable:
        raise BundleVerificationError("signing certificate allows neither digitalSignature "
                                      "nor codeSigning", what="certificate key usage",
                                      where=bundle.source)
    from mgattest.attest.certs import parse_identity

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


def _ca_signer_warnings(leaf: Any, source: str) -> tuple[str, ...]:
    """A private-CA signing certificate marked CA:TRUE: model_signing accepts it when it
    may sign (digitalSignature or codeSigning, checked next), so mgattest does too, with
    a warning in the verdict. A self-signed one is the trust anchor itself signing:
    refused."""
    from cryptography import x509

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


# --------------------------------------------------------------------------- API

@dataclass(frozen=True)
class _Signing:
    key: Any
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
        return _Signing(v.public_key, SignerInfo(kind="key", key_fingerprint=v.fingerprint,
                                                 key_hint=bundle.public_key_hint or None))
    names = ", ".join(v.fingerprint[:16] for v in verifiers)
    raise SignatureMismatchError(
        f"bundle signature does not verify with any trusted key ({names})",
        what="signature", where=bundle.source)


def instance_root_for(bundle: Bundle) -> Any:
    """The embedded Sigstore trusted root (production, then staging) whose logs recorded
    this bundle, or None. Offline: the roots shipped inside the ``sigstore`` package."""
    from mgattest.attest.trustroot import embedded_trusted_root

    wanted = set()
    for entry in bundle.tlog_entries:
        key_id = ((entry.get("logId") or {}).get("keyId")) if isinstance(entry, dict) else None
        if isinstance(key_id, str):
            try:
                wanted.add(base64.b64decode(key_id, validate=True))
            except (ValueError, binascii.Error):
                continue
    if not wanted:
        return None
    for instance in ("production", "staging"):
        root = embedded_trusted_root(instance)
        if any(t.log_id in wanted for t in root.tlogs):
            return root
    return None


def verify_bundle(bundle: Any, *, trusted_root: Any = None, keys: Any = None,
                  identity: Any = None, allow_unlogged: bool = False,
                  artifact_digest: Any = None, certificate_chain: bytes | None = None,
                  expected_predicate_type: str | None = None, origin: str | None = None,
                  use_local_log: bool = True) -> VerifiedAttestation:
    """Verify one Sigstore bundle and return what it proves.

    ``bundle``: a path, JSON bytes, a decoded dict or a parsed :class:`Bundle`.
    ``keys``: trusted public keys (paths, key objects or :class:`Verifier`) for key mode.
    ``trusted_root``: path/dict/TrustedRoot listing trusted logs, CAs, TSAs; the
    embedded local log (see :mod:`locallog`) is trusted too when it exists.
    ``identity``: an ``IdentityPolicy`` (or its kwargs) for certificate bundles.
    ``certificate_chain``: PEM anchors for private-CA certificate bundles.
    ``artifact_digest``: ``sha256:HEX``, a file path or bytes. messageSignature bundles:
    must equal the bundle's messageDigest (without it, the signed messageDigest is what
    is verified and reported as ``message_digest``); DSSE bundles: must be a subject.
    Raises :class:`~mgattest.errors.VerificationError` subclasses on any failure.
    """
    # (1) parse and bound
    parsed = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    root = _as_trusted_root(trusted_root)
    if root is None and parsed.certificate_der is not None and certificate_chain is None:
        root = instance_root_for(parsed)
    extra_logs: list[Any] = []
    if use_local_log:
        from mgattest.attest.locallog import local_trusted_logs

        extra_logs = local_trusted_logs()
    artifact = parse_artifact_digest(artifact_digest)
    verifiers = _as_verifiers(keys)
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
        from cryptography import x509

        try:
            leaf_key = x509.load_der_x509_certificate(parsed.certificate_der).public_key()
        except ValueError:
            raise InputError("bundle certificate is not a DER X.509 certificate",
                             what="certificate", where=parsed.source) from None
        _verify_signature(leaf_key, parsed, message, prehashed, algorithm)
        signing = _Signing(leaf_key, None)
    else:
        signing = _select_key(parsed, verifiers, message, prehashed, algorithm,
                              identity is not None)

    # (3) log entries, then (3b) the certificate at the verified times
    proofs = _verify_log_entries(parsed, root, extra_logs, signing.key, artifact, allow_unlogged, origin)
    signer = signing.signer
    if signer is None:
        if certificate_chain is not None:
            times = [p.integrated_time for p in proofs
                     if p.integrated_time is not None and p.set_verified]
            signer = verify_certificate_chain(parsed, certificate_chain,
                                              at_time=min(times) if times else None)
            if identity is not None:
                from mgattest.attest.certs import IdentityPolicy

                policy = IdentityPolicy(**identity) if isinstance(identity, dict) else identity
                policy.check(signer)
        else:
            signer = _verify_keyless(parsed, root, proofs, identity)

    # (4) statement and subject names, (5) predicate type
    statement = predicate = predicate_type = None
    subjects: list[dict[str, Any]] = []
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
        payload_sha256=payload_sha256)


def default_bundle_path(model: str | Path) -> Path:
    """``<model>.sigstore.json`` beside the model (for a directory: next to the dir)."""
    model = Path(model)
    if model.name in ("", ".", ".."):  # "." or "..": name the directory itself
        model = model.resolve()
    return model.parent / (model.name + ".sigstore.json")


def verify_model(model: str | Path, bundles: Sequence[Any] | Any = None, *,
                 trusted_root: Any = None, keys: Any = None, identity: Any = None,
                 allow_unlogged: bool = False, certificate_chain: bytes | None = None,
                 ignore: Sequence[str] = (), allow_symlinks: bool = False,
                 allow_unsigned_files: bool = False,
                 expected_predicate_type: str | None = None,
                 progress: Any = None) -> tuple[list[VerifiedAttestation], ModelCheck]:
    """Verify every bundle of a model, then re-hash the model against the subjects.

    ``bundles`` defaults to ``<model>.sigstore.json``. Returns the verified attestations
    and the last model check; raises on the first failure (a bundle that does not
    verify, or a file that is missing, extra or changed, naming the file and shard).
    """
    from mgattest.attest import digests

    model = Path(model)
    if not model.exists() and not model.is_symlink():
        raise InputError(f"model {model} does not exist", what="model", where=str(model))
    if bundles is None:
        bundles = [default_bundle_path(model)]
    elif isinstance(bundles, (str, Path, dict, bytes)):
        bundles = [bundles]
    bundle_paths = [b for b in bundles if isinstance(b, (str, Path))]
    attestations = []
    for b in bundles:
        parsed = b if isinstance(b, Bundle) else load_bundle(b)
        artifact = model if parsed.message_signature is not None else None
        if artifact is not None and not model.is_file():
            raise InputError("a message-signature bundle signs one file, but the model is "
                             "a directory", what="model", where=str(model))
        attestations.append(verify_bundle(
            parsed, trusted_root=trusted_root, keys=keys, identity=identity,
            allow_unlogged=allow_unlogged, certificate_chain=certificate_chain,
            artifact_digest=artifact, expected_predicate_type=expected_predicate_type))
    check = None
    for att in attestations:
        if att.statement is None:  # message signature: the artifact digest was checked
            check = ModelCheck(str(model), [FileCheck(model.name, "ok", att.message_digest,
                                                      "message signature over the file")])
            continue
        from mgattest.attest.slsa import signed_ignores

        kwargs: dict[str, Any] = dict(ignore=list(ignore) + signed_ignores(att.statement),
                                      exclude=bundle_paths,
                                      allow_unsigned_files=allow_unsigned_files)
        if progress is not None:
            kwargs["progress"] = progress
        if att.predicate_type in MODEL_SIGNING_PREDICATES:
            from mgattest.attest.modelsigning import expectations_from_model_signing

            expectations = expectations_from_model_signing(att.statement)
            check = expectations.check(model, **kwargs)
        else:
            if not att.subjects:
                raise BundleVerificationError("bundle has no statement subjects to check a "
                                              "model against", what="subjects",
                                              where=att.source)
            check = digests.check_model(model, att.subjects, allow_symlinks=allow_symlinks,
                                        **kwargs)
        digests.raise_for_model_check(check)
    assert check is not None
    return attestations, check


def attestation_to_json(att: VerifiedAttestation) -> dict[str, Any]:
    """A JSON-ready summary of a verified attestation (for ``--json`` output)."""
    from dataclasses import asdict

    out = asdict(att)
    out.pop("statement", None)
    out["subject_count"] = len(att.subjects)
    out.pop("subjects", None)
    return json.loads(json.dumps(out, default=str))
