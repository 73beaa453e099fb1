"""Watch mode: the Sentry notices changes by events and by periodic re-hash, stays
compromised, and the FastAPI example answers 503 within 2 s of tampering."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import mgattest
from tests.helpers.servers import free_port
from mgattest.errors import VerificationError
from mgattest.loading._watch import Sentry, manifest_verifier

# the examples of the mgattest under test (the package's checkout)
EXAMPLES = Path(mgattest.__file__).resolve().parent.parent / "docs" / "examples"


def _model(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x01" * 1000)
    (model / "config.json").write_text('{"layers": 2}')
    manifest = {name: hashlib.sha256((model / name).read_bytes()).hexdigest()
                for name in ("w.bin", "config.json")}
    return model, manifest


def _wait(predicate, timeout: float = 2.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("change", ["modify", "add", "delete", "rename"])
def test_events_trigger_reverification(tmp_path, change):
    model, manifest = _model(tmp_path)
    seen = []
    with Sentry(model, manifest_verifier(manifest, model), rehash_interval=600,
                on_change=seen.append) as sentry:
        assert sentry.healthy and sentry.reason is None
        if change == "modify":
            with open(model / "w.bin", "r+b") as fh:
                fh.seek(500)
                fh.write(b"\x02")
        elif change == "add":
            (model / "extra.py").write_text("import os")
        elif change == "delete":
            (model / "config.json").unlink()
        else:
            os.rename(model / "config.json", model / "config.old")
        # on_change runs just after the state flips (outside the lock): wait for both
        _wait(lambda: not sentry.healthy and not seen[-1].healthy)
        status = sentry.status()
        assert status.checks >= 2 and status.reason
    if change == "modify":
        assert "w.bin" in status.reason


def test_rehash_catches_changes_without_events(tmp_path):
    model, manifest = _model(tmp_path)
    sentry = Sentry(model, manifest_verifier(manifest, model), rehash_interval=0.2,
                    use_events=False)
    sentry.start()
    try:
        stat = os.stat(model / "w.bin")
        (model / "w.bin").write_bytes(b"\x03" * 1000)  # same size ...
        os.utime(model / "w.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... same mtime
        _wait(lambda: not sentry.healthy, timeout=3)
        assert "digest changed" in sentry.reason
        assert sentry.status().last_rehash is not None
    finally:
        sentry.stop()


def test_compromise_is_sticky_until_reset(tmp_path):
    model, manifest = _model(tmp_path)
    original = (model / "w.bin").read_bytes()
    sentry = Sentry(model, manifest_verifier(manifest, model), use_events=False)
    assert sentry.check().healthy
    (model / "w.bin").write_bytes(b"evil")
    assert not sentry.check().healthy
    (model / "w.bin").write_bytes(original)
    assert not sentry.check().healthy  # changed back: still an incident
    assert sentry.reset().healthy


def test_any_exception_from_verify_means_compromised(tmp_path):
    calls = []

    def verify(path):
        calls.append(path)
        if len(calls) > 1:
            raise VerificationError("signature invalid", where="bundle.json")

    target = tmp_path / "m.bin"
    target.write_bytes(b"x")
    sentry = Sentry(target, verify, use_events=False)
    assert sentry.check().healthy
    status = sentry.check()
    assert not status.healthy and status.reason == "signature invalid [at bundle.json]"
    assert calls == [str(target.resolve())] * 2
    assert Sentry(target, lambda p: 1 / 0, use_events=False).check().reason == \
        "division by zero"


def test_single_file_model_ignores_siblings(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"abc")
    manifest = {"m.bin": hashlib.sha256(b"abc").hexdigest()}
    with Sentry(target, manifest_verifier(manifest, target), rehash_interval=600) as sentry:
        (tmp_path / "other.txt").write_text("unrelated")
        time.sleep(0.4)
        assert sentry.healthy
        target.write_bytes(b"abd")
        _wait(lambda: not sentry.healthy)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgattest", *args], capture_output=True,
                          text=True, timeout=60, **kw)


def test_cli_watch(tmp_path):
    model, manifest = _model(tmp_path)
    mpath = tmp_path / "manifest.json"
    mpath.write_text(json.dumps(manifest))
    assert _cli("watch", str(model), "--manifest", str(mpath), "--once").returncode == 0
    assert _cli("watch", str(model)).returncode == 2
    assert _cli("watch", str(tmp_path / "nope"), "--manifest", str(mpath)).returncode == 2
    last = _watch_until_tampered(model, mpath, "--duration", "20")
    assert last["status"] == "compromised" and "w.bin" in last["reason"]
    assert _cli("watch", str(model), "--manifest", str(mpath), "--once").returncode == 1


def _watch_until_tampered(model: Path, manifest: Path, *args: str,
                          before_tamper: Any = None) -> dict:
    """Run `mgattest watch --json`; once healthy, run before_tamper(), overwrite w.bin;
    the watch must exit 1. Returns its last JSON status line."""
    proc = subprocess.Popen([sys.executable, "-m", "mgattest", "watch", str(model),
                             "--manifest", str(manifest), "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(proc.stdout.readline())["healthy"] is True
        if before_tamper is not None:
            before_tamper()
        (model / "w.bin").write_bytes(b"tampered")
        out, errs = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1, errs
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.network
def test_fastapi_example_returns_503_within_two_seconds(tmp_path):
    import numpy as np
    import httpx

    weights = tmp_path / "w.npy"
    np.save(weights, np.array([1.0, 2.0, 3.0]))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"w.npy": hashlib.sha256(weights.read_bytes()).hexdigest()}))
    port = free_port()
    env = {**os.environ, "MGATTEST_MODEL": str(weights), "MGATTEST_MANIFEST": str(manifest),
           "PYTHONPATH": str(EXAMPLES)}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "serve_fastapi:app",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level",
                               "warning"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        reply = httpx.post(f"{base}/predict", json={"x": [1, 1, 1]}, timeout=2)
        assert reply.status_code == 200 and reply.json() == {"y": 6.0}
        np.save(weights, np.array([1.0, 2.0, 666.0]))  # tamper
        start = time.monotonic()
        while httpx.post(f"{base}/predict", json={"x": [1, 1, 1]}, timeout=2).status_code \
                != 503:
            assert time.monotonic() - start < 2.0, "no 503 within 2 s"
            time.sleep(0.02)
        health = httpx.get(f"{base}/healthz", timeout=2)
        assert health.status_code == 503
        # issue #11: clients get a generic reason, never the server's paths or digests
        assert health.json()["detail"] == {"status": "compromised",
                                           "reason": "model failed verification"}
        assert str(tmp_path) not in health.text and manifest.read_text()[10:40] not in health.text
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert b"digest changed" in server.stderr.read()  # ... the operator's log has the reason


@pytest.mark.slow
def test_cli_watch_with_real_signatures_and_policy(tmp_path):
    """End to end: key-signed, logged bundle; watch through the policy engine and through
    plain bundle verification; a flipped byte makes both fail."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x01" * 100)
    steps = [
        ("keygen", "--out", str(tmp_path / "k")),
        ("log", "init", "--db", str(tmp_path / "log.db"), "--key-out",
         str(tmp_path / "logkey.pem")),
        ("sign", str(model), "--key", str(tmp_path / "k.key"), "--log-db",
         str(tmp_path / "log.db"), "--log-key", str(tmp_path / "logkey.pem"), "--out",
         str(tmp_path / "b.json")),
        ("trust", "export", "--out", str(tmp_path / "tr.json"), "--log-db",
         str(tmp_path / "log.db")),
        ("policy", "init", str(model), "-b", str(tmp_path / "b.json"), "--key",
         str(tmp_path / "k.pub"), "--trusted-root", str(tmp_path / "tr.json"), "-o",
         str(tmp_path / "pol.yaml")),
    ]
    for step in steps:
        proc = _cli(*step)
        assert proc.returncode == 0, (step, proc.stderr)
    by_policy = ("watch", str(model), "--policy", str(tmp_path / "pol.yaml"), "--bundle",
                 str(tmp_path / "b.json"), "--trusted-root", str(tmp_path / "tr.json"),
                 "--once")
    by_key = ("watch", str(model), "--key", str(tmp_path / "k.pub"), "--bundle",
              str(tmp_path / "b.json"), "--trusted-root", str(tmp_path / "tr.json"), "--once")
    assert _cli(*by_policy).returncode == 0
    assert _cli(*by_key).returncode == 0
    with open(model / "w.bin", "r+b") as fh:
        fh.seek(50)
        fh.write(b"\x02")
    proc = _cli(*by_policy)
    assert proc.returncode == 1 and "compromised" in proc.stderr
    proc = _cli(*by_key)
    assert proc.returncode == 1 and "w.bin" in proc.stderr


