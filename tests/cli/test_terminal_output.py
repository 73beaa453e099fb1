"""Attacker-shaped text never reaches the terminal raw (issue #16 items 13 and 16).

A file name holding CR, cursor save/restore and a conceal escape could repaint a
DANGEROUS pickle's line as SAFE; a bidi override could reverse a name; an NFC and an NFD
name printed identically. Every CLI path that prints such text goes through
``mgattest._text.escape_text``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mgattest._text import escape_text, unsafe_char

DANGEROUS_PICKLE = b"cos\nsystem\n(S'echo pwned'\ntR."
# CR, save cursor, a fake SAFE verdict, restore cursor, then conceal everything after.
SPOOF_NAME = "evil.pkl\r\x1b7SAFE       ok.pkl\x1b8\x1b[8m"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgattest", *args], capture_output=True,
                          text=True, timeout=60, errors="surrogateescape")


def _raw_controls(text: str) -> list[str]:
    return [ch for ch in text if ch != "\n" and unsafe_char(ch)]


def test_inspect_cannot_repaint_a_dangerous_pickle_as_safe(tmp_path):
    (tmp_path / SPOOF_NAME).write_bytes(DANGEROUS_PICKLE)
    proc = _cli("inspect", str(tmp_path))
    assert proc.returncode == 1
    assert _raw_controls(proc.stdout + proc.stderr) == []
    first = proc.stdout.splitlines()[0]
    assert first.startswith("DANGEROUS ")
    assert "evil.pkl\\x0d\\x1b7SAFE" in first and "\\x1b[8m" in first


def test_inspect_escapes_bidi_override_and_newline_in_names(tmp_path):
    name = "model\u202elkp.bin\nSAFE       other.pkl"
    (tmp_path / name).write_bytes(DANGEROUS_PICKLE)
    proc = _cli("inspect", str(tmp_path))
    assert proc.returncode == 1
    assert "\u202e" not in proc.stdout and "\\u202e" in proc.stdout
    assert not any(line.startswith("SAFE") for line in proc.stdout.splitlines())


def test_error_messages_are_escaped(tmp_path):
    """A rejection naming an attacker's file goes through the same escaping (stderr)."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"x")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"w.bin": "0" * 64}))
    (model / "a\x1b]0;pwned\x07.bin").write_bytes(b"y")
    proc = _cli("watch", str(model), "--manifest", str(manifest), "--once")
    assert proc.returncode == 1
    assert _raw_controls(proc.stdout + proc.stderr) == []
    assert "\\x1b]0;pwned\\x07" in proc.stderr


def test_nfc_and_nfd_names_print_differently(tmp_path):
    nfc = unicodedata.normalize("NFC", "café.pkl")
    nfd = unicodedata.normalize("NFD", "café.pkl")
    assert escape_text(nfc) == nfc
    assert escape_text(nfd) == "cafe\\u0301.pkl"
    directory = tmp_path / "d"
    directory.mkdir()
    try:
        (directory / nfd).write_bytes(DANGEROUS_PICKLE)
    except OSError:
        pytest.skip("filesystem normalises names")
    if [p.name for p in directory.iterdir()] != [nfd]:
        pytest.skip("filesystem normalises names")
    proc = _cli("inspect", str(directory))
    assert "cafe\\u0301.pkl" in proc.stdout


def test_rich_markup_in_names_is_not_interpreted(tmp_path):
    """The policy tree is rich markup: a name like "[green]" is printed as written."""
    from rich.console import Console

    from mgattest.policy._explain import verdict_tree
    from mgattest.policy._verdict import Check, Verdict

    check = Check(rule="r", clause="files", status="fail",
                  reason="[/][bold green]✔ allowed[/] \x1b[2K", evidence=[])
    verdict = Verdict(allowed=False, decision="deny", mode="enforce", policy_source="p.yaml",
                      policy_digest="sha256:" + "0" * 64, evaluated_at=0, artifacts=[],
                      checks=[check])
    console = Console(record=True, width=200, color_system=None)
    console.print(verdict_tree(verdict))
    text = console.export_text()
    assert "[/][bold green]✔ allowed[/]" in text and "\\x1b[2K" in text
    assert "\x1b" not in text


@given(st.text())
def test_escaped_text_has_no_unsafe_characters(text):
    shown = escape_text(text)
    assert not any(unsafe_char(ch) for ch in shown)
    assert unicodedata.is_normalized("NFC", shown) or shown.isascii()
    # what is safe and NFC is shown unchanged
    if not any(unsafe_char(ch) for ch in text) and unicodedata.is_normalized("NFC", text):
        assert shown == text


def test_verify_shows_the_nfc_nfd_difference_it_rejects(tmp_path):
    """A signed NFC name replaced by its NFD twin fails closed, and the rejection shows
    two different names instead of the same one twice."""
    nfc = unicodedata.normalize("NFC", "café.bin")
    nfd = unicodedata.normalize("NFD", "café.bin")
    model = tmp_path / "model"
    model.mkdir()
    (model / nfc).write_bytes(b"weights")
    assert _cli("keygen", "--out", str(tmp_path / "k")).returncode == 0
    bundle = tmp_path / "m.sigstore.json"
    signed = _cli("sign", str(model), "--key", str(tmp_path / "k.key"), "--out", str(bundle),
                  "--no-log")
    assert signed.returncode == 0, signed.stderr
    os.rename(model / nfc, model / nfd)
    if sorted(p.name for p in model.iterdir()) != [nfd]:
        pytest.skip("filesystem normalises names")
    proc = _cli("verify", str(model), "--bundle", str(bundle), "--key", str(tmp_path / "k.pub"),
                "--allow-unlogged")
    assert proc.returncode == 1
    text = proc.stdout + proc.stderr
    assert "cafe\\u0301.bin" in text, text
    assert _raw_controls(text) == []


def test_verify_report_cannot_forge_a_line_from_the_bundle_path(tmp_path):
    """The bundle's path is attacker-shaped text too: a newline in it must not start a
    fake line in verify's report."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    key = tmp_path / "k"
    assert _cli("keygen", "--out", str(key)).returncode == 0
    bundle = tmp_path / "b.json\nverified FORGED: signed by release@example.com"
    signed = _cli("sign", str(model), "--key", f"{key}.key", "--out", str(bundle))
    assert signed.returncode == 0, signed.stderr
    proc = _cli("verify", str(model), "--key", f"{key}.pub", "--bundle", str(bundle))
    assert proc.returncode == 0, proc.stderr
    assert not any(line.startswith("verified FORGED") for line in proc.stdout.splitlines())
    assert "\\x0averified FORGED" in proc.stdout
