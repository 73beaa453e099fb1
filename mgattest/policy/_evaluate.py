"""Evaluate a compiled policy over verified attestations, a model check and content reports.

Pure and deterministic: the same inputs (and ``now``) give the same Verdict, checks in
policy order, files sorted by name. No I/O and no crypto: attestations arrive already
verified (``mgattest.attest``); this module decides whether what they prove is what
the policy requires.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping

from mgattest.attest import LogProof, ModelCheck, SignerInfo, VerifiedAttestation, VerifiedTime
from mgattest.tlog import verify_cosignatures
from mgattest.inspect import FileReport, NOT_INSPECTED, PICKLED_FORMATS, policy_format
from mgattest._jsonutil import JSONObject, JSONValue
from mgattest.policy import _provenance as prov_checks
from mgattest.policy._cel import Activation, CelSession
from mgattest.policy._lineage import LineageGraph
from mgattest.policy._lineage_check import lineage_check
from mgattest.policy._matching import any_glob
from mgattest.policy._model import (
    LogRequirement,
    Policy,
    Rule,
    SignedBy,
    Signer,
    Waiver,
    WitnessRequirement,
    format_time,
)
from mgattest.policy._verdict import FAIL, PASS, SKIP, WAIVED, WARN, Check, Clearance, Verdict

MODEL_SIGNING_V1 = "https://model_signing/signature/v1.0"
_DEFAULT_LOG_REQ = LogRequirement()


class _File:
    __slots__ = ("name", "sha256", "digests", "status", "detail", "format", "pickled", "report",
                 "digest", "named_by")

    def __init__(self, name: str, digests: dict[str, str], status: str, detail: str | None,
                 report: Any, named_by: dict[str, str] | None = None) -> None:
        self.name = name
        self.named_by = named_by
        self.digests = digests
        sha256 = self.sha256 = digests.get("sha256")
        self.status = status
        self.detail = detail
        self.report = report
        fmt = getattr(report, "format", None) if report is not None else None
        self.format = policy_format(fmt if isinstance(fmt, str) else None)
        # read through an unpickler: torch, joblib, pickle, numpy object arrays ...
        self.pickled = getattr(report, "pickled", False) is True or self.format in PICKLED_FORMATS
        self.digest = f"sha256:{sha256}" if sha256 else "sha256:?"


def evaluate(policy: Policy, attestations: Iterable[VerifiedAttestation], model: ModelCheck,
             content: Iterable[FileReport] | Mapping[str, FileReport] = (), *,
             now: int | None = None, lineage: LineageGraph | None = None) -> Verdict:
    """Decide whether *model* (as proven by *attestations*) satisfies *policy*.

    *content* holds ``mgattest.inspect`` FileReports (a list with ``.name``/``.path``,
    or a mapping name → report). *lineage*: the model's traced lineage, which rules
    with a ``lineage`` clause judge (None: not traced, and such clauses fail). Returns a
    :class:`Verdict`; never raises on a non-conforming artifact.
    """
    now = int(time.time()) if now is None else int(now)
    atts = list(attestations)
    reports = _index_reports(content)
    files = sorted((_File(f.name, dict(f.digest or {}), f.status, f.detail,
                          reports.get(f.name), f.named_by) for f in model.files),
                   key=lambda f: f.name)
    # "ignored": left out by the verifier's own ignore globs (check_model); not judged.
    files = [f for f in files if f.status != "ignored"]
    present = [f for f in files if f.status != "missing"]
    single = len(present) == 1
    coverage = {f.name: [a for a in atts if _covers(a, f, single)] for f in present}
    checks: list[Check] = []

    if policy.expires is not None and now >= policy.expires:
        checks.append(Check("policy", "expires", FAIL,
                            f"the policy expired at {format_time(policy.expires)}",
                            [{"expires": format_time(policy.expires)}]))
    checks.append(_integrity(files))

    active_exc, expired_exc = _exceptions(policy, now)
    state = _State(policy)
    clearance = _ClearanceBook(present)
    matched_any: set[str] = set()
    files_of_rule: dict[int, list[_File]] = {}
    for rule in policy.rules:
        rule_files = [f for f in present if any_glob(rule.match, f.name)]
        matched_any.update(f.name for f in rule_files)
        if not rule_files:
            checks.append(Check(rule.id, "match", SKIP, "no file of the model matches "
                                + ", ".join(rule.match)))
            continue
        rule_checks = _evaluate_rule(policy, rule, rule_files, coverage, now, state, clearance)
        if rule.lineage is not None:
            rule_checks.append(lineage_check(
                rule, lineage, lambda req, atts: _signed_by_outcome(
                    policy, req, atts, now, state.signer_memo)))
        files_of_rule[id(rule)] = rule_files
        rule_checks = _apply_exceptions(rule, rule_checks, rule_files, active_exc, expired_exc)
        clearance.block_failed(rule, rule_checks)
        checks.extend(rule_checks)
    # CEL clauses are not byte clauses (clearance does not read them): all of them are
    # evaluated here, in one round trip to the CEL worker, then exceptions apply.
    for rule, cel_checks in _resolve_cel(state):
        _apply_exceptions(rule, cel_checks, files_of_rule[id(rule)], active_exc, expired_exc)

    unmatched = [f for f in present if f.name not in matched_any]
    if unmatched:
        status = FAIL if policy.unmatched_files == "deny" else WARN
        checks.append(Check("policy", "unmatchedFiles", status,
                            f"{len(unmatched)} file(s) match no rule: "
                            + ", ".join(f.name for f in unmatched[:5]),
                            [{"file": f.name, "digest": f.digest} for f in unmatched]))

    failed = any(c.status == FAIL for c in checks)
    policy_expired = any(c.rule == "policy" and c.clause == "expires" for c in checks)
    allowed = not failed or (policy.mode == "warn" and not policy_expired)
    if failed and allowed:  # warn mode: record, do not deny
        for c in checks:
            if c.status == FAIL:
                c.status = WARN
                c.reason = "[warn mode] " + c.reason
    return Verdict(
        allowed=allowed, decision="allow" if allowed else "deny", mode=policy.mode,
        policy_source=policy.source, policy_digest=policy.digest, evaluated_at=now,
        artifacts=[{"name": f.name, "digest": {"sha256": f.sha256}, "format": f.format}
                   for f in present],
        checks=checks, clearance=clearance.result(), clause_failed=failed)


# --------------------------------------------------------------------------- clearance

# Clauses about the bytes themselves: a failure keeps the file from being deserialised
# even when warn mode lets the verdict allow.
_BYTE_CLAUSES = ("files", "digests", "content", "size")
_PICKLE_STRICTNESS = ("deny", "scan", "restricted")  # strictest first


class _ClearanceBook:
    """Per file, what every rule that judged it established (see :class:`Clearance`)."""

    def __init__(self, present: list[_File]) -> None:
        self.names = [f.name for f in present]
        self.rules: dict[str, list[str]] = {n: [] for n in self.names}
        self.pickle: dict[str, set[str]] = {n: set() for n in self.names}
        self.attestations: dict[str, set[str]] = {n: set() for n in self.names}
        self.blocked: dict[str, str] = {}  # name → first reason it may not be loaded
        self.ignored_by: dict[str, str] = {}
        # files some judging rule does not allow to run as code (content.remoteCode)
        self.code_denied: set[str] = set()

    def judged(self, rule: Rule, f: _File, trusted: list[VerifiedAttestation]) -> None:
        """*rule* judged *f*; *trusted* are the covering attestations it counts."""
        self.rules[f.name].append(rule.id)
        self.pickle[f.name].add(rule.pickle)
        self.attestations[f.name].update(a.source for a in trusted)
        if rule.remote_code_allow is None or f.digest not in rule.remote_code_allow:
            self.code_denied.add(f.name)
        if not trusted:
            self._block(f.name, f"not covered by an attestation from a signer rule "
                                f"{rule.id!r} trusts")

    def ignored(self, rule: Rule, f: _File) -> None:
        self.ignored_by.setdefault(f.name, rule.id)

    def block_failed(self, rule: Rule, checks: list[Check]) -> None:
        """Files whose byte clauses failed (after exceptions) are not loadable."""
        for c in checks:
            if c.status == FAIL and c.clause in _BYTE_CLAUSES:
                for item in c.evidence:
                    if item.get("ok") is False and "file" in item:
                        self._block(item["file"], f"{rule.id}.{c.clause} failed: "
                                                  f"{item.get('reason', '')}")

    def _block(self, name: str, reason: str) -> None:
        self.blocked.setdefault(name, reason)

    def result(self) -> dict[str, Clearance]:
        out = {}
        for name in self.names:
            rules = tuple(self.rules[name])
            pickle = next((p for p in _PICKLE_STRICTNESS if p in self.pickle[name]), "deny")
            if not rules:
                why = (f"ignored by files.ignore of rule {self.ignored_by[name]!r}"
                       if name in self.ignored_by else "matches no rule")
                out[name] = Clearance(False, why)
                continue
            loadable = name not in self.blocked
            reason = self.blocked.get(name, "covered, verified and content cleared by "
                                            + ", ".join(rules))
            out[name] = Clearance(loadable, reason, pickle, rules,
                                  tuple(sorted(self.attestations[name])),
                                  code=loadable and name not in self.code_denied)
        return out


# --------------------------------------------------------------------------- inputs

def _index_reports(content: Iterable[Any] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(content, Mapping):
        return dict(content)
    out = {}
    for report in content:
        name = getattr(report, "name", None) or getattr(report, "path", None)
        if name is not None:
            out[str(name)] = report
    return out


def _covers(att: VerifiedAttestation, f: _File, single: bool) -> bool:
    """True when *att* signs exactly these bytes under this name (or, alone, by digest),
    or signs the manifest that names this blob of a stored model (``named_by``).

    Any digest the subject and the file check share must agree (``sha256``,
    ``sha512``, ``sha256-shard-merkle`` ...)."""
    if not f.digests:
        return False
    if att.message_digest is not None:
        return single and _same_digest(att.message_digest, f.digests)
    for name, digest in subject_digests(att):
        if (name == f.name or single) and _same_digest(digest, f.digests):
            return True
        # a stored model's blob: signed through the verified manifest that names it
        if f.named_by is not None and _same_digest(digest, f.named_by):
            return True
    return False


def _same_digest(signed: dict[str, str], actual: dict[str, str]) -> bool:
    shared = [k for k in signed if k in actual]
    return bool(shared) and all(isinstance(signed[k], str) and
                                signed[k].lower() == actual[k].lower() for k in shared)


def subject_digests(att: VerifiedAttestation) -> list[tuple[str | None, dict[str, str]]]:
    """(name, digest set) of every subject an attestation signs; for an OpenSSF
    model-signing statement, its per-file resources."""
    if att.predicate_type == MODEL_SIGNING_V1 and isinstance(att.predicate, dict):
        pairs = []
        for r in att.predicate.get("resources", []) or []:
            if isinstance(r, dict) and isinstance(r.get("algorithm"), str) \
                    and isinstance(r.get("digest"), str):
                pairs.append((r.get("name"), {r["algorithm"]: r["digest"]}))
        return pairs
    out: list[tuple[str | None, dict[str, str]]] = []
    for s in att.subjects:
        if isinstance(s, dict) and isinstance(s.get("digest"), dict):
            out.append((s.get("name"), {k: v for k, v in s["digest"].items()
                                        if isinstance(v, str)}))
    return out


def _integrity(files: list[_File]) -> Check:
    if not any(f.status != "missing" for f in files):
        return Check("policy", "integrity", FAIL, "the model has no files to verify")
    bad = [f for f in files if f.status in ("mismatch", "missing")]
    if not bad:
        return Check("policy", "integrity", PASS,
                     f"{len(files)} file(s) hashed; no mismatching or missing file")
    return Check("policy", "integrity", FAIL,
                 "; ".join(f"{f.name}: {f.status}" + (f" ({f.detail})" if f.detail else "")
                           for f in bad[:5]),
                 [{"file": f.name, "status": f.status, "detail": f.detail} for f in bad])


def _exceptions(policy: Policy, now: int) -> tuple[list[Waiver], list[Waiver]]:
    active = [e for e in policy.exceptions if now < e.expires]
    expired = [e for e in policy.exceptions if now >= e.expires]
    return active, expired


def _apply_exceptions(rule: Rule, checks: list[Check], files: list[_File],
                      active: list[Waiver], expired: list[Waiver]) -> list[Check]:
    digests = {f.digest for f in files}
    waivers = [e for e in active if e.digest in digests and (e.rules is None or rule.id in e.rules)]
    stale = [e for e in expired if e.digest in digests and (e.rules is None or rule.id in e.rules)]
    for c in checks:
        if c.status != FAIL:
            continue
        failing = _failing_digests(c)
        if waivers and failing and failing <= {e.digest for e in waivers}:
            e = waivers[0]
            c.status = WAIVED
            c.reason = (f"waived until {format_time(e.expires)} by {e.approver} "
                        f"({e.reason}); was: {c.reason}")
        elif stale:
            c.reason += (f" (the exception approved by {stale[0].approver} expired at "
                         f"{format_time(stale[0].expires)})")
    return checks


def _failing_digests(check: Check) -> set[str]:
    return {e["digest"] for e in check.evidence if e.get("ok") is False and "digest" in e}


# --------------------------------------------------------------------------- signers

def signer_matches(signer: Signer, info: SignerInfo, signed_at: VerifiedTime | None,
                   now: int | None = None) -> tuple[bool, str]:
    """Does the verified signer *info* satisfy the named policy signer? (+ why not).

    A key's ``validFrom``/``validUntil`` window is judged at *signed_at*, a verified
    signing time (SET or RFC 3161); without one, at *now*, and the reason says so. A
    time the bundle merely claims never gets here.
    """
    if signer.key is not None:
        key = signer.key
        if info.key_fingerprint != key.fingerprint:
            return False, f"key {info.key_fingerprint[:16]}… is not key {key.name!r}"
        if key.valid_from is None and key.valid_until is None:
            return True, f"key {key.name!r}"
        when, how = _judged_at(signed_at, now)
        if key.valid_from is not None and when < key.valid_from:
            return False, (f"key {key.name!r} not valid before {format_time(key.valid_from)} "
                           f"(signing time {how})")
        if key.valid_until is not None and when >= key.valid_until:
            return False, (f"key {key.name!r} expired at {format_time(key.valid_until)} "
                           f"(signing time {how})")
        return True, f"key {key.name!r} (signing time {how})"
    if info.kind != "certificate":
        return False, "signed with a key, not a certificate"
    if signer.issuer is None or not signer.issuer.matches(info.issuer):
        return False, f"issuer {info.issuer!r} is not {signer.issuer.text if signer.issuer else '?'}"
    if signer.subject is None or not signer.subject.matches(info.identity):
        return False, f"identity {info.identity!r} is not {signer.subject.text if signer.subject else '?'}"
    for ext, matcher in signer.extensions:
        value = info.extensions.get(ext)
        if not matcher.matches(value):
            return False, f"certificate extension {ext}={value!r} is not {matcher.text}"
    return True, f"{info.identity} via {info.issuer}"


def _judged_at(signed_at: VerifiedTime | None, now: int | None) -> tuple[int, str]:
    """(seconds, description) of the moment a key window is judged at."""
    if signed_at is not None:
        return signed_at.seconds, signed_at.describe()
    when = int(time.time()) if now is None else now
    return when, f"unproven: judged at now, {format_time(when)}"


def _max_matching(candidates: dict[str, set[str]]) -> dict[str, str]:
    """Maximum bipartite matching named signer → distinct signer id (Kuhn's algorithm)."""
    match_of_id: dict[str, str] = {}

    def try_assign(name: str, seen: set[str]) -> bool:
        for sid in sorted(candidates[name]):
            if sid in seen:
                continue
            seen.add(sid)
            if sid not in match_of_id or try_assign(match_of_id[sid], seen):
                match_of_id[sid] = name
                return True
        return False

    for name in sorted(candidates):
        try_assign(name, set())
    return {name: sid for sid, name in match_of_id.items()}


def _signed_by_outcome(policy: Policy, req: SignedBy, atts: list[VerifiedAttestation],
                       now: int, memo: dict[tuple[str, int], tuple[bool, str]] | None = None
                       ) -> tuple[bool, str, dict[str, Any]]:
    candidates: dict[str, set[str]] = {n: set() for n in req.signers}
    # A signer whose own key signed, outside its validity window (a rotation), explains a
    # denial better than the signers whose keys did not sign at all: listed first.
    window_misses: list[str] = []
    other_misses: list[str] = []
    for att in atts:
        for name in req.signers:
            ok, why = _signer_ok(policy, name, att, now, memo)
            if ok:
                candidates[name].add(att.signer.distinct_id)
            else:
                key = policy.signers[name].key
                same_key = key is not None and att.signer.key_fingerprint == key.fingerprint
                (window_misses if same_key else other_misses).append(f"{name}: {why}")
    misses = (window_misses + other_misses)[:8]
    assignment = _max_matching(candidates)
    need = req.threshold
    ok = len(assignment) >= need
    desc = {"anyOf": "any of", "allOf": "all of", "threshold": f"{need} of"}[req.mode]
    evidence = {"required": f"{desc} {', '.join(req.signers)}",
                "satisfied": {n: assignment[n] for n in sorted(assignment)},
                "distinctSigners": len({a.signer.distinct_id for a in atts}),
                "signingTimes": [a.signing_time.describe() if a.signing_time is not None
                                 else "none verified" for a in atts]}
    if ok:
        return True, f"signed by {', '.join(sorted(assignment))} ({desc} required)", evidence
    reason = (f"needs {desc} {', '.join(req.signers)} from distinct signers; "
              f"satisfied: {', '.join(sorted(assignment)) or 'none'}")
    if misses and not assignment:
        reason += f" ({misses[0]})"
    evidence["mismatches"] = misses
    return False, reason, evidence


# --------------------------------------------------------------------------- rules

def _qualifying(att: VerifiedAttestation, req: LogRequirement, origins: dict[str, str],
                default_ids: frozenset[str] | None) -> tuple[bool, list[dict[str, Any]]]:
    # An entry counts when its proof (or promise) verified, it is in a required log and,
    # for a log whose checkpoint origin the policy pins, the checkpoint carried it.
    # Distinct entries are distinct (log, proven leaf): the bundle's logIndex is only a
    # claim, so repeating one entry under other indices does not count twice.
    allowed_ids = req.log_ids or default_ids
    entries = {e.distinct_id: e for e in att.log_entries
               if (e.inclusion_proof_verified or e.set_verified)
               and (allowed_ids is None or e.log_id in allowed_ids)
               and (e.log_id not in origins or e.checkpoint_origin == origins[e.log_id])}
    ev = [_log_evidence(e) for _, e in sorted(entries.items())]
    if req.witnesses is not None:
        # Only entries proven against a checkpoint enough trusted witnesses cosigned.
        witnessed = {}
        for (key, entry), evidence in zip(sorted(entries.items()), ev, strict=True):
            ok, evidence["witnesses"] = _witness_outcome(entry, req.witnesses)
            if ok:
                witnessed[key] = entry
        entries = witnessed
    return (req.require == "optional" or len(entries) >= req.min_entries), ev


def _witness_outcome(entry: LogProof, req: WitnessRequirement) -> tuple[bool, dict[str, Any]]:
    """Does the entry's verified checkpoint carry ``req.require`` trusted cosignatures?

    Cosignatures are checked over the exact checkpoint body the log signature and the
    inclusion proof were verified against; each witness counts once, unknown ones not at
    all. A SET-only entry has no checkpoint, so no witness can vouch for it.
    """
    if entry.checkpoint_note is None or not entry.inclusion_proof_verified:
        return False, {"required": req.require, "cosigned": [],
                       "problems": ["no verified checkpoint to carry cosignatures"]}
    outcome = verify_cosignatures(entry.checkpoint_note, [w.key for w in req.of])
    by_key = {w.key.name: w.name for w in req.of}
    names = sorted(by_key[n] for n in outcome.verified)
    evidence: dict[str, Any] = {"required": req.require, "cosigned": names}
    if outcome.rejected:
        evidence["problems"] = list(outcome.rejected)
    return len(names) >= req.require, evidence


def _log_evidence(entry: LogProof) -> dict[str, Any]:
    """Verdict evidence for one entry: proven values, and claimed ones labelled so."""
    ev: dict[str, Any] = {"logId": entry.log_id, "leafHash": entry.leaf_hash,
                          "logIndex": entry.log_index,
                          "integratedTime": (entry.integrated_time.seconds
                                             if entry.integrated_time else None),
                          "inclusionProof": entry.inclusion_proof_verified,
                          "set": entry.set_verified}
    if entry.log_index is None:
        ev["claimedLogIndex"] = entry.claimed_log_index
    if entry.integrated_time is None and entry.claimed_integrated_time is not None:
        ev["claimedIntegratedTime"] = entry.claimed_integrated_time
    return ev


class _State:
    """Per-evaluation caches shared by all rules."""

    def __init__(self, policy: Policy) -> None:
        self.origins = {log.log_id: log.origin for log in policy.logs.values() if log.origin}
        # "Any trusted log": the policy's own roots and logs when it declares any;
        # otherwise whatever the verifier trusted (public good, embedded local log).
        self.default_ids = policy.trusted_log_ids() if (policy.roots or policy.logs) else None
        self.activations: dict[tuple[Any, ...], Any] = {}
        self.signer_memo: dict[tuple[str, int], tuple[bool, str]] = {}
        self.trust_memo: dict[tuple[int, int], bool] = {}  # (id(rule), id(att)) → trusted
        self.content_memo: dict[tuple[Any, str], tuple[Any, str, dict[str, Any]]] = {}
        self.cel = CelSession()  # one CEL time budget for the whole evaluation
        self.pending_cel: list[_PendingCel] = []  # resolved together by _resolve_cel


def _evaluate_rule(policy: Policy, rule: Rule, matched: list[_File],
                   coverage: dict[str, list[VerifiedAttestation]], now: int,
                   state: _State, clearance: _ClearanceBook) -> list[Check]:
    ignored = [f for f in matched if any_glob(rule.ignore, f.name)]
    files = [f for f in matched if f not in ignored]
    for f in ignored:
        clearance.ignored(rule, f)
    if not files:
        return [Check(rule.id, "files", PASS, f"all {len(ignored)} matching file(s) ignored by "
                      "files.ignore", [{"file": f.name, "ignored": True} for f in ignored])]
    # Every clause of this rule sees only attestations from signers the rule trusts.
    trusted = {f.name: [a for a in coverage[f.name] if _rule_trusts(policy, rule, a, now, state)]
               for f in files}
    for f in files:
        clearance.judged(rule, f, trusted[f.name])
    checks: list[Check] = [_files_check(rule, files, ignored, trusted, coverage)]
    if rule.unsigned_files == "allow":
        # Unsigned files are tolerated: signature clauses judge the signed ones, and at
        # least one file must be signed.
        signed = [f for f in files if trusted[f.name]]
        files = signed or files[:1]
    untrusted = {f.name: [a for a in coverage[f.name] if a not in trusted[f.name]]
                 for f in files}
    checks.extend(_signature_checks(policy, rule, files, trusted, now, state, untrusted))
    return checks


def rule_signer_names(policy: Policy, rule: Rule) -> tuple[str, ...]:
    """The named signers a rule trusts: those its ``signedBy`` and its attestation
    expectations name; a rule that names none trusts every signer of the policy."""
    names: list[str] = list(rule.signed_by.signers) if rule.signed_by else []
    for spec in rule.attestations:
        if spec.signed_by is not None:
            names.extend(spec.signed_by.signers)
    return tuple(dict.fromkeys(names)) or tuple(policy.signers)


def _rule_trusts(policy: Policy, rule: Rule, att: VerifiedAttestation, now: int,
                 state: _State) -> bool:
    """Does *rule* count attestations signed by *att*'s signer? (A policy without named
    signers leaves trust to the verifier: ``--identity`` or its keys.)"""
    key = (id(rule), id(att))
    trusts = state.trust_memo.get(key)
    if trusts is None:  # once per (rule, attestation), not once per file it covers
        names = rule_signer_names(policy, rule)
        trusts = state.trust_memo[key] = not names or any(
            _signer_ok(policy, name, att, now, state.signer_memo)[0] for name in names)
    return trusts


def _signer_ok(policy: Policy, name: str, att: VerifiedAttestation, now: int,
               memo: dict[tuple[str, int], tuple[bool, str]] | None) -> tuple[bool, str]:
    """``signer_matches`` for the named signer and *att*, memoised per evaluation."""
    key = (name, id(att))
    if memo is not None and key in memo:
        return memo[key]
    outcome = signer_matches(policy.signers[name], att.signer, att.signing_time, now)
    if memo is not None:
        memo[key] = outcome
    return outcome


def _signature_checks(policy: Policy, rule: Rule, files: list[_File],
                      coverage: dict[str, list[VerifiedAttestation]], now: int,
                      state: "_State",
                      untrusted: dict[str, list[VerifiedAttestation]]) -> list[Check]:
    req = rule.tlog or _DEFAULT_LOG_REQ
    origins, default_ids = state.origins, state.default_ids
    qualified: dict[str, list[VerifiedAttestation]] = {}
    log_ev: list[dict[str, Any]] = []
    log_fail = []
    log_memo: dict[int, tuple[bool, list[dict[str, Any]]]] = {}
    for f in files:
        good = []
        for att in coverage[f.name]:
            if id(att) not in log_memo:
                log_memo[id(att)] = _qualifying(att, req, origins, default_ids)
            ok, entries = log_memo[id(att)]
            log_ev.append({"file": f.name, "digest": f.digest, "attestation": att.source,
                           "entries": entries, "ok": ok})
            if ok:
                good.append(att)
        qualified[f.name] = good
        if coverage[f.name] and not good:
            log_fail.append(f)
    checks: list[Check] = []
    if rule.tlog is not None or any(coverage[f.name] for f in files):
        where = f" in {', '.join(req.logs)}" if req.logs else ""
        if req.witnesses is not None:
            where += (f" on a checkpoint cosigned by {req.witnesses.require} of the witnesses "
                      f"{', '.join(w.name for w in req.witnesses.of)}")
        if log_fail:
            checks.append(Check(rule.id, "transparencyLog", FAIL,
                                f"{log_fail[0].name}: no attestation has {req.min_entries} verified "
                                f"log entr{'y' if req.min_entries == 1 else 'ies'}{where}",
                                log_ev))
        else:
            checks.append(Check(rule.id, "transparencyLog", PASS,
                                f"log inclusion {req.require}{where}: satisfied", log_ev))
    if rule.signed_by is not None:
        required_signers = rule.signed_by
        sb_memo: dict[tuple[int, ...], tuple[bool, str, dict[str, Any]]] = {}

        def signed_by(f: _File) -> tuple[bool, str, dict[str, Any]]:
            # Files signed by the same attestations share one outcome.
            key = tuple(map(id, qualified[f.name]))
            if key not in sb_memo:
                sb_memo[key] = _signed_by_outcome(policy, required_signers, qualified[f.name], now,
                                                  state.signer_memo)
            ok, reason, ev = sb_memo[key]
            dropped = len(coverage[f.name]) - len(qualified[f.name])
            if not ok and dropped:
                reason += (f"; {dropped} attestation(s) not counted: their log entries do not "
                           "meet transparencyLog")
            if not ok and untrusted[f.name]:
                reason += _why_untrusted(policy, required_signers, untrusted[f.name], now, state)
            return ok, reason, ev
        checks.append(_per_file(rule, "signedBy", files, signed_by))
    for i, spec in enumerate(rule.attestations):
        checks.extend(prov_checks.attestation_checks(policy, rule, i, spec, files, qualified,
                                                     now, _signed_by_outcome))
    if rule.digest_allow is not None or rule.digest_deny:
        checks.append(_per_file(rule, "digests", files, lambda f: _digest_outcome(rule, f)))
    # Rules usually share one content configuration: judge each file once per config
    # (every rule field _content_outcome reads).
    content_config = (rule.formats, rule.pickle, rule.scan_required, rule.unknown,
                      rule.remote_code_allow)

    def content(f: _File) -> _Outcome:
        key = (content_config, f.name)
        if key not in state.content_memo:
            state.content_memo[key] = _content_outcome(rule, f)
        return state.content_memo[key]
    checks.append(_per_file(rule, "content", files, content))
    if rule.max_size is not None:
        checks.append(_per_file(rule, "size", files, lambda f: _size_outcome(rule, f)))
    for cel in rule.cel:
        checks.append(_defer_cel(rule, cel, files, qualified, state))
    return checks


def _why_untrusted(policy: Policy, req: SignedBy, atts: list[VerifiedAttestation], now: int,
                   state: "_State") -> str:
    """Why the covering attestations the rule does not trust match none of its signers."""
    _, _, evidence = _signed_by_outcome(policy, req, atts, now, state.signer_memo)
    misses = evidence.get("mismatches") or []
    return f" ({misses[0]})" if misses else ""


_Outcome = tuple[bool | Literal["warn"], str, dict[str, Any]]
"""A per-file clause's judgement of one file: ok (or ``"warn"``), reason, evidence."""


def _per_file(rule: Rule, clause: str, files: list[_File], fn: Any) -> Check:
    """Run *fn(file) -> (ok|'warn', reason, evidence)* for each file; one Check for the clause."""
    evidence, fails, warns = [], [], []
    for f in files:
        ok, reason, ev = fn(f)
        item = {"file": f.name, "digest": f.digest, "ok": ok is not False, "reason": reason}
        if ev:
            item.update(ev)
        evidence.append(item)
        if ok is False:
            fails.append(f"{f.name}: {reason}")
        elif ok == "warn":
            warns.append(f"{f.name}: {reason}")
    if fails:
        return Check(rule.id, clause, FAIL, "; ".join(fails[:3])
                     + (f" (+{len(fails) - 3} more)" if len(fails) > 3 else ""), evidence)
    if warns:
        return Check(rule.id, clause, WARN, "; ".join(warns[:3]), evidence)
    reason = evidence[0]["reason"] if len(evidence) == 1 else f"{len(files)} file(s) conform"
    return Check(rule.id, clause, PASS, reason, evidence)


def _files_check(rule: Rule, files: list[_File], ignored: list[_File],
                 trusted: dict[str, list[VerifiedAttestation]],
                 coverage: dict[str, list[VerifiedAttestation]]) -> Check:
    def outcome(f: _File) -> _Outcome:
        if trusted[f.name]:
            return True, f"covered by {len(trusted[f.name])} attestation(s)", {
                "attestations": [a.source for a in trusted[f.name]]}
        others = len(coverage[f.name])
        why = (f"covered only by {others} attestation(s) from signers this rule does not "
               "trust" if others else "not covered by any verified attestation")
        if rule.unsigned_files == "allow":
            return "warn", f"{why} (files.unsigned: allow)", {}
        return False, f"{why} ({f.digest})", {}
    check = _per_file(rule, "files", files, outcome)
    check.evidence.extend({"file": f.name, "digest": f.digest, "ok": True,
                           "reason": "ignored by files.ignore"} for f in ignored)
    if ignored and check.status == PASS:
        check.reason += f"; {len(ignored)} file(s) ignored"
    return check


def _digest_outcome(rule: Rule, f: _File) -> _Outcome:
    if f.digest in rule.digest_deny:
        return False, f"digest {f.digest} is on the deny-list", {}
    if rule.digest_allow is not None and f.digest not in rule.digest_allow:
        return False, f"digest {f.digest} is not on the allow-list", {}
    return True, "digest allowed", {}


def _size_outcome(rule: Rule, f: _File) -> _Outcome:
    """``files.maxSize``: the size the content scan measured; unknown size fails closed."""
    size = getattr(f.report, "size", None)
    limit = rule.max_size
    if not isinstance(size, int):
        return False, f"size unknown (no bytes were read); files.maxSize {limit} cannot " \
                      "be checked", {}
    if limit is not None and size > limit:
        return False, f"{size} bytes exceeds files.maxSize {limit}", {"size": size}
    return True, f"{size} bytes (limit {limit})", {"size": size}


def _content_outcome(rule: Rule, f: _File) -> _Outcome:
    fmt = f.format
    ev: dict[str, Any] = {"format": fmt}
    if (rule.remote_code_allow is not None and is_model_code(f.name)
            and f.digest not in rule.remote_code_allow):
        return False, (f"Python code {f.digest} is not on content.remoteCode.allow"), ev
    if rule.formats is not None and fmt not in rule.formats:
        return False, f"format {fmt!r} is not allowed (allowed: {', '.join(sorted(rule.formats))})", ev
    if f.pickled and rule.pickle == "deny":
        return False, (f"{fmt} file is read by unpickling, which can execute code; "
                       "content.pickle is deny"), ev
    report = f.report
    if report is None:
        if rule.scan_required:
            return False, "no content scan report for this file", ev
        return True, f"format {fmt} allowed (scan off)", ev
    if getattr(report, "format", None) in NOT_INSPECTED:  # a binary, unrecognised bytes
        ev["scan"] = "not inspected"
        if rule.unknown == "deny":
            return False, "unrecognised format, not inspected; content.unknown is deny", ev
        return True, f"format {fmt}: not inspected (unrecognised format)", ev
    verdict = getattr(report, "verdict", None)
    findings = getattr(report, "findings", []) or []
    ev["scan"] = verdict
    ev["findings"] = [_finding_text(x) for x in list(findings)[:10]]
    first = ev["findings"][0] if ev["findings"] else ""
    if verdict in ("dangerous", "malformed"):
        return False, f"content scan: {verdict}" + (f" ({first})" if first else ""), ev
    if verdict == "suspicious":
        if f.pickled and rule.pickle == "scan":
            return False, f"content scan: suspicious ({first}); content.pickle is scan", ev
        return "warn", f"content scan: suspicious ({first})", ev
    if verdict != "safe":
        return False, f"content scan returned unknown verdict {verdict!r}", ev
    how = " (loaded through the restricted unpickler)" if f.pickled else ""
    return True, f"format {fmt}, scan safe{how}", ev


def _finding_text(finding: Any) -> str:
    if isinstance(finding, str):
        return finding
    for attr in ("message", "detail", "description"):
        v = getattr(finding, attr, None)
        if isinstance(v, str):
            return v
    return str(finding)


def is_model_code(name: str) -> bool:
    """Is *name* a file transformers may import as model code (``trust_remote_code``)?
    It imports ``<module>.py`` files of the model directory, whatever their content."""
    return name.endswith(".py")


def signer_dict(info: SignerInfo) -> JSONObject:
    """SignerInfo as a CEL/JSON map (without the PEM)."""
    d = {"kind": info.kind, "key_fingerprint": info.key_fingerprint, "key_hint": info.key_hint,
         "identity": info.identity, "issuer": info.issuer,
         "extensions": dict(info.extensions), "not_before": info.not_before,
         "not_after": info.not_after, "distinct_id": info.distinct_id}
    return {k: v for k, v in d.items() if v is not None}


def _log_dict(entry: LogProof) -> dict[str, Any]:
    """The CEL ``log`` map: proven values only (claimed index and time are left out)."""
    d = {"log_id": entry.log_id, "log_index": entry.log_index,
         "integrated_time": entry.integrated_time.seconds if entry.integrated_time else None,
         "kind": entry.kind, "kind_version": entry.kind_version,
         "inclusion_proof_verified": entry.inclusion_proof_verified,
         "checkpoint_origin": entry.checkpoint_origin, "tree_size": entry.tree_size,
         "set_verified": entry.set_verified, "leaf_hash": entry.leaf_hash}
    return {k: v for k, v in d.items() if v is not None}


def _activation(used: frozenset[str] | None, att: VerifiedAttestation | None, f: _File,
                state: "_State") -> Any:
    """The CEL variables a program reads, for (file, attestation). Sending values to
    the CEL worker is the expensive part, so each distinct set is built (and sent) once
    per evaluation and shared by every check that reads the same variables; without
    ``artifact`` it is shared by every file the attestation covers."""

    per_file = used is None or "artifact" in used
    key = (used, f.name if per_file else None, id(att) if att is not None else None)
    act = state.activations.get(key)
    if act is None:
        values: dict[str, Any] = {"statement": {}, "predicate": {}, "signer": {}, "log": {}}
        if per_file:
            values["artifact"] = {"name": f.name, "digest": {"sha256": f.sha256 or ""},
                                  "format": f.format, "basename": posixpath.basename(f.name)}
        if att is not None:
            builders: tuple[tuple[str, Callable[[], JSONValue]], ...] = (
                ("statement", lambda: att.statement or {}),
                ("predicate", lambda: att.predicate or {}),
                ("signer", lambda: signer_dict(att.signer)),
                ("log", lambda: _log_dict(att.log_entries[0]) if att.log_entries else {}))
            for name, build in builders:
                if used is None or name in used:
                    values[name] = build()
        if used is not None:
            values = {k: v for k, v in values.items() if k in used}
        act = state.activations[key] = Activation(values)
    return act


@dataclass
class _PendingCel:
    """A CEL clause of one rule whose Check is filled in by :func:`_resolve_cel`."""

    rule: Rule
    cel: Any
    files: list[_File]
    pairs: dict[str, list[tuple[VerifiedAttestation | None, Any]]]  # name → (att, activation)
    tasks: dict[tuple[str, ...], list[Any]]  # files sharing activations share one task
    check: Check


def _defer_cel(rule: Rule, cel: Any, files: list[_File],
               qualified: dict[str, list[VerifiedAttestation]], state: "_State") -> Check:
    """Queue *cel* for every file (with the attestations the rule counts for it); the
    returned Check is a placeholder until :func:`_resolve_cel` runs."""
    used = cel.program.used
    pairs: dict[str, list[tuple[VerifiedAttestation | None, Any]]] = {
        f.name: [(a, _activation(used, a, f, state)) for a in qualified[f.name]]
             or [(None, _activation(used, None, f, state))] for f in files}
    tasks: dict[tuple[str, ...], list[Any]] = {}
    for f in files:
        tasks.setdefault(tuple(act.cid for _, act in pairs[f.name]),
                         [act for _, act in pairs[f.name]])
    check = Check(rule.id, f"cel:{cel.id}", FAIL, "CEL clause not evaluated")
    state.pending_cel.append(_PendingCel(rule, cel, files, pairs, tasks, check))
    return check


def _resolve_cel(state: "_State") -> list[tuple[Rule, list[Check]]]:
    """Evaluate every queued CEL clause in ONE worker round trip (one budget) and fill
    in their Checks; returns each rule with its CEL checks."""
    pending, state.pending_cel = state.pending_cel, []
    if not pending:
        return []
    replies = state.cel.first_true_many([(p.cel.program, list(p.tasks.values()))
                                         for p in pending])
    by_rule: dict[int, tuple[Rule, list[Check]]] = {}
    for p, reply in zip(pending, replies, strict=True):
        outcomes = _cel_outcomes(p, dict(zip(p.tasks, reply, strict=False)))
        built = _per_file(p.rule, p.check.clause, p.files, lambda f, o=outcomes: o[f.name])
        p.check.status, p.check.reason, p.check.evidence = \
            built.status, built.reason, built.evidence
        by_rule.setdefault(id(p.rule), (p.rule, []))[1].append(p.check)
    return list(by_rule.values())


def _cel_outcomes(p: _PendingCel, results: dict[tuple[str, ...], tuple[int | None, str | None]]
                  ) -> dict[str, tuple[bool, str, dict[str, Any]]]:
    """Per file: did the clause hold for one of the attestations the rule counts for
    it? The evidence names the attestation and signer that satisfied it."""
    cel = p.cel
    out = {}
    for f in p.files:
        pairs = p.pairs[f.name]
        hit, error = results[tuple(act.cid for _, act in pairs)]
        if hit is None:
            reason = cel.message + (f" (evaluation error: {error})" if error else "")
            out[f.name] = (False, reason, {"expr": cel.expr})
            continue
        att = pairs[hit][0]
        ev: dict[str, Any] = {"expr": cel.expr}
        if att is not None:
            ev["satisfiedBy"] = {"attestation": att.source, "signer": att.signer.distinct_id}
        out[f.name] = (True, f"{cel.id} holds", ev)
    return out