def test_cli_watch_policy_with_bundle_inside_the_model(tmp_path):
    """A bundle stored inside the model directory is not an unsigned model file."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x01" * 100)
    bundle = model / "model.sigstore.json"
    steps = [
        ("keygen", "--out", str(tmp_path / "k")),
        ("log", "init", "--db", str(tmp_path / "log.db"), "--key-out",
         str(tmp_path / "logkey.pem")),
        ("sign", str(model), "--key", str(tmp_path / "k.key"), "--log-db",
         str(tmp_path / "log.db"), "--log-key", str(tmp_path / "logkey.pem"), "--out",
         str(bundle)),
        ("trust", "export", "--out", str(tmp_path / "tr.json"), "--log-db",
         str(tmp_path / "log.db")),
        ("policy", "init", str(model), "-b", str(bundle), "--key",
         str(tmp_path / "k.pub"), "--trusted-root", str(tmp_path / "tr.json"), "-o",
         str(tmp_path / "pol.yaml")),
    ]
    for step in steps:
        proc = _cli(*step)
        assert proc.returncode == 0, (step, proc.stderr)
    by_policy = ("watch", str(model), "--policy", str(tmp_path / "pol.yaml"), "--bundle",
                 str(bundle), "--trusted-root", str(tmp_path / "tr.json"), "--once")
    proc = _cli(*by_policy)
    assert proc.returncode == 0, proc.stderr
    (model / "extra.bin").write_bytes(b"not signed")
    proc = _cli(*by_policy)
    assert proc.returncode == 1 and "compromised" in proc.stderr


# ------------------------------------------------- special files, re-pointed links (#16)

def _manifest_of(model: Path) -> dict[str, str]:
    files = [model] if model.is_file() else sorted(p for p in model.rglob("*") if p.is_file())
    return {(p.name if model.is_file() else p.relative_to(model).as_posix()):
            hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_fifo_in_ignored_git_never_blocks_the_sentry(tmp_path):
    """A FIFO planted in .git/ used to block the sentry (holding its lock) for good:
    later tampering went unchecked and `watch --duration` exited 0 "healthy"."""
    model, manifest = _model(tmp_path)
    (model / ".git").mkdir()
    mpath = tmp_path / "manifest.json"
    mpath.write_text(json.dumps(manifest))

    def plant_fifo() -> None:
        os.mkfifo(model / ".git" / "fifo")  # an event: the sentry re-checks, never opens it
        time.sleep(0.6)

    last = _watch_until_tampered(model, mpath, "--duration", "8", "--rehash-interval", "0.3",
                                 before_tamper=plant_fifo)
    assert last["status"] == "compromised" and "w.bin" in last["reason"]


def test_snapshot_records_special_files_without_opening_them(tmp_path):
    from mgattest.loading._watch import snapshot

    model, _ = _model(tmp_path)
    os.mkfifo(model / "pipe")
    done = []
    thread = threading.Thread(target=lambda: done.append(snapshot(model)), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert done, "snapshot blocked on a FIFO"
    assert done[0][str(model / "pipe")][2] == "special:a FIFO"


def test_a_check_that_does_not_finish_is_not_healthy(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"x")
    release = threading.Event()
    calls = []

    def verify(_path):
        calls.append(1)
        if len(calls) > 1:
            release.wait(20)  # a verifier stuck (e.g. on a file that never answers)

    sentry = Sentry(target, verify, use_events=False, check_timeout=0.3)
    assert sentry.check().healthy
    stuck = threading.Thread(target=sentry.check, daemon=True)
    stuck.start()
    try:
        _wait(lambda: not sentry.healthy, timeout=3)  # status() never waits for the lock
        assert "has not finished" in sentry.status().reason
    finally:
        release.set()
        stuck.join(timeout=5)


def test_a_crashing_background_rehash_fails_closed(tmp_path, monkeypatch):
    import mgattest.loading._watch as watch

    model, manifest = _model(tmp_path)
    sentry = Sentry(model, manifest_verifier(manifest, model), rehash_interval=0.1,
                    use_events=False)
    sentry.start()
    try:
        assert sentry.healthy

        def broken(_model):
            raise RuntimeError("cannot list the model")

        monkeypatch.setattr(watch, "snapshot", broken)
        _wait(lambda: not sentry.healthy, timeout=3)
        assert "cannot list the model" in sentry.reason
    finally:
        sentry.stop()


@pytest.mark.parametrize("kind", ["directory", "file"])
@pytest.mark.parametrize("use_events", [True, False])
def test_repointed_symlink_is_followed_and_reverified(tmp_path, kind, use_events):
    """`current -> release-N`: re-pointing the link at other bytes is noticed, as a
    server opening `current` would serve them."""
    releases = []
    for n, payload in enumerate([b"good weights", b"evil weights"], start=1):
        if kind == "directory":
            release = tmp_path / f"release-{n}"
            release.mkdir()
            (release / "w.bin").write_bytes(payload)
        else:
            release = tmp_path / f"w-{n}.bin"
            release.write_bytes(payload)
        releases.append(release)
    current = tmp_path / ("current" if kind == "directory" else "w.bin")
    current.symlink_to(releases[0].name)
    manifest = _manifest_of(releases[0])
    if kind == "file":
        manifest = {"w.bin": manifest["w-1.bin"]}
    sentry = Sentry(current, manifest_verifier(manifest, current), rehash_interval=0.2,
                    use_events=use_events)
    sentry.start()
    try:
        assert sentry.healthy, sentry.reason
        staged = tmp_path / "staged-link"
        staged.symlink_to(releases[1].name)
        os.replace(staged, current)  # atomic re-point
        _wait(lambda: not sentry.healthy, timeout=5)
        assert "w.bin" in sentry.reason
    finally:
        sentry.stop()


def _load_example(monkeypatch, env: dict[str, str]) -> Any:
    import importlib.util

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = EXAMPLES / "serve_fastapi.py"
    spec = importlib.util.spec_from_file_location(f"serve_fastapi_{time.monotonic_ns()}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.network
def test_fastapi_example_serves_the_bytes_it_verified(tmp_path, monkeypatch):
    """Issue #16 item 12: a racer swaps the weights file right after verification and
    back 50 ms later (what an inotify-driven racer does). The server must serve the
    verified weights, never the swapped-in ones, while /healthz says healthy."""
    import httpx
    import numpy as np

    from mgattest.ca._serving import ServerThread

    weights = tmp_path / "w.npy"
    good, evil = tmp_path / "good.npy", tmp_path / "evil.npy"
    np.save(good, np.array([1.0, 2.0, 3.0]))
    np.save(evil, np.array([1.0, 2.0, 666.0]))
    weights.write_bytes(good.read_bytes())
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"w.npy": hashlib.sha256(good.read_bytes()).hexdigest()}))
    example = _load_example(monkeypatch, {"MGATTEST_MODEL": str(weights),
                                          "MGATTEST_MANIFEST": str(manifest)})
    example.sentry._debounce = 1.0  # the racer's swap-back lands well inside it
    verify = example.sentry._verify
    raced = []

    def swap(source: Path) -> None:
        staged = tmp_path / "staged.npy"
        staged.write_bytes(source.read_bytes())
        os.replace(staged, weights)

    def verify_then_race(path: str) -> Any:
        result = verify(path)
        if not raced:
            raced.append(True)
            racer = threading.Thread(target=swap, args=(evil,))
            racer.start()
            racer.join()  # the attacker's bytes are on disk when verification returns ...
            threading.Timer(0.05, swap, args=(good,)).start()  # ... and gone 50 ms later
        return result

    example.sentry._verify = verify_then_race
    with ServerThread(example.app) as server:
        time.sleep(1.5)  # the debounced re-check (after the swap back) has run
        health = httpx.get(f"{server.url}/healthz", timeout=5)
        reply = httpx.post(f"{server.url}/predict", json={"x": [1, 1, 1]}, timeout=5)
    assert raced
    assert health.status_code == 200, health.text
    assert reply.status_code == 200 and reply.json() == {"y": 6.0}  # never 669.0


def test_fastapi_example_key_mode_verifies_through_the_policy_engine(tmp_path, monkeypatch):
    """MGATTEST_KEY (no policy file) verifies the in-memory bytes with a policy trusting
    the key, and the weights come from those bytes."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.save("w.npy", np.array([1.0, 2.0, 3.0]))
    assert _cli("keygen", "--out", "k").returncode == 0
    assert _cli("sign", "w.npy", "--key", "k.key").returncode == 0
    example = _load_example(monkeypatch, {"MGATTEST_MODEL": "w.npy", "MGATTEST_KEY": "k.pub",
                                          "MGATTEST_BUNDLE": "w.npy.sigstore.json"})
    status = example.sentry.check(force=True)
    assert status.healthy, status.reason
    assert example.weights_from(example.sentry.last_verified).tolist() == [1.0, 2.0, 3.0]
    Path("w.npy").write_bytes(Path("w.npy").read_bytes()[:-8] + b"\0" * 8)
    assert not example.sentry.check().healthy


def test_watch_verifier_checks_a_manifest_and_refuses_bad_ones(tmp_path: Path) -> None:
    from mgattest.errors import InputError
    from mgattest.loading._watch import WatchSources, watch_verifier

    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"w.bin": hashlib.sha256(b"weights").hexdigest()}))
    verify = watch_verifier(model, WatchSources(manifest=str(manifest)))
    verify(str(model))
    (model / "w.bin").write_bytes(b"swapped")
    with pytest.raises(VerificationError, match="digest changed"):
        verify(str(model))
    manifest.write_text(json.dumps({"w.bin": 1}))
    with pytest.raises(InputError, match="must map file names"):
        watch_verifier(model, WatchSources(manifest=str(manifest)))
    with pytest.raises(InputError, match="watch needs --policy"):
        watch_verifier(model, WatchSources())
