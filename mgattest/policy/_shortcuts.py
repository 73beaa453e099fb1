"""The policy that ``mgattest verify``'s slsa-verifier-style expectations describe.

Pure functions from :class:`ShortcutOptions` to policy documents: ``--builder-id``,
``--source-uri``, ``--source-tag``, ``--source-versioned-tag`` and ``--source-branch``
become a generated rule; given without ``--identity``, the signer must BE that builder:
the certificate's workflow identity (SAN and build_signer_uri) matches the builder id
and its source_repository_uri matches the source URI, as slsa-verifier checks. ``--key``
(without a policy file) becomes a rule that a listed key signs every file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mgattest.errors import InputError
from mgattest._jsonutil import JSONObject
from mgattest.policy._loader import load_policy, policy_from_bytes, read_policy_bytes
from mgattest.policy._matching import MatcherSpec
from mgattest.policy._model import SLSA_PROVENANCE_TYPES, Policy
from mgattest.policy._provenance import DELEGATOR_WORKFLOWS, NPM_CLI_BUILDERS
from mgattest.policy._yamlpos import parse_yaml

if TYPE_CHECKING:
    from mgattest.attest import IdentityPolicy

__all__ = ["GITHUB_ISSUER", "SHORTCUTS", "ShortcutOptions", "builder_matcher",
           "builder_signer", "effective_policy", "shortcut_rule", "source_uri"]


@dataclass(frozen=True)
class ShortcutOptions:
    """The expectations given on the command line instead of (or beside) a policy file.

    ``keys`` are public key paths (trusted only when there is no policy file);
    ``identity`` is the ``--identity``/``--issuer`` check, which verify_bundle makes
    (its presence also means the builder does not have to be the signer).
    """

    builder_id: str | None = None
    source_uri: str | None = None
    source_tag: str | None = None
    source_versioned_tag: str | None = None
    source_branch: str | None = None
    issuer: str | None = None
    identity: IdentityPolicy | None = None
    keys: tuple[str, ...] = ()
    allow_unlogged: bool = False
    ignore: tuple[str, ...] = ()
    allow_unsigned_files: bool = False

    def given(self) -> list[str]:
        """The names of the slsa-verifier-style expectations that were given."""
        return [name for name in SHORTCUTS if getattr(self, name)]


GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
SHORTCUTS = ("builder_id", "source_uri", "source_tag", "source_versioned_tag", "source_branch")


def builder_matcher(builder_id: str) -> MatcherSpec:
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


def shortcut_rule(options: ShortcutOptions, *, signers: list[str]) -> JSONObject:
    """The rule the shortcut options describe; the provenance must be signed by one of
    ``signers`` (any verified signer when empty, i.e. with ``--identity``)."""
    prov: dict[str, Any] = {}
    if options.builder_id:
        prov["builderId"] = builder_matcher(options.builder_id)
    if options.source_uri:
        prov["sourceRepository"] = source_uri(options.source_uri)
    for value, key in ((options.source_tag, "sourceTag"),
                       (options.source_versioned_tag, "sourceVersionedTag"),
                       (options.source_branch, "sourceBranch")):
        if value:
            prov[key] = value
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


def _with_cli_file_options(rule: dict[str, Any], options: ShortcutOptions) -> dict[str, Any]:
    """*rule* with ``--allow-unlogged``, ``--ignore`` and ``--allow-unsigned-files``."""
    if options.allow_unlogged:
        rule["transparencyLog"] = {"require": "optional"}
    files: dict[str, Any] = {}
    if options.ignore:
        files["ignore"] = [str(g) for g in options.ignore]
    if options.allow_unsigned_files:
        files["unsigned"] = "allow"
    if files:
        rule["files"] = files
    return rule


def builder_signer(options: ShortcutOptions) -> JSONObject:
    """The keyless signers slsa-verifier accepts for a builder id.

    The builder's own workflow, or a BYOB delegator of slsa-github-generator (which
    vouches for the builder id written in the provenance — the provenance check then
    applies the delegation rule); for npm CLI provenance (builder = the GitHub runner),
    the package's own workflow in the ``--source-uri`` repository.
    """
    builder = options.builder_id
    if not builder:
        raise InputError("a builder signer needs --builder-id", what="--builder-id")
    issuer = options.issuer or GITHUB_ISSUER
    extensions: dict[str, Any] = {}
    if options.source_uri:
        extensions["sourceRepository"] = source_uri(options.source_uri)
    if builder.split("@", 1)[0] in NPM_CLI_BUILDERS:
        if not options.source_uri:
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


def effective_policy(policy_path: str | None, options: ShortcutOptions) -> Policy:
    """The policy file, extended (or replaced, when no file) by the shortcut options."""
    wanted = options.given()
    if policy_path and not wanted:
        return load_policy(policy_path)
    keys = list(options.keys)
    if not wanted and not policy_path and not keys and options.identity is None:
        raise InputError("give --policy, --key or --identity, or at least one of "
                         "--builder-id, --source-uri, --source-tag, --source-versioned-tag, "
                         "--source-branch", what="policy")
    if wanted and not options.builder_id and not options.source_uri:
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
    if options.identity is None and options.builder_id:
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
