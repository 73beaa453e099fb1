"""Encrypted files and directories: round trips, and every alteration refused by name.

Independent checks: an encrypted member decrypts with Tink itself (unwrap the header
with the KEK, then Tink's streaming AEAD), so the format is what docs/encryption.md
says and not only what our own reader accepts.
"""

from __future__ import annotations

import io
import os
import shutil

import pytest
import tink
from tink import aead, secret_key_access, streaming_aead

from mgattest.crypt import MANIFEST_NAME, decrypt_path, encrypt_path, plaintext_files
from mgattest.crypt._container import MAGIC, EncryptedFile
from mgattest.crypt.errors import CryptInputError, DecryptionError, WrongKeyError

SEG = 1 << 20


def _same_tree(a, b) -> None:
    names_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert names_a == names_b
    for name in names_a:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_file_round_trip(tmp_path, kek):
    plain = tmp_path / "m.bin"
    plain.write_bytes(os.urandom(3 * SEG + 5))
    encrypt_path(plain, tmp_path / "m.enc", kek)
    assert (tmp_path / "m.enc").read_bytes()[:8] == MAGIC
    decrypt_path(tmp_path / "m.enc", tmp_path / "m.out", kek)
    assert (tmp_path / "m.out").read_bytes() == plain.read_bytes()


def test_directory_round_trip_keeps_names(tmp_path, kek, model_dir):
    listed = encrypt_path(model_dir, tmp_path / "enc", kek)
    assert [f["name"] for f in listed] == ["a.bin", "b.bin", "empty", "sub/config.json"]
    enc_names = sorted(p.relative_to(tmp_path / "enc").as_posix()
                       for p in (tmp_path / "enc").rglob("*") if p.is_file())
    assert enc_names == sorted([MANIFEST_NAME, "a.bin", "b.bin", "empty", "sub/config.json"])
    assert b'"layers"' not in (tmp_path / "enc" / "sub" / "config.json").read_bytes()
    decrypt_path(tmp_path / "enc", tmp_path / "out", kek)
    _same_tree(model_dir, tmp_path / "out")


def test_member_decrypts_with_tink_given_the_documented_header(tmp_path, kek, model_dir):
    """docs/encryption.md: unwrap with the KEK (AD "mgattest-encrypt/v1 key\\0" ‖ context),
    parse the binary key set, decrypt the stream (AD "... data\\0" ‖ context)."""
    encrypt_path(model_dir, tmp_path / "enc", kek)
    import json
    manifest = json.loads(b"".join(EncryptedFile.open(tmp_path / "enc" / MANIFEST_NAME)
                                   .chunks(kek, b"manifest")))
    context = b"dir\x00" + manifest["directory_id"].encode() + b"\x00a.bin"
    header = EncryptedFile.open(tmp_path / "enc" / "a.bin")
    kek_aead = tink.json_proto_keyset_format.parse(kek.to_json(), secret_key_access.TOKEN) \
        .primitive(aead.Aead)
    keyset = kek_aead.decrypt(header.wrapped, b"mgattest-encrypt/v1 key\x00" + context)
    stream = tink.proto_keyset_format.parse(keyset, secret_key_access.TOKEN) \
        .primitive(streaming_aead.StreamingAead)
    body = (tmp_path / "enc" / "a.bin").read_bytes()[header.stream_offset:]
    with stream.new_decrypting_stream(io.BytesIO(body),
                                      b"mgattest-encrypt/v1 data\x00" + context) as s:
        assert s.read() == (model_dir / "a.bin").read_bytes()


def test_every_flipped_header_byte_is_refused(tmp_path, kek):
    plain = tmp_path / "m.bin"
    plain.write_bytes(b"x" * 1000)
    encrypt_path(plain, tmp_path / "m.enc", kek)
    blob = (tmp_path / "m.enc").read_bytes()
    header_end = EncryptedFile.open(tmp_path / "m.enc").stream_offset + 40
    (tmp_path / "copy.enc").write_bytes(blob)  # control: the untouched copy decrypts
    decrypt_path(tmp_path / "copy.enc", tmp_path / "copy.out", kek, name="m.enc")
    for offset in range(header_end):
        bad = bytearray(blob)
        bad[offset] ^= 0x80
        (tmp_path / "bad.enc").write_bytes(bad)
        with pytest.raises((DecryptionError, CryptInputError)):
            decrypt_path(tmp_path / "bad.enc", tmp_path / "bad.out", kek, name="m.enc")
        assert not (tmp_path / "bad.out").exists()


