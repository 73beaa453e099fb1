"""Property fuzzing of every parser that sees attacker bytes.

Bundles (raw bytes, arbitrary JSON, a real bundle with one node replaced), DSSE
envelopes, in-toto statements, attestation documents (.intoto.jsonl / npm), log
entries (bundle and Rekor forms, entry bodies, proposed entries), signed-note
checkpoints, certificates through our wrappers (bit-flipped DER, random Fulcio
extension values), RFC 3161 timestamps and trusted roots. Each must answer with a
typed :class:`~mgattest.errors.MgattestError` or a value: no other exception, no
hang (a per-example deadline), bounded memory (tracemalloc peak on large inputs).

Runs: a few dozen examples per property by default (seconds); CI (``CI=true``)
and ``MGATTEST_FUZZ=long`` run many more.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import os
import tracemalloc
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgattest.attest._bundle import load_bundle
from mgattest.attest._dsse import Envelope
from mgattest.attest._keys import generate_signer
from mgattest.attest._results import VerifiedTime
from mgattest.attest._sign import sign_model
from mgattest.attest._sources import attestations_from_bytes
from mgattest.attest._statement import parse_statement
from mgattest.attest._verify import verify_bundle
from mgattest.errors import MgattestError
from tests.helpers.bundles import entry_of, make_model
from tests.helpers.fuzz_budget import ADVERSARIAL, fuzz_examples
from mgattest.attest._options import TrustOptions

EXAMPLES = fuzz_examples(40, ADVERSARIAL)
FUZZ = settings(max_examples=EXAMPLES, deadline=datetime.timedelta(seconds=5),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25)
B64ISH = st.one_of(st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
                   st.text(max_size=60))


def _typed_or_value(fn: Callable[[], Any]) -> Any:
    """Run *fn*; a typed mgattest error is a fine answer, anything else propagates."""
    try:
        return fn()
    except MgattestError as exc:
        assert exc.message
        return exc


@pytest.fixture(scope="module")
def key_bundle(tmp_path_factory):
    """A real key-signed v0.3 bundle, its signer and its log home."""
    tmp = tmp_path_factory.mktemp("fuzz")
    home = tmp / "home"
    old = os.environ.get("MGATTEST_HOME")
    os.environ["MGATTEST_HOME"] = str(home)
    try:
        signer = generate_signer("ecdsa-p256")
        bundle = sign_model(make_model(tmp / "model"), signer).bundle
    finally:
        if old is None:
            os.environ.pop("MGATTEST_HOME", None)
        else:
            os.environ["MGATTEST_HOME"] = old
    return bundle, signer, home


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


# --------------------------------------------------------------------------- bundles

def _json_parsers() -> dict[str, Callable[[Any], Any]]:
    from mgattest.attest._trustroot import parse_trusted_root
    from mgattest.tlog._entries import canonicalize
    from mgattest.tlog._verify import verify_rekor_entry

    return {
        "bundle": lambda doc: load_bundle(json.dumps(doc).encode()),
        "dsse envelope": Envelope.from_dict,
        "rekor entry": lambda doc: verify_rekor_entry(doc, []),
        "proposed entry": canonicalize,
        "trusted root": parse_trusted_root,
    }


def _bytes_parsers() -> dict[str, Callable[[bytes], Any]]:
    from mgattest.tlog._entries import parse_body

    return {"bundle": load_bundle, "statement": parse_statement, "entry body": parse_body}


@pytest.mark.parametrize("parser", sorted(_json_parsers()))
@FUZZ
@given(doc=JSON)
def test_json_parsers(parser, doc):
    """Any JSON value, to every parser that takes decoded JSON."""
    _typed_or_value(lambda: _json_parsers()[parser](doc))


@pytest.mark.parametrize("parser", sorted(_bytes_parsers()))
@FUZZ
@given(data=st.binary(max_size=2048) | JSON.map(lambda d: json.dumps(d).encode()))
def test_bytes_parsers(parser, data):
    """Any bytes (and any JSON document), to every parser that takes raw bytes."""
    _typed_or_value(lambda: _bytes_parsers()[parser](data))


@FUZZ
@given(st.data())
def test_real_bundle_with_one_node_replaced(key_bundle, data):
    bundle, signer, home = key_bundle
    paths = [p for p in _paths(bundle) if p]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(JSON | B64ISH)
    tampered = copy.deepcopy(bundle)
    holder = tampered
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = value
    os.environ["MGATTEST_HOME"] = str(home)
    try:
        trust = TrustOptions(keys=[signer.public_key])
        result = _typed_or_value(lambda: verify_bundle(tampered, trust))
        original = verify_bundle(bundle, trust)
    finally:
        os.environ.pop("MGATTEST_HOME", None)
    if not isinstance(result, MgattestError):  # accepted: it must prove the same things
        assert result.payload_sha256 == original.payload_sha256
        assert set(result.signing_times) <= set(original.signing_times)


@FUZZ
@given(st.lists(JSON, max_size=4))
def test_attestation_documents(lines):
    text = "\n".join(json.dumps(x) for x in lines).encode()
    _typed_or_value(lambda: attestations_from_bytes(text, "fuzz.intoto.jsonl"))


# --------------------------------------------------------------------------- log entries

@FUZZ
@given(st.data())
def test_log_entry_fields(key_bundle, data):
    from mgattest.attest._locallog import local_trusted_logs
    from mgattest.tlog._verify import verify_entry

    bundle, _, home = key_bundle
    os.environ["MGATTEST_HOME"] = str(home)
    try:
        logs = local_trusted_logs()
    finally:
        os.environ.pop("MGATTEST_HOME", None)
    entry = copy.deepcopy(entry_of(bundle))
    path = data.draw(st.sampled_from([p for p in _paths(entry) if p]))
    holder = entry
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = data.draw(JSON | B64ISH)
    _typed_or_value(lambda: verify_entry(entry, logs))


@FUZZ
@given(st.text(max_size=400) | st.lists(st.text(max_size=60), max_size=8).map("\n".join))
def test_checkpoint_note(text):
    from mgattest.tlog._checkpoint import parse_signed_note

    _typed_or_value(lambda: parse_signed_note(text))


# --------------------------------------------------------------------------- certificates

@pytest.fixture(scope="module")
def leaf_der():
    from cryptography.hazmat.primitives import serialization

    from tests.helpers.bundles import code_signing_ca

    import tempfile
    from pathlib import Path

    ca = code_signing_ca(Path(tempfile.mkdtemp()))
    from cryptography import x509

    return x509.load_pem_x509_certificate(ca["leaf"]).public_bytes(
        serialization.Encoding.DER)


@FUZZ
@given(st.data())
def test_certificate_bit_flips(leaf_der, data):
    from mgattest.attest._certs import verify_signing_certificate

    der = bytearray(leaf_der)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(der) - 1))
        der[i] ^= data.draw(st.integers(1, 255))
    now = VerifiedTime(int(datetime.datetime.now().timestamp()), "set")
    _typed_or_value(lambda: verify_signing_certificate(bytes(der), [], None, [now]))


FULCIO_OIDS = ["1.3.6.1.4.1.57264.1.1", "1.3.6.1.4.1.57264.1.3", "1.3.6.1.4.1.57264.1.8",
               "1.3.6.1.4.1.57264.1.9", "1.3.6.1.4.1.57264.1.12", "1.3.6.1.4.1.57264.1.21"]


@FUZZ
@given(st.dictionaries(st.sampled_from(FULCIO_OIDS), st.binary(max_size=80), max_size=4),
       st.sampled_from(["email", "uri", "none", "other"]), st.text(max_size=40))
def test_certificate_identity_extensions(extensions, san_kind, san_value):
    """Random Fulcio extension bytes and SANs through ``parse_identity``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    from mgattest.attest._certs import parse_identity

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1)
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1)))
    try:
        if san_kind == "email":
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.RFC822Name(san_value)]), critical=False)
        elif san_kind == "uri":
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(san_value)]), critical=False)
        elif san_kind == "other":
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.57264.1.7"),
                                b"\x0c" + bytes([len(san_value.encode()[:100])])
                                + san_value.encode()[:100])]), critical=False)
        for oid, value in extensions.items():
            builder = builder.add_extension(
                x509.UnrecognizedExtension(ObjectIdentifier(oid), value), critical=False)
        cert = builder.sign(key, hashes.SHA256())
    except (ValueError, TypeError, UnicodeError):
        return  # cryptography refused to build it: nothing reaches our parser
    _typed_or_value(lambda: parse_identity(cert))


# --------------------------------------------------------------------------- timestamps, roots

@FUZZ
@given(st.lists(st.fixed_dictionaries({"signedTimestamp": B64ISH}) | JSON, max_size=4))
def test_rfc3161_timestamps(entries):
    from mgattest.attest._timestamps import parse_rfc3161_timestamps

    _typed_or_value(lambda: parse_rfc3161_timestamps(entries))


# --------------------------------------------------------------------------- bounds

@pytest.mark.parametrize("payload", [
    b"[" * 200_000 + b"]" * 200_000,
    b'{"mediaType": ' + b"9" * 100_000 + b"}",
    b'{"a": "' + b"x" * 4_000_000 + b'"}',
], ids=["deep-nesting", "huge-number", "large-string"])
def test_hostile_json_is_bounded(payload):
    """Deep nesting, a huge number and a large string: a typed rejection, and memory
    within a small multiple of the input."""
    tracemalloc.start()
    try:
        result = _typed_or_value(lambda: load_bundle(payload))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(result, MgattestError)
    assert peak < 10 * len(payload) + (8 << 20), peak
