"""Load a policy file: parse YAML with positions, validate the schema, compile.

``load_policy(path)`` raises :class:`PolicyError` naming ``file:line`` of the first
problem; ``lint_policy(path)`` returns every problem found.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from mgattest._files import read_bounded
from mgattest.attest import check_public_key
from mgattest.tlog import parse_vkey
from mgattest.errors import InputError, MgattestError
from mgattest._jsonutil import JSONObject
from mgattest.policy._cel import CelCompileError, compile_cel
from mgattest.policy.errors import PolicyError
from mgattest.policy._matching import Matcher, compile_matcher, glob_to_regex
from mgattest.policy._model import (
    EXTENSION_NAMES,
    SLSA_PROVENANCE_TYPES,
    SLSA_PROVENANCE_V02,
    AttestationSpec,
    CelCheck,
    LineageRequirement,
    LineageSpec,
    LogRequirement,
    Policy,
    ProvenanceSpec,
    RootSpec,
    Rule,
    SignedBy,
    Signer,
    TrustedKey,
    TrustedLogSpec,
    TrustedWitness,
    Waiver,
    WitnessRequirement,
    parse_duration,
    parse_size,
    parse_time,
)
from mgattest.policy._yamlpos import MAX_POLICY_BYTES, Located, parse_yaml

BUILTIN_ROOTS = {
    "sigstore-public-good": "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev",
    "sigstore-staging": "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev",
}


@dataclass(frozen=True)
class Issue:
    """One problem in a policy file."""

    where: str  # file:line
    message: str
    kind: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


def read_policy_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a policy file, bounded in size."""
    data = read_bounded(path, MAX_POLICY_BYTES, what="policy file", error=PolicyError)
    return data


def load_policy(path: str | os.PathLike[str], *, now: int | None = None) -> Policy:
    """Read, validate and compile the policy at *path*. Raises PolicyError on any error."""
    data = read_policy_bytes(path)
    return policy_from_bytes(data, source=str(path), base_dir=Path(path).resolve().parent)


def policy_from_bytes(data: bytes, *, source: str = "<policy>",
                      base_dir: str | os.PathLike[str] | None = None) -> Policy:
    """Compile a policy from its bytes; relative paths resolve against *base_dir*."""
    located = parse_yaml(data, source)
    issues: list[Issue] = []
    policy = _compile(located, data, Path(base_dir or os.getcwd()), issues)
    errors = [i for i in issues if i.kind == "error"]
    if errors or policy is None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s); run `mgattest policy lint`)" \
            if len(errors) > 1 else ""
        raise PolicyError(first.message + more, what="policy.invalid", where=first.where,
                          problems=[str(i) for i in errors])
    return policy


def lint_policy(path: str | os.PathLike[str]) -> list[Issue]:
    """Every schema and semantic problem of the policy at *path* (empty list: clean)."""
    try:
        data = read_policy_bytes(path)
        located = parse_yaml(data, str(path))
    except PolicyError as exc:
        return [Issue(exc.where or str(path), exc.message)]
    issues: list[Issue] = []
    _compile(located, data, Path(path).resolve().parent, issues)
    return issues


# --------------------------------------------------------------------------- schema

@lru_cache(maxsize=1)
def schema() -> JSONObject:
    """The policy JSON Schema (``mgattest/policy/schema.json``)."""
    doc: JSONObject = json.loads(
        resources.files("mgattest.policy").joinpath("schema.json").read_text())
    return doc


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema  # noqa: PLC0415 - jsonschema (~60 ms) loads only when a policy file is validated

    return jsonschema.Draft202012Validator(schema())


def _schema_issues(located: Located) -> list[Issue]:
    issues = []
    for error in sorted(_validator().iter_errors(located.data),
                        key=lambda e: (located.where(tuple(e.absolute_path)), e.message)):
        path = tuple(error.absolute_path)
        at = path
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            if extra:
                at = path + (extra[0],)
        issues.append(Issue(located.where(at), _schema_message(error, path)))
    return issues


