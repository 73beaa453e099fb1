"""A real log server for tests: signed Rekor proposed entries (hashedrekord, dsse), a
fresh log on disk, and the log served by uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers.servers import free_port


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 signing key (the "artifact signer", not the log key)."""
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def hashedrekord(key: ec.EllipticCurvePrivateKey, artifact: bytes) -> dict[str, Any]:
    """A Rekor hashedrekord 0.0.1 proposed entry with a real signature over ``artifact``."""
    signature = key.sign(artifact, ec.ECDSA(hashes.SHA256()))
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "signature": {"content": base64.b64encode(signature).decode(),
                          "publicKey": {"content": base64.b64encode(public_pem(key)).decode()}},
            "data": {"hash": {"algorithm": "sha256",
                              "value": hashlib.sha256(artifact).hexdigest()}},
        },
    }


def dsse_entry(key: ec.EllipticCurvePrivateKey, payload: bytes,
               payload_type: str = "application/vnd.in-toto+json") -> dict[str, Any]:
    """A Rekor dsse 0.0.1 proposed entry with a real DSSE signature."""
    t = payload_type.encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
    sig = key.sign(pae, ec.ECDSA(hashes.SHA256()))
    envelope = {"payload": base64.b64encode(payload).decode(), "payloadType": payload_type,
                "signatures": [{"sig": base64.b64encode(sig).decode()}]}
    verifier = base64.b64encode(public_pem(key)).decode()
    return {"apiVersion": "0.0.1", "kind": "dsse",
            "spec": {"proposedContent": {"envelope": json.dumps(envelope),
                                         "verifiers": [verifier]}}}


def in_toto_statement(digests: list[str]) -> bytes:
    """An in-toto Statement (SLSA provenance type, empty predicate) with one subject per
    SHA-256 hex digest, as the payload of a dsse entry."""
    return json.dumps({"_type": "https://in-toto.io/Statement/v1",
                       "subject": [{"name": f"f{i}", "digest": {"sha256": d}}
                                   for i, d in enumerate(digests)],
                       "predicateType": "https://slsa.dev/provenance/v1",
                       "predicate": {}}).encode()


def make_log(tmp: Path, **kwargs: Any) -> tuple[Any, Path, Path]:
    """A fresh log in ``tmp``: (TransparencyLog, db path, private key path)."""
    from mgattest.tlog._log import TransparencyLog

    tmp.mkdir(parents=True, exist_ok=True)
    db, key = tmp / "log.db", tmp / "log-key.pem"
    log = TransparencyLog.init(db, key, origin=kwargs.pop("origin", "test.mgattest.local/log"),
                               **kwargs)
    return log, db, key


@contextlib.contextmanager
def running_server(log: Any, limits: Any = None, **app_kwargs: Any) -> Iterator[str]:
    """Serve ``log`` with uvicorn in a thread on a free loopback port, behind the same
    guarded front as ``mgattest log serve`` (``limits``: its ConnectionLimits); always
    stopped."""
    from mgattest.tlog._server import create_app

    with serving(create_app(log, **app_kwargs), limits) as url:
        yield url


@contextlib.contextmanager
def serving(app: Any, limits: Any = None) -> Iterator[str]:
    """Serve the ASGI ``app`` (a log, a witness, a fake peer) with uvicorn in a thread on a
    free loopback port behind the servers' guarded front; yield its URL; always stopped."""
    import uvicorn

    from mgattest.tlog._server import uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, limits=limits))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


API = "/api/v1/log"


def post(url: str, body: Any, **kw: Any) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(url + API + "/entries", data=data,
                         headers={"Content-Type": "application/json", **kw.pop("headers", {})},
                         timeout=10, **kw)
