"""Keyless certificate checks: chain, validity at signing time, usage, SCT, identity.

Certificates come from a real private CA (mgattest.ca) and from the real public-good
bundles of the sigstore-conformance suite; every field that matters is tampered with
and must be rejected with a reason naming it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from mgattest.attest._certs import (
    IdentityPolicy,
    _der_utf8string,
    parse_identity,
    verify_signing_certificate,
)
from mgattest.attest.errors import (
    CertificateError,
    IdentityMismatchError,
    SCTError,
    TimestampError,
)
from mgattest.attest._results import SignerInfo
from mgattest.attest._results import VerifiedTime
from mgattest.attest._timestamps import verify_rfc3161_timestamps
from mgattest.ca import _authority as authority
from mgattest.ca._authority import CertificateAuthority, _der_utf8
from mgattest.ca._ctlog import precert_tbs_without_poison, sct_list_extension
from mgattest.ca._identity import identity_from_claims
from mgattest.errors import InputError

ISSUER = "http://127.0.0.1:9999"
GITHUB = "https://token.actions.githubusercontent.com"



def _vt(*seconds: int) -> list[VerifiedTime]:
    """Signing times as the verifier hands them over (here: as if SET-backed)."""
    return [VerifiedTime(t, "set", "test") for t in seconds]

def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def trusted_root_for(ca: CertificateAuthority, *, ca_start: str = "2020-01-01T00:00:00Z",
                     ca_end: str | None = None, ct_key_der: bytes | None = None) -> dict:
    ct_der = ct_key_der if ct_key_der is not None else ca.ct_signer.public_key_der
    import hashlib

    valid = {"start": ca_start}
    if ca_end:
        valid["end"] = ca_end
    return {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [{
            "subject": {"organization": "test", "commonName": "test"},
            "uri": "http://127.0.0.1:1",
            "certChain": {"certificates": [{"rawBytes": _b64(_der(c))} for c in ca.chain]},
            "validFor": valid}],
        "ctlogs": [{"baseUrl": "http://127.0.0.1:1", "hashAlgorithm": "SHA2_256",
                    "publicKey": {"rawBytes": _b64(ct_der),
                                  "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                  "validFor": {"start": "2020-01-01T00:00:00Z"}},
                    "logId": {"keyId": _b64(hashlib.sha256(ct_der).digest())}}],
    }


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> CertificateAuthority:
    d = tmp_path_factory.mktemp("ca") / "ca"
    authority.init(d)
    return CertificateAuthority.load(d)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> CertificateAuthority:
    d = tmp_path_factory.mktemp("ca2") / "ca"
    authority.init(d)
    return CertificateAuthority.load(d)


@pytest.fixture(scope="module")
def email_cert(ca):
    key = ec.generate_private_key(ec.SECP256R1())
    ident = identity_from_claims({"sub": "123", "email": "alice@example.com",
                                  "email_verified": True}, ISSUER)
    return ca.issue(key.public_key(), ident)


def _now() -> int:
    return int(time.time())


# --------------------------------------------------------------------------- happy paths

def test_private_ca_certificate_verifies(ca, email_cert):
    signer = verify_signing_certificate(_der(email_cert), [], trusted_root_for(ca), _vt(_now()))
    assert signer.kind == "certificate"
    assert signer.identity == "alice@example.com"
    assert signer.issuer == ISSUER
    assert signer.extensions["issuer"] == ISSUER
    assert signer.not_after - signer.not_before == 600
    spki = email_cert.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    assert signer.key_fingerprint == hashlib.sha256(spki).hexdigest()
    IdentityPolicy(identity="alice@example.com", issuer=ISSUER).check(signer)


def test_chain_may_repeat_the_intermediate(ca, email_cert):
    signer = verify_signing_certificate(_der(email_cert), [_der(ca.intermediate)],
                                        trusted_root_for(ca), _vt(_now()))
    assert signer.identity == "alice@example.com"


def test_fulcio_profile(ca, email_cert):
    ext = email_cert.extensions
    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and len(email_cert.subject) == 0
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert ExtendedKeyUsageOID.CODE_SIGNING in ext.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    issuer_ext = ext.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"))
    assert issuer_ext.value.value == _der_utf8(ISSUER)
    legacy = ext.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"))
    assert legacy.value.value == ISSUER.encode()
    scts = ext.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert len(scts) == 1 and scts[0].log_id == ca.ct_log_id()
    # notBefore is backdated for clock skew, and the lifetime is ten minutes.
    assert email_cert.not_valid_before_utc <= dt.datetime.now(dt.timezone.utc)
    # Root and intermediate follow web-PKI CA rules.
    for cert in ca.chain:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_peer_sigstore_python_accepts_our_sct(ca, email_cert):
    """sigstore-python's own SCT verifier, an independent checker, accepts the SCT."""
    from sigstore._internal.sct import verify_sct
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.models import TrustedRoot

    tr = trusted_root_for(ca)
    tr["tlogs"] = []
    from sigstore_models.trustroot import v1

    inner = v1.TrustedRoot.from_json(json.dumps(tr))
    keyring = TrustedRoot(inner).ct_keyring(KeyringPurpose.VERIFY)
    verify_sct(email_cert, list(ca.chain), keyring)


