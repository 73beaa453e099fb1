"""The streaming format against Tink itself, and every alteration of a stream refused.

``tink`` (Google's library, C++ underneath) is the independent checker: what mgattest
writes must decrypt with Tink and what Tink writes must decrypt with mgattest, at the
sizes where segment arithmetic can go wrong.
"""

from __future__ import annotations

import io
import os

import pytest
import tink
from tink import secret_key_access, streaming_aead

from mgattest.crypt._keysets import new_file_key
from mgattest.crypt._streaming import StreamParams, decrypt_stream, encrypt_stream, \
    plaintext_size
from mgattest.crypt.errors import DecryptionError

SEG = 1 << 20
FIRST = SEG - 40 - 16  # plaintext of the first segment: header 40, tag 16
SIZES = [0, 1, FIRST - 1, FIRST, FIRST + 1, FIRST + SEG - 16, FIRST + SEG - 15, 3 << 20]


class _KeepOpen(io.BytesIO):
    def close(self) -> None:  # Tink closes its destination; keep the bytes readable
        pass


def _tink_primitive(keyset: bytes):
    handle = tink.proto_keyset_format.parse(keyset, secret_key_access.TOKEN)
    return handle.primitive(streaming_aead.StreamingAead)


def _encrypt(data: bytes, params: StreamParams, ad: bytes = b"ad") -> bytes:
    sink = io.BytesIO()
    assert encrypt_stream(io.BytesIO(data), sink, params, ad) == len(data)
    return sink.getvalue()


def _decrypt(blob: bytes, params: StreamParams, ad: bytes = b"ad") -> bytes:
    return b"".join(decrypt_stream(io.BytesIO(blob), params, ad, where="x"))


@pytest.mark.parametrize("size", SIZES)
def test_tink_decrypts_ours_and_we_decrypt_tinks(size):
    keyset, params = new_file_key()
    data = os.urandom(size)
    ours = _encrypt(data, params)
    with _tink_primitive(keyset).new_decrypting_stream(io.BytesIO(ours), b"ad") as stream:
        assert stream.read() == data
    theirs = _KeepOpen()
    with _tink_primitive(keyset).new_encrypting_stream(theirs, b"ad") as stream:
        stream.write(data)
    assert len(theirs.getvalue()) == len(ours)
    assert _decrypt(theirs.getvalue(), params) == data
    assert plaintext_size(len(ours), params) == size


def test_wrong_associated_data_is_refused_by_tink_too():
    keyset, params = new_file_key()
    blob = _encrypt(b"weights", params, b"dir\x00a.bin")
    with pytest.raises(DecryptionError, match="segment 0"):
        _decrypt(blob, params, b"dir\x00b.bin")
    with pytest.raises(tink.TinkError), \
            _tink_primitive(keyset).new_decrypting_stream(io.BytesIO(blob), b"dir\x00b.bin") as s:
        s.read()


# Small segments make exhaustive tampering cheap: 4 KiB segments, 5 of them.
SMALL = StreamParams(os.urandom(32), 32, 4096)
SMALL_DATA = os.urandom(SMALL.first_plain + 3 * SMALL.plain + 100)


@pytest.fixture(scope="module")
def small_blob() -> bytes:
    blob = _encrypt(SMALL_DATA, SMALL)
    assert _decrypt(blob, SMALL) == SMALL_DATA
    return blob


def test_every_flipped_byte_is_refused(small_blob):
    """Header, every ciphertext byte, every tag byte: one bit flipped, no plaintext."""
    for offset in range(len(small_blob)):
        bad = bytearray(small_blob)
        bad[offset] ^= 0x01
        with pytest.raises(DecryptionError):
            _decrypt(bytes(bad), SMALL)


def _segments(blob: bytes) -> list[bytes]:
    first = SMALL.segment_size - SMALL.header_size
    body = blob[SMALL.header_size:]
    return [body[:first]] + [body[i:i + SMALL.segment_size]
                             for i in range(first, len(body), SMALL.segment_size)]


def test_truncation_anywhere_is_refused(small_blob):
    segs = _segments(small_blob)
    boundaries = [SMALL.header_size + sum(len(s) for s in segs[:i]) for i in range(len(segs))]
    cuts = set(boundaries) | {b + 1 for b in boundaries} | {b - 1 for b in boundaries[1:]}
    cuts |= {0, 1, SMALL.header_size - 1, len(small_blob) - 1, len(small_blob) - 16}
    for cut in sorted(cuts):
        with pytest.raises(DecryptionError):
            _decrypt(small_blob[:cut], SMALL)


def test_appended_bytes_and_segments_are_refused(small_blob):
    segs = _segments(small_blob)
    for extra in (b"\x00", os.urandom(17), segs[1]):
        with pytest.raises(DecryptionError):
            _decrypt(small_blob + extra, SMALL)


def test_reordered_and_duplicated_segments_are_refused(small_blob):
    head = small_blob[:SMALL.header_size]
    segs = _segments(small_blob)
    swapped = segs[:1] + [segs[2], segs[1]] + segs[3:]
    duplicated = segs[:2] + [segs[1]] + segs[3:]
    dropped = segs[:1] + segs[2:]
    for order in (swapped, duplicated, dropped):
        with pytest.raises(DecryptionError, match="segment"):
            _decrypt(head + b"".join(order), SMALL)


def test_segment_from_another_stream_under_the_same_key_is_refused(small_blob):
    """Each stream derives its own key from a fresh salt: same key, same position, other
    stream's segment: refused."""
    other = _encrypt(SMALL_DATA, SMALL)
    head = small_blob[:SMALL.header_size]
    mine, theirs = _segments(small_blob), _segments(other)
    with pytest.raises(DecryptionError, match="segment 1"):
        _decrypt(head + b"".join(mine[:1] + theirs[1:2] + mine[2:]), SMALL)


def test_plaintext_size_rejects_impossible_lengths():
    assert plaintext_size(SMALL.header_size + 15, SMALL) is None
    full = SMALL.segment_size
    assert plaintext_size(full + 10, SMALL) is None  # 10-byte last segment: no room for a tag
    assert plaintext_size(full + 17, SMALL) == SMALL.first_plain + 1
