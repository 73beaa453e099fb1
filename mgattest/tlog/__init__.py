"""mgattest.tlog — a Rekor-compatible transparency log and offline proof verification.

The public surface: :class:`TransparencyLog` (append-only SQLite log with a signing
key), :class:`LogSigner`/:class:`LogVerifier` (log keys), checkpoints
(:func:`sign_checkpoint`, :func:`verify_checkpoint`), entry canonicalisation
(:func:`canonicalize`), trust (:func:`trusted_logs_from_root`) and offline
verification (:func:`verify_entry`). Merkle math lives in :mod:`mgattest.tlog.merkle`.
"""

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
