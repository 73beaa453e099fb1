"""SLSA Provenance v1 predicates, built as plain JSON.

Sources of facts: explicit options (builder id, build type, parameters, dependencies),
CI environment variables (``from_ci_env("github"|"gitlab")``) and installed ML framework
versions (read from package metadata; the frameworks are never imported).
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, NotRequired, TypedDict

from mgattest._jsonutil import JSONObject, JSONValue
from mgattest.attest.errors import ProvenanceInputError
from mgattest.attest._options import BuildInputs
from mgattest.errors import InputError
from mgattest.attest._statement import DIGEST_LENGTHS, Statement, parse_digest
from mgattest.attest._walk import compile_glob

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
DEFAULT_BUILD_TYPE = "https://mgattest.dev/buildtypes/model-training/v1"
DEFAULT_BUILDER_ID = "https://mgattest.dev/builders/local"

FRAMEWORK_PACKAGES = ("torch", "tensorflow", "jax", "jaxlib", "flax", "keras",
                      "transformers", "diffusers", "accelerate", "peft", "datasets",
                      "tokenizers", "safetensors", "numpy", "scipy", "scikit-learn",
                      "xgboost", "lightgbm", "onnx", "onnxruntime", "joblib")

_DIGEST_PREFIX_RE = re.compile(r"^([A-Za-z0-9_-]+):(.*)$", re.DOTALL)


class CISourceJSON(TypedDict):
    """The repository a CI job built: ``uri`` is ``git+REPOSITORY@REF``."""

    uri: str
    repository: str
    ref: str
    commit: str


class CIFacts(TypedDict, total=False):
    """What :func:`from_ci_env` reads from a CI job (each member optional: a caller may
    give only some). ``workflow``: the GitHub ``{ref, repository, path}`` or GitLab's
    config path; ``github``: GitHub's internal parameters."""

    builder_id: str
    build_type: str
    source: CISourceJSON
    invocation_id: str
    workflow: str | dict[str, str]
    github: dict[str, str]


class DependencyJSON(TypedDict):
    """A ``--dependency`` as a SLSA ResourceDescriptor: ``digest`` only when one was given."""

    name: str
    uri: str
    digest: NotRequired[dict[str, str]]


class BuildDefinitionJSON(TypedDict):
    """``buildDefinition`` of a SLSA Provenance v1 predicate as :func:`build_provenance`
    writes it; the parameters are the user's and the CI's, so arbitrary JSON."""

    buildType: str
    externalParameters: JSONObject
    internalParameters: NotRequired[JSONObject]
    resolvedDependencies: NotRequired[list[dict[str, object]]]


class BuilderJSON(TypedDict):
    """``runDetails.builder``."""

    id: str


class BuildMetadataJSON(TypedDict, total=False):
    """``runDetails.metadata`` (each member only when known; times in RFC 3339)."""

    invocationId: str
    startedOn: str
    finishedOn: str


class RunDetailsJSON(TypedDict):
    """``runDetails`` of a SLSA Provenance v1 predicate."""

    builder: BuilderJSON
    metadata: NotRequired[BuildMetadataJSON]
    byproducts: NotRequired[list[dict[str, object]]]


class ProvenanceJSON(TypedDict):
    """A SLSA Provenance v1 predicate as :func:`build_provenance` builds it. Predicates
    read from statements are not assumed to have this shape: readers check each member."""

    buildDefinition: BuildDefinitionJSON
    runDetails: RunDetailsJSON


