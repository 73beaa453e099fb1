"""Log entries as they arrive in files, and their offline verification.

A file holds either one entry (a bundle ``TransparencyLogEntry`` or a Rekor v1
``LogEntry``) or a Sigstore bundle with ``verificationMaterial.tlogEntries``.
:func:`entry_from_json` / :func:`entries_from_bundle` say which checks each entry needs;
:func:`verify_entries` runs them (``mgattest log verify``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

from mgattest.errors import InputError, MgattestError
from mgattest.tlog._trust import TrustedLog
from mgattest.tlog._verify import VerifiedEntry, verify_entry, verify_rekor_entry

__all__ = ["EntryToVerify", "entries_from_bundle", "entry_from_json", "verify_entries"]


@dataclass(frozen=True)
class EntryToVerify:
    """One log entry to check offline, with the label that names it in messages."""

    label: str
    entry: dict[str, Any]
    is_rekor_v1: bool
    needs_inclusion_proof: bool


def _is_rekor_v1(data: dict[str, Any]) -> bool:
    # A Rekor v1 LogEntry is {uuid: {"body": ..., ...}}.
    if "canonicalizedBody" in data or len(data) != 1:
        return False
    value = next(iter(data.values()))
    return isinstance(value, dict) and "body" in value


def entry_from_json(data: object, label: str) -> EntryToVerify:
    """The single entry in a file: a bundle TransparencyLogEntry or a Rekor v1 LogEntry."""
    if not isinstance(data, dict):
        raise InputError(f"{label} must hold a JSON object", what="log entry", where=label)
    is_v1 = _is_rekor_v1(data)
    if not is_v1 and "canonicalizedBody" not in data:
        raise InputError(f"{label} is neither a bundle TransparencyLogEntry nor a Rekor "
                         "v1 LogEntry", what="log entry", where=label)
    return EntryToVerify(label, data, is_v1, True)


def entries_from_bundle(data: object, label: str) -> list[EntryToVerify]:
    """Every ``tlogEntries`` item of a Sigstore bundle (at least one is required)."""
    material = data.get("verificationMaterial") if isinstance(data, dict) else None
    tlog = material.get("tlogEntries") if isinstance(material, dict) else None
    if not isinstance(data, dict) or not isinstance(tlog, list) or not tlog:
        raise InputError(f"{label} has no verificationMaterial.tlogEntries", what="bundle",
                         where=label)
    # v0.1 bundles may carry only an inclusion promise (SET); later ones need a proof.
    media_type = data.get("mediaType")
    needs_proof = not (isinstance(media_type, str) and media_type.endswith("version=0.1"))
    return [EntryToVerify(f"{label} tlogEntries[{i}]", item, False, needs_proof)
            for i, item in enumerate(tlog)]


def verify_entries(items: Sequence[EntryToVerify], logs: Sequence[TrustedLog], *,
                   origin: str | None = None) -> list[tuple[EntryToVerify, VerifiedEntry]]:
    """Verify every entry against ``logs``; the first failure raises, prefixed by its label."""
    results = []
    for item in items:
        try:
            if item.is_rekor_v1:
                verified = verify_rekor_entry(item.entry, logs, origin=origin)
            else:
                verified = verify_entry(item.entry, logs, origin=origin,
                                        require_inclusion_proof=item.needs_inclusion_proof)
        except MgattestError as exc:
            exc.where = item.label if exc.where is None else f"{item.label}: {exc.where}"
            raise
        results.append((item, verified))
    return results
