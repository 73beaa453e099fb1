"""Quarantine: move rejected artifacts aside, with an incident record, losing nothing.

Layout of a quarantine directory::

    DIR/<id>/incident.json        the incident (time, paths, digests, verdict, reasons)
    DIR/<id>/payload/<n>-<name>   each moved file or directory
    DIR/<id>.partial/             an incident still being written (or interrupted)

The move is an atomic ``rename`` when source and quarantine share a filesystem, else
copy → fsync → verify digest → remove the original. The journal (``incident.json``) is
written and fsynced *before* anything moves, so after a crash at any point each artifact
is either still at its original path or inside ``DIR/<id>.partial/payload`` and named in
the journal; ``restore`` puts it back from either state. A failure inside
:func:`quarantine` itself rolls back every move it made before raising.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from mgattest._files import (entry_digest, file_kind, open_regular, read_bounded,
                             tree_entries)
from mgattest.errors import InputError, VerificationError
from mgattest.inspect import SAFE, FileReport, worst
from mgattest._jsonutil import JSONObject, JSONValue

INCIDENT_FILE = "incident.json"
PAYLOAD_DIR = "payload"
PARTIAL_SUFFIX = ".partial"
MAX_INCIDENT_BYTES = 16 << 20  # an incident.json is written by us; bound what we read back

# Test hook: called with a step name before each step ("journal", "move:0", "copied:0",
# "removed:0", "finalise", "publish"). Raising (or killing the process) simulates a crash.
fault_hook: Callable[[str], None] | None = None


class QuarantineError(InputError):
    """Quarantine could not be done (nothing was lost; the message says where things are)."""


class RestoreError(InputError):
    """An incident cannot be restored (missing, destination occupied ...)."""


class TamperedQuarantineError(VerificationError):
    """A quarantined artifact no longer matches the digests recorded at quarantine time."""


@dataclass(frozen=True)
class Incident:
    """One quarantine incident as recorded in its ``incident.json``."""

    id: str
    path: Path  # the incident directory
    record: JSONObject

    @property
    def status(self) -> str:
        """The incident's status (``quarantined``, ``restored``, ...)."""
        status: str = self.record.get("status", "unknown")
        return status

    def to_dict(self) -> JSONObject:
        """A JSON-ready form: id, directory and the incident record."""
        return {"id": self.id, "dir": str(self.path), **self.record}


def _step(name: str) -> None:
    if fault_hook is not None:
        fault_hook(name)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, record: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _entry_digest(path: Path) -> str:
    """The digest recorded for one entry: sha256 of a regular file, ``symlink:<target>``,
    or ``special:<kind>`` for a FIFO, socket or device (never opened: it could block)."""
    return entry_digest(path, os.lstat(path), what="file to quarantine",
                        error=QuarantineError)