def test_github_claims_become_fulcio_extensions(ca):
    claims = {
        "sub": "repo:octo/model:ref:refs/heads/main", "repository": "octo/model",
        "repository_id": "42", "repository_owner": "octo", "repository_owner_id": "7",
        "job_workflow_ref": "octo/model/.github/workflows/train.yml@refs/heads/main",
        "job_workflow_sha": "a" * 40, "workflow_ref": "octo/model/.github/workflows/train.yml@refs/heads/main",
        "workflow_sha": "b" * 40, "workflow": "train", "event_name": "push",
        "ref": "refs/heads/main", "sha": "c" * 40, "run_id": "99", "run_attempt": "1",
        "runner_environment": "github-hosted", "repository_visibility": "public",
    }
    ident = identity_from_claims(claims, GITHUB)
    cert = ca.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), ident)
    signer = verify_signing_certificate(_der(cert), [], trusted_root_for(ca), _vt(_now()))
    wf = "https://github.com/octo/model/.github/workflows/train.yml@refs/heads/main"
    assert signer.identity == wf
    assert signer.issuer == GITHUB
    e = signer.extensions
    assert e["source_repository_uri"] == "https://github.com/octo/model"
    assert e["source_repository_ref"] == "refs/heads/main"
    assert e["source_repository_digest"] == "c" * 40
    assert e["build_signer_uri"] == wf
    assert e["build_config_uri"] == wf
    assert e["build_trigger"] == "push"
    assert e["runner_environment"] == "github-hosted"
    assert e["run_invocation_uri"] == "https://github.com/octo/model/actions/runs/99/attempts/1"
    assert e["source_repository_visibility_at_signing"] == "public"
    assert e["github_workflow_repository"] == "octo/model"  # legacy raw-string arc .1.5
    policy = IdentityPolicy(identity_regex=r"https://github\.com/octo/model/\.github/workflows/.+",
                            issuer=GITHUB, extensions={"source_repository_ref": "refs/heads/main",
                                                       "workflow": wf})
    policy.check(signer)
    with pytest.raises(IdentityMismatchError, match="source_repository_ref"):
        IdentityPolicy(identity=wf, issuer=GITHUB,
                       extensions={"ref": "refs/heads/evil"}).check(signer)


def test_username_san_for_plain_subject(ca):
    ident = identity_from_claims({"sub": "build-bot"}, ISSUER, "username")
    cert = ca.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), ident)
    signer = verify_signing_certificate(_der(cert), [], trusted_root_for(ca), _vt(_now()))
    assert signer.identity == "build-bot!127.0.0.1"


# --------------------------------------------------------------------------- rejections

def test_untrusted_ca_rejected(ca, other_ca, email_cert):
    with pytest.raises(CertificateError, match="does not chain to a trusted"):
        verify_signing_certificate(_der(email_cert), [], trusted_root_for(other_ca), _vt(_now()))


def test_expired_at_signing_time_rejected(ca, email_cert):
    nb = int(email_cert.not_valid_before_utc.timestamp())
    na = int(email_cert.not_valid_after_utc.timestamp())
    tr = trusted_root_for(ca)
    for t in (nb - 1, na + 1):
        with pytest.raises(CertificateError, match="not valid at signing time"):
            verify_signing_certificate(_der(email_cert), [], tr, _vt(t))
    # Every signing time must be inside the window, not just one of them.
    with pytest.raises(CertificateError, match="not valid at signing time"):
        verify_signing_certificate(_der(email_cert), [], tr, _vt(nb + 1, na + 10))
    verify_signing_certificate(_der(email_cert), [], tr, _vt(nb, na))  # bounds inclusive


