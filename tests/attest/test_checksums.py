"""The checksum-file parser (``sha256sum``/``sha512sum``/BSD/openssl output), checked
against what the real coreutils and openssl write and what ``sha256sum -c`` decides."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from mgattest.attest import parse_checksum_text

needs_coreutils = pytest.mark.skipif(shutil.which("sha256sum") is None,
                                     reason="coreutils sha256sum not installed")

# Names coreutils writes in its escaped form (backslash, newline) next to plain ones.
NAMES = ["plain.bin", "with space.pt", "back\\slash.pt", "new\nline.pt", " lead.bin"]


def _tree(tmp_path):
    for i, name in enumerate(NAMES):
        (tmp_path / name).write_bytes(bytes([i]) * (100 + i))
    return tmp_path


def _run(tool, *args, cwd):
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, timeout=30,
                          check=True).stdout.decode("utf-8", "surrogateescape")


@needs_coreutils
@pytest.mark.parametrize("tool, algorithm", [("sha256sum", "sha256"), ("sha512sum", "sha512")])
@pytest.mark.parametrize("mode", [[], ["-b"], ["--tag"]])
def test_real_coreutils_output_parses_to_the_right_digests(tmp_path, tool, algorithm, mode):
    root = _tree(tmp_path)
    text = _run(tool, *mode, "--", *NAMES, cwd=root)
    assert "\\" in text  # coreutils escaped at least one name: that form is covered
    parsed = parse_checksum_text(text)
    assert parsed.bad_lines == ()
    assert [e.name for e in parsed.entries] == NAMES
    for entry in parsed.entries:
        assert entry.algorithm == algorithm
        assert entry.hex_digest == hashlib.new(algorithm, (root / entry.name).read_bytes()).hexdigest()


@needs_coreutils
def test_verdicts_agree_with_sha256sum_check(tmp_path):
    root = _tree(tmp_path)
    text = _run("sha256sum", "--", *NAMES, cwd=root)
    (root / "SUMS").write_text(text)
    (root / "with space.pt").write_bytes(b"tampered")
    check = subprocess.run(["sha256sum", "-c", "SUMS"], cwd=root, capture_output=True,
                           timeout=30)
    failed_by_coreutils = {line.rsplit(": ", 1)[0].lstrip("\\")
                           for line in check.stdout.decode().splitlines()
                           if line.endswith("FAILED")}
    ours = {e.name for e in parse_checksum_text(text).entries
            if hashlib.sha256((root / e.name).read_bytes()).hexdigest() != e.hex_digest}
    assert check.returncode == 1 and ours == {"with space.pt"} == failed_by_coreutils


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_dgst_output(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"onnx bytes")
    text = _run("openssl", "dgst", "-sha256", "m.onnx", cwd=tmp_path)
    (entry,) = parse_checksum_text(text).entries
    assert (entry.name, entry.algorithm) == ("m.onnx", "sha256")
    assert entry.hex_digest == hashlib.sha256(b"onnx bytes").hexdigest()


def test_windows_line_endings_comments_and_bare_digest():
    digest = "AB" * 32
    parsed = parse_checksum_text(f"# made by release.sh\r\n{digest} *m.pt\r\n\r\n")
    assert [(e.name, e.hex_digest, e.line) for e in parsed.entries] == [
        ("m.pt", digest.lower(), 2)]
    assert parse_checksum_text(digest + "\n").bad_lines  # a bare digest names no file
    (bare,) = parse_checksum_text(digest + "\n", default_name="m.pt").entries
    assert bare.name == "m.pt"


@pytest.mark.parametrize("line, reason", [
    ("d41d8cd98f00b204e9800998ecf8427e  m.pt", "32-digit"),            # md5sum
    ("MD5 (m.pt) = d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm MD5"),
    (f"SHA512 (m.pt) = {'a' * 64}", "64 hex digits"),                  # tag/length disagree
    (f"\\{'a' * 64}  bad\\qescape", "invalid backslash escape"),
    ("not a checksum line", "not a sha256sum"),
    (f"{'g' * 64}  m.pt", "not a sha256sum"),
])
def test_bad_lines_are_reported_with_their_line_number(line, reason):
    parsed = parse_checksum_text(f"{'a' * 64}  ok.pt\n{line}\n")
    assert [e.name for e in parsed.entries] == ["ok.pt"]
    (bad,) = parsed.bad_lines
    assert bad.line == 2 and reason in bad.reason
