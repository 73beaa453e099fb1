"""``mgattest verify``: signature, log inclusion, subjects — or a policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from mgattest._text import show
from mgattest.cli._common import EXIT_OK, fail, guarded, out


def register(app: typer.Typer) -> None:
    """Add ``verify`` to the app."""
    app.command("verify")(verify_cmd)


_POLICY_OPTIONS = ("policy", "builder_id", "source_uri", "source_tag", "source_versioned_tag",
                   "source_branch", "emit_vsa", "audit_log")


@guarded
def verify_cmd(
    model: str = typer.Argument(..., help="Model file or directory, or sha256:HEX / sha512:HEX."),
    bundle: List[Path] = typer.Option([], "--bundle",
                                      help="Bundle (repeatable; default <model>.sigstore.json)."),
    key: List[Path] = typer.Option([], "--key", help="Trusted public key PEM (repeatable)."),
    certificate_chain: Optional[Path] = typer.Option(
        None, "--certificate-chain", help="PEM CA certificates for private-CA signatures."),
    trusted_root: Optional[Path] = typer.Option(
        None, "--trusted-root", help="Sigstore trusted root (or ClientTrustConfig) JSON."),
    trust_config: Optional[Path] = typer.Option(
        None, "--trust-config",
        help="ClientTrustConfig JSON (as `sign --trust-config` and sigstore-python take; "
             "a trusted root is accepted too); merged with --trusted-root/--instance."),
    instance: Optional[str] = typer.Option(
        None, "--instance", help="Trust Sigstore's embedded production|staging root."),
    refresh_trust: bool = typer.Option(
        False, "--refresh-trust",
        help="Fetch the current Sigstore trust root over TUF (network) instead of the "
             "copy embedded in sigstore-python. Without it verification makes no "
             "network call."),
    identity: Optional[str] = typer.Option(None, "--identity", help="Exact signer identity."),
    identity_regex: Optional[str] = typer.Option(
        None, "--identity-regex", help="Signer identity regex (fully anchored)."),
    issuer: Optional[str] = typer.Option(None, "--issuer", help="OIDC issuer of the signer."),
    gh_repository: Optional[str] = typer.Option(
        None, "--certificate-github-workflow-repository",
        help="Required GitHub repository (owner/name) in the signing certificate."),
    gh_ref: Optional[str] = typer.Option(
        None, "--certificate-github-workflow-ref", help="Required git ref (refs/heads/main)."),
    gh_sha: Optional[str] = typer.Option(
        None, "--certificate-github-workflow-sha", help="Required commit SHA."),
    gh_trigger: Optional[str] = typer.Option(
        None, "--certificate-github-workflow-trigger", help="Required event (push, release...)."),
    gh_name: Optional[str] = typer.Option(
        None, "--certificate-github-workflow-name", help="Required workflow name."),
    cert_extension: List[str] = typer.Option(
        [], "--certificate-extension", metavar="NAME=VALUE",
        help="Required Fulcio extension value, exact (repeatable), e.g. "
             "source_repository_uri=https://github.com/acme/models."),
    allow_unlogged: bool = typer.Option(False, "--allow-unlogged",
                                        help="Accept bundles without a transparency-log entry."),
    ignore: List[str] = typer.Option([], "--ignore", help="Anchored glob to leave out."),
    allow_unsigned_files: bool = typer.Option(False, "--allow-unsigned-files",
                                              help="Tolerate files no subject covers."),
    allow_symlinks: bool = typer.Option(False, "--allow-symlinks",
                                        help="Follow symlinks that stay inside the model."),
    predicate_type: Optional[str] = typer.Option(None, "--predicate-type",
                                                 help="Require this predicate type."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy file (YAML/JSON)."),
    builder_id: Optional[str] = typer.Option(None, "--builder-id", help="Expected builder id."),
    source_uri: Optional[str] = typer.Option(None, "--source-uri", help="Expected source repo."),
    source_tag: Optional[str] = typer.Option(None, "--source-tag", help="Expected source tag."),
    source_versioned_tag: Optional[str] = typer.Option(
        None, "--source-versioned-tag", help="Expected semver-compatible tag."),
    source_branch: Optional[str] = typer.Option(None, "--source-branch",
                                                help="Expected source branch."),
    emit_vsa: Optional[Path] = typer.Option(None, "--emit-vsa",
                                            help="Write a verification summary attestation."),
    audit_log: Optional[Path] = typer.Option(None, "--audit-log", help="Append an audit record."),
    quarantine: Optional[Path] = typer.Option(
        None, "--quarantine", metavar="DIR",
        help="Move a rejected model into DIR with an incident record."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Verify a model against its bundle(s): signature, log inclusion, every file."""
    _require_issuer(identity, identity_regex, issuer)
    if refresh_trust:
        instance = _refreshed_instance(instance)
    _refuse_trust_files_in_model(model, policy=policy, key=key,
                                 certificate_chain=certificate_chain,
                                 trust_files=[trusted_root, trust_config])
    trusted_root = _merged_trust(trusted_root, trust_config, instance)
    extensions = _extension_constraints(
        {"github_workflow_repository": gh_repository, "github_workflow_ref": gh_ref,
         "github_workflow_sha": gh_sha, "github_workflow_trigger": gh_trigger,
         "github_workflow_name": gh_name}, cert_extension)
    options = dict(bundle=bundle, key=key, certificate_chain=certificate_chain,
                   trusted_root=trusted_root, identity=identity,
                   identity_regex=identity_regex, issuer=issuer,
                   allow_unlogged=allow_unlogged, ignore=ignore,
                   allow_unsigned_files=allow_unsigned_files, allow_symlinks=allow_symlinks,
                   predicate_type=predicate_type, policy=policy, builder_id=builder_id,
                   source_uri=source_uri, source_tag=source_tag,
                   source_versioned_tag=source_versioned_tag, source_branch=source_branch,
                   emit_vsa=emit_vsa, audit_log=audit_log, json=as_json)
    if any(options[name] is not None for name in _POLICY_OPTIONS):
        if extensions:
            from mgattest.errors import InputError

            raise InputError("with --policy, put certificate extension constraints in the "
                             "policy's signers (keyless.extensions)", what="usage")
        from mgattest.policy.cli_support import run_verify

        code = run_verify(model=model, bundles=list(bundle), policy=policy,
                          options={k: v for k, v in options.items()
                                   if v not in (None, [], False)},
                          as_json=as_json)
        if code == 1 and quarantine is not None:
            _quarantine(model, quarantine, ["denied by policy"], policy)
        raise typer.Exit(code)
    try:
        result = _verify(model, bundle, key, certificate_chain, trusted_root, identity,
                         identity_regex, issuer, allow_unlogged, ignore,
                         allow_unsigned_files, allow_symlinks, predicate_type, extensions)
    except Exception as exc:  # typed errors → exit codes; --json keeps machine output
        from mgattest.errors import MgattestError

        if isinstance(exc, MgattestError):
            if exc.exit_code == 1 and quarantine is not None:
                _quarantine(model, quarantine, [exc.message], None)
            fail(exc, as_json=as_json)
        raise
    _report(result, as_json)
    raise typer.Exit(EXIT_OK)


