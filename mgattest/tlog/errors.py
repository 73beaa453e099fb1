"""Typed errors of the transparency log.

Verification failures (a proof, checkpoint or promise that does not check out) are
:class:`~mgattest.errors.VerificationError` subclasses (CLI exit 1); a proposed entry
the log refuses, or a lookup of something that does not exist, is an
:class:`~mgattest.errors.InputError` subclass (CLI exit 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgattest.errors import InputError, MgattestError, VerificationError

if TYPE_CHECKING:  # pragma: no cover
    from mgattest.tlog._log import LogEntry


class LogError(MgattestError):
    """The log itself cannot do what was asked (storage, key or configuration)."""

    exit_code = 2


class InclusionProofError(VerificationError):
    """An inclusion proof does not lead to the claimed root."""


class ConsistencyProofError(VerificationError):
    """A consistency proof does not link two tree heads."""


class CheckpointError(VerificationError):
    """A signed checkpoint (C2SP signed note) is malformed, unsigned or mismatched."""


class SETError(VerificationError):
    """A signed entry timestamp (inclusion promise) does not verify."""


class LogEntryError(VerificationError):
    """A log entry is malformed or does not match its log (id, time, kind, body)."""


class EntryRejectedError(InputError):
    """A proposed entry was refused: schema, sizes or signature."""


class DuplicateEntryError(InputError):
    """The same canonical entry is already in the log; ``.existing`` is that entry."""

    def __init__(self, message: str, *, existing: "LogEntry", what: str | None = None,
                 where: str | None = None, **details: object) -> None:
        super().__init__(message, what=what, where=where, **details)
        self.existing = existing


class UnknownEntryError(InputError):
    """No entry with that index or UUID exists in the log."""


class TrustRootError(InputError):
    """A trusted root or trust config (its ``tlogs``, CA or timestamp parts) is malformed,
    incomplete or unreadable. The one definition: ``mgattest.attest.errors`` imports it."""


class MirrorError(VerificationError):
    """A log export or mirror that does not verify (checkpoint, hash tile, entry bundle or
    entry timestamp), is incomplete, or disagrees with data already exported: a fork."""
