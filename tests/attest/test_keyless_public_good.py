"""Public-good keyless signing, tested up to the network boundary (no internet here).

Token parsing and selection, the choice of signing config (production, staging, a
file), and the requests sigstore-python builds — sent to a LOCAL server speaking
Fulcio's API (our CA) through the same code path the public instance would get.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mgattest.attest.errors import OIDCTokenError
from mgattest.attest._keyless import (KeylessSigningError, load_sigstore_trust_config,
                                     sign_keyless, signing_services)
from mgattest.attest._oidc import TOKEN_ENV_VAR, parse_identity_token, select_identity_token
from mgattest.errors import InputError
from tests.helpers.paths import CONFORMANCE_DIR

KEY = ec.generate_private_key(ec.SECP256R1())


def _token(**claims) -> str:
    now = int(time.time())
    body = {"iss": "https://oauth2.sigstore.dev/auth", "sub": "123", "aud": "sigstore",
            "iat": now, "exp": now + 300, "email": "alice@example.com", "email_verified": True}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, KEY, algorithm="ES256")


# --------------------------------------------------------------------------- tokens

def test_parse_email_token():
    info = parse_identity_token(_token())
    assert info.identity == "alice@example.com"
    assert info.issuer == "https://oauth2.sigstore.dev/auth"
    assert info.seconds_left() > 200


def test_parse_github_token_uses_sub():
    info = parse_identity_token(_token(iss="https://token.actions.githubusercontent.com",
                                       sub="repo:octo/m:ref:refs/heads/main", email=None,
                                       email_verified=None, aud=["sigstore", "other"]))
    assert info.identity == "repo:octo/m:ref:refs/heads/main"
    assert info.audience == ("sigstore", "other")
    info = parse_identity_token(_token(iss="https://token.actions.githubusercontent.com",
                                       sub="repo:octo/m:ref:refs/heads/main", email=None,
                                       job_workflow_ref="octo/m/.github/workflows/t.yml@refs/heads/main"))
    # What the certificate SAN will say (Fulcio's GitHub principal).
    assert info.identity == "https://github.com/octo/m/.github/workflows/t.yml@refs/heads/main"


@pytest.mark.parametrize("token,reason", [
    (_token(aud="not-sigstore"), "audience"),
    (_token(exp=int(time.time()) - 100), "expired"),
    (_token(nbf=int(time.time()) + 3600), "not valid yet"),
    (_token(sub=None), "'sub'"),
    (_token(iat=None), "'iat'"),
    (_token(exp="tomorrow"), "not numbers"),
    ("a.b", "not a JWT"),
    ("", "empty"),
    ("x" * 20000, "larger"),
    ("@@@.@@@.sig", "base64url"),
    (jwt.encode({"iss": "i", "sub": "s", "aud": "sigstore", "iat": 1, "exp": 2 ** 40},
                key=None, algorithm="none"), "unsigned"),
])
def test_bad_tokens(token, reason):
    with pytest.raises(OIDCTokenError, match=reason):
        parse_identity_token(token)


def test_token_error_is_input_error():
    assert issubclass(OIDCTokenError, InputError)


def test_selection_order(tmp_path):
    explicit, from_env = _token(sub="explicit"), _token(sub="env")
    env = {TOKEN_ENV_VAR: from_env}
    assert select_identity_token(explicit, env=env, ambient=False).subject == "explicit"
    assert select_identity_token(None, env=env, ambient=False).subject == "env"
    path = tmp_path / "token.txt"
    path.write_text(explicit + "\n")
    assert select_identity_token(f"@{path}", env={}, ambient=False).subject == "explicit"
    with pytest.raises(OIDCTokenError, match="cannot read"):
        select_identity_token(f"@{tmp_path / 'missing'}", env={}, ambient=False)
    with pytest.raises(OIDCTokenError, match="no identity token"):
        select_identity_token(None, env={}, ambient=False)


def test_ambient_detection_is_consulted(monkeypatch):
    """Ambient CI credentials come from the `id` package (GitHub Actions variables here)."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    with pytest.raises(OIDCTokenError, match="no identity token"):
        select_identity_token(None, env={}, ambient=True)
    # In a GitHub Actions job without id-token permission `id` raises: we report it.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", raising=False)
    with pytest.raises(OIDCTokenError, match="ambient"):
        select_identity_token(None, env={}, ambient=True)


# --------------------------------------------------------------------------- configs

def test_production_and_staging_configs_are_embedded():
    prod = signing_services(load_sigstore_trust_config())
    assert prod["ca"] == "https://fulcio.sigstore.dev"
    assert prod["tlog"].startswith("https://") and "sigstore.dev" in prod["tlog"]
    assert prod["oidc"] == "https://oauth2.sigstore.dev/auth"
    stage = signing_services(load_sigstore_trust_config(staging=True))
    assert stage["ca"] == "https://fulcio.sigstage.dev"
    assert stage["oidc"] == "https://oauth2.sigstage.dev/auth"