def _flip(path, offset) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(data)


@pytest.mark.parametrize("where", ["first", "middle", "tag", "last"])
def test_flipped_payload_byte_names_file_and_segment(tmp_path, kek, model_dir, where):
    encrypt_path(model_dir, tmp_path / "enc", kek)
    target = tmp_path / "enc" / "b.bin"
    offset = EncryptedFile.open(target).stream_offset + 40
    size = target.stat().st_size
    at = {"first": offset, "middle": offset + SEG + 7, "tag": offset + SEG - 40 - 1,
          "last": size - 1}[where]
    _flip(target, at)
    segment = {"first": 0, "middle": 1, "tag": 0, "last": 2}[where]
    with pytest.raises(DecryptionError, match=f"b.bin: segment {segment} fails") as exc:
        decrypt_path(tmp_path / "enc", tmp_path / "out", kek)
    assert exc.value.where == "b.bin" and exc.value.exit_code == 1
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


@pytest.mark.parametrize("cut", ["boundary", "inside", "header"])
def test_truncated_member_is_refused(tmp_path, kek, model_dir, cut):
    encrypt_path(model_dir, tmp_path / "enc", kek)
    target = tmp_path / "enc" / "a.bin"
    header = EncryptedFile.open(target)
    data = target.read_bytes()
    keep = {"boundary": header.stream_offset + 2 * SEG, "inside": len(data) - 1000,
            "header": header.stream_offset + 10}[cut]
    target.write_bytes(data[:keep])
    with pytest.raises(DecryptionError, match="a.bin"):
        decrypt_path(tmp_path / "enc", tmp_path / "out", kek)


def test_segment_swap_within_and_between_files(tmp_path, kek, model_dir):
    encrypt_path(model_dir, tmp_path / "enc", kek)
    a, b = tmp_path / "enc" / "a.bin", tmp_path / "enc" / "b.bin"
    # the header length varies with the key id's varint size: locate segments per file
    off_a = EncryptedFile.open(a).stream_offset + 40
    off_b = EncryptedFile.open(b).stream_offset + 40
    first = SEG - 40
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    seg1 = slice(off_a + first, off_a + first + SEG)
    a.write_bytes(blob_a[:seg1.start] + blob_b[off_b + first:off_b + first + SEG]
                  + blob_a[seg1.stop:])
    with pytest.raises(DecryptionError, match="a.bin: segment 1"):
        decrypt_path(tmp_path / "enc", tmp_path / "out", kek)
    # within one file: segments 0 and 1 exchanged (lengths differ by the header; use 1↔ a copy)
    a.write_bytes(blob_a[:seg1.start] + blob_a[seg1.stop:seg1.stop + SEG] + blob_a[seg1])
    with pytest.raises(DecryptionError, match="a.bin: segment 1"):
        decrypt_path(tmp_path / "enc", tmp_path / "out", kek)


def test_files_swapped_inside_a_directory_are_refused(tmp_path, kek, model_dir):
    """a.bin and b.bin have the same size: the manifest's sizes match, the names bound
    in the associated data do not."""
    encrypt_path(model_dir, tmp_path / "enc", kek)
    a, b = tmp_path / "enc" / "a.bin", tmp_path / "enc" / "b.bin"
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(blob_b)
    b.write_bytes(blob_a)
    with pytest.raises(DecryptionError, match="a.bin: the wrapped file key fails"):
        decrypt_path(tmp_path / "enc", tmp_path / "out", kek)


def test_member_moved_between_directories_is_refused(tmp_path, kek, model_dir):
    encrypt_path(model_dir, tmp_path / "one", kek)
    encrypt_path(model_dir, tmp_path / "two", kek)
    shutil.copyfile(tmp_path / "two" / "a.bin", tmp_path / "one" / "a.bin")
    with pytest.raises(DecryptionError, match="a.bin"):
        decrypt_path(tmp_path / "one", tmp_path / "out", kek)


