"""Hard links to the bundle and special files anywhere a path is read (issue #9 items
13 and 14).

A model file hard-linked to the bundle used to leave verification silently (the walk
excluded the bundle by inode). FIFOs, sockets and devices given as bundle, policy, key,
trusted root or manifest, or planted in a quarantined model's ``.git/``, used to hang the
process. Each CLI case runs in a subprocess with a hard timeout, so a regression fails
instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mgattest._files import read_bounded
from mgattest.attest.errors import UnsafePathError
from mgattest.attest._walk import walk_model, walk_model_detailed
from mgattest.errors import InputError
from mgattest.policy._pipeline import TrustOptions
from tests.helpers.trees import RandomBytes

TIMEOUT = 20  # seconds; every case here answers in well under one


def _mg(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgattest", *map(str, args)],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


MODEL_FILES = {"weights.bin": RandomBytes(2048), "config.json": b'{"layers": 2}'}


@pytest.fixture
def signed(tmp_path: Path, model: Path) -> tuple[Path, Path]:
    """(bundle inside the model, public key) from the real sign command."""
    assert _mg("keygen", "--out", tmp_path / "k").returncode == 0
    bundle = model / "model.sigstore.json"
    proc = _mg("sign", model, "--key", tmp_path / "k.key", "--out", bundle, "--no-log")
    assert proc.returncode == 0, proc.stderr
    return bundle, tmp_path / "k.pub"


# --------------------------------------------------------------------------- hard links

def test_hard_link_to_the_bundle_is_refused_not_excluded(tmp_path, model):
    bundle = tmp_path / "b.sigstore.json"
    bundle.write_text('{"mediaType": "x", "attacker": {"payload": "..."}}')
    os.link(bundle, model / "extra.json")
    with pytest.raises(UnsafePathError, match="hard link") as info:
        walk_model(model, exclude=[bundle])
    assert info.value.where == "extra.json"


def test_only_the_bundles_own_path_is_excluded(model):
    bundle = model / "model.sigstore.json"
    bundle.write_text("{}")
    walk = walk_model_detailed(model, exclude=[bundle])
    assert [f.name for f in walk.files] == ["config.json", "weights.bin"]
    assert walk.excluded == ["model.sigstore.json"]


def test_single_file_model_linked_to_the_bundle_is_refused(tmp_path):
    model = tmp_path / "w.bin"
    model.write_bytes(b"x")
    os.link(model, tmp_path / "w.sigstore.json")
    with pytest.raises(UnsafePathError, match="excluded"):
        walk_model(model, exclude=[tmp_path / "w.sigstore.json"])


def test_verify_rejects_a_model_file_hard_linked_to_its_bundle(signed, model):
    bundle, pub = signed
    assert _mg("verify", model, "--bundle", bundle, "--key", pub,
               "--allow-unlogged").returncode == 0
    os.link(bundle, model / "tokenizer.json")  # the bundle's bytes, silently "a model file"
    proc = _mg("verify", model, "--bundle", bundle, "--key", pub, "--allow-unlogged")
    assert proc.returncode != 0
    assert "tokenizer.json" in proc.stderr and "hard link" in proc.stderr


# --------------------------------------------------------------------------- special files

def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _unix_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


@pytest.fixture
def alarm():
    """Fail (instead of hanging the suite) when an in-process read blocks."""
    def _expired(*_args):
        raise TimeoutError("blocked on a special file")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind", ["fifo", "socket", "character device"])
def test_read_bounded_refuses_special_files_at_once(tmp_path, kind, alarm):
    if kind == "fifo":
        path = _fifo(tmp_path / "p")
    elif kind == "socket":
        path = tmp_path / "s"
        _unix_socket(path)
    else:
        path = Path("/dev/zero")  # endless: a bounded read would still take a MiB of it
    with pytest.raises(InputError, match=kind.replace("fifo", "FIFO")):
        read_bounded(path, 1 << 20, what="bundle")


@pytest.mark.parametrize("option", ["--bundle", "--key", "--trusted-root", "--policy"])
def test_verify_with_a_fifo_as_input_file_fails_fast(tmp_path, signed, model, option):
    bundle, pub = signed
    fifo = _fifo(tmp_path / "input.fifo")
    args = {"--bundle": ["--bundle", fifo, "--key", pub],
            "--key": ["--bundle", bundle, "--key", fifo],
            "--trusted-root": ["--bundle", bundle, "--key", pub, "--trusted-root", fifo],
            "--policy": ["--bundle", bundle, "--policy", fifo]}[option]
    proc = _mg("verify", model, *args)
    assert proc.returncode == 2, proc.stderr
    assert "FIFO" in proc.stderr


def test_watch_manifest_fifo_fails_fast(tmp_path, model):
    proc = _mg("watch", model, "--manifest", _fifo(tmp_path / "m.fifo"), "--once")
    assert proc.returncode == 2 and "FIFO" in proc.stderr


def test_quarantine_of_a_model_with_special_files_in_git(tmp_path, model):
    """inspect --quarantine moves a dangerous model whose .git/ holds a FIFO and a
    socket: nothing blocks, and the incident records them by kind."""
    (model / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    git = model / ".git"
    git.mkdir()
    _fifo(git / "fifo")
    sock = _unix_socket(git / "sock")
    try:
        proc = _mg("inspect", model, "--quarantine", tmp_path / "q")
    finally:
        sock.close()
    assert proc.returncode == 1, proc.stderr
    assert not model.exists()
    (incident,) = [p for p in (tmp_path / "q").iterdir()]
    record = json.loads((incident / "incident.json").read_text())
    digests = record["items"][0]["sha256"]
    assert digests[".git/fifo"] == "special:a FIFO"
    assert digests[".git/sock"] == "special:a socket"
    restored = _mg("quarantine", "restore", record["id"], "--dir", tmp_path / "q")
    assert restored.returncode == 0, restored.stderr
    assert (model / ".git" / "fifo").is_fifo()


def test_quarantine_listing_survives_a_fifo_incident_record(tmp_path):
    incident = tmp_path / "q" / "20260101T000000.000000Z-deadbeef"
    incident.mkdir(parents=True)
    _fifo(incident / "incident.json")
    proc = _mg("quarantine", "list", "--dir", tmp_path / "q")
    assert proc.returncode == 0 and "no incidents" in proc.stdout


def test_inspect_of_a_fifo_reports_it(tmp_path):
    _fifo(tmp_path / "w.pkl")
    proc = _mg("inspect", tmp_path)
    assert proc.returncode == 1 and "not a regular file" in proc.stdout


# --------------------------------------------------------------------------- trust anchors

@pytest.mark.parametrize("where", ["inside", "hard link"])
def test_trust_anchors_that_are_part_of_the_model_are_refused(tmp_path, signed, model, where):
    """A key inside the model (or hard-linked to a model file) is rewritable by whoever
    rewrites the model: it could vouch for anything."""
    bundle, pub = signed
    if where == "inside":
        key = model / "trusted.pub"
        key.write_bytes(pub.read_bytes())
    else:
        key = pub
        os.link(pub, model / "notes.txt")
    for args in (("verify", model, "--bundle", bundle, "--key", key, "--allow-unlogged"),
                 ("watch", model, "--bundle", bundle, "--key", key, "--allow-unlogged",
                  "--once")):
        proc = _mg(*args)
        assert proc.returncode == 2, proc.stderr
        assert "part of the model" in proc.stderr


def test_policy_with_a_fifo_key_file_is_a_problem_not_a_hang(tmp_path, alarm):
    """A key (or trusted root) a policy names by path is read like every input file."""
    from mgattest.policy.errors import PolicyError
    from mgattest.policy._loader import load_policy

    _fifo(tmp_path / "k.pub")
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: mgattest/v1\nkind: Policy\ntrust:\n  keys:\n"
                      "    - name: k\n      path: k.pub\nsigners:\n  k: {key: k}\n"
                      "rules:\n  - id: r\n    signedBy: {anyOf: [k]}\n")
    with pytest.raises(PolicyError, match="FIFO"):
        load_policy(policy)


@pytest.mark.parametrize("anchor", ["policy", "trusted root"])
def test_load_refuses_trust_anchors_inside_the_model(tmp_path, signed, model, anchor):
    """mgattest.load() holds the same line as `verify`: a policy or trusted root that is
    part of the model it judges is refused before anything is verified or parsed."""
    import mgattest

    bundle, pub = signed
    policy = (tmp_path if anchor == "trusted root" else model) / "policy.yaml"
    (policy.parent / "release.pub").write_bytes(pub.read_bytes())
    policy.write_text("apiVersion: mgattest/v1\nkind: Policy\ntrust:\n  keys:\n"
                      "    - name: k\n      path: release.pub\nsigners:\n  k: {key: k}\n"
                      "rules:\n  - id: r\n    match: ['**']\n    signedBy: {anyOf: [k]}\n"
                      "    transparencyLog: {require: optional}\n")
    root = None
    if anchor == "trusted root":
        root = model / "root.json"
        root.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot"
                                                 "+json;version=0.1", "tlogs": []}))
    with pytest.raises(UnsafePathError, match="part of the model"):
        mgattest.load(model, policy=policy, bundles=[bundle], trust=TrustOptions(trusted_root=root))
