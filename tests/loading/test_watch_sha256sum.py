"""``watch --manifest`` with a sha256sum file (what coreutils writes), besides JSON."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mgattest.errors import InputError
from mgattest.loading._watch import read_digest_manifest
from tests.helpers.cli_runner import mg

pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None,
                                reason="coreutils sha256sum not installed")

NAMES = ["w.bin", "sub/config.json", "with space.bin"]


def _model(tmp_path, *sum_args):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    for i, name in enumerate(NAMES):
        (model / name).write_bytes(bytes([i + 1]) * 500)
    sums = subprocess.run(["sha256sum", *sum_args, "--", *NAMES], cwd=model, check=True,
                          capture_output=True, timeout=30).stdout
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_bytes(sums)
    return model, manifest


@pytest.mark.parametrize("sum_args", [[], ["-b"], ["--tag"]])
def test_watch_accepts_sha256sum_output(tmp_path, sum_args):
    model, manifest = _model(tmp_path, *sum_args)
    assert set(read_digest_manifest(str(manifest))) == set(NAMES)
    ok = mg("watch", model, "--manifest", manifest, "--once")
    assert ok.exit_code == 0, ok.output
    (model / "with space.bin").write_bytes(b"tampered")
    bad = mg("watch", model, "--manifest", manifest, "--once")
    assert bad.exit_code == 1 and "digest changed" in bad.output


def test_unreadable_or_sha512_manifest_is_an_input_error(tmp_path):
    model, manifest = _model(tmp_path)
    manifest.write_text(manifest.read_text() + "garbage line\n")
    with pytest.raises(InputError, match="line 4: not a sha256sum"):
        read_digest_manifest(str(manifest))
    sha512 = subprocess.run(["sha512sum", "w.bin"], cwd=model, check=True,
                            capture_output=True, timeout=30).stdout
    manifest.write_bytes(sha512)
    result = mg("watch", model, "--manifest", manifest, "--once")
    assert result.exit_code == 2 and "watch checks SHA-256" in result.output
    manifest.write_text(f"{'a' * 64}  w.bin\n{'b' * 64}  ./w.bin\n")
    with pytest.raises(InputError, match="twice with different digests"):
        read_digest_manifest(str(manifest))
