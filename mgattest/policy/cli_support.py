"""Glue between the ``mgattest verify`` command and the policy engine.

``run_verify`` is called by ``mgattest verify`` when a policy or a policy-like option is
given. The slsa-verifier-style shortcuts (``--builder-id``, ``--source-uri``,
``--source-tag``, ``--source-versioned-tag``, ``--source-branch``) become a generated
rule; given without ``--identity``, the signer must BE that builder: the certificate's
workflow identity (SAN and build_signer_uri) matches the builder id and its
source_repository_uri matches the source URI, as slsa-verifier checks.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any


from mgattest.errors import InputError
from mgattest.policy.model import SLSA_PROVENANCE_TYPES, Policy

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
SHORTCUTS = ("builder_id", "source_uri", "source_tag", "source_versioned_tag", "source_branch")


def builder_matcher(builder_id: str) -> Any:
    """Matcher spec for a builder id: exact when it carries ``@ref``; else the id itself
    or the id at any tag/branch (as slsa-verifier)."""
    if "@" in builder_id.split("://", 1)[-1]:
        return builder_id
    return {"anyOf": [builder_id,
                      {"regex": re.escape(builder_id) + r"@refs/(?:tags|heads)/[^\s]+"}]}


def source_uri(value: str) -> str:
    """slsa-verifier accepts ``github.com/org/repo``; store ``https://github.com/org/repo``."""
    value = value.strip().rstrip("/")
    if value.startswith("git+"):
        value = value[4:]
    if "://" not in value:
        value = "https://" + value
    return value[:-4] if value.endswith(".git") else value


def shortcut_rule(options: dict[str, Any], *, signers: list[str]) -> dict[str, Any]:
    """The rule the shortcut options describe; the provenance must be signed by one of
    ``signers`` (any verified signer when empty, i.e. with ``--identity``)."""
    prov: dict[str, Any] = {}
    if options.get("builder_id"):
        prov["builderId"] = builder_matcher(options["builder_id"])
    if options.get("source_uri"):
        prov["sourceRepository"] = source_uri(options["source_uri"])
    for opt, key in (("source_tag", "sourceTag"), ("source_versioned_tag", "sourceVersionedTag"),
                     ("source_branch", "sourceBranch")):
        if options.get(opt):
            prov[key] = options[opt]
    # Both SLSA Provenance versions slsa-verifier reads (many releases still ship v0.2).
    att: dict[str, Any] = {"predicateType": list(SLSA_PROVENANCE_TYPES), "provenance": prov}
    if signers:
        att["signedBy"] = {"anyOf": signers}
    if "cli-builder" in signers:
        # The builder signs: which certificate may vouch for which builder id.
        prov["builderBoundToCertificate"] = True
    rule: dict[str, Any] = {"id": "cli-provenance", "match": ["**"], "attestations": [att],
                            "content": {"scan": "off", "pickle": "restricted"}}
    return _with_cli_file_options(rule, options)