def test_no_signing_time_rejected(ca, email_cert):
    with pytest.raises(CertificateError, match="no verified signing time"):
        verify_signing_certificate(_der(email_cert), [], trusted_root_for(ca), [])


def test_ca_validfor_must_cover_signing_time(ca, email_cert):
    tr = trusted_root_for(ca, ca_start="2020-01-01T00:00:00Z", ca_end="2021-01-01T00:00:00Z")
    with pytest.raises(CertificateError, match="validFor"):
        verify_signing_certificate(_der(email_cert), [], tr, _vt(_now()))


def test_bundle_chain_is_ignored_for_trust(ca, other_ca, email_cert):
    """v0.1/v0.2 bundles (slsa-github-generator's among them) ship leaf, intermediate and
    root: tolerated as sigstore-go does, because only the trusted root builds the path."""
    chain = [_der(ca.intermediate), _der(ca.root)]
    verify_signing_certificate(_der(email_cert), chain, trusted_root_for(ca), _vt(_now()))
    # A chain up to its own root does not make an untrusted CA's leaf trusted.
    with pytest.raises(CertificateError, match="does not chain"):
        verify_signing_certificate(_der(email_cert), chain, trusted_root_for(other_ca),
                                   _vt(_now()))


@pytest.mark.parametrize("leaf", [b"", b"\x30\x03\x02\x01\x01", b"not a cert" * 10],
                         ids=["empty", "truncated-DER", "text"])
def test_garbage_certificate_rejected(ca, leaf):
    with pytest.raises(CertificateError):
        verify_signing_certificate(leaf, [], trusted_root_for(ca), _vt(_now()))


def _custom_leaf(ca: CertificateAuthority, *, ku_digital: bool = True, eku=None,
                 sct: bytes | None | str = "valid", ct_signer=None) -> x509.Certificate:
    """A leaf signed by the real intermediate with chosen usage and SCT."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([]))
               .issuer_name(ca.intermediate.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(minutes=10))
               .add_extension(x509.KeyUsage(ku_digital, False, False, False, False, False, False,
                                            False, False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CODE_SIGNING]),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.intermediate.public_key()), critical=False)
               .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("a@example.com")]),
                              critical=True)
               .add_extension(x509.UnrecognizedExtension(
                   x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), _der_utf8(ISSUER)),
                   critical=False))
    if sct is None:
        return builder.sign(ca.intermediate_key, hashes.SHA384())
    precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(
        ca.intermediate_key, hashes.SHA384())
    raw = (ct_signer or ca.ct_signer).sign_precertificate(precert, ca.intermediate)
    if sct == "forged":
        raw = raw[:-1] + bytes([raw[-1] ^ 0x01])
    elif sct == "wrong-issuer":
        raw = (ct_signer or ca.ct_signer).sign_precertificate(precert, ca.root)
    return builder.add_extension(sct_list_extension([raw]), critical=False).sign(
        ca.intermediate_key, hashes.SHA384())


def test_custom_leaf_control_passes(ca):
    """The helper's untampered certificate verifies, so the negatives below are meaningful."""
    cert = _custom_leaf(ca)
    assert verify_signing_certificate(_der(cert), [], trusted_root_for(ca), _vt(_now())).identity \
        == "a@example.com"


def test_missing_sct_rejected(ca):
    with pytest.raises(SCTError, match="no embedded SCT"):
        verify_signing_certificate(_der(_custom_leaf(ca, sct=None)), [], trusted_root_for(ca),
                                   _vt(_now()))


def test_forged_sct_rejected(ca):
    with pytest.raises(SCTError, match="does not verify"):
        verify_signing_certificate(_der(_custom_leaf(ca, sct="forged")), [],
                                   trusted_root_for(ca), _vt(_now()))


def test_sct_bound_to_wrong_issuer_rejected(ca):
    with pytest.raises(SCTError, match="does not verify"):
        verify_signing_certificate(_der(_custom_leaf(ca, sct="wrong-issuer")), [],
                                   trusted_root_for(ca), _vt(_now()))


def test_sct_from_untrusted_ct_log_rejected(ca, other_ca):
    cert = _custom_leaf(ca, ct_signer=other_ca.ct_signer)
    with pytest.raises(SCTError, match="not in the trusted root"):
        verify_signing_certificate(_der(cert), [], trusted_root_for(ca), _vt(_now()))


