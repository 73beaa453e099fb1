"""Offline verification of log entries: the sigstore-conformance suite at the tlog level,
entries from our own log (also checked by sigstore-python), and tampering of every field."""

from __future__ import annotations

import base64
import copy
import datetime
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgattest.errors import MgattestError
from mgattest.tlog._entries import CanonicalEntry
from mgattest.tlog.errors import (
    CheckpointError,
    ConsistencyProofError,
    InclusionProofError,
    LogEntryError,
    SETError,
    TrustRootError,
)
from mgattest.tlog._keys import LogSigner, LogVerifier, c2sp_key_id
from mgattest.tlog._log import TransparencyLog
from mgattest.tlog._trust import TrustedLog, trusted_logs_from_root
from mgattest.tlog._verify import (
    verify_consistency_notes,
    verify_entry,
    verify_rekor_entry,
)

# Conformance cases that must fail *at the transparency-log level*, with the error
# type and why. Every other case either verifies here (it fails upstream for a
# certificate, signature, artifact, identity or TSA reason — attest's job) or is out
# of scope (listed in OUT_OF_SCOPE).
TLOG_FAILURES: dict[str, tuple[type, str]] = {
    "bundle-from-wrong-instance_fail": (LogEntryError, "staging log is not in the production root"),
    "bundle-negative-log-index_fail": (LogEntryError, "logIndex is -1"),
    "bundle-unknown-version_fail": (LogEntryError, "body is a stub: kindVersion disagrees"),
    "bundle-invalid-base64-signature_fail": (
        InclusionProofError, "the body was edited, so its leaf is not in the tree"),
    "incorrect-public-key_fail": (
        InclusionProofError, "the key in the body was edited, so its leaf is not in the tree"),
    "bundle-empty-certificate-chain_fail": (
        InclusionProofError, "its v0.1 (checkpoint-less) inclusion proof is truncated"),
    "inclusion-proof-corrupted-hash_fail": (InclusionProofError, "a proof hash has a bit flip"),
    "invalid-inclusion-proof_fail": (InclusionProofError, "the proof is for another tree"),
    "intoto-missing-inclusion-proof_fail": (InclusionProofError, "v0.2 bundle without a proof"),
    "rekor2-no-inclusion-proof_fail": (InclusionProofError, "v0.3 bundle without a proof"),
    "checkpoint-bad-keyhint_fail": (CheckpointError, "no signature line with the log's hint"),
    "checkpoint-wrong-roothash_fail": (
        CheckpointError, "a valid checkpoint of another tree: size and root differ"),
    "invalid-checkpoint-signature_fail": (CheckpointError, "log-hinted signature is invalid"),
    "rekor2-checkpoint-missing-log-signature_fail": (CheckpointError, "no signature lines"),
    "rekor2-checkpoint-missing-origin_fail": (CheckpointError, "origin line removed"),
    "rekor2-checkpoint-missing-root-hash_fail": (CheckpointError, "root line removed"),
    "rekor2-checkpoint-missing-size_fail": (CheckpointError, "size line removed"),
    "rekor2-checkpoint-no-matching-signature_fail": (
        CheckpointError, "signer name changed, so the C2SP key hint no longer matches"),
    "set-invalid-signature_fail": (SETError, "the SET signature is corrupted"),
    "trust-root-tlog-missing-validity-start_fail": (
        TrustRootError, "the trusted root's tlog has no validFor.start"),
}
OUT_OF_SCOPE = {"bundle-malformed-json_fail": "the bundle file is not JSON (bundle parser)"}
# Fail upstream for reasons outside the log; their log entries are genuine:
# integrated-time-in-future_fail — its integratedTime (2026-05-07) lies outside the
# signing certificate's validity (a certificate check); it is not in the future of this
# machine's clock, so the entry itself verifies. test_integrated_time_in_future below
# shows the same entry is rejected when "now" precedes its integrated time.


