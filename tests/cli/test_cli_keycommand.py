"""``--key-command`` and KMS key URIs on sign / attest / sign-blob, with the real
``model_signing`` CLI (OpenSSF) as the independent verifier of a model-signing bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli_runner import mg
from tests.helpers.keycommand import openssl_key_command, python_key_command

MODEL_SIGNING_CLI = Path(sys.executable).parent / "model_signing"


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MGATTEST_KEY_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)


def test_sign_with_key_command_then_verify(model, keypair, tmp_path):
    key, pub = keypair
    signed = mg("sign", model, "--key-command", openssl_key_command(tmp_path, key),
                "--key-command-public-key", pub)
    assert signed.exit_code == 0, signed.output
    verified = mg("verify", model, "--key", pub, "--json")
    assert verified.exit_code == 0, verified.output
    doc = json.loads(verified.output)
    assert doc["ok"] and doc["attestations"][0]["log_entries"][0]["inclusion_proof_verified"]


def test_public_key_from_the_command_and_attest(model, keypair, tmp_path):
    key, pub = keypair
    predicate = tmp_path / "pred.json"
    predicate.write_text('{"evaluated": true}')
    result = mg("attest", model, "--predicate-type", "https://example.com/eval/v1",
                "--predicate", predicate, "--key-command", python_key_command(tmp_path, key))
    assert result.exit_code == 0, result.output
    assert mg("verify", model, "--key", pub).exit_code == 0


def test_wrong_signer_exits_2_and_writes_no_bundle(model, keypair, tmp_path):
    _, pub = keypair
    assert mg("keygen", "--out", tmp_path / "other").exit_code == 0
    result = mg("sign", model, "--key-command", python_key_command(tmp_path, tmp_path / "other.key"),
                "--key-command-public-key", pub)
    assert result.exit_code == 2
    assert "does not verify with the ecdsa-p256 public key" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "model.sigstore.json").exists()


def test_failing_command_message_names_it(model, keypair, tmp_path):
    key, pub = keypair
    result = mg("sign", model, "--key-command", python_key_command(tmp_path, key, "fail"),
                "--key-command-public-key", pub)
    assert result.exit_code == 2
    assert "exited with status 3: access denied by key service" in result.output


@pytest.mark.parametrize("args, message", [
    (["--key", "k.key", "--key-command", "signer"], "exactly one of --key KEY.pem, --key-command"),
    (["--keyless", "--key-command", "signer"], "exactly one of"),
    (["--key-command-public-key", "k.pub", "--key", "k.key"], "goes with --key-command"),
])
def test_option_conflicts_exit_2(model, args, message):
    result = mg("sign", model, *args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("uri", ["awskms:///arn:aws:kms:us-east-1:111122223333:key/1234",
                                 "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k",
                                 "azurekms://myvault.vault.azure.net/mykey",
                                 "hashivault://release"])
def test_kms_uri_is_a_clear_usage_error(model, uri):
    for command in (["sign", model], ["sign-blob", model / next(iter(MODEL_FILES))]):
        result = mg(*command, "--key", uri)
        assert result.exit_code == 2, result.output
        assert "not available in this build" in result.output
        assert "--key-command" in result.output and "Traceback" not in result.output


MODEL_FILES = {"config.json": b'{"a": 1}', "weights.bin": bytes(range(256)) * 40}


def test_sign_blob_with_key_command_bundle_and_raw(model, keypair, tmp_path):
    key, pub = keypair
    blob = model / "weights.bin"
    command = python_key_command(tmp_path, key, "base64")
    assert mg("sign-blob", blob, "--key-command", command, "--key-command-public-key",
              pub).exit_code == 0
    assert mg("verify-blob", blob, "--bundle", tmp_path / "model" / "weights.bin.sigstore.json",
              "--key", pub).exit_code == 0
    raw = mg("sign-blob", blob, "--key-command", command, "--raw", "--output", tmp_path / "w.sig")
    assert raw.exit_code == 0, raw.output
    run = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature",
                          str(tmp_path / "w.sig"), str(blob)], capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr


@pytest.mark.interop
def test_model_signing_cli_verifies_a_key_command_bundle(model, keypair, tmp_path):
    key, pub = keypair
    sig = tmp_path / "model.sig"
    result = mg("sign", model, "--format", "model-signing", "--out", sig,
                "--key-command", openssl_key_command(tmp_path, key),
                "--key-command-public-key", pub)
    assert result.exit_code == 0, result.output

    def model_signing_verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(MODEL_SIGNING_CLI), "verify", "key", str(model),
                               "--signature", str(sig), "--public_key", str(pub)],
                              capture_output=True, text=True, timeout=120)

    run = model_signing_verify()
    assert run.returncode == 0, run.stdout + run.stderr
    (model / "weights.bin").write_bytes(b"tampered")
    assert model_signing_verify().returncode != 0