def test_unusable_ct_key_rejected(ca, email_cert):
    tr = trusted_root_for(ca)
    tr["ctlogs"][0]["publicKey"]["rawBytes"] = _b64(b"\x30\x00garbage")
    with pytest.raises(SCTError, match="unusable"):
        verify_signing_certificate(_der(email_cert), [], tr, _vt(_now()))


def test_key_usage_and_eku_required(ca):
    with pytest.raises(CertificateError, match="digitalSignature"):
        verify_signing_certificate(_der(_custom_leaf(ca, ku_digital=False)), [],
                                   trusted_root_for(ca), _vt(_now()))
    with pytest.raises(CertificateError, match="codeSigning"):
        verify_signing_certificate(
            _der(_custom_leaf(ca, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])), [],
            trusted_root_for(ca), _vt(_now()))


# --------------------------------------------------------------------------- identity policy

def _signer(identity="alice@example.com", issuer=ISSUER, **ext) -> SignerInfo:
    return SignerInfo(kind="certificate", key_fingerprint="00", identity=identity,
                      issuer=issuer, extensions=ext)


def test_identity_policy_matches_exactly():
    IdentityPolicy(identity="alice@example.com", issuer=ISSUER).check(_signer())
    with pytest.raises(IdentityMismatchError, match="not the expected"):
        IdentityPolicy(identity="bob@example.com", issuer=ISSUER).check(_signer())
    with pytest.raises(IdentityMismatchError, match="OIDC issuer"):
        IdentityPolicy(identity="alice@example.com", issuer="https://evil").check(_signer())


@pytest.mark.parametrize("regex,san", [
    ("alice@example\\.com", "alice@example.com.evil.org"),
    ("alice@example\\.com", "mallory+alice@example.com"),
    ("https://github\\.com/octo/.*", "https://evil.example/https://github.com/octo/x"),
    ("alice", "alice@example.com"),
])
def test_regex_is_anchored(regex, san):
    with pytest.raises(IdentityMismatchError, match="fully match"):
        IdentityPolicy(identity_regex=regex, issuer=ISSUER).check(_signer(identity=san))


def test_policy_usage_errors():
    with pytest.raises(InputError, match="without an issuer"):
        IdentityPolicy(identity_regex=".*")
    with pytest.raises(InputError, match="invalid identity regex"):
        IdentityPolicy(identity_regex="(", issuer=ISSUER)
    with pytest.raises(InputError, match="needs an identity"):
        IdentityPolicy(issuer=ISSUER)
    with pytest.raises(InputError, match="unknown certificate extension"):
        IdentityPolicy(identity="a", issuer=ISSUER, extensions={"colour": "red"})
    with pytest.raises(IdentityMismatchError, match="keyless"):
        IdentityPolicy(identity="a", issuer=ISSUER).check(
            SignerInfo(kind="key", key_fingerprint="00"))


# --------------------------------------------------------------------------- encodings

@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_der_utf8string_roundtrip(text):
    assert _der_utf8string(_der_utf8(text), "t") == text


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=40))
def test_der_utf8string_rejects_garbage(data):
    try:
        _der_utf8string(data, "t")
    except CertificateError:
        return
    # Anything accepted must be a well-formed UTF8String that re-encodes identically.
    assert data == _der_utf8(_der_utf8string(data, "t"))


def test_precert_tbs_matches_final_certificate(ca, email_cert):
    """The TBS our CT signer signs equals what verifiers reconstruct from the final cert."""
    scts = email_cert.extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps).value
    assert scts[0].entry_type.name == "PRE_CERTIFICATE"
    with pytest.raises(ValueError):
        precert_tbs_without_poison(email_cert.tbs_certificate_bytes)  # no poison to strip
    with pytest.raises(ValueError):
        precert_tbs_without_poison(b"\x30\x02\x05\x00" + b"x")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=4))
