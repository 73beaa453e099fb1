"""The log server under abuse (issue #9): Unicode digits, weak RSA keys, CPU
amplification, connection exhaustion and entries too large for tiles.

Everything runs against real servers on 127.0.0.1 (uvicorn in a thread with the same
guarded front ``mgattest log serve`` uses, or a real ``log serve`` subprocess for the
load test), real SQLite logs and real keys.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.fuzz_budget import SERVER, fuzz_examples

from tests.helpers.paths import PROJECT_ROOT

from mgattest._numbers import parse_ascii_uint
from mgattest.errors import InputError
from mgattest.tlog import _entries as entries, merkle, _tiles as tiles
from mgattest.tlog.errors import EntryRejectedError
from mgattest.tlog._keys import KeyParameterError, LogVerifier, check_rsa_parameters
from tests.helpers.log_server import (API, dsse_entry, hashedrekord, make_log, new_key, post,
                              running_server)

pytestmark = pytest.mark.network

UNICODE_DIGITS = ["²", "٣", "３", "໓", "¹²", "1²", "٠١", "𝟗"]
NOT_ASCII_NUMBERS = UNICODE_DIGITS + ["+1", "-0", " 1", "1 ", "1_0", "0x1", "1\n", "", "1e3"]


def _bench_module() -> Any:
    """benchmarks/bench_tlog_abuse.py: the attack tooling shared with the benchmark."""
    name = "bench_tlog_abuse"
    if name not in sys.modules:
        path = PROJECT_ROOT / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while defining
        spec.loader.exec_module(module)
    return sys.modules[name]


def guarded_server(log: Any, limits: Any = None, **app_kwargs: Any) -> Any:
    """``log`` served in a thread behind the guarded front of ``log serve``."""
    return running_server(log, limits, **app_kwargs)


@pytest.fixture(scope="module")
def one_entry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log, _, _ = make_log(tmp_path_factory.mktemp("abuse"))
    log.append(hashedrekord(new_key(), b"first"))
    with guarded_server(log) as url:
        yield url


# --- item 18: ASCII digits only ----------------------------------------------------------


@pytest.mark.parametrize("text", NOT_ASCII_NUMBERS)
def test_parse_ascii_uint_refuses_everything_but_ascii_digits(text: str) -> None:
    assert parse_ascii_uint(text) is None


def test_parse_ascii_uint_reads_ascii_digits() -> None:
    assert parse_ascii_uint("0") == 0
    assert parse_ascii_uint("007") == 7
    assert parse_ascii_uint("9" * 19) == int("9" * 19)
    assert parse_ascii_uint("9" * 20) is None
    assert parse_ascii_uint(None) is None


@settings(max_examples=fuzz_examples(300, SERVER), deadline=None)
@given(st.text(max_size=25))
def test_parse_ascii_uint_fuzz(text: str) -> None:
    value = parse_ascii_uint(text)
    if value is None:
        assert not (text.isascii() and text.isdigit() and 0 < len(text) <= 19)
    else:
        assert text.isascii() and text.isdigit() and value == int(text)


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_unicode_digits_in_query_parameters_are_400(one_entry_server: str, digit: str) -> None:
    url = one_entry_server
    for path, params in ((f"{API}/entries", {"logIndex": digit}),
                         (f"{API}/entries", {"logIndex": "0" + digit}),
                         (f"{API}/proof", {"firstSize": digit, "lastSize": "1"}),
                         (f"{API}/proof", {"firstSize": "1", "lastSize": digit})):
        resp = requests.get(url + path, params=params, timeout=10)
        assert resp.status_code == 400, (path, params, resp.status_code, resp.text)
        assert "ASCII" in resp.json()["message"]


@pytest.mark.parametrize("path", [
    "tile/٠/000", "tile/0/٠٠٠", "tile/0/00٠", "tile/entries/٠٠٠", "tile/0/000.p/١",
    "tile/0/000.p/²", "tile/²/000", "tile/0/x٠٠١/000", "tile/0/000\n", "tile/0/000.p/1\n",
    "tile/0/０００",
])
def test_unicode_digits_in_tile_paths_are_refused(one_entry_server: str, path: str) -> None:
    with pytest.raises(tiles.TilePathError):
        tiles.parse_tile_path(path)
    resp = requests.get(f"{one_entry_server}/{requests.utils.quote(path)}", timeout=10)
    assert resp.status_code == 404, (path, resp.status_code, resp.text)


@pytest.mark.parametrize("length", ["²", "٣", "+2", "0x2", "2_0"])
def test_unicode_content_length_is_400(one_entry_server: str, length: str) -> None:
    port = int(one_entry_server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/log/entries/retrieve HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: " + length.encode() + b"\r\n\r\n{}")
        answer = sock.recv(4096)
    status = int(answer.split(b" ", 2)[1])
    assert status == 400, answer


def test_ca_server_content_length_sibling() -> None:
    """The CA server parsed Content-Length with isdigit() too ('²' gave a 500)."""
    import inspect as pyinspect

    from mgattest.ca import _server as ca_server

    source = pyinspect.getsource(ca_server)
    assert ".isdigit()" not in source and "parse_ascii_uint" in source


# --- item 7: RSA parameters ----------------------------------------------------------------


def _rsa_public(bits: int, e: int = 65537) -> rsa.RSAPublicKey:
    n = _rsa_modulus(bits)
    return rsa.RSAPublicNumbers(e, n).public_key()


_MODULI: dict[int, int] = {}


def _rsa_modulus(bits: int) -> int:
    """An RSA modulus of ``bits`` bits (product of two primes; cached per size)."""
    if bits not in _MODULI:
        if bits <= 4096:
            _MODULI[bits] = rsa.generate_private_key(65537, bits).public_key() \
                .public_numbers().n
        else:  # a well-formed public key is all that is needed: odd, top bit set
            _MODULI[bits] = (1 << (bits - 1)) | (_rsa_modulus(4096) << 64) | 1
    return _MODULI[bits]


@pytest.mark.parametrize("bits,e", [(1024, 65537), (2040, 65537), (4104, 65537),
                                    (8192, 65537), (2048, 3), (2048, 17), (2048, 65539),
                                    (3072, (1 << 3000) + 1)])
def test_weak_or_huge_rsa_parameters_are_refused_everywhere(bits: int, e: int,
                                                              tmp_path: Path) -> None:
    from mgattest.attest._keys import load_verifier
    from mgattest.attest.errors import KeyFileError
    from mgattest.attest._signers import UnsupportedKeyError, Verifier

    key = _rsa_public(bits, e)
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyParameterError):
        check_rsa_parameters(key)
    with pytest.raises(InputError, match="RSA"):
        LogVerifier.from_pem(pem)  # log keys
    with pytest.raises(UnsupportedKeyError, match="RSA"):
        Verifier(key)  # signing / verification keys
    (tmp_path / "k.pub").write_bytes(pem)
    with pytest.raises(KeyFileError, match="RSA"):
        load_verifier(tmp_path / "k.pub")
    with pytest.raises(EntryRejectedError, match="RSA"):
        entries.load_key_or_certificate(pem, "spec.signature.publicKey.content")


def test_rsa_keys_within_the_rule_are_accepted() -> None:
    from mgattest.attest._signers import Verifier

    for bits in (2048, 4096):
        key = _rsa_public(bits)
        check_rsa_parameters(key)
        LogVerifier(key)
        Verifier(key)


def test_policy_refuses_a_trusted_rsa_key_with_a_huge_exponent(tmp_path: Path) -> None:
    from mgattest.policy.errors import PolicyError
    from mgattest.policy._loader import load_policy

    policy = tmp_path / "policy.yaml"
    policy.write_bytes((PROJECT_ROOT / "policies" / "key-signed-minimum.yaml").read_bytes())
    good = new_key().public_key()
    for key, refused in ((good, False), (_rsa_public(3072, (1 << 3000) + 1), True),
                         (_rsa_public(1024), True)):
        (tmp_path / "release.pub").write_bytes(key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        if refused:
            with pytest.raises(PolicyError, match="RSA"):
                load_policy(policy)
        else:
            load_policy(policy)


# --- item 15: CPU amplification ------------------------------------------------------------


@pytest.fixture(scope="module")
def crafted_retrieve_body() -> bytes:
    bench = _bench_module()
    return bench.crafted_retrieve_body(bench.huge_exponent_rsa_key())


def test_crafted_retrieve_is_refused_at_once(one_entry_server: str,
                                             crafted_retrieve_body: bytes) -> None:
    """On main each of these took tens of seconds of CPU on the log's only thread."""
    started = time.monotonic()
    resp = requests.post(f"{one_entry_server}{API}/entries/retrieve",
                         data=crafted_retrieve_body, timeout=60)
    took = time.monotonic() - started
    assert resp.status_code == 400, resp.text
    assert "exponent" in resp.json()["message"]
    assert took < 2.0, took


