"""Quarantine: moves with an incident record, rolls back on failure, survives a killed
process at every step without losing the artifact, restores exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mgattest.loading import _quarantine as q
from mgattest.loading._quarantine import (QuarantineError, RestoreError,
                                      TamperedQuarantineError, get_incident, list_incidents,
                                      quarantine, restore, tree_digests)

STEPS_ONE = ["journal", "move:0", "finalise", "publish"]
STEPS_COPY = ["journal", "move:0", "copied:0", "removed:0", "move:1", "copied:1",
              "removed:1", "finalise", "publish"]


def _artifacts(root: Path) -> tuple[Path, Path, dict]:
    model = root / "models"
    model.mkdir()
    f = model / "weights.pkl"
    f.write_bytes(b"\x80\x04N." * 1000)
    d = model / "tokenizer"
    (d / "sub").mkdir(parents=True)
    (d / "vocab.txt").write_text("a\nb\n")
    (d / "sub" / "merges.txt").write_text("x y\n")
    return f, d, {str(f): tree_digests(f), str(d): tree_digests(d)}


@pytest.fixture(autouse=True)
def _no_hook():
    yield
    q.fault_hook = None


@pytest.mark.parametrize("force_copy", [False, True])
def test_quarantine_list_show_restore(tmp_path, force_copy):
    f, d, before = _artifacts(tmp_path)
    qdir = tmp_path / "quarantine"
    inc = quarantine([f, d], qdir, reason=["dangerous: imports posix.system"],
                     verdict="dangerous", digests={"weights.pkl": {"sha256": "ab"}},
                     policy_digest="sha256:00", force_copy=force_copy)
    assert not f.exists() and not d.exists()
    record = json.loads((inc.path / "incident.json").read_text())
    assert record["status"] == "quarantined" and record["verdict"] == "dangerous"
    assert record["reasons"] == ["dangerous: imports posix.system"]
    assert record["policy_digest"] == "sha256:00"
    assert record["digests"] == {"weights.pkl": {"sha256": "ab"}}
    assert [i["original"] for i in record["items"]] == [str(f), str(d)]
    assert {i["method"] for i in record["items"]} == {"copy" if force_copy else "rename"}
    assert record["time"].endswith("Z")
    assert (inc.path / record["items"][0]["stored"]).read_bytes() == b"\x80\x04N." * 1000
    (listed,) = list_incidents(qdir)
    assert listed.id == inc.id and listed.status == "quarantined"
    assert get_incident(qdir, inc.id[:20]).id == inc.id
    restored = restore(qdir, inc.id)
    assert restored.status == "restored"
    assert tree_digests(f) == before[str(f)] and tree_digests(d) == before[str(d)]
    with pytest.raises(RestoreError, match="already restored"):
        restore(qdir, inc.id)


def test_cross_filesystem_move_uses_copy(tmp_path):
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem")
    f, _d, before = _artifacts(tmp_path)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        inc = quarantine(f, shm, reason="x")
        assert inc.record["items"][0]["method"] == "copy"
        assert not f.exists()
        restore(shm, inc.id)
    assert tree_digests(f) == before[str(f)]


@pytest.mark.parametrize("force_copy", [False, True])
@pytest.mark.parametrize("step", STEPS_COPY)
def test_exception_at_any_step_rolls_back(tmp_path, force_copy, step):
    f, d, before = _artifacts(tmp_path)
    qdir = tmp_path / "q"

    def hook(name):
        if name == step:
            raise RuntimeError(f"injected at {name}")
    q.fault_hook = hook
    if not force_copy and step.startswith(("copied", "removed")):
        quarantine([f, d], qdir, reason="x")  # rename path never reaches these steps
        return
    with pytest.raises(QuarantineError, match="injected"):
        quarantine([f, d], qdir, reason="x", force_copy=force_copy)
    assert tree_digests(f) == before[str(f)] and tree_digests(d) == before[str(d)]
    assert list(qdir.iterdir()) == []  # no half incident left behind


_CHILD = r"""
import os, signal, sys
from pathlib import Path
from mgattest.loading import _quarantine as q
step, force_copy, qdir, *paths = sys.argv[1:]
def hook(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)
q.fault_hook = hook
q.quarantine([Path(p) for p in paths], qdir, reason="killed test",
             force_copy=force_copy == "1")
