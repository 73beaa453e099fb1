"""``mgattest sign-blob`` and ``verify-blob``: one file signed as itself.

Sigstore message-signature bundles (``sigstore sign`` / ``cosign sign-blob --bundle``)
go through the sign pipeline's signers and the one verify pipeline; raw detached
signatures (``openssl dgst -sha256 -sign``) through ``attest``'s blob functions. A raw
signature is never logged, and the output says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from mgattest._text import show
from mgattest.cli._common import fail, guarded, out
from mgattest.cli._sign_cmds import (_FORCE, _JSON, _KEY, _KEYLESS, _LOG, _LOG_DB, _LOG_KEY,
                                     _NO_LOG, _PW_ENV, _PW_PROMPT, _REFRESH, _STAGING,
                                     _TOKEN, _TRUST_CONFIG, _KEY_COMMAND,
                                     _KEY_COMMAND_PUB, _SignerArgs)

if TYPE_CHECKING:
    from mgattest.attest import (BlobSignResult, PendingBundleFile, RawSignature,
                                 RawSignatureCheck)

NOT_LOGGED = ("not logged: a raw signature is recorded in no transparency log, so no log "
              "inclusion and no signing time are established")


def register(app: typer.Typer) -> None:
    """Add ``sign-blob`` and ``verify-blob`` to the app."""
    app.command("sign-blob")(sign_blob_cmd)
    app.command("verify-blob")(verify_blob_cmd)


def _require_file(path: Path) -> None:
    """A blob is one regular file (a directory is a model: ``sign``/``verify``)."""
    from mgattest.errors import InputError

    if path.is_dir():
        raise InputError(f"{path} is a directory: sign-blob/verify-blob take one file "
                         "(use sign/verify for a model directory)", what="file",
                         where=str(path))
    if not path.exists():
        raise InputError(f"file {path} does not exist", what="file", where=str(path))


# --------------------------------------------------------------------------- sign-blob

@guarded
def sign_blob_cmd(
    file: Path = typer.Argument(..., help="The file to sign."),
    bundle: Optional[Path] = typer.Option(
        None, "--bundle", help="Bundle to write (default: <file>.sigstore.json)."),
    key: Optional[Path] = _KEY,
    key_command: Optional[str] = _KEY_COMMAND,
    key_command_public_key: Optional[Path] = _KEY_COMMAND_PUB,
    keyless: bool = _KEYLESS,
    identity_token: Optional[str] = _TOKEN,
    trust_config: Optional[Path] = _TRUST_CONFIG,
    staging: bool = _STAGING,
    refresh_trust: bool = _REFRESH,
    password_env: Optional[str] = _PW_ENV,
    password_prompt: bool = _PW_PROMPT,
    raw: bool = typer.Option(
        False, "--raw", help="Write a raw detached signature (what `openssl dgst -sha256 "
                             "-verify` checks) instead of a bundle; never logged."),
    output: Optional[Path] = typer.Option(
        None, "--output", help="Raw signature file to write (default: <file>.sig)."),
    log: Optional[str] = _LOG,
    log_db: Optional[Path] = _LOG_DB,
    log_key: Optional[Path] = _LOG_KEY,
    no_log: bool = _NO_LOG,
    force: bool = _FORCE,
    as_json: bool = _JSON,
) -> None:
    """Sign one file: a Sigstore message-signature bundle (logged), or --raw."""
    from mgattest.attest import PendingBundleFile, default_bundle_path
    from mgattest.errors import InputError

    _require_file(file)
    who = _SignerArgs(key=key, keyless=keyless, identity_token=identity_token,
                      trust_config=trust_config, staging=staging, refresh_trust=refresh_trust,
                      password_env=password_env, password_prompt=password_prompt, log=log,
                      log_db=log_db, log_key=log_key, no_log=no_log,
                      key_command=key_command, key_command_public_key=key_command_public_key)
    if raw:
        if keyless or (key is None and key_command is None):
            raise InputError("--raw signs with a private key: give --key KEY.pem or "
                             "--key-command CMD (a keyless "
                             "signature needs its certificate, so it is a bundle)",
                             what="--raw")
        if bundle is not None or log or log_db or log_key or no_log:
            raise InputError("--raw writes a raw signature that is never logged: --bundle, "
                             "--log, --log-db, --log-key and --no-log do not apply",
                             what="--raw")
        pending = PendingBundleFile(output or file.with_name(file.name + ".sig"),
                                    overwrite=force, label="signature file",
                                    option="--output").check()
        _sign_raw(file, who, pending, as_json)
        return
    if output is not None:
        raise InputError("--output names a raw signature file (with --raw); a bundle goes "
                         "to --bundle", what="--output")
    target = who.log_target()
    pending = PendingBundleFile(bundle or default_bundle_path(file), overwrite=force).check()
    _sign_bundle(file, who.signer(target), pending, as_json)


def _sign_bundle(file: Path, signer: object, pending: "PendingBundleFile",
                 as_json: bool) -> None:
    """Sign ``file`` as a message-signature bundle and report where it was logged."""
    from mgattest.attest import KeylessSigner, KeySigner, sign_blob

    assert isinstance(signer, (KeySigner, KeylessSigner))  # both are blob signers
    result = sign_blob(file, signer, output=pending)
    _report_bundle(result, pending.path, as_json)


def _sign_raw(file: Path, who: _SignerArgs, pending: "PendingBundleFile",
              as_json: bool) -> None:
    """Sign ``file`` with the key as ``openssl dgst -sha256 -sign`` would; write it."""
    from mgattest.attest import sign_blob_raw

    signature = sign_blob_raw(file, who.signing_key())
    with pending:
        pending.commit_bytes(signature.signature)
    _report_raw_signature(signature, pending.path, as_json)


def _report_bundle(result: "BlobSignResult", path: Path, as_json: bool) -> None:
    indexes = result.log_indexes
    if as_json:
        out(json.dumps({"ok": True, "bundle": str(path), "file": result.blob.path,
                        "digest": result.blob.text, "logged": bool(indexes),
                        "logIndex": indexes}, indent=2))
        return
    where = f"logged at index {indexes[0]}" if indexes else "not logged (--no-log)"
    out(f"signed {show(result.blob.path)} ({result.blob.text}), {where}: {show(path)}")


def _report_raw_signature(signature: "RawSignature", path: Path, as_json: bool) -> None:
    if as_json:
        out(json.dumps({"ok": True, "signature": str(path), "file": signature.blob.path,
                        "digest": signature.blob.text, "scheme": signature.scheme,
                        "logged": False}, indent=2))
        return
    out(f"wrote raw signature {show(path)} ({signature.scheme} over "
        f"{signature.blob.text} of {show(signature.blob.path)})")
    out(NOT_LOGGED)


# --------------------------------------------------------------------------- verify-blob

@dataclass(frozen=True)
class _BundleTrust:
    """Who is trusted to have signed a blob bundle (the trust options of ``verify``)."""

    keys: List[Path]
    certificate_chain: Optional[Path]
    trusted_root: Optional[Path]
    trust_config: Optional[Path]
    instance: Optional[str]
    refresh_trust: bool
    identity: Optional[str]
    identity_regex: Optional[str]
    issuer: Optional[str]


@guarded
def verify_blob_cmd(
    file: Path = typer.Argument(..., help="The file the signature is over."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Sigstore bundle."),
    signature: Optional[Path] = typer.Option(
        None, "--signature", help="Raw detached signature (raw bytes or base64), as "
                                  "`openssl dgst -sha256 -sign` writes; needs --key."),
    key: List[Path] = typer.Option([], "--key", help="Trusted public key PEM (repeatable "
                                                     "with --bundle; one with --signature)."),
    certificate_chain: Optional[Path] = typer.Option(
        None, "--certificate-chain", help="PEM CA certificates for private-CA signatures."),
    trusted_root: Optional[Path] = typer.Option(
        None, "--trusted-root", help="Sigstore trusted root (or ClientTrustConfig) JSON."),
    trust_config: Optional[Path] = typer.Option(
        None, "--trust-config", help="ClientTrustConfig JSON (merged with --trusted-root)."),
    instance: Optional[str] = typer.Option(
        None, "--instance", help="Trust Sigstore's embedded production|staging root."),
    refresh_trust: bool = typer.Option(
        False, "--refresh-trust", help="Fetch the current Sigstore trust root over TUF."),
    identity: Optional[str] = typer.Option(None, "--identity", help="Exact signer identity."),
    identity_regex: Optional[str] = typer.Option(
        None, "--identity-regex", help="Signer identity regex (fully anchored)."),
    issuer: Optional[str] = typer.Option(None, "--issuer", help="OIDC issuer of the signer."),
    cert_extension: List[str] = typer.Option(
        [], "--certificate-extension", metavar="NAME=VALUE",
        help="Required Fulcio extension value, exact (repeatable)."),
    allow_unlogged: bool = typer.Option(False, "--allow-unlogged",
                                        help="Accept a bundle without a log entry."),
    as_json: bool = _JSON,
) -> None:
    """Verify one file against a Sigstore bundle, or a raw signature with --key."""
    from mgattest.errors import MgattestError

    try:
        _verify_blob(file, bundle, signature, _BundleTrust(
            key, certificate_chain, trusted_root, trust_config, instance, refresh_trust,
            identity, identity_regex, issuer), cert_extension, allow_unlogged, as_json)
    except MgattestError as exc:  # --json keeps machine output on a rejection too
        fail(exc, as_json=as_json)


def _verify_blob(file: Path, bundle: Optional[Path], signature: Optional[Path],
                 trust: _BundleTrust, cert_extension: List[str], allow_unlogged: bool,
                 as_json: bool) -> None:
    """Check the options, then verify the raw signature or the bundle."""
    from mgattest.errors import InputError

    _require_file(file)
    if (bundle is None) == (signature is None):
        raise InputError("give exactly one of --bundle B and --signature SIG", what="usage")
    if signature is not None:
        bundle_only = {"--certificate-chain": trust.certificate_chain,
                       "--trusted-root": trust.trusted_root,
                       "--trust-config": trust.trust_config, "--instance": trust.instance,
                       "--refresh-trust": trust.refresh_trust, "--identity": trust.identity,
                       "--identity-regex": trust.identity_regex, "--issuer": trust.issuer,
                       "--certificate-extension": cert_extension,
                       "--allow-unlogged": allow_unlogged}
        given = [name for name, value in bundle_only.items() if value]
        if given:
            raise InputError(f"{', '.join(given)} apply to bundles; a raw signature is "
                             "checked with --key only", what="usage")
        if len(trust.keys) != 1:
            raise InputError("--signature needs exactly one --key PUB.pem", what="--key")
        _verify_raw(file, signature, trust.keys[0], as_json)
        return
    assert bundle is not None
    _verify_bundle(file, bundle, trust, cert_extension, allow_unlogged, as_json)


def _verify_raw(file: Path, signature: Path, key: Path, as_json: bool) -> None:
    from mgattest.attest import load_verifier, read_signature_file, verify_raw_signature

    checked = verify_raw_signature(file, read_signature_file(signature), load_verifier(key))
    _report_raw_check(checked, signature, as_json)


def _report_raw_check(checked: "RawSignatureCheck", signature: Path, as_json: bool) -> None:
    if as_json:
        out(json.dumps({"ok": True, "file": checked.blob.path, "digest": checked.blob.text,
                        "signature": str(signature), "scheme": checked.scheme,
                        "key": {"fingerprint": checked.key_fingerprint,
                                "type": checked.key_type},
                        "logged": False, "log_entries": []}, indent=2))
        return
    out(f"verified raw signature {show(signature)} over {show(checked.blob.path)} "
        f"({checked.blob.text}): {checked.scheme}, {checked.key_type} key "
        f"sha256:{checked.key_fingerprint[:16]}…")
    out(NOT_LOGGED)


def _verify_bundle(file: Path, bundle: Path, trust: _BundleTrust, cert_extension: List[str],
                   allow_unlogged: bool, as_json: bool) -> None:
    """The one verify pipeline (no policy) over this file and bundle."""
    from mgattest.cli._verify_cmds import (_extension_constraints, _identity_policy,
                                           _merged_trust, _read_chain, _refreshed_instance,
                                           _report, _require_issuer)
    from mgattest.policy import ModelVerifier, TrustOptions, VerifyOptions

    _require_issuer(trust.identity, trust.identity_regex, trust.issuer)
    instance = (_refreshed_instance(trust.instance) if trust.refresh_trust
                else trust.instance)
    options = TrustOptions(
        trusted_root=_merged_trust(trust.trusted_root, trust.trust_config, instance),
        keys=tuple(str(k) for k in trust.keys),
        identity=_identity_policy(trust.identity, trust.identity_regex, trust.issuer,
                                  _extension_constraints({}, cert_extension)),
        certificate_chain=_read_chain(trust.certificate_chain))
    outcome = ModelVerifier(None, options, VerifyOptions(
        bundles=(str(bundle),), allow_unlogged=allow_unlogged)).verify(file)
    _report(outcome, as_json)
