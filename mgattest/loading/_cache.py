"""In-process cache of policy verdicts for verify-then-load.

The key binds everything the verdict depends on: the file's identity
``(dev, ino, size, mtime_ns)``, the SHA-256 of the bytes just read (so the cache never
vouches for bytes it did not see: hashing still happens on every load), the policy
digest, the trusted-root digest and the digests of the bundle files. A hit skips
bundle verification, content scanning and evaluation, never hashing.

Time-dependent clauses (expiries, ``maxAge``, key validity windows) are why entries
live at most ``ttl`` seconds, and never past the policy's own ``expires``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Hashable

if TYPE_CHECKING:
    from mgattest.policy import Verdict


class VerificationCache:
    """A small thread-safe LRU map from verification key to (allowed) Verdict."""

    def __init__(self, max_entries: int = 256, ttl: float = 300.0) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._max = max_entries
        self._ttl = ttl
        self._data: OrderedDict[Hashable, tuple[float, Verdict]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Verdict | None:
        """The cached verdict for *key*, or None."""
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and time.time() >= entry[0]:
                del self._data[key]
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, verdict: Verdict, *, not_after: float | None = None) -> None:
        """Remember an allowing verdict for ``ttl`` seconds (and not past *not_after*,
        e.g. the policy's expiry). Denials are never cached."""
        if not getattr(verdict, "allowed", False):
            return
        expires = time.time() + self._ttl
        if not_after is not None:
            expires = min(expires, not_after)
        with self._lock:
            self._data[key] = (expires, verdict)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


default_cache = VerificationCache()