def _dsse_with(keys: list[ec.EllipticCurvePrivateKey], signers: list[int]) -> dict[str, Any]:
    payload, payload_type = b'{"a":1}', "application/vnd.in-toto+json"
    pae = entries.pae(payload_type, payload)
    sigs = [{"sig": base64.b64encode(keys[i].sign(pae, ec.ECDSA(hashes.SHA256()))).decode()}
            for i in signers]
    envelope = {"payload": base64.b64encode(payload).decode(), "payloadType": payload_type,
                "signatures": sigs}
    verifiers = [base64.b64encode(k.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
        for k in keys]
    return {"apiVersion": "0.0.1", "kind": "dsse",
            "spec": {"proposedContent": {"envelope": json.dumps(envelope),
                                         "verifiers": verifiers}}}


def test_signature_checks_per_entry_are_bounded() -> None:
    keys = [ec.generate_private_key(ec.SECP384R1()) for _ in range(16)]
    # In order (signature i by verifier i): 16 signatures, 16 checks each at most 2.
    entries.canonicalize(_dsse_with(keys, list(range(16))))
    # Reversed: signature i is verified only by the last verifiers tried: > 64 checks.
    with pytest.raises(EntryRejectedError, match="signature checks"):
        entries.canonicalize(_dsse_with(keys, list(reversed(range(16)))))


def test_reads_do_not_wait_for_slow_validation(tmp_path: Path) -> None:
    """A read answers while the validation pool is busy with another client's work."""
    log, _, _ = make_log(tmp_path)
    log.append(hashedrekord(new_key(), b"first"))
    release = threading.Event()
    with guarded_server(log) as url:
        from mgattest.tlog import _server as server_mod

        original = server_mod._LogService.retrieve_query

        def slow_query(self: Any, body: bytes) -> Any:
            release.wait(20)
            return original(self, body)

        server_mod._LogService.retrieve_query = slow_query  # type: ignore[method-assign]
        try:
            blockers = [threading.Thread(target=requests.post, kwargs={
                "url": f"{url}{API}/entries/retrieve", "json": {"logIndexes": [0]},
                "timeout": 30}) for _ in range(4)]
            for t in blockers:
                t.start()
            time.sleep(0.3)
            started = time.monotonic()
            resp = requests.get(f"{url}{API}/entries", params={"logIndex": 0}, timeout=10)
            assert resp.status_code == 200
            assert time.monotonic() - started < 1.0
        finally:
            release.set()
            server_mod._LogService.retrieve_query = original  # type: ignore[method-assign]
            for t in blockers:
                t.join(timeout=30)


def test_reads_do_not_wait_for_a_slow_write(tmp_path: Path) -> None:
    """On main every read queued behind the write batch on the log's only thread."""
    log, _, _ = make_log(tmp_path)
    log.append(hashedrekord(new_key(), b"first"))
    original = log.append_many_canonical
    entered, release = threading.Event(), threading.Event()

    def slow_append(batch: Any) -> Any:
        entered.set()
        release.wait(20)
        return original(batch)

    log.append_many_canonical = slow_append  # type: ignore[method-assign]
    with guarded_server(log) as url:
        writer = threading.Thread(target=post, args=(url, hashedrekord(new_key(), b"slow")))
        writer.start()
        try:
            assert entered.wait(10)
            started = time.monotonic()
            for path in ("/checkpoint", f"{API}/entries?logIndex=0", f"{API}",
                         "/tile/0/000.p/1"):
                assert requests.get(url + path, timeout=10).status_code == 200, path
            assert time.monotonic() - started < 1.0
        finally:
            release.set()
            writer.join(timeout=30)
    assert log.size == 2


def test_validation_pool_takes_clients_in_turn() -> None:
    from mgattest.tlog._server import _FairPool

    pool = _FairPool(1, "test")
    gate = threading.Event()
    order: list[str] = []
    try:
        first = pool.submit("attacker", gate.wait, 10)
        queued = [pool.submit("attacker", order.append, f"a{i}") for i in range(5)]
        honest = pool.submit("honest", order.append, "h")
        gate.set()
        for f in [first, *queued, honest]:
            f.result(timeout=10)
    finally:
        pool.shutdown()
    assert order.index("h") <= 1, order  # behind at most one of the attacker's jobs


# --- item 16: connection exhaustion --------------------------------------------------------


def _status_of(sock: socket.socket, timeout: float) -> int | None:
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except (socket.timeout, ConnectionResetError):
        return None
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def test_header_and_body_deadlines_close_slow_clients(tmp_path: Path) -> None:
    from mgattest._httpguard import ConnectionLimits

    log, _, _ = make_log(tmp_path)
    limits = ConnectionLimits(header_timeout=0.5, body_timeout=0.5, send_timeout=5)
    with guarded_server(log, limits) as url:
        port = int(url.rsplit(":", 1)[1])
        silent = socket.create_connection(("127.0.0.1", port))
        partial = socket.create_connection(("127.0.0.1", port))
        partial.sendall(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        body = socket.create_connection(("127.0.0.1", port))
        body.sendall(b"POST /api/v1/log/entries/retrieve HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        started = time.monotonic()
        assert _status_of(silent, 5) == 408
        assert _status_of(partial, 5) == 408
        assert _status_of(body, 5) == 408
        assert time.monotonic() - started < 3
        for s in (silent, partial, body):
            s.close()


def test_idle_connections_do_not_turn_into_503_for_others(tmp_path: Path) -> None:
    """On main, 256 half-sent connections made every other client's request a 503."""
    from mgattest._httpguard import ConnectionLimits

    log, _, _ = make_log(tmp_path)
    limits = ConnectionLimits(header_timeout=30, max_per_client=300)
    with guarded_server(log, limits) as url:
        port = int(url.rsplit(":", 1)[1])
        held = []
        try:
            for _ in range(260):
                s = socket.create_connection(("127.0.0.1", port),
                                             source_address=("127.0.0.2", 0))
                s.sendall(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            for _ in range(5):
                assert requests.get(url + "/checkpoint", timeout=10).status_code == 200
            assert post(url, hashedrekord(new_key(), b"while held")).status_code == 201
        finally:
            for s in held:
                s.close()


def test_per_client_connection_cap(tmp_path: Path) -> None:
    from mgattest._httpguard import ConnectionLimits

    log, _, _ = make_log(tmp_path)
    with guarded_server(log, ConnectionLimits(header_timeout=30, max_per_client=8)) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
                for _ in range(8)]
        try:
            time.sleep(0.2)
            extra = socket.create_connection(("127.0.0.1", port),
                                             source_address=("127.0.0.2", 0))
            assert _status_of(extra, 5) == 503
            extra.close()
            # another client is unaffected
            assert requests.get(url + "/checkpoint", timeout=10).status_code == 200
        finally:
            for s in held:
                s.close()


def test_client_key_groups_ipv6_by_64() -> None:
    from mgattest._httpguard import client_key

    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1")
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert client_key("127.0.0.2") == "127.0.0.2"


def test_connection_cap_fits_the_descriptor_limit() -> None:
    from mgattest._httpguard import FD_RESERVE, ConnectionLimits, fit_to_fd_limit

    fitted = fit_to_fd_limit(ConnectionLimits(max_connections=4096), 1024)
    assert fitted.max_connections == 1024 - FD_RESERVE
    assert fitted.max_per_client <= fitted.max_connections


@pytest.mark.slow
def test_honest_client_is_served_while_attacked(tmp_path: Path) -> None:
    """256 slow-loris connections + crafted retrieves against a real `log serve`.

    On main: every honest read and append was answered 503 and each crafted retrieve
    took over a minute.
    """
    result = _bench_module().run_abuse(tmp_path, duration=10.0, slow=256, crafted=3)
    assert result["slow_opened"] >= 256
    assert not result["read_failures"], result["read_failures"][:5]
    assert result["reads"] > 50
    assert result["read_p99_ms"] < 1000, result
    assert set(result["append_status"]) == {201}, result["append_status"]
    assert result["crafted_sent"] > 0 and set(result["crafted_status"]) == {400}, result


# --- item 17: entries over 65,535 bytes ----------------------------------------------------


def _big_hashedrekord(padding_bytes: int) -> dict[str, Any]:
    """A real, signed hashedrekord whose certificate carries a (non-critical) extension
    of ``padding_bytes`` bytes: its canonical body is about 1.8 times that."""
    import datetime as dt

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "big")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"),
                                                      b"x" * padding_bytes),
                           critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    artifact = b"big"
    sig = key.sign(artifact, ec.ECDSA(hashes.SHA256()))
    return {"apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {"signature": {"content": base64.b64encode(sig).decode(),
                                   "publicKey": {"content": base64.b64encode(pem).decode()}},
                     "data": {"hash": {"algorithm": "sha256",
                                       "value": hashlib.sha256(artifact).hexdigest()}}}}