def _schema_message(error: Any, path: tuple[Any, ...]) -> str:
    at = "/".join(str(p) for p in path) or "(top level)"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown key(s) {', '.join(map(repr, extra))} in {at}"
    if error.validator == "oneOf":
        return f"{at}: value does not have any accepted shape ({_short(error.instance)})"
    return f"{at}: {error.message}"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 80 else text[:77] + "..."


# --------------------------------------------------------------------------- compile

def _compile(located: Located, raw_bytes: bytes, base: Path, issues: list[Issue]) -> Policy | None:
    doc = located.data
    if not isinstance(doc, dict):
        issues.append(Issue(located.where(()), "a policy must be a YAML mapping"))
        return None
    issues.extend(_schema_issues(located))
    if issues:
        return None
    where = located.where

    def problem(path: tuple[Any, ...], message: str, kind: str = "error") -> None:
        issues.append(Issue(where(path), message, kind))

    expires = _time(doc, ("expires",), problem)
    roots = tuple(_root(r, ("trust", "roots", i), base, problem)
                  for i, r in enumerate(doc.get("trust", {}).get("roots", [])))
    keys: dict[str, TrustedKey] = {}
    broken: set[str] = set()  # declared names whose definition already failed
    for i, k in enumerate(doc.get("trust", {}).get("keys", [])):
        key = _key(k, ("trust", "keys", i), base, problem)
        if key is None:
            broken.add(f"key:{k['name']}")
            continue
        if key.name in keys:
            problem(("trust", "keys", i, "name"), f"duplicate key name {key.name!r}")
        keys[key.name] = key
    logs: dict[str, TrustedLogSpec] = {}
    for i, spec in enumerate(doc.get("trust", {}).get("logs", [])):
        log = _log(spec, ("trust", "logs", i), base, problem)
        if log is None:
            broken.add(f"log:{spec['name']}")
            continue
        if log.name in logs or log.name in {r.name for r in roots}:
            problem(("trust", "logs", i, "name"), f"duplicate log name {log.name!r}")
        logs[log.name] = log

    witnesses = _witnesses(doc.get("trust", {}).get("witnesses", []), problem)

    signers: dict[str, Signer] = {}
    for name, spec in doc.get("signers", {}).items():
        signer = _signer(name, spec, ("signers", name), keys, broken, problem)
        if signer is not None:
            signers[name] = signer
        else:
            broken.add(f"signer:{name}")

    log_names = {r.name: r.log_ids for r in roots} | {n: frozenset({log.log_id})
                                                      for n, log in logs.items()}
    rules = []
    seen_ids: set[str] = set()
    for i, spec in enumerate(doc["rules"]):
        rule = _rule(spec, ("rules", i), signers, log_names, broken, where, problem,
                     witnesses)
        if rule.id in seen_ids:
            problem(("rules", i, "id"), f"duplicate rule id {rule.id!r}")
        seen_ids.add(rule.id)
        rules.append(rule)

    exceptions = []
    for i, spec in enumerate(doc.get("exceptions", [])):
        exp = _time(spec, ("exceptions", i, "expires"), problem, root=("expires",))
        for rid in spec.get("rules", []):
            if rid not in seen_ids:
                problem(("exceptions", i, "rules"), f"exception names unknown rule {rid!r}")
        if exp is not None and exp < time.time():
            problem(("exceptions", i, "expires"),
                    f"exception for {spec['digest'][:19]}… expired; it no longer waives anything",
                    "warning")
        exceptions.append(Waiver(
            digest=spec["digest"], reason=spec["reason"], approver=spec["approver"],
            expires=exp or 0,
            rules=frozenset(spec["rules"]) if "rules" in spec else None))
    if expires is not None and expires < time.time():
        problem(("expires",), "the policy itself has expired; every decision will deny",
                "warning")
    if any(i.kind == "error" for i in issues):
        return None
    metadata = doc.get("metadata", {})
    return Policy(
        source=located.file,
        digest="sha256:" + hashlib.sha256(raw_bytes).hexdigest(),
        name=metadata.get("name"),
        mode=doc.get("mode", "enforce"),
        expires=expires,
        unmatched_files=doc.get("unmatchedFiles", "deny"),
        roots=roots, keys=keys, logs=logs, signers=signers, rules=tuple(rules),
        exceptions=tuple(exceptions), raw=doc, witnesses=witnesses)


