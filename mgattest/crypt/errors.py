"""Typed errors of ``mgattest.crypt`` (encryption at rest).

Bad input (an unreadable key source, a file that is not mgattest ciphertext, a key set
that is not valid JSON) is an :class:`~mgattest.errors.InputError` (exit 2); a check
that fails on ciphertext (an altered or cut stream, a key that does not open it, a
retired key) is a :class:`~mgattest.errors.VerificationError` (exit 1).
"""

from __future__ import annotations

from mgattest.errors import InputError, VerificationError

__all__ = ["CryptInputError", "DecryptionError", "KeySourceError", "RetiredKeyError",
           "WrongKeyError"]


class CryptInputError(InputError):
    """Malformed input: not an mgattest encrypted file or directory, a bad key set,
    an output that already exists."""


class KeySourceError(InputError):
    """The key could not be obtained: the variable is unset, the file unreadable, the
    key command failed, timed out, printed nothing or too much."""


class DecryptionError(VerificationError):
    """Ciphertext failed authentication: a header, wrapped key, segment or directory
    manifest was altered, reordered, swapped or cut short (``where``: file, segment)."""


class WrongKeyError(DecryptionError):
    """The data was wrapped with a key the given key set does not hold."""


class RetiredKeyError(DecryptionError):
    """The data was wrapped with a key that the key set holds but has retired
    (disabled); re-wrap it with the current primary key before retiring a key."""
