"""Entry canonicalisation: byte-exact with real Rekor bodies, signature checks, schema
and size validation, tampering, proposals built by sigstore-python's own code."""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509.oid import NameOID

from mgattest._encodings import pae
from mgattest.tlog._entries import CanonicalEntry, canonicalize, parse_body
from mgattest.tlog.errors import EntryRejectedError

ASSETS = "data/sigstore+sigstore-conformance/test/assets/bundle-verify"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pub_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def self_signed(key) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mgattest test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    algo = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(minutes=10)).sign(key, algo))


def sign_digest(key, digest: bytes, alg=hashes.SHA256) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(digest, ec.ECDSA(utils.Prehashed(alg())))
    return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(alg()))


def hashedrekord(key, data: bytes = b"model bytes", *, key_pem: bytes | None = None,
                 alg: str = "sha256") -> dict:
    hcls = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[alg]
    digest = hashlib.new(alg, data).digest()
    return {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "signature": {"content": b64(sign_digest(key, digest, hcls)),
                      "publicKey": {"content": b64(key_pem or pub_pem(key))}},
        "data": {"hash": {"algorithm": alg, "value": digest.hex()}}}}


def envelope(keys, payload: bytes = b'{"_type":"https://in-toto.io/Statement/v1"}',
             payload_type: str = "application/vnd.in-toto+json") -> dict:
    sigs = []
    for key in keys:
        msg = pae(payload_type, payload)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            sig = key.sign(msg)
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            sig = key.sign(msg, ec.ECDSA(hashes.SHA256()))
        else:
            sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        sigs.append({"sig": b64(sig), "keyid": ""})
    return {"payload": b64(payload), "payloadType": payload_type, "signatures": sigs}


def dsse(env: dict, verifier_pems: list[bytes]) -> dict:
    return {"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {
        "envelope": json.dumps(env, separators=(",", ":")),
        "verifiers": [b64(p) for p in verifier_pems]}}}


@pytest.fixture(scope="module")
def p256():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(65537, 2048)


# --- byte-exact with Rekor ---------------------------------------------------------

def _bundle(conformance_dir: Path, name: str) -> dict:
    return json.loads((conformance_dir / ASSETS / name / "bundle.sigstore.json").read_text())


def test_hashedrekord_body_matches_public_rekor_byte_for_byte(conformance_dir: Path) -> None:
    bundle = _bundle(conformance_dir, "happy-path-v0.3")
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    rekor_body = base64.b64decode(entry["canonicalizedBody"])
    cert_der = base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
    cert_pem = x509.load_der_x509_certificate(cert_der).public_bytes(serialization.Encoding.PEM)
    sig = bundle["messageSignature"]
    proposed = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "signature": {"content": sig["signature"], "publicKey": {"content": b64(cert_pem)}},
        "data": {"hash": {"algorithm": "sha256",
                          "value": base64.b64decode(sig["messageDigest"]["digest"]).hex()}}}}
    got = canonicalize(proposed)
    assert got == CanonicalEntry("hashedrekord", "0.0.1", rekor_body)
    # a PEM with CRLF line ends and no trailing newline canonicalises the same way
    messy = cert_pem.replace(b"\n", b"\r\n").rstrip()
    proposed["spec"]["signature"]["publicKey"]["content"] = b64(messy)
    assert canonicalize(proposed).body == rekor_body


def test_dsse_body_matches_public_rekor_byte_for_byte(conformance_dir: Path) -> None:
    bundle = _bundle(conformance_dir, "happy-path-intoto-in-dsse-v3")
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    rekor_body = base64.b64decode(entry["canonicalizedBody"])
    cert_der = base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
    cert_pem = x509.load_der_x509_certificate(cert_der).public_bytes(serialization.Encoding.PEM)
    proposed = dsse(bundle["dsseEnvelope"], [cert_pem])
    assert canonicalize(proposed).body == rekor_body


def test_parse_body_accepts_every_conformance_body(conformance_dir: Path) -> None:
    """Bodies of every bundle the conformance suite expects to verify parse cleanly."""
    seen = set()
    cases = json.loads((conformance_dir / "cases.json").read_text())
    for case in cases:
        if case["expected"] != "pass":
            continue
        bundle = json.loads((conformance_dir / case["bundle"]).read_text())
        for entry in bundle.get("verificationMaterial", {}).get("tlogEntries", []):
            obj = parse_body(base64.b64decode(entry["canonicalizedBody"]))
            seen.add((obj["kind"], obj["apiVersion"]))
    assert {("hashedrekord", "0.0.1"), ("dsse", "0.0.1"), ("intoto", "0.0.2"),
            ("hashedrekord", "0.0.2")} <= seen


# --- proposals built by sigstore-python's own request builders ---------------------