"""


@pytest.mark.parametrize("force_copy", [False, True])
def test_killed_process_at_every_step_loses_nothing(tmp_path, force_copy):
    steps = STEPS_COPY if force_copy else ["journal", "move:0", "move:1", "finalise",
                                           "publish", "never"]
    for n, step in enumerate(steps):
        root = tmp_path / f"run{n}"
        root.mkdir()
        f, d, before = _artifacts(root)
        qdir = root / "q"
        proc = subprocess.run([sys.executable, "-c", _CHILD, step, "1" if force_copy else "0",
                               str(qdir), str(f), str(d)], capture_output=True, timeout=60)
        assert proc.returncode in (-9, 0), proc.stderr
        # every artifact is intact somewhere: in place, or in the (partial) incident
        incidents = list_incidents(qdir) if qdir.exists() else []
        for original in (f, d):
            here = original.exists() and tree_digests(original) == before[str(original)]
            stored = [inc.path / item["stored"] for inc in incidents
                      for item in inc.record["items"] if item["original"] == str(original)]
            kept = [s for s in stored if s.exists() and tree_digests(s) == before[str(original)]]
            assert here or kept, (step, original)
        # and restore brings everything back exactly
        for inc in incidents:
            restore(qdir, inc.id)
        assert tree_digests(f) == before[str(f)], step
        assert tree_digests(d) == before[str(d)], step


def test_restore_refuses_overwrite_and_tampering(tmp_path):
    f, _d, _ = _artifacts(tmp_path)
    qdir = tmp_path / "q"
    inc = quarantine(f, qdir, reason="x")
    f.write_bytes(b"new file in the old place")
    with pytest.raises(RestoreError, match="will not overwrite"):
        restore(qdir, inc.id)
    other = tmp_path / "elsewhere"
    restore(qdir, inc.id, to=other)
    assert (other / "weights.pkl").read_bytes() == b"\x80\x04N." * 1000
    f2 = tmp_path / "second.pkl"
    f2.write_bytes(b"abc")
    inc2 = quarantine(f2, qdir, reason="x")
    (inc2.path / inc2.record["items"][0]["stored"]).write_bytes(b"abd")
    with pytest.raises(TamperedQuarantineError):
        restore(qdir, inc2.id)
    assert not f2.exists()
    restore(qdir, inc2.id, force=True)
    assert f2.read_bytes() == b"abd"


def test_bad_requests(tmp_path):
    with pytest.raises(QuarantineError, match="no such file"):
        quarantine(tmp_path / "missing", tmp_path / "q", reason="x")
    with pytest.raises(QuarantineError, match="contains the quarantine"):
        quarantine(tmp_path, tmp_path / "q", reason="x")
    with pytest.raises(RestoreError):
        restore(tmp_path / "q", "nope")


def test_cli_inspect_quarantine_and_restore(tmp_path):
    good = tmp_path / "good.pkl"
    good.write_bytes(b"\x80\x04N.")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    qdir = tmp_path / "q"
    cli = [sys.executable, "-m", "mgattest"]
    proc = subprocess.run(cli + ["inspect", "--quarantine", str(qdir), str(good), str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert good.exists() and not bad.exists()
    proc = subprocess.run(cli + ["quarantine", "list", "--dir", str(qdir), "--json"],
                          capture_output=True, text=True)
    (incident,) = json.loads(proc.stdout)
    assert incident["verdict"] == "dangerous"
    assert any("posix.system" in r or "os.system" in r for r in incident["reasons"])
    proc = subprocess.run(cli + ["quarantine", "show", incident["id"], "--dir", str(qdir)],
                          capture_output=True, text=True)
    assert json.loads(proc.stdout)["items"][0]["original"] == str(bad)
    proc = subprocess.run(cli + ["quarantine", "restore", "nope", "--dir", str(qdir)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = subprocess.run(cli + ["quarantine", "restore", incident["id"], "--dir", str(qdir)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert bad.read_bytes() == b"cos\nsystem\n(S'true'\ntR."


def test_quarantine_rejected_records_the_policy_digest(tmp_path: Path) -> None:
    import hashlib

    from mgattest.loading._quarantine import quarantine_rejected

    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(b"version: 1\n")
    qdir = tmp_path / "q"
    assert quarantine_rejected(tmp_path / "absent.bin", qdir, ["nope"], policy=policy) is None
    incident = quarantine_rejected(model, qdir, ["denied by policy"], policy=policy)
    assert incident is not None and not model.exists()
    assert incident.record["verdict"] == "rejected"
    assert incident.record["reasons"] == ["denied by policy"]
    assert incident.record["policy_digest"] == \
        "sha256:" + hashlib.sha256(b"version: 1\n").hexdigest()


def test_quarantine_findings_moves_only_unsafe_content(tmp_path: Path) -> None:
    from mgattest.inspect import scan_bytes
    from mgattest.loading._quarantine import quarantine_findings

    clean = tmp_path / "clean.json"
    clean.write_bytes(b"{}")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"cposix\nsystem\n(S'id'\ntR.")
    qdir = tmp_path / "q"
    assert quarantine_findings(clean, qdir, [scan_bytes("clean.json", b"{}")],
                               source="test") is None
    assert clean.exists()
    reports = [scan_bytes("bad.pkl", bad.read_bytes())]
    incident = quarantine_findings(bad, qdir, reports, source="test")
    assert incident is not None and not bad.exists()
    assert incident.record["verdict"] == reports[0].verdict != "safe"
    assert incident.record["reasons"] == reports[0].reasons()
    assert incident.record["source"] == "test"