def _witnesses(specs: list[dict[str, Any]], problem: Any) -> dict[str, TrustedWitness]:
    """``trust.witnesses``: names → witness keys parsed from their vkeys."""
    witnesses: dict[str, TrustedWitness] = {}
    for i, spec in enumerate(specs):
        path = ("trust", "witnesses", i)
        if spec["name"] in witnesses:
            problem(path + ("name",), f"duplicate witness name {spec['name']!r}")
            continue
        try:
            key = parse_vkey(spec["key"], what=f"witness {spec['name']!r} key")
        except InputError as exc:
            problem(path + ("key",), exc.message)
            continue
        if any(w.key.name == key.name for w in witnesses.values()):
            problem(path + ("key",), f"witness {spec['name']!r} has the same key name "
                    f"{key.name!r} as another witness: one cosigner would count twice")
            continue
        witnesses[spec["name"]] = TrustedWitness(spec["name"], spec["key"].strip(), key)
    return witnesses


def _time(doc: dict[str, Any], path: tuple[Any, ...], problem: Any,
          root: tuple[str, ...] | None = None) -> int | None:
    key = (root or path)[-1]
    if key not in doc:
        return None
    try:
        return parse_time(doc[key])
    except ValueError as exc:
        problem(path, f"invalid time {doc[key]!r}: {exc}")
        return None


def _root(spec: Any, path: tuple[Any, ...], base: Path, problem: Any) -> RootSpec:
    if isinstance(spec, str):
        try:
            text = resources.files("sigstore").joinpath("_store", BUILTIN_ROOTS[spec],
                                                        "trusted_root.json").read_text()
            return RootSpec(spec, None, _root_log_ids(json.loads(text)))
        except (OSError, ValueError, ModuleNotFoundError) as exc:
            problem(path, f"cannot read built-in trusted root {spec!r}: {exc}")
            return RootSpec(spec, None)
    from mgattest.attest import load_trusted_root  # noqa: PLC0415 (lazy: --help)

    file = (base / spec["path"]).resolve()
    try:
        # The verifier's own parser: a trusted root or a ClientTrustConfig (whose logs
        # sit under "trustedRoot"), so the policy names exactly the logs verify trusts.
        root = load_trusted_root(file)
        return RootSpec(spec["name"], str(file), frozenset(t.log_id_hex for t in root.tlogs))
    except MgattestError as exc:
        problem(path + ("path",), f"cannot read trusted root {str(file)!r}: {exc.message}")
        return RootSpec(spec["name"], str(file))


def _root_log_ids(root: dict[str, Any]) -> frozenset[str]:
    ids = set()
    for tlog in root.get("tlogs", []):
        ids.add(base64.b64decode(tlog["logId"]["keyId"]).hex())
    return frozenset(ids)


def _pem_text(value: str, base: Path) -> str:
    if "-----BEGIN" in value:
        return value
    return _read_small(base / value, 1 << 20, "key file").decode("utf-8", "replace")


def _read_small(path: Path, limit: int, what: str) -> bytes:
    """read_bounded (regular files only, never blocking on a FIFO) for this
    problem-collecting loader: its typed errors become ValueError like parse errors."""
    try:
        return read_bounded(path, limit, what=what)
    except InputError as exc:
        raise ValueError(exc.message) from None


