"""Only verified facts flow downstream (issue #9, "Forged or unverified facts").

A bundle's ``integratedTime`` is a fact only under a verified SET (or an RFC 3161
timestamp); its ``logIndex`` only under a SET or a checkpointed inclusion proof. Every
test here tampers with a real key-signed bundle of the embedded log so that the
signature, inclusion proof and checkpoint still verify, and asserts that the claim
alone changes nothing a policy or a verdict relies on.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import time

import pytest
from typer.testing import CliRunner

from mgattest.attest._certs import verify_signing_certificate
from mgattest.attest.errors import BundleVerificationError, CertificateError, TimestampError
from mgattest.attest._keys import public_key_pem
from mgattest.attest._sign import LogTarget, sign_statement
from mgattest.attest._statement import make_statement
from mgattest.attest._verify import verify_bundle, verify_model
from mgattest.cli.app import app
from mgattest.errors import InputError, VerificationError
from mgattest.policy._evaluate import evaluate
from mgattest.tlog.errors import CheckpointError, LogEntryError
from tests.helpers.paths import CONFORMANCE_DIR
from tests.helpers.bundles import (CONFORMANCE_ASSETS, V01, V02, V03, code_signing_ca,
                                   entry_of, iso, key_policy, signed_model, strip_set)
from mgattest.attest._options import TrustOptions

DAY = 86400
IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
            ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
ISSUER = "https://token.actions.githubusercontent.com"


def _verdict(model, bundle, signer, policy):
    atts, check = verify_model(model, [bundle], trust=TrustOptions(keys=[signer.public_key]))
    return atts, evaluate(policy, atts, check)


# --------------------------------------------------------------------------- 1. times

def test_stripped_set_and_backdated_time_do_not_reopen_a_retired_key(tmp_path):
    """The key retired yesterday; its new signature is logged today. Stripping the SET
    and claiming last month's integratedTime must not put it back in the window."""
    model, signer, bundle = signed_model(tmp_path)
    now = int(time.time())
    policy = key_policy(signer, key_extra=f"validUntil: '{iso(now - DAY)}'")
    _, honest = _verdict(model, bundle, signer, policy)
    assert not honest.allowed and "expired" in " ".join(honest.reasons)

    forged = strip_set(bundle, integrated_time=now - 30 * DAY)
    atts, verdict = _verdict(model, forged, signer, policy)
    proof = atts[0].log_entries[0]
    assert proof.integrated_time is None and proof.claimed_integrated_time == now - 30 * DAY
    assert atts[0].signing_times == ()
    assert any("validity was judged at the current time" in n for n in atts[0].notes)
    assert not verdict.allowed
    assert "judged at now" in " ".join(verdict.reasons)


def test_key_window_reason_names_the_verified_time(tmp_path):
    model, signer, bundle = signed_model(tmp_path)
    policy = key_policy(signer, key_extra=f"validUntil: '{iso(int(time.time()) + DAY)}'")
    atts, verdict = _verdict(model, bundle, signer, policy)
    assert verdict.allowed
    assert atts[0].signing_time is not None and atts[0].signing_time.source == "set"
    signed_by = next(c for c in verdict.checks if c.clause == "signedBy")
    assert all("(SET, log" in t for e in signed_by.evidence for t in e["signingTimes"])


def test_max_age_from_log_time_needs_a_verified_time(tmp_path):
    model, signer, bundle = signed_model(tmp_path)
    rule = """\
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        provenance:
          maxAge: 1d
          maxAgeFrom: logTime
    """
    policy = key_policy(signer, rule_extra=rule)
    assert _verdict(model, bundle, signer, policy)[1].allowed
    forged = strip_set(bundle, integrated_time=int(time.time()))
    _, verdict = _verdict(model, forged, signer, policy)
    assert not verdict.allowed
    assert "verified by a SET or RFC 3161" in " ".join(verdict.reasons)


def _windowed_local_root(valid_to: int):
    from mgattest.attest._locallog import local_trusted_root

    root = local_trusted_root()
    tlog = dataclasses.replace(root.tlogs[0], valid_from=valid_to - 60 * DAY,
                               valid_to=valid_to)
    return dataclasses.replace(root, tlogs=(tlog,))


