"""Witnesses (C2SP tlog-witness + tlog-cosignature): real witness servers on 127.0.0.1
with real Ed25519 keys; the log server collecting their cosignatures; forks refused."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from mgattest.errors import InputError
from mgattest.tlog._checkpoint import Checkpoint, parse_signed_note, sign_checkpoint
from mgattest.tlog._cosign import (
    WitnessSigner,
    cosigned_message,
    parse_vkey,
    verify_cosignatures,
)
from mgattest.tlog._keys import LogSigner
from mgattest.tlog._witness import Witness, WitnessState, encode_request, origin_hash
from mgattest.tlog._witnessing import request_cosignature
from tests.helpers.log_server import hashedrekord, make_log, new_key, post, running_server
from tests.helpers.servers import free_port
from tests.helpers.witnesses import running_witness

ORIGIN = "test.mgattest.local/log"


def add(url: str, old: int, proof: list[bytes], note: str) -> requests.Response:
    return requests.post(url + "/add-checkpoint", data=encode_request(old, proof, note),
                         timeout=10)


def grow(log: Any, n: int) -> None:
    key = new_key()
    log.append_many([hashedrekord(key, f"artifact {log.size} {i}".encode()) for i in range(n)])


@pytest.fixture()
def log_and_witness(tmp_path: Path) -> Iterator[tuple[Any, str, Witness]]:
    log, _, _ = make_log(tmp_path / "log", key_type="ed25519")
    with running_witness(tmp_path, "witness.test/w1", {ORIGIN: log.signer.verifier}) as (url, w):
        yield log, url, w
    log.close()


# --------------------------------------------------------------- cosignature format

def test_vkey_round_trip_and_strict_parsing() -> None:
    signer = WitnessSigner.generate("witness.example/w1")
    vkey = signer.key.vkey()
    parsed = parse_vkey(vkey)
    assert parsed.name == "witness.example/w1" and parsed.key_id == signer.key.key_id
    name, hex_id, material = vkey.split("+", 2)
    raw = base64.b64decode(material)
    assert raw[0] == 0x04 and len(raw) == 33
    bad_type = base64.b64encode(b"\x01" + raw[1:]).decode()
    for bad in (f"{name}+{hex_id}+{bad_type}", f"{name}+00000000+{material}",
                f"{name}+{hex_id.upper()}+{material}", f"{name}+{hex_id}", "",
                f"{name}+{hex_id}+{material}=="):
        with pytest.raises(InputError, match="witness key"):
            parse_vkey(bad)


def test_cosignature_matches_the_spec_layout(tmp_path: Path) -> None:
    """key ID ‖ u64 BE timestamp ‖ Ed25519 over 'cosignature/v1\\ntime T\\n' + body —
    checked here with the raw cryptography primitives, not our verifier."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    log = LogSigner.generate("ed25519")
    checkpoint = Checkpoint("o.example/log", 3, b"\1" * 32)
    note = sign_checkpoint(checkpoint, log, "o.example/log")
    signer = WitnessSigner.generate("w.example/a")
    line = signer.cosign(checkpoint, timestamp=1_700_000_000)
    assert line.startswith("\u2014 w.example/a ") and line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == signer.key.key_id
    assert int.from_bytes(raw[4:12], "big") == 1_700_000_000
    pub = ed25519.Ed25519PublicKey.from_public_bytes(
        base64.b64decode(signer.key.vkey().split("+", 2)[2])[1:])
    pub.verify(raw[12:], b"cosignature/v1\ntime 1700000000\n" + checkpoint.body().encode())
    assert cosigned_message(checkpoint.body(), 1_700_000_000).startswith(b"cosignature/v1\n")
    outcome = verify_cosignatures(note + line, [signer.key], now=1_700_000_000)
    assert outcome.verified == {"w.example/a": 1_700_000_000}


