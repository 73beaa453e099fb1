"""Signing and verification end to end through the library API."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time

import pytest

from mgattest.attest import _locallog as locallog, _trustroot as trustroot
from mgattest.attest._keys import generate_signer
from mgattest.attest._sign import (DigestOptions, KeySigner, LogTarget, SignOptions, sign_model,
                                  write_bundle_file)
from mgattest.attest._walk import default_bundle_path
from mgattest.attest._verify import (UnloggedBundleError, verify_bundle,
                                    verify_model)
from mgattest.errors import InputError, VerificationError
from tests.helpers.servers import free_port
from mgattest.attest._options import TrustOptions


MODEL_FILES = {"config.json": b'{"layers": 2}', "sub/weights.bin": bytes(range(256)) * 64,
               "empty.txt": b""}


def _sign(model, signer, options=SignOptions(), log=LogTarget()):
    result = sign_model(model, KeySigner(signer, log), options)
    return write_bundle_file(result.bundle, default_bundle_path(model)), result


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-pss-2048",
                                      "rsa-pkcs1-2048"])
def test_sign_then_verify_every_key_type(model, key_type):
    signer = generate_signer(key_type)
    path, result = _sign(model, signer)
    assert path == model.parent / "model.sigstore.json"
    atts, check = verify_model(model, trust=TrustOptions(keys=[signer.public_key]))
    att = atts[0]
    assert check.ok and {f.name for f in check.files} == {"config.json", "sub/weights.bin",
                                                          "empty.txt"}
    assert att.predicate_type == "https://slsa.dev/provenance/v1"
    assert att.signer.kind == "key"
    proof = att.log_entries[0]
    assert proof.inclusion_proof_verified and proof.set_verified and proof.kind == "dsse"
    assert proof.checkpoint_origin == json.loads(
        (locallog.log_dir() / "log.json").read_text())["origin"]
    digest = hashlib.sha256((model / "sub" / "weights.bin").read_bytes()).hexdigest()
    assert {"name": "sub/weights.bin", "digest": {"sha256": digest}} in att.subjects


def test_deterministic_signatures_reuse_the_log_entry(model):
    signer = generate_signer("ed25519")
    first = sign_model(model, signer).bundle
    second = sign_model(model, signer).bundle
    assert first["dsseEnvelope"] == second["dsseEnvelope"]
    assert first["verificationMaterial"]["tlogEntries"][0]["logIndex"] == \
        second["verificationMaterial"]["tlogEntries"][0]["logIndex"]
    verify_bundle(second, trust=TrustOptions(keys=[signer.public_key]))


def test_single_file_model_and_digest_in_place_of_path(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x08" * 1000)
    signer = generate_signer("ecdsa-p256")
    path, _ = _sign(weights, signer)
    assert path == tmp_path / "model.safetensors.sigstore.json"
    verify_model(weights, trust=TrustOptions(keys=[signer.public_key]))
    digest = "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()
    verify_bundle(path, trust=TrustOptions(keys=[signer.public_key]), artifact_digest=digest)
    with pytest.raises(VerificationError, match="no statement subject"):
        verify_bundle(path, trust=TrustOptions(keys=[signer.public_key]),
                      artifact_digest="sha256:" + "0" * 64)


def test_unlogged_bundles_need_opt_in(model):
    signer = generate_signer("ecdsa-p256")
    _sign(model, signer, log=LogTarget("none"))
    with pytest.raises(UnloggedBundleError, match="no transparency-log entry"):
        verify_model(model, trust=TrustOptions(keys=[signer.public_key]))
    atts, _ = verify_model(model, trust=TrustOptions(keys=[signer.public_key]),
                           allow_unlogged=True)
    assert atts[0].log_entries == []


def test_trust_export_lets_a_second_machine_verify(model, tmp_path, monkeypatch):
    signer = generate_signer("ecdsa-p256")
    bundle_path, _ = _sign(model, signer)
    root = locallog.local_trusted_root()
    exported = tmp_path / "root.json"
    trustroot.write_trusted_root(root, exported)
    from sigstore_models.trustroot.v1 import TrustedRoot as PeerRoot

    PeerRoot.from_json(exported.read_text())  # sigstore-python can read it too
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "other-machine"))
    with pytest.raises(VerificationError, match="no log is trusted"):
        verify_model(model, trust=TrustOptions(keys=[signer.public_key]))
    atts, _ = verify_model(model, trust=TrustOptions(keys=[signer.public_key],
                                                     trusted_root=exported))
    assert atts[0].log_entries[0].inclusion_proof_verified
    # a root listing some other log does not help
    with pytest.raises(VerificationError):
        verify_model(model, trust=TrustOptions(keys=[signer.public_key],
                                               trusted_root=trustroot.embedded_trusted_root()))


def test_log_db_target(model, tmp_path):
    signer = generate_signer("ecdsa-p256")
    db = tmp_path / "team" / "team-log.db"
    _, result = _sign(model, signer, log=LogTarget("local", str(db)))
    assert db.exists() and db.with_suffix(".key").exists()
    root = locallog.local_trusted_root(db)
    atts, _ = verify_model(model, trust=TrustOptions(keys=[signer.public_key], trusted_root=root))
    assert atts[0].log_entries[0].log_index == 0


@pytest.mark.network
def test_sign_into_rekor_compatible_server(model, tmp_path):
    import uvicorn

    from mgattest.tlog._log import TransparencyLog
    from mgattest.tlog._server import create_app

    log = TransparencyLog.init(tmp_path / "srv.db", tmp_path / "srv.key", origin="127.0.0.1")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(log), host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 10
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        signer = generate_signer("ecdsa-p256")
        _sign(model, signer, log=LogTarget("url", f"http://127.0.0.1:{port}"))
        root = trustroot.TrustedRoot(tlogs=(trustroot.log_instance_for_key(
            _public_key_of(log), base_url=f"http://127.0.0.1:{port}", valid_from=0),))
        atts, _ = verify_model(model, trust=TrustOptions(keys=[signer.public_key],
                                                         trusted_root=root))
        assert atts[0].log_entries[0].inclusion_proof_verified
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        log.close()


@pytest.mark.network
def test_sign_into_token_protected_server(model, tmp_path, monkeypatch):
    """A log served with a token refuses signing without it and accepts it from the env."""
    import uvicorn

    from mgattest.tlog._client import LogRequestError
    from mgattest.tlog._log import TransparencyLog
    from mgattest.tlog._server import create_app

    log = TransparencyLog.init(tmp_path / "tok.db", tmp_path / "tok.key", origin="127.0.0.1")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(log, token="s3cret-token"),
                                           host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 10
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        signer = generate_signer("ecdsa-p256")
        target = LogTarget("url", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("MGATTEST_LOG_TOKEN", raising=False)
        with pytest.raises(LogRequestError) as refused:
            sign_model(model, KeySigner(signer, target))
        assert refused.value.status == 401
        assert log.size == 0
        token_file = tmp_path / "token"
        token_file.write_text("s3cret-token\n")
        monkeypatch.setenv("MGATTEST_LOG_TOKEN_FILE", str(token_file))
        result = sign_model(model, KeySigner(signer, target))
        assert log.size == 1
        assert result.bundle["verificationMaterial"]["tlogEntries"][0]["logIndex"] == "0"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        log.close()


def _public_key_of(log):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(log.signer.public_pem())


def test_wrong_key_and_missing_key(model):
    signer = generate_signer("ecdsa-p256")
    _sign(model, signer)
    with pytest.raises(VerificationError, match="any trusted key"):
        verify_model(model, trust=TrustOptions(keys=[generate_signer("ecdsa-p256").public_key]))
    with pytest.raises(InputError, match="--key"):
        verify_model(model)


def test_statement_format_model_signing_verifies_here(model):
    signer = generate_signer("ecdsa-p256")
    _sign(model, signer, SignOptions(format="model-signing"))
    atts, check = verify_model(model, trust=TrustOptions(keys=[signer.public_key]))
    assert atts[0].predicate_type == "https://model_signing/signature/v1.0"
    assert check.ok


def test_sharded_model_verifies(model):
    signer = generate_signer("ecdsa-p256")
    _sign(model, signer, SignOptions(digests=DigestOptions(shard_size=4096)))
    atts, check = verify_model(model, trust=TrustOptions(keys=[signer.public_key]))
    assert check.ok
    (model / "sub" / "weights.bin").write_bytes(b"\xff" + (bytes(range(256)) * 64)[1:])
    with pytest.raises(VerificationError, match=r"shard 0|bytes 0"):
        verify_model(model, trust=TrustOptions(keys=[signer.public_key]))


@pytest.mark.interop
def test_conformance_suite(conformance_dir):
    """Every sigstore-conformance bundle-verify case gets the expected verdict."""
    cases = json.loads((conformance_dir / "cases.json").read_text())
    wrong = []
    for case in cases:
        root = conformance_dir / case["trusted_root"]
        if case["verification_mode"] == "key":
            trust = TrustOptions(trusted_root=root, keys=[str(conformance_dir / case["key"])])
        else:
            trust = TrustOptions(trusted_root=root, identity=dict(
                identity=case["expected_identity"], issuer=case["expected_issuer"]))
        try:
            verify_bundle(str(conformance_dir / case["bundle"]), trust,
                          artifact_digest=str(conformance_dir / case["artifact"]),
                          use_local_log=False)
            got = "pass"
        except (VerificationError, InputError):
            got = "fail"
        if got != case["expected"]:
            wrong.append(case["id"])
    assert not wrong


@pytest.mark.interop
def test_managed_key_message_signature_bundle(conformance_dir):
    """A cosign/sigstore managed-key bundle (messageSignature, hashedrekord entry)."""
    base = conformance_dir / "data/sigstore+sigstore-conformance/test/assets/bundle-verify"
    bundle = base / "managed-key-happy-path/bundle.sigstore.json"
    key = base / "managed-key-happy-path/key.pub"
    root = conformance_dir / "trusted_roots/sigstore-python-4.5.1/production/trusted_root.json"
    att = verify_bundle(bundle, trust=TrustOptions(keys=[key], trusted_root=root),
                        artifact_digest=base / "a.txt")
    assert att.statement is None and att.log_entries[0].kind == "hashedrekord"
    assert att.message_digest == {"sha256": hashlib.sha256((base / "a.txt").read_bytes())
                                  .hexdigest()}
    with pytest.raises(VerificationError, match="predicateType"):
        verify_bundle(bundle, trust=TrustOptions(keys=[key], trusted_root=root),
                      artifact_digest=base / "a.txt",
                      expected_predicate_type="https://slsa.dev/provenance/v1")
    with pytest.raises(VerificationError):
        verify_bundle(bundle, trust=TrustOptions(keys=[key], trusted_root=root),
                      artifact_digest="sha256:" + "1" * 64)


def test_v01_bundles_may_rely_on_the_set_alone(model):
    signer = generate_signer("ecdsa-p256")
    bundle = sign_model(model, signer).bundle
    del bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    with pytest.raises(VerificationError, match="inclusion proof"):
        verify_model(model, [bundle], trust=TrustOptions(keys=[signer.public_key]))
    bundle["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
    atts, _ = verify_model(model, [bundle], trust=TrustOptions(keys=[signer.public_key]))
    proof = atts[0].log_entries[0]
    assert proof.set_verified and not proof.inclusion_proof_verified
    bundle["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"][
        "signedEntryTimestamp"] = base64.b64encode(b"\x30\x00").decode()
    with pytest.raises(VerificationError):
        verify_model(model, [bundle], trust=TrustOptions(keys=[signer.public_key]))


@pytest.mark.slow
def test_parallel_signers_share_one_embedded_log(tmp_path):
    """Four processes create/append to the embedded log at once: one log, four entries."""
    import subprocess
    import sys

    from mgattest.attest._keys import write_keypair

    write_keypair(generate_signer("ecdsa-p256"), tmp_path / "k")
    models = []
    for i in range(4):
        m = tmp_path / f"m{i}"
        m.mkdir()
        (m / "w.bin").write_bytes(bytes([i]) * 100)
        models.append(m)
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-m", "mgattest", "sign", str(m), "--key",
                               str(tmp_path / "k.key")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for m in models]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    indexes = set()
    for m in models:
        atts, _ = verify_model(m, trust=TrustOptions(keys=[tmp_path / "k.pub"]))
        indexes.add(atts[0].log_entries[0].log_index)
    assert indexes == {0, 1, 2, 3}
    assert len(list((tmp_path / "home" / "log").glob("*.db"))) == 1


def test_default_bundle_path(tmp_path, monkeypatch):
    assert default_bundle_path(tmp_path / "bert") == tmp_path / "bert.sigstore.json"
    assert default_bundle_path(f"{tmp_path}/bert/") == tmp_path / "bert.sigstore.json"
    assert default_bundle_path(tmp_path / "w.gguf") == tmp_path / "w.gguf.sigstore.json"
    (tmp_path / "bert").mkdir()
    monkeypatch.chdir(tmp_path / "bert")
    assert default_bundle_path(".") == tmp_path / "bert.sigstore.json"