@pytest.mark.interop
def test_sigstore_python_hashedrekord_request_canonicalises(p256) -> None:
    from sigstore._internal.rekor.client import RekorClient
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    cert = self_signed(p256)
    digest = hashlib.sha256(b"weights").digest()
    sig = p256.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    request = RekorClient._build_hashed_rekord_request(
        None, Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest), sig, cert)
    entry = canonicalize(dict(request))
    body = json.loads(entry.body)
    assert body["spec"]["data"]["hash"] == {"algorithm": "sha256", "value": digest.hex()}
    assert base64.b64decode(body["spec"]["signature"]["publicKey"]["content"]) == \
        cert.public_bytes(serialization.Encoding.PEM)
    assert entry.body == rfc8785.dumps(body)


@pytest.mark.interop
def test_sigstore_python_dsse_request_canonicalises(p256) -> None:
    from sigstore import dsse as sdsse
    from sigstore._internal.rekor.client import RekorClient

    cert = self_signed(p256)
    stmt = sdsse.StatementBuilder().subjects(
        [sdsse.Subject(name="model.bin", digest={"sha256": "ab" * 32})]
    ).predicate_type("https://slsa.dev/provenance/v1").predicate({"x": 1}).build()
    env = sdsse._sign(p256, stmt)
    request = RekorClient._build_dsse_request(None, env, cert)
    entry = canonicalize(dict(request))
    body = json.loads(entry.body)
    assert body["spec"]["envelopeHash"]["value"] == hashlib.sha256(
        env.to_json().encode()).hexdigest()
    assert body["spec"]["payloadHash"]["value"] == hashlib.sha256(stmt._contents).hexdigest()


# --- our own keys, every supported type --------------------------------------------

@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
def test_hashedrekord_ecdsa_and_rsa(p256, rsa_key, alg: str) -> None:
    for key in (p256, rsa_key, ec.generate_private_key(ec.SECP384R1())):
        entry = canonicalize(hashedrekord(key, alg=alg))
        body = parse_body(entry.body)
        assert body["spec"]["data"]["hash"]["algorithm"] == alg
        assert list(body["spec"]) == ["data", "signature"]  # JCS key order


def test_hashedrekord_with_certificate(p256) -> None:
    cert_pem = self_signed(p256).public_bytes(serialization.Encoding.PEM)
    entry = canonicalize(hashedrekord(p256, key_pem=cert_pem))
    assert base64.b64decode(json.loads(entry.body)["spec"]["signature"]["publicKey"]
                            ["content"]) == cert_pem


def test_hashedrekord_rejects_ed25519() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    proposed = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "signature": {"content": b64(key.sign(b"x" * 32)), "publicKey": {"content": b64(
            pub_pem(key))}},
        "data": {"hash": {"algorithm": "sha256", "value": "00" * 32}}}}
    with pytest.raises(EntryRejectedError, match="Ed25519"):
        canonicalize(proposed)


def test_hashedrekord_tampering_rejected(p256, rsa_key) -> None:
    # ECDSA DER signatures are 70-72 bytes; a 72-byte one has no base64 padding to strip,
    # which would make the "unpadded base64" case below a no-op. Sign until padded.
    good = hashedrekord(p256)
    while not good["spec"]["signature"]["content"].endswith("="):
        good = hashedrekord(p256)
    canonicalize(good)
    other = ec.generate_private_key(ec.SECP256R1())

    def mutate(fn):
        p = copy.deepcopy(good)
        fn(p)
        return p

    spec = lambda p: p["spec"]  # noqa: E731
    bad = {
        "digest": mutate(lambda p: spec(p)["data"]["hash"].update(value="00" * 32)),
        "signature": mutate(lambda p: spec(p)["signature"].update(
            content=b64(sign_digest(p256, b"\1" * 32)))),
        "key": mutate(lambda p: spec(p)["signature"]["publicKey"].update(
            content=b64(pub_pem(other)))),
        "algorithm": mutate(lambda p: spec(p)["data"]["hash"].update(algorithm="sha384")),
        "upper hex": mutate(lambda p: spec(p)["data"]["hash"].update(
            value=spec(good)["data"]["hash"]["value"].upper())),
        "short hex": mutate(lambda p: spec(p)["data"]["hash"].update(value="ab" * 31)),
        "md5": mutate(lambda p: spec(p)["data"]["hash"].update(algorithm="md5")),
        "sig base64": mutate(lambda p: spec(p)["signature"].update(content="not*base64")),
        "unpadded base64": mutate(lambda p: spec(p)["signature"].update(
            content=spec(good)["signature"]["content"].rstrip("="))),
        "key not pem": mutate(lambda p: spec(p)["signature"]["publicKey"].update(
            content=b64(b"hello"))),
        "extra field": mutate(lambda p: spec(p).update(extra=1)),
        "missing data": mutate(lambda p: spec(p).pop("data")),
        "kind": mutate(lambda p: p.update(kind="rekord")),
        "version": mutate(lambda p: p.update(apiVersion="0.0.2")),
        "top extra": mutate(lambda p: p.update(more=True)),
        "spec list": mutate(lambda p: p.update(spec=[])),
        "private key": mutate(lambda p: spec(p)["signature"]["publicKey"].update(
            content=b64(p256.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())))),
        "small rsa": hashedrekord(rsa.generate_private_key(65537, 1024)),
        "certificate chain": hashedrekord(p256, key_pem=self_signed(p256).public_bytes(
            serialization.Encoding.PEM) * 2),
    }
    for label, proposed in bad.items():
        with pytest.raises(EntryRejectedError) as info:
            canonicalize(proposed)
        assert info.value.message, label
    with pytest.raises(EntryRejectedError, match="larger than"):
        canonicalize(mutate(lambda p: spec(p)["signature"].update(content="A" * 5_000_000)))
    with pytest.raises(EntryRejectedError):
        canonicalize("not a dict")  # type: ignore[arg-type]