def _with_cli_file_options(rule: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    if options.get("allow_unlogged"):
        rule["transparencyLog"] = {"require": "optional"}
    files: dict[str, Any] = {}
    if options.get("ignore"):
        files["ignore"] = [str(g) for g in options["ignore"]]
    if options.get("allow_unsigned_files"):
        files["unsigned"] = "allow"
    if files:
        rule["files"] = files
    return rule


def builder_signer(options: dict[str, Any]) -> dict[str, Any]:
    """The keyless signers slsa-verifier accepts for a builder id.

    The builder's own workflow, or a BYOB delegator of slsa-github-generator (which
    vouches for the builder id written in the provenance — the provenance check then
    applies the delegation rule); for npm CLI provenance (builder = the GitHub runner),
    the package's own workflow in the ``--source-uri`` repository.
    """
    from mgattest.policy.provenance import DELEGATOR_WORKFLOWS, NPM_CLI_BUILDERS  # noqa: PLC0415

    builder = options["builder_id"]
    issuer = options.get("issuer") or GITHUB_ISSUER
    extensions: dict[str, Any] = {}
    if options.get("source_uri"):
        extensions["sourceRepository"] = source_uri(options["source_uri"])
    if builder.split("@", 1)[0] in NPM_CLI_BUILDERS:
        if not options.get("source_uri"):
            raise InputError(f"builder {builder} (npm CLI provenance) needs --source-uri: the "
                             "signer is the package's own workflow in that repository",
                             what="--source-uri")
        repo = extensions["sourceRepository"]
        workflow = {"regex": re.escape(repo) + r"/\.github/workflows/[^@\s]+@[^\s]+"}
        return {"keyless": {"issuer": issuer, "subject": workflow,
                            "extensions": {**extensions, "workflow": workflow}}}
    delegators = {"regex": "(?:" + "|".join(re.escape(d) for d in DELEGATOR_WORKFLOWS)
                  + r")@refs/tags/v[0-9]+\.[0-9]+\.[0-9]+"}
    own = builder_matcher(builder)
    matcher = {"anyOf": (own["anyOf"] if isinstance(own, dict) else [own]) + [delegators]}
    return {"keyless": {"issuer": issuer, "subject": matcher,
                        "extensions": {**extensions, "workflow": matcher}}}


def effective_policy(policy_path: str | None, options: dict[str, Any]) -> Policy:
    """The policy file, extended (or replaced, when no file) by the shortcut options."""
    from mgattest.policy.loader import load_policy, policy_from_bytes, read_policy_bytes  # noqa: PLC0415
    from mgattest.policy.yamlpos import parse_yaml  # noqa: PLC0415

    wanted = [k for k in SHORTCUTS if options.get(k)]
    if policy_path and not wanted:
        return load_policy(policy_path)
    keys = options.get("keys") or []
    if not wanted and not policy_path and not keys and options.get("identity") is None:
        raise InputError("give --policy, --key or --identity, or at least one of "
                         "--builder-id, --source-uri, --source-tag, --source-versioned-tag, "
                         "--source-branch", what="policy")
    if wanted and not options.get("builder_id") and not options.get("source_uri"):
        raise InputError("--source-tag/--source-versioned-tag/--source-branch need "
                         "--source-uri (or --builder-id)", what="source")
    if policy_path:
        load_policy(policy_path)  # report problems of the file itself with file:line
        doc = parse_yaml(read_policy_bytes(policy_path), str(policy_path)).data
        base = os.path.dirname(os.path.abspath(policy_path))
        source = f"{policy_path} + command-line expectations"
    else:
        doc = {"apiVersion": "mgattest/v1", "kind": "Policy",
               "metadata": {"name": "command-line expectations"},
               "unmatchedFiles": "allow", "rules": []}
        base = os.getcwd()
        source = "command-line expectations"
    provenance_signers: list[str] = []
    if keys and not policy_path:
        doc.setdefault("trust", {})["keys"] = [
            {"name": f"cli-key-{i + 1}", "path": os.path.abspath(k)} for i, k in enumerate(keys)]
        doc["signers"] = {f"cli-key-{i + 1}": {"key": f"cli-key-{i + 1}"} for i in range(len(keys))}
        doc["rules"].append(_with_cli_file_options(
            {"id": "cli-signer", "match": ["**"], "signedBy": {"anyOf": sorted(doc["signers"])},
             "content": {"scan": "off", "pickle": "restricted"}}, options))
        provenance_signers += sorted(doc["signers"])
    # Also beside --key (an npm attestation document: publish attestation by the registry
    # key, provenance by the builder): the provenance is signed by the builder or a --key.
    if options.get("identity") is None and options.get("builder_id"):
        doc.setdefault("signers", {})["cli-builder"] = builder_signer(options)
        provenance_signers.insert(0, "cli-builder")
    if wanted:
        doc["rules"].append(shortcut_rule(options, signers=provenance_signers))
    elif not doc["rules"]:  # --identity only: verify_bundle checks it; files and log here
        doc["rules"].append(_with_cli_file_options(
            {"id": "cli-identity", "match": ["**"],
             "content": {"scan": "off", "pickle": "restricted"}}, options))
    data = json.dumps(doc, indent=1).encode()  # JSON is YAML without aliases
    return policy_from_bytes(data, source=source, base_dir=base)


def run_verify(model: str, bundles: list[str], policy: str | None, options: dict[str, Any],
               as_json: bool) -> int:
    """Verify *model* under *policy* and the shortcut options; print the verdict.

    See :func:`verify_and_report` for the options. With ``as_json`` a failure before
    evaluation (a bundle that does not verify, bad input) is printed as JSON too.
    """
    from mgattest.errors import MgattestError  # noqa: PLC0415

    try:
        return verify_and_report(model, bundles, policy, options, as_json)
    except MgattestError as exc:
        if not as_json:
            raise
        print(json.dumps({"ok": False, "allowed": False, **exc.to_dict()}, indent=2))
        return exc.exit_code


def verify_and_report(model: str, bundles: list[str], policy: str | None,
                      options: dict[str, Any], as_json: bool) -> int:
    """Verify *model* with *bundles* under *policy* (+ shortcut options); print the verdict.

    ``options`` keys (all optional): builder_id, source_uri, source_tag,
    source_versioned_tag, source_branch, identity (an attest ``IdentityPolicy`` or its
    kwargs dict), issuer, keys (public key paths, used when no policy file), trusted_root,
    certificate_chain (PEM bytes), emit_vsa (output path), vsa_key (private key path),
    vsa_password (bytes), audit_log (path), verbose (bool).
    Returns 0 when allowed, 1 when denied; raises InputError on bad input.
    """
    from mgattest.attest.digests import digest_target  # noqa: PLC0415
    from mgattest.errors import VerificationError  # noqa: PLC0415
    from mgattest.load import bundle_failure_verdict  # noqa: PLC0415
    from mgattest.policy.evaluate import evaluate  # noqa: PLC0415
    from mgattest.policy.gather import verify_attestations  # noqa: PLC0415

    target = digest_target(str(model))  # sha256:HEX / sha512:HEX instead of a path
    if target is not None and not bundles:
        raise InputError("verifying a digest needs --bundle", what="--bundle")
    options = normalize_options(model, options)
    bundles = [str(b) for b in bundles] or [options["default_bundle"]]
    if options.get("emit_vsa") and not options.get("vsa_key"):
        raise InputError("--emit-vsa needs a private key (--key PRIVATE.pem) to sign the "
                         "VSA with", what="emit-vsa")
    identity = options.get("identity")
    pol = effective_policy(str(policy) if policy else None, options)
    if target is None and not os.path.lexists(model):
        raise InputError(f"model {model} does not exist", what="model", where=str(model))
    try:
        atts = verify_attestations(bundles, pol, trusted_root=options.get("trusted_root"),
                                   identity=identity,
                                   certificate_chain=options.get("certificate_chain"))
    except VerificationError as exc:  # a bundle that does not verify denies, on the record
        atts = []
        check = _check_and_content(model, target, [], bundles, scan=False)[0]
        verdict = bundle_failure_verdict(pol, check, exc)
    else:
        verdict = evaluate(pol, atts, *_check_and_content(model, target, atts, bundles))
    if options.get("audit_log"):
        from mgattest.policy.audit import append_decision, audit_record  # noqa: PLC0415

        append_decision(options["audit_log"], audit_record(verdict, model=model,
                                                            bundles=list(bundles)))
    vsa_written = None
    if verdict.allowed and options.get("emit_vsa"):
        from mgattest.policy.vsa import write_vsa  # noqa: PLC0415

        write_vsa(options["emit_vsa"], verdict, atts, key_path=options["vsa_key"],
                  resource_uri=os.path.abspath(model), password=options.get("vsa_password"))
        vsa_written = options["emit_vsa"]
    notes = [f"{a.source}: {note}" for a in atts for note in a.notes]
    if as_json:
        out = {"ok": verdict.allowed, **verdict.to_dict()}
        if notes:
            out["notes"] = notes
        if vsa_written:
            out["vsa"] = vsa_written
        print(json.dumps(out, indent=2, sort_keys=False))
    else:
        from mgattest.policy.explain import print_verdict  # noqa: PLC0415

        print_verdict(verdict, verbose=bool(options.get("verbose")))
        for note in notes:  # evidence the bundles carry that nothing verified
            print(f"note: {note}")
        if vsa_written:
            print(f"verification summary attestation written to {vsa_written}")
    return 0 if verdict.allowed else 1


def _check_and_content(model: str, target: Any, atts: list[Any], bundles: list[str],
                       *, scan: bool = True) -> tuple[Any, Any]:
    """The model check and content reports of a path (streamed) or a digest target;
    ``scan=False`` skips the content scan of a path (its reports are then empty)."""
    from mgattest.policy.modelcheck import (  # noqa: PLC0415
        digest_model_check, stream_model_check, stream_scan)

    if target is not None:
        return digest_model_check(target, atts)
    # Stream the files (bounded memory): nothing is loaded here, so reading twice
    # (hash, then scan) opens no TOCTOU gap that matters to a yes/no answer.
    check, single = stream_model_check(model, atts, exclude=bundles)
    return check, stream_scan(model, check, single) if scan else {}


def normalize_options(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """Map ``mgattest verify``'s option names onto what run_verify uses.

    ``--key`` may list public keys (to verify bundles) and one private key (to sign the
    VSA with ``--emit-vsa``); each file is sorted by what it holds.
    """
    from mgattest.attest.verify import default_bundle_path  # noqa: PLC0415

    opts = dict(options)
    opts["default_bundle"] = str(default_bundle_path(model))
    public, private = list(opts.get("keys") or []), opts.get("vsa_key")
    for k in opts.get("key") or []:
        if _is_private_key(k):
            if private is not None and private != k:
                raise InputError("give one private --key for the VSA", what="--key")
            private = k
        else:
            public.append(k)
    opts["keys"], opts["vsa_key"] = [str(k) for k in public], private
    ident = opts.get("identity")
    if isinstance(ident, str) or opts.get("identity_regex"):
        ident = {"identity": ident if isinstance(ident, str) else None,
                 "identity_regex": opts.get("identity_regex"), "issuer": opts.get("issuer")}
    if isinstance(ident, dict):
        from mgattest.attest.certs import IdentityPolicy  # noqa: PLC0415

        ident = IdentityPolicy(**ident)
    opts["identity"] = ident
    if opts.get("certificate_chain") is not None and not isinstance(opts["certificate_chain"], bytes):
        from mgattest._files import read_bounded  # noqa: PLC0415

        opts["certificate_chain"] = read_bounded(opts["certificate_chain"], 1 << 20,
                                                 what="certificate chain")
    if opts.get("trusted_root") is None and opts.get("instance"):
        from mgattest.attest.trustroot import embedded_trusted_root  # noqa: PLC0415

        opts["trusted_root"] = embedded_trusted_root(str(opts["instance"]))
    return opts


def _is_private_key(path: Any) -> bool:
    from mgattest._files import read_bounded  # noqa: PLC0415
    from mgattest.attest.keys import MAX_KEY_FILE_BYTES  # noqa: PLC0415

    try:
        head = read_bounded(path, MAX_KEY_FILE_BYTES, what="key file")
    except InputError:
        return False
    return b"PRIVATE KEY-----" in head