def test_bad_cosignatures_are_not_counted() -> None:
    log = LogSigner.generate("ed25519")
    checkpoint = Checkpoint("o/log", 5, b"\2" * 32)
    note = sign_checkpoint(checkpoint, log, "o/log")
    other_cp = Checkpoint("o/log", 6, b"\3" * 32)
    w1, w2, stranger = (WitnessSigner.generate(n) for n in ("w/1", "w/2", "w/3"))
    keys = [w1.key, w2.key]
    now = int(time.time())
    good = w1.cosign(checkpoint, now)
    assert verify_cosignatures(note + good, keys).verified.keys() == {"w/1"}
    # the same witness twice counts once
    assert len(verify_cosignatures(note + good + w1.cosign(checkpoint, now - 5), keys).verified) == 1
    # over a different checkpoint (size 6) → not counted
    moved = verify_cosignatures(note + w2.cosign(other_cp, now), keys)
    assert moved.verified == {} and "does not verify" in moved.rejected[0]
    # a flipped signature byte, a changed timestamp, a future timestamp, a zero timestamp
    raw = bytearray(base64.b64decode(good.split(" ")[2]))
    for pos, value in ((30, raw[30] ^ 1), (11, raw[11] ^ 1)):
        tampered = bytearray(raw)
        tampered[pos] = value
        line = f"\u2014 w/1 {base64.b64encode(bytes(tampered)).decode()}\n"
        assert verify_cosignatures(note + line, keys).verified == {}
    assert "future" in verify_cosignatures(note + w1.cosign(checkpoint, now + 3600),
                                           keys).rejected[0]
    zero = bytearray(raw)
    zero[4:12] = bytes(8)
    line = f"\u2014 w/1 {base64.b64encode(bytes(zero)).decode()}\n"
    assert "out of range" in verify_cosignatures(note + line, keys).rejected[0]
    # an unknown witness is ignored, not an error
    assert verify_cosignatures(note + stranger.cosign(checkpoint, now), keys).verified == {}


# --------------------------------------------------------------- the witness server

def test_witness_cosigns_a_growing_log(log_and_witness: Any) -> None:
    log, url, witness = log_and_witness
    grow(log, 3)
    first = log.signed_checkpoint()
    resp = add(url, 0, [], first)
    assert resp.status_code == 200, resp.text
    outcome = verify_cosignatures(first + resp.text, [witness.signer.key])
    assert set(outcome.verified) == {"witness.test/w1"}
    grow(log, 5)
    second = log.signed_checkpoint()
    resp = add(url, 3, log.consistency_proof(3, 8), second)
    assert resp.status_code == 200, resp.text
    assert verify_cosignatures(second + resp.text, [witness.signer.key]).verified
    # the monitoring read serves the cosigned checkpoint
    got = requests.get(f"{url}/{origin_hash(ORIGIN)}/checkpoint", timeout=10)
    assert got.status_code == 200 and got.text == second + resp.text
    assert requests.get(f"{url}/{origin_hash('other')}/checkpoint", timeout=10).status_code == 404
    # durable: a new Witness over the same database knows size 8
    assert WitnessState(witness.state.path).latest(ORIGIN)[0] == 8


def test_409_flow_returns_the_size_last_cosigned(log_and_witness: Any) -> None:
    log, url, _ = log_and_witness
    grow(log, 4)
    assert add(url, 0, [], log.signed_checkpoint()).status_code == 200
    grow(log, 2)
    stale = add(url, 0, [], log.signed_checkpoint())
    assert stale.status_code == 409
    assert stale.headers["content-type"].startswith("text/x.tlog.size")
    assert stale.text == "4\n"
    assert add(url, 4, log.consistency_proof(4, 6), log.signed_checkpoint()).status_code == 200


def test_witness_refuses_a_fork(tmp_path: Path, log_and_witness: Any) -> None:
    """Two logs with the same key and origin that diverge: once the witness cosigned one,
    it refuses every checkpoint of the other."""
    log, url, _ = log_and_witness
    fork_key = tmp_path / "fork-key.pem"
    fork_key.write_bytes(log.signer.private_pem())
    from mgattest.tlog._log import TransparencyLog

    fork = TransparencyLog.open(_copy_db(log, tmp_path / "fork.db"), LogSigner.from_file(fork_key))
    grow(log, 3)
    grow(fork, 3)  # same size, different leaves: a split view
    assert log.root_hash() != fork.root_hash()
    assert add(url, 0, [], log.signed_checkpoint()).status_code == 200
    same_size = add(url, 3, [], fork.signed_checkpoint())
    assert same_size.status_code == 422 and "forked" in same_size.text
    grow(fork, 4)
    # the fork's own (valid for the fork) proof from 3 does not lead from the root the
    # witness holds
    bigger = add(url, 3, fork.consistency_proof(3, 7), fork.signed_checkpoint())
    assert bigger.status_code == 422 and "consistency proof" in bigger.text
    fork.close()


