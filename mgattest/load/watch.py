"""Watch mode: keep re-verifying a model while it is served.

:class:`Sentry` watches a model's files (inotify through watchdog), re-runs a verify
callable on any change, and re-hashes every file periodically to catch what events miss
(changes made while the watcher was down, filesystems without inotify, bind mounts).
It knows nothing of signatures: ``verify`` is any callable that raises on failure.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # a library: silent unless the application logs


@dataclass(frozen=True)
class SentryStatus:
    """A snapshot of the sentry's view."""

    healthy: bool
    reason: str | None  # why it is compromised (None when healthy)
    checks: int  # verifications run so far
    last_check: float | None  # unix time of the last verification
    last_rehash: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "status": "healthy" if self.healthy else "compromised",
                "reason": self.reason, "checks": self.checks, "last_check": self.last_check,
                "last_rehash": self.last_rehash}


def snapshot(model: Path) -> dict[str, tuple[int, int, str]]:
    """(size, mtime_ns, sha256) of every file of ``model`` (a file or a directory)."""
    files = [model] if not model.is_dir() else sorted(
        Path(d) / f for d, _dirs, names in os.walk(model) for f in names)
    out = {}
    for path in files:
        try:
            st = os.stat(path)
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            out[str(path)] = (st.st_size, st.st_mtime_ns, h.hexdigest())
        except OSError as exc:
            out[str(path)] = (-1, -1, f"unreadable: {exc.strerror}")
    return out


class Sentry:
    """Re-verify ``model`` whenever it changes; expose healthy/compromised with a reason.

    ``verify(model_path)`` must raise on failure (any exception means compromised).
    Once compromised the sentry stays compromised until :meth:`reset` (a file changed
    back is still an incident). ``rehash_interval`` seconds between full re-hashes;
    ``debounce`` seconds to let a burst of events settle before re-verifying.
    """

    def __init__(self, model: str | os.PathLike, verify: Callable[[str], Any], *,
                 rehash_interval: float = 60.0, debounce: float = 0.1,
                 on_change: Callable[[SentryStatus], None] | None = None,
                 use_events: bool = True) -> None:
        self.model = Path(model).resolve()
        self._verify = verify
        self._rehash_interval = rehash_interval
        self._debounce = debounce
        self._on_change = on_change
        self._use_events = use_events
        self._lock = threading.Lock()
        self._healthy = False
        self._reason: str | None = "not verified yet"
        self._checks = 0
        self._last_check: float | None = None
        self._last_rehash: float | None = None
        self._baseline: dict[str, tuple[int, int, str]] | None = None
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._observer: Any = None

    # -- state ---------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def compromised(self) -> bool:
        return not self._healthy

    @property
    def reason(self) -> str | None:
        return self._reason

    def status(self) -> SentryStatus:
        with self._lock:
            return SentryStatus(self._healthy, self._reason, self._checks, self._last_check,
                                self._last_rehash)

    def reset(self) -> SentryStatus:
        """Forget a compromise and verify again from scratch."""
        with self._lock:
            self._healthy, self._reason = False, "not verified yet"
        return self.check(force=True)

    # -- checks --------------------------------------------------------------------------
    def check(self, *, force: bool = False) -> SentryStatus:
        """Run the verify callable now (no-op when already compromised unless ``force``)."""
        with self._lock:
            if not force and self._checks and not self._healthy:
                return self._status_locked()
            self._checks += 1
            self._last_check = time.time()
            # hash before verifying: a change racing the verification then differs from
            # the baseline and the next re-hash re-checks it
            before = snapshot(self.model)
            try:
                self._verify(str(self.model))
            except BaseException as exc:  # noqa: BLE001 - any failure means compromised
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                self._mark(False, _describe(exc))
            else:
                self._healthy, self._reason = True, None
                self._baseline = before
                self._last_rehash = time.time()
            status = self._status_locked()
        if self._on_change is not None:
            self._on_change(status)
        return status

    def rehash(self) -> SentryStatus:
        """Re-hash every file; any difference from the verified state triggers a check."""
        current = snapshot(self.model)
        with self._lock:
            self._last_rehash = time.time()
            changed = self._baseline is not None and current != self._baseline
            if changed and self._baseline is not None:
                names = sorted(set(current) ^ set(self._baseline)) or sorted(
                    k for k in current if current[k] != self._baseline.get(k))
                log.warning("re-hash found changes in %s", ", ".join(names[:5]))
        if changed:
            status = self.check()
            if status.healthy:
                # the verifier still accepts it (e.g. only mtime changed): new baseline
                with self._lock:
                    self._baseline = current
            return status
        return self.status()

    def _mark(self, healthy: bool, reason: str | None) -> None:
        if (healthy, reason) != (self._healthy, self._reason) and not healthy:
            log.error("model %s compromised: %s", self.model, reason)
        self._healthy, self._reason = healthy, reason

    def _status_locked(self) -> SentryStatus:
        return SentryStatus(self._healthy, self._reason, self._checks, self._last_check,
                            self._last_rehash)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> SentryStatus:
        """Verify once, then watch in background threads. Returns the first status."""
        self._stop.clear()
        if self._use_events:
            # watch first, verify second: a change during the first check is not missed
            self._start_observer()
        status = self.check(force=True)
        for target, name in ((self._event_loop, "sentry-events"),
                             (self._rehash_loop, "sentry-rehash")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return status

    def stop(self) -> None:
        """Stop watching and join the background threads."""
        self._stop.set()
        self._dirty.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> "Sentry":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _start_observer(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        sentry = self
        watched = self.model if self.model.is_dir() else self.model.parent

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                paths = [getattr(event, "src_path", ""), getattr(event, "dest_path", "")]
                if sentry.model.is_dir() or any(
                        p and Path(os.fsdecode(p)).resolve() == sentry.model for p in paths):
                    sentry._dirty.set()

        self._observer = Observer()
        self._observer.schedule(_Handler(), str(watched), recursive=self.model.is_dir())
        self._observer.start()

    def _event_loop(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            time.sleep(self._debounce)
            self._dirty.clear()
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watcher thread must survive
                log.exception("sentry check failed")

    def _rehash_loop(self) -> None:
        while not self._stop.wait(self._rehash_interval):
            try:
                self.rehash()
            except Exception:  # noqa: BLE001
                log.exception("sentry re-hash failed")


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    where = getattr(exc, "where", None)
    return f"{message} [at {where}]" if where else message


def manifest_verifier(manifest: dict[str, str], root: str | os.PathLike) -> Callable[[str], None]:
    """A verify callable that checks every file against ``{relative name: sha256 hex}``.

    Extra or missing files fail. The simplest verify for :class:`Sentry` when no bundle
    or policy is at hand.
    """
    from mgattest.errors import VerificationError

    base = Path(root)

    def verify(_model: str) -> None:
        seen = {}
        files = [base] if base.is_file() else sorted(
            Path(d) / f for d, _dirs, names in os.walk(base) for f in names)
        for path in files:
            name = path.name if base.is_file() else path.relative_to(base).as_posix()
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            seen[name] = h.hexdigest()
        for name in sorted(set(manifest) | set(seen)):
            if name not in seen:
                raise VerificationError(f"{name} is missing", what="digest", where=name)
            if name not in manifest:
                raise VerificationError(f"{name} is not in the manifest", what="digest",
                                        where=name)
            if seen[name] != manifest[name]:
                raise VerificationError(f"{name} digest changed: sha256 {seen[name]} != "
                                        f"{manifest[name]}", what="digest", where=name)

    return verify