def _verify(model: str, bundles: List[Path], keys: List[Path], certificate_chain: Any,
            root: Any, identity: Any, identity_regex: Any, issuer: Any,
            allow_unlogged: bool, ignore: List[str], allow_unsigned_files: bool,
            allow_symlinks: bool, predicate_type: Any,
            extensions: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """``root`` is the merged trust of --trusted-root/--trust-config/--instance."""
    from mgattest.attest import verify
    from mgattest.attest.digests import digest_target
    from mgattest.errors import InputError

    policy = None
    if identity or identity_regex or issuer or extensions:
        from mgattest.attest.certs import IdentityPolicy

        policy = IdentityPolicy(identity=identity, identity_regex=identity_regex,
                                issuer=issuer, extensions=extensions or {})
    chain = None
    if certificate_chain is not None:
        from mgattest._files import read_bounded

        chain = read_bounded(certificate_chain, 1 << 20, what="certificate chain")
    common = dict(trusted_root=root, keys=[str(k) for k in keys] or None, identity=policy,
                  allow_unlogged=allow_unlogged, certificate_chain=chain,
                  expected_predicate_type=predicate_type)
    spec = digest_target(model)
    if spec is not None:
        if not bundles:
            raise InputError("verifying a digest needs --bundle", what="--bundle")
        atts = [verify.verify_bundle(str(b), artifact_digest=f"{spec.algorithm}:"
                                     f"{spec.hex_digest}", **common) for b in bundles]
        _require_identity(atts, policy)
        return {"model": model, "attestations": atts, "check": None}
    path = Path(model)
    if not path.exists():
        raise InputError(f"model {model} does not exist", what="model", where=model)
    from mgattest.cli.sign_cmds import hashing_progress

    with hashing_progress(path, "verifying") as progress:
        atts, check = verify.verify_model(
            path, [str(b) for b in bundles] or None, ignore=ignore,
            allow_symlinks=allow_symlinks, allow_unsigned_files=allow_unsigned_files,
            progress=progress, **common)
    _require_identity(atts, policy)
    return {"model": model, "attestations": atts, "check": check}


def _refuse_trust_files_in_model(model: str, *, policy: Optional[Path], key: List[Path],
                                 certificate_chain: Optional[Path],
                                 trust_files: List[Optional[Path]]) -> None:
    """A policy, key, trusted root, trust config or chain inside the model could vouch
    for anything."""
    from mgattest.attest.walk import refuse_trust_files_in_model

    refuse_trust_files_in_model(model, [
        ("policy", policy), ("certificate chain", certificate_chain),
        *(("trusted root", path) for path in trust_files),
        *(("key", k) for k in key)])


def _merged_trust(trusted_root: Optional[Path], trust_config: Optional[Path],
                  instance: Any) -> Any:
    """One TrustedRoot trusting everything --trusted-root, --trust-config and --instance
    name (each file a trusted root or a ClientTrustConfig), or None when none is given."""
    from mgattest.attest import trustroot

    roots = [trustroot.load_trusted_root(path) for path in (trusted_root, trust_config)
             if path is not None]
    if instance is not None:
        roots.append(instance if isinstance(instance, trustroot.TrustedRoot)
                     else trustroot.embedded_trusted_root(instance))
    return trustroot.merge_roots(roots)


def _extension_constraints(named: dict[str, Optional[str]],
                           pairs: List[str]) -> dict[str, str]:
    """Fulcio extension values the certificate must carry (exact matches)."""
    from mgattest.errors import InputError

    wanted = {name: value for name, value in named.items() if value is not None}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise InputError(f"--certificate-extension takes NAME=VALUE, not {pair!r}",
                             what="--certificate-extension")
        if name in wanted and wanted[name] != value:
            raise InputError(f"conflicting values for certificate extension {name}",
                             what="--certificate-extension")
        wanted[name] = value
    return wanted


def _refreshed_instance(instance: Optional[str]) -> Any:
    """Sigstore's production (default) or staging trusted root, updated over TUF."""
    from mgattest.attest import trustroot
    from mgattest.attest.keyless import public_good_trust_config
    from mgattest.errors import InputError

    if instance not in (None, "production", "staging"):
        raise InputError("--instance must be production or staging", what="--instance")
    config = public_good_trust_config(staging=instance == "staging", refresh_trust=True)
    return trustroot.parse_client_trust_config(config).trusted_root


def _quarantine(model: str, qdir: Path, reasons: List[str], policy: Optional[Path]) -> None:
    """Move a rejected model (not a digest) into the quarantine directory."""
    from mgattest.attest.verify import names_a_digest

    if names_a_digest(model) or not Path(model).exists():
        return
    import hashlib

    from mgattest.cli._common import err
    from mgattest.load.quarantine import quarantine

    policy_digest = None
    if policy is not None and policy.is_file():
        policy_digest = "sha256:" + hashlib.sha256(policy.read_bytes()).hexdigest()
    incident = quarantine(model, qdir, reason=reasons, verdict="rejected",
                          policy_digest=policy_digest)
    err(f"quarantined {show(model)} → {show(getattr(incident, 'path', qdir))}")


def _require_issuer(identity: Optional[str], identity_regex: Optional[str],
                    issuer: Optional[str]) -> None:
    """An identity means nothing without the OIDC issuer that vouches for it: any
    provider could mint the same e-mail or URI (cosign and sigstore-python refuse it too)."""
    if (identity or identity_regex) and not issuer:
        from mgattest.errors import InputError

        raise InputError("--identity/--identity-regex need --issuer: an identity is only "
                         "meaningful with the OIDC issuer that vouches for it",
                         what="usage", where="--issuer")


def _require_identity(atts: List[Any], policy: Any) -> None:
    """--identity/--issuer asked for a certificate identity: a key signature lacks one."""
    if policy is None:
        return
    from mgattest.attest.certs import IdentityMismatchError

    for att in atts:
        if att.signer.kind != "certificate":
            raise IdentityMismatchError(
                "--identity/--issuer require a certificate signer, but this bundle is "
                "signed with a bare key", what="identity", where=att.source)


def _report(result: dict[str, Any], as_json: bool) -> None:
    from mgattest.attest.verify import attestation_to_json

    atts = result["attestations"]
    check = result["check"]
    if as_json:
        doc: dict[str, Any] = {"ok": True, "model": result["model"],
                               "attestations": [attestation_to_json(a) for a in atts]}
        if check is not None:
            doc["files"] = [{"name": f.name, "status": f.status, "detail": f.detail}
                            for f in check.files]
        out(json.dumps(doc, indent=2))
        return
    for att in atts:
        signer = att.signer
        who = (f"{show(signer.identity)} ({show(signer.issuer)})"
               if signer.kind == "certificate" and signer.identity
               else f"key sha256:{signer.key_fingerprint[:16]}…")
        logs = ", ".join(p.describe() for p in att.log_entries) or "not logged"
        signed_at = att.signing_time
        when = (f"signing time {signed_at.describe()}" if signed_at is not None
                else "no verified signing time")
        out(f"verified {show(att.source)}: signed by {who}; {logs}; {when}; "
            f"predicate {show(att.predicate_type or 'message signature')}")
        for note in att.notes:
            out(f"  note: {show(note)}")
        for warning in signer.warnings:
            out(f"warning: {show(warning)}")
    if check is not None:
        counted = sum(1 for f in check.files if f.status == "ok")
        ignored = sum(1 for f in check.files if f.status == "ignored")
        extra = f", {ignored} ignored" if ignored else ""
        out(f"OK: {counted} file(s) match{extra}")
    else:
        out("OK: digest matches")