def test_entries_over_65535_bytes_are_refused_at_append(tmp_path: Path) -> None:
    log, _, _ = make_log(tmp_path)
    big = _big_hashedrekord(45_000)  # a PEM under the 64 KiB limit, a body over 65,535
    with pytest.raises(EntryRejectedError, match="65535"):
        log.append(big)
    assert log.size == 0
    small = _big_hashedrekord(20_000)
    logged = log.append(small)
    assert len(logged.body) <= tiles.MAX_ENTRY_SIZE
    with guarded_server(log) as url:
        resp = post(url, big)
        assert resp.status_code == 400 and "65535" in resp.json()["message"]
        bundle = requests.get(url + "/tile/entries/000.p/1", timeout=10)
        assert bundle.status_code == 200
        assert tiles.decode_entry_bundle(bundle.content) == [logged.body]


def test_a_legacy_oversized_entry_makes_its_bundle_404_not_500(tmp_path: Path) -> None:
    """A log written before the cap may hold such an entry: its bundle is unavailable
    (naming the entry), every other tile and the Rekor API still serve."""
    from mgattest.tlog._store import PendingLeaf

    log, _, _ = make_log(tmp_path)
    body = json.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord",
                       "spec": {"pad": "x" * 70_000}}).encode()
    log._store.append([PendingLeaf(merkle.leaf_hash(body), body, "hashedrekord", "0.0.1")],
                      log._stamp)
    with guarded_server(log) as url:
        bundle = requests.get(url + "/tile/entries/000.p/1", timeout=10)
        assert bundle.status_code == 404, bundle.text
        assert "65535" in bundle.json()["message"]
        assert requests.get(url + "/tile/0/000.p/1", timeout=10).status_code == 200
        assert requests.get(f"{url}{API}/entries", params={"logIndex": 0},
                            timeout=10).status_code == 200


