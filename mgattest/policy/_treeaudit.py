"""Audit a repository tree: every model found, verified through the one pipeline.

:func:`audit_tree` finds the models (``attest.discover_models``), verifies each with a
:class:`~mgattest.policy._pipeline.ModelVerifier` (its bundle ``<model>.sigstore.json``,
with or without a policy), scans content with ``mgattest.inspect`` where no policy
already did, and classifies each model by its worst finding:

========================  ==============================================================
``invalid``               the bundle does not verify (signature, log, identity, a file
                          that changed since signing, a malformed bundle), or the entry
                          cannot be a model (a symbolic link, a FIFO)
``unsafe_content``        content scan: dangerous or malformed (a pickle that calls
                          ``os.system``...); under a policy, its ``content`` clause failed
``policy_violation``      the policy denies for another reason (signer, provenance...)
``size_anomaly``          a file is larger than the policy's ``files.maxSize``
``unsigned``              no bundle beside the model
``verified``              everything above passed
========================  ==============================================================

Models are verified concurrently (each verification also hashes its files on attest's
worker threads); one model's failure never stops the others. Nothing here prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from mgattest.errors import MgattestError
from mgattest.policy._pipeline import ModelVerifier
from mgattest.policy._verdict import FAIL, Check, Verdict

if TYPE_CHECKING:
    from mgattest.attest import DiscoveredModel
    from mgattest.inspect import FileReport

__all__ = ["AUDIT_STATUSES", "ArtifactResult", "AuditFinding", "AuditOptions", "AuditReport",
           "AuditStatus", "audit_tree"]

AuditStatus = Literal["invalid", "unsafe_content", "policy_violation", "size_anomaly",
                      "unsigned", "verified"]
#: Every classification, worst first: a model's status is its worst finding's kind.
AUDIT_STATUSES: tuple[AuditStatus, ...] = ("invalid", "unsafe_content", "policy_violation",
                                           "size_anomaly", "unsigned", "verified")

# Policy clauses whose failure is not a plain "policy violation".
_CLAUSE_KINDS: dict[str, AuditStatus] = {
    "integrity": "invalid", "bundles": "invalid", "content": "unsafe_content",
    "size": "size_anomaly"}
# Trust inputs are the caller's, not the model's: they fail the whole audit.
_CALLER_ERRORS = ("KeyFileError", "TrustRootError")


@dataclass(frozen=True)
class AuditFinding:
    """One reason a model is not plainly verified.

    ``file`` is the POSIX path relative to the audited root of the file it is about
    (the model itself when nothing narrower is known); ``check`` the policy check id
    (``rule.clause``) or the error type that produced it.
    """

    kind: AuditStatus
    file: str
    message: str
    check: str = ""


@dataclass(frozen=True)
class ArtifactResult:
    """One model's audit: its classification, findings and how long it took."""

    name: str
    kind: Literal["file", "directory", "refused"]
    bundle: str | None
    findings: tuple[AuditFinding, ...] = ()
    seconds: float = 0.0

    @property
    def status(self) -> AuditStatus:
        """The worst finding's kind, or ``verified``."""
        kinds = {f.kind for f in self.findings}
        return next((s for s in AUDIT_STATUSES if s in kinds), "verified")

    @property
    def ok(self) -> bool:
        """True when the model verified with no finding."""
        return not self.findings


@dataclass(frozen=True)
class AuditReport:
    """Every model of the tree, sorted by name; ``skipped`` directories left out."""

    root: str
    results: tuple[ArtifactResult, ...]
    skipped: tuple[str, ...] = ()
    policy: str | None = None

    @property
    def ok(self) -> bool:
        """True when every model verified."""
        return all(r.ok for r in self.results)

    def counts(self) -> dict[AuditStatus, int]:
        """How many models have each status (every status listed, zeros included)."""
        out: dict[AuditStatus, int] = dict.fromkeys(AUDIT_STATUSES, 0)
        for r in self.results:
            out[r.status] += 1
        return out


@dataclass(frozen=True)
class AuditOptions:
    """What to look for: model ``patterns`` (default: attest's), ``ignore`` globs;
    ``scan_content`` runs the content scan where no policy did (``audit``: on,
    ``verify --all``: off); ``workers`` models verified at once (default: the CPUs)."""

    patterns: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    scan_content: bool = True
    workers: int | None = None


def audit_tree(root: str | os.PathLike[str], verifier: ModelVerifier,
               options: AuditOptions | None = None, *,
               on_start: Callable[[int], None] | None = None,
               on_result: Callable[[ArtifactResult], None] | None = None) -> AuditReport:
    """Discover the models under ``root`` and audit each (see the module docstring).

    ``verifier`` carries the policy (or None) and the trust; its bundle option is
    replaced per model by ``<model>.sigstore.json``. ``on_start(n)`` is told how
    many models were found before any is verified; ``on_result`` sees each result as it
    completes (from worker threads, one call at a time). Raises only for the caller's
    inputs (the root, the patterns, a trust file); every model's problem is a finding.
    """
    from mgattest.attest import discover_models  # noqa: PLC0415 - attest loads on first use

    options = options or AuditOptions()
    verifier = _with_trust_loaded(verifier)
    found = discover_models(root, patterns=options.patterns, ignore=options.ignore)
    results = [ArtifactResult(r.name, "refused", None, (AuditFinding(
        "invalid", r.name, r.reason, "discovery"),)) for r in found.refused]
    if on_start is not None:
        on_start(len(found.models) + len(results))
    if on_result is not None:
        for result in results:
            on_result(result)
    workers = options.workers or max(1, min(len(found.models), os.cpu_count() or 1))

    def one(model: DiscoveredModel) -> ArtifactResult:
        result = _audit_model(model, verifier, options.scan_content)
        if on_result is not None:
            on_result(result)
        return result

    if workers == 1 or len(found.models) <= 1:
        results.extend(one(m) for m in found.models)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mgattest-audit") as ex:
            results.extend(ex.map(one, found.models))
    policy = verifier.policy.source if verifier.policy is not None else None
    return AuditReport(found.root, tuple(sorted(results, key=lambda r: r.name)),
                       found.skipped, policy)


