"""``log monitor`` proves an inconsistent log: forks, rewrites, shrinks and bad checkpoints
leave an evidence file that ``log verify-evidence`` re-checks offline with the log key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mgattest.tlog import merkle
from mgattest.tlog._checkpoint import parse_signed_note
from mgattest.tlog._entries import canonicalize
from mgattest.tlog._evidence import Inconsistency, verify_evidence
from mgattest.tlog._keys import LogSigner
from mgattest.tlog._log import TransparencyLog
from mgattest.tlog.errors import ConsistencyProofError
from tests.helpers.cli_runner import mg
from tests.helpers.log_server import hashedrekord, make_log, new_key, running_server

pytestmark = pytest.mark.network
ORIGIN = "test.mgattest.local/log"
ARTIFACT_KEY = new_key()


def _entries(tag: str, count: int, start: int = 0) -> list[Any]:
    return [canonicalize(hashedrekord(ARTIFACT_KEY, f"{tag} {i}".encode()))
            for i in range(start, start + count)]


def _twin(tmp: Path, name: str, key: Path) -> TransparencyLog:
    """Another log under the same key and origin: what a forking operator runs."""
    signer = LogSigner.from_pem(key.read_bytes())
    return TransparencyLog.init(tmp / f"{name}.db", origin=ORIGIN, signer=signer)


@pytest.fixture()
def honest(tmp_path: Path) -> tuple[TransparencyLog, Path, Path]:
    log, _, key = make_log(tmp_path / "honest", origin=ORIGIN)
    pub = tmp_path / "log.pub"
    pub.write_bytes(log.signer.public_pem())
    return log, key, pub


def _monitor(url: str, pub: Path, state: Path, evidence: Path, *extra: str) -> Any:
    return mg("log", "monitor", "--url", url, "--log-key", pub, "--state", state,
              "--evidence", evidence, "--count", "1", *extra)


def _verify(evidence: Path, pub: Path) -> Any:
    return mg("log", "verify-evidence", evidence, "--log-key", pub)


@pytest.mark.parametrize("mode", [(), ("--tiles",)], ids=["proof-api", "tiles"])
@pytest.mark.parametrize("old_size", [10, 8], ids=["size-10", "power-of-two-8"])
def test_fork_is_proven_and_the_proof_checks_offline(
        tmp_path: Path, honest: tuple[TransparencyLog, Path, Path], mode: tuple[str, ...],
        old_size: int) -> None:
    log, key, pub = honest
    log.append_many_canonical(_entries("shared", 4) + _entries("honest", old_size - 4))
    state, evidence = tmp_path / "state.json", tmp_path / "evidence.json"
    with running_server(log) as url:
        assert _monitor(url, pub, state, evidence, *mode).exit_code == 0
    forked = _twin(tmp_path, "forked", key)
    forked.append_many_canonical(_entries("shared", 4) + _entries("forked", 11))
    with running_server(forked) as url:
        res = _monitor(url, pub, state, evidence, *mode)
    assert res.exit_code == 1, res.output
    assert "evidence (fork) written to" in res.output and "verify-evidence" in res.output
    assert json.loads(state.read_text())["size"] == old_size  # the good head is kept
    doc = json.loads(evidence.read_text())
    assert doc["kind"] == "fork" and doc["conclusive"] is True
    assert doc["previousCheckpoint"] == log.signed_checkpoint()
    assert doc["servedCheckpoint"] == forked.signed_checkpoint()
    # an independent check of the claim: the proof reproduces the forked (signed) root
    # and, for the first old_size entries, exactly the forked log's own prefix root
    proof = [bytes.fromhex(h) for h in doc["consistencyProof"]["hashes"]]
    seed = bytes.fromhex(doc["consistencyProof"].get("oldSizeSubtree", "00" * 32))
    old_root, new_root = merkle.consistency_roots(old_size, 15, proof, seed)
    assert new_root == forked.root_hash() and old_root == forked.root_hash(old_size)
    assert old_root != log.root_hash()

    ok = _verify(evidence, pub)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("confirmed (fork, conclusive)")

    # doctored evidence is rejected: a proof hash, the served note, the old note
    def doctored(change: Any) -> Any:
        copy = json.loads(evidence.read_text())
        change(copy)
        path = tmp_path / "doctored.json"
        path.write_text(json.dumps(copy))
        return _verify(path, pub)

    def flip_hash(d: dict[str, Any]) -> None:
        d["consistencyProof"]["hashes"][0] = "ab" * 32

    def consistent_pair(d: dict[str, Any]) -> None:  # claim a fork of two honest heads
        d["servedCheckpoint"] = d["previousCheckpoint"]

    def edit_note(d: dict[str, Any]) -> None:
        d["servedCheckpoint"] = d["servedCheckpoint"].replace("\n15\n", "\n16\n")

    for change, message in ((flip_hash, "does not reproduce the served checkpoint's root"),
                            (consistent_pair, "needs 0 < old size < new size"),
                            (edit_note, "does not verify under the log key")):
        res = doctored(change)
        assert res.exit_code == 1 and res.output.startswith("rejected:"), res.output
        assert message in res.output
    stranger = tmp_path / "stranger.pub"
    stranger.write_bytes(make_log(tmp_path / "stranger")[0].signer.public_pem())
    assert _verify(evidence, stranger).exit_code == 1


def test_an_honest_log_gives_no_false_alarm_on_either_path(
        tmp_path: Path, honest: tuple[TransparencyLog, Path, Path]) -> None:
    log, _, pub = honest
    state, evidence = tmp_path / "state.json", tmp_path / "evidence.json"
    with running_server(log) as url:
        for size, mode in ((1, ()), (8, ("--tiles",)), (300, ()), (513, ("--tiles",)),
                           (513, ()), (1000, ("--tiles",))):
            log.append_many_canonical(_entries("grow", size - log.size, log.size))
            res = _monitor(url, pub, state, evidence, *mode)
            assert res.exit_code == 0, res.output
            assert json.loads(state.read_text())["size"] == size
    assert not evidence.exists()


def test_rewrite_shrink_and_bad_checkpoint_leave_evidence(
        tmp_path: Path, honest: tuple[TransparencyLog, Path, Path]) -> None:
    log, key, pub = honest
    log.append_many_canonical(_entries("honest", 6))
    state = tmp_path / "state.json"
    with running_server(log) as url:
        assert _monitor(url, pub, state, tmp_path / "unused.json").exit_code == 0
    cases: list[tuple[str, TransparencyLog, str]] = []
    rewritten = _twin(tmp_path, "rewritten", key)  # same size, other entries
    rewritten.append_many_canonical(_entries("other", 6))
    cases.append(("rewrite", rewritten, "confirmed (rewrite, conclusive)"))
    shrunk = _twin(tmp_path, "shrunk", key)
    shrunk.append_many_canonical(_entries("honest", 3))
    cases.append(("shrink", shrunk, "confirmed (shrink, observation)"))
    impostor, _, _ = make_log(tmp_path / "impostor", origin=ORIGIN)  # another key
    impostor.append_many_canonical(_entries("honest", 9))
    cases.append(("bad-checkpoint", impostor, "confirmed (bad-checkpoint, observation)"))
    for kind, served, confirmed in cases:
        evidence = tmp_path / f"{kind}.json"
        with running_server(served) as url:
            res = _monitor(url, pub, state, evidence)
        assert res.exit_code == 1 and f"evidence ({kind})" in res.output, (kind, res.output)
        doc = json.loads(evidence.read_text())
        assert doc["kind"] == kind and doc["servedCheckpoint"] == served.signed_checkpoint()
        ok = _verify(evidence, pub)
        assert ok.exit_code == 0 and ok.output.startswith(confirmed), ok.output
        assert json.loads(state.read_text())["size"] == 6
    # without --evidence the file lands beside the state
    with running_server(rewritten) as url:
        res = mg("log", "monitor", "--url", url, "--log-key", pub, "--state", state)
    assert res.exit_code == 1
    beside = list(tmp_path.glob("state.evidence-*.json"))
    assert len(beside) == 1 and json.loads(beside[0].read_text())["kind"] == "rewrite"
    # a rewrite claim over two honest notes, a bad-checkpoint claim over a good note
    doc = json.loads((tmp_path / "rewrite.json").read_text())
    doc["servedCheckpoint"] = doc["previousCheckpoint"]
    (tmp_path / "fake.json").write_text(json.dumps(doc))
    assert "different roots" in _verify(tmp_path / "fake.json", pub).output
    doc = json.loads((tmp_path / "bad-checkpoint.json").read_text())
    doc["servedCheckpoint"] = log.signed_checkpoint()
    (tmp_path / "fake.json").write_text(json.dumps(doc))
    res = _verify(tmp_path / "fake.json", pub)
    assert res.exit_code == 1 and "no bad checkpoint" in res.output


def test_invalid_proof_evidence_is_an_observation_not_a_fork(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    log.append_many_canonical(_entries("x", 5))
    old = log.signed_checkpoint()
    log.append_many_canonical(_entries("x", 7, 5))
    new = log.signed_checkpoint()
    junk = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
    verdict = verify_evidence(Inconsistency("invalid-proof", "bad proof", "log", old, new,
                                            junk), log.signer.verifier)
    assert not verdict.conclusive and "not by itself proof of a fork" in verdict.summary
    good = tuple(log.consistency_proof(5, 12))
    with pytest.raises(ConsistencyProofError, match="the checkpoints are consistent"):
        verify_evidence(Inconsistency("invalid-proof", "", "log", old, new, good),
                        log.signer.verifier)
    with pytest.raises(ConsistencyProofError, match="extends the old one: no fork"):
        verify_evidence(Inconsistency("fork", "", "log", old, new, good), log.signer.verifier)
    assert parse_signed_note(new)[0].size == 12


def test_evidence_files_that_are_not_evidence_exit_2(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    pub = tmp_path / "pub.pem"
    pub.write_bytes(log.signer.public_pem())
    for name, text, message in (("a.json", "[]", "not a log evidence file"),
                                ("b.json", json.dumps({"type": "mgattest.log-inconsistency/v1",
                                                       "kind": "meteor"}), "unknown evidence"),
                                ("c.json", "{", "")):
        (tmp_path / name).write_text(text)
        res = _verify(tmp_path / name, pub)
        assert res.exit_code == 2 and message in res.output, res.output


def test_consistency_roots_give_both_roots_of_an_honest_proof() -> None:
    leaves = [merkle.leaf_hash(b"leaf %d" % i) for i in range(70)]
    subtree = merkle.hashes_subtree(leaves)
    for m in range(1, 70):
        for n in range(m + 1, 71, 7):
            proof = merkle.consistency_path(m, n, subtree)
            old, new = merkle.consistency_roots(m, n, proof, merkle.root_hash(leaves[:m]))
            assert (old, new) == (merkle.root_hash(leaves[:m]), merkle.root_hash(leaves[:n]))
    # too short or too long proofs are refused, not misread
    proof = merkle.consistency_path(5, 40, subtree)
    for bad in (proof[:-1], proof + [proof[0]], []):
        with pytest.raises(ConsistencyProofError):
            merkle.consistency_roots(5, 40, bad, merkle.root_hash(leaves[:5]))