# --- fuzz: request bodies and query strings --------------------------------------------------

_deep = st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n + b"]" * n)


@settings(max_examples=fuzz_examples(25, SERVER), deadline=None)
@given(body=st.one_of(_deep, st.binary(max_size=200),
                      st.text(max_size=200).map(lambda t: t.encode("utf-8"))))
def test_fuzzed_retrieve_bodies_never_fail_the_server(one_entry_server: str,
                                                      body: bytes) -> None:
    resp = requests.post(f"{one_entry_server}{API}/entries/retrieve", data=body, timeout=20)
    assert resp.status_code in (200, 400, 413), (body[:80], resp.status_code, resp.text)


@settings(max_examples=fuzz_examples(40, SERVER), deadline=None)
@given(name=st.sampled_from(["logIndex", "firstSize", "lastSize"]),
       value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=25))
def test_fuzzed_query_strings_never_fail_the_server(one_entry_server: str, name: str,
                                                    value: str) -> None:
    path = f"{API}/entries" if name == "logIndex" else f"{API}/proof"
    params = {name: value} if name != "firstSize" else {name: value, "lastSize": "1"}
    resp = requests.get(one_entry_server + path, params=params, timeout=10)
    assert resp.status_code in (200, 400, 404), (params, resp.status_code, resp.text)
    if resp.status_code == 200:
        assert value.isascii()


