"""`mgattest log witness ...` and `mgattest log serve --witness`: the commands as an
operator runs them (real processes on 127.0.0.1), and clear usage errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from mgattest.tlog._checkpoint import parse_signed_note
from mgattest.tlog._cosign import parse_vkey, verify_cosignatures
from tests.helpers.cli_runner import mg
from tests.helpers.log_server import hashedrekord, new_key
from tests.helpers.servers import free_port, stop_processes



def run(*args: Any) -> Any:
    """``mgattest *args`` in-process; never a traceback, whatever the outcome."""
    result = mg(*args)
    assert "Traceback" not in result.output + (result.stderr or ""), result.exception
    return result


def _start(args: list[str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "mgattest", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(url, timeout=1)
            return proc
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(proc.stderr.read() if proc.stderr else "did not start") \
                    from None
            time.sleep(0.1)


def test_keygen_and_vkey(tmp_path: Path) -> None:
    res = run("log", "witness", "keygen", "--name", "w.test/a", "--key-out", tmp_path / "w.pem")
    assert res.exit_code == 0, res.output
    vkey = res.stdout.strip()
    assert parse_vkey(vkey).name == "w.test/a"
    assert (tmp_path / "w.pem").stat().st_mode & 0o077 == 0
    again = run("log", "witness", "vkey", "--name", "w.test/a", "--key", tmp_path / "w.pem")
    assert again.stdout.strip() == vkey
    refused = run("log", "witness", "keygen", "--name", "w.test/a", "--key-out",
                  tmp_path / "w.pem")
    assert refused.exit_code == 2 and "refusing to overwrite" in refused.stderr


def test_usage_errors_are_clear(tmp_path: Path) -> None:
    run("log", "witness", "keygen", "--name", "w.test/a", "--key-out", tmp_path / "w.pem")
    res = run("log", "witness", "serve", "--key", tmp_path / "w.pem", "--name", "w.test/a",
              "--state", tmp_path / "s.db", "--log", "no-equals-sign")
    assert res.exit_code == 2 and "ORIGIN=LOG_PUBLIC_KEY.pem" in res.stderr
    res = run("log", "serve", "--db", tmp_path / "x.db", "--key", tmp_path / "w.pem",
              "--witness", "http://127.0.0.1:1=not-a-vkey")
    assert res.exit_code == 2 and "witness key" in res.stderr


@pytest.mark.network
def test_log_serve_collects_from_two_witness_processes(tmp_path: Path) -> None:
    assert run("log", "init", "--db", tmp_path / "log.db", "--key-out", tmp_path / "log.key",
               "--pub-out", tmp_path / "log.pub", "--origin", "cli.test/log").exit_code == 0
    procs: list[subprocess.Popen[bytes]] = []
    vkeys = []
    try:
        witness_args = []
        for n in (1, 2):
            key = tmp_path / f"w{n}.pem"
            vkey = run("log", "witness", "keygen", "--name", f"w.test/{n}", "--key-out",
                       key).stdout.strip()
            vkeys.append(parse_vkey(vkey))
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            procs.append(_start(["log", "witness", "serve", "--key", str(key), "--name",
                                 f"w.test/{n}", "--log", f"cli.test/log={tmp_path / 'log.pub'}",
                                 "--state", str(tmp_path / f"w{n}.db"), "--port", str(port)],
                                url + "/add-checkpoint"))
            witness_args += ["--witness", f"{url}={vkey}"]
        port = free_port()
        log_url = f"http://127.0.0.1:{port}"
        procs.append(_start(["log", "serve", "--db", str(tmp_path / "log.db"), "--key",
                             str(tmp_path / "log.key"), "--port", str(port), *witness_args],
                            log_url + "/checkpoint"))
        key = new_key()
        for i in range(3):
            assert requests.post(log_url + "/api/v1/log/entries",
                                 json=hashedrekord(key, b"cli %d" % i),
                                 timeout=10).status_code == 201
        deadline = time.monotonic() + 20
        while True:
            note = requests.get(log_url + "/checkpoint", timeout=10).text
            cosigned = verify_cosignatures(note, vkeys).verified
            if parse_signed_note(note)[0].size == 3 and len(cosigned) == 2:
                break
            assert time.monotonic() < deadline, note
            time.sleep(0.1)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        stop_processes(procs)


def test_one_shot_add_checkpoint(tmp_path: Path) -> None:
    """The offline form: a request file in, the cosignature line out; a replay of an older
    state is refused with exit 1 and the 409 reason; the state file persists."""
    from mgattest.tlog._log import TransparencyLog
    from mgattest.tlog._witness import encode_request

    assert run("log", "init", "--db", tmp_path / "log.db", "--key-out", tmp_path / "log.key",
               "--pub-out", tmp_path / "log.pub", "--origin", "cli.test/log").exit_code == 0
    vkey = parse_vkey(run("log", "witness", "keygen", "--name", "w.test/1", "--key-out",
                          tmp_path / "w.pem").stdout.strip())
    log = TransparencyLog.open(tmp_path / "log.db", _signer(tmp_path / "log.key"))
    log.append(hashedrekord(new_key(), b"one"))
    note = log.signed_checkpoint()
    (tmp_path / "req").write_bytes(encode_request(0, [], note))
    base = ["log", "witness", "add-checkpoint", tmp_path / "req", "--key", tmp_path / "w.pem",
            "--name", "w.test/1", "--log", f"cli.test/log={tmp_path / 'log.pub'}",
            "--state", tmp_path / "w.db"]
    res = run(*base)
    assert res.exit_code == 0, res.output
    assert verify_cosignatures(note + res.stdout, [vkey]).verified.keys() == {"w.test/1"}
    again = run(*base)  # old 0 again, but the witness now holds size 1
    assert again.exit_code == 1 and "HTTP 409" in again.stderr and str(tmp_path / "req") \
        in again.stderr
    log.close()


def _signer(path: Path) -> Any:
    from mgattest.tlog._keys import LogSigner

    return LogSigner.from_file(path)
