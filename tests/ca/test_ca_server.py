"""The private CA's Fulcio v2 API and the local OIDC issuer, over real HTTP on 127.0.0.1.

sigstore-python's own Fulcio client is used as an independent client where it fits.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mgattest.attest._certs import IdentityPolicy, verify_signing_certificate
from mgattest.attest._results import VerifiedTime
from mgattest.ca import _authority as authority
from mgattest.ca._authority import CertificateAuthority
from mgattest.ca.errors import CAError, TokenError
from mgattest.ca._oidc_issuer import LocalOIDCIssuer
from mgattest.ca._oidc_issuer import create_app as oidc_app
from mgattest.ca._server import create_app as ca_app
from mgattest.ca._serving import ServerThread
from mgattest.ca._tokens import TokenVerifier, check_issuer_url

pytestmark = pytest.mark.network
TIMEOUT = 10


def _start_issuer(directory) -> tuple[LocalOIDCIssuer, ServerThread]:
    made = []

    def factory(url: str):
        made.append(LocalOIDCIssuer.open(directory, url))
        return oidc_app(made[0])

    server = ServerThread(app_factory=factory).start()
    return made[0], server


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("castack")
    issuer, oidc_server = _start_issuer(base / "oidc")
    authority.init(base / "ca")
    ca = CertificateAuthority.load(base / "ca")
    ca_server = ServerThread(ca_app(ca, TokenVerifier([issuer.issuer_url]))).start()
    try:
        yield {"issuer": issuer, "ca": ca, "url": ca_server.url, "base": base}
    finally:
        ca_server.stop()
        oidc_server.stop()


def _trusted_root(ca: CertificateAuthority) -> dict:
    import hashlib

    der = ca.ct_signer.public_key_der
    return {"certificateAuthorities": [{"certChain": {"certificates": [
        {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
        for c in ca.chain]}, "validFor": {"start": "2020-01-01T00:00:00Z"}}],
        "ctlogs": [{"publicKey": {"rawBytes": base64.b64encode(der).decode(),
                                  "validFor": {"start": "2020-01-01T00:00:00Z"}},
                    "logId": {"keyId": base64.b64encode(hashlib.sha256(der).digest()).decode()}}]}


def _pop_request(token: str, key, challenge: str, *, sign: bytes | None = None) -> dict:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    sig = key.sign(sign if sign is not None else challenge.encode(), ec.ECDSA(hashes.SHA256()))
    return {"credentials": {"oidcIdentityToken": token},
            "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": pem},
                                 "proofOfPossession": base64.b64encode(sig).decode()}}


def _post(stack, body, headers=None) -> requests.Response:
    return requests.post(stack["url"] + "/api/v2/signingCert", json=body, headers=headers,
                         timeout=TIMEOUT)


def test_discovery_and_jwks(stack):
    issuer = stack["issuer"]
    doc = requests.get(issuer.issuer_url + "/.well-known/openid-configuration",
                       timeout=TIMEOUT).json()
    assert doc["issuer"] == issuer.issuer_url
    keys = requests.get(doc["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    assert keys[0]["kid"] == issuer.kid and keys[0]["alg"] == "ES256"


def test_configuration_trust_bundle_and_ct_key(stack):
    ca = stack["ca"]
    conf = requests.get(stack["url"] + "/api/v2/configuration", timeout=TIMEOUT).json()
    assert conf["issuers"][0]["issuerUrl"] == stack["issuer"].issuer_url
    assert conf["issuers"][0]["audience"] == "sigstore"
    bundle = requests.get(stack["url"] + "/api/v2/trustBundle", timeout=TIMEOUT).json()
    chain = [x509.load_pem_x509_certificate(p.encode())
             for p in bundle["chains"][0]["certificates"]]
    assert chain == ca.chain
    ct = requests.get(stack["url"] + "/api/v2/mgattest/ctlog", timeout=TIMEOUT).json()
    assert base64.b64decode(ct["keyId"]) == ca.ct_log_id()


def test_csr_flow_with_sigstore_python_client(stack):
    """sigstore-python's Fulcio client (CSR + Bearer token) gets a verifiable certificate."""
    from sigstore._internal.fulcio.client import FulcioClient
    from sigstore.oidc import IdentityToken

    token = stack["issuer"].mint("alice@example.com")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.EMAIL_ADDRESS,
                                                       "alice@example.com")]))
           .sign(key, hashes.SHA256()))
    resp = FulcioClient(stack["url"]).signing_cert.post(csr, IdentityToken(token))
    assert resp.cert.public_key().public_numbers() == key.public_key().public_numbers()
    signer = verify_signing_certificate(resp.cert.public_bytes(serialization.Encoding.DER),
                                        [], _trusted_root(stack["ca"]), [VerifiedTime(int(time.time()), "set", "test")])
    IdentityPolicy(identity="alice@example.com", issuer=stack["issuer"].issuer_url).check(signer)


