"""`policy init` as a library call: policy.generate_policy verifies the bundles, reads
the model and returns a policy that parses back (the CLI only writes it)."""

from __future__ import annotations

import hashlib
import json

import pytest

from mgattest.attest import generate_signer
from mgattest.attest._keys import public_key_pem
from mgattest.errors import VerificationError
from mgattest.policy import generate_policy, policy_from_bytes
from tests.helpers.signed_files import signed


@pytest.fixture()
def signed_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    signer = generate_signer()
    (tmp_path / "release.pub").write_bytes(public_key_pem(signer))
    model, bundle = signed(tmp_path, signer, "weights.bin", b"\x00" * 64)
    return tmp_path, model, bundle


def test_generated_policy_pins_the_key_and_parses_back(signed_model) -> None:
    tmp, model, bundle = signed_model
    generated = generate_policy(model, [bundle], keys=[tmp / "release.pub"],
                                pin_digests=True, base_dir=tmp)
    assert len(generated.document["signers"]) == 1
    assert "release.pub" in generated.text

    assert hashlib.sha256(b"\x00" * 64).hexdigest() in generated.text  # --pin-digests
    policy = policy_from_bytes(generated.text.encode(), source="test", base_dir=str(tmp))
    assert policy.signers


def test_a_tampered_bundle_generates_nothing(signed_model) -> None:
    tmp, model, bundle = signed_model
    doc = json.loads(bundle.read_text())
    sig = doc["dsseEnvelope"]["signatures"][0]
    sig["sig"] = ("B" if sig["sig"][0] == "A" else "A") + sig["sig"][1:]
    bundle.write_text(json.dumps(doc))
    with pytest.raises(VerificationError):
        generate_policy(model, [bundle], keys=[tmp / "release.pub"], base_dir=tmp)
