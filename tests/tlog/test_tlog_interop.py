"""sigstore-python (an independent implementation) against our log server.

Its own Rekor v1 client posts hashedrekord and dsse entries (built by its own
rekor_types / sigstore_models code) to our server and reads them back; its own Merkle,
checkpoint and SET checks accept what our server returns; every body and error parses
with sigstore-rekor-types models.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers.log_server import hashedrekord, make_log, new_key
from tests.helpers.peers import sigstore_keyring

pytestmark = [pytest.mark.interop, pytest.mark.network]


def self_signed_cert(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A real (self-issued) signing certificate, as a keyless signer would hold."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mgattest interop signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(minutes=10))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))


def test_sigstore_python_posts_and_reads_back(served: tuple[str, Any]) -> None:
    from sigstore._internal.merkle import verify_merkle_inclusion
    from sigstore._internal.rekor import RekorClientError, _hashedrekord_from_parts
    from sigstore._internal.rekor.checkpoint import verify_checkpoint
    from sigstore._internal.rekor.client import RekorClient as SigstoreRekorClient
    from sigstore._utils import sha256_digest
    from sigstore.dsse import StatementBuilder, Subject, _sign
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    url, log = served
    key = new_key()
    cert = self_signed_cert(key)
    keyring = sigstore_keyring(log)
    client = SigstoreRekorClient(url)

    artifact = b"model.safetensors bytes"
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=hashlib.sha256(artifact).digest())
    signature = key.sign(artifact, ec.ECDSA(hashes.SHA256()))
    request = client._build_hashed_rekord_request(hashed, signature, cert)
    entry = client.create_entry(request)
    assert entry._inner.log_index == 0
    assert entry._inner.kind_version.kind == "hashedrekord"
    verify_merkle_inclusion(entry)
    verify_checkpoint(keyring, entry)
    entry._verify_set(keyring)

    stmt = (StatementBuilder()
            .subjects([Subject(name="model.safetensors",
                               digest={"sha256": hashlib.sha256(artifact).hexdigest()})])
            .predicate_type("https://slsa.dev/provenance/v1")
            .predicate({"buildDefinition": {"buildType": "https://mgattest.dev/train/v1"}})
            .build())
    envelope = _sign(key, stmt)
    dsse_entry = client.create_entry(client._build_dsse_request(envelope, cert))
    assert dsse_entry._inner.log_index == 1
    assert dsse_entry._inner.kind_version.kind == "dsse"
    dsse_entry._verify(keyring)  # Merkle inclusion + checkpoint + SET, their code
    body = json.loads(dsse_entry._inner.canonicalized_body)
    assert body["spec"]["payloadHash"]["value"] == hashlib.sha256(
        stmt._contents).hexdigest()
    assert body["spec"]["envelopeHash"]["value"] == hashlib.sha256(
        envelope.to_json().encode()).hexdigest()

    # read back with their client: by UUID, by index, log info, retrieve
    uuid = hashlib.sha256(b"\x00" + dsse_entry._inner.canonicalized_body).hexdigest()
    got = client.log.entries.get(uuid=uuid)
    assert got._inner.canonicalized_body == dsse_entry._inner.canonicalized_body
    got = client.log.entries.get(log_index=1)
    assert got._inner.canonicalized_body == dsse_entry._inner.canonicalized_body
    info = client.log.get()
    assert info.tree_size == 2 and info.root_hash == log.root_hash().hex()
    found = client.log.entries.retrieve.post(_hashedrekord_from_parts(cert, signature, hashed))
    assert found is not None and found._inner.log_index == 0
    other = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=sha256_digest(b"nope").digest)
    other_sig = key.sign(b"nope", ec.ECDSA(hashes.SHA256()))
    assert client.log.entries.retrieve.post(
        _hashedrekord_from_parts(cert, other_sig, other)) is None

    # a duplicate: their error parser reads our Rekor-style error body
    with pytest.raises(RekorClientError, match="^409: an equivalent entry already exists"):
        client.create_entry(request)
    # a bad signature: 400 with a message, parsed the same way
    bad = client._build_hashed_rekord_request(hashed, key.sign(b"other", ec.ECDSA(
        hashes.SHA256())), cert)
    with pytest.raises(RekorClientError, match="^400: "):
        client.create_entry(bad)
    assert log.size == 2


def test_bodies_and_errors_validate_with_rekor_types(served: tuple[str, Any]) -> None:
    import rekor_types
    from pydantic import TypeAdapter

    url, log = served
    key = new_key()
    from tests.helpers.log_server import dsse_entry

    first = hashedrekord(key, b"a")
    for proposed in (first, dsse_entry(key, b'{"x": 1}')):
        # what we accept is what rekor_types calls a valid proposed entry ...
        TypeAdapter(rekor_types.ProposedEntry).validate_python(proposed)
        resp = requests.post(url + "/api/v1/log/entries", json=proposed, timeout=10)
        assert resp.status_code == 201
        (value,) = resp.json().values()
        # ... and every stored body is one too
        parsed = TypeAdapter(rekor_types.ProposedEntry).validate_json(
            base64.b64decode(value["body"]))
        assert parsed.kind == proposed["kind"]
    for resp in (requests.post(url + "/api/v1/log/entries", data=b"{", timeout=10),
                 requests.get(url + "/api/v1/log/entries/" + "0" * 64, timeout=10),
                 requests.post(url + "/api/v1/log/entries", json=first, timeout=10)):
        assert resp.status_code >= 400
        rekor_types.Error.model_validate_json(resp.text)


def test_sigstore_merkle_check_accepts_every_proof(tmp_path: Path) -> None:
    """Inclusion proofs at every index of trees of many shapes, checked by sigstore-python."""
    from sigstore._internal.merkle import verify_merkle_inclusion
    from sigstore._internal.rekor.checkpoint import verify_checkpoint
    from sigstore.models import TransparencyLogEntry

    log, _, _ = make_log(tmp_path)
    keyring = sigstore_keyring(log)
    key = new_key()
    for i in range(37):
        log.append(hashedrekord(key, b"leaf %d" % i))
    checked = 0
    for size in (1, 2, 3, 7, 8, 9, 16, 31, 37):
        for index in range(size):
            raw = log.entry_by_index(index).to_rekor_json(log.inclusion_proof(index, size))
            entry = TransparencyLogEntry._from_v1_response(raw)
            verify_merkle_inclusion(entry)
            verify_checkpoint(keyring, entry)
            checked += 1
    assert checked == 114
    # and a tampered proof is refused by their code too
    raw = log.entry_by_index(5).to_rekor_json(log.inclusion_proof(5, 37))
    (value,) = raw.values()
    value["verification"]["inclusionProof"]["hashes"][0] = "00" * 32
    with pytest.raises(Exception, match="inclusion proof"):
        verify_merkle_inclusion(TransparencyLogEntry._from_v1_response(raw))


def test_our_client_reads_what_sigstore_wrote(served: tuple[str, Any]) -> None:
    from sigstore._internal.rekor.client import RekorClient as SigstoreRekorClient
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    from mgattest.tlog._client import RekorClient
    from mgattest.tlog._trust import TrustedLog
    from mgattest.tlog._verify import verify_entry

    url, log = served
    key = new_key()
    cert = self_signed_cert(key)
    theirs = SigstoreRekorClient(url)
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=hashlib.sha256(b"z").digest())
    written = theirs.create_entry(theirs._build_hashed_rekord_request(
        hashed, key.sign(b"z", ec.ECDSA(hashes.SHA256())), cert))
    trusted = [TrustedLog.for_verifier(log.signer.verifier, origin=log.origin)]
    ours = RekorClient(url, trusted_logs=trusted, origin=log.origin).get_entry(0)
    assert json.loads(written._inner.to_json()) == ours
    verified = verify_entry(ours, trusted, origin=log.origin)
    assert verified.inclusion_proof_verified and verified.set_verified