@settings(max_examples=fuzz_examples(200, SERVER), deadline=None)
@given(st.text(max_size=40))
def test_fuzzed_tile_paths_parse_or_raise_tile_path_error(path: str) -> None:
    try:
        ref = tiles.parse_tile_path("tile/" + path)
    except tiles.TilePathError:
        return
    assert ref.path == "tile/" + path.lstrip("/") or ref.path.endswith(path)
    assert path.isascii()


@settings(max_examples=fuzz_examples(30, SERVER), deadline=None)
@given(raw=st.binary(max_size=300) | st.builds(
    lambda method, target, headers: method + b" " + target + b" HTTP/1.1\r\n" + headers,
    st.sampled_from([b"GET", b"POST", b"PUT", b"\xff"]), st.binary(max_size=60),
    st.binary(max_size=200)))
def test_fuzzed_raw_requests_leave_the_server_healthy(one_entry_server: str,
                                                      raw: bytes) -> None:
    port = int(one_entry_server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            answer = sock.recv(4096)
            if answer:
                assert not answer.startswith(b"HTTP/1.1 500"), (raw, answer)
    assert requests.get(one_entry_server + "/checkpoint", timeout=10).status_code == 200


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["apiVersion", "kind", "spec", "signature", "content", "publicKey",
                         "data", "hash", "algorithm", "value", "proposedContent",
                         "envelope", "verifiers", "payload", "payloadType", "signatures",
                         "sig"]) | st.text(max_size=5), children, max_size=5),
    max_leaves=20)


