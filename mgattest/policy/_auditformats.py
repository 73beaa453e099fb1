"""An :class:`~mgattest.policy._treeaudit.AuditReport` as JSON, SARIF 2.1.0 and JUnit XML.

* JSON: the report as ``mgattest audit --json`` prints it (:class:`AuditJSON`).
* SARIF 2.1.0: one rule per finding kind, one result per finding, located on the file
  by a URI relative to the audited root (``uriBaseId`` ``%SRCROOT%``), so GitHub code
  scanning shows each finding on its file when the audit ran at the repository root.
  Levels: ``error`` for invalid, unsafe content and policy violations, ``warning`` for
  unsigned models and size anomalies. Verified models produce no result.
* JUnit XML: one ``testcase`` per model, a ``failure`` (message and every finding) for
  each model that did not verify.

Text that reaches XML is escaped first (control characters cannot appear in XML 1.0).
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from typing import TypedDict
from urllib.parse import quote

from mgattest import __version__
from mgattest._jsonutil import JSONObject
from mgattest._text import escape_text
from mgattest.policy._treeaudit import AUDIT_STATUSES, AuditReport, AuditStatus

__all__ = ["AuditJSON", "SARIF_SCHEMA_URI", "audit_to_json", "audit_to_junit",
           "audit_to_sarif"]

SARIF_SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                    "sarif-schema-2.1.0.json")


class AuditFindingJSON(TypedDict):
    """One finding (``models[].findings[]``)."""

    kind: str
    file: str
    message: str
    check: str


class AuditModelJSON(TypedDict):
    """One model (``models[]``)."""

    name: str
    kind: str
    bundle: str | None
    status: str
    seconds: float
    findings: list[AuditFindingJSON]


class AuditJSON(TypedDict):
    """``mgattest audit --json``."""

    ok: bool
    root: str
    policy: str | None
    counts: dict[str, int]
    skipped: list[str]
    models: list[AuditModelJSON]


# kind → (rule name, level, GitHub security-severity, description)
_RULES: dict[AuditStatus, tuple[str, str, str, str]] = {
    "invalid": ("InvalidSignature", "error", "9.0",
                "The model's bundle does not verify (signature, transparency log, identity) "
                "or a file changed since it was signed; or the entry cannot be a model."),
    "unsafe_content": ("UnsafeContent", "error", "9.0",
                       "Loading the model could execute code or read malformed data "
                       "(content scan: dangerous or malformed)."),
    "policy_violation": ("PolicyViolation", "error", "7.0",
                         "The verification policy denies the model."),
    "size_anomaly": ("SizeAnomaly", "warning", "4.0",
                     "A file is larger than the policy's files.maxSize."),
    "unsigned": ("UnsignedModel", "warning", "5.0",
                 "No Sigstore bundle (<model>.sigstore.json) signs the model."),
}


def audit_to_json(report: AuditReport) -> AuditJSON:
    """The report as a JSON-ready dict."""
    return {
        "ok": report.ok, "root": report.root, "policy": report.policy,
        "counts": {status: n for status, n in report.counts().items()}, "skipped": list(report.skipped),
        "models": [{"name": r.name, "kind": r.kind, "bundle": r.bundle, "status": r.status,
                    "seconds": round(r.seconds, 3),
                    "findings": [{"kind": f.kind, "file": f.file, "message": f.message,
                                  "check": f.check} for f in r.findings]}
                   for r in report.results]}


def _rule_id(kind: AuditStatus) -> str:
    return f"mgattest/{kind.replace('_', '-')}"


def audit_to_sarif(report: AuditReport) -> JSONObject:
    """The report as a SARIF 2.1.0 log (one run)."""
    kinds = [k for k in AUDIT_STATUSES if k in _RULES]
    rules: list[JSONObject] = []
    for kind in kinds:
        name, level, severity, text = _RULES[kind]
        rules.append({
            "id": _rule_id(kind), "name": name,
            "shortDescription": {"text": f"{name}: {kind.replace('_', ' ')} model"},
            "fullDescription": {"text": text},
            "help": {"text": f"{text} See docs/audit.md of mgattest."},
            "defaultConfiguration": {"level": level},
            "properties": {"tags": ["security", "supply-chain", "ml-model"],
                           "security-severity": severity}})
    results: list[JSONObject] = []
    for model in report.results:
        for finding in model.findings:
            name, level, _, _ = _RULES[finding.kind]
            fingerprint = hashlib.sha256(
                f"{finding.kind}\0{finding.file}\0{finding.check}".encode()).hexdigest()
            results.append({
                "ruleId": _rule_id(finding.kind), "ruleIndex": kinds.index(finding.kind),
                "level": level,
                "message": {"text": f"{finding.file}: {finding.message}"},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": quote(finding.file, safe="/"),
                                         "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": 1}}}],
                "partialFingerprints": {"mgattestFinding/v1": fingerprint},
                "properties": {"model": model.name, "status": model.status,
                               "check": finding.check}})
    return {
        "$schema": SARIF_SCHEMA_URI, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "mgattest", "version": __version__,
                                "semanticVersion": __version__, "rules": rules}},
            "automationDetails": {"id": "mgattest/audit/"},
            "invocations": [{"executionSuccessful": True}],
            "results": results,
            "properties": {"models": len(report.results),
                           "counts": {k: v for k, v in report.counts().items()}}}]}


def audit_to_junit(report: AuditReport) -> str:
    """The report as JUnit XML: one testcase per model, a failure for each that failed."""
    cases = report.results
    failed = [r for r in cases if not r.ok]
    total = sum(r.seconds for r in cases)
    suites = ET.Element("testsuites", name="mgattest audit", tests=str(len(cases)),
                        failures=str(len(failed)), errors="0", time=f"{total:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=_xml(f"mgattest audit {report.root}"),
                          tests=str(len(cases)), failures=str(len(failed)), errors="0",
                          skipped="0", time=f"{total:.3f}")
    for result in cases:
        case = ET.SubElement(suite, "testcase", classname="mgattest.audit",
                             name=_xml(result.name), time=f"{result.seconds:.3f}")
        if result.ok:
            continue
        first = result.findings[0]
        failure = ET.SubElement(case, "failure", type=result.status,
                                message=_xml(f"{result.status}: {first.file}: {first.message}"))
        failure.text = _xml("\n".join(f"{f.kind}: {f.file}: {f.message}"
                                      + (f" [{f.check}]" if f.check else "")
                                      for f in result.findings), keep_newlines=True)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _xml(text: str, *, keep_newlines: bool = False) -> str:
    """Text safe for XML 1.0: control, bidi and invisible characters made visible."""
    return escape_text(text, keep_newlines=keep_newlines)
