"""mgattest.tlog — a Rekor-compatible transparency log and offline proof verification.

The public surface: :class:`TransparencyLog` (append-only SQLite log with a signing
key), :class:`LogSigner`/:class:`LogVerifier` (log keys), checkpoints
(:func:`sign_checkpoint`, :func:`verify_checkpoint`), entry canonicalisation
(:func:`canonicalize`), trust (:func:`trusted_logs_from_root`) and offline
verification (:func:`verify_entry`). Merkle math lives in :mod:`mgattest.tlog.merkle`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgattest._lazy import LazyExports

if TYPE_CHECKING:  # the public names, for type checkers; at run time they load lazily
    from mgattest.tlog.checkpoint import Checkpoint, parse_signed_note, sign_checkpoint, \
        verify_checkpoint
    from mgattest.tlog.entries import CanonicalEntry, canonicalize, parse_body
    from mgattest.tlog.errors import (
        CheckpointError,
        ConsistencyProofError,
        DuplicateEntryError,
        EntryRejectedError,
        InclusionProofError,
        LogEntryError,
        LogError,
        SETError,
        TrustRootError,
        UnknownEntryError,
    )
    from mgattest.tlog.keys import LogSigner, LogVerifier, c2sp_key_id, log_id_for, note_key_hint
    from mgattest.tlog.log import InclusionProof, LogEntry, TransparencyLog
    from mgattest.tlog.trust import TrustedLog, trusted_logs_from_root
    from mgattest.tlog.verify import (
        VerifiedEntry,
        verify_consistency_notes,
        verify_entry,
        verify_rekor_entry,
    )

__all__ = [
    "CanonicalEntry", "Checkpoint", "CheckpointError", "ConsistencyProofError",
    "DuplicateEntryError", "EntryRejectedError", "InclusionProof", "InclusionProofError",
    "LogEntry", "LogEntryError", "LogError", "LogSigner", "LogVerifier", "SETError",
    "TransparencyLog", "TrustRootError", "TrustedLog", "UnknownEntryError", "VerifiedEntry",
    "c2sp_key_id", "canonicalize", "log_id_for", "note_key_hint", "parse_body", "parse_signed_note", "sign_checkpoint",
    "trusted_logs_from_root", "verify_checkpoint", "verify_consistency_notes",
    "verify_entry", "verify_rekor_entry",
]

# Exports load on first use (PEP 562): importing one submodule, such as
# ``mgattest.tlog.errors`` or ``mgattest.tlog.merkle``, does not load the log, its store
# and its server dependencies.
_EXPORTS = LazyExports("mgattest.tlog", {
    "Checkpoint": "mgattest.tlog.checkpoint",
    "parse_signed_note": "mgattest.tlog.checkpoint",
    "sign_checkpoint": "mgattest.tlog.checkpoint",
    "verify_checkpoint": "mgattest.tlog.checkpoint",
    "CanonicalEntry": "mgattest.tlog.entries",
    "canonicalize": "mgattest.tlog.entries",
    "parse_body": "mgattest.tlog.entries",
    "CheckpointError": "mgattest.tlog.errors",
    "ConsistencyProofError": "mgattest.tlog.errors",
    "DuplicateEntryError": "mgattest.tlog.errors",
    "EntryRejectedError": "mgattest.tlog.errors",
    "InclusionProofError": "mgattest.tlog.errors",
    "LogEntryError": "mgattest.tlog.errors",
    "LogError": "mgattest.tlog.errors",
    "SETError": "mgattest.tlog.errors",
    "TrustRootError": "mgattest.tlog.errors",
    "UnknownEntryError": "mgattest.tlog.errors",
    "LogSigner": "mgattest.tlog.keys",
    "LogVerifier": "mgattest.tlog.keys",
    "c2sp_key_id": "mgattest.tlog.keys",
    "log_id_for": "mgattest.tlog.keys",
    "note_key_hint": "mgattest.tlog.keys",
    "InclusionProof": "mgattest.tlog.log",
    "LogEntry": "mgattest.tlog.log",
    "TransparencyLog": "mgattest.tlog.log",
    "TrustedLog": "mgattest.tlog.trust",
    "trusted_logs_from_root": "mgattest.tlog.trust",
    "VerifiedEntry": "mgattest.tlog.verify",
    "verify_consistency_notes": "mgattest.tlog.verify",
    "verify_entry": "mgattest.tlog.verify",
    "verify_rekor_entry": "mgattest.tlog.verify",
})


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return _EXPORTS.names()