def test_sct_list_extension_parses(scts):
    """Our SCT-list encoding is read back by cryptography's own parser (as raw bytes)."""
    ext = sct_list_extension(scts)
    value = ext.value
    assert value[0] == 0x04
    # Decode OCTET STRING header, then the TLS vector.
    if value[1] < 0x80:
        body = value[2:]
    else:
        n = value[1] & 0x7F
        body = value[2 + n:]
    total = struct.unpack("!H", body[:2])[0]
    assert total == len(body) - 2
    pos, got = 2, []
    while pos < len(body):
        (n,) = struct.unpack("!H", body[pos:pos + 2])
        got.append(body[pos + 2:pos + 2 + n])
        pos += 2 + n
    assert got == scts


# --------------------------------------------------------------------------- real vectors

def _case(conformance_dir: Path, name: str):
    cases = json.loads((conformance_dir / "cases.json").read_text())
    case = next(c for c in cases if c["id"] == f"conformance/{name}")
    bundle = json.loads((conformance_dir / case["bundle"]).read_text())
    return case, bundle, conformance_dir / case["trusted_root"]


def _leaf_chain(bundle):
    vm = bundle["verificationMaterial"]
    if "certificate" in vm:
        return base64.b64decode(vm["certificate"]["rawBytes"]), []
    certs = [base64.b64decode(c["rawBytes"]) for c in vm["x509CertificateChain"]["certificates"]]
    return certs[0], certs[1:]


@pytest.mark.parametrize("name", ["happy-path-v0.3", "happy-path-v0.1",
                                  "bundle-with-sct-with-extensions"])
def test_public_good_certificates_verify(conformance_dir, name):
    case, bundle, root = _case(conformance_dir, name)
    leaf, chain = _leaf_chain(bundle)
    vm = bundle["verificationMaterial"]
    if "integratedTime" in vm["tlogEntries"][0]:
        t = int(vm["tlogEntries"][0]["integratedTime"])
    else:
        t = verify_rfc3161_timestamps(vm["timestampVerificationData"]["rfc3161Timestamps"],
                                      _sig(bundle), root)[0].seconds
    signer = verify_signing_certificate(leaf, chain, root, _vt(t))
    IdentityPolicy(identity=case["expected_identity"], issuer=case["expected_issuer"]).check(signer)
    assert signer.extensions["source_repository_uri"].startswith("https://github.com/")
    assert signer.extensions["build_trigger"]
    with pytest.raises(CertificateError):  # same certificate, a day later: expired
        verify_signing_certificate(leaf, chain, root, _vt(t + 86400))


def test_public_good_certificate_from_other_instance(conformance_dir):
    case, bundle, root = _case(conformance_dir, "bundle-from-wrong-instance_fail")
    leaf, chain = _leaf_chain(bundle)
    t = int(bundle["verificationMaterial"]["tlogEntries"][0]["integratedTime"])
    with pytest.raises(CertificateError, match="does not chain"):
        verify_signing_certificate(leaf, chain, root, _vt(t))


def test_public_good_root_in_chain(conformance_dir):
    _, bundle, root = _case(conformance_dir, "bundle-with-root-cert_fail")
    leaf, chain = _leaf_chain(bundle)
    with pytest.raises(CertificateError, match="not valid at signing time|does not chain"):
        verify_signing_certificate(leaf, chain, root, _vt(1689177396))


def _sig(bundle) -> bytes:
    if "messageSignature" in bundle:
        return base64.b64decode(bundle["messageSignature"]["signature"])
    return base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])


@pytest.mark.parametrize("name", ["rekor2-timestamp-with-embedded-cert",
                                  "rekor2-timestamp-without-embedded-cert",
                                  "rekor2-timestamp-with-expired-cert-chain",
                                  "trust-root-tsa-validity-end-inclusive"])
def test_rfc3161_timestamps_verify(conformance_dir, name):
    case, bundle, root = _case(conformance_dir, name)
    ts = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    times = verify_rfc3161_timestamps(ts, _sig(bundle), root)
    assert len(times) == len(ts)
    leaf, chain = _leaf_chain(bundle)
    signer = verify_signing_certificate(leaf, chain, root, times)
    IdentityPolicy(identity=case["expected_identity"], issuer=case["expected_issuer"]).check(signer)
    # The timestamp covers THIS signature only.
    with pytest.raises(TimestampError, match="no trusted timestamp authority"):
        verify_rfc3161_timestamps(ts, _sig(bundle)[:-1] + b"\x00", root)