def tree_digests(path: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``path`` (or of ``path`` itself), by POSIX
    relative name (``"."`` for a single file). Symlinks are recorded by target, special
    files (FIFOs, sockets, devices) by kind, without ever opening them."""
    if path.is_symlink() or not path.is_dir():
        return {".": _entry_digest(path)}
    return {full.relative_to(path).as_posix(): _entry_digest(full)
            for full in tree_entries(path)}


def _fsync_file(path: Path) -> None:
    if not stat.S_ISREG(os.lstat(path).st_mode):
        return  # symlinks and special files hold no data to flush (and could block)
    fd = open_regular(path, what="copied file", error=QuarantineError)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        _fsync_file(path)
        return
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            _fsync_file(Path(dirpath) / name)
        _fsync_dir(Path(dirpath))


def _copy_regular(src: str, dst: str) -> None:
    """shutil's copy function, refusing what a copy cannot move faithfully (and what
    would block or never end: FIFOs, devices)."""
    mode = os.lstat(src).st_mode
    if not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
        raise QuarantineError(f"cannot copy {src} across filesystems: it is "
                              f"{file_kind(mode)}", what="quarantine", where=src)
    shutil.copy2(src, dst, follow_symlinks=False)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    _fsync_dir(path.parent)


def _move(src: Path, dst: Path, *, force_copy: bool, step: str) -> str:
    """Move src to dst: rename when possible, else copy+fsync+verify+remove."""
    if not force_copy:
        try:
            os.rename(src, dst)
            _fsync_dir(dst.parent)
            _fsync_dir(src.parent)
            return "rename"
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    before = tree_digests(src)
    tmp = dst.with_name(dst.name + ".copying")
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, tmp, symlinks=True, copy_function=_copy_regular)
    else:
        _copy_regular(str(src), str(tmp))
    _fsync_tree(tmp)
    if tree_digests(tmp) != before:
        _remove(tmp)
        raise QuarantineError(f"copy of {src} does not match the original (changed while "
                              "copying?); original left in place", where=str(src))
    os.rename(tmp, dst)
    _fsync_dir(dst.parent)
    _step(f"copied:{step}")
    _remove(src)
    _step(f"removed:{step}")
    return "copy"


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return cleaned.strip(".") or "artifact"


def quarantine(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
               dir: str | os.PathLike[str],
               *, reason: str | Iterable[str], verdict: str = "rejected",
               digests: Mapping[str, JSONValue] | None = None, policy_digest: str | None = None,
               force_copy: bool = False, extra: Mapping[str, JSONValue] | None = None
               ) -> Incident:
    """Move ``paths`` (files or directories) into a new incident under ``dir``.

    ``reason`` is one reason or a list of them; ``digests`` the digests the caller
    verified (recorded as given); ``policy_digest`` identifies the policy that rejected
    the artifact. Returns the finished :class:`Incident`. On any failure every artifact
    is back at its original path before :class:`QuarantineError` is raised.
    """
    items = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not items:
        raise QuarantineError("nothing to quarantine")
    for item in items:
        if not item.exists() and not item.is_symlink():
            raise QuarantineError(f"cannot quarantine {item}: no such file or directory",
                                  where=str(item))
    qdir = Path(dir)
    try:
        qdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QuarantineError(f"cannot create quarantine directory {qdir}: {exc.strerror}",
                              where=str(qdir)) from None
    qdir = qdir.resolve()
    for item in items:
        resolved = item.resolve()
        if resolved == qdir or resolved in qdir.parents:
            raise QuarantineError(f"cannot quarantine {item}: it contains the quarantine "
                                  "directory", where=str(item))
    now = _now()
    incident_id = now.strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(4)
    partial = qdir / (incident_id + PARTIAL_SUFFIX)
    payload = partial / PAYLOAD_DIR
    reasons = [reason] if isinstance(reason, str) else list(reason)
    record: dict[str, Any] = {
        "id": incident_id,
        "time": now.isoformat().replace("+00:00", "Z"),
        "status": "quarantining",
        "verdict": verdict,
        "reasons": reasons,
        "policy_digest": policy_digest,
        "digests": {str(k): v for k, v in (digests or {}).items()},
        "items": [],
        **(dict(extra) if extra else {}),
    }
    for n, item in enumerate(items):
        record["items"].append({
            "original": str(Path(os.path.abspath(item))),
            "stored": f"{PAYLOAD_DIR}/{n}-{_safe_name(item.name)}",
            "kind": "directory" if item.is_dir() and not item.is_symlink() else "file",
            "sha256": tree_digests(item),
            "moved": False,
        })
    try:
        payload.mkdir(parents=True)
        _step("journal")
        _write_json_atomic(partial / INCIDENT_FILE, record)
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise QuarantineError(f"cannot write the incident journal in {qdir}: {exc}",
                              where=str(qdir)) from None
    moved: list[dict[str, Any]] = []
    try:
        for n, entry in enumerate(record["items"]):
            _step(f"move:{n}")
            entry["method"] = _move(Path(entry["original"]), partial / entry["stored"],
                                    force_copy=force_copy, step=str(n))
            entry["moved"] = True
            moved.append(entry)
        _step("finalise")
        record["status"] = "quarantined"
        _write_json_atomic(partial / INCIDENT_FILE, record)
        _step("publish")
        final = qdir / incident_id
        os.rename(partial, final)
        _fsync_dir(qdir)
    except BaseException as exc:
        problems = _roll_back(partial, moved)
        if problems:
            raise QuarantineError(
                f"quarantine failed ({exc}) and rolling back failed: {'; '.join(problems)}; "
                f"the artifacts are recorded in {partial / INCIDENT_FILE}",
                where=str(partial)) from None
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise QuarantineError(f"quarantine failed, nothing moved: {exc}",
                              where=str(items[0])) from None
    return Incident(incident_id, final, record)


def _roll_back(partial: Path, moved: list[dict[str, Any]]) -> list[str]:
    problems = []
    for entry in reversed(moved):
        try:
            _move(partial / entry["stored"], Path(entry["original"]), force_copy=False,
                  step="rollback")
            entry["moved"] = False
        except OSError as exc:
            problems.append(f"{entry['original']}: {exc}")
    # Also catch the item whose move was interrupted after its rename but before we
    # recorded it (the journal lists every item, so look for each one).
    for entry in _load_record(partial).get("items", []) if partial.exists() else []:
        stored = partial / entry["stored"]
        if (stored.exists() or stored.is_symlink()) and not Path(entry["original"]).exists():
            try:
                _move(stored, Path(entry["original"]), force_copy=False, step="rollback")
            except OSError as exc:
                problems.append(f"{entry['original']}: {exc}")
    if not problems:
        shutil.rmtree(partial, ignore_errors=True)
    return problems


def _load_record(incident_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads(read_bounded(incident_dir / INCIDENT_FILE, MAX_INCIDENT_BYTES,
                                         what="incident record"))
    except (InputError, ValueError, RecursionError):
        return {}
    return record if isinstance(record, dict) else {}


def list_incidents(dir: str | os.PathLike[str]) -> list[Incident]:
    """Every incident under ``dir`` (oldest first), including interrupted ones."""
    qdir = Path(dir)
    if not qdir.is_dir():
        raise InputError(f"no quarantine directory at {qdir}", where=str(qdir))
    out = []
    for entry in sorted(qdir.iterdir()):
        if not entry.is_dir():
            continue
        record = _load_record(entry)
        if not record:
            continue
        incident_id = entry.name.removesuffix(PARTIAL_SUFFIX)
        if entry.name.endswith(PARTIAL_SUFFIX):
            record = {**record, "status": "interrupted"}
        out.append(Incident(incident_id, entry, record))
    return out


def get_incident(dir: str | os.PathLike[str], incident_id: str) -> Incident:
    """The incident with this id (or unique id prefix)."""
    matches = [i for i in list_incidents(dir) if i.id == incident_id]
    if not matches:
        matches = [i for i in list_incidents(dir) if i.id.startswith(incident_id)]
    if len(matches) != 1:
        raise RestoreError(f"{'no' if not matches else 'ambiguous'} incident {incident_id!r} "
                           f"in {dir}", where=str(dir))
    return matches[0]


def restore(dir: str | os.PathLike[str], incident_id: str, *, to: str | os.PathLike[str] | None = None,
            force: bool = False) -> Incident:
    """Move an incident's artifacts back to their original paths, or into the directory
    ``to`` (created if missing) under their original names.

    Refuses to overwrite an existing path, a ``to`` that exists but is not a directory,
    two artifacts that would land on the same name, and artifacts whose bytes changed
    inside the quarantine (unless ``force``). Works for interrupted incidents too.
    """
    if to is not None and (os.path.lexists(to) and not Path(to).is_dir()):
        raise RestoreError(f"--to {to} is not a directory: --to names the directory the "
                           "artifacts are restored into", where=str(to))
    incident = get_incident(dir, incident_id)
    record = dict(incident.record)
    if record.get("status") == "restored":
        raise RestoreError(f"incident {incident.id} was already restored", where=incident.id)
    plan: list[tuple[Path, Path]] = []
    for entry in record.get("items", []):
        stored = incident.path / entry["stored"]
        original = Path(entry["original"])
        dest = Path(to) / original.name if to is not None else original
        if to is None and (original.exists() or original.is_symlink()) \
                and tree_digests(original) == entry.get("sha256"):
            continue  # never moved, or copied but not yet removed: the original is intact
        if not stored.exists() and not stored.is_symlink():
            raise RestoreError(f"incident {incident.id}: {entry['stored']} is missing",
                               where=str(stored))
        if dest.exists() or dest.is_symlink():
            raise RestoreError(f"will not overwrite {dest} (restore with --to DIR)",
                               where=str(dest))
        if not force and tree_digests(stored) != entry.get("sha256"):
            raise TamperedQuarantineError(
                f"{stored} changed while in quarantine (digest mismatch); refusing to "
                "restore it (use --force to override)", where=str(stored))
        if any(dest == planned for _s, planned in plan):
            raise RestoreError(f"two artifacts of incident {incident.id} would both be "
                               f"restored to {dest}; restore them to their original paths",
                               where=str(dest))
        plan.append((stored, dest))
    for stored, dest in plan:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _move(stored, dest, force_copy=False, step="restore")
    record["status"] = "restored"
    record["restored_at"] = _now().isoformat().replace("+00:00", "Z")
    record["restored_to"] = [str(d) for _s, d in plan]
    _write_json_atomic(incident.path / INCIDENT_FILE, record)
    final = incident.path
    if incident.path.name.endswith(PARTIAL_SUFFIX):
        final = incident.path.with_name(incident.id)
        os.rename(incident.path, final)
    return Incident(incident.id, final, record)


def quarantine_rejected(model: str | os.PathLike[str], dir: str | os.PathLike[str],
                        reasons: list[str], *,
                        policy: str | os.PathLike[str] | None = None) -> Incident | None:
    """Move a model that verification rejected into a new incident (verdict ``rejected``).

    The incident records the sha256 of *policy*, the policy file that rejected it, when
    that file exists. Returns None, moving nothing, when *model* is not on disk.
    """
    if not Path(model).exists():
        return None
    policy_digest = None
    if policy is not None and Path(policy).is_file():
        policy_digest = "sha256:" + hashlib.sha256(Path(policy).read_bytes()).hexdigest()
    return quarantine(model, dir, reason=reasons, verdict="rejected",
                      policy_digest=policy_digest)


def quarantine_findings(path: str | os.PathLike[str], dir: str | os.PathLike[str],
                        reports: list[FileReport], *, source: str) -> Incident | None:
    """Move *path* into a new incident when its content reports are not all safe.

    The incident's verdict is the worst report's, its reasons every report's, and
    *source* (e.g. ``"mgattest inspect"``) says who quarantined it. Returns None, moving
    nothing, when every report is safe.
    """
    verdict = worst(*(r.verdict for r in reports)) if reports else SAFE
    if verdict == SAFE:
        return None
    reasons = [line for r in reports for line in r.reasons()]
    return quarantine(path, dir, reason=reasons, verdict=verdict, extra={"source": source})
