"""Checks of ``rules[].attestations[]``: predicate type, signers, SLSA Provenance v1 fields.

Source repository and ref are read from the provenance (GitHub Actions
``externalParameters.workflow``, a generic ``externalParameters.source``, or the first
``git+`` resolved dependency) and, for keyless signers, must equal the certificate's
``source_repository_uri`` / ``source_repository_ref`` extensions: a provenance cannot
claim a repository its signer's certificate does not vouch for.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Protocol, Sequence

from mgattest.attest import VerifiedAttestation
from mgattest._jsonutil import JSONObject, JSONValue
from mgattest.policy._model import (
    SLSA_PROVENANCE_V02,
    AttestationSpec,
    Policy,
    ProvenanceSpec,
    Rule,
    SignedBy,
    parse_time,
)
from mgattest.policy._verdict import FAIL, PASS, Check


class JudgedFile(Protocol):
    """What a per-file clause reads of a model file (the evaluator's file records)."""

    @property
    def name(self) -> str:
        """The file's name, as in statement subjects."""

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the file (``sha256:?`` when unknown)."""


SignedByOutcome = Callable[[Policy, SignedBy, list[VerifiedAttestation], int],
                           tuple[bool, str, JSONObject]]
"""The evaluator's ``signedBy`` judgement: (ok, reason, evidence) for attestations."""

# Tags are numbers on the wire: [0-9], as Go's \d in slsa-verifier, not Python's \d
# (which also matches non-ASCII digits such as '٣', and int() reads them).
_SEMVER_TAG = re.compile(r"v?([0-9]+)\.([0-9]+)\.([0-9]+)(?:[-+].*)?")
_DATASET_ROLES = {"dataset", "training-data", "training_data", "data"}
_BASE_MODEL_ROLES = {"base-model", "base_model", "basemodel", "model"}
_DIGEST_RE = re.compile(r"[0-9a-fA-F]{40,128}")


def attestation_checks(policy: Policy, rule: Rule, index: int, spec: AttestationSpec,
                       files: Sequence[JudgedFile],
                       qualified: dict[str, list[VerifiedAttestation]],
                       now: int, signed_by_outcome: SignedByOutcome) -> list[Check]:
    """One Check: for every file, some attestation of the type satisfies every expectation."""
    clause = f"attestations[{index}]"
    evidence, failures = [], []
    memo: dict[int, tuple[list[str], dict[str, Any]]] = {}
    for f in files:
        candidates = [a for a in qualified[f.name] if a.predicate_type in spec.accepted_types]
        if not candidates:
            failures.append(f"{f.name}: no verified {spec.predicate_type} attestation")
            evidence.append({"file": f.name, "digest": f.digest, "ok": False,
                             "reason": "missing"})
            continue
        best: list[str] | None = None
        for att in candidates:
            if id(att) not in memo:  # one attestation judged once, whatever file it covers
                memo[id(att)] = _problems(policy, spec, att, now, signed_by_outcome)
            problems, fields = memo[id(att)]
            evidence.append({"file": f.name, "digest": f.digest, "attestation": att.source,
                             "signer": att.signer.identity or att.signer.key_fingerprint,
                             "ok": not problems, "problems": problems, "fields": fields})
            if not problems:
                best = []
                break
            if best is None or len(problems) < len(best):
                best = problems
        if best:
            failures.append(f"{f.name}: " + "; ".join(best))
    if failures:
        return [Check(rule.id, clause, FAIL, "; ".join(failures[:3]), evidence)]
    what = spec.predicate_type + (" with the expected provenance" if spec.provenance else "")
    return [Check(rule.id, clause, PASS, f"{what}", evidence)]


def _problems(policy: Policy, spec: AttestationSpec, att: VerifiedAttestation, now: int,
              signed_by_outcome: SignedByOutcome) -> tuple[list[str], dict[str, Any]]:
    problems: list[str] = []
    fields: dict[str, Any] = {}
    if spec.signed_by is not None:
        ok, reason, _ = signed_by_outcome(policy, spec.signed_by, [att], now)
        if not ok:
            problems.append(f"signedBy: {reason}")
    if spec.provenance is not None:
        problems.extend(check_provenance(spec.provenance, att, now, fields))
    return problems, fields


def source_of(predicate: JSONObject) -> tuple[str | None, str | None]:
    """(repository URI, git ref) claimed by an SLSA v1 or v0.2 provenance, normalised.

    v0.2: ``invocation.configSource.uri`` (``git+https://github.com/o/r@refs/tags/v1``),
    which slsa-verifier calls the trigger URI.
    """
    config_source = _dict(_dict(predicate.get("invocation")).get("configSource"))
    if "buildDefinition" not in predicate and isinstance(config_source.get("uri"), str):
        return _split_git_uri(config_source["uri"])
    bd = _dict(predicate.get("buildDefinition"))
    ext = _dict(bd.get("externalParameters"))
    wf = _dict(ext.get("workflow"))
    if isinstance(wf.get("repository"), str):
        return normalize_repo(wf["repository"]), wf.get("ref") if isinstance(wf.get("ref"), str) else None
    src = ext.get("source")
    if isinstance(src, str):
        return _split_git_uri(src)
    if isinstance(src, dict) and isinstance(src.get("uri"), str):
        repo, ref = _split_git_uri(src["uri"])
        return repo, src.get("ref") if isinstance(src.get("ref"), str) else ref
    for dep in bd.get("resolvedDependencies") or []:
        if isinstance(dep, dict) and isinstance(dep.get("uri"), str) and dep["uri"].startswith("git+"):
            return _split_git_uri(dep["uri"])
    return None, None


def normalize_repo(uri: str) -> str:
    """``git+https://github.com/a/b.git`` → ``https://github.com/a/b``."""
    if uri.startswith("git+"):
        uri = uri[4:]
    if uri.endswith(".git"):
        uri = uri[:-4]
    return uri.rstrip("/")


def _split_git_uri(uri: str) -> tuple[str, str | None]:
    base = uri[4:] if uri.startswith("git+") else uri
    ref = None
    if "@" in base.split("://", 1)[-1]:
        base, ref = base.rsplit("@", 1)
    return normalize_repo(base), ref


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def check_provenance(spec: ProvenanceSpec, att: VerifiedAttestation, now: int,
                     fields: JSONObject) -> list[str]:
    """Every way *att*'s SLSA v1 predicate falls short of *spec* (empty: conforms)."""
    pred = att.predicate if isinstance(att.predicate, dict) else {}
    bd = _dict(pred.get("buildDefinition"))
    rd = _dict(pred.get("runDetails"))
    v02 = att.predicate_type == SLSA_PROVENANCE_V02
    problems = []
    builder_id = (_dict(pred.get("builder")) if v02 else _dict(rd.get("builder"))).get("id")
    fields["builderId"] = builder_id
    if spec.builder_id is not None and not spec.builder_id.matches(builder_id):
        problems.append(f"builderId {builder_id!r} is not {spec.builder_id.text}")
    if spec.builder_bound_to_certificate:
        problems.extend(builder_identity_problems(builder_id, att))
    build_type = pred.get("buildType") if v02 else bd.get("buildType")
    fields["buildType"] = build_type
    if spec.build_type is not None and not spec.build_type.matches(build_type):
        problems.append(f"buildType {build_type!r} is not {spec.build_type.text}")

    wants_source = any(x is not None for x in (spec.source_repository, spec.source_ref,
                                               spec.source_tag, spec.source_versioned_tag,
                                               spec.source_branch))
    repo, ref = source_of(pred) if wants_source else (None, None)
    if wants_source:
        fields["sourceRepository"], fields["sourceRef"] = repo, ref
        problems.extend(_source_consistency_problems(pred, v02, repo, ref))
    tag_ref, branch_ref = git_refs(pred, v02, ref)
    if spec.source_repository is not None and not (
            spec.source_repository.matches(repo)
            or (repo is not None and spec.source_repository.matches("git+" + repo))):
        problems.append(f"source repository {repo!r} is not {spec.source_repository.text}")
    if spec.source_ref is not None and not spec.source_ref.matches(ref):
        problems.append(f"source ref {ref!r} is not {spec.source_ref.text}")
    if spec.source_tag is not None and tag_ref != f"refs/tags/{spec.source_tag}":
        problems.append(f"source ref {tag_ref or ref!r} is not tag {spec.source_tag!r}")
    if spec.source_branch is not None and branch_ref != f"refs/heads/{spec.source_branch}":
        problems.append(f"source ref {branch_ref or ref!r} is not branch {spec.source_branch!r}")
    if spec.source_versioned_tag is not None and not versioned_tag_ok(spec.source_versioned_tag,
                                                                      tag_ref):
        problems.append(f"source ref {tag_ref or ref!r} is not a semver tag compatible with "
                        f"{spec.source_versioned_tag!r}")
    if v02:
        problems.extend(_v02_problems(spec, pred, fields))
    if wants_source and spec.bind_to_certificate and att.signer.kind == "certificate":
        cert_repo = att.signer.extensions.get("source_repository_uri")
        cert_ref = att.signer.extensions.get("source_repository_ref")
        fields["certificateSourceRepository"], fields["certificateSourceRef"] = cert_repo, cert_ref
        if cert_repo is None or repo is None or normalize_repo(cert_repo) != repo:
            problems.append(f"provenance source {repo!r} is not bound to the certificate's "
                            f"source_repository_uri {cert_repo!r}")
        elif ref is not None and cert_ref is not None and cert_ref != ref:
            problems.append(f"provenance ref {ref!r} differs from the certificate's "
                            f"source_repository_ref {cert_ref!r}")

    params = _dict(_dict(pred.get("invocation")).get("parameters")) if v02 \
        else _dict(bd.get("externalParameters"))
    for key, expected in spec.param_values.items():
        if key not in params or params[key] != expected:
            problems.append(f"externalParameters.{key} is {params.get(key)!r}, expected {expected!r}")
    for key, allowed in spec.param_allowed.items():
        if key in params and params[key] not in allowed:
            problems.append(f"externalParameters.{key}={params[key]!r} is not in the allow-list")
    if spec.reject_unknown_params:
        known = set(spec.param_values) | set(spec.param_allowed)
        unknown = sorted(set(params) - known)
        if unknown:
            problems.append(f"unexpected externalParameters: {', '.join(unknown)}")

    deps = _dependencies(pred, v02)
    if spec.dependencies_pinned:
        for i, dep in enumerate(deps):
            digest = dep.get("digest")
            if not isinstance(digest, dict) or not digest or not all(
                    isinstance(v, str) and _DIGEST_RE.fullmatch(v) for v in digest.values()):
                problems.append(f"resolvedDependencies[{i}] ({dep.get('uri') or dep.get('name')!r}) "
                                "is not pinned by digest")
    for label, roles, matchers in (("dataset", _DATASET_ROLES, spec.datasets),
                                   ("base model", _BASE_MODEL_ROLES, spec.base_models)):
        if not matchers:
            continue
        chosen = [d for d in deps if _role(d) in roles]
        if not chosen:
            problems.append(f"the provenance declares no {label} (resolvedDependencies "
                            f"annotations.role)")
        for dep in chosen:
            uri = dep.get("uri")
            if not any(m.matches(uri) for m in matchers):
                problems.append(f"{label} {uri!r} matches no allowed pattern")

    if spec.max_age_seconds is not None:
        when = _time_of(spec.max_age_from, rd, att)
        fields["ageFrom"] = spec.max_age_from
        if when is None:
            problems.append(f"maxAge: the attestation has no {spec.max_age_from}"
                            + (" verified by a SET or RFC 3161 timestamp"
                               if spec.max_age_from == "logTime" else ""))
        elif now - when > spec.max_age_seconds:
            problems.append(f"maxAge: {spec.max_age_from} is {(now - when) // 86400} day(s) old "
                            f"(limit {spec.max_age_seconds // 86400} day(s))")
        elif when - now > 300:
            problems.append(f"maxAge: {spec.max_age_from} lies in the future")
    return problems


def _role(dep: dict[str, Any]) -> str | None:
    """A dependency's role: ``annotations.role|type|kind``, else inferred from its name
    (``dataset``, ``dataset:train``, ``base-model`` ... as ``mgattest sign --dependency``
    writes them)."""
    ann = _dict(dep.get("annotations"))
    for key in ("role", "type", "kind"):
        value = ann.get(key)
        if isinstance(value, str):
            return value.lower()
    name = dep.get("name")
    if isinstance(name, str):
        if name.lower().startswith(("dataset", "data:", "training-data", "training_data")):
            return "dataset"
        if name.lower().startswith(("base-model", "base_model", "basemodel")):
            return "base-model"
    return None


def _time_of(source: str, rd: dict[str, Any], att: VerifiedAttestation) -> int | None:
    if source == "logTime":
        # Only a verified time (SET-backed integrated time, RFC 3161 timestamp): a
        # bundle's bare integratedTime is whatever its author wrote.
        verified = att.signing_time
        return verified.seconds if verified is not None else None
    finished = _dict(rd.get("metadata")).get("finishedOn")
    if not isinstance(finished, str):
        return None
    try:
        return parse_time(finished)
    except ValueError:
        return None


def versioned_tag_ok(expected: str, ref: str | None) -> bool:
    """slsa-verifier ``--source-versioned-tag``: semver tag whose given parts match."""
    if ref is None or not ref.startswith("refs/tags/"):
        return False
    m = _SEMVER_TAG.fullmatch(ref[len("refs/tags/"):])
    if m is None:
        return False
    want = [int(x) for x in expected.lstrip("v").split(".")]
    have = [int(x) for x in m.groups()]
    return have[:len(want)] == want


# --- slsa-verifier's rules ------------------------------------------------------------

GITHUB = "https://github.com/"
SLSA_GENERATOR_WORKFLOWS = GITHUB + "slsa-framework/slsa-github-generator/.github/workflows/"
# The delegators of slsa-github-generator's BYOB framework: they sign the provenance of
# the trusted reusable workflow (TRW) that called them, whose id is the builder id.
DELEGATOR_WORKFLOWS = (SLSA_GENERATOR_WORKFLOWS + "delegator_generic_slsa3.yml",
                       SLSA_GENERATOR_WORKFLOWS + "delegator_lowperms-generic_slsa3.yml")
# npm CLI provenance: the builder is the runner; the certificate is the user's workflow.
NPM_CLI_BUILDERS = (GITHUB + "actions/runner/github-hosted",
                    GITHUB + "actions/runner/self-hosted", GITHUB + "actions/runner")
_BUILDER_TAG = re.compile(r"refs/tags/v[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?")


def is_delegator(workflow: str | None) -> bool:
    """Whether a certificate's workflow identity is a BYOB delegator at a release tag."""
    if not isinstance(workflow, str) or "@" not in workflow:
        return False
    return workflow.rsplit("@", 1)[0] in DELEGATOR_WORKFLOWS and _pinned_to_release(workflow)


def _pinned_to_release(uri: str) -> bool:
    """Whether ``uri`` ends in ``@refs/tags/vX.Y.Z`` (a release tag, maybe a pre-release)."""
    ref = uri.rsplit("@", 1)[1] if "@" in uri else ""
    return _BUILDER_TAG.fullmatch(ref) is not None


def builder_identity_problems(builder_id: JSONValue, att: VerifiedAttestation) -> list[str]:
    """slsa-verifier's rule for which certificate identity may vouch for which builder.

    * a BYOB delegator (slsa-github-generator's ``delegator_*_slsa3.yml`` at a vX.Y.Z
      tag) vouches for the builder id in the provenance, which must itself be pinned to
      a vX.Y.Z tag;
    * npm CLI provenance names the runner as builder; the certificate is the package's
      own workflow, bound through the source repository (``sourceRepository``);
    * any other certificate is the builder: its workflow (``build_signer_uri``) at a
      vX.Y.Z tag must equal the provenance's builder id.
    A key signer has no identity to bind: nothing to check here.
    """
    if att.signer.kind != "certificate":
        return []
    workflow = att.signer.extensions.get("build_signer_uri") or att.signer.identity
    if not isinstance(builder_id, str) or not builder_id:
        return ["the provenance names no builder id"]
    if is_delegator(workflow):
        if not _pinned_to_release(builder_id):
            return [f"builder id {builder_id!r} vouched for by delegator {workflow!r} is not "
                    "pinned to a vX.Y.Z tag"]
        return []
    if builder_id in NPM_CLI_BUILDERS:
        hosted = att.signer.extensions.get("runner_environment")
        if builder_id.endswith(("/github-hosted", "/self-hosted")) and hosted is not None \
                and not builder_id.endswith("/" + hosted):
            return [f"builder id {builder_id!r} disagrees with the certificate's runner "
                    f"environment {hosted!r}"]
        return []
    if workflow != builder_id:
        return [f"builder id {builder_id!r} is not the signing certificate's workflow "
                f"{workflow!r}"]
    if not _pinned_to_release(builder_id):
        return [f"builder {builder_id!r} is not pinned to a vX.Y.Z tag"]
    return []


def _dependencies(pred: dict[str, Any], v02: bool) -> list[dict[str, Any]]:
    """The provenance's dependencies: v0.2 ``materials``, v1 ``resolvedDependencies``."""
    deps = pred.get("materials") if v02 else _dict(pred.get("buildDefinition")).get(
        "resolvedDependencies")
    return [d for d in deps or [] if isinstance(d, dict)]


def _material_uris(pred: dict[str, Any], v02: bool) -> list[Any]:
    return [d.get("uri") for d in _dependencies(pred, v02)]


def _source_consistency_problems(pred: dict[str, Any], v02: bool, repo: str | None,
                                 ref: str | None) -> list[str]:
    """v0.2 (slsa-verifier): the first material is the source the trigger names."""
    if not v02 or repo is None:
        return []
    uris = _material_uris(pred, v02)
    if not uris or not isinstance(uris[0], str):
        return ["the provenance lists no source material (materials[0].uri)"]
    m_repo, m_ref = _split_git_uri(uris[0])
    if m_repo != repo or (m_ref is not None and ref is not None and m_ref != ref):
        return [f"materials[0].uri {uris[0]!r} is not the configSource {repo!r}@{ref!r}"]
    return []


def _env(pred: dict[str, Any], v02: bool) -> tuple[dict[str, Any], bool]:
    """The GitHub environment a provenance records, and whether its keys are upper case."""
    if v02:
        return _dict(_dict(pred.get("invocation")).get("environment")), False
    return _dict(_dict(pred.get("buildDefinition")).get("internalParameters")), True


def git_refs(pred: JSONObject, v02: bool, ref: str | None) -> tuple[str | None, str | None]:
    """(tag ref, branch ref) as slsa-verifier reads them: ``github_ref`` by
    ``github_ref_type`` from the recorded environment, else the source ref."""
    env, upper = _env(pred, v02)

    def key(name: str) -> str:
        return name.upper() if upper else name

    ref_type, env_ref = env.get(key("github_ref_type")), env.get(key("github_ref"))
    if ref_type == "tag" and isinstance(env_ref, str):
        base = env.get(key("github_base_ref"))
        return env_ref, base if isinstance(base, str) and base else None
    if ref_type == "branch" and isinstance(env_ref, str):
        return None, env_ref
    if ref is None:
        return None, None
    return (ref, None) if ref.startswith("refs/tags/") else (None, ref)


def _v02_problems(spec: ProvenanceSpec, pred: dict[str, Any],
                  fields: dict[str, Any]) -> list[str]:
    """``configSource`` (uri, digest, entryPoint) and ``materials`` expectations."""
    problems = []
    config_source = _dict(_dict(pred.get("invocation")).get("configSource"))
    fields["configSource"] = config_source
    for key, matcher in (("uri", spec.config_source_uri),
                         ("entryPoint", spec.config_source_entry_point)):
        if matcher is not None and not matcher.matches(config_source.get(key)):
            problems.append(f"configSource.{key} {config_source.get(key)!r} is not "
                            f"{matcher.text}")
    digest = _dict(config_source.get("digest"))
    for alg, value in spec.config_source_digest.items():
        if str(digest.get(alg, "")).lower() != value.lower():
            problems.append(f"configSource.digest.{alg} is {digest.get(alg)!r}, "
                            f"expected {value!r}")
    uris = _material_uris(pred, True)
    for matcher in spec.materials:
        if not any(matcher.matches(u) for u in uris):
            problems.append(f"no material matches {matcher.text}")
    return problems
