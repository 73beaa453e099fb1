"""Watch mode: keep re-verifying a model while it is served.

:class:`Sentry` watches a model's files (inotify through watchdog), re-runs a verify
callable on any change, and re-hashes every file periodically to catch what events miss
(changes made while the watcher was down, filesystems without inotify, bind mounts).
It knows nothing of signatures: ``verify`` is any callable that raises on failure.

The model path is followed afresh at every check, as a server opening it would: a
``current -> release-N`` link re-pointed at other bytes is a change like any other.
Special files (FIFOs, sockets, devices), even in ignored directories, are recorded by
kind and never opened, so nothing blocks the sentry; a check that cannot run, fails or
does not finish within ``check_timeout`` makes the model *compromised*, never healthy.
Whatever ``verify`` returns for the last successful check is kept in
:attr:`Sentry.last_verified`, so a server can serve exactly the bytes that were verified
and compare them with what each later check verified.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Generic, Literal, TypedDict, TypeVar

from mgattest._files import entry_digest, read_bounded, tree_entries
from mgattest._text import escape_text
from mgattest.errors import InputError, VerificationError
from mgattest.policy import (load_policy, ModelVerifier, read_model_bytes,
                             TrustOptions, VerifyOptions)
from mgattest.attest import default_bundle_path, parse_checksum_text

if TYPE_CHECKING:
    from mgattest.policy import ModelBytes

_T = TypeVar("_T")
"""What a sentry's verify callable returns (kept as :attr:`Sentry.last_verified`)."""

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # a library: silent unless the application logs


class SentryStatusJSON(TypedDict):
    """The JSON form of a :class:`SentryStatus`."""

    healthy: bool
    status: Literal["healthy", "compromised"]
    reason: str | None
    checks: int
    last_check: float | None
    last_rehash: float | None


@dataclass(frozen=True)
class SentryStatus:
    """A snapshot of the sentry's view."""

    healthy: bool
    reason: str | None  # why it is compromised (None when healthy)
    checks: int  # verifications run so far
    last_check: float | None  # unix time of the last verification
    last_rehash: float | None

    def to_dict(self) -> SentryStatusJSON:
        """A JSON-ready form (``mgattest watch --json``)."""
        return {"healthy": self.healthy, "status": "healthy" if self.healthy else "compromised",
                "reason": self.reason, "checks": self.checks, "last_check": self.last_check,
                "last_rehash": self.last_rehash}


#: snapshot() key of the entry recording what the model path resolves to.
RESOLVED_KEY = "<model path resolves to>"


def snapshot(model: Path) -> dict[str, tuple[int, int, str]]:
    """(size, mtime_ns, digest or description) of every entry of ``model``.

    ``model`` (a file or a directory) is followed as given, and what it resolves to is
    recorded under :data:`RESOLVED_KEY`. Regular files are hashed after a non-blocking,
    type-checked open; symlinks are recorded by target and special files by kind, never
    opened. Unreadable entries are recorded as such (a change the verifier then judges).
    """
    out: dict[str, tuple[int, int, str]] = {RESOLVED_KEY: (0, 0, os.path.realpath(model))}
    if not model.is_dir():
        out[str(model)] = _entry(model, follow=True)
        return out
    for path in tree_entries(model):
        out[str(path)] = _entry(path, follow=False)
    return out


def _entry(path: Path, *, follow: bool) -> tuple[int, int, str]:
    try:
        st = os.stat(path) if follow else os.lstat(path)
        return st.st_size, st.st_mtime_ns, entry_digest(path, st, what="model file")
    except (OSError, InputError) as exc:
        return -1, -1, f"unreadable: {getattr(exc, 'strerror', None) or exc}"


