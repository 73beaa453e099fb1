"""Log keys, C2SP signed-note checkpoints and SETs: KATs, round trips, strict parsing,
tampering of every field."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from mgattest.errors import InputError, VerificationError
from mgattest.tlog._checkpoint import (
    Checkpoint,
    parse_signed_note,
    sign_checkpoint,
    split_signed_note,
    verify_checkpoint,
)
from mgattest.tlog.errors import CheckpointError, SETError
from mgattest.tlog._keys import LogSigner, LogVerifier, note_key_hint
from mgattest.tlog._promise import set_payload, sign_set, verify_set

ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture(scope="module", params=["ecdsa-p256", "ed25519"])
def signer(request) -> LogSigner:
    return LogSigner.generate(request.param)


# --- keys ----------------------------------------------------------------------------

def test_key_round_trip_and_log_id(signer: LogSigner) -> None:
    again = LogSigner.from_pem(signer.private_pem())
    assert again.log_id == signer.log_id
    der = signer.public_key.public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signer.log_id == hashlib.sha256(der).digest()
    verifier = LogVerifier.from_pem(signer.public_pem())
    assert verifier.log_id == signer.log_id
    sig = signer.sign(b"data")
    verifier.verify(sig, b"data")
    with pytest.raises(VerificationError):
        verifier.verify(sig, b"datA")
    with pytest.raises(VerificationError):
        verifier.verify(b"", b"data")
    encrypted = signer.private_pem(password="pw")
    assert LogSigner.from_pem(encrypted, password=b"pw").log_id == signer.log_id
    with pytest.raises(InputError):
        LogSigner.from_pem(encrypted, password="wrong")
    with pytest.raises(InputError):
        LogSigner.from_pem(encrypted)


def test_key_loading_errors() -> None:
    with pytest.raises(InputError):
        LogSigner.generate("rsa")
    with pytest.raises(InputError):
        LogSigner.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InputError):
        LogVerifier.from_pem("not a key")
    with pytest.raises(InputError):
        LogSigner.from_pem(b"x" * 100_000)


def test_c2sp_signed_note_known_answer() -> None:
    """The example of https://c2sp.org/signed-note (PeterNeumann key)."""
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    name, hint_hex, key_b64 = vkey.split("+")
    raw = base64.b64decode(key_b64)
    assert raw[0] == 0x01
    public_key = ed25519.Ed25519PublicKey.from_public_bytes(raw[1:])
    assert note_key_hint(name, public_key).hex() == hint_hex
    note = ("If you think cryptography is the answer to your problem,\n"
            "then you don't know what your problem is.\n\n"
            "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
            "vqfqdngotpRZb6KE6RyyBwJnAM=\n")
    text, sigs = split_signed_note(note)
    assert [s.name for s in sigs] == ["PeterNeumann"]
    assert sigs[0].key_hint.hex() == hint_hex
    LogVerifier(public_key).verify(sigs[0].sig, text.encode())


def test_ecdsa_hint_is_spki_prefix() -> None:
    signer = LogSigner.generate("ecdsa-p256")
    assert note_key_hint("anything", signer.public_key) == signer.log_id[:4]
    assert note_key_hint("other", signer.public_key) == signer.log_id[:4]


# --- checkpoints -----------------------------------------------------------------------

def test_checkpoint_round_trip(signer: LogSigner) -> None:
    cp = Checkpoint("example.com/log", 42, ROOT, ("Timestamp: 1",))
    note = sign_checkpoint(cp, signer, "example.com/log")
    assert note.startswith(cp.body() + "\n\u2014 example.com/log ")
    parsed, sigs = parse_signed_note(note)
    assert parsed == cp
    assert sigs[0].key_hint == note_key_hint("example.com/log", signer.public_key)
    assert verify_checkpoint(note, [signer.verifier], origin="example.com/log") == cp
    assert verify_checkpoint(note, [signer.verifier], name="example.com/log") == cp


def test_checkpoint_wrong_key_origin_name(signer: LogSigner) -> None:
    note = sign_checkpoint(Checkpoint("o", 1, ROOT), signer, "o")
    other = LogSigner.generate(signer.key_type)
    with pytest.raises(CheckpointError, match="no signature by a trusted"):
        verify_checkpoint(note, [other.verifier])
    with pytest.raises(CheckpointError, match="origin"):
        verify_checkpoint(note, [signer.verifier], origin="p")
    with pytest.raises(CheckpointError):
        verify_checkpoint(note, [signer.verifier], name="someone-else")
    with pytest.raises(CheckpointError):
        verify_checkpoint(note, [])


def test_cosigned_checkpoint_extra_signatures_ignored(signer: LogSigner) -> None:
    cp = Checkpoint("log.example", 7, ROOT)
    witness = LogSigner.generate("ed25519")
    ours = sign_checkpoint(cp, signer, "log.example")
    theirs = sign_checkpoint(cp, witness, "witness.example")
    text, our_sig = ours.split("\n\n")
    _, their_sig = theirs.split("\n\n")
    for combined in (f"{text}\n\n{their_sig}{our_sig}", f"{text}\n\n{our_sig}{their_sig}"):
        assert verify_checkpoint(combined, [signer.verifier]) == cp


