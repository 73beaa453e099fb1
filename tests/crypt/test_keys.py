"""Key sets, rotation, retirement and the three key sources."""

from __future__ import annotations

import json
import sys

import pytest

from mgattest.crypt import KekKeyset, KeySource, decrypt_path, encrypt_path, rewrap_path
from mgattest.crypt._container import EncryptedFile
from mgattest.crypt.errors import CryptInputError, KeySourceError, RetiredKeyError, \
    WrongKeyError


def _payloads(root) -> dict[str, bytes]:
    """Every encrypted file's bytes after its header (the part rotation must not touch)."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        header = EncryptedFile.open(path)
        out[path.relative_to(root).as_posix()] = path.read_bytes()[header.stream_offset:]
    return out


def test_rotation_rewraps_headers_only(tmp_path, model_dir):
    old = KekKeyset.generate()
    encrypt_path(model_dir, tmp_path / "enc", old)
    before = _payloads(tmp_path / "enc")
    new = old.rotated()
    assert new.primary_key_id != old.primary_key_id
    assert [(k.key_id, k.status) for k in new.keys()] == \
        [(old.primary_key_id, "enabled"), (new.primary_key_id, "enabled")]
    # old ciphertext still decrypts with the rotated key set (old key enabled)
    decrypt_path(tmp_path / "enc", tmp_path / "out1", new)
    assert rewrap_path(tmp_path / "enc", new) == (5, 0)  # 4 members + the manifest
    assert rewrap_path(tmp_path / "enc", new) == (0, 5)
    assert _payloads(tmp_path / "enc") == before
    wrapped_by = {int.from_bytes(EncryptedFile.open(p).wrapped[1:5], "big")
                  for p in (tmp_path / "enc").rglob("*") if p.is_file()}
    assert wrapped_by == {new.primary_key_id}
    # once re-wrapped, retiring the old key changes nothing for these files
    retired = new.retired(old.primary_key_id)
    decrypt_path(tmp_path / "enc", tmp_path / "out2", retired)
    assert (tmp_path / "out2" / "a.bin").read_bytes() == (model_dir / "a.bin").read_bytes()
    # ... and the old key set alone no longer opens them
    with pytest.raises(WrongKeyError, match=str(new.primary_key_id)):
        decrypt_path(tmp_path / "enc", tmp_path / "out3", old)


def test_retired_key_is_refused_with_its_id(tmp_path):
    plain = tmp_path / "m.bin"
    plain.write_bytes(b"weights" * 100)
    old = KekKeyset.generate()
    encrypt_path(plain, tmp_path / "m.enc", old)
    retired = old.rotated().retired(old.primary_key_id)
    assert [k.status for k in retired.keys()] == ["retired", "enabled"]
    with pytest.raises(RetiredKeyError, match=f"key {old.primary_key_id}, which .* has retired") \
            as exc:
        decrypt_path(tmp_path / "m.enc", tmp_path / "out", retired)
    assert exc.value.exit_code == 1 and exc.value.details["key_id"] == old.primary_key_id
    with pytest.raises(RetiredKeyError):  # a retired key cannot re-wrap either
        rewrap_path(tmp_path / "m.enc", retired)


def test_key_set_rules():
    kek = KekKeyset.generate()
    with pytest.raises(CryptInputError, match="primary key"):
        kek.retired(kek.primary_key_id)
    with pytest.raises(CryptInputError, match="has no key 7"):
        kek.retired(7)
    with pytest.raises(CryptInputError, match="not a Tink JSON key set"):
        KekKeyset("{not json", source="test")
    doc = json.loads(kek.to_json())
    doc["key"][0]["outputPrefixType"] = "RAW"
    with pytest.raises(CryptInputError, match="TINK prefix"):
        KekKeyset(json.dumps(doc), source="test")
    doc = json.loads(kek.to_json())
    doc["key"][0]["status"] = "DISABLED"
    with pytest.raises(CryptInputError, match="primary key is missing or retired"):
        KekKeyset(json.dumps(doc), source="test")
    assert KekKeyset(kek.to_json(), source="round trip").keys() == kek.keys()


def test_key_from_env_and_file(tmp_path, monkeypatch):
    kek = KekKeyset.generate()
    monkeypatch.setenv("TEST_KEYSET", kek.to_json())
    assert KeySource.env("TEST_KEYSET").load().keys() == kek.keys()
    (tmp_path / "k.json").write_text(kek.to_json())
    assert KeySource.file(tmp_path / "k.json").load().keys() == kek.keys()
    monkeypatch.delenv("TEST_KEYSET")
    with pytest.raises(KeySourceError, match="TEST_KEYSET is unset"):
        KeySource.env("TEST_KEYSET").load()
    with pytest.raises(Exception, match="missing.json"):
        KeySource.file(tmp_path / "missing.json").load()


def _py(code: str) -> str:
    return f"{sys.executable} -c '{code}'"


def test_key_command_success(tmp_path):
    kek = KekKeyset.generate()
    (tmp_path / "k.json").write_text(kek.to_json())
    source = KeySource.command(_py(f"print(open(\"{tmp_path / 'k.json'}\").read())"))
    assert source.load().keys() == kek.keys()


@pytest.mark.parametrize(("code", "message"), [
    ("import sys; sys.stderr.write(\"vault: permission denied\\n\"); sys.exit(3)",
     "exited with status 3: vault: permission denied"),
    ("pass", "empty key set"),
    ("import time; time.sleep(30)", "did not finish within 1 s"),
    ("import sys; sys.stdout.write(\"x\" * (2 << 20))", "printed more than"),
])
def test_key_command_failures(code, message):
    with pytest.raises(KeySourceError, match=message) as exc:
        KeySource.command(_py(code), timeout=1.0).load()
    assert exc.value.exit_code == 2


def test_key_command_runs_without_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(CryptInputError, match="not a Tink JSON key set"):
        KeySource.command(f"echo ; touch {marker}").load()  # echo prints "; touch ..."
    assert not marker.exists()
    with pytest.raises(KeySourceError, match="cannot run"):
        KeySource.command("/nonexistent/secret-tool lookup").load()
    with pytest.raises(KeySourceError, match="cannot split"):
        KeySource.command("echo 'unterminated").load()


def test_missing_tink_names_the_extra(monkeypatch):
    from mgattest._optional import MissingDependencyError
    from mgattest.crypt import _keysets
    monkeypatch.setitem(sys.modules, "tink", None)  # import tink -> ImportError
    _keysets._tink.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match=r"pip install 'mgattest\[encrypt\]'"):
            KekKeyset.generate()
    finally:
        _keysets._tink.cache_clear()
