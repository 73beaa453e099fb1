"""policy.audit_tree as a library: models verified concurrently through ModelVerifier,
a caller's bad trust input fails the whole audit instead of blaming each model."""

from __future__ import annotations

import threading

import pytest

from mgattest.attest import (KeySigner, LogTarget, PendingBundleFile, generate_signer,
                             sign_model, write_keypair)
from mgattest.attest.errors import KeyFileError
from mgattest.policy import AuditOptions, ModelVerifier, TrustOptions, VerifyOptions, audit_tree


def _signed_tree(tmp_path, n):
    signer = generate_signer()
    _, pub = write_keypair(signer, tmp_path / "k", None)
    tree = tmp_path / "tree"
    for i in range(n):
        model = tree / f"m{i}.safetensors"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(bytes([i]) * (1000 + i))
        out = PendingBundleFile(tree / f"m{i}.safetensors.sigstore.json")
        sign_model(model, KeySigner(signer, LogTarget.from_options(no_log=True)), output=out)
    return tree, pub


def test_models_are_verified_on_worker_threads_and_each_reported(tmp_path):
    tree, pub = _signed_tree(tmp_path, 6)
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()
    totals: list[int] = []

    def on_result(result):
        with lock:
            seen.append((result.name, threading.current_thread().name))

    verifier = ModelVerifier(None, TrustOptions(keys=(str(pub),)),
                             VerifyOptions(allow_unlogged=True))
    report = audit_tree(tree, verifier, AuditOptions(scan_content=False, workers=3),
                        on_start=totals.append, on_result=on_result)
    assert totals == [6]
    assert report.ok, [(r.name, r.findings) for r in report.results]
    assert sorted(name for name, _ in seen) == [f"m{i}.safetensors" for i in range(6)]
    assert all(thread.startswith("mgattest-audit") for _, thread in seen)
    # without --allow-unlogged the same unlogged bundles are invalid, each one named
    strict = audit_tree(tree, ModelVerifier(None, TrustOptions(keys=(str(pub),))),
                        AuditOptions(scan_content=False))
    assert [r.status for r in strict.results] == ["invalid"] * 6


def test_an_unreadable_trust_key_fails_the_audit_not_each_model(tmp_path):
    tree, _ = _signed_tree(tmp_path, 2)
    verifier = ModelVerifier(None, TrustOptions(keys=(str(tmp_path / "missing.pub"),)))
    with pytest.raises(KeyFileError):
        audit_tree(tree, verifier, AuditOptions(scan_content=False, workers=1))
