"""Checkpoint origin and signer name of a private log, as the reference clients read them.

A Rekor v1 log's origin ("<hostname> - <treeID>", or whatever `log init` chose) is not
derived from the URL clients use, and the trusted root has no field for it; sigstore-js
matches the checkpoint *signer name* against the log's base URL. So: v1 entries verify
whatever their origin (the signature by the trusted key, size and root still bind them),
Rekor v2 entries keep the spec's origin check, and a served log signs under its host.
"""

from __future__ import annotations


import pytest

from mgattest.tlog._checkpoint import parse_signed_note
from mgattest.tlog.errors import CheckpointError
from mgattest.tlog._log import TransparencyLog
from mgattest.tlog._trust import TrustedLog
from mgattest.tlog._verify import verify_entry
from tests.helpers.log_server import hashedrekord, new_key


def _hashedrekord(tmp_path):
    return hashedrekord(new_key(), b"artifact")


@pytest.fixture
def default_log(tmp_path):
    log = TransparencyLog.init(tmp_path / "l.db", tmp_path / "l.key")  # default origin
    yield log
    log.close()


def _bundle_entry(log):
    entry = log.append(_hashedrekord(None))
    return entry.to_bundle_entry(log.inclusion_proof(entry.log_index))


def test_v1_entry_with_an_origin_unrelated_to_the_url_verifies(default_log):
    trusted = TrustedLog(default_log.log_id, default_log.signer.verifier,
                         "http://127.0.0.1:3000", None, None, None)
    verified = verify_entry(_bundle_entry(default_log), [trusted])
    assert verified.inclusion_proof_verified and verified.checkpoint_origin == default_log.origin


def test_v1_entry_still_checks_an_origin_the_trust_names(default_log):
    trusted = TrustedLog(default_log.log_id, default_log.signer.verifier,
                         "http://127.0.0.1:3000", None, None, "other.example/log")
    with pytest.raises(CheckpointError, match="origin"):
        verify_entry(_bundle_entry(default_log), [trusted])


def test_v1_entry_checkpoint_from_another_key_still_refused(default_log, tmp_path):
    other = TransparencyLog.init(tmp_path / "o.db", tmp_path / "o.key")
    try:
        entry = _bundle_entry(default_log)
        entry["inclusionProof"]["checkpoint"]["envelope"] = other.signed_checkpoint()
        trusted = TrustedLog(default_log.log_id, default_log.signer.verifier,
                             "http://127.0.0.1:3000", None, None, None)
        with pytest.raises(CheckpointError):
            verify_entry(entry, [trusted])
    finally:
        other.close()


def test_served_ecdsa_log_signs_as_its_host(default_log):
    default_log.signed_checkpoint()  # issued (and stored) under the origin first
    default_log.serve_as("127.0.0.1")
    entry = _bundle_entry(default_log)
    checkpoint, signatures = parse_signed_note(entry["inclusionProof"]["checkpoint"]["envelope"])
    assert [s.name for s in signatures] == ["127.0.0.1"]
    assert checkpoint.origin == default_log.origin
    _, again = parse_signed_note(default_log.signed_checkpoint(0))
    assert [s.name for s in again] == ["127.0.0.1"]


def test_ed25519_log_keeps_its_origin_as_signer_name(tmp_path):
    log = TransparencyLog.init(tmp_path / "e.db", tmp_path / "e.key", key_type="ed25519",
                               origin="ed.example/log")
    try:
        log.serve_as("127.0.0.1")
        assert log.key_name == "ed.example/log"
    finally:
        log.close()
