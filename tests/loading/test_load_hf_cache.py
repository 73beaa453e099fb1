"""``mgattest.load`` of a Hugging Face cache snapshot, named ``hf:ORG/NAME[@REV]``."""

from __future__ import annotations

import numpy as np
import pytest

import mgattest
from mgattest.attest import KeySigner, sign_model
from mgattest.attest._sign import write_bundle_file
from mgattest.attest.errors import CacheCorruptionError, UnsafePathError
from tests.helpers.hfcache import COMMIT_B, add_revision, blob_of, safetensors_bytes

FILES = {"config.json": b'{"hidden": 2}', "model.safetensors": safetensors_bytes((1.0, 2.0))}


@pytest.fixture
def cached(env, monkeypatch):
    tmp_path, signer = env
    snapshot = add_revision(tmp_path / "hub", "acme/tiny", COMMIT_B, FILES, refs=("main",))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    bundle = write_bundle_file(sign_model("hf:acme/tiny", KeySigner(signer)).bundle,
                               tmp_path / "tiny.sigstore.json")
    return tmp_path, snapshot, bundle


def test_load_reads_the_verified_snapshot(cached):
    tmp_path, _snapshot, bundle = cached
    loaded = mgattest.load("hf:acme/tiny", policy=tmp_path / "policy.yaml", bundles=[bundle])
    assert np.array_equal(loaded["model.safetensors"]["w"], np.array([1.0, 2.0], np.float32))


def test_load_refuses_a_corrupt_blob_and_a_foreign_link(cached):
    tmp_path, snapshot, bundle = cached
    blob = blob_of(snapshot, "model.safetensors")
    original = blob.read_bytes()
    blob.write_bytes(safetensors_bytes((1.0, 3.0)))
    with pytest.raises(CacheCorruptionError, match="model.safetensors"):
        mgattest.load("hf:acme/tiny", policy=tmp_path / "policy.yaml", bundles=[bundle])
    blob.write_bytes(original)
    (tmp_path / "elsewhere.safetensors").write_bytes(original)
    link = snapshot / "model.safetensors"
    link.unlink()
    link.symlink_to(tmp_path / "elsewhere.safetensors")
    with pytest.raises(UnsafePathError, match="'model.safetensors'"):
        mgattest.load("hf:acme/tiny", policy=tmp_path / "policy.yaml", bundles=[bundle])
