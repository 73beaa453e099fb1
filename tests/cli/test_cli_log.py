"""`mgattest log ...`: exit codes 0/1/2, tamper detection, clear messages, no tracebacks."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from tests.helpers.servers import free_port
from mgattest.cli.app import app
from tests.helpers.log_server import dsse_entry, hashedrekord, new_key, running_server

runner = CliRunner()


def run(*args: str) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    # never a traceback, whatever the outcome
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.output + (result.stderr or "")
    return result


@pytest.fixture()
def log_files(tmp_path: Path) -> dict[str, Path]:
    files = {"db": tmp_path / "log.db", "key": tmp_path / "log.key",
             "pub": tmp_path / "log.pub", "dir": tmp_path}
    res = run("log", "init", "--db", files["db"], "--key-out", files["key"],
              "--pub-out", files["pub"], "--origin", "cli.test/log")
    assert res.exit_code == 0, res.output
    assert "origin: cli.test/log" in res.output
    return files


def append(files: dict[str, Path], proposed: dict, name: str = "entry.json") -> Any:
    path = files["dir"] / name
    path.write_text(json.dumps(proposed))
    return run("log", "append", "--db", files["db"], "--key", files["key"], path)


def test_init_refuses_to_overwrite_and_bad_options(log_files: dict[str, Path]) -> None:
    res = run("log", "init", "--db", log_files["db"], "--key-out", log_files["dir"] / "k2")
    assert res.exit_code == 2 and "already exists" in res.stderr
    res = run("log", "init", "--db", log_files["dir"] / "x.db", "--key-out",
              log_files["dir"] / "k3", "--key-type", "rsa")
    assert res.exit_code == 2 and "--key-type" in res.stderr
    res = run("log", "init", "--db", log_files["dir"] / "e.db", "--key-out",
              log_files["dir"] / "k4", "--key-type", "ed25519", "--origin", "ed.test/log")
    assert res.exit_code == 0


def test_append_checkpoint_proof_verify_round_trip(log_files: dict[str, Path]) -> None:
    key = new_key()
    res = append(log_files, hashedrekord(key, b"weights"))
    assert res.exit_code == 0, res.stderr
    printed = json.loads(res.stdout)
    assert printed["logIndex"] == "0" and printed["inclusionProof"]["treeSize"] == "1"
    # a duplicate append reports the existing entry
    res = append(log_files, json.loads((log_files["dir"] / "entry.json").read_text()))
    assert res.exit_code == 0 and "already in the log at index 0" in res.stderr
    assert append(log_files, dsse_entry(key, b'{"x": 1}'), "d.json").exit_code == 0

    res = run("log", "checkpoint", "--db", log_files["db"], "--key", log_files["key"])
    assert res.exit_code == 0 and res.stdout.startswith("cli.test/log\n2\n")

    out = log_files["dir"] / "proof0.json"
    res = run("log", "proof", "--db", log_files["db"], "--key", log_files["key"],
              "--index", "0", "--out", out)
    assert res.exit_code == 0, res.stderr
    res = run("log", "verify", "--entry", out, "--log-key", log_files["pub"],
              "--origin", "cli.test/log")
    assert res.exit_code == 0, res.stderr
    assert "hashedrekord 0.0.1 at log index 0" in res.stdout and "SET" in res.stdout
    res = run("log", "verify", "--entry", out, "--log-key", log_files["pub"], "--json",
              "--origin", "cli.test/log")
    assert json.loads(res.stdout)["entries"][0]["inclusion_proof_verified"] is True

    res = run("log", "proof", "--db", log_files["db"], "--key", log_files["key"],
              "--index", "5")
    assert res.exit_code == 2 and "outside the log" in res.stderr


def _tamper_cases(entry: dict) -> list[tuple[str, dict]]:
    def with_change(path: list, value: Any) -> dict:
        copy = json.loads(json.dumps(entry))
        node = copy
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
        return copy

    body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    body["spec"]["data"]["hash"]["value"] = "0" * 64
    forged_body = base64.b64encode(json.dumps(body).encode()).decode()
    proof = entry["inclusionProof"]
    note = proof["checkpoint"]["envelope"]
    lines = note.split("\n")
    forged_root = "\n".join(lines[:2] + [base64.b64encode(b"\x01" * 32).decode()] + lines[3:])
    forged_sig = note[:-6] + ("AAAA==\n" if not note.endswith("AAAA==\n") else "BBBB==\n")
    hashes = proof["hashes"] or []
    return [
        ("canonicalizedBody", with_change(["canonicalizedBody"], forged_body)),
        ("logIndex", with_change(["logIndex"], "2")),
        ("proof logIndex", with_change(["inclusionProof", "logIndex"], "2")),
        ("rootHash", with_change(["inclusionProof", "rootHash"],
                                 base64.b64encode(b"\x02" * 32).decode())),
        ("treeSize", with_change(["inclusionProof", "treeSize"], "7")),
        ("hashes", with_change(["inclusionProof", "hashes"],
                               [base64.b64encode(b"\x03" * 32).decode()] + hashes[1:])),
        ("checkpoint root", with_change(["inclusionProof", "checkpoint", "envelope"],
                                        forged_root)),
        ("checkpoint signature", with_change(["inclusionProof", "checkpoint", "envelope"],
                                             forged_sig)),
        ("SET", with_change(["inclusionPromise", "signedEntryTimestamp"],
                            base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode())),
        ("integratedTime", with_change(["integratedTime"], str(int(entry["integratedTime"]) + 1))),
        ("logId", with_change(["logId", "keyId"], base64.b64encode(b"\x04" * 32).decode())),
    ]


def test_tampered_entries_are_rejected_with_exit_1(log_files: dict[str, Path]) -> None:
    key = new_key()
    for i in range(3):
        assert append(log_files, hashedrekord(key, b"a%d" % i), f"e{i}.json").exit_code == 0
    out = log_files["dir"] / "p.json"
    run("log", "proof", "--db", log_files["db"], "--key", log_files["key"], "--index", "1",
        "--out", out)
    entry = json.loads(out.read_text())
    assert run("log", "verify", "--entry", out, "--log-key", log_files["pub"],
               "--origin", "cli.test/log").exit_code == 0
    for label, forged in _tamper_cases(entry):
        path = log_files["dir"] / "forged.json"
        path.write_text(json.dumps(forged))
        res = run("log", "verify", "--entry", path, "--log-key", log_files["pub"],
                  "--origin", "cli.test/log")
        assert res.exit_code == 1, (label, res.stdout, res.stderr)
        assert res.stderr.startswith("rejected: "), (label, res.stderr)
        assert str(path) in res.stderr, label
    # right entry, wrong trust: another log's key, or an unexpected origin
    other_pub = log_files["dir"] / "other.pub"
    run("log", "init", "--db", log_files["dir"] / "o.db", "--key-out",
        log_files["dir"] / "o.key", "--pub-out", other_pub)
    assert run("log", "verify", "--entry", out, "--log-key", other_pub,
               "--origin", "cli.test/log").exit_code == 1
    res = run("log", "verify", "--entry", out, "--log-key", log_files["pub"],
              "--origin", "someone.else/log")
    assert res.exit_code == 1 and "origin" in res.stderr


def test_verify_accepts_rekor_v1_json_bundles_and_trusted_roots(
        log_files: dict[str, Path]) -> None:
    from cryptography.hazmat.primitives import serialization

    from mgattest.tlog._keys import LogSigner
    from mgattest.tlog._log import TransparencyLog

    key = new_key()
    append(log_files, hashedrekord(key, b"one"))
    append(log_files, dsse_entry(key, b"{}"), "d.json")
    log = TransparencyLog.open(log_files["db"], LogSigner.from_pem(log_files["key"].read_bytes()))
    v1 = log.entry_by_index(1).to_rekor_json(log.inclusion_proof(1))
    tles = [log.entry_by_index(i).to_bundle_entry(log.inclusion_proof(i)) for i in range(2)]
    (log_files["dir"] / "v1.json").write_text(json.dumps(v1))
    res = run("log", "verify", "--entry", log_files["dir"] / "v1.json", "--log-key",
              log_files["pub"], "--origin", "cli.test/log")
    assert res.exit_code == 0, res.stderr
    # a Rekor v1 entry whose UUID key is not its leaf hash
    bad_v1 = {"ab" * 32: next(iter(v1.values()))}
    (log_files["dir"] / "v1bad.json").write_text(json.dumps(bad_v1))
    assert run("log", "verify", "--entry", log_files["dir"] / "v1bad.json", "--log-key",
               log_files["pub"], "--origin", "cli.test/log").exit_code == 1

    bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
              "verificationMaterial": {"publicKey": {"hint": "k"}, "tlogEntries": tles},
              "dsseEnvelope": {}}
    (log_files["dir"] / "b.json").write_text(json.dumps(bundle))
    der = log.signer.public_key.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    root = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": "http://127.0.0.1", "hashAlgorithm": "SHA2_256",
                       "publicKey": {"rawBytes": base64.b64encode(der).decode(),
                                     "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                     "validFor": {"start": "2020-01-01T00:00:00Z"}},
                       "logId": {"keyId": base64.b64encode(bytes(log.log_id)).decode()}}],
            "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": []}
    (log_files["dir"] / "root.json").write_text(json.dumps(root))
    res = run("log", "verify", "--bundle", log_files["dir"] / "b.json", "--trusted-root",
              log_files["dir"] / "root.json", "--origin", "cli.test/log")
    assert res.exit_code == 0, res.stderr
    assert "tlogEntries[1]" in res.stdout
    # one bad entry in the bundle fails it, naming which one
    bundle["verificationMaterial"]["tlogEntries"][1]["logIndex"] = "0"
    (log_files["dir"] / "b.json").write_text(json.dumps(bundle))
    res = run("log", "verify", "--bundle", log_files["dir"] / "b.json", "--log-key",
              log_files["pub"], "--origin", "cli.test/log")
    assert res.exit_code == 1 and "tlogEntries[1]" in res.stderr


VERIFY = ["log", "verify", "--log-key", "{pub}", "--origin", "o"]


@pytest.mark.parametrize("args, message", [
    (VERIFY, "exactly one of --entry and --bundle"),
    (VERIFY + ["--entry", "{dir}/nope.json"], "No such file"),
    (VERIFY + ["--entry", "{dir}/garbage.json"], "not valid JSON"),
    (VERIFY + ["--entry", "{dir}/list.json"], "JSON object"),
    (VERIFY + ["--entry", "{dir}/obj.json"], "neither"),
    (VERIFY + ["--bundle", "{dir}/obj.json"], "tlogEntries"),
    (["log", "verify", "--entry", "{dir}/obj.json"], "exactly one of --log-key"),
    (["log", "verify", "--entry", "{dir}/obj.json", "--log-key", "{pub}"], "needs --origin"),
    (["log", "verify", "--entry", "{dir}/obj.json", "--log-key", "{dir}/garbage.json",
      "--origin", "o"], ""),
    (["log", "append", "--db", "{db}", "--key", "{key}", "{dir}/garbage.json"], "not valid JSON"),
    (["log", "append", "--db", "{db}", "--key", "{key}", "{dir}/obj.json"], ""),
    (["log", "append", "--db", "{dir}/none.db", "--key", "{key}", "{dir}/obj.json"],
     "no log database"),
    (["log", "checkpoint", "--db", "{db}", "--key", "{dir}/garbage.json"], ""),
    (["log", "serve", "--db", "{db}", "--key", "{key}", "--host", "0.0.0.0"], "--allow-remote"),
    (["log", "serve", "--db", "{db}", "--key", "{key}", "--token-file", "{dir}/short.txt"],
     "at least 16"),
    (["log", "serve", "--db", "{db}", "--key", "{key}", "--port", "{busy}"], "cannot listen"),
    (["log", "consistency", "--old", "{dir}/obj.json", "--log-key", "{pub}"], "--url"),
    (["log", "monitor", "--url", "http://127.0.0.1:1", "--log-key", "{pub}", "--state",
      "{dir}/obj.json"], "not a monitor state"),
])
def test_bad_input_exits_2_with_a_message(log_files: dict[str, Path], args: list[str],
                                          message: str) -> None:
    d = log_files["dir"]
    (d / "garbage.json").write_text("{not json")
    (d / "list.json").write_text("[]")
    (d / "obj.json").write_text('{"a": 1}')
    (d / "short.txt").write_text("tiny\n")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    mapping = {"{pub}": log_files["pub"], "{dir}": d, "{db}": log_files["db"],
               "{key}": log_files["key"], "{busy}": busy.getsockname()[1]}
    argv = []
    for a in args:
        for k, v in mapping.items():
            a = a.replace(k, str(v))
        argv.append(a)
    with busy:
        res = run(*argv)
    assert res.exit_code == 2, (argv, res.stdout, res.stderr)
    assert res.stderr.startswith("error: "), res.stderr
    assert message in res.stderr


def test_rejected_proposed_entry_exits_2_and_writes_nothing(log_files: dict[str, Path]) -> None:
    bad = hashedrekord(new_key(), b"x")
    bad["spec"]["data"]["hash"]["value"] = "1" * 64
    res = append(log_files, bad)
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    assert "does not verify" in res.stderr or "signature" in res.stderr
    res = run("log", "checkpoint", "--db", log_files["db"], "--key", log_files["key"])
    assert res.stdout.startswith("cli.test/log\n0\n")


# --- consistency and monitor against a running server -------------------------------------


def _open(files: dict[str, Path]) -> Any:
    from mgattest.tlog._keys import LogSigner
    from mgattest.tlog._log import TransparencyLog

    return TransparencyLog.open(files["db"], LogSigner.from_pem(files["key"].read_bytes()))


@pytest.mark.network
def test_consistency_offline_and_online(log_files: dict[str, Path]) -> None:
    log = _open(log_files)
    key = new_key()
    d = log_files["dir"]
    for i in range(3):
        log.append(hashedrekord(key, b"c%d" % i))
    (d / "cp3.txt").write_text(log.signed_checkpoint())
    for i in range(3, 10):
        log.append(hashedrekord(key, b"c%d" % i))
    (d / "cp10.txt").write_text(log.signed_checkpoint())
    (d / "proof.json").write_text(json.dumps(
        {"hashes": [h.hex() for h in log.consistency_proof(3, 10)]}))
    base = ["log", "consistency", "--log-key", log_files["pub"]]
    res = run(*base, "--old", d / "cp3.txt", "--new", d / "cp10.txt", "--proof", d / "proof.json")
    assert res.exit_code == 0, res.stderr
    assert "checkpoint 3 is a prefix of checkpoint 10" in res.stdout
    # a wrong proof, swapped checkpoints, a forged checkpoint: rejected
    (d / "bad.json").write_text(json.dumps({"hashes": ["00" * 32] * 3}))
    res = run(*base, "--old", d / "cp3.txt", "--new", d / "cp10.txt", "--proof", d / "bad.json")
    assert res.exit_code == 1 and res.stderr.startswith("rejected:")
    res = run(*base, "--old", d / "cp10.txt", "--new", d / "cp3.txt", "--proof", d / "proof.json")
    assert res.exit_code == 1 and "shrank" in res.stderr
    (d / "forged.txt").write_text((d / "cp10.txt").read_text().replace("\n10\n", "\n11\n", 1))
    res = run(*base, "--old", d / "cp3.txt", "--new", d / "forged.txt", "--proof", d / "proof.json")
    assert res.exit_code == 1 and "forged.txt" in res.stderr
    with running_server(log) as url:
        res = run(*base, "--old", d / "cp3.txt", "--url", url)
        assert res.exit_code == 0, res.stderr
        res = run(*base, "--old", d / "cp3.txt", "--url", url, "--origin", "other/log")
        assert res.exit_code == 1 and "origin" in res.stderr


@pytest.mark.network
def test_monitor_detects_a_rewritten_log(log_files: dict[str, Path]) -> None:
    from mgattest.tlog._keys import LogSigner
    from mgattest.tlog._log import TransparencyLog

    d = log_files["dir"]
    log = _open(log_files)
    key = new_key()
    for i in range(4):
        log.append(hashedrekord(key, b"m%d" % i))
    state = d / "state.json"
    monitor = ["log", "monitor", "--log-key", log_files["pub"], "--state", state,
               "--interval", "0.05"]
    with running_server(log) as url:
        res = run(*monitor, "--url", url, "--count", "1")
        assert res.exit_code == 0, res.stderr
        assert json.loads(state.read_text())["size"] == 4
        log.append(hashedrekord(key, b"m4"))
        res = run(*monitor, "--url", url, "--count", "2")
        assert res.exit_code == 0, res.stderr
        assert "size 5 (+1)" in res.stdout
    # the operator (same key!) rewrites history: a new log with different entries
    signer = LogSigner.from_pem(log_files["key"].read_bytes())
    forked = TransparencyLog.init(d / "forked.db", origin="cli.test/log", signer=signer)
    for i in range(7):
        forked.append(hashedrekord(key, b"forked %d" % i))
    with running_server(forked) as url:
        res = run(*monitor, "--url", url, "--count", "1")
        assert res.exit_code == 1, res.stdout
        assert res.stderr.startswith("rejected:")
    assert json.loads(state.read_text())["size"] == 5  # the state keeps the good head
    shrunk = TransparencyLog.init(d / "shrunk.db", origin="cli.test/log", signer=signer)
    for i in range(2):
        shrunk.append(hashedrekord(key, b"m%d" % i))
    with running_server(shrunk) as url:
        res = run(*monitor, "--url", url, "--count", "1")
        assert res.exit_code == 1 and "shrank" in res.stderr
    # a state file edited by hand does not verify
    saved = json.loads(state.read_text())
    saved["checkpoint"] = saved["checkpoint"].replace("\n5\n", "\n4\n")
    state.write_text(json.dumps(saved))
    res = run(*monitor, "--url", "http://127.0.0.1:1", "--count", "1")
    assert res.exit_code == 1 and str(state) in res.stderr


@pytest.mark.network
def test_serve_subprocess_with_token(log_files: dict[str, Path]) -> None:
    d = log_files["dir"]
    token = "tok-" + "x" * 28
    (d / "token").write_text(token + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgattest", "log", "serve", "--db", str(log_files["db"]),
         "--key", str(log_files["key"]), "--port", str(port), "--token-file", str(d / "token")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(url + "/api/v1/log", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        proposed = hashedrekord(new_key(), b"served")
        assert requests.post(url + "/api/v1/log/entries", json=proposed,
                             timeout=10).status_code == 401
        resp = requests.post(url + "/api/v1/log/entries", json=proposed, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 201
        assert requests.get(url + "/api/v1/log", timeout=10).json()["treeSize"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert _open(log_files).size == 1


def test_monitor_outage_is_a_warning_until_the_last_round(log_files: dict[str, Path]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    base = ["log", "monitor", "--url", dead, "--log-key", log_files["pub"], "--state",
            log_files["dir"] / "s.json", "--interval", "0.01"]
    res = run(*base, "--count", "2")
    assert res.exit_code == 2
    assert res.stderr.count("warning: ") == 1 and "error: " in res.stderr
    assert not (log_files["dir"] / "s.json").exists()


# --- real public-good and staging bundles (sigstore-conformance) -------------------------

_LOG_CASES = {
    "happy-path-v0.1": 0, "happy-path-v0.3": 0, "happy-path-intoto-in-dsse-v3": 0,
    "rekor2-happy-path": 0, "rekor2-checkpoint-cosigned": 0,
    "checkpoint-bad-keyhint_fail": 1, "checkpoint-wrong-roothash_fail": 1,
    "inclusion-proof-corrupted-hash_fail": 1, "invalid-checkpoint-signature_fail": 1,
    "invalid-inclusion-proof_fail": 1, "set-invalid-signature_fail": 1,
    "rekor2-checkpoint-no-matching-signature_fail": 1, "rekor2-no-inclusion-proof_fail": 1,
    "intoto-missing-inclusion-proof_fail": 1, "rekor2-checkpoint-missing-origin_fail": 1,
}


@pytest.mark.parametrize("case, expected", sorted(_LOG_CASES.items()))
def test_verify_conformance_bundles(conformance_dir: Path, case: str, expected: int) -> None:
    base = conformance_dir / "data/sigstore+sigstore-conformance/test/assets/bundle-verify"
    root = base / case / "trusted_root.json"
    if not root.exists():
        root = conformance_dir / "trusted_roots/sigstore-python-4.5.1/production/trusted_root.json"
    res = run("log", "verify", "--bundle", base / case / "bundle.sigstore.json",
              "--trusted-root", root)
    assert res.exit_code == expected, (res.stdout, res.stderr)
    if expected:
        assert res.stderr.startswith("rejected: ") and "tlogEntries[0]" in res.stderr
    else:
        assert "tlogEntries[0]" in res.stdout
