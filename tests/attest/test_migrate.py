"""migrate_tree as a library: a file that changes between the check of its old claims and
its signature is not signed; what a migrated bundle covers is the checked bytes."""

from __future__ import annotations

import hashlib

import pytest

from mgattest.attest import KeySigner, LogTarget, MigrateOptions, generate_signer, migrate_tree
from mgattest.attest import _migrate
from mgattest.attest._migrate import MigrationError
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
    with pytest.raises(MigrationError, match="changed after its claims were checked"):
        migrate_tree(root, signer)
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