def test_public_key_with_proof_of_possession(stack):
    token = stack["issuer"].mint("bob@example.com")
    key = ec.generate_private_key(ec.SECP256R1())
    r = _post(stack, _pop_request(token, key, "bob@example.com"))
    assert r.status_code == 201, r.text
    pems = r.json()["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    assert len(pems) == 3
    leaf = x509.load_pem_x509_certificate(pems[0].encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["bob@example.com"]
    # Every issuance is recorded for audit.
    records = [json.loads(line) for line in
               (stack["base"] / "ca" / "issued.jsonl").read_text().splitlines()]
    mine = [r for r in records if r["serial"] == format(leaf.serial_number, "x")]
    assert len(mine) == 1 and mine[0]["san"] == "bob@example.com"
    assert x509.load_pem_x509_certificate(mine[0]["certificate"].encode()) == leaf


def test_wrong_proof_of_possession_refused(stack):
    token = stack["issuer"].mint("bob@example.com")
    key = ec.generate_private_key(ec.SECP256R1())
    r = _post(stack, _pop_request(token, key, "bob@example.com", sign=b"mallory@example.com"))
    assert r.status_code == 400 and "proof of possession" in r.json()["message"]


def test_github_claims_produce_workflow_certificate(stack):
    """With the issuer configured as github-workflow (here the local issuer stands in
    for token.actions.githubusercontent.com), GitHub claims become the workflow SAN."""
    claims = {"job_workflow_ref": "octo/m/.github/workflows/t.yml@refs/heads/main",
              "repository": "octo/m", "repository_owner": "octo", "repository_id": "1",
              "repository_owner_id": "2", "workflow_ref": "octo/m/.github/workflows/t.yml@refs/heads/main",
              "workflow_sha": "f" * 40, "job_workflow_sha": "f" * 40, "workflow": "t",
              "event_name": "push", "ref": "refs/heads/main", "sha": "e" * 40, "run_id": "5",
              "run_attempt": "1", "runner_environment": "github-hosted"}
    sub = "repo:octo/m:ref:refs/heads/main"
    token = stack["issuer"].mint(sub, claims=claims)
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = TokenVerifier([f"{stack['issuer'].issuer_url}=github-workflow"])
    with ServerThread(ca_app(stack["ca"], verifier)) as github_ca:
        r = _post({"url": github_ca.url}, _pop_request(token, key, sub))
    assert r.status_code == 201, r.text
    leaf = x509.load_pem_x509_certificate(
        r.json()["signedCertificateEmbeddedSct"]["chain"]["certificates"][0].encode())
    signer = verify_signing_certificate(leaf.public_bytes(serialization.Encoding.DER), [],
                                        _trusted_root(stack["ca"]), [VerifiedTime(int(time.time()), "set", "test")])
    assert signer.identity == "https://github.com/octo/m/.github/workflows/t.yml@refs/heads/main"
    assert signer.extensions["source_repository_digest"] == "e" * 40
    assert signer.extensions["build_trigger"] == "push"


def _forge(issuer_url: str, **overrides) -> str:
    """A token signed by a key the CA does not trust, claiming the trusted issuer."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"iss": issuer_url, "sub": "eve@example.com", "email": "eve@example.com",
              "email_verified": True, "aud": "sigstore", "iat": now, "exp": now + 300}
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "forged"})


@pytest.mark.parametrize("make_token,reason", [
    (lambda i: i.mint("eve@example.com", audience="not-sigstore"), "audience"),
    (lambda i: i.mint("eve@example.com", now=int(time.time()) - 4000, ttl=60), "expired"),
    (lambda i: i.mint("eve@example.com", now=int(time.time()) + 3600), "not valid yet|future"),
    (lambda i: i.mint("eve@example.com", claims={"email_verified": False}), "not verified"),
    (lambda i: i.mint("eve@example.com", claims={"iss": "http://127.0.0.1:1"}), "not trusted"),
    (lambda i: _forge(i.issuer_url), "key id|signature"),
    (lambda i: jwt.encode({"iss": i.issuer_url, "sub": "e", "aud": "sigstore",
                           "iat": int(time.time()), "exp": int(time.time()) + 60},
                          key=None, algorithm="none"), "algorithm"),
    (lambda i: jwt.encode({"iss": i.issuer_url, "sub": "e", "aud": "sigstore",
                           "iat": int(time.time()), "exp": int(time.time()) + 60},
                          key="secret-secret-secret-secret-secret", algorithm="HS256"), "algorithm"),
    (lambda i: "not.a.jwt", "not a JWT"),
])
def test_bad_tokens_refused(stack, make_token, reason):
    import re

    token = make_token(stack["issuer"])
    key = ec.generate_private_key(ec.SECP256R1())
    r = _post(stack, _pop_request(token, key, "eve@example.com"))
    assert r.status_code == 401, r.text
    assert re.search(reason, r.json()["message"]), r.json()["message"]


def test_forged_token_with_real_kid_refused(stack):
    issuer = stack["issuer"]
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    token = jwt.encode({"iss": issuer.issuer_url, "sub": "x", "aud": "sigstore", "iat": now,
                        "exp": now + 60}, key, algorithm="ES256", headers={"kid": issuer.kid})
    r = _post(stack, _pop_request(token, key, "x"))
    assert r.status_code == 401 and "signature" in r.json()["message"]


def test_malformed_requests(stack):
    token = stack["issuer"].mint("a@example.com")
    assert _post(stack, {"publicKeyRequest": {}}).status_code == 401  # no token
    r = _post(stack, {"credentials": {"oidcIdentityToken": token}})
    assert r.status_code == 400 and "exactly one" in r.json()["message"]
    r = _post(stack, {"certificateSigningRequest": "!!notbase64"},
              headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400
    r = _post(stack, {"certificateSigningRequest": base64.b64encode(b"junk").decode()},
              headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400 and "not a CSR" in r.json()["message"]
    r = requests.post(stack["url"] + "/api/v2/signingCert", data=b"{", timeout=TIMEOUT)
    assert r.status_code == 400
    r = requests.post(stack["url"] + "/api/v2/signingCert", data=b"x" * 70000, timeout=TIMEOUT)
    assert r.status_code == 413
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = weak.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    sig = weak.sign(b"a@example.com", padding.PKCS1v15(), hashes.SHA256())
    r = _post(stack, {"credentials": {"oidcIdentityToken": token},
                      "publicKeyRequest": {"publicKey": {"content": pem},
                                           "proofOfPossession": base64.b64encode(sig).decode()}})
    assert r.status_code == 400 and "2048" in r.json()["message"]


def test_token_verifier_rejects_insecure_issuer_urls():
    with pytest.raises(CAError):
        check_issuer_url("http://example.com")
    with pytest.raises(CAError):
        TokenVerifier([])
    assert check_issuer_url("https://issuer.example") == "https://issuer.example"


def test_token_verifier_discovery_mismatch(stack, tmp_path):
    """A discovery document naming another issuer is refused."""
    issuer = stack["issuer"]

    def fetch(url):
        if url.endswith("openid-configuration"):
            return {"issuer": "https://other.example", "jwks_uri": issuer.issuer_url + "/keys"}
        return issuer.jwks()

    v = TokenVerifier([issuer.issuer_url], fetch=fetch)
    with pytest.raises(TokenError, match="names issuer"):
        v.verify(issuer.mint("a@example.com"))


def test_ca_directory_guards(tmp_path):
    authority.init(tmp_path / "ca")
    with pytest.raises(CAError, match="refusing to overwrite"):
        authority.init(tmp_path / "ca")
    key = tmp_path / "ca" / "intermediate.key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    with pytest.raises(CAError, match="chmod 600"):
        CertificateAuthority.load(tmp_path / "ca")
    with pytest.raises(CAError, match="not a CA directory"):
        CertificateAuthority.load(tmp_path / "nothing")


def test_cli_ca_oidc_trust_commands(tmp_path):
    """`mgattest ca init` and `oidc token` through the real CLI (exit codes 0 / 2)."""
    import subprocess
    import sys

    exe = [sys.executable, "-m", "mgattest"]
    r = subprocess.run(exe + ["ca", "init", "--dir", str(tmp_path / "ca")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(exe + ["ca", "init", "--dir", str(tmp_path / "ca")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr
    r = subprocess.run(exe + ["oidc", "token", "--dir", str(tmp_path / "oidc"), "--subject", "a"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no issuer URL" in r.stderr
    r = subprocess.run(exe + ["oidc", "token", "--dir", str(tmp_path / "oidc"), "--subject",
                              "a@example.com", "--issuer", "http://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    claims = jwt.decode(r.stdout.strip(), options={"verify_signature": False})
    assert claims["email"] == "a@example.com" and claims["aud"] == "sigstore"
    r = subprocess.run(exe + ["trust", "private", "--log", "http://127.0.0.1:1", "--ca",
                              "http://127.0.0.1:1", "--out", str(tmp_path / "c.json")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot reach" in r.stderr
    assert not (tmp_path / "c.json").exists()


def test_jwks_cache_and_rate_limited_refresh(stack):
    issuer = stack["issuer"]
    fetched = []
    clock = [time.time()]

    def fetch(url):
        fetched.append(url)
        if url.endswith("openid-configuration"):
            return issuer.discovery()
        return issuer.jwks()

    v = TokenVerifier([issuer.issuer_url], fetch=fetch, clock=lambda: clock[0])
    v.verify(issuer.mint("a@example.com"))
    assert len(fetched) == 2
    for _ in range(5):  # unknown key ids: at most one refetch per 30 s
        with pytest.raises(TokenError, match="key id"):
            v.verify(_forge(issuer.issuer_url))
    assert len(fetched) == 2
    clock[0] += 31
    with pytest.raises(TokenError, match="key id"):
        v.verify(_forge(issuer.issuer_url))
    assert len(fetched) == 4


# ------------------------------------------- issuer types and claim hygiene (issue #9/#16)

GITHUB_CLAIMS = {"job_workflow_ref": "octo/m/.github/workflows/t.yml@refs/heads/main",
                 "repository": "octo/m", "repository_owner": "octo", "repository_id": "1",
                 "repository_owner_id": "2", "workflow_sha": "f" * 40,
                 "workflow_ref": "octo/m/.github/workflows/t.yml@refs/heads/main",
                 "job_workflow_sha": "f" * 40, "workflow": "t", "event_name": "push",
                 "ref": "refs/heads/main", "sha": "e" * 40, "run_id": "5", "run_attempt": "1",
                 "runner_environment": "github-hosted"}
FULCIO_GITHUB_OIDS = {f"1.3.6.1.4.1.57264.1.{n}" for n in (2, 3, 4, 5, 6, *range(9, 23))}


def _leaf(response: requests.Response) -> x509.Certificate:
    pem = response.json()["signedCertificateEmbeddedSct"]["chain"]["certificates"][0]
    return x509.load_pem_x509_certificate(pem.encode())


def test_a_generic_issuer_cannot_mint_github_workflow_identities(stack):
    """The local issuer is trusted as an email issuer (the default): GitHub-shaped claims
    in its tokens neither make a workflow certificate nor carry GitHub extensions."""
    sub = "repo:octo/m:ref:refs/heads/main"
    key = ec.generate_private_key(ec.SECP256R1())
    token = stack["issuer"].mint(sub, claims=GITHUB_CLAIMS)
    r = _post(stack, _pop_request(token, key, sub))
    assert r.status_code == 401 and "'email'" in r.json()["message"], r.text
    token = stack["issuer"].mint("eve@example.com", claims=GITHUB_CLAIMS)
    r = _post(stack, _pop_request(token, key, "eve@example.com"))
    assert r.status_code == 201, r.text
    leaf = _leaf(r)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["eve@example.com"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == []
    assert not {e.oid.dotted_string for e in leaf.extensions} & FULCIO_GITHUB_OIDS


def test_issuer_types_are_configuration(stack):
    url = stack["issuer"].issuer_url
    assert TokenVerifier([url]).configs[url].type == "email"
    github = "https://token.actions.githubusercontent.com"
    assert TokenVerifier([github]).configs[github].type == "github-workflow"
    assert TokenVerifier([f"{url}=uri"]).configs[url].type == "uri"
    with pytest.raises(CAError, match="unknown issuer type"):
        TokenVerifier([f"{url}=gitlab"])
    config = requests.get(stack["url"] + "/api/v2/configuration", timeout=TIMEOUT).json()
    assert config["issuers"] == [{"issuerUrl": url, "audience": "sigstore",
                                  "challengeClaim": "email", "issuerType": "email"}]


def test_trailing_slash_issuer_is_another_issuer(stack):
    issuer = stack["issuer"]
    token = issuer.mint("eve@example.com", claims={"iss": issuer.issuer_url + "/"})
    key = ec.generate_private_key(ec.SECP256R1())
    r = _post(stack, _pop_request(token, key, "eve@example.com"))
    assert r.status_code == 401 and "not trusted" in r.json()["message"], r.text


@pytest.mark.parametrize("issuer_type,subject,claims,reason", [
    ("email", "ü@example.com", {}, "non-ASCII"),
    ("email", "eve@exämple.com", {}, "non-ASCII"),
    ("uri", "https://127.0.0.1/ü", {}, "non-ASCII"),
    ("uri", "https://github.com/octo/m", {}, "issuer's domain"),
    ("spiffe", "spiffe://elsewhere.example/ns/x", {}, "issuer's domain"),
    ("username", "bot", {"sub": "bot\u202egnp.exe"}, "invisible"),
    ("username", "bot!other", {}, "'!'"),
    ("email", "eve@example.com", {"email": "eve\x85@example.com"}, "invisible"),
    ("email", "e\u0301ve@example.com", {}, "NFC"),
    ("github-workflow", "repo:octo/m", {**GITHUB_CLAIMS, "workflow": "t\u202egpj"},
     "invisible"),
    ("github-workflow", "repo:octo/m", {**GITHUB_CLAIMS, "ref": "refs/heads/\x9bmain"},
     "invisible"),
])
def test_claims_that_cannot_be_represented_are_refused_never_500(stack, issuer_type, subject,
                                                                 claims, reason):
    verifier = TokenVerifier([f"{stack['issuer'].issuer_url}={issuer_type}"])
    token = stack["issuer"].mint(subject, claims=claims)
    key = ec.generate_private_key(ec.SECP256R1())
    challenge = claims.get("email", claims.get("sub", subject))
    with ServerThread(ca_app(stack["ca"], verifier)) as server:
        r = _post({"url": server.url}, _pop_request(token, key, challenge))
    assert r.status_code == 401, r.text
    assert reason in r.json()["message"]


@pytest.mark.parametrize("issuer_type,subject", [("uri", "https://127.0.0.1/svc/build"),
                                                  ("spiffe", "spiffe://127.0.0.1/ns/ci"),
                                                  ("username", "build-bot")])
def test_configured_issuer_types_issue_their_identity(stack, issuer_type, subject):
    verifier = TokenVerifier([f"{stack['issuer'].issuer_url}={issuer_type}"])
    token = stack["issuer"].mint(subject)
    key = ec.generate_private_key(ec.SECP256R1())
    with ServerThread(ca_app(stack["ca"], verifier)) as server:
        r = _post({"url": server.url}, _pop_request(token, key, subject))
    assert r.status_code == 201, r.text
    signer = verify_signing_certificate(_leaf(r).public_bytes(serialization.Encoding.DER), [],
                                        _trusted_root(stack["ca"]), [VerifiedTime(int(time.time()), "set", "test")])
    expected = f"{subject}!127.0.0.1" if issuer_type == "username" else subject
    assert signer.identity == expected and signer.issuer == stack["issuer"].issuer_url


@pytest.mark.parametrize("subject,claims", [("ü@example.com", {}),
                                            ("eve@example.com", {"sub": "eve\x85\u202e"})])
def test_default_email_issuer_refuses_unrepresentable_claims(stack, subject, claims):
    """Through the stack's default configuration: a non-ASCII email used to answer 500,
    a C1 control or U+202E in a claim used to be accepted."""
    token = stack["issuer"].mint(subject, claims=claims)
    key = ec.generate_private_key(ec.SECP256R1())
    r = _post(stack, _pop_request(token, key, subject))
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("exponent_bits, modulus_bits", [(3071, 4096), (17, 2048), (17, 8192)])
def test_crafted_rsa_keys_are_refused_before_any_signature_check(stack, exponent_bits,
                                                                 modulus_bits):
    """A client holding an accepted token must not make the CA run an RSA check with a
    huge public exponent or modulus: the one RSA rule (mgattest._keys) runs first."""
    import time as _time

    from cryptography.hazmat.primitives.asymmetric import rsa

    n = rsa.generate_private_key(65537, min(modulus_bits, 4096)).public_key().public_numbers().n
    if modulus_bits > 4096:
        n |= 1 << (modulus_bits - 1)
    e = (1 << (exponent_bits - 1)) | 1 if exponent_bits > 17 else 65539
    pem = rsa.RSAPublicNumbers(e, n).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    token = stack["issuer"].mint("mallory@example.com")
    started = _time.monotonic()
    r = _post(stack, {"credentials": {"oidcIdentityToken": token},
                      "publicKeyRequest": {"publicKey": {"content": pem},
                                           "proofOfPossession": base64.b64encode(
                                               b"\x01" * (modulus_bits // 8)).decode()}})
    assert r.status_code == 400, r.text
    assert "refused" in r.json()["message"]
    assert _time.monotonic() - started < 2


def test_ca_server_closes_half_sent_requests_and_keeps_serving(stack):
    """The CA and the OIDC issuer run behind the log's connection front: a client that
    never finishes its headers is answered 408 at the deadline, and one address cannot
    hold more connections than its cap while others are served."""
    import socket as _socket
    import time as _time

    from mgattest._httpguard import ConnectionLimits

    limits = ConnectionLimits(header_timeout=0.5, max_per_client=4)
    with ServerThread(ca_app(stack["ca"], TokenVerifier([stack["issuer"].issuer_url])),
                      limits=limits) as server:
        port = int(server.url.rsplit(":", 1)[1])
        slow = _socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"POST /api/v2/signingCert HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        started = _time.monotonic()
        assert slow.recv(64).startswith(b"HTTP/1.1 408")
        assert _time.monotonic() - started < 3
        slow.close()
        held = [_socket.create_connection(("127.0.0.1", port), timeout=5,
                                          source_address=("127.0.0.2", 0)) for _ in range(4)]
        try:
            extra = _socket.create_connection(("127.0.0.1", port), timeout=5,
                                              source_address=("127.0.0.2", 0))
            assert extra.recv(64).startswith(b"HTTP/1.1 503")
            extra.close()
            conf = requests.get(server.url + "/api/v2/configuration", timeout=TIMEOUT)
            assert conf.status_code == 200
        finally:
            for s in held:
                s.close()