def test_dsse_every_key_type_and_sorted_signatures(p256, rsa_key) -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    keys = [p256, rsa_key, ed]
    env = envelope(keys)
    entry = canonicalize(dsse(env, [pub_pem(k) for k in keys]))
    body = parse_body(entry.body)
    sigs = body["spec"]["signatures"]
    assert [s["signature"] for s in sigs] == sorted(s["sig"] for s in env["signatures"])
    by_sig = {s["sig"]: pub_pem(k) for s, k in zip(env["signatures"], keys)}
    for s in sigs:
        assert base64.b64decode(s["verifier"]) == by_sig[s["signature"]]
    assert body["spec"]["payloadHash"]["value"] == hashlib.sha256(
        base64.b64decode(env["payload"])).hexdigest()
    # verifier order does not change the body; envelope text does (envelopeHash)
    assert canonicalize(dsse(env, [pub_pem(k) for k in reversed(keys)])).body == entry.body


def test_dsse_tampering_rejected(p256) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    env = envelope([p256])
    canonicalize(dsse(env, [pub_pem(p256)]))
    payload_changed = dict(env, payload=b64(b'{"_type":"evil"}'))
    type_changed = dict(env, payloadType="text/plain")
    sig_changed = dict(env, signatures=[{"sig": envelope([other])["signatures"][0]["sig"]}])
    two_sigs = envelope([p256, other])
    cases = {
        "payload": dsse(payload_changed, [pub_pem(p256)]),
        "payloadType": dsse(type_changed, [pub_pem(p256)]),
        "signature": dsse(sig_changed, [pub_pem(p256)]),
        "wrong verifier": dsse(env, [pub_pem(other)]),
        "unverified second signature": dsse(two_sigs, [pub_pem(p256)]),
        "unused verifier": dsse(env, [pub_pem(p256), pub_pem(other)]),
        "no signatures": dsse(dict(env, signatures=[]), [pub_pem(p256)]),
        "no verifiers": dsse(env, []),
        "envelope extra": dsse(dict(env, extra=1), [pub_pem(p256)]),
        "bad payload b64": dsse(dict(env, payload="%%%"), [pub_pem(p256)]),
    }
    for label, proposed in cases.items():
        with pytest.raises(EntryRejectedError):
            canonicalize(proposed)
    not_json = dsse(env, [pub_pem(p256)])
    not_json["spec"]["proposedContent"]["envelope"] = "{not json"
    with pytest.raises(EntryRejectedError, match="not JSON"):
        canonicalize(not_json)
    server_fields = dsse(env, [pub_pem(p256)])
    server_fields["spec"]["payloadHash"] = {"algorithm": "sha256", "value": "00" * 32}
    with pytest.raises(EntryRejectedError, match="unknown field"):
        canonicalize(server_fields)


def test_parse_body_rejects_bad_bodies(p256) -> None:
    body = canonicalize(hashedrekord(p256)).body
    parse_body(body)
    obj = json.loads(body)
    for bad in [
        json.dumps(obj, indent=1).encode(),  # not canonical
        b"", b"[]", b"{", rfc8785.dumps(dict(obj, kind="nope")),
        rfc8785.dumps(dict(obj, spec={"data": obj["spec"]["data"]})),
        rfc8785.dumps(dict(obj, extra=1)),
        b" " * (5 * 1024 * 1024),
    ]:
        with pytest.raises(EntryRejectedError):
            parse_body(bad)


@pytest.mark.parametrize("value", [[], {}, [1], {"a": 1}, 7, 1.5, True])
def test_kind_and_version_of_any_json_type_are_rejected_not_crashed(value: object) -> None:
    """A list or object as kind/apiVersion is unhashable: refused like any unknown kind
    (found by the server fuzz test as a 500)."""
    for field in ("kind", "apiVersion"):
        proposed = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {}}
        proposed[field] = value
        with pytest.raises(EntryRejectedError, match="unsupported entry kind"):
            canonicalize(proposed)
        body = json.dumps(proposed).encode()
        with pytest.raises(EntryRejectedError, match="unknown entry kind"):
            parse_body(body)
