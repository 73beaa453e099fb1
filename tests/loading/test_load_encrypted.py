"""``mgattest.load(..., decrypt=KeySource)``: decrypt, verify and load in one pass,
with no plaintext written anywhere; signing an encrypted model gives the subjects
signing it before encryption gives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tink")

import mgattest  # noqa: E402 - after the optional-dependency skip
from mgattest.attest._sign import KeySigner, sign_digests, sign_model, write_bundle_file  # noqa: E402
from mgattest.crypt import KekKeyset, KeySource, encrypt_path  # noqa: E402
from mgattest.crypt.errors import DecryptionError, RetiredKeyError  # noqa: E402
from mgattest.loading import hash_encrypted_model  # noqa: E402
from mgattest.policy.errors import PolicyDenied  # noqa: E402

MARKER = b"plaintext-marker-7f3a"


def _model(root: Path) -> Path:
    import safetensors.numpy as sn
    root.mkdir()
    (root / "w.safetensors").write_bytes(sn.save({"w": np.arange(6, dtype=np.float32)}))
    (root / "config.json").write_bytes(b'{"note": "' + MARKER + b'"}')
    return root


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    files = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                st = path.stat()
                files[str(path)] = (st.st_size, st.st_mtime_ns)
    return files


def _spy_on_writes(monkeypatch) -> list[str]:
    """Record every file this process opens for writing (os.open and open)."""
    import builtins
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def os_open(path, flags, *args, **kwargs):
        if flags & write_flags:
            opened.append(str(path))
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+"):
            opened.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    return opened


def _holding_marker(*roots: Path) -> list[str]:
    return [str(p) for root in roots for p in root.rglob("*")
            if p.is_file() and MARKER in p.read_bytes()]


@pytest.fixture
def encrypted(env, tmp_path):
    tmp, signer = env
    plain = _model(tmp / "plain")
    bundle = write_bundle_file(sign_model(plain, signer).bundle, tmp / "model.sigstore.json")
    kek = KekKeyset.generate()
    (tmp / "kek.json").write_text(kek.to_json())
    encrypt_path(plain, tmp / "enc", kek)
    return tmp, signer, plain, bundle, kek


def test_load_decrypts_verifies_and_writes_no_plaintext(encrypted, monkeypatch):
    tmp, _, plain, bundle, _ = encrypted
    scratch = tmp / "scratch-tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    shm = Path("/dev/shm")
    watched = [tmp, scratch] + ([shm] if shm.is_dir() else [])
    import shutil
    shutil.rmtree(plain)  # the only plaintext on disk was the signing input
    assert _holding_marker(tmp) == []
    before = _snapshot(*watched)
    writes = _spy_on_writes(monkeypatch)
    got = mgattest.load(tmp / "enc", policy=tmp / "policy.yaml", bundles=[bundle],
                        decrypt=KeySource.file(tmp / "kek.json"))
    assert writes == []  # not even a temporary file was opened for writing
    np.testing.assert_array_equal(got["w.safetensors"]["w"], np.arange(6, dtype=np.float32))
    assert got["config.json"] == {"note": MARKER.decode()}
    assert _snapshot(*watched) == before
    assert _holding_marker(tmp, scratch) == []


def test_single_encrypted_file_loads(env):
    import safetensors.numpy as sn
    tmp, signer = env
    plain = tmp / "m.safetensors"
    plain.write_bytes(sn.save({"a": np.ones(3)}))
    bundle = write_bundle_file(sign_model(plain, signer).bundle, tmp / "m.sigstore.json")
    kek = KekKeyset.generate()
    encrypt_path(plain, tmp / "m.enc", kek)
    got = mgattest.load(tmp / "m.enc", policy=tmp / "policy.yaml", bundles=[bundle],
                        decrypt=kek)
    np.testing.assert_array_equal(got["a"], np.ones(3))
    # signing the encrypted file: the plaintext name is not stored, name= gives it
    subjects = sign_model(plain, signer).statement["subject"]
    digests = hash_encrypted_model(tmp / "m.enc", kek, name="m.safetensors")
    assert digests.single_file and sign_digests(digests, KeySigner(signer)) \
        .statement["subject"] == subjects
    assert hash_encrypted_model(tmp / "m.enc", kek).files[0].name == "m.enc"


def test_signing_encrypted_equals_signing_plaintext(encrypted):
    tmp, signer, plain, bundle, kek = encrypted
    before = sign_model(plain, signer)
    after = sign_digests(hash_encrypted_model(tmp / "enc", kek), KeySigner(signer))
    assert after.statement["subject"] == before.statement["subject"]
    enc_bundle = write_bundle_file(after.bundle, tmp / "enc.sigstore.json")
    # the bundle made from the ciphertext verifies the plaintext, and the other way round
    assert mgattest.load(plain, policy=tmp / "policy.yaml", bundles=[enc_bundle])
    assert mgattest.load(tmp / "enc", policy=tmp / "policy.yaml", bundles=[bundle],
                         decrypt=kek)


def test_tampered_ciphertext_fails_before_the_policy(encrypted):
    tmp, _, _, bundle, kek = encrypted
    target = tmp / "enc" / "config.json"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(data)
    with pytest.raises(DecryptionError, match="config.json: segment 0") as exc:
        mgattest.load(tmp / "enc", policy=tmp / "policy.yaml", bundles=[bundle], decrypt=kek)
    assert exc.value.exit_code == 1


def test_retired_key_and_unsigned_plaintext(encrypted):
    tmp, signer, plain, bundle, kek = encrypted
    with pytest.raises(RetiredKeyError):
        mgattest.load(tmp / "enc", policy=tmp / "policy.yaml", bundles=[bundle],
                      decrypt=kek.rotated().retired(kek.primary_key_id))
    # authentic ciphertext of an unsigned model: decryption succeeds, the policy denies
    (plain / "config.json").write_bytes(b'{"note": "changed"}')
    encrypt_path(plain, tmp / "enc2", kek)
    with pytest.raises(PolicyDenied):
        mgattest.load(tmp / "enc2", policy=tmp / "policy.yaml", bundles=[bundle], decrypt=kek)
    assert os.path.isdir(tmp / "enc2")