def _cases(conformance_dir: Path) -> list[dict]:
    return json.loads((conformance_dir / "cases.json").read_text())


def _short(case: dict) -> str:
    return case["id"].split("/", 1)[1]


def _run_case(conformance_dir: Path, case: dict) -> list:
    bundle = json.loads((conformance_dir / case["bundle"]).read_text())
    root = json.loads((conformance_dir / case["trusted_root"]).read_text())
    trusted = trusted_logs_from_root(root)
    v01 = bundle.get("mediaType", "").endswith("version=0.1")
    entries = bundle["verificationMaterial"]["tlogEntries"]
    assert entries
    return [verify_entry(e, trusted, require_inclusion_proof=not v01) for e in entries]


def test_every_conformance_case_is_classified(conformance_dir: Path) -> None:
    names = {_short(c) for c in _cases(conformance_dir)}
    assert set(TLOG_FAILURES) <= names and set(OUT_OF_SCOPE) <= names
    for name, case in ((_short(c), c) for c in _cases(conformance_dir)):
        if name in TLOG_FAILURES:
            assert case["expected"] == "fail", name


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        from tests.helpers.paths import CONFORMANCE_DIR

        cases = json.loads((CONFORMANCE_DIR / "cases.json").read_text()) if CONFORMANCE_DIR \
            else []
        metafunc.parametrize("case", cases, ids=[c["id"].split("/", 1)[1] for c in cases])


def test_conformance_case(case: dict, conformance_dir: Path) -> None:
    name = _short(case)
    if name in OUT_OF_SCOPE:
        with pytest.raises(ValueError):
            json.loads((conformance_dir / case["bundle"]).read_text())
        return
    if name in TLOG_FAILURES:
        error, why = TLOG_FAILURES[name]
        with pytest.raises(error):
            _run_case(conformance_dir, case)
        return
    results = _run_case(conformance_dir, case)
    for r in results:
        assert r.inclusion_proof_verified or r.set_verified
        if r.kind_version == "0.0.1":
            assert r.set_verified  # every Rekor v1 entry here carries a SET
        if r.inclusion_proof_verified:
            assert r.checkpoint_origin and r.tree_size


def test_integrated_time_in_future(conformance_dir: Path) -> None:
    case = next(c for c in _cases(conformance_dir)
                if _short(c) == "integrated-time-in-future_fail")
    bundle = json.loads((conformance_dir / case["bundle"]).read_text())
    trusted = trusted_logs_from_root(json.loads(
        (conformance_dir / case["trusted_root"]).read_text()))
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    t = int(entry["integratedTime"])
    verify_entry(entry, trusted, now=t + 1)
    with pytest.raises(LogEntryError, match="in the future"):
        verify_entry(entry, trusted, now=t - 3600)


def test_rekor_v2_log_id_is_c2sp_key_id(conformance_dir: Path) -> None:
    root = json.loads((conformance_dir / "data/sigstore+sigstore-conformance/test/assets/"
                       "bundle-verify/rekor2-happy-path/trusted_root.json").read_text())
    v2 = [t for t in trusted_logs_from_root(root) if t.verifier.key_type == "ed25519"][0]
    assert v2.log_id == c2sp_key_id("log2025-alpha1.rekor.sigstage.dev", v2.verifier.public_key)


def test_trust_root_validity_window(conformance_dir: Path) -> None:
    case_dir = conformance_dir / "data/sigstore+sigstore-conformance/test/assets/bundle-verify"
    root = json.loads((case_dir / "trust-root-tlog-validity-end-inclusive/trusted_root.json")
                      .read_text())
    entry = json.loads((case_dir / "trust-root-tlog-validity-end-inclusive/bundle.sigstore.json")
                       .read_text())["verificationMaterial"]["tlogEntries"][0]
    verify_entry(entry, trusted_logs_from_root(root))  # end is inclusive
    for tlog in root["tlogs"]:
        if tlog["publicKey"].get("validFor", {}).get("end") == "2023-07-12T15:56:36Z":
            tlog["publicKey"]["validFor"]["end"] = "2023-07-12T15:56:35Z"
    with pytest.raises(LogEntryError, match="not valid at integrated time"):
        verify_entry(entry, trusted_logs_from_root(root))


