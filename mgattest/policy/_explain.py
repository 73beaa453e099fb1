"""Humans' view of policies and verdicts: a rich tree per verdict, prose per policy."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.tree import Tree

from mgattest._text import escape_text
from mgattest.policy._model import Policy, Rule, SignedBy, Signer, format_time
from mgattest.policy._verdict import Verdict

_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "waived": "cyan",
          "skip": "dim"}
_MARK = {"pass": "✔", "fail": "✘", "warn": "!", "waived": "~", "skip": "·"}


def verdict_tree(verdict: Verdict, *, verbose: bool = False) -> Tree:
    """A ``rich.tree.Tree``: decision at the root, one branch per rule, one leaf per clause."""

    escape = _markup_safe

    head = "[bold green]ALLOWED[/]" if verdict.allowed else "[bold red]DENIED[/]"
    warn = sum(1 for c in verdict.checks if c.status == "warn")
    tail = f" with {warn} warning(s)" if verdict.allowed and warn else ""
    tree = Tree(f"{head}{tail} by policy {escape(verdict.policy_source)} "
                f"[dim]({verdict.policy_digest[:19]}…, mode {verdict.mode})[/]")
    branches: dict[str, Any] = {}
    for check in verdict.checks:
        if check.rule not in branches:
            label = "policy-wide" if check.rule == "policy" else f"rule {check.rule}"
            branches[check.rule] = tree.add(f"[bold]{escape(label)}[/]")
        style = _STYLE.get(check.status, "")
        leaf = branches[check.rule].add(
            f"[{style}]{_MARK.get(check.status, '?')} {escape(check.clause)}[/]: "
            f"{escape(check.reason)}")
        if verbose or check.status == "fail":
            for ev in check.evidence[:8]:
                leaf.add(f"[dim]{escape(_evidence_text(ev))}[/]")
    return tree


def _markup_safe(text: str) -> str:
    """Attacker-shaped text for a rich label: control/bidi characters escaped
    (mgattest._text), then rich markup such as ``[red]`` escaped."""

    return escape(escape_text(text))


def _evidence_text(ev: dict[str, Any]) -> str:
    parts = []
    for key in ("file", "attestation", "signer", "reason", "status", "detail"):
        if ev.get(key):
            parts.append(f"{key}={ev[key]}")
    if ev.get("problems"):
        parts.append("problems=" + "; ".join(ev["problems"][:3]))
    if ev.get("entries"):
        parts.append("log=" + ", ".join(f"{e['logId'][:12]}…#{e['logIndex']}"
                                        for e in ev["entries"][:3]))
    return ", ".join(parts) or str(ev)[:200]


# --------------------------------------------------------------------------- policy in words

def describe_policy(policy: Policy) -> list[str]:
    """What *policy* requires, as indented lines of plain English."""
    lines = [f"Policy {policy.name or policy.source} ({policy.digest[:19]}…)"]
    lines.append(f"  Mode: {policy.mode}" + (" — failures are reported but do not deny"
                                             if policy.mode == "warn" else
                                             " — any failed requirement denies"))
    if policy.expires:
        lines.append(f"  The policy itself expires at {format_time(policy.expires)}; "
                     "after that every decision denies.")
    roots = ", ".join(r.name for r in policy.roots) or "Sigstore public-good (default)"
    lines.append(f"  Trusted roots: {roots}")
    for log in policy.logs.values():
        lines.append(f"  Extra log {log.name}: id {log.log_id[:16]}…"
                     + (f", origin {log.origin!r}" if log.origin else "")
                     + (f", at {log.url}" if log.url else ""))
    for key in policy.keys.values():
        window = ""
        if key.valid_from or key.valid_until:
            window = f" valid {format_time(key.valid_from)} → {format_time(key.valid_until)}"
        lines.append(f"  Key {key.name}: SHA-256 {key.fingerprint[:16]}…{window}")
    for signer in policy.signers.values():
        lines.append(f"  Signer {signer.name}: {_signer_words(signer)}")
    for rule in policy.rules:
        lines.extend(_rule_words(rule))
    lines.append("  Files matching no rule are "
                 + ("denied." if policy.unmatched_files == "deny" else "allowed."))
    for exc in policy.exceptions:
        lines.append(f"  Exception: {exc.digest[:23]}… waived"
                     + (f" for rules {', '.join(sorted(exc.rules))}" if exc.rules else "")
                     + f" until {format_time(exc.expires)}, approved by {exc.approver}: "
                       f"{exc.reason}")
    return lines


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def _signer_words(signer: Signer) -> str:
    if signer.key is not None:
        return f"the key {signer.key.name}"
    # the loader gives a signer without a key both an issuer and a subject
    assert signer.subject is not None and signer.issuer is not None
    words = f"a Sigstore certificate for {signer.subject.text} issued via {signer.issuer.text}"
    for ext, matcher in signer.extensions:
        words += f", {ext} {matcher.text}"
    return words


def _signed_by_words(sb: SignedBy) -> str:
    if sb.mode == "anyOf":
        return f"any one of {', '.join(sb.signers)}"
    if sb.mode == "allOf":
        return f"every one of {', '.join(sb.signers)} (distinct signers)"
    return f"{sb.threshold} distinct signers among {', '.join(sb.signers)}"


def _rule_words(rule: Rule) -> list[str]:
    out = [f"  Rule {rule.id} — files matching {', '.join(rule.match)} (whole path):"]
    if rule.description:
        out.append(f"    {rule.description}")
    if rule.signed_by:
        out.append(f"    must be signed by {_signed_by_words(rule.signed_by)}")
    t = rule.tlog
    if t is None or t.require == "required":
        n = t.min_entries if t else 1
        logs = f" in {', '.join(t.logs)}" if t and t.logs else " in any trusted log"
        out.append(f"    each signature needs {n} verified transparency-log entr"
                   f"{'y' if n == 1 else 'ies'}{logs}")
    else:
        out.append("    transparency-log inclusion is optional")
    for a in rule.attestations:
        line = f"    needs a {a.predicate_type} attestation"
        if a.signed_by:
            line += f" signed by {_signed_by_words(a.signed_by)}"
        out.append(line)
        p = a.provenance
        if p is None:
            continue
        for label, m in (("builder id", p.builder_id), ("build type", p.build_type),
                         ("source repository", p.source_repository), ("source ref", p.source_ref)):
            if m is not None:
                out.append(f"      {label} must be {m.text}")
        if p.source_tag:
            out.append(f"      built from tag {p.source_tag}")
        if p.source_versioned_tag:
            out.append(f"      built from a semver tag compatible with {p.source_versioned_tag}")
        if p.source_branch:
            out.append(f"      built from branch {p.source_branch}")
        if p.bind_to_certificate and any((p.source_repository, p.source_ref, p.source_tag,
                                          p.source_versioned_tag, p.source_branch)):
            out.append("      the source must equal the signing certificate's repository/ref")
        for k, v in p.param_values.items():
            out.append(f"      parameter {k} must be {v!r}")
        for k, v in p.param_allowed.items():
            out.append(f"      parameter {k} must be one of {v!r}")
        if p.reject_unknown_params:
            out.append("      no other parameters are accepted")
        if p.dependencies_pinned:
            out.append("      every resolved dependency must be pinned by digest")
        if p.datasets:
            out.append(f"      datasets must match {', '.join(m.text for m in p.datasets)}")
        if p.base_models:
            out.append(f"      base models must match {', '.join(m.text for m in p.base_models)}")
        if p.max_age_seconds:
            out.append(f"      {p.max_age_from} no older than {_duration(p.max_age_seconds)}")
    out.append("    unsigned files are " + ("denied" if rule.unsigned_files == "deny" else "allowed")
               + (f" (ignoring {', '.join(rule.ignore)})" if rule.ignore else ""))
    if rule.digest_allow is not None:
        out.append(f"    digest must be one of {len(rule.digest_allow)} allowed digest(s)")
    if rule.digest_deny:
        out.append(f"    {len(rule.digest_deny)} digest(s) are denied outright")
    if rule.formats is not None:
        out.append(f"    formats allowed: {', '.join(sorted(rule.formats))}")
    out.append(f"    pickle-based files: {rule.pickle}; content scan "
               + ("required" if rule.scan_required else "off"))
    for c in rule.cel:
        out.append(f"    CEL check {c.id}: {c.expr}  — else: {c.message}")
    return out