@pytest.mark.parametrize("name,match", [
    ("rekor2-timestamp-outside-trust-root-tsa-validity_fail", "validFor"),
    ("rekor2-timestamp-outside-tsa-cert-validity_fail", "no trusted timestamp authority"),
    ("rekor2-timestamp-payload-mismatch_fail", "no trusted timestamp authority"),
    ("rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail", "TimeStampResponse|authority"),
    ("rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail", "no trusted timestamp"),
])
def test_rfc3161_timestamp_rejections(conformance_dir, name, match):
    _, bundle, root = _case(conformance_dir, name)
    ts = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    with pytest.raises(TimestampError, match=match):
        verify_rfc3161_timestamps(ts, _sig(bundle), root)


def test_rfc3161_bounds(conformance_dir):
    _, bundle, root = _case(conformance_dir, "rekor2-timestamp-with-embedded-cert")
    ts = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    with pytest.raises(TimestampError, match="duplicate"):
        verify_rfc3161_timestamps(ts * 2, _sig(bundle), root)
    with pytest.raises(TimestampError, match="too many"):
        verify_rfc3161_timestamps([{"signedTimestamp": str(i)} for i in range(33)],
                                  _sig(bundle), root)
    with pytest.raises(TimestampError, match="invalid base64"):
        verify_rfc3161_timestamps([{"signedTimestamp": "!!"}], _sig(bundle), root)
    with pytest.raises(TimestampError, match="not a TimeStampResponse"):
        verify_rfc3161_timestamps([{"signedTimestamp": _b64(b"\x30\x00")}], _sig(bundle), root)
    no_tsa = json.loads(Path(root).read_text())
    no_tsa["timestampAuthorities"] = []
    with pytest.raises(TimestampError, match="no timestamp authorities"):
        verify_rfc3161_timestamps(ts, _sig(bundle), no_tsa)
    assert verify_rfc3161_timestamps([], _sig(bundle), root) == []


def test_parse_identity_of_real_certificate(conformance_dir):
    _, bundle, _ = _case(conformance_dir, "happy-path-v0.3")
    leaf, _ = _leaf_chain(bundle)
    san, issuer, ext = parse_identity(x509.load_der_x509_certificate(leaf))
    assert san.startswith("https://github.com/")
    assert issuer == "https://token.actions.githubusercontent.com"
    assert ext["issuer_v1"] == issuer  # legacy raw arc .1.1 agrees with .1.8


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=600))
def test_random_certificate_bytes_fail_closed(data):
    root = {"certificateAuthorities": [], "ctlogs": []}
    with pytest.raises(CertificateError):
        verify_signing_certificate(data, [], root, _vt(1700000000))


_claims = st.dictionaries(
    st.sampled_from(["sub", "email", "email_verified", "job_workflow_ref", "repository",
                     "repository_owner", "workflow_ref", "run_id", "run_attempt", "sha", "ref",
                     "event_name", "server_url"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40)))


@settings(max_examples=150, deadline=None)
@given(_claims)
def test_claims_mapping_fails_closed(claims):
    """Any claim set maps to an identity or a TokenError — never another exception."""
    from mgattest.ca.errors import TokenError

    try:
        ident = identity_from_claims(claims, ISSUER)
    except TokenError:
        return
    assert ident.san_value and ident.issuer == ISSUER
    if ident.san_kind == "email":
        assert claims.get("email_verified") is True


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_precert_parser_fails_closed(data):
    """The CT signer's DER walker raises ValueError on anything but a precertificate TBS."""
    try:
        out = precert_tbs_without_poison(data)
    except ValueError:
        return
    assert out != data  # something (the poison) was removed


def test_precert_poison_removed_exactly(ca):
    """Strip the poison from a real precertificate: the result equals the TBS that
    cryptography reconstructs from the final certificate (its SCT list removed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    ident = identity_from_claims({"sub": "s", "email": "p@example.com", "email_verified": True},
                                 ISSUER)
    cert = ca.issue(key.public_key(), ident)
    builder = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
               .public_key(cert.public_key()).serial_number(cert.serial_number)
               .not_valid_before(cert.not_valid_before_utc)
               .not_valid_after(cert.not_valid_after_utc))
    for ext in cert.extensions:
        if isinstance(ext.value, x509.PrecertificateSignedCertificateTimestamps):
            continue
        builder = builder.add_extension(ext.value, ext.critical)
    precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(
        ca.intermediate_key, hashes.SHA384())
    assert precert_tbs_without_poison(precert.tbs_certificate_bytes) == \
        cert.tbs_precertificate_bytes