def test_manifest_swapped_between_directories_is_refused(tmp_path, kek, model_dir):
    encrypt_path(model_dir, tmp_path / "one", kek)
    encrypt_path(model_dir, tmp_path / "two", kek)
    shutil.copyfile(tmp_path / "two" / MANIFEST_NAME, tmp_path / "one" / MANIFEST_NAME)
    with pytest.raises(DecryptionError):
        decrypt_path(tmp_path / "one", tmp_path / "out", kek)


def test_removed_added_or_renamed_member_is_refused(tmp_path, kek, model_dir):
    encrypt_path(model_dir, tmp_path / "enc", kek)
    enc = tmp_path / "enc"
    (enc / "empty").rename(enc / "renamed")
    with pytest.raises(DecryptionError, match=r"missing: \['empty'\], not listed: \['renamed'\]"):
        decrypt_path(enc, tmp_path / "out", kek)
    (enc / "renamed").unlink()
    with pytest.raises(DecryptionError, match="missing"):
        decrypt_path(enc, tmp_path / "out", kek)
    shutil.copyfile(enc / "a.bin", enc / "empty")
    with pytest.raises(DecryptionError, match="empty"):
        decrypt_path(enc, tmp_path / "out", kek)


def test_wrong_key_set_is_refused(tmp_path, kek, model_dir):
    from mgattest.crypt import KekKeyset
    encrypt_path(model_dir, tmp_path / "enc", kek)
    with pytest.raises(WrongKeyError, match="does not hold"):
        decrypt_path(tmp_path / "enc", tmp_path / "out", KekKeyset.generate())


def test_plaintext_files_checks_everything_before_yielding(tmp_path, kek, model_dir):
    encrypt_path(model_dir, tmp_path / "enc", kek)
    single, files = plaintext_files(tmp_path / "enc", kek)
    assert not single and [f.name for f in files] == ["a.bin", "b.bin", "empty",
                                                      "sub/config.json"]
    assert b"".join(files[3].chunks) == b'{"layers": 2}'


def test_refusals_of_bad_input(tmp_path, kek, model_dir):
    (tmp_path / "plain").write_bytes(b"not encrypted")
    with pytest.raises(CryptInputError, match="not an mgattest encrypted file"):
        decrypt_path(tmp_path / "plain", tmp_path / "out", kek)
    with pytest.raises(CryptInputError, match="not an encrypted directory"):
        decrypt_path(model_dir, tmp_path / "out", kek)
    with pytest.raises(CryptInputError, match="already exists"):
        encrypt_path(model_dir, model_dir, kek)
    encrypt_path(model_dir, tmp_path / "once", kek)
    with pytest.raises(CryptInputError, match="encrypted already"):
        encrypt_path(tmp_path / "once", tmp_path / "twice", kek)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(CryptInputError, match="not a regular file"):  # at once, no hang
        decrypt_path(tmp_path / "fifo", tmp_path / "out", kek)
    os.symlink(tmp_path / "plain", tmp_path / "link.enc")
    with pytest.raises(CryptInputError, match="link.enc"):
        decrypt_path(tmp_path / "link.enc", tmp_path / "out", kek)
    os.symlink("/etc/passwd", model_dir / "link")
    with pytest.raises(CryptInputError, match="symlinks"):
        encrypt_path(model_dir, tmp_path / "enc", kek)
    assert not (tmp_path / "enc").exists() and not list(tmp_path.glob(".enc.*"))


def test_single_files_are_bound_to_their_name(tmp_path, kek):
    """Two files encrypted on their own and swapped: refused; a renamed file decrypts
    when given the name it was encrypted to."""
    for n in ("one", "two"):
        (tmp_path / n).write_bytes(n.encode() * 1000)
        encrypt_path(tmp_path / n, tmp_path / f"{n}.enc", kek)
    one, two = (tmp_path / "one.enc").read_bytes(), (tmp_path / "two.enc").read_bytes()
    (tmp_path / "one.enc").write_bytes(two)
    (tmp_path / "two.enc").write_bytes(one)
    with pytest.raises(DecryptionError, match="renamed"):
        decrypt_path(tmp_path / "one.enc", tmp_path / "out", kek)
    decrypt_path(tmp_path / "one.enc", tmp_path / "out", kek, name="two.enc")
    assert (tmp_path / "out").read_bytes() == b"two" * 1000
