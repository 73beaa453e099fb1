"""Append every policy decision to a JSON-lines audit log.

Each decision is one line written with a single ``write(2)`` on a descriptor opened
with ``O_APPEND``: concurrent writers (several processes verifying at once) never
interleave or tear lines, and an existing log is never rewritten.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from mgattest.errors import InputError
from mgattest.policy.verdict import Verdict

MAX_LINE_BYTES = 64 * 1024  # well under the size a regular-file append keeps whole
MAX_REASONS = 50


def audit_record(verdict: Verdict, *, model: str, bundles: list[str] | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object logged for one decision."""
    record = {
        "time": datetime.fromtimestamp(verdict.evaluated_at, tz=timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": model,
        "decision": verdict.decision,
        "allowed": verdict.allowed,
        "mode": verdict.mode,
        "policy": {"source": verdict.policy_source, "digest": verdict.policy_digest},
        "artifacts": [{"name": a["name"], "digest": a["digest"]} for a in verdict.artifacts],
        "bundles": list(bundles or []),
        "reasons": verdict.reasons[:MAX_REASONS],
        "warnings": [f"{c.id}: {c.reason}" for c in verdict.checks
                     if c.status == "warn"][:MAX_REASONS],
    }
    if extra:
        record.update(extra)
    return record


def append_decision(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append *record* as one line; one ``write`` call; raise if it was not whole."""
    line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    data = line.encode("utf-8")
    if len(data) > MAX_LINE_BYTES:
        record = dict(record, artifacts=record.get("artifacts", [])[:100],
                      reasons=record.get("reasons", [])[:10], truncated=True)
        data = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        data = data if len(data) <= MAX_LINE_BYTES else (json.dumps({
            "time": record.get("time"), "model": record.get("model"),
            "decision": record.get("decision"), "policy": record.get("policy"),
            "truncated": True}) + "\n").encode()
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o640)
    except OSError as exc:
        raise InputError(f"cannot open audit log {os.fspath(path)}: {exc.strerror}",
                         what="audit log", where=os.fspath(path)) from None
    try:
        written = os.write(fd, data)
    except OSError as exc:
        raise InputError(f"cannot append to audit log {os.fspath(path)}: {exc.strerror}",
                         what="audit log", where=os.fspath(path)) from None
    finally:
        os.close(fd)
    if written != len(data):
        raise InputError(f"short write to audit log {os.fspath(path)} "
                         f"({written} of {len(data)} bytes)", what="audit log",
                         where=os.fspath(path))
