"""``mgattest encrypt``/``decrypt``/``keyset``: exit codes and messages end to end."""

from __future__ import annotations

import os
import stat
import sys

import pytest

pytest.importorskip("tink")

from tests.helpers.cli_runner import mg  # noqa: E402 - after the optional-dependency skip


def _key_id(output: str, primary: bool) -> str:
    return next(line.split()[0] for line in output.splitlines()
                if ("primary" in line) == primary)


def test_round_trip_rotation_and_retirement(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(os.urandom(1 << 20))
    r = mg("keyset", "new", "-o", tmp_path / "k1.json")
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE((tmp_path / "k1.json").stat().st_mode) == 0o600
    assert mg("keyset", "new", "-o", tmp_path / "k1.json").exit_code == 2  # never overwritten
    r = mg("encrypt", tmp_path / "model", "-o", tmp_path / "enc", "--key-file", tmp_path / "k1.json")
    assert r.exit_code == 0 and "encrypted 1 file(s)" in r.output, r.output
    r = mg("decrypt", tmp_path / "enc", "-o", tmp_path / "out",
           "--key-command", f"cat {tmp_path / 'k1.json'}")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "w.bin").read_bytes() == (tmp_path / "model" / "w.bin").read_bytes()

    assert mg("keyset", "rotate", "--key-file", tmp_path / "k1.json",
              "-o", tmp_path / "k2.json").exit_code == 0
    listing = mg("keyset", "list", "--key-file", tmp_path / "k2.json").output
    old, new = _key_id(listing, False), _key_id(listing, True)
    r = mg("keyset", "retire", old, "--key-file", tmp_path / "k2.json", "-o", tmp_path / "k3.json")
    assert r.exit_code == 0, r.output
    r = mg("decrypt", tmp_path / "enc", "-o", tmp_path / "out2", "--key-file", tmp_path / "k3.json")
    assert r.exit_code == 1 and f"wrapped with key {old}" in r.output and "retired" in r.output
    r = mg("keyset", "rewrap", tmp_path / "enc", "--key-file", tmp_path / "k2.json")
    assert r.exit_code == 0 and f"re-wrapped 2 file key(s) under key {new}" in r.output, r.output
    r = mg("decrypt", tmp_path / "enc", "-o", tmp_path / "out2", "--key-file", tmp_path / "k3.json")
    assert r.exit_code == 0, r.output
    r = mg("keyset", "retire", new, "--key-file", tmp_path / "k3.json", "-o", "-")
    assert r.exit_code == 2 and "primary key" in r.output


def test_failures_are_clear_and_typed(tmp_path, monkeypatch):
    (tmp_path / "m.bin").write_bytes(b"w" * 5000)
    mg("keyset", "new", "-o", tmp_path / "k.json")
    mg("keyset", "new", "-o", tmp_path / "other.json")
    assert mg("encrypt", tmp_path / "m.bin", "-o", tmp_path / "m.enc",
              "--key-file", tmp_path / "k.json").exit_code == 0
    r = mg("decrypt", tmp_path / "m.enc", "-o", tmp_path / "x", "--key-file", tmp_path / "other.json")
    assert r.exit_code == 1 and "does not hold" in r.output
    data = bytearray((tmp_path / "m.enc").read_bytes())
    data[-20] ^= 4
    (tmp_path / "bad.enc").write_bytes(data)
    r = mg("decrypt", tmp_path / "bad.enc", "-o", tmp_path / "x", "--key-file", tmp_path / "k.json")
    assert r.exit_code == 1 and "renamed" in r.output  # bound to the name m.enc
    r = mg("decrypt", tmp_path / "bad.enc", "-o", tmp_path / "x", "--key-file", tmp_path / "k.json",
           "--name", "m.enc")
    assert r.exit_code == 1 and "segment 0 fails authentication" in r.output
    assert not (tmp_path / "x").exists()
    r = mg("decrypt", tmp_path / "m.enc", "-o", tmp_path / "x", "--key-command",
           f"{sys.executable} -c 'import sys; sys.exit(5)'")
    assert r.exit_code == 2 and "exited with status 5" in r.output
    monkeypatch.delenv("MGATTEST_KEYSET", raising=False)
    r = mg("decrypt", tmp_path / "m.enc", "-o", tmp_path / "x")
    assert r.exit_code == 2 and "MGATTEST_KEYSET is unset" in r.output
    monkeypatch.setenv("MGATTEST_KEYSET", (tmp_path / "k.json").read_text())
    assert mg("decrypt", tmp_path / "m.enc", "-o", tmp_path / "x").exit_code == 0
    r = mg("decrypt", tmp_path / "m.enc", "-o", tmp_path / "y", "--key-file", tmp_path / "k.json",
           "--key-env", "X")
    assert r.exit_code == 2 and "give one of" in r.output
    assert "Traceback" not in r.output