def test_trusted_root_parsing_errors() -> None:
    signer = LogSigner.generate()
    der = base64.b64encode(signer.verifier.public_key.public_bytes(
        __import__("cryptography").hazmat.primitives.serialization.Encoding.DER,
        __import__("cryptography").hazmat.primitives.serialization.PublicFormat
        .SubjectPublicKeyInfo)).decode()
    good = {"baseUrl": "https://log.example", "publicKey": {
        "rawBytes": der, "keyDetails": "PKIX_ECDSA_P256_SHA_256",
        "validFor": {"start": "2024-01-01T00:00:00Z"}},
        "logId": {"keyId": base64.b64encode(signer.log_id).decode()}}
    [t] = trusted_logs_from_root({"tlogs": [good]})
    assert t.log_id == signer.log_id and t.base_url == "https://log.example"
    assert t.valid_from == datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    bad_roots = [{}, {"tlogs": []}, {"tlogs": [1]}, "x"]
    for mutate in [
        lambda t: t["publicKey"].pop("validFor"),
        lambda t: t["publicKey"]["validFor"].update(start="yesterday"),
        lambda t: t["publicKey"]["validFor"].update(start="2024-01-01T00:00:00"),
        lambda t: t["publicKey"]["validFor"].update(end="2023-01-01T00:00:00Z"),
        lambda t: t["publicKey"].update(rawBytes="AAAA"),
        lambda t: t["publicKey"].update(rawBytes="***"),
        lambda t: t["logId"].update(keyId="AAAA"),
        lambda t: t.pop("logId"),
        lambda t: t.update(baseUrl=5),
    ]:
        t2 = copy.deepcopy(good)
        mutate(t2)
        bad_roots.append({"tlogs": [t2]})
    for root in bad_roots:
        with pytest.raises(TrustRootError):
            trusted_logs_from_root(root)  # type: ignore[arg-type]


# --- entries from our own log --------------------------------------------------------