def parse_param(text: str) -> tuple[str, JSONValue]:
    """``k=v`` → (k, v) with v parsed as JSON when it is valid JSON, else kept a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ProvenanceInputError(f"parameter {text!r} is not KEY=VALUE", what="--param")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def parse_params(items: Iterable[str]) -> JSONObject:
    """Several ``k=v`` parameters; a repeated key is an error."""
    out: dict[str, Any] = {}
    for item in items:
        key, value = parse_param(item)
        if key in out:
            raise ProvenanceInputError(f"parameter {key!r} given twice", what="--param")
        out[key] = value
    return out


def parse_dependency(text: str) -> DependencyJSON:
    """``NAME=URI@ALG:HEX`` (or ``NAME=URI`` without digest) → SLSA ResourceDescriptor.

    A suffix ``@ALG:...`` whose ALG is a digest algorithm, or whose value is hex, is a
    digest and must be well-formed (:func:`statement.parse_digest`): ``@sha256:abc`` is
    refused rather than signed as a pin, ``@sha265:...`` rather than kept in the URI.
    """

    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ProvenanceInputError(f"dependency {text!r} is not NAME=URI@ALG:HEX",
                                   what="--dependency")
    uri, digest = rest, None
    at = rest.rfind("@")
    if at > 0 and _looks_like_digest_suffix(rest[at + 1:]):
        uri = rest[:at]
        try:
            alg, hexval = parse_digest(rest[at + 1:], what="--dependency")
        except InputError as exc:
            raise ProvenanceInputError(f"dependency {name!r}: {exc.message}",
                                       what="--dependency", where=text) from None
        digest = {alg: hexval}
    descriptor: DependencyJSON = {"name": name, "uri": uri}
    if digest:
        descriptor["digest"] = digest
    return descriptor


def _looks_like_digest_suffix(suffix: str) -> bool:
    """``sha256:...``, ``gitCommit:...`` or ``anything:HEX`` (a digest, maybe mistyped);
    not ``host:path`` as in ``ssh://git@host:repo``."""

    match = _DIGEST_PREFIX_RE.match(suffix)
    if match is None:
        return False
    alg, value = match.group(1), match.group(2)
    known = alg in DIGEST_LENGTHS or alg.lower() in DIGEST_LENGTHS
    return known or re.fullmatch(r"[0-9a-fA-F]+", value) is not None


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_DIST_DIR = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._]*?)-(?P<version>[^-]+?)"
                       r"(?:-py[0-9.]+)?\.(?:dist-info|egg-info)$")


def framework_versions(packages: Iterable[str] = FRAMEWORK_PACKAGES,
                       search_path: Iterable[str] | None = None) -> dict[str, str]:
    """Installed versions of ML frameworks, read from the ``*.dist-info`` /
    ``*.egg-info`` directory names on ``sys.path`` (one listing per entry; nothing is
    imported or opened — what importlib.metadata would find, ~50× faster)."""

    wanted = {_normalize(p): p for p in packages}
    found: dict[str, str] = {}
    for entry in (sys.path if search_path is None else search_path):
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = _DIST_DIR.match(name)
            if match is None:
                continue
            key = _normalize(match.group("name"))
            if key in wanted and wanted[key] not in found:
                found[wanted[key]] = match.group("version")
    return dict(sorted(found.items()))


def _require(env: Mapping[str, str], names: Iterable[str], provider: str) -> dict[str, str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise ProvenanceInputError(
            f"--from-env {provider}: missing CI variable(s) {', '.join(missing)}",
            what="--from-env", where=", ".join(missing))
    return {n: env[n] for n in names}


GITHUB_BUILD_TYPE = "https://actions.github.io/buildtypes/workflow/v1"


def _github_env(env: Mapping[str, str]) -> CIFacts:
    """GitHub Actions facts in the shape of GITHUB_BUILD_TYPE (github.com/actions/buildtypes
    ``workflow/v1``, as ``actions/attest-build-provenance`` writes it)."""
    v = _require(env, ["GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_REF", "GITHUB_SHA",
                       "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_WORKFLOW_REF",
                       "GITHUB_EVENT_NAME", "GITHUB_REPOSITORY_ID",
                       "GITHUB_REPOSITORY_OWNER_ID"], "github")
    server, repo, ref = v["GITHUB_SERVER_URL"].rstrip("/"), v["GITHUB_REPOSITORY"], v["GITHUB_REF"]
    repository = f"{server}/{repo}"
    github = {"event_name": v["GITHUB_EVENT_NAME"],
              "repository_id": v["GITHUB_REPOSITORY_ID"],
              "repository_owner_id": v["GITHUB_REPOSITORY_OWNER_ID"]}
    if env.get("RUNNER_ENVIRONMENT"):
        github["runner_environment"] = env["RUNNER_ENVIRONMENT"]
    return {
        "builder_id": f"{server}/{v['GITHUB_WORKFLOW_REF']}",
        "build_type": GITHUB_BUILD_TYPE,
        "source": {"uri": f"git+{repository}@{ref}", "repository": repository, "ref": ref,
                   "commit": v["GITHUB_SHA"]},
        "invocation_id": (f"{repository}/actions/runs/{v['GITHUB_RUN_ID']}"
                          f"/attempts/{v['GITHUB_RUN_ATTEMPT']}"),
        "workflow": {"ref": ref, "repository": repository,
                     "path": _workflow_path(v["GITHUB_WORKFLOW_REF"], repo, ref)},
        "github": github,
    }


def _workflow_path(workflow_ref: str, repo: str, ref: str) -> str:
    """``owner/repo/.github/workflows/x.yml@refs/heads/main`` → ``.github/workflows/x.yml``
    (prefix ``repo/`` and suffix ``@ref`` removed; path and ref may contain ``@``)."""
    prefix, suffix = f"{repo}/", f"@{ref}"
    if not (workflow_ref.startswith(prefix) and workflow_ref.endswith(suffix)
            and len(workflow_ref) > len(prefix) + len(suffix)):
        raise ProvenanceInputError(
            f"--from-env github: GITHUB_WORKFLOW_REF {workflow_ref!r} is not "
            f"{prefix}PATH{suffix}", what="--from-env", where="GITHUB_WORKFLOW_REF")
    return workflow_ref[len(prefix):-len(suffix)]


def parse_timestamp(text: str, *, what: str) -> str:
    """An RFC 3339 time (``2026-01-31T12:00:00Z``, offsets allowed) → UTC ``...Z`` text,
    the form SLSA's ``startedOn``/``finishedOn`` take."""

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
                        text or ""):
        raise ProvenanceInputError(f"{what} {text!r} is not an RFC 3339 time with a zone "
                                   "(e.g. 2026-01-31T12:00:00Z)", what=what, where=text)
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00").replace(" ", "T"))
        utc = moment.astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:  # Feb 30; or year 1 with a +01:00 offset
        raise ProvenanceInputError(f"{what} {text!r} is not a valid time: {exc}",
                                   what=what, where=text) from None
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    # Not strftime: "%Y" drops the zero padding of years before 1000 on glibc.
    return (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
            f"{utc.second:02d}{fraction}Z")