def _spki_fingerprint(pem: str) -> str:
    """SHA-256 of the key's DER SPKI; a key type or size mgattest refuses is a ValueError."""

    # lazy, like the cryptography import above: loading a policy stays cheap

    key = serialization.load_pem_public_key(pem.encode())
    try:
        check_public_key(key)
    except MgattestError as exc:
        raise ValueError(exc.message) from None
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _key(spec: dict[str, Any], path: tuple[Any, ...], base: Path, problem: Any) -> TrustedKey | None:
    field = "pem" if "pem" in spec else "path"
    try:
        pem = _pem_text(spec[field], base)
        fingerprint = _spki_fingerprint(pem)
    except (OSError, ValueError, TypeError) as exc:
        problem(path + (field,), f"key {spec['name']!r}: cannot load public key: {exc}")
        return None
    valid_from = _time(spec, path + ("validFrom",), problem, root=("validFrom",))
    valid_until = _time(spec, path + ("validUntil",), problem, root=("validUntil",))
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        problem(path + ("validUntil",), f"key {spec['name']!r}: validUntil is not after validFrom")
    return TrustedKey(spec["name"], fingerprint, pem, valid_from, valid_until)


def _witness_requirement(spec: dict[str, Any] | None, path: tuple[Any, ...],
                         witnesses: dict[str, TrustedWitness],
                         problem: Any) -> WitnessRequirement | None:
    """``transparencyLog.witnesses: {require: N, of: [names]}`` (``of`` defaults to every
    witness under ``trust.witnesses``)."""
    if spec is None:
        return None
    names = spec.get("of") or list(witnesses)
    unknown = [n for n in names if n not in witnesses]
    if unknown:
        problem(path + ("of",), f"unknown witness {unknown[0]!r} (declare it under "
                "trust.witnesses)")
        return None
    if spec["require"] > len(names):
        problem(path + ("require",), f"requires {spec['require']} witnesses but only "
                f"{len(names)} are named: no bundle could pass")
        return None
    return WitnessRequirement(spec["require"], tuple(witnesses[n] for n in names))


def _log(spec: dict[str, Any], path: tuple[Any, ...], base: Path, problem: Any) -> TrustedLogSpec | None:
    try:
        pem = _pem_text(spec["publicKey"], base)
        log_id = _spki_fingerprint(pem)
    except (OSError, ValueError, TypeError) as exc:
        problem(path + ("publicKey",), f"log {spec['name']!r}: cannot load public key: {exc}")
        return None
    return TrustedLogSpec(spec["name"], log_id, pem, spec.get("url"), spec.get("origin"))


def _matcher(spec: Any, path: tuple[Any, ...], problem: Any) -> Matcher | None:
    try:
        return compile_matcher(spec)
    except ValueError as exc:
        problem(path, str(exc))
        return None


def _signer(name: str, spec: dict[str, Any], path: tuple[Any, ...],
            keys: dict[str, TrustedKey], broken: set[str], problem: Any) -> Signer | None:
    if "key" in spec:
        if f"key:{spec['key']}" in broken:
            return None
        if spec["key"] not in keys:
            problem(path + ("key",), f"signer {name!r} names unknown key {spec['key']!r} "
                                     f"(declare it under trust.keys)")
            return None
        return Signer(name, key=keys[spec["key"]])
    kl = spec["keyless"]
    issuer = _matcher(kl["issuer"], path + ("keyless", "issuer"), problem)
    subject = _matcher(kl["subject"], path + ("keyless", "subject"), problem)
    exts = []
    for ext_name, ext_spec in kl.get("extensions", {}).items():
        m = _matcher(ext_spec, path + ("keyless", "extensions", ext_name), problem)
        if m is not None:
            exts.append((EXTENSION_NAMES[ext_name], m))
    if issuer is None or subject is None:
        return None
    return Signer(name, issuer=issuer, subject=subject, extensions=tuple(exts))