@pytest.fixture(scope="module", params=["ecdsa-p256", "ed25519"])
def our_log(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("vlog") / "log.db"
    log = TransparencyLog.init(path, origin="log.example.test/mgattest",
                               key_type=request.param)
    log.append_many_canonical([CanonicalEntry("hashedrekord", "0.0.1",
                                              b'{"apiVersion":"0.0.1","kind":"hashedrekord",'
                                              b'"spec":{"n":%d}}' % i) for i in range(11)])
    yield log
    log.close()


def _trusted(log: TransparencyLog, **kw) -> list[TrustedLog]:
    return [TrustedLog.for_verifier(log.signer.verifier, origin=log.origin, **kw)]


def test_our_entries_verify(our_log: TransparencyLog) -> None:
    for index in (0, 5, 10):
        entry = our_log.entry_by_index(index)
        proof = our_log.inclusion_proof(index)
        got = verify_entry(entry.to_bundle_entry(proof), _trusted(our_log))
        assert (got.log_index, got.tree_size, got.checkpoint_origin) == (index, 11, our_log.origin)
        assert got.inclusion_proof_verified and got.set_verified
        assert got.body == entry.body and got.log_id == our_log.log_id.hex()
        got2 = verify_rekor_entry(entry.to_rekor_json(proof), _trusted(our_log))
        assert got2 == got
        # v0.1 style: SET only
        v01 = verify_entry(entry.to_bundle_entry(None), _trusted(our_log),
                           require_inclusion_proof=False)
        assert v01.set_verified and not v01.inclusion_proof_verified
        with pytest.raises(InclusionProofError):
            verify_entry(entry.to_bundle_entry(None), _trusted(our_log))


def test_origin_from_base_url(our_log: TransparencyLog) -> None:
    bundle = our_log.entry_by_index(3).to_bundle_entry(our_log.inclusion_proof(3))
    verifier = our_log.signer.verifier
    ok = TrustedLog(our_log.log_id, verifier, "https://log.example.test/mgattest/")
    verify_entry(bundle, [ok])
    # A Rekor v1 (0.0.1) entry: the URL does not define the origin (DESIGN, "Verification,
    # in order" 3), so only an origin the caller or the trust names is enforced.
    elsewhere = TrustedLog(our_log.log_id, verifier, "https://other.example.test/mgattest")
    assert verify_entry(bundle, [elsewhere]).checkpoint_origin == our_log.origin
    assert verify_entry(bundle, [TrustedLog(our_log.log_id, verifier)]).inclusion_proof_verified
    with pytest.raises(CheckpointError, match="origin"):
        verify_entry(bundle, _trusted(our_log), origin="log.example.test/other")
    named = TrustedLog(our_log.log_id, verifier, "https://log.example.test/mgattest/",
                       origin="log.example.test/other")
    with pytest.raises(CheckpointError, match="origin"):
        verify_entry(bundle, [named])


def _flip_b64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[len(raw) // 2] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def test_tampering_every_field(our_log: TransparencyLog) -> None:
    entry = our_log.entry_by_index(6)
    good = entry.to_bundle_entry(our_log.inclusion_proof(6))
    trusted = _trusted(our_log)
    verify_entry(good, trusted)
    other_cp = our_log.signed_checkpoint(7)
    other_body = our_log.entry_by_index(2).body

    def body_with(obj: dict) -> str:
        return base64.b64encode(json.dumps(obj).encode()).decode()

    tampers = {
        "logIndex": (lambda e: e.update(logIndex="7"), SETError),
        "logIndex negative": (lambda e: e.update(logIndex="-6"), LogEntryError),
        "logIndex huge": (lambda e: e.update(logIndex=str(1 << 70)), LogEntryError),
        "logId": (lambda e: e["logId"].update(keyId=_flip_b64(e["logId"]["keyId"])),
                  LogEntryError),
        "kind": (lambda e: e["kindVersion"].update(kind="dsse"), LogEntryError),
        "version": (lambda e: e["kindVersion"].update(version="0.0.2"), LogEntryError),
        "integratedTime": (lambda e: e.update(
            integratedTime=str(int(e["integratedTime"]) - 1)), SETError),
        "integratedTime future": (lambda e: e.update(
            integratedTime=str(int(e["integratedTime"]) + 10_000_000)), LogEntryError),
        "SET": (lambda e: e["inclusionPromise"].update(
            signedEntryTimestamp=_flip_b64(e["inclusionPromise"]["signedEntryTimestamp"])),
            SETError),
        "proof logIndex": (lambda e: e["inclusionProof"].update(logIndex="5"),
                           InclusionProofError),
        # index 6 has the same path shape in trees of 11 and 12 leaves: the proof maths
        # passes, the checkpoint (signed for 11) catches it
        "proof treeSize": (lambda e: e["inclusionProof"].update(treeSize="12"),
                           CheckpointError),
        "proof treeSize 7": (lambda e: e["inclusionProof"].update(treeSize="7"),
                              InclusionProofError),
        "proof rootHash": (lambda e: e["inclusionProof"].update(
            rootHash=_flip_b64(e["inclusionProof"]["rootHash"])), InclusionProofError),
        "proof hash": (lambda e: e["inclusionProof"]["hashes"].__setitem__(
            1, _flip_b64(e["inclusionProof"]["hashes"][1])), InclusionProofError),
        "proof extra hash": (lambda e: e["inclusionProof"]["hashes"].append(
            e["inclusionProof"]["rootHash"]), InclusionProofError),
        "proof hashes not list": (lambda e: e["inclusionProof"].update(hashes="x"),
                                  InclusionProofError),
        "checkpoint other size": (lambda e: e["inclusionProof"]["checkpoint"].update(
            envelope=other_cp), CheckpointError),
        "checkpoint edited": (lambda e: e["inclusionProof"]["checkpoint"].update(
            envelope=e["inclusionProof"]["checkpoint"]["envelope"].replace("\n11\n", "\n12\n")),
            CheckpointError),
        "checkpoint missing": (lambda e: e["inclusionProof"].pop("checkpoint"),
                               CheckpointError),
        "body": (lambda e: e.update(canonicalizedBody=base64.b64encode(other_body).decode()),
                 InclusionProofError),
        "body not json": (lambda e: e.update(canonicalizedBody="AAAA"), LogEntryError),
        "body kind": (lambda e: e.update(canonicalizedBody=body_with(
            {"apiVersion": "0.0.1", "kind": "dsse"})), LogEntryError),
        "body not base64": (lambda e: e.update(canonicalizedBody="%%%"), LogEntryError),
        "not a dict": (lambda e: e.clear(), LogEntryError),
    }
    for label, (mutate, error) in tampers.items():
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(error):
            verify_entry(bad, trusted)
    with pytest.raises(LogEntryError):
        verify_entry("nope", trusted)  # type: ignore[arg-type]
    with pytest.raises(LogEntryError, match="not trusted"):
        verify_entry(good, [])
    other_key = TrustedLog(our_log.log_id, LogSigner.generate(our_log.signer.key_type).verifier,
                           origin=our_log.origin)
    with pytest.raises((CheckpointError, SETError)):
        verify_entry(good, [other_key])
    window = TrustedLog(our_log.log_id, our_log.signer.verifier, origin=our_log.origin,
                        valid_from=datetime.datetime.now(datetime.timezone.utc)
                        + datetime.timedelta(days=1))
    with pytest.raises(LogEntryError, match="not valid"):
        verify_entry(good, [window])


def test_rekor_entry_uuid_must_match_body(our_log: TransparencyLog) -> None:
    entry = our_log.entry_by_index(1)
    rekor = entry.to_rekor_json(our_log.inclusion_proof(1))
    verify_rekor_entry(rekor, _trusted(our_log))
    wrong = {our_log.entry_by_index(2).uuid: rekor[entry.uuid]}
    with pytest.raises(LogEntryError, match="UUID"):
        verify_rekor_entry(wrong, _trusted(our_log))
    for bad in ({}, {"a": 1, "b": 2}, []):
        with pytest.raises(MgattestError):
            verify_rekor_entry(bad, _trusted(our_log))  # type: ignore[arg-type]


def test_consistency_notes(our_log: TransparencyLog) -> None:
    verifiers = [our_log.signer.verifier]
    old, new = our_log.signed_checkpoint(4), our_log.signed_checkpoint(11)
    proof = our_log.consistency_proof(4, 11)
    a, b = verify_consistency_notes(old, new, proof, verifiers, our_log.origin)
    assert (a.size, b.size) == (4, 11)
    with pytest.raises(ConsistencyProofError):
        verify_consistency_notes(old, new, proof[:-1], verifiers, our_log.origin)
    with pytest.raises(ConsistencyProofError):
        verify_consistency_notes(new, old, proof, verifiers, our_log.origin)
    with pytest.raises(ConsistencyProofError):
        verify_consistency_notes(our_log.signed_checkpoint(5), new, proof, verifiers)
    with pytest.raises(CheckpointError):
        verify_consistency_notes(old, new, proof, [LogSigner.generate().verifier])


@pytest.mark.interop
def test_sigstore_python_verifies_our_entries(our_log: TransparencyLog) -> None:
    """sigstore-python's own entry verification (Merkle inclusion, checkpoint signature
    and root, SET) accepts entries from our log, for ECDSA and Ed25519 logs."""
    from cryptography.hazmat.primitives import serialization
    from sigstore._internal.trust import Keyring
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.models import TransparencyLogEntry
    from sigstore_models.common import v1 as common_v1
    from sigstore_models.rekor.v1 import TransparencyLogEntry as RawEntry

    der = our_log.signer.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    details = (common_v1.PublicKeyDetails.PKIX_ED25519
               if our_log.signer.key_type == "ed25519"
               else common_v1.PublicKeyDetails.PKIX_ECDSA_P256_SHA_256)
    keyring = Keyring([common_v1.PublicKey.from_json(json.dumps(
        {"rawBytes": base64.b64encode(der).decode(), "keyDetails": details.value}))])
    for index in range(our_log.size):
        bundle_entry = our_log.entry_by_index(index).to_bundle_entry(
            our_log.inclusion_proof(index))
        TransparencyLogEntry(RawEntry.from_dict(bundle_entry))._verify(keyring)
    bad = copy.deepcopy(bundle_entry)
    bad["inclusionPromise"]["signedEntryTimestamp"] = _flip_b64(
        bad["inclusionPromise"]["signedEntryTimestamp"])
    with pytest.raises(SigstoreVerificationError):
        TransparencyLogEntry(RawEntry.from_dict(bad))._verify(keyring)


def test_verifier_from_pem_matches(our_log: TransparencyLog) -> None:
    v = LogVerifier.from_pem(our_log.signer.public_pem())
    assert v.log_id == our_log.signer.log_id


@pytest.fixture(scope="module")
def flip_target(tmp_path_factory):
    log = TransparencyLog.init(tmp_path_factory.mktemp("flip") / "log.db", origin="flip.example")
    log.append_many_canonical([CanonicalEntry("hashedrekord", "0.0.1",
                                              b'{"apiVersion":"0.0.1","kind":"hashedrekord",'
                                              b'"spec":{"n":%d}}' % i) for i in range(9)])
    entry = log.entry_by_index(4).to_bundle_entry(log.inclusion_proof(4))
    trusted = _trusted(log)
    yield entry, trusted
    log.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_property_single_byte_flip_of_body_or_checkpoint(flip_target, data) -> None:
    entry, trusted = flip_target
    verify_entry(entry, trusted)
    bad = copy.deepcopy(entry)
    if data.draw(st.booleans()):
        body = bytearray(base64.b64decode(entry["canonicalizedBody"]))
        pos = data.draw(st.integers(0, len(body) - 1))
        body[pos] ^= 1 << data.draw(st.integers(0, 7))
        bad["canonicalizedBody"] = base64.b64encode(bytes(body)).decode()
    else:
        note = entry["inclusionProof"]["checkpoint"]["envelope"]
        text_len = note.index("\n\n") + 1  # the signed text, incl. its final newline
        pos = data.draw(st.integers(0, text_len - 1))
        raw = bytearray(note.encode())
        raw[pos] ^= 1 << data.draw(st.integers(0, 6))
        bad["inclusionProof"]["checkpoint"]["envelope"] = raw.decode("utf-8", "replace")
    with pytest.raises(MgattestError):
        verify_entry(bad, trusted)


def test_rotated_log_key_picks_the_window_covering_integrated_time(
        our_log: TransparencyLog) -> None:
    """Two trusted-root entries for one log ID (a key listed twice with different
    windows): the one valid at the integrated time is used."""
    entry = our_log.entry_by_index(0).to_bundle_entry(our_log.inclusion_proof(0))
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    old = TrustedLog(our_log.log_id, our_log.signer.verifier, origin=our_log.origin,
                     valid_from=now - 10 * day, valid_to=now - 5 * day)
    current = TrustedLog(our_log.log_id, our_log.signer.verifier, origin=our_log.origin,
                         valid_from=now - 4 * day)
    verify_entry(entry, [old, current])
    with pytest.raises(LogEntryError, match="not valid"):
        verify_entry(entry, [old])
