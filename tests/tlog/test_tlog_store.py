"""TransparencyLog + SQLite store: lifecycle, appends, duplicates, append-only triggers,
proofs from stored subtrees (O(log n) reads), checkpoints, output shapes, integrity."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives import serialization

from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import verify_checkpoint
from mgattest.tlog._entries import CanonicalEntry
from mgattest.tlog.errors import (
    DuplicateEntryError,
    EntryRejectedError,
    LogError,
    UnknownEntryError,
)
from mgattest.tlog._keys import LogSigner
from mgattest.tlog._log import TransparencyLog, default_origin
from mgattest.tlog._promise import verify_set
from mgattest.tlog._verify import verify_consistency_notes


def proposal(key, data: bytes) -> dict:
    digest = hashlib.sha256(data).digest()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "signature": {"content": base64.b64encode(
            key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))).decode(),
            "publicKey": {"content": base64.b64encode(pem).decode()}},
        "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}}}}


def canon(i: int) -> CanonicalEntry:
    return CanonicalEntry("hashedrekord", "0.0.1", b'{"leaf":%d}' % i)


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def log(tmp_path: Path):
    log = TransparencyLog.init(tmp_path / "log.db", tmp_path / "log.key", origin="test.example/log")
    yield log
    log.close()


def test_init_writes_key_0600_and_reopens(tmp_path: Path) -> None:
    log = TransparencyLog.init(tmp_path / "a.db", tmp_path / "a.key")
    assert log.origin == default_origin()
    assert stat.S_IMODE(os.stat(tmp_path / "a.key").st_mode) == 0o600
    signer = LogSigner.from_pem((tmp_path / "a.key").read_bytes())
    log.append_canonical(canon(1))
    log.close()
    again = TransparencyLog.open(tmp_path / "a.db", signer)
    assert again.size == 1 and again.origin == log.origin and again.log_id == signer.log_id
    again.close()
    with pytest.raises(LogError, match="not the key"):
        TransparencyLog.open(tmp_path / "a.db", LogSigner.generate())
    with pytest.raises(LogError, match="already exists"):
        TransparencyLog.init(tmp_path / "a.db")
    with pytest.raises(LogError, match="already exists"):
        TransparencyLog.init(tmp_path / "b.db", tmp_path / "a.key")
    with pytest.raises(LogError, match="does not exist"):
        TransparencyLog.open(tmp_path / "nope.db", signer)
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(LogError):
        TransparencyLog.open(tmp_path / "junk.db", signer)
    with pytest.raises(LogError, match="origin"):
        TransparencyLog.init(tmp_path / "c.db", origin="has space")


def test_wal_mode_and_ed25519(tmp_path: Path) -> None:
    log = TransparencyLog.init(tmp_path / "e.db", key_type="ed25519", origin="e.example")
    assert log.signer.key_type == "ed25519"
    entry = log.append_canonical(canon(0))
    proof = log.inclusion_proof(0)
    verify_checkpoint(proof.checkpoint, [log.signer.verifier], origin="e.example")
    verify_set(log.signer.verifier, entry.set_signature, entry.body, entry.integrated_time,
               entry.log_id, 0)
    log.close()
    conn = sqlite3.connect(tmp_path / "e.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_append_verify_and_duplicates(log: TransparencyLog, key) -> None:
    first = log.append(proposal(key, b"model-1"))
    assert first.log_index == 0 and first.kind == "hashedrekord"
    assert first.uuid == merkle.leaf_hash(first.body).hex()
    verify_set(log.signer.verifier, first.set_signature, first.body, first.integrated_time,
               log.log_id.hex(), 0)
    second = log.append(proposal(key, b"model-2"))
    assert second.log_index == 1
    # the same artifact signed again (ECDSA is randomised) is a different leaf ...
    assert log.append(proposal(key, b"model-1")).log_index == 2
    # ... but the very same canonical body is refused, naming the existing entry
    with pytest.raises(DuplicateEntryError) as info:
        log.append_canonical(CanonicalEntry(first.kind, first.api_version, first.body))
    assert info.value.existing == first
    assert "index 0" in info.value.message
    assert log.size == 3
    assert log.entry_by_uuid(first.uuid) == first
    assert log.entry_by_uuid("00" * 8 + first.uuid.upper()) == first  # 80-hex Rekor form
    assert log.entry_by_index(1) == second


def test_rejected_entries_leave_log_unchanged(log: TransparencyLog, key) -> None:
    log.append_many_canonical([canon(i) for i in range(5)])
    root = log.root_hash()
    bad = proposal(key, b"x")
    bad["spec"]["data"]["hash"]["value"] = "00" * 32
    with pytest.raises(EntryRejectedError, match="entry 1 of the batch"):
        log.append_many([proposal(key, b"ok"), bad])
    with pytest.raises(EntryRejectedError, match="repeats"):
        log.append_many_canonical([canon(10), canon(10)])
    with pytest.raises(DuplicateEntryError):
        log.append_many_canonical([canon(11), canon(3)])
    assert log.size == 5 and log.root_hash() == root
    assert log.append_many([]) == []


def test_unknown_entries(log: TransparencyLog) -> None:
    log.append_canonical(canon(0))
    for call in [lambda: log.entry_by_index(1), lambda: log.entry_by_index(-1),
                 lambda: log.entry_by_uuid("zz"), lambda: log.entry_by_uuid("00" * 32),
                 lambda: log.inclusion_proof(1), lambda: log.inclusion_proof(0, 2),
                 lambda: log.consistency_proof(2, 1), lambda: log.root_hash(5),
                 lambda: log.signed_checkpoint(9), lambda: log.subtree_hash(0, 2)]:
        with pytest.raises(UnknownEntryError):
            call()


def test_append_only_triggers(log: TransparencyLog) -> None:
    log.append_many_canonical([canon(i) for i in range(4)])
    log.signed_checkpoint()
    conn = sqlite3.connect(log.path)
    for sql in ["UPDATE entries SET body = x'00' WHERE idx = 0",
                "DELETE FROM entries WHERE idx = 3",
                "UPDATE subtrees SET hash = zeroblob(32)",
                "DELETE FROM subtrees",
                "DELETE FROM checkpoints",
                "UPDATE meta SET value = 'evil' WHERE key = 'origin'",
                "INSERT INTO entries VALUES (7, zeroblob(32), x'00', 0, 'k', 'v', x'00')",
                "INSERT INTO entries VALUES (4, randomblob(32), x'00', 0, 'k', 'v', x'00'),"
                " (6, randomblob(32), x'00', 0, 'k', 'v', x'00')"]:
        with pytest.raises(sqlite3.DatabaseError, match="append-only|next index"):
            conn.execute(sql)
            conn.commit()
        conn.rollback()
    conn.close()
    assert log.size == 4
    assert log.check_integrity() == 4


def test_proofs_for_every_index_and_checkpoint_consistency(log: TransparencyLog) -> None:
    hashes_ = []
    notes = {}
    for batch in (1, 2, 5, 13, 30, 1, 20):  # 72 leaves, in uneven batches
        start = log.size
        entries = log.append_many_canonical([canon(start + i) for i in range(batch)])
        hashes_ += [bytes.fromhex(e.uuid) for e in entries]
        notes[log.size] = log.signed_checkpoint()
    assert log.signed_checkpoint() == notes[log.size]  # issued once, stored
    n = log.size
    assert log.root_hash() == merkle.root_hash(hashes_)
    for size in (1, 2, 3, 7, 8, 9, 33, n):
        assert log.root_hash(size) == merkle.root_hash(hashes_[:size])
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            merkle.verify_inclusion(hashes_[index], index, size, proof.hashes, proof.root_hash)
            assert proof.root_hash == log.root_hash(size)
    for a in notes:
        for b in notes:
            if a <= b:
                verify_consistency_notes(notes[a], notes[b], log.consistency_proof(a, b),
                                         [log.signer.verifier], log.origin)
    assert log.subtree_hash(8, 16) == merkle.root_hash(hashes_[8:16])
    assert log.subtree_hash(5, 40) == merkle.root_hash(hashes_[5:40])
    assert log.leaf_hash(17) == hashes_[17]


def test_proofs_need_logarithmic_reads(tmp_path: Path) -> None:
    """An inclusion proof in a 2^14+3 leaf log reads O(log n) rows, not O(n)."""
    log = TransparencyLog.init(tmp_path / "big.db", origin="big.example")
    n = (1 << 14) + 3
    log.append_many_canonical([canon(i) for i in range(n)])
    log.signed_checkpoint()  # issue it once, so proofs below only read
    statements: list[str] = []
    log._store._conn.set_trace_callback(statements.append)
    for index in (0, 12345, n - 1):
        statements.clear()
        proof = log.inclusion_proof(index)
        assert len(proof.hashes) <= 15
        merkle.verify_inclusion(log.leaf_hash(index), index, n, proof.hashes, proof.root_hash)
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(reads) <= 3 * 15 + 5, len(reads)
    statements.clear()
    log.consistency_proof(1000, n)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 60
    log._store._conn.set_trace_callback(None)
    log.close()


def test_output_shapes(log: TransparencyLog, key) -> None:
    entry = log.append(proposal(key, b"shape"))
    proof = log.inclusion_proof(0)
    rekor = entry.to_rekor_json(proof)
    assert list(rekor) == [entry.uuid]
    inner = rekor[entry.uuid]
    assert base64.b64decode(inner["body"]) == entry.body
    assert inner["logID"] == log.log_id.hex() and inner["logIndex"] == 0
    assert isinstance(inner["integratedTime"], int)
    ip = inner["verification"]["inclusionProof"]
    assert ip == {"checkpoint": proof.checkpoint, "hashes": [], "logIndex": 0,
                  "rootHash": proof.root_hash.hex(), "treeSize": 1}
    assert base64.b64decode(inner["verification"]["signedEntryTimestamp"]) == \
        entry.set_signature
    bundle = entry.to_bundle_entry(proof)
    assert bundle["logIndex"] == "0" and bundle["integratedTime"] == str(entry.integrated_time)
    assert base64.b64decode(bundle["logId"]["keyId"]) == log.log_id
    assert bundle["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
    assert bundle["inclusionProof"]["treeSize"] == "1"
    assert bundle["inclusionProof"]["checkpoint"] == {"envelope": proof.checkpoint}
    assert base64.b64decode(bundle["inclusionPromise"]["signedEntryTimestamp"]) == \
        entry.set_signature
    json.dumps(bundle)
    # sigstore-models (protobuf-specs) accepts it as a TransparencyLogEntry
    from sigstore_models.rekor.v1 import TransparencyLogEntry

    parsed = TransparencyLogEntry.from_dict(bundle)
    assert parsed.log_index == 0 and parsed.canonicalized_body == entry.body


def test_check_integrity_detects_tampering(tmp_path: Path) -> None:
    log = TransparencyLog.init(tmp_path / "t.db", origin="t.example")
    log.append_many_canonical([canon(i) for i in range(20)])
    log.signed_checkpoint()
    assert log.check_integrity() == 20
    log.close()
    # an attacker with file access drops the triggers and rewrites a leaf
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("UPDATE entries SET leaf_hash = randomblob(32) WHERE idx = 5")
    conn.commit()
    conn.close()
    reopened = TransparencyLog.open(tmp_path / "t.db", log.signer)
    with pytest.raises(LogError, match="corrupt"):
        reopened.check_integrity()
    reopened.close()


def test_init_cleans_up_when_the_key_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="cannot write key file"):
        TransparencyLog.init(tmp_path / "k.db", tmp_path / "missing-dir" / "k.key")
    assert not (tmp_path / "k.db").exists()
    # and it can then be created properly
    TransparencyLog.init(tmp_path / "k.db", tmp_path / "k.key").close()