def from_ci_env(provider: str, env: Mapping[str, str] | None = None) -> CIFacts:
    """Builder id, source repository/ref/commit and invocation id from CI variables.

    Returns ``{"builder_id", "source": {"uri", "ref", "commit"}, "invocation_id",
    "build_type", "workflow"}`` (GitHub: ``workflow`` is ``{ref, repository, path}`` and
    ``github`` holds the internal parameters); raises naming every missing variable.
    """
    env = os.environ if env is None else env
    if provider == "github":
        return _github_env(env)
    if provider == "gitlab":
        v = _require(env, ["CI_SERVER_URL", "CI_PROJECT_URL", "CI_COMMIT_REF_NAME",
                           "CI_COMMIT_SHA", "CI_JOB_ID"], provider)
        ref = v["CI_COMMIT_REF_NAME"]
        if env.get("CI_COMMIT_TAG"):
            ref = f"refs/tags/{ref}"
        elif not ref.startswith("refs/"):
            ref = f"refs/heads/{ref}"
        config = env.get("CI_CONFIG_PATH", ".gitlab-ci.yml")
        return {
            "builder_id": f"{v['CI_PROJECT_URL']}//{config}@{ref}",
            "build_type": "https://gitlab.com/gitlab-org/gitlab/-/blob/master/ci/buildtypes/v1",
            "source": {"uri": f"git+{v['CI_PROJECT_URL']}@{ref}",
                       "repository": v["CI_PROJECT_URL"], "ref": ref,
                       "commit": v["CI_COMMIT_SHA"]},
            "invocation_id": f"{v['CI_PROJECT_URL']}/-/jobs/{v['CI_JOB_ID']}",
            "workflow": config,
        }
    raise ProvenanceInputError(f"--from-env must be github or gitlab, not {provider!r}",
                               what="--from-env")


MGATTEST_PARAMETERS = "mgattest"


def digest_options(ignore: Iterable[str]) -> dict[str, dict[str, list[str]]] | None:
    """``internalParameters`` entry recording the user's ignore globs, so a verifier
    skips exactly the files the signer chose to leave out (sorted: deterministic)."""
    patterns = sorted(set(ignore))
    return {MGATTEST_PARAMETERS: {"ignore": patterns}} if patterns else None


def signed_ignores(statement: Statement | None) -> list[str]:
    """The ignore globs a SLSA provenance statement recorded with :func:`digest_options`.

    Anything malformed there is ignored rather than trusted: the list only ever widens
    what verification skips when it is a short list of valid globs.
    """

    if not statement or statement.get("predicateType") != SLSA_PROVENANCE_V1:
        return []
    predicate: Any = statement.get("predicate")  # parsed JSON; the lookups below may fail
    try:
        recorded = predicate["buildDefinition"]["internalParameters"][MGATTEST_PARAMETERS]["ignore"]
    except (KeyError, TypeError):
        return []
    if not isinstance(recorded, list) or len(recorded) > 256:
        return []
    out = []
    for pattern in recorded:
        if not isinstance(pattern, str) or not pattern or len(pattern) > 1024:
            return []
        try:
            compile_glob(pattern)
        except Exception:  # noqa: BLE001 - an unusable pattern is simply not honoured
            return []
        out.append(pattern)
    return out