def _signed_by(spec: dict[str, Any], path: tuple[Any, ...], signers: dict[str, Signer],
               broken: set[str], problem: Any) -> SignedBy:
    if "anyOf" in spec:
        mode, names, threshold = "anyOf", spec["anyOf"], 1
    elif "allOf" in spec:
        mode, names, threshold = "allOf", spec["allOf"], len(spec["allOf"])
    else:
        mode, names, threshold = "threshold", spec["of"], spec["threshold"]
    for n in names:
        if n not in signers and f"signer:{n}" not in broken:
            problem(path, f"unknown signer {n!r} (declare it under signers)")
    if len(set(names)) != len(names):
        problem(path, "a signer is listed twice")
    if threshold > len(set(names)):
        problem(path, f"threshold {threshold} exceeds the {len(set(names))} distinct signers listed")
    return SignedBy(mode, tuple(names), threshold)


def _provenance(spec: dict[str, Any], path: tuple[Any, ...], problem: Any) -> ProvenanceSpec:
    def m(key: str) -> Matcher | None:
        return _matcher(spec[key], path + (key,), problem) if key in spec else None

    ext = spec.get("externalParameters", {})
    allowed = ext.get("allowed", {})
    for k in ext.get("values", {}):
        if k in allowed:
            problem(path + ("externalParameters",), f"parameter {k!r} is in both values and allowed")
    config_source = spec.get("configSource", {})
    sources = [k for k in ("sourceRef", "sourceTag", "sourceVersionedTag", "sourceBranch") if k in spec]
    if len(sources) > 1:
        problem(path, f"give at most one of {', '.join(sources)}")
    return ProvenanceSpec(
        builder_id=m("builderId"), build_type=m("buildType"),
        source_repository=m("sourceRepository"), source_ref=m("sourceRef"),
        source_tag=spec.get("sourceTag"), source_versioned_tag=spec.get("sourceVersionedTag"),
        source_branch=spec.get("sourceBranch"),
        bind_to_certificate=spec.get("bindToCertificate", True),
        param_values=dict(ext.get("values", {})), param_allowed=dict(allowed),
        reject_unknown_params=ext.get("rejectUnknown", False),
        dependencies_pinned=spec.get("dependenciesPinned", False),
        datasets=tuple(x for i, d in enumerate(spec.get("datasets", []))
                       if (x := _matcher(d, path + ("datasets", i), problem))),
        base_models=tuple(x for i, d in enumerate(spec.get("baseModels", []))
                          if (x := _matcher(d, path + ("baseModels", i), problem))),
        max_age_seconds=parse_duration(spec["maxAge"]) if "maxAge" in spec else None,
        max_age_from=spec.get("maxAgeFrom", "finishedOn"),
        builder_bound_to_certificate=spec.get("builderBoundToCertificate", False),
        config_source_uri=_matcher(config_source["uri"], path + ("configSource", "uri"),
                                   problem) if "uri" in config_source else None,
        config_source_entry_point=_matcher(
            config_source["entryPoint"], path + ("configSource", "entryPoint"), problem)
        if "entryPoint" in config_source else None,
        config_source_digest=dict(config_source.get("digest", {})),
        materials=tuple(x for i, d in enumerate(spec.get("materials", []))
                        if (x := _matcher(d, path + ("materials", i), problem))))


