"""migrate_tree as a library: a file that changes between the check of its old claims and
its signature is not signed; what a migrated bundle covers is the checked bytes."""

from __future__ import annotations

import hashlib
import os

import pytest

from mgattest.attest import KeySigner, LogTarget, MigrateOptions, generate_signer, migrate_tree
from mgattest.attest import _migrate
from mgattest.errors import InputError


def _tree(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    (root / "m.pt").write_bytes(b"weights")
    (root / "SHA256SUMS").write_text(f"{hashlib.sha256(b'weights').hexdigest()}  m.pt\n")
    return root


def test_file_changed_after_the_check_is_not_signed(tmp_path, monkeypatch):
    root = _tree(tmp_path)
    real = _migrate.hash_for_signing

    def swap_then_hash(path, *args, **kwargs):
        (root / "m.pt").write_bytes(b"swapped")  # after the claim check, before signing
        return real(path, *args, **kwargs)

    monkeypatch.setattr(_migrate, "hash_for_signing", swap_then_hash)
    signer = KeySigner(generate_signer("ecdsa-p256"), LogTarget("none"))
    report = migrate_tree(root, signer)
    (result,) = report.files
    assert result.status == "failed" and report.failed
    assert "changed after its claims were checked" in result.reasons[0]
    assert not (root / "m.pt.sigstore.json").exists()


def test_signs_only_whole_file_sha256_and_needs_a_signer(tmp_path):
    from mgattest.attest import DigestOptions, SignOptions

    root = _tree(tmp_path)
    with pytest.raises(InputError, match="whole-file SHA-256"):
        migrate_tree(root, None, MigrateOptions(
            dry_run=True, sign=SignOptions(digests=DigestOptions(shard_size=1024))))
    with pytest.raises(InputError, match="needs a signer"):
        migrate_tree(root, None)
    report = migrate_tree(root, None, MigrateOptions(dry_run=True))
    assert [(f.name, f.status) for f in report.files] == [("m.pt", "verified")]
    signed = migrate_tree(root, KeySigner(generate_signer("ed25519"), LogTarget("none")))
    assert [(f.name, f.status) for f in signed.files] == [("m.pt", "signed")]


def _signer():
    return KeySigner(generate_signer("ed25519"), LogTarget("none"))


def test_a_name_the_sign_pipeline_refuses_fails_that_file_only(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    for name in ("ok.bin", "back\\slash.bin"):
        (root / name).write_bytes(name.encode())
    lines = "".join(f"{hashlib.sha256(n.encode()).hexdigest()}  {n.replace(chr(92), chr(92) * 2)}\n"
                    for n in ("ok.bin", "back\\slash.bin"))
    (root / "SHA256SUMS").write_text("\\" + lines.splitlines()[1] + "\n" + lines.splitlines()[0] + "\n")
    report = migrate_tree(root, _signer())
    status = {f.name: f.status for f in report.files}
    assert status == {"ok.bin": "signed", "back\\slash.bin": "failed"}
    (bad,) = [f for f in report.files if f.status == "failed"]
    assert "not signed" in bad.reasons[0] and "backslash" in bad.reasons[0]


def test_claim_documents_read_and_misread(tmp_path):
    import base64
    import hmac
    import json

    root = tmp_path / "tree"
    root.mkdir()
    data = b"model bytes"
    (root / "a.pt").write_bytes(data)
    (root / "b.pt").write_bytes(data)
    (root / "c.pt").write_bytes(data)
    mac = hmac.new(b"k", data, hashlib.sha256).digest()
    # URL-safe base64 without padding, an absolute path of the signing machine: accepted
    (root / "a.pt.sig").write_text(json.dumps({
        "file": "/home/ci/build/a.pt", "signature": base64.urlsafe_b64encode(mac).decode().rstrip("="),
        "algorithm": "hmac_sha256"}))
    # a record naming another file than its neighbour, and an unknown algorithm: problems
    (root / "b.pt.sig").write_text(json.dumps({"file": "other.pt", "signature": mac.hex()}))
    (root / "c.pt.sig").write_text(json.dumps({"file": "c.pt", "signature": mac.hex(),
                                               "algorithm": "RSA-SHA256"}))
    (root / "detached.sig").write_bytes(b"\x30\x45binary signature")  # openssl's, not ours
    (root / "config.json").write_text(json.dumps({"layers": 2, "sha256": False}))
    report = migrate_tree(root, None, MigrateOptions(hmac_key=b"k", dry_run=True))
    status = {f.name: (f.status, f.reasons) for f in report.files}
    assert status["a.pt"] == ("verified", ())
    assert status["b.pt"][0] == "failed" and "names 'other.pt'" in status["b.pt"][1][0]
    assert status["c.pt"][0] == "failed" and "unsupported signature algorithm" in status["c.pt"][1][0]
    assert [n.source for n in report.notes] == ["detached.sig"]
    assert "config.json" not in report.claim_files


def test_an_unreadable_directory_is_a_claim_problem(tmp_path, monkeypatch):
    root = _tree(tmp_path)
    (root / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):  # what chmod 000 does for a user other than root
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = migrate_tree(root, None, MigrateOptions(dry_run=True))
    assert report.failed
    assert (report.problems[0].source, report.problems[0].message) == (
        "locked", "cannot read directory: Permission denied")