def _copy_db(log: Any, dest: Path) -> Path:
    """A byte copy of the log's (empty) database: the same key, origin and history."""
    import sqlite3

    src = sqlite3.connect(log.path)
    dst = sqlite3.connect(dest)
    src.backup(dst)
    src.close()
    dst.close()
    return dest


def test_witness_refusals_follow_the_spec(tmp_path: Path, log_and_witness: Any) -> None:
    log, url, _ = log_and_witness
    grow(log, 2)
    note = log.signed_checkpoint()
    # a checkpoint signed by another key under the log's name → 403
    imposter = LogSigner.generate("ed25519")
    cp, _ = parse_signed_note(note)
    forged = sign_checkpoint(cp, imposter, log.key_name)
    assert add(url, 0, [], forged).status_code == 403
    # a flipped bit in the log's signature → 403
    text, sig_line = note.rsplit("\u2014 ", 1)
    name, b64 = sig_line.split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    assert add(url, 0, [], f"{text}\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
               ).status_code == 403
    # an unknown origin → 404
    other = LogSigner.generate("ed25519")
    stranger = sign_checkpoint(Checkpoint("elsewhere/log", cp.size, cp.root_hash), other,
                               "elsewhere/log")
    assert add(url, 0, [], stranger).status_code == 404
    # old larger than the checkpoint → 400; malformed bodies → 400
    assert add(url, 5, [], note).status_code == 400
    for body in (b"old 01\n\n" + note.encode(), b"old 0\n" + note.encode(), b"\xff",
                 b"old 0\nnot-base64\n\n" + note.encode()):
        assert requests.post(url + "/add-checkpoint", data=body, timeout=10).status_code == 400
    # a proof when old is 0 → 422; an empty-tree checkpoint with a wrong root → 422
    assert add(url, 0, [b"\0" * 32], note).status_code == 422
    bad_empty = sign_checkpoint(Checkpoint(ORIGIN, 0, b"\4" * 32), log.signer, log.key_name)
    assert add(url, 0, [], bad_empty).status_code == 422
    # none of these moved the witness: it still cosigns from 0
    assert add(url, 0, [], note).status_code == 200


def test_compare_and_swap_under_racing_requests(log_and_witness: Any) -> None:
    """Many clients submit the same step at once: exactly one wins, the rest get 409."""
    log, url, _ = log_and_witness
    grow(log, 2)
    assert add(url, 0, [], log.signed_checkpoint()).status_code == 200
    grow(log, 3)
    note, proof = log.signed_checkpoint(), log.consistency_proof(2, 5)
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(add(url, 2, proof, note).status_code))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * 7


# --------------------------------------------------------------- the log collects

def test_log_server_collects_cosignatures_from_three_witnesses(tmp_path: Path) -> None:
    from mgattest.tlog._witnessing import WitnessEndpoint

    log, _, _ = make_log(tmp_path / "log", key_type="ed25519")
    logs = {ORIGIN: log.signer.verifier}
    with running_witness(tmp_path, "w.test/1", logs) as (u1, w1), \
            running_witness(tmp_path, "w.test/2", logs) as (u2, w2), \
            running_witness(tmp_path, "w.test/3", logs) as (u3, w3):
        # the third is configured with a wrong vkey: its cosignatures must not be kept
        wrong = WitnessSigner.generate("w.test/3").key
        endpoints = [WitnessEndpoint(u1, w1.signer.key), WitnessEndpoint(u2, w2.signer.key),
                     WitnessEndpoint(u3, wrong)]
        # witness 1 has already cosigned size 0 → first request from 0 works; pre-seed
        # witness 2 with size 1 out of band so the log meets a 409 and must recover
        grow(log, 1)
        assert add(u2, 0, [], log.signed_checkpoint()).status_code == 200
        with running_server(log, witnesses=endpoints) as url:
            key = new_key()
            for i in range(3):
                assert post(url, hashedrekord(key, f"x{i}".encode())).status_code == 201
            note = _wait_for_cosigned(url, 4, {"w.test/1", "w.test/2"},
                                      [w1.signer.key, w2.signer.key])
            assert "w.test/3" not in note  # the wrong key's answer was dropped
            assert w2.state.latest(ORIGIN)[0] == 4  # the 409 flow moved it 1 → 4
            # an inclusion proof served now carries the cosigned checkpoint
            entry = requests.get(url + "/api/v1/log/entries?logIndex=0", timeout=10).json()
            proof = next(iter(entry.values()))["verification"]["inclusionProof"]
            outcome = verify_cosignatures(proof["checkpoint"], [w1.signer.key, w2.signer.key])
            assert set(outcome.verified) == {"w.test/1", "w.test/2"}
            assert proof["treeSize"] == 4
    log.close()


