"""DSSE: PAE byte-exactness, envelope parsing bounds, signing round trips."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgattest.attest import _dsse as dsse
from mgattest.attest._keys import generate_signer
from mgattest.attest._signers import SignatureMismatchError, Verifier
from mgattest.errors import InputError


def test_pae_matches_spec_example():
    # DSSE protocol.md test vector.
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_counts_utf8_bytes_not_characters():
    assert dsse.pae("t\u00e9", b"\xc3\xa9") == b"DSSEv1 3 t\xc3\xa9 2 \xc3\xa9"


@given(st.text(min_size=1, max_size=40), st.binary(max_size=200))
@settings(max_examples=60)
def test_pae_is_injective_on_type_and_body(ptype, body):
    encoded = dsse.pae(ptype, body)
    head = b"DSSEv1 %d " % len(ptype.encode())
    assert encoded.startswith(head)
    rest = encoded[len(head):]
    assert rest[:len(ptype.encode())] == ptype.encode()
    assert encoded.endswith(b" " + body) and b" %d " % len(body) in encoded


@given(st.binary(min_size=0, max_size=300), st.binary(min_size=1, max_size=80),
       st.text(max_size=10))
@settings(max_examples=60)
def test_envelope_dict_round_trip(payload, sig, keyid):
    env = dsse.Envelope(payload, dsse.IN_TOTO_PAYLOAD_TYPE, (dsse.Signature(sig, keyid),))
    again = dsse.Envelope.from_dict(json.loads(env.to_json()))
    assert again == env


def test_sign_and_verify_envelope():
    signer = generate_signer("ecdsa-p256")
    env = dsse.sign_envelope(b'{"a":1}', signer)
    Verifier(signer.public_key).verify(env.signatures[0].sig, env.pae())
    with pytest.raises(SignatureMismatchError):
        Verifier(signer.public_key).verify(env.signatures[0].sig,
                                           dsse.pae("text/plain", env.payload))


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.pop("payloadType"), "payloadType"),
    (lambda d: d.update(payloadType=""), "payloadType"),
    (lambda d: d.update(payload="not base64!"), "invalid base64"),
    (lambda d: d.update(payload=5), "base64 string"),
    (lambda d: d.update(signatures=[]), "no signatures"),
    (lambda d: d.update(signatures=[{"sig": ""}]), "empty"),
    (lambda d: d.update(signatures=[{"sig": "AAAA", "keyid": 3}]), "keyid"),
    (lambda d: d.update(signatures=[{"sig": "AAAA"}] * 17), "more than"),
    (lambda d: d.update(signatures=["x"]), "not an object"),
])
def test_malformed_envelopes_are_input_errors(mutate, needle):
    data = {"payload": base64.b64encode(b"{}").decode(), "payloadType": "x",
            "signatures": [{"sig": "AAAA"}]}
    mutate(data)
    with pytest.raises(InputError, match=needle):
        dsse.Envelope.from_dict(data)


def test_oversized_payload_refused_before_decoding():
    data = {"payload": "A" * (dsse.MAX_PAYLOAD_BYTES * 2), "payloadType": "x",
            "signatures": [{"sig": "AAAA"}]}
    with pytest.raises(InputError, match="larger than"):
        dsse.Envelope.from_dict(data)


def test_urlsafe_base64_accepted():
    raw = b"\xfb\xff\xfe"
    assert dsse.b64decode_strict(base64.urlsafe_b64encode(raw).decode().rstrip("="),
                                 what="x") == raw