def test_every_byte_of_a_checkpoint_matters(signer: LogSigner) -> None:
    """Changing any single character of the signed note is rejected (or, at the very
    least, never yields a different verified checkpoint)."""
    cp = Checkpoint("log.example/x", 123456, ROOT)
    note = sign_checkpoint(cp, signer, "log.example/x")
    text_len = len(cp.body())
    for pos in range(len(note)):
        ch = note[pos]
        repl = "A" if ch != "A" else "B"
        tampered = note[:pos] + repl + note[pos + 1:]
        if pos < text_len:  # the signed text: always rejected
            with pytest.raises(CheckpointError):
                verify_checkpoint(tampered, [signer.verifier])
        else:
            try:
                got = verify_checkpoint(tampered, [signer.verifier])
            except CheckpointError:
                continue
            # ECDSA DER signatures / base64 padding bits may tolerate some edits of the
            # signature line only; the checkpoint itself can never change
            assert got == cp


MALFORMED = [
    "",  # empty
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n",  # no signature block
    "1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAAAAAAA\n",  # no origin
    "o\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAAAAAAA\n",  # no size
    "o\n1\n\n\u2014 o AAAAAAAA\n",  # no root
    "o\n01\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAAAAAAA\n",  # leading zero
    "o\n-1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAAAAAAA\n",
    "o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n\n\u2014 o AAAAAAAA\n",  # 31-byte root
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAAAAAAA",  # no final newline
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n- o AAAAAAAA\n",  # hyphen, not em dash
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAAA\n",  # sig too short
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAA*AAAA\n",  # bad base64
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o  AAAAAAAA\n",  # double space
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n\n\u2014 o AAAAAAAA\n",  # extra blank
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n\x07\n\n\u2014 o AAAAAAAA\n",  # control
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n" + "\u2014 o AAAAAAAA\n" * 101,
    "o\n1\n" + base64.b64encode(ROOT).decode() + "\n" + "x" * 70_000 + "\n\n\u2014 o AAAAAAAA\n",
    "o\n99999999999999999999\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAAAAAAA\n",
]


@pytest.mark.parametrize("note", MALFORMED, ids=[
    "empty", "no-signature-block", "no-origin", "no-size", "no-root", "leading-zero-size",
    "negative-size", "31-byte-root", "no-final-newline", "hyphen-not-em-dash",
    "signature-too-short", "bad-base64", "double-space", "extra-blank-line", "control-character",
    "101-signatures", "70k-line", "size-overflow"])
def test_malformed_notes_rejected(note: str, signer: LogSigner) -> None:
    with pytest.raises(CheckpointError):
        parse_signed_note(note)
    with pytest.raises(CheckpointError):
        verify_checkpoint(note, [signer.verifier])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_crashes(text: str) -> None:
    try:
        parse_signed_note(text)
    except CheckpointError:
        pass


def test_checkpoint_constructor_validates() -> None:
    for args in [("", 1, ROOT), ("a\nb", 1, ROOT), ("o", -1, ROOT), ("o", 1, b"x"),
                 ("o", 1 << 64, ROOT)]:
        with pytest.raises(CheckpointError):
            Checkpoint(*args)
    with pytest.raises(CheckpointError):
        Checkpoint("o", 1, ROOT, ("",))


# --- SET -----------------------------------------------------------------------------

def test_set_payload_is_jcs() -> None:
    payload = set_payload(b"body", 5, "ab" * 32, 7)
    assert payload == (b'{"body":"Ym9keQ==","integratedTime":5,"logID":"' + b"ab" * 32
                       + b'","logIndex":7}')


def test_set_round_trip_and_tampering(signer: LogSigner) -> None:
    log_id = signer.log_id.hex()
    sig = sign_set(signer, b"body", 100, log_id, 3)
    verify_set(signer.verifier, sig, b"body", 100, log_id, 3)
    for args in [(b"bodY", 100, log_id, 3), (b"body", 101, log_id, 3),
                 (b"body", 100, "cd" * 32, 3), (b"body", 100, log_id, 4)]:
        with pytest.raises(SETError):
            verify_set(signer.verifier, sig, *args)
    with pytest.raises(SETError):
        verify_set(LogSigner.generate().verifier, sig, b"body", 100, log_id, 3)
    with pytest.raises(SETError):
        set_payload(b"x", -1, log_id, 0)
    with pytest.raises(SETError):
        set_payload(b"x", 1, "short", 0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1),
       st.binary(min_size=32, max_size=32))
def test_set_payload_fast_path_equals_rfc8785(body: bytes, t: int, index: int,
                                             log_id: bytes) -> None:
    import rfc8785

    try:
        expected = rfc8785.dumps({"body": base64.b64encode(body).decode(), "integratedTime": t,
                                  "logID": log_id.hex(), "logIndex": index})
    except rfc8785.IntegerDomainError:
        with pytest.raises(SETError):
            set_payload(body, t, log_id.hex(), index)
        return
    assert set_payload(body, t, log_id.hex(), index) == expected


def test_log_signer_from_file_reads_a_bounded_encrypted_key(tmp_path) -> None:
    from mgattest.tlog._keys import LogSigner

    signer = LogSigner.generate()
    path = tmp_path / "log.key"
    path.write_bytes(signer.private_pem("pw"))
    assert LogSigner.from_file(path, password="pw").log_id == signer.log_id
    with pytest.raises(InputError, match="wrong password"):
        LogSigner.from_file(path, password="other")
    (tmp_path / "huge.key").write_bytes(b"x" * ((1 << 20) + 1))
    with pytest.raises(InputError):
        LogSigner.from_file(tmp_path / "huge.key")