@settings(max_examples=fuzz_examples(200, SERVER), deadline=None)
@given(value=_json_values, kind=st.sampled_from(["hashedrekord", "dsse", "intoto"]),
       version=st.sampled_from(["0.0.1", "0.0.2"]))
def test_fuzzed_entry_parsers_raise_only_typed_errors(value: Any, kind: str,
                                                      version: str) -> None:
    proposed = {"apiVersion": version, "kind": kind, "spec": value}
    for candidate in (value, proposed):
        with pytest.raises(EntryRejectedError):
            entries.canonicalize(candidate)  # type: ignore[arg-type]
        body = json.dumps(candidate).encode()
        try:
            entries.parse_body(body)
        except EntryRejectedError:
            pass


def test_lone_surrogates_in_proposed_entries_are_400(one_entry_server: str) -> None:
    """A JSON "\\ud800" escape decodes to a lone surrogate; hashing the DSSE PAE over it
    raised UnicodeEncodeError (a 500 over HTTP)."""
    proposed = dsse_entry(new_key(), b"{}")
    envelope = json.loads(proposed["spec"]["proposedContent"]["envelope"])
    envelope["payloadType"] = "x\ud800"
    proposed["spec"]["proposedContent"]["envelope"] = json.dumps(envelope)
    with pytest.raises(EntryRejectedError, match="surrogate"):
        entries.canonicalize(proposed)
    resp = post(one_entry_server, proposed)  # json.dumps escapes it as \\ud800
    assert resp.status_code == 400, resp.text
    resp = requests.post(f"{one_entry_server}{API}/entries/retrieve",
                         data=json.dumps({"entries": [proposed]}), timeout=10)
    assert resp.status_code == 400, resp.text


def test_client_text_in_error_messages_is_always_sendable(one_entry_server: str) -> None:
    """An unknown envelope field named "\\ud800" went raw into the 400's message, whose
    UTF-8 encoding then failed: a 500 with a traceback."""
    proposed = dsse_entry(new_key(), b"{}")
    envelope = json.loads(proposed["spec"]["proposedContent"]["envelope"])
    envelope["\ud800"] = 1
    envelope.update({f"extra{i}": i for i in range(50)})
    proposed["spec"]["proposedContent"]["envelope"] = json.dumps(envelope)
    resp = post(one_entry_server, proposed)
    assert resp.status_code == 400, resp.text
    message = resp.json()["message"]
    assert "unknown field" in message and "more" in message and len(message) < 500


def test_stored_bodies_with_unsafe_integers_are_rejected_not_raised() -> None:
    body = b'{"apiVersion":"0.0.1","kind":"hashedrekord","spec":9007199254740993}'
    with pytest.raises(EntryRejectedError, match="canonical"):
        entries.parse_body(body)


def test_indexes_past_int64_are_not_found_not_500(one_entry_server: str) -> None:
    """JSON indexes SQLite cannot hold are just 'not found', not an OverflowError."""
    resp = requests.post(f"{one_entry_server}{API}/entries/retrieve",
                         json={"logIndexes": [2 ** 70, 0]}, timeout=10)
    assert resp.status_code == 200 and len(resp.json()) == 1
    resp = requests.get(f"{one_entry_server}/tile/0/x999/x999/x999/x999/x999/x999/999",
                        timeout=10)
    assert resp.status_code == 404


def test_dsse_entries_still_append(one_entry_server: str) -> None:
    resp = post(one_entry_server, dsse_entry(new_key(), b'{"x":1}'))
    assert resp.status_code == 201


@pytest.mark.parametrize("options", [["--max-per-client", "0"],
                                     ["--max-per-client", "10", "--max-connections", "5"],
                                     ["--header-timeout", "0"], ["--body-timeout", "nan"],
                                     ["--header-timeout", "1e9"]])
def test_serve_refuses_unusable_connection_limits(tmp_path: Path, options: list[str]) -> None:
    from typer.testing import CliRunner

    from mgattest.cli.app import app

    result = CliRunner().invoke(app, ["log", "serve", "--db", str(tmp_path / "x.db"),
                                      "--key", str(tmp_path / "k"), *options])
    assert result.exit_code == 2, result.output
