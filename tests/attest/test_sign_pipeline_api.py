"""The library seams of issue 12: the sign pipeline's typed options and signers, and the
log monitor as a Python API (LogMonitor.poll with a state file)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from mgattest.attest._dsse import sign_envelope
from mgattest.attest._keys import generate_signer
from mgattest.attest._sign import (DigestOptions, KeySigner, LogTarget, PendingBundleFile,
                                  SignOptions, dsse_proposed_entry, hash_for_signing,
                                  model_signing_hint, sign_digests, sign_model)
from mgattest.attest._signers import spki_pem
from mgattest.attest._statement import make_statement, serialize_statement
from mgattest.errors import InputError
from mgattest.tlog._client import ConsistencyProof
from mgattest.tlog.errors import CheckpointError, ConsistencyProofError
from mgattest.tlog._log import TransparencyLog
from mgattest.tlog._monitor import LogMonitor, MonitorState, verify_extension, verify_note


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "weights.bin").write_bytes(bytes(range(256)) * 16)
    (root / "config.json").write_text('{"a": 1}')
    return root


def test_unknown_format_is_refused_when_the_options_are_built() -> None:
    with pytest.raises(InputError, match=r"unknown format 'cbor' \(choose intoto, "
                                         r"model-signing\)"):
        SignOptions(format="cbor")  # type: ignore[arg-type]  # the wrong value is the test


def test_bare_key_and_key_signer_sign_the_same_statement(model: Path) -> None:
    key = generate_signer("ed25519")  # deterministic signatures: identical envelopes
    bare = sign_model(model, key, SignOptions()).bundle
    wrapped = sign_model(model, KeySigner(key, LogTarget("local"))).bundle
    assert bare["dsseEnvelope"] == wrapped["dsseEnvelope"]


def test_model_signing_format_uses_model_signing_key_hint(model: Path) -> None:
    key = generate_signer()
    result = sign_model(model, KeySigner(key, LogTarget("none")),
                        SignOptions(format="model-signing", model_name="m"))
    hint = result.bundle["verificationMaterial"]["publicKey"]["hint"]
    assert hint == model_signing_hint(key.public_key)
    assert result.statement["subject"][0]["name"] == "m"


def test_output_file_is_written_and_left_out_of_the_digests(model: Path) -> None:
    output = PendingBundleFile(model / "model.sigstore.json").check()
    result = sign_model(model, KeySigner(generate_signer(), LogTarget("none")),
                        SignOptions(digests=DigestOptions(shard_size=1024)), output=output)
    assert json.loads(output.path.read_text())["dsseEnvelope"] == result.bundle["dsseEnvelope"]
    assert sorted(s["name"] for s in result.statement["subject"]) == ["config.json",
                                                                    "weights.bin"]
    assert not list(model.glob(".*.tmp"))


def test_the_two_stages_compose_like_sign_model(model: Path) -> None:
    key = generate_signer("ed25519")
    digests = hash_for_signing(model, DigestOptions(algorithm="sha512"))
    staged = sign_digests(digests, KeySigner(key, LogTarget("none")))
    whole = sign_model(model, KeySigner(key, LogTarget("none")),
                       SignOptions(digests=DigestOptions(algorithm="sha512")))
    assert staged.bundle == whole.bundle


def test_an_empty_model_is_refused_before_signing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no files to sign"):
        hash_for_signing(tmp_path / "empty")


# --- the monitor as a library -----------------------------------------------------------

@dataclass
class _LocalClient:
    """A CheckpointSource reading a local TransparencyLog (no HTTP server needed)."""

    log: TransparencyLog
    url: str = "http://log.example"

    def log_info(self) -> dict[str, object]:
        return {"signedTreeHead": self.log.signed_checkpoint()}

    def consistency_proof(self, first: int, last: int) -> ConsistencyProof:
        return ConsistencyProof(first, last, self.log.root_hash(last),
                                self.log.consistency_proof(first, last))


def _append(log: TransparencyLog, text: str) -> None:
    key = generate_signer()
    statement = make_statement([{"name": text, "digest": {"sha256": "00" * 32}}],
                               "https://example.com/p", {})
    envelope = sign_envelope(serialize_statement(statement), key)
    log.append(dsse_proposed_entry(envelope, spki_pem(key.public_key)))


def test_monitor_polls_saves_state_and_detects_a_fork(tmp_path: Path) -> None:
    log = TransparencyLog.init(tmp_path / "log.db", tmp_path / "log.key")
    verifier = log.signer.verifier
    state = tmp_path / "state.json"
    _append(log, "a")
    monitor = LogMonitor(_LocalClient(log), verifier, state)
    first = monitor.poll()
    assert first.previous is None and first.growth is None and first.checkpoint.size == 1
    _append(log, "b")
    _append(log, "c")
    second = monitor.poll()
    assert second.growth == 2 and second.checkpoint.size == 3
    saved = MonitorState.load(state, verifier)
    assert saved is not None and saved.checkpoint == second.checkpoint

    other = TransparencyLog.init(tmp_path / "other.db", signer=log.signer,
                                 origin=log.origin)
    for text in ("x", "y", "z"):
        _append(other, text)
    forked = LogMonitor(_LocalClient(other), verifier, state, state=saved)
    with pytest.raises(ConsistencyProofError, match="different roots: the log is forked"):
        forked.poll()
    assert MonitorState.load(state, verifier) == saved  # a failed poll keeps the state


def test_monitor_state_from_another_log_is_refused(tmp_path: Path) -> None:
    log = TransparencyLog.init(tmp_path / "log.db", tmp_path / "log.key")
    state = tmp_path / "state.json"
    LogMonitor(_LocalClient(log), log.signer.verifier, state).poll()
    stranger = TransparencyLog.init(tmp_path / "s.db", tmp_path / "s.key")
    with pytest.raises(CheckpointError) as refused:
        MonitorState.load(state, stranger.signer.verifier)
    assert refused.value.where is not None and str(state) in refused.value.where


def test_verify_extension_reads_the_log_or_what_it_is_given(tmp_path: Path) -> None:
    """`mgattest log consistency` as a library call: the newer checkpoint and the proof
    come from the caller or from the log; a fork or a proof for another tree fails."""
    log = TransparencyLog.init(tmp_path / "log.db", tmp_path / "log.key")
    verifier = log.signer.verifier
    _append(log, "a")
    old = verify_note(log.signed_checkpoint(), verifier, None, "old")
    _append(log, "b")
    newer = verify_extension(old, verifier, log=_LocalClient(log))
    assert newer.size == 2
    asked: list[int] = []

    def proof() -> list[bytes]:
        asked.append(1)
        return log.consistency_proof(1, 2)

    given = verify_extension(old, verifier, newer_note=log.signed_checkpoint(),
                             newer_label="new", proof=proof)
    assert given == newer and asked == [1]
    same = verify_extension(newer, verifier, newer_note=log.signed_checkpoint(),
                            proof=lambda: pytest.fail("equal sizes need no proof"))
    assert same == newer

    other = TransparencyLog.init(tmp_path / "other.db", signer=log.signer, origin=log.origin)
    for text in ("x", "y"):
        _append(other, text)
    with pytest.raises(ConsistencyProofError):
        verify_extension(old, verifier, log=_LocalClient(other))
    with pytest.raises(InputError, match="a newer checkpoint or a log"):
        verify_extension(old, verifier)
