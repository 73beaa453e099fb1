"""``mgattest verify``: signature, log inclusion, subjects — or a policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from mgattest._text import show
from mgattest.cli._common import EXIT_OK, fail, guarded, out

if TYPE_CHECKING:
    from mgattest.attest import IdentityPolicy
    from mgattest.attest import TrustedRoot
    from mgattest.policy import LineageRequest, ModelVerifier, PolicyRequest
    from mgattest.policy import VerificationOutcome


def register(app: typer.Typer) -> None:
    """Add ``verify`` to the app."""
    app.command("verify")(verify_cmd)


@guarded
def verify_cmd(
    model: str = typer.Argument(..., help="Model file or directory, sha256:HEX / sha512:HEX, "
                                "hf:ORG/NAME[@REV] (the local Hugging Face cache), "
                                "ollama:NAME[:TAG] or oci:LAYOUT[:REF]."),
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
    lineage_bundles: List[Path] = typer.Option(
        [], "--lineage-bundles", metavar="PATH",
        help="With --policy: bundle file or directory where the attestations of the "
             "model's inputs are looked up for `lineage` clauses (repeatable)."),
    lineage_log: List[str] = typer.Option(
        [], "--lineage-log", metavar="URL",
        help="With --policy: Rekor v1 log searched by digest for `lineage` clauses."),
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
    all_models: bool = typer.Option(False, "--all",
                                    help="MODEL is a tree: verify every model found in it "
                                         "(as `mgattest audit` finds them), one summary."),
) -> None:
    """Verify a model against its bundle(s): signature, log inclusion, every file."""
    if all_models:
        unsupported = {"--bundle": bundle, "--certificate-chain": certificate_chain,
                       "--refresh-trust": refresh_trust, "--certificate-*": gh_repository
                       or gh_ref or gh_sha or gh_trigger or gh_name or cert_extension,
                       "--ignore": ignore, "--allow-unsigned-files": allow_unsigned_files,
                       "--allow-symlinks": allow_symlinks, "--predicate-type": predicate_type,
                       "--builder-id/--source-*": builder_id or source_uri or source_tag
                       or source_versioned_tag or source_branch, "--emit-vsa": emit_vsa,
                       "--audit-log": audit_log, "--quarantine": quarantine}
        _verify_all(Path(model), [name for name, value in unsupported.items() if value],
                    tree_verifier(Path(model), TreeTrust(
                        policy=policy, key=tuple(key), trusted_root=trusted_root,
                        trust_config=trust_config, instance=instance, identity=identity,
                        identity_regex=identity_regex, issuer=issuer,
                        allow_unlogged=allow_unlogged)), as_json)

    from mgattest.attest import resolve_model_path

    _require_issuer(identity, identity_regex, issuer)
    model = str(resolve_model_path(model))
    root_instance = _refreshed_instance(instance) if refresh_trust else instance
    _refuse_trust_files_in_model(model, policy=policy, key=key,
                                 certificate_chain=certificate_chain,
                                 trust_files=[trusted_root, trust_config])
    merged_root = _merged_trust(trusted_root, trust_config, root_instance)
    extensions = _extension_constraints(
        {"github_workflow_repository": gh_repository, "github_workflow_ref": gh_ref,
         "github_workflow_sha": gh_sha, "github_workflow_trigger": gh_trigger,
         "github_workflow_name": gh_name}, cert_extension)
    if any(value is not None for value in (policy, builder_id, source_uri, source_tag,
                                           source_versioned_tag, source_branch, emit_vsa,
                                           audit_log)):
        if extensions:
            from mgattest.errors import InputError

            raise InputError("with --policy, put certificate extension constraints in the "
                             "policy's signers (keyless.extensions)", what="usage")
        from mgattest.policy import PolicyRequest
        from mgattest.policy import ShortcutOptions

        shortcuts = ShortcutOptions(
            builder_id=builder_id, source_uri=source_uri, source_tag=source_tag,
            source_versioned_tag=source_versioned_tag, source_branch=source_branch,
            issuer=issuer, allow_unlogged=allow_unlogged, ignore=tuple(ignore),
            allow_unsigned_files=allow_unsigned_files)
        request = PolicyRequest(
            policy_path=_text(policy), bundles=tuple(str(b) for b in bundle),
            shortcuts=shortcuts, key_files=tuple(str(k) for k in key), identity=identity,
            identity_regex=identity_regex, certificate_chain=_text(certificate_chain),
            trusted_root=merged_root, audit_log=_text(audit_log), emit_vsa=_text(emit_vsa),
            lineage=_lineage_request(lineage_bundles, lineage_log))
        code = _verify_under_policy(model, request, as_json)
        if code == 1 and quarantine is not None:
            _quarantine(model, quarantine, ["denied by policy"], policy)
        raise typer.Exit(code)
    if lineage_bundles or lineage_log:
        from mgattest.errors import InputError

        raise InputError("--lineage-bundles/--lineage-log serve a policy's lineage clauses: "
                         "give --policy", what="usage")
    try:
        from mgattest.cli._progress import hashing_progress
        from mgattest.policy import ModelVerifier, TrustOptions, VerifyOptions

        trust = TrustOptions(
            trusted_root=merged_root, keys=tuple(str(k) for k in key),
            identity=_identity_policy(identity, identity_regex, issuer, extensions),
            certificate_chain=_read_chain(certificate_chain))
        options = VerifyOptions(
            bundles=tuple(str(b) for b in bundle), allow_unlogged=allow_unlogged,
            ignore=tuple(ignore), allow_unsigned_files=allow_unsigned_files,
            allow_symlinks=allow_symlinks, predicate_type=predicate_type)
        with hashing_progress(Path(model), "verifying") as progress:
            outcome = ModelVerifier(None, trust, options).verify(model, progress=progress)
    except Exception as exc:  # typed errors → exit codes; --json keeps machine output
        from mgattest.errors import MgattestError

        if isinstance(exc, MgattestError):
            if exc.exit_code == 1 and quarantine is not None:
                _quarantine(model, quarantine, [exc.message], None)
            fail(exc, as_json=as_json)
        raise
    _report(outcome, as_json)
    raise typer.Exit(EXIT_OK)


@dataclass(frozen=True)
class TreeTrust:
    """The trust options ``verify --all`` and ``audit`` share (see ``verify``'s help)."""

    policy: Optional[Path] = None
    key: tuple[Path, ...] = ()
    trusted_root: Optional[Path] = None
    trust_config: Optional[Path] = None
    instance: Optional[str] = None
    identity: Optional[str] = None
    identity_regex: Optional[str] = None
    issuer: Optional[str] = None
    allow_unlogged: bool = False


# The trust options of TreeTrust as `audit` and `provenance` declare them.
KEY_OPTION = typer.Option([], "--key", help="Trusted public key PEM (repeatable).")
TRUSTED_ROOT_OPTION = typer.Option(None, "--trusted-root",
                                   help="Sigstore trusted root (or ClientTrustConfig) JSON.")
TRUST_CONFIG_OPTION = typer.Option(None, "--trust-config",
                                   help="ClientTrustConfig JSON (merged with --trusted-root).")
IDENTITY_OPTION = typer.Option(None, "--identity", help="Exact signer identity.")
IDENTITY_REGEX_OPTION = typer.Option(None, "--identity-regex",
                                     help="Signer identity regex (fully anchored).")
ISSUER_OPTION = typer.Option(None, "--issuer", help="OIDC issuer of the signer.")


def tree_verifier(directory: Path, args: TreeTrust) -> ModelVerifier:
    """The verifier ``verify --all`` and ``audit`` apply to every model of a tree: under
    ``args.policy`` (its trust, plus the keys and identity given), or the signatures
    alone."""
    from mgattest.policy import ModelVerifier, PolicyRequest, ShortcutOptions, TrustOptions
    from mgattest.policy import VerifyOptions, policy_verifier

    _require_issuer(args.identity, args.identity_regex, args.issuer)
    merged_root = _merged_trust(args.trusted_root, args.trust_config, args.instance)
    keys = tuple(str(k) for k in args.key)
    if args.policy is not None:
        request = PolicyRequest(
            shortcuts=ShortcutOptions(issuer=args.issuer), policy_path=str(args.policy),
            key_files=keys, identity=args.identity, identity_regex=args.identity_regex,
            trusted_root=merged_root)
        return policy_verifier(str(directory), request)
    trust = TrustOptions(trusted_root=merged_root, keys=keys,
                         identity=_identity_policy(args.identity, args.identity_regex,
                                                   args.issuer, {}))
    return ModelVerifier(None, trust, VerifyOptions(allow_unlogged=args.allow_unlogged))


def _verify_all(directory: Path, unsupported: List[str], verifier: ModelVerifier,
                as_json: bool) -> None:
    """``verify --all``: refuse options that name one model, then run the tree."""
    from mgattest.cli._audit_cmds import verify_tree
    from mgattest.errors import InputError

    if unsupported:
        raise InputError(f"--all does not take {', '.join(unsupported)} (each model is "
                         "verified with its own <model>.sigstore.json)", what="--all")
    verify_tree(directory, verifier, as_json)


def _lineage_request(bundles: List[Path], logs: List[str]) -> Optional[LineageRequest]:
    """Where a policy's ``lineage`` clauses look up inputs, or None (they then fail)."""
    if not (bundles or logs):
        return None
    from mgattest.policy import BundleFiles, LineageRequest, LogIndex

    sources = ([BundleFiles(tuple(str(b) for b in bundles))] if bundles else []) + \
        [LogIndex(url) for url in logs]
    return LineageRequest(tuple(sources))


def _text(path: Optional[Path]) -> Optional[str]:
    """A path option as the library's text, or None."""
    return None if path is None else str(path)


def _identity_policy(identity: Optional[str], identity_regex: Optional[str],
                     issuer: Optional[str],
                     extensions: dict[str, str]) -> Optional[IdentityPolicy]:
    """The certificate identity --identity/--identity-regex/--issuer/extensions ask for
    (an ``IdentityPolicy``), or None when none is asked for."""
    if not (identity or identity_regex or issuer or extensions):
        return None
    from mgattest.attest import IdentityPolicy

    return IdentityPolicy(identity=identity, identity_regex=identity_regex, issuer=issuer,
                          extensions=extensions or {})


def _read_chain(certificate_chain: Optional[Path]) -> Optional[bytes]:
    """The PEM bytes of --certificate-chain (bounded), or None."""
    if certificate_chain is None:
        return None
    from mgattest._files import read_bounded

    return read_bounded(certificate_chain, 1 << 20, what="certificate chain")


def _verify_under_policy(model: str, request: PolicyRequest, as_json: bool) -> int:
    """Verify *model* as a policy request asks; print the verdict; the exit code.

    With ``--json`` a failure before evaluation (a bundle that does not verify, bad
    input) is printed as JSON too.
    """
    from mgattest.errors import MgattestError
    from mgattest.policy import policy_verifier

    try:
        outcome = policy_verifier(model, request).verify(model)
    except MgattestError as exc:
        if not as_json:
            raise
        print(json.dumps({"ok": False, "allowed": False, **exc.to_dict()}, indent=2))
        return exc.exit_code
    _report_verdict(outcome, as_json)
    return 0 if outcome.allowed else 1


def _report_verdict(outcome: VerificationOutcome, as_json: bool) -> None:
    """Print a policy's verdict (a tree, or JSON), the bundles' notes and the VSA."""
    verdict = outcome.verdict
    if verdict is None:  # a policy always decides: never render "allowed" without one
        from mgattest.errors import VerificationError

        raise VerificationError("the policy reached no verdict", what="policy")
    if as_json:
        doc = {"ok": verdict.allowed, **verdict.to_dict()}
        if outcome.notes:
            doc["notes"] = outcome.notes
        if outcome.vsa_path:
            doc["vsa"] = outcome.vsa_path
        print(json.dumps(doc, indent=2, sort_keys=False))
        return
    from mgattest.cli._render import print_verdict

    print_verdict(verdict)
    for note in outcome.notes:  # evidence the bundles carry that nothing verified
        print(f"note: {note}")
    if outcome.vsa_path:
        print(f"verification summary attestation written to {outcome.vsa_path}")


def _refuse_trust_files_in_model(model: str, *, policy: Optional[Path], key: List[Path],
                                 certificate_chain: Optional[Path],
                                 trust_files: List[Optional[Path]]) -> None:
    """A policy, key, trusted root, trust config or chain inside the model could vouch
    for anything."""
    from mgattest.attest import refuse_trust_files_in_model

    refuse_trust_files_in_model(model, [
        ("policy", policy), ("certificate chain", certificate_chain),
        *(("trusted root", path) for path in trust_files),
        *(("key", k) for k in key)])


def _merged_trust(trusted_root: Optional[Path], trust_config: Optional[Path],
                  instance: TrustedRoot | str | None) -> Optional[TrustedRoot]:
    """One TrustedRoot trusting everything --trusted-root, --trust-config and --instance
    name (each file a trusted root or a ClientTrustConfig), or None when none is given."""
    from mgattest.attest import combined_trusted_root

    return combined_trusted_root([p for p in (trusted_root, trust_config) if p is not None],
                                 instance)


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


def _refreshed_instance(instance: Optional[str]) -> TrustedRoot:
    """Sigstore's production (default) or staging trusted root, updated over TUF."""
    from mgattest.attest import parse_client_trust_config, public_good_trust_config
    from mgattest.errors import InputError

    if instance not in (None, "production", "staging"):
        raise InputError("--instance must be production or staging", what="--instance")
    config = public_good_trust_config(staging=instance == "staging", refresh_trust=True)
    return parse_client_trust_config(config).trusted_root


def _quarantine(model: str, qdir: Path, reasons: List[str], policy: Optional[Path]) -> None:
    """Move a rejected model (not a digest) into the quarantine directory."""
    from mgattest.policy import names_a_digest

    if names_a_digest(model):
        return
    from mgattest.cli._common import err
    from mgattest.loading import quarantine_rejected

    incident = quarantine_rejected(model, qdir, reasons, policy=policy)
    if incident is not None:
        err(f"quarantined {show(model)} → {show(incident.path)}")


def _require_issuer(identity: Optional[str], identity_regex: Optional[str],
                    issuer: Optional[str]) -> None:
    """An identity means nothing without the OIDC issuer that vouches for it: any
    provider could mint the same e-mail or URI (cosign and sigstore-python refuse it too)."""
    if (identity or identity_regex) and not issuer:
        from mgattest.errors import InputError

        raise InputError("--identity/--identity-regex need --issuer: an identity is only "
                         "meaningful with the OIDC issuer that vouches for it",
                         what="usage", where="--issuer")


def _report(outcome: VerificationOutcome, as_json: bool) -> None:
    """Print what a verification without a policy established (text or JSON)."""
    from mgattest.policy import attestation_to_json

    atts = outcome.attestations
    check = outcome.check
    if as_json:
        doc: dict[str, object] = {"ok": True, "model": outcome.model,
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