def _with_trust_loaded(verifier: ModelVerifier) -> ModelVerifier:
    """``verifier`` with its key files and trusted root read once for the whole tree
    (each model's verification would otherwise read and parse them again); an
    unreadable trust file fails the audit here, before any model."""
    from mgattest.attest import as_trusted_root, as_verifiers  # noqa: PLC0415 - attest loads on first use

    trust = replace(verifier.trust, keys=tuple(as_verifiers(verifier.trust.keys)),
                    trusted_root=as_trusted_root(verifier.trust.trusted_root))
    return ModelVerifier(verifier.policy, trust, verifier.options)


def _audit_model(model: DiscoveredModel, verifier: ModelVerifier,
                 scan_content: bool) -> ArtifactResult:
    """One model: its bundle verified (or its absence noted), its content scanned."""
    began = time.monotonic()
    findings: list[AuditFinding] = []
    scanned_by_policy = False
    if model.bundle is None:
        findings.append(AuditFinding("unsigned", model.name, f"no bundle: "
                                     f"{os.path.basename(model.path)}.sigstore.json is "
                                     "missing", "bundle"))
    else:
        per_model = ModelVerifier(verifier.policy, verifier.trust,
                                  replace(verifier.options, bundles=(model.bundle,)))
        try:
            outcome = per_model.verify(model.path)
        except MgattestError as exc:
            if type(exc).__name__ in _CALLER_ERRORS:
                raise
            findings.append(AuditFinding("invalid", _file_of(model, exc.where), exc.message,
                                         type(exc).__name__))
        except OSError as exc:  # unreadable, or gone since the walk: this model only
            findings.append(AuditFinding("invalid", model.name, f"cannot read: "
                                         f"{exc.strerror or exc}", type(exc).__name__))
        else:
            if outcome.verdict is not None:
                scanned_by_policy = True
                findings.extend(_verdict_findings(model, outcome.verdict))
    if scan_content and not scanned_by_policy:
        findings.extend(_content_findings(model))
    return ArtifactResult(model.name, model.kind, model.bundle, tuple(findings),
                          time.monotonic() - began)


def _verdict_findings(model: DiscoveredModel, verdict: Verdict) -> list[AuditFinding]:
    """One finding per failing file of each failing check (or per check without files)."""
    out: list[AuditFinding] = []
    for check in verdict.checks:
        if check.status != FAIL:
            continue
        kind = _CLAUSE_KINDS.get(check.clause, "policy_violation")
        failing = _failing_files(check)
        if not failing:
            out.append(AuditFinding(kind, model.name, check.reason, check.id))
        for name, reason in failing:
            out.append(AuditFinding(kind, _file_of(model, name), reason, check.id))
    return out


def _failing_files(check: Check) -> list[tuple[str, str]]:
    """``(file, reason)`` of the evidence items of a failed check that name a file."""
    items = []
    for item in check.evidence:
        name = item.get("file")
        if not isinstance(name, str) or item.get("ok") is True:
            continue
        detail = item.get("reason") or item.get("detail") or item.get("status")
        items.append((name, str(detail) if detail else check.reason))
    return items


def _content_findings(model: DiscoveredModel) -> list[AuditFinding]:
    """Dangerous or malformed files, as ``mgattest.inspect`` scans them."""
    from mgattest.attest import IgnoreRules  # noqa: PLC0415 - attest loads on first use
    from mgattest.inspect import DANGEROUS, MALFORMED, scan_path  # noqa: PLC0415 - scanners

    defaults = IgnoreRules()
    try:
        reports: list[FileReport] = scan_path(model.path, skip=defaults.match)
    except (MgattestError, OSError) as exc:
        why = exc.message if isinstance(exc, MgattestError) else (exc.strerror or str(exc))
        return [AuditFinding("unsafe_content", model.name, f"content could not be scanned: "
                             f"{why}", type(exc).__name__)]
    out = []
    for report in reports:
        if report.verdict in (DANGEROUS, MALFORMED):
            reasons = report.reasons()
            first = reasons[0] if reasons else report.verdict
            more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
            out.append(AuditFinding("unsafe_content", _file_of(model, report.path),
                                    f"content scan: {first}{more}", f"inspect.{report.verdict}"))
    return out


def _file_of(model: DiscoveredModel, name: str | None) -> str:
    """The audited-root-relative path of file ``name`` of ``model`` (a subject name, an
    error's ``where``); the model itself when ``name`` names nothing inside it."""
    if model.kind != "directory" or not name:
        return model.name
    inner = name.split(":", 1)[0].strip()
    if not inner or inner.startswith(("/", "..")) or inner == model.name:
        return model.name
    if os.path.lexists(os.path.join(model.path, inner)):
        return inner if model.name == "." else f"{model.name}/{inner}"
    return model.name