def parse_build_times(started_on: str | None, finished_on: str | None
                      ) -> tuple[str | None, str | None]:
    """``--started-on``/``--finished-on`` as SLSA times; the start may not follow the end."""
    started = parse_timestamp(started_on, what="--started-on") if started_on else None
    finished = parse_timestamp(finished_on, what="--finished-on") if finished_on else None
    if started and finished and started > finished:
        raise ProvenanceInputError(f"--started-on {started} is after --finished-on {finished}",
                                   what="--started-on")
    return started, finished


def _github_external(ci: Mapping[str, Any], parameters: Mapping[str, Any] | None
                     ) -> dict[str, Any]:
    """externalParameters of GITHUB_BUILD_TYPE: ``workflow: {ref, repository, path}``,
    and the user's ``--param`` values as ``inputs`` (as workflow_dispatch inputs are)."""
    workflow = ci.get("workflow")
    if not isinstance(workflow, Mapping):
        raise ProvenanceInputError(f"buildType {GITHUB_BUILD_TYPE} describes a GitHub "
                                   "Actions workflow: sign with --from-env github",
                                   what="--build-type")
    external: dict[str, Any] = {"workflow": dict(workflow)}
    if parameters:
        external["inputs"] = dict(parameters)
    return external


def _generic_external(ci: Mapping[str, Any], parameters: Mapping[str, Any] | None
                      ) -> dict[str, Any]:
    """externalParameters of other build types: the parameters, the source, the workflow."""
    external: dict[str, Any] = dict(parameters or {})
    source = ci.get("source")
    if source:
        external.setdefault("source", {"uri": source["uri"], "ref": source["ref"]})
        workflow = ci.get("workflow")
        if isinstance(workflow, str):
            external.setdefault("workflow", workflow)
        elif isinstance(workflow, Mapping):
            external.setdefault("workflow", dict(workflow))
    return external


def build_provenance(inputs: BuildInputs | None = None) -> ProvenanceJSON:
    """A SLSA Provenance v1 predicate as a plain dict (deterministic for equal inputs).

    Explicit ``builder_id``/``build_type`` win over CI-derived ones. Framework versions
    go to ``internalParameters.frameworks``; the source commit (from CI) becomes a
    resolved dependency. See :class:`~mgattest.attest._options.BuildInputs`.
    """
    inputs = inputs or BuildInputs()
    builder_id, build_type, parameters = inputs.builder_id, inputs.build_type, inputs.parameters
    dependencies, ci, frameworks = inputs.dependencies, inputs.ci, inputs.frameworks
    started_on, finished_on = inputs.started_on, inputs.finished_on
    invocation_id, internal_parameters = inputs.invocation_id, inputs.internal_parameters
    byproducts = inputs.byproducts
    ci = ci or {}
    resolved = [dict(d) for d in dependencies]
    build_type = build_type or ci.get("build_type") or DEFAULT_BUILD_TYPE
    if build_type == GITHUB_BUILD_TYPE:
        external = _github_external(ci, parameters)
    else:
        external = _generic_external(ci, parameters)
    source = ci.get("source")
    if source:
        # The source commit, pinned: buildType workflow/v1 names it exactly so.
        pinned: dict[str, object] = {"uri": source["uri"], "digest": {"gitCommit": source["commit"]}}
        if build_type != GITHUB_BUILD_TYPE:
            pinned["name"] = "source"
        resolved.insert(0, pinned)
    build_definition: BuildDefinitionJSON = {"buildType": build_type,
                                        "externalParameters": external}
    internal = dict(internal_parameters or {})
    if build_type == GITHUB_BUILD_TYPE and ci.get("github"):
        internal["github"] = dict(ci["github"])
    if frameworks:
        internal["frameworks"] = dict(sorted(frameworks.items()))
    if internal:
        build_definition["internalParameters"] = internal
    if resolved:
        build_definition["resolvedDependencies"] = resolved
    metadata: BuildMetadataJSON = {}
    inv = invocation_id or ci.get("invocation_id")
    if inv:
        metadata["invocationId"] = inv
    if started_on:
        metadata["startedOn"] = started_on
    if finished_on:
        metadata["finishedOn"] = finished_on
    run_details: RunDetailsJSON = {"builder": {"id": builder_id or ci.get("builder_id")
                                               or DEFAULT_BUILDER_ID}}
    if metadata:
        run_details["metadata"] = metadata
    byproduct_list = [dict(b) for b in byproducts]
    if byproduct_list:
        run_details["byproducts"] = byproduct_list
    return {"buildDefinition": build_definition, "runDetails": run_details}