def test_log_key_window_is_judged_at_a_verified_time_in_key_mode(tmp_path):
    """The log key was retired yesterday. Without a SET, the claimed integratedTime
    (two days ago) must not stand in for a verified time."""
    _, signer, bundle = signed_model(tmp_path)
    now = int(time.time())
    root = _windowed_local_root(now - DAY)
    trust = TrustOptions(keys=[signer.public_key], trusted_root=root)
    with pytest.raises(LogEntryError, match="not valid at integrated time"):
        verify_bundle(bundle, trust, use_local_log=False)
    with pytest.raises(LogEntryError, match="not valid at now"):
        verify_bundle(strip_set(bundle, integrated_time=now - 2 * DAY), trust,
                      use_local_log=False)


def test_an_unverified_int_is_not_a_signing_time(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from mgattest.attest._results import VerifiedTime

    leaf = x509.load_pem_x509_certificate(code_signing_ca(tmp_path)["leaf"])
    der = leaf.public_bytes(serialization.Encoding.DER)
    with pytest.raises(CertificateError, match="not a verified time"):
        verify_signing_certificate(der, [], None, [int(time.time())])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        VerifiedTime(5, "claimed")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- 2. indices

def test_one_entry_repeated_under_another_index_counts_once(tmp_path):
    model, signer, bundle = signed_model(tmp_path)
    policy = key_policy(signer, rule_extra="transparencyLog: {require: required, "
                                           "minEntries: 2}")
    doubled = copy.deepcopy(bundle)
    twin = entry_of(strip_set(bundle, log_index=99))
    doubled["verificationMaterial"]["tlogEntries"].append(twin)
    atts, verdict = _verdict(model, doubled, signer, policy)
    assert {p.log_index for p in atts[0].log_entries} == {0}
    assert not verdict.allowed
    assert "2 verified log entries" in " ".join(verdict.reasons)


def test_cli_never_prints_a_claimed_index_as_proven(tmp_path):
    model, signer, bundle = signed_model(tmp_path)
    forged = strip_set(bundle, log_index=4242)
    (tmp_path / "b.json").write_text(json.dumps(forged))
    (tmp_path / "k.pub").write_bytes(public_key_pem(signer))
    result = CliRunner().invoke(app, ["verify", str(model), "--bundle", str(tmp_path / "b.json"),
                                      "--key", str(tmp_path / "k.pub")])
    assert result.exit_code == 0, result.output
    assert "4242" not in result.output
    assert "log index 0 (inclusion proven)" in result.output
    assert "no verified signing time" in result.output


# --------------------------------------------------------------------------- 3. checkpoint

@pytest.mark.parametrize("media_type", [V02, V03])
@pytest.mark.parametrize("checkpoint", ["absent", None, {}, {"envelope": None}])
def test_inclusion_proof_without_checkpoint_is_rejected(tmp_path, media_type, checkpoint):
    _, signer, bundle = signed_model(tmp_path)
    bundle["mediaType"] = media_type
    proof = entry_of(bundle)["inclusionProof"]
    if checkpoint == "absent":
        del proof["checkpoint"]
    else:
        proof["checkpoint"] = checkpoint
    with pytest.raises(CheckpointError, match="no checkpoint"):
        verify_bundle(bundle, trust=TrustOptions(keys=[signer.public_key]))


def test_v01_proof_without_checkpoint_proves_nothing_but_the_set(tmp_path):
    """sigstore-python ignores a v0.1 proof without checkpoint; so do we: the SET alone
    vouches, and the proof is not reported as verified."""
    _, signer, bundle = signed_model(tmp_path)
    bundle["mediaType"] = V01
    del entry_of(bundle)["inclusionProof"]["checkpoint"]
    att = verify_bundle(bundle, trust=TrustOptions(keys=[signer.public_key]))
    proof = att.log_entries[0]
    assert proof.set_verified and not proof.inclusion_proof_verified
    assert proof.describe() == "log index 0 (SET)"


# --------------------------------------------------------------------------- 4. issuer

def _rekor2_case():
    base = CONFORMANCE_DIR / CONFORMANCE_ASSETS
    return (base / "a.txt", base / "rekor2-happy-path" / "bundle.sigstore.json",
            base / "rekor2-happy-path" / "trusted_root.json")


@pytest.mark.parametrize("flag", ["--identity", "--identity-regex"])
def test_identity_without_issuer_is_a_usage_error(flag):
    artifact, bundle, root = _rekor2_case()
    value = IDENTITY if flag == "--identity" else ".*"
    result = CliRunner().invoke(app, ["verify", str(artifact), "--bundle", str(bundle),
                                      "--trusted-root", str(root), flag, value])
    assert result.exit_code == 2, result.output
    assert "--issuer" in result.output


def test_keyless_identity_without_issuer_refused_by_the_api():
    artifact, bundle, root = _rekor2_case()
    with pytest.raises(InputError, match="issuer"):
        verify_bundle(str(bundle), TrustOptions(trusted_root=str(root),
                                                identity={"identity": IDENTITY}),
                      artifact_digest=str(artifact))
    verify_bundle(str(bundle), TrustOptions(trusted_root=str(root),
                                            identity={"identity": IDENTITY, "issuer": ISSUER}),
                  artifact_digest=str(artifact))


def test_keyless_policy_signer_without_issuer_is_refused():
    from mgattest.policy.errors import PolicyError
    from mgattest.policy._loader import policy_from_bytes

    text = b"""apiVersion: mgattest/v1
kind: Policy
metadata: {name: x}
signers:
  ci: {keyless: {subject: alice@example.com}}
rules:
  - {id: r, match: ["**"], signedBy: {anyOf: [ci]}}
"""
    with pytest.raises(PolicyError, match="issuer"):
        policy_from_bytes(text, source="x.yaml", base_dir=".")


# --------------------------------------------------------------------------- 6. chain

def _ca_bundle(tmp_path, **kw):
    ca = code_signing_ca(tmp_path, **kw)
    statement = make_statement([{"name": "m.bin", "digest": {"sha256": "ab" * 32}}],
                               "https://x.example/p", {})
    bundle = sign_statement(statement, ca["signer"], log=LogTarget(),
                            certificate_pem=ca["leaf"])
    return ca, bundle


def test_certificate_chain_mode_requires_code_signing(tmp_path):
    ca, bundle = _ca_bundle(tmp_path, eku=False)
    with pytest.raises(BundleVerificationError, match="code signing"):
        verify_bundle(bundle, trust=TrustOptions(certificate_chain=ca["ca"]))


def test_certificate_chain_mode_says_when_no_identity_was_given(tmp_path):
    ca, bundle = _ca_bundle(tmp_path)
    att = verify_bundle(bundle, trust=TrustOptions(certificate_chain=ca["ca"]))
    assert any("no identity constraint" in n for n in att.notes)
    assert att.signing_time is not None and att.signing_time.source == "set"
    pinned = verify_bundle(bundle, trust=TrustOptions(certificate_chain=ca["ca"],
                                                      identity={"identity": "ml@example.com"}))
    assert not any("identity" in n for n in pinned.notes)
    with pytest.raises(VerificationError, match="identity"):
        verify_bundle(bundle, trust=TrustOptions(certificate_chain=ca["ca"],
                                                 identity={"identity": "eve@example.com"}))


# --------------------------------------------------------------------------- 8. RFC 3161

def _with_timestamp(bundle, der: bytes):
    out = copy.deepcopy(bundle)
    out["verificationMaterial"]["timestampVerificationData"] = {
        "rfc3161Timestamps": [{"signedTimestamp": base64.b64encode(der).decode()}]}
    return out


def _real_timestamp() -> bytes:
    _, bundle, _ = _rekor2_case()
    vm = json.loads(bundle.read_text())["verificationMaterial"]
    return base64.b64decode(vm["timestampVerificationData"]["rfc3161Timestamps"][0][
        "signedTimestamp"])


def test_unparseable_timestamp_rejected_in_key_mode(tmp_path):
    _, signer, bundle = signed_model(tmp_path)
    with pytest.raises(TimestampError, match="not a TimeStampResponse"):
        verify_bundle(_with_timestamp(bundle, b"\x30\x00"),
                      trust=TrustOptions(keys=[signer.public_key]))


def test_timestamp_over_another_signature_rejected_in_key_mode(tmp_path):
    from mgattest.attest._locallog import local_trusted_root

    _, signer, bundle = signed_model(tmp_path)
    _, _, conformance_root = _rekor2_case()
    from mgattest.attest._trustroot import load_trusted_root

    root = local_trusted_root().merged(load_trusted_root(conformance_root))
    stamped = _with_timestamp(bundle, _real_timestamp())
    with pytest.raises(TimestampError, match="no trusted timestamp authority verifies it"):
        verify_bundle(stamped, trust=TrustOptions(keys=[signer.public_key], trusted_root=root))


def test_timestamp_without_any_trusted_root_is_reported_not_used(tmp_path):
    _, signer, bundle = signed_model(tmp_path)
    att = verify_bundle(_with_timestamp(bundle, _real_timestamp()),
                        trust=TrustOptions(keys=[signer.public_key]))
    assert any("RFC 3161" in n and "not verified" in n for n in att.notes)
    assert all(t.source == "set" for t in att.signing_times)


# --------------------------------------------------------------------------- found by the fuzzers

def test_malformed_certificate_extension_is_a_typed_rejection(tmp_path):
    """cryptography parses extensions lazily: a SAN re-tagged as a SET used to escape
    as a bare ValueError from whichever check read it first."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca = code_signing_ca(tmp_path)
    der = bytearray(x509.load_pem_x509_certificate(ca["leaf"]).public_bytes(
        serialization.Encoding.DER))
    san = der.find(b"\x06\x03U\x1d\x11")  # the SAN extension's OID
    der[san + 7] ^= 0x21  # its SEQUENCE tag becomes a SET
    with pytest.raises(CertificateError, match="not a DER X.509 certificate"):
        verify_signing_certificate(bytes(der), [], None, [])


def test_non_string_message_digest_algorithm_is_a_typed_rejection():
    from mgattest.attest._bundle import load_bundle
    from mgattest.attest.errors import BundleFormatError

    for algorithm in ([], {}, 1):
        with pytest.raises(BundleFormatError, match="message digest algorithm"):
            load_bundle({"mediaType": V03, "verificationMaterial": {"publicKey": {"hint": "x"}},
                         "messageSignature": {"messageDigest": {"algorithm": algorithm,
                                                                "digest": "AA=="},
                                              "signature": "AA=="}})


# --------------------------------------------------------------------------- siblings

def test_a_staging_bundle_does_not_choose_its_own_trust_root():
    """The bundle's logId picked the embedded root: a staging bundle verified with no
    trust decision by the operator. Staging is trusted only when asked for."""
    base = CONFORMANCE_DIR / CONFORMANCE_ASSETS
    args = ["verify", str(base / "a.txt"), "--bundle",
            str(base / "bundle-from-wrong-instance_fail" / "bundle.sigstore.json"),
            "--identity", IDENTITY, "--issuer", ISSUER]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--instance staging" in result.output
    assert CliRunner().invoke(app, args + ["--instance", "staging"]).exit_code == 0


def test_a_key_hint_that_names_another_key_is_not_passed_on(tmp_path):
    """``signer.key_hint`` reaches CEL policies: it must not be the bundle's free text."""
    _, signer, bundle = signed_model(tmp_path)
    honest = verify_bundle(bundle, trust=TrustOptions(keys=[signer.public_key]))
    assert honest.signer.key_hint == bundle["verificationMaterial"]["publicKey"]["hint"]
    bundle["verificationMaterial"]["publicKey"]["hint"] = "release-key-2024"
    assert verify_bundle(bundle,
                         trust=TrustOptions(keys=[signer.public_key])).signer.key_hint is None


# --------------------------------------------------------------------------- issue #10

def _rekor2_with_extra_timestamp(first: bool) -> dict:
    """rekor2-happy-path plus a genuine timestamp of another signature."""
    base = CONFORMANCE_DIR / CONFORMANCE_ASSETS
    bundle = json.loads((base / "rekor2-happy-path" / "bundle.sigstore.json").read_text())
    other = json.loads((base / "rekor2-timestamp-with-embedded-cert" / "bundle.sigstore.json")
                       .read_text())
    stamps = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    foreign = other["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    stamps[:] = (foreign + stamps) if first else (stamps + foreign)
    return bundle


@pytest.mark.parametrize("foreign_first", [True, False])
def test_one_of_several_timestamps_failing_is_reported_not_fatal(foreign_first):
    """sigstore-go (WithSignedTimestamps(1)) and sigstore-python need one verified RFC
    3161 timestamp; the others are reported and not used."""
    artifact, _, root = _rekor2_case()
    att = verify_bundle(_rekor2_with_extra_timestamp(foreign_first),
                        TrustOptions(trusted_root=str(root),
                                     identity={"identity": IDENTITY, "issuer": ISSUER}),
                        artifact_digest=str(artifact))
    assert len(att.signing_times) == 1 and att.signing_times[0].source == "rfc3161"
    bad = "rfc3161Timestamps[0]" if foreign_first else "rfc3161Timestamps[1]"
    assert any(bad in n and "not used" in n for n in att.notes), att.notes
    # sigstore-python agrees on the same bundle
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier, policy

    Verifier(trusted_root=TrustedRoot.from_file(str(root))).verify_artifact(
        artifact.read_bytes(),
        Bundle.from_json(json.dumps(_rekor2_with_extra_timestamp(foreign_first))),
        policy.Identity(identity=IDENTITY, issuer=ISSUER))


def test_no_verified_timestamp_among_several_is_a_rejection():
    artifact, _, root = _rekor2_case()
    bundle = _rekor2_with_extra_timestamp(True)
    stamps = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    del stamps[1]  # only the foreign one is left
    with pytest.raises(TimestampError, match="no trusted timestamp authority"):
        verify_bundle(bundle, TrustOptions(trusted_root=str(root),
                                           identity={"identity": IDENTITY, "issuer": ISSUER}),
                      artifact_digest=str(artifact))


def _log_with(tmp_path, kind_version: str):
    from mgattest.tlog._entries import CanonicalEntry
    from mgattest.tlog._log import TransparencyLog

    log = TransparencyLog.init(tmp_path / f"log-{kind_version}.db", origin="rekor.internal.example")
    body = b'{"apiVersion":"%s","kind":"hashedrekord","spec":{"n":%d}}'
    log.append_many_canonical([CanonicalEntry("hashedrekord", kind_version,
                                              body % (kind_version.encode(), i))
                               for i in range(3)])
    return log, log.entry_by_index(1).to_bundle_entry(log.inclusion_proof(1))


def _resigned(log, entry, origin: str, name: str, signer=None):
    from mgattest.tlog._checkpoint import Checkpoint, parse_signed_note, sign_checkpoint

    checkpoint, _ = parse_signed_note(entry["inclusionProof"]["checkpoint"]["envelope"])
    out = copy.deepcopy(entry)
    out["inclusionProof"]["checkpoint"]["envelope"] = sign_checkpoint(
        Checkpoint(origin, checkpoint.size, checkpoint.root_hash), signer or log.signer, name)
    return out


def test_rekor_v1_checkpoint_of_a_private_deployment(tmp_path):
    """A private Rekor v1 names its origin after the server pod, not the URL clients
    use: accepted as sigstore-go does (signature by the log key, size and root)."""
    from mgattest.tlog._keys import LogSigner
    from mgattest.tlog._trust import TrustedLog
    from mgattest.tlog._verify import verify_entry

    log, entry = _log_with(tmp_path, "0.0.1")
    trusted = [TrustedLog(log.log_id, log.signer.verifier, "https://rekor.internal.example")]
    pod = "rekor-server-7d9f8c-xkz2 - 1193050959"
    got = verify_entry(_resigned(log, entry, pod, "rekor-server-7d9f8c-xkz2"), trusted)
    assert got.checkpoint_origin == pod and got.inclusion_proof_verified
    with pytest.raises(CheckpointError, match="no signature by a trusted log key"):
        verify_entry(_resigned(log, entry, pod, "rekor-server-7d9f8c-xkz2",
                               LogSigner.generate()), trusted)
    # an origin the operator pins is still compared exactly
    with pytest.raises(CheckpointError, match="origin"):
        verify_entry(_resigned(log, entry, pod, "x"), trusted, origin="rekor.internal.example")
    # any other origin form is judged the same way (sigstore-go, sigstore-js and
    # sigstore-python check no Rekor v1 origin): the trusted key's signature binds it
    got = verify_entry(_resigned(log, entry, "other.example/log", "other.example"), trusted)
    assert got.checkpoint_origin == "other.example/log"


def test_rekor_v2_checkpoint_origin_keeps_the_spec_rule(tmp_path):
    from mgattest.tlog._trust import TrustedLog
    from mgattest.tlog._verify import verify_entry

    log, entry = _log_with(tmp_path, "0.0.2")
    trusted = [TrustedLog(log.log_id, log.signer.verifier, "https://rekor.internal.example")]
    with pytest.raises(CheckpointError, match="origin"):
        verify_entry(_resigned(log, entry, "rekor-server-7d9f8c - 1193050959", "rekor-server"),
                     trusted)
    verify_entry(_resigned(log, entry, "rekor.internal.example", "rekor.internal.example"),
                 trusted)
