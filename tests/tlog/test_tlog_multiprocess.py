"""Several processes appending to one log file, and kill -9 at arbitrary moments."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mgattest.tlog import merkle
from mgattest.tlog._keys import LogSigner
from mgattest.tlog._log import TransparencyLog
from mgattest.tlog._verify import verify_consistency_notes
from tests.helpers.paths import PROJECT_ROOT

ORIGIN = "mp.example/log"

# A child process: open the log and append COUNT entries one transaction at a time (or
# in batches), printing "ack <index> <uuid>" after each commit and "cp <note>" after
# issuing a checkpoint.
CHILD = r"""
import sys, random
from mgattest.tlog._entries import CanonicalEntry
from mgattest.tlog._keys import LogSigner
from mgattest.tlog._log import TransparencyLog

db, key, tag, count, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
log = TransparencyLog.open(db, LogSigner.from_pem(open(key, "rb").read()))
rng = random.Random(tag)
done = 0
while done < count:
    n = min(count - done, rng.randint(1, batch))
    entries = [CanonicalEntry("hashedrekord", "0.0.1", b'{"p":"%s","i":%d}' % (tag.encode(), done + k))
               for k in range(n)]
    if n == 1:
        stored = [log.append_canonical(entries[0])]
    else:
        stored = log.append_many_canonical(entries)
    for e in stored:
        print("ack", e.log_index, e.uuid)
    done += n
    if rng.random() < 0.2:
        note = log.signed_checkpoint()
        print("cp", note.replace("\n", "|"))
    sys.stdout.flush()
log.close()
"""


def _spawn(db: Path, key: Path, tag: str, count: int, batch: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(key), tag, str(count),
                             str(batch)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _parse(lines: list[str]) -> tuple[dict[int, str], list[str]]:
    acks: dict[int, str] = {}
    notes: list[str] = []
    for line in lines:
        if not line.endswith("\n"):
            continue  # cut short by kill -9: not a complete acknowledgement
        if line.startswith("ack "):
            _, index, uuid = line.split()
            acks[int(index)] = uuid
        elif line.startswith("cp "):
            notes.append(line[3:].rstrip("\n").replace("|", "\n"))
    return acks, notes


@pytest.fixture
def new_log(tmp_path: Path):
    db, key = tmp_path / "mp.db", tmp_path / "mp.key"
    TransparencyLog.init(db, key, origin=ORIGIN).close()
    return db, key


@pytest.mark.slow
def test_four_processes_append_without_gaps_or_duplicates(new_log) -> None:
    db, key = new_log
    procs = [_spawn(db, key, f"proc{p}", 500, 1) for p in range(4)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(out.splitlines(keepends=True))
    all_acks: dict[int, str] = {}
    all_notes: list[str] = []
    for lines in outputs:
        acks, notes = _parse(lines)
        assert len(acks) == 500
        assert not set(acks) & set(all_acks), "two processes got the same index"
        all_acks.update(acks)
        all_notes += notes
    assert sorted(all_acks) == list(range(2000))
    signer = LogSigner.from_pem(key.read_bytes())
    log = TransparencyLog.open(db, signer)
    try:
        assert log.size == 2000
        assert log.check_integrity() == 2000
        bodies = {log.entry_by_index(i).body for i in range(2000)}
        assert len(bodies) == 2000
        root = log.root_hash()
        for index, uuid in all_acks.items():
            proof = log.inclusion_proof(index)
            merkle.verify_inclusion(bytes.fromhex(uuid), index, 2000, proof.hashes, root)
        final = log.signed_checkpoint()
        for note in all_notes:  # every checkpoint any process issued is a prefix
            size = int(note.split("\n")[1])
            verify_consistency_notes(note, final, log.consistency_proof(size, 2000),
                                     [signer.verifier], ORIGIN)
    finally:
        log.close()


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_entry(new_log) -> None:
    db, key = new_log
    signer = LogSigner.from_pem(key.read_bytes())
    rng = random.Random(1234)
    acked: dict[int, str] = {}
    notes: list[str] = []
    for round_no in range(4):
        proc = _spawn(db, key, f"round{round_no}", 100_000, 40)
        assert proc.stdout is not None
        lines: list[str] = [proc.stdout.readline()]  # wait for the first commit
        deadline = time.monotonic() + rng.uniform(0.05, 1.0)
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        lines += rest.splitlines(keepends=True)  # complete lines printed before death
        assert proc.returncode == -signal.SIGKILL
        acks, new_notes = _parse(lines)
        assert acks, "child acknowledged nothing before being killed"
        acked.update(acks)
        notes += new_notes
        log = TransparencyLog.open(db, signer)
        try:
            size = log.size
            assert size >= max(acked) + 1
            assert log.check_integrity() == size
            for index, uuid in acked.items():
                assert log.entry_by_index(index).uuid == uuid
            head = log.signed_checkpoint()
            for note in notes:
                old = int(note.split("\n")[1])
                verify_consistency_notes(note, head, log.consistency_proof(old, size),
                                         [signer.verifier], ORIGIN)
            for index in rng.sample(sorted(acked), 20):
                proof = log.inclusion_proof(index)
                merkle.verify_inclusion(bytes.fromhex(acked[index]), index, size, proof.hashes,
                                        proof.root_hash)
        finally:
            log.close()
    assert len(notes) > 0