class Sentry(Generic[_T]):
    """Re-verify ``model`` whenever it changes; expose healthy/compromised with a reason.

    ``verify(model_path)`` must raise on failure (any exception means compromised); what
    it returns on success is kept as :attr:`last_verified`. Once compromised the sentry
    stays compromised until :meth:`reset` (a file changed back is still an incident).
    ``rehash_interval`` seconds between full re-hashes; ``debounce`` seconds to let a
    burst of events settle before re-verifying; a check still running after
    ``check_timeout`` seconds reports the model compromised.
    """

    def __init__(self, model: str | os.PathLike[str], verify: Callable[[str], _T], *,
                 rehash_interval: float = 60.0, debounce: float = 0.1,
                 on_change: Callable[[SentryStatus], None] | None = None,
                 use_events: bool = True, check_timeout: float = 600.0) -> None:
        # Absolute but *not* resolved: the path is followed again at every check.
        self.model = Path(os.path.abspath(model))
        self._verify = verify
        self._rehash_interval = rehash_interval
        self._debounce = debounce
        self._on_change = on_change
        self._use_events = use_events
        self._check_timeout = check_timeout
        self._lock = threading.Lock()
        self._healthy = False
        self._reason: str | None = "not verified yet"
        self._checks = 0
        self._last_check: float | None = None
        self._last_rehash: float | None = None
        self._baseline: dict[str, tuple[int, int, str]] | None = None
        self._checking_since: float | None = None  # monotonic start of a running check
        self.last_verified: _T | None = None  # what verify returned for the last good check
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._observer: Any = None
        self._handler: Any = None
        self._watched: tuple[str, ...] = ()  # directories the observer watches

    # -- state ---------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        return self.status().healthy

    @property
    def compromised(self) -> bool:
        return not self.healthy

    @property
    def reason(self) -> str | None:
        return self.status().reason

    def status(self) -> SentryStatus:
        """The current status; never waits for a running check.

        A check running for longer than ``check_timeout`` is reported as compromised:
        a sentry that cannot finish checking cannot vouch for the model.
        """
        since = self._checking_since
        status = SentryStatus(self._healthy, self._reason, self._checks, self._last_check,
                              self._last_rehash)
        if since is not None and time.monotonic() - since > self._check_timeout:
            return SentryStatus(False, f"verification has not finished after "
                                f"{self._check_timeout:g} s; the model cannot be vouched for",
                                status.checks, status.last_check, status.last_rehash)
        return status

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
            self._checking_since = time.monotonic()
            try:
                self._check_locked()
            finally:
                self._checking_since = None
            status = self._status_locked()
        if self._on_change is not None:
            self._on_change(status)
        self._follow_target()
        return status

    def _check_locked(self) -> None:
        # hash before verifying: a change racing the verification then differs from the
        # baseline and the next re-hash re-checks it
        before = snapshot(self.model)
        try:
            verified = self._verify(str(self.model))
        except BaseException as exc:  # any failure means compromised
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self._mark(False, _describe(exc))
            return
        self._healthy, self._reason = True, None
        self._baseline = before
        self.last_verified = verified
        self._last_rehash = time.time()

    def rehash(self) -> SentryStatus:
        """Re-hash every file; any difference from the verified state triggers a check."""
        current = snapshot(self.model)
        with self._lock:
            self._last_rehash = time.time()
            changed = self._baseline is not None and current != self._baseline
            if changed and self._baseline is not None:
                names = sorted(set(current) ^ set(self._baseline)) or sorted(
                    k for k in current if current[k] != self._baseline.get(k))
                log.warning("re-hash found changes in %s",
                            ", ".join(escape_text(n) for n in names[:5]))
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
            # log lines reach terminals too: attacker-named files are escaped
            log.error("model %s compromised: %s", escape_text(self.model), escape_text(reason))
        self._healthy, self._reason = healthy, reason

    def _fail_closed(self, what: str, exc: BaseException) -> None:
        """A background check crashed: the model can no longer be vouched for."""
        log.exception("sentry %s failed", what)
        with self._lock:
            self._mark(False, f"sentry {what} failed: {_describe(exc)}")
            status = self._status_locked()
        if self._on_change is not None:
            self._on_change(status)

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

    def __enter__(self) -> "Sentry[_T]":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _watch_dirs(self) -> tuple[str, ...]:
        """The model's real directory (or the real file's directory) and the directory
        holding the path as given (where a ``current`` link is re-pointed)."""
        real = os.path.realpath(self.model)
        target = real if os.path.isdir(real) else os.path.dirname(real)
        return tuple(dict.fromkeys((target, str(self.model.parent))))

    def _relevant(self, path: Any) -> bool:
        if not path:
            return False
        event_path = os.path.abspath(os.fsdecode(path))
        real = os.path.realpath(self.model)
        return (event_path == str(self.model) or event_path == real
                or event_path.startswith(real.rstrip(os.sep) + os.sep)
                or os.path.realpath(event_path) == real)

    def _start_observer(self) -> None:
        from watchdog.events import FileSystemEventHandler  # noqa: PLC0415 - loaded only when events are used (use_events)
        from watchdog.observers import Observer  # noqa: PLC0415 - as above

        sentry = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if any(sentry._relevant(getattr(event, attr, ""))
                       for attr in ("src_path", "dest_path")):
                    sentry._dirty.set()

        self._observer = Observer()
        self._handler = _Handler()
        self._schedule()
        self._observer.start()

    def _schedule(self) -> None:
        self._watched = self._watch_dirs()
        real = os.path.realpath(self.model)
        for directory in self._watched:
            recursive = directory == real and os.path.isdir(real)
            try:
                self._observer.schedule(self._handler, directory, recursive=recursive)
            except OSError as exc:  # e.g. the directory vanished: re-hashes still run
                log.warning("cannot watch %s: %s", directory, exc)

    def _follow_target(self) -> None:
        """After the path was re-pointed, watch where it points now."""
        if self._observer is None or self._watch_dirs() == self._watched:
            return
        self._observer.unschedule_all()
        self._schedule()

    def _event_loop(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            time.sleep(self._debounce)
            self._dirty.clear()
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - the watcher thread must survive
                self._fail_closed("check", exc)

    def _rehash_loop(self) -> None:
        while not self._stop.wait(self._rehash_interval):
            try:
                self.rehash()
            except Exception as exc:  # noqa: BLE001 - the watcher thread must survive
                self._fail_closed("re-hash", exc)


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    where = getattr(exc, "where", None)
    return f"{message} [at {where}]" if where else message


def manifest_verifier(manifest: dict[str, str],
                      root: str | os.PathLike[str]) -> Callable[[str], ModelBytes]:
    """A verify callable that checks every file against ``{relative name: sha256 hex}``.

    The model is read the way :func:`mgattest.loading.read_model_bytes` reads it (default
    git ignores, no symlinks, special files refused without blocking), once, into memory;
    extra or missing files fail. Returns the verified :class:`~mgattest.loading.ModelBytes`,
    so a server can load exactly the bytes that were checked. The simplest verify for
    :class:`Sentry` when no bundle or policy is at hand.
    """
    base = os.path.abspath(root)

    def verify(_model: str) -> ModelBytes:
        model = read_model_bytes(base)
        seen = model.sha256
        for name in sorted(set(manifest) | set(seen)):
            if name not in seen:
                raise VerificationError(f"{name} is missing", what="digest", where=name)
            if name not in manifest:
                raise VerificationError(f"{name} is not in the manifest", what="digest",
                                        where=name)
            if seen[name] != manifest[name]:
                raise VerificationError(f"{name} digest changed: sha256 {seen[name]} != "
                                        f"{manifest[name]}", what="digest", where=name)
        return model

    return verify


def read_digest_manifest(path: str) -> dict[str, str]:
    """The ``{relative name: sha256 hex}`` of a ``watch --manifest`` file: JSON of that
    shape, or a ``sha256sum`` file (text/binary markers, escaped names, BSD
    ``SHA256 (name) = HEX`` lines; parsed by :func:`mgattest.attest.parse_checksum_text`,
    the parser ``migrate`` uses). Names are relative to the watched model."""
    data = read_bounded(path, 64 << 20, what="digest manifest")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return _sha256sum_manifest(data, path)
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise InputError("digest manifest must map file names to sha256 hex strings",
                         what="manifest", where=path)
    return doc


def _sha256sum_manifest(data: bytes, path: str) -> dict[str, str]:
    """A sha256sum file as ``{name: sha256}``; any line that is not one is an error."""
    parsed = parse_checksum_text(data.decode("utf-8", "surrogateescape"))
    problems = [f"line {b.line}: {b.reason}" for b in parsed.bad_lines]
    problems += [f"line {e.line}: {e.algorithm} (watch checks SHA-256 digests)"
                 for e in parsed.entries if e.algorithm != "sha256"]
    if problems or not parsed.entries:
        raise InputError(f"digest manifest {path} is neither JSON {{name: sha256}} nor a "
                         f"sha256sum file: {'; '.join(problems) or 'no checksum lines'}",
                         what="manifest", where=path)
    manifest: dict[str, str] = {}
    for entry in parsed.entries:
        name = posixpath.normpath(entry.name)
        if manifest.setdefault(name, entry.hex_digest) != entry.hex_digest:
            raise InputError(f"digest manifest {path} lists {name} twice with different "
                             f"digests (line {entry.line})", what="manifest", where=path)
    return manifest


@dataclass(frozen=True)
class WatchSources:
    """What ``mgattest watch`` checks a model against, first match wins: a digest
    ``manifest`` (JSON ``{name: sha256 hex}`` or a ``sha256sum`` file), a ``policy``
    (with ``bundles``, default ``<model>.sigstore.json``), or
    ``keys``/``bundles``/``trusted_root`` alone."""

    bundles: tuple[str, ...] = ()
    policy: str | None = None
    keys: tuple[str, ...] = ()
    manifest: str | None = None
    trusted_root: str | None = None
    allow_unlogged: bool = False


def watch_verifier(model: str | os.PathLike[str],
                   sources: WatchSources) -> Callable[[str], object]:
    """The verify callable :class:`Sentry` runs for ``mgattest watch`` (raises on failure).

    A policy denial is a :class:`VerificationError` naming its first reasons; with nothing
    to check against this raises :class:`InputError`.
    """
    if sources.manifest is not None:
        doc = read_digest_manifest(sources.manifest)
        return manifest_verifier(doc, model)
    if sources.policy is not None:
        return _policy_verifier(model, sources.policy, sources)
    if sources.keys or sources.bundles or sources.trusted_root:
        with_bundles = ModelVerifier(
            None, TrustOptions(trusted_root=sources.trusted_root, keys=sources.keys),
            VerifyOptions(bundles=sources.bundles, allow_unlogged=sources.allow_unlogged))

        def verify_with_bundles(path: str) -> None:
            with_bundles.verify(Path(path))
        return verify_with_bundles
    raise InputError("watch needs --policy, --key/--bundle, or --manifest", what="watch")


def _policy_verifier(model: str | os.PathLike[str], policy: str,
                     sources: WatchSources) -> Callable[[str], None]:
    """Verify under *policy*, reading the model the way ``mgattest.load`` does."""
    bundles = list(sources.bundles) or [str(default_bundle_path(model))]
    under_policy = ModelVerifier(load_policy(policy),
                                 TrustOptions(trusted_root=sources.trusted_root),
                                 VerifyOptions(bundles=tuple(bundles)))

    def verify_with_policy(path: str) -> None:
        # Bundles kept inside the model directory are not model files.
        model_bytes = read_model_bytes(path, exclude=bundles)
        outcome = under_policy.verify(model_bytes)
        if not outcome.allowed:
            reasons = outcome.verdict.reasons if outcome.verdict else []
            raise VerificationError("policy denied: " + "; ".join(reasons[:3]),
                                    what="policy", where=policy)
    return verify_with_policy