def _rule(spec: dict[str, Any], path: tuple[Any, ...], signers: dict[str, Signer],
          log_names: dict[str, frozenset[str]], broken: set[str], where: Any,
          problem: Any, witnesses: dict[str, TrustedWitness]) -> Rule:
    globs = tuple(spec.get("match", ["**"]))
    files = spec.get("files", {})
    for j, g in enumerate(globs + tuple(files.get("ignore", []))):
        try:
            glob_to_regex(g)
        except (ValueError, Exception) as exc:  # noqa: BLE001 - re.error included
            problem(path + ("match", j), f"invalid glob {g!r}: {exc}")
    signed_by = _signed_by(spec["signedBy"], path + ("signedBy",), signers, broken, problem) \
        if "signedBy" in spec else None
    tlog = None
    if "transparencyLog" in spec:
        t = spec["transparencyLog"]
        ids: set[str] = set()
        for name in t.get("logs", []):
            if name not in log_names and f"log:{name}" not in broken:
                problem(path + ("transparencyLog", "logs"),
                        f"unknown log {name!r} (declare it under trust.logs or trust.roots)")
            elif name in log_names:
                ids |= log_names[name]
        tlog = LogRequirement(t.get("require", "required"), tuple(t.get("logs", [])),
                              frozenset(ids), t.get("minEntries", 1),
                              _witness_requirement(t.get("witnesses"),
                                                   path + ("transparencyLog", "witnesses"),
                                                   witnesses, problem))
    attestations = []
    for j, a in enumerate(spec.get("attestations", [])):
        apath = path + ("attestations", j)
        sb = _signed_by(a["signedBy"], apath + ("signedBy",), signers, broken, problem) \
            if "signedBy" in a else None
        prov = None
        types = a["predicateType"] if isinstance(a["predicateType"], list) \
            else [a["predicateType"]]
        if "provenance" in a:
            if any(t not in SLSA_PROVENANCE_TYPES for t in types):
                problem(apath + ("provenance",), "provenance expectations need predicateType "
                        f"{' or '.join(SLSA_PROVENANCE_TYPES)}")
            prov = _provenance(a["provenance"], apath + ("provenance",), problem)
            if {"configSource", "materials"} & set(a["provenance"]) \
                    and SLSA_PROVENANCE_V02 not in types:
                problem(apath + ("provenance",), "configSource and materials are SLSA "
                        f"Provenance v0.2 fields: list {SLSA_PROVENANCE_V02} in predicateType")
        attestations.append(AttestationSpec(types[0], sb, prov, tuple(types[1:])))
    cel_checks = []
    for j, c in enumerate(spec.get("cel", [])):
        try:
            program = compile_cel(c["expr"])
        except CelCompileError as exc:
            problem(path + ("cel", j, "expr"), f"CEL check {c['id']!r}: {exc}")
            continue
        cel_checks.append(CelCheck(c["id"], c["expr"], c["message"], program))
    digests = spec.get("digests", {})
    content = spec.get("content", {})
    return Rule(
        id=spec["id"], match=globs, where=where(path), description=spec.get("description"),
        signed_by=signed_by, tlog=tlog, attestations=tuple(attestations),
        unsigned_files=files.get("unsigned", "deny"), ignore=tuple(files.get("ignore", [])),
        digest_allow=frozenset(digests["allow"]) if "allow" in digests else None,
        digest_deny=frozenset(digests.get("deny", [])),
        formats=frozenset(content["formats"]) if "formats" in content else None,
        remote_code_allow=(frozenset(content["remoteCode"]["allow"])
                           if "remoteCode" in content else None),
        pickle=content.get("pickle", "deny"),
        scan_required=content.get("scan", "required") == "required",
        unknown=content.get("unknown", "allow"),
        max_size=parse_size(files["maxSize"]) if "maxSize" in files else None,
        cel=tuple(cel_checks),
        lineage=_lineage(spec["lineage"], path + ("lineage",), signers, broken, problem)
        if "lineage" in spec else None)


def _lineage(spec: dict[str, Any], path: tuple[Any, ...], signers: dict[str, Signer],
             broken: set[str], problem: Any) -> LineageSpec:
    """The ``lineage`` clause of a rule (shape checked by the schema)."""
    require = []
    for j, r in enumerate(spec["require"]):
        signed_by = _signed_by(r["signedBy"], path + ("require", j, "signedBy"), signers,
                               broken, problem)
        require.append(LineageRequirement(r["kind"], signed_by, r.get("minCount", 1)))
    return LineageSpec(tuple(require), spec.get("depth", 1))
