"""``mgattest ca``, ``mgattest oidc`` and ``mgattest trust``: the private keyless stack.

- ``ca init`` / ``ca serve``: a Fulcio-compatible CA (v2 API) with an embedded-SCT CT key;
- ``oidc serve`` / ``oidc token``: a local OIDC issuer for tests and demos (NOT for
  production: anyone who can read its directory can mint any identity);
- ``trust private``: a ClientTrustConfig for a private log + CA, usable by mgattest,
  sigstore-python and model_signing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from mgattest.cli._common import check_listen_options, err, guarded, out


ca_app = typer.Typer(help="A private Fulcio-compatible certificate authority.",
                     no_args_is_help=True)
oidc_app = typer.Typer(help="A local OIDC issuer for tests and demos (NOT for production).",
                       no_args_is_help=True)
trust_app = typer.Typer(help="Write trust configuration for private deployments.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``ca``, ``oidc`` and ``trust`` command groups to the root app."""
    app.add_typer(ca_app, name="ca")
    app.add_typer(oidc_app, name="oidc")
    app.add_typer(trust_app, name="trust")


@ca_app.command("init")
@guarded
def ca_init_cmd(
    directory: Path = typer.Option(..., "--dir", help="Directory for the CA material."),
    organization: str = typer.Option("mgattest private CA", "--organization",
                                     help="Organization name in the CA certificates."),
    validity_days: int = typer.Option(3650, "--validity-days",
                                      help="Lifetime of the root and intermediate."),
) -> None:
    """Create a root CA, an intermediate and a CT log key (private keys mode 0600)."""
    from mgattest.ca import init_ca as init
    from mgattest.errors import InputError

    if not 1 <= validity_days <= 36500:
        raise InputError("--validity-days must be 1..36500", what="usage")
    path = init(directory, organization=organization, validity_days=validity_days)
    out(f"created CA in {path} (root.pem, intermediate.pem, ctlog.pub.pem; keys 0600)")


@ca_app.command("serve")
@guarded
def ca_serve_cmd(
    directory: Path = typer.Option(..., "--dir", help="CA directory from `ca init`."),
    oidc_issuer: List[str] = typer.Option(
        ..., "--oidc-issuer", metavar="URL[=TYPE]",
        help="Trusted OIDC issuer (repeatable), matched exactly. TYPE decides how its "
             "tokens become identities: email, github-workflow, uri, spiffe, username "
             "(default: github-workflow for GitHub Actions' issuer, else email)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(5555, "--port", help="TCP port (0 picks a free one)."),
    allow_remote: bool = typer.Option(False, "--allow-remote",
                                      help="Listen on a non-loopback address."),
) -> None:
    """Serve Fulcio's v2 API (signingCert, trustBundle, configuration)."""
    from mgattest.ca import CertificateAuthority
    from mgattest.ca import create_ca_app as create_app
    from mgattest.ca import bind, serve_forever, url_of
    from mgattest.ca import TokenVerifier

    check_listen_options(host, port, allow_remote, any_port=True)
    ca = CertificateAuthority.load(directory)
    verifier = TokenVerifier(list(oidc_issuer))
    sock = bind(host, port)
    issuers = ", ".join(f"{c.url} ({c.type})" for c in verifier.configs.values())
    err(f"CA {directory} serving Fulcio v2 API on {url_of(sock)} (issuers: {issuers})")
    serve_forever(create_app(ca, verifier), sock)


@oidc_app.command("serve")
@guarded
def oidc_serve_cmd(
    directory: Path = typer.Option(..., "--dir", help="Directory for the issuer key."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(0, "--port", help="TCP port (0 picks a free one)."),
) -> None:
    """Serve a local OIDC issuer (discovery + JWKS). NOT for production."""
    from mgattest.ca import LocalOIDCIssuer, create_issuer_app as create_app
    from mgattest.ca import bind, serve_forever, url_of

    check_listen_options(host, port, False, any_port=True)
    sock = bind(host, port)
    issuer = LocalOIDCIssuer.open(directory, url_of(sock))
    err("WARNING: local test OIDC issuer, NOT for production")
    out(issuer.issuer_url)
    serve_forever(create_app(issuer), sock)


@oidc_app.command("token")
@guarded
def oidc_token_cmd(
    subject: str = typer.Option(..., "--subject", help="The token's sub (an email gets "
                                "email + email_verified)."),
    directory: Path = typer.Option(..., "--dir", help="The issuer's directory."),
    email: Optional[str] = typer.Option(None, "--email", help="Email claim (verified)."),
    audience: str = typer.Option("sigstore", "--audience", help="aud claim."),
    ttl: int = typer.Option(300, "--ttl", help="Lifetime in seconds."),
    claim: List[str] = typer.Option([], "--claim", help="Extra claim KEY=VALUE (repeatable)."),
    issuer_url: Optional[str] = typer.Option(None, "--issuer",
                                             help="Issuer URL (default: the one serving)."),
) -> None:
    """Print an identity token signed by the local issuer. NOT for production."""
    from mgattest.ca import LocalOIDCIssuer
    from mgattest.errors import InputError

    extra = {}
    for item in claim:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--claim {item!r} is not KEY=VALUE", what="usage")
        extra[key] = value
    issuer = LocalOIDCIssuer.open(directory, issuer_url)
    out(issuer.mint(subject, email=email, audience=audience, ttl=ttl, claims=extra))


@trust_app.command("private")
@guarded
def trust_private_cmd(
    log: str = typer.Option(..., "--log", help="URL of the mgattest log (Rekor v1 API)."),
    ca: str = typer.Option(..., "--ca", help="URL of `mgattest ca serve`."),
    oidc: Optional[str] = typer.Option(None, "--oidc", help="OIDC issuer URL for signers."),
    out_path: Path = typer.Option(..., "--out", help="ClientTrustConfig JSON to write."),
    operator: Optional[str] = typer.Option(None, "--operator",
                                           help="Operator name in the signing config."),
) -> None:
    """Write a ClientTrustConfig (trusted root + signing config) for a private log and CA."""
    from mgattest.ca import build_client_trust_config

    config = build_client_trust_config(log, ca, oidc, operator=operator)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out_path)
    out(f"wrote {out_path}")
