"""Append every policy decision to a JSON-lines audit log.

Each decision is written with a single ``write(2)`` on a descriptor opened with
``O_APPEND``: concurrent writers (several processes verifying at once) never
interleave or tear lines, and an existing log is never rewritten. The log must be a
regular file: a FIFO, a device or a symlink at its path is refused (without blocking).

A record is never silently thinned. A string longer than :data:`MAX_FIELD_CHARS` is
cut visibly (``…[truncated N chars, sha256:<hex>]``: the digest of the whole value is
kept). A record whose line would exceed :data:`MAX_LINE_BYTES` is split into a head
line (every scalar field, the length of every list, ``"parts": n``, ``"record"`` id)
and continuation lines ``{"record", "part", "parts", "field", "offset", "items"}``
that together carry every list item; all lines still go out in one ``write``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Any

from mgattest.errors import InputError
from mgattest._jsonutil import JSONObject, JSONValue
from mgattest.policy._model import format_time
from mgattest.policy._verdict import Verdict

MAX_LINE_BYTES = 64 * 1024  # what line-oriented log shippers keep whole
MAX_FIELD_CHARS = 1024  # longer strings (file names, reasons) are cut visibly
_ITEM_BUDGET = MAX_LINE_BYTES - 512  # room for a continuation line's own fields


def audit_record(verdict: Verdict, *, model: str, bundles: list[str] | None = None,
                 extra: JSONObject | None = None) -> JSONObject:
    """The JSON object logged for one decision (every artifact, reason and warning)."""
    record: JSONObject = {
        "time": format_time(verdict.evaluated_at),
        "model": model,
        "decision": verdict.decision,
        "allowed": verdict.allowed,
        "mode": verdict.mode,
        "policy": {"source": verdict.policy_source, "digest": verdict.policy_digest},
        "artifacts": [{"name": a["name"], "digest": a["digest"]} for a in verdict.artifacts],
        "bundles": list(bundles or []),
        "reasons": verdict.reasons,
        "warnings": [f"{c.id}: {c.reason}" for c in verdict.checks if c.status == "warn"],
    }
    if extra:
        record.update(extra)
    return record


def clip(value: JSONValue) -> JSONValue:
    """*value* with every string longer than MAX_FIELD_CHARS cut visibly, keeping the
    SHA-256 of the whole string (dict keys included)."""
    if isinstance(value, str):
        if len(value) <= MAX_FIELD_CHARS:
            return value
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{value[:MAX_FIELD_CHARS]}…[truncated {len(value)} chars, sha256:{digest}]"
    if isinstance(value, dict):
        return {clip(k): clip(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clip(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    # ensure_ascii: control characters and line separators in file names stay escaped,
    # so a name can never start a line of its own.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def record_lines(record: JSONObject) -> bytes:
    """The bytes appended for *record*: one line, or a head and continuation lines."""
    record = clip(record)
    line = _dumps(record)
    if len(line) + 1 <= MAX_LINE_BYTES:
        return (line + "\n").encode()
    record_id = "sha256:" + hashlib.sha256(line.encode()).hexdigest()
    lists = {k: v for k, v in record.items() if isinstance(v, list)}
    parts = []
    for field_name, items in sorted(lists.items()):
        chunk: list[Any] = []
        size, offset = 0, 0
        for item in items:
            item = _bounded_item(item)
            item_size = len(_dumps(item)) + 1
            if chunk and size + item_size > _ITEM_BUDGET:
                parts.append((field_name, offset, chunk))
                offset += len(chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += item_size
        if chunk:
            parts.append((field_name, offset, chunk))
    head = {k: v for k, v in record.items() if k not in lists}
    head.update({"record": record_id, "parts": len(parts),
                 "lengths": {k: len(v) for k, v in sorted(lists.items())}})
    head_line = _dumps(head)
    if len(head_line) + 1 > MAX_LINE_BYTES:  # only scalars are left: clip() bounds them
        raise InputError("audit record has too many fields to log", what="audit log")
    lines = [head_line] + [
        _dumps({"record": record_id, "part": i + 1, "parts": len(parts), "field": name,
                "offset": offset, "items": chunk})
        for i, (name, offset, chunk) in enumerate(parts)]
    return ("\n".join(lines) + "\n").encode()


def _bounded_item(item: Any) -> Any:
    """An item too large for a continuation line is replaced by its digest and size."""
    text = _dumps(item)
    if len(text) <= _ITEM_BUDGET:
        return item
    return {"truncated": True, "bytes": len(text),
            "sha256": hashlib.sha256(text.encode()).hexdigest()}


def append_decision(path: str | os.PathLike[str], record: JSONObject) -> None:
    """Append *record* (see :func:`record_lines`) with one ``write`` call; raise if the
    path is not a regular file or the write was not whole."""
    data = record_lines(record)
    where = os.fspath(path)
    # O_NONBLOCK: opening a FIFO without a reader fails at once instead of hanging.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK \
        | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o640)
    except OSError as exc:
        raise InputError(f"cannot open audit log {where}: {exc.strerror}",
                         what="audit log", where=where) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"audit log {where} is not a regular file", what="audit log",
                             where=where)
        written = os.write(fd, data)
    except OSError as exc:
        raise InputError(f"cannot append to audit log {where}: {exc.strerror}",
                         what="audit log", where=where) from None
    finally:
        os.close(fd)
    if written != len(data):
        raise InputError(f"short write to audit log {where} "
                         f"({written} of {len(data)} bytes)", what="audit log", where=where)