def _wait_for_cosigned(url: str, size: int, names: set[str], keys: list[Any]) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        note = requests.get(url + "/checkpoint", timeout=10).text
        cp, _ = parse_signed_note(note)
        if cp.size == size and set(verify_cosignatures(note, keys).verified) == names:
            return note
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of size {size} cosigned by {names}: {note}")


def test_unreachable_witness_never_blocks_appends(tmp_path: Path) -> None:
    from mgattest.tlog._witnessing import WitnessEndpoint

    log, _, _ = make_log(tmp_path / "log", key_type="ed25519")
    dead = WitnessEndpoint(f"http://127.0.0.1:{free_port()}", WitnessSigner.generate("w/x").key)
    with running_server(log, witnesses=[dead]) as url:
        key = new_key()
        start = time.monotonic()
        for i in range(5):
            assert post(url, hashedrekord(key, f"y{i}".encode())).status_code == 201
        assert time.monotonic() - start < 5
        assert parse_signed_note(requests.get(url + "/checkpoint", timeout=10).text)[0].size == 5
    log.close()


# --------------------------------------------------------------- independent checkers

@pytest.mark.interop
def test_sigstore_python_accepts_a_cosigned_checkpoint(tmp_path: Path) -> None:
    """sigstore-python's own signed-note parser reads every signature line of a checkpoint
    our log serves with cosignatures, and its checkpoint check still accepts the log's
    signature (Rekor v1 ECDSA log): witnesses do not break existing clients."""
    from sigstore._internal.rekor.checkpoint import SignedCheckpoint, verify_checkpoint
    from sigstore.models import TransparencyLogEntry

    from mgattest.tlog._witnessing import WitnessEndpoint
    from tests.helpers.peers import sigstore_keyring

    log, _, _ = make_log(tmp_path / "log")  # ECDSA P-256, as Rekor v1
    logs = {ORIGIN: log.signer.verifier}
    with running_witness(tmp_path, "w.test/1", logs) as (u1, w1), \
            running_witness(tmp_path, "w.test/2", logs) as (u2, w2):
        keys = [w1.signer.key, w2.signer.key]
        with running_server(log, witnesses=[WitnessEndpoint(u1, keys[0]),
                                            WitnessEndpoint(u2, keys[1])]) as url:
            assert post(url, hashedrekord(new_key(), b"interop")).status_code == 201
            _wait_for_cosigned(url, 1, {"w.test/1", "w.test/2"}, keys)
            raw = requests.get(url + "/api/v1/log/entries?logIndex=0", timeout=10).json()
    envelope = next(iter(raw.values()))["verification"]["inclusionProof"]["checkpoint"]
    parsed = SignedCheckpoint.from_text(envelope)
    assert [s.name for s in parsed.signed_note.signatures] == [log.key_name, "w.test/1",
                                                               "w.test/2"]
    verify_checkpoint(sigstore_keyring(log), TransparencyLogEntry._from_v1_response(raw))
    log.close()


def test_the_log_keeps_only_cosignatures_that_verify(tmp_path: Path) -> None:
    """A witness answering a good line, a forged line under its name and a line of another
    key: only the good line is kept; an answer with none that verifies is an error."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from mgattest.tlog._witnessing import WitnessEndpoint, WitnessRequestError
    from tests.helpers.log_server import serving

    log, _, _ = make_log(tmp_path / "log", key_type="ed25519")
    grow(log, 2)
    note = log.signed_checkpoint()
    checkpoint, _ = parse_signed_note(note)
    honest, other = WitnessSigner.generate("w/h"), WitnessSigner.generate("w/o")
    good = honest.cosign(checkpoint)
    forged = honest.cosign(Checkpoint(ORIGIN, 2, b"\5" * 32))  # over another root
    answers = [good + forged + other.cosign(checkpoint), forged]

    async def add_checkpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse(answers.pop(0))

    app = Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"])])
    with serving(app) as url:
        endpoint = WitnessEndpoint(url, honest.key)
        size, lines = request_cosignature(endpoint, note, 2, 0, lambda old: [])
        assert size == 2 and lines == [good.rstrip("\n")]
        with pytest.raises(WitnessRequestError, match="no cosignature that verifies"):
            request_cosignature(endpoint, note, 2, 0, lambda old: [])
    log.close()