def test_trust_config_file_choice(tmp_path):
    with pytest.raises(KeylessSigningError, match="not both"):
        load_sigstore_trust_config(tmp_path / "x.json", staging=True)
    with pytest.raises(KeylessSigningError, match="cannot read"):
        load_sigstore_trust_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"mediaType": "nope"}')
    with pytest.raises(KeylessSigningError, match="unusable trust config"):
        load_sigstore_trust_config(bad)


def test_payload_type_and_statement_checked_before_network():
    with pytest.raises(KeylessSigningError, match="in-toto"):
        sign_keyless(b"{}", payload_type="text/plain", identity_token=_token())
    with pytest.raises(KeylessSigningError, match="not an in-toto Statement"):
        sign_keyless(b'{"hello": 1}', identity_token=_token())


# --------------------------------------------------------------------------- requests

@pytest.mark.network
def test_request_construction_against_local_fulcio(tmp_path):
    """sign_keyless drives sigstore-python's Fulcio client against a local server with the
    public-good request shape: Bearer token + base64 PEM CSR, signed by the ephemeral key;
    we capture the request the server received and check it."""
    from mgattest.ca import _authority as authority
    from mgattest.ca._authority import CertificateAuthority
    from mgattest.ca._oidc_issuer import LocalOIDCIssuer, create_app as oidc_app
    from mgattest.ca._server import create_app, issue_for_request
    from mgattest.ca._serving import ServerThread
    from mgattest.ca._tokens import TokenVerifier
    from mgattest.tlog._log import TransparencyLog
    from mgattest.tlog._server import create_app as log_app
    from mgattest.ca._trustconfig import build_client_trust_config
    import mgattest.ca._server as server_module

    seen = []
    real = issue_for_request

    def recording(ca, verifier, body, authorization):
        seen.append((body, authorization))
        return real(ca, verifier, body, authorization)

    authority.init(tmp_path / "ca")
    ca = CertificateAuthority.load(tmp_path / "ca")
    made: dict = {}

    def issuer_app(url):
        made["issuer"] = LocalOIDCIssuer.open(tmp_path / "oidc", url)
        return oidc_app(made["issuer"])

    def log_factory(url):
        made["log"] = TransparencyLog.init(tmp_path / "l.db", tmp_path / "l.key", origin=url[7:])
        return log_app(made["log"])

    server_module.issue_for_request = recording
    try:
        with ServerThread(app_factory=issuer_app) as oidc_srv, \
             ServerThread(create_app(ca, TokenVerifier([oidc_srv.url]))) as ca_srv, \
             ServerThread(app_factory=log_factory) as log_srv:
            ctc = tmp_path / "ctc.json"
            ctc.write_text(json.dumps(build_client_trust_config(log_srv.url, ca_srv.url,
                                                                oidc_srv.url)))
            token = made["issuer"].mint("alice@example.com")
            statement = json.dumps({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "m.bin", "digest": {"sha256": "ab" * 32}}],
                "predicateType": "https://example.com/p", "predicate": {"n": 3}},
                sort_keys=True, separators=(",", ":")).encode()
            bundle = sign_keyless(statement, identity_token=token, trust_config=ctc)
    finally:
        server_module.issue_for_request = real
        if "log" in made:
            made["log"].close()
    assert len(seen) == 1
    body, authorization = seen[0]
    assert authorization == f"Bearer {token}"
    from cryptography import x509

    csr = x509.load_pem_x509_csr(base64.b64decode(body["certificateSigningRequest"]))
    assert csr.is_signature_valid
    # The bundle carries OUR payload bytes unchanged (integers stay integers).
    assert base64.b64decode(bundle["dsseEnvelope"]["payload"]) == statement
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    leaf = x509.load_der_x509_certificate(
        base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"]))
    assert leaf.public_key().public_numbers() == csr.public_key().public_numbers()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_claim_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                          st.lists(st.text(max_size=10), max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_parse_never_crashes_on_text(text):
    try:
        parse_identity_token(text)
    except OIDCTokenError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "email",
                                        "email_verified"]), _claim_values))
def test_parse_never_crashes_on_claims(claims):
    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"
    try:
        info = parse_identity_token(token)
    except OIDCTokenError:
        return
    assert "sigstore" in info.audience and info.expires_at > time.time() - 10


def test_public_good_trust_config_offline_is_embedded_root():
    from mgattest.attest._keyless import public_good_trust_config
    from mgattest.attest._trustroot import parse_client_trust_config

    doc = public_good_trust_config()
    embedded = json.loads((CONFORMANCE_DIR / "trusted_roots/sigstore-python-4.5.1/production/"
                           "trusted_root.json").read_text())
    assert [t["logId"] for t in doc["trustedRoot"]["tlogs"]] == \
        [t["logId"] for t in embedded["tlogs"]]
    parse_client_trust_config(doc)  # mgattest reads what it returns
    staging = public_good_trust_config(staging=True)
    assert staging["trustedRoot"]["tlogs"] != doc["trustedRoot"]["tlogs"]
