"""The embedded local transparency log, created on first use.

Location: ``$MGATTEST_HOME/log/`` when ``MGATTEST_HOME`` is set, else
``platformdirs.user_data_dir("mgattest")/log/``. Files: ``log.db`` (SQLite, the log),
``log.key`` (the log's private key, mode 0600) and ``log.json`` (origin, public key,
creation time: what a verifier on this machine trusts without any setup). A log at any
other path ``X.db`` (``--log-db``) uses ``X.key`` and ``X.json`` the same way.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import platformdirs
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from mgattest._jsonutil import JSONObject
from mgattest.attest._trustroot import TrustedRoot, log_instance_for_key
from mgattest.errors import InputError
from mgattest.tlog import LogSigner, LogStore, LogVerifier, TransparencyLog, TrustedLog

ENV_HOME = "MGATTEST_HOME"


class LocalLogError(InputError):
    """The local log's files are unreadable or inconsistent."""


def mgattest_home() -> Path:
    """The per-user mgattest directory (``MGATTEST_HOME`` overrides)."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("mgattest"))


def log_dir() -> Path:
    """Directory of the embedded log."""
    return mgattest_home() / "log"


def default_db_path() -> Path:
    """The embedded log's SQLite file."""
    return log_dir() / "log.db"


def _paths(db_path: str | Path | None, key_path: str | Path | None = None
           ) -> tuple[Path, Path, Path]:
    # A log at X.db keeps its key in X.key and its public description in X.json.
    db = Path(db_path) if db_path is not None else default_db_path()
    key = Path(key_path) if key_path is not None else db.with_suffix(".key")
    return db, key, db.with_suffix(".json")


def open_local_log(db_path: str | Path | None = None, *, key_path: str | Path | None = None,
                   create: bool = True) -> TransparencyLog:
    """Open the log at ``db_path`` (default: the embedded log), creating it with a
    fresh key on first use, under a file lock so concurrent signers agree."""
    db, key, meta = _paths(db_path, key_path)
    directory = db.parent
    if not db.exists() and not create:
        raise LocalLogError(f"no log at {db}", what="local log", where=str(db))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(db.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not db.exists():
            log = TransparencyLog.init(db, key)
            meta.write_text(json.dumps({
                "origin": log.origin,
                "public_key_pem": log.signer.public_pem().decode(),
                "log_id": log.log_id.hex(),
                "created": int(time.time()) - 60,  # margin for clock steps between calls
            }, indent=2) + "\n", encoding="utf-8")
            return log
    try:
        signer = LogSigner.from_pem(key.read_bytes())
    except OSError as exc:
        raise LocalLogError(f"cannot read local log key {key}: {exc.strerror}",
                            what="local log", where=str(key)) from None
    return TransparencyLog.open(db, signer)


def local_log_info(db_path: str | Path | None = None) -> JSONObject | None:
    """The ``.json`` description of a log (default: embedded), or None if absent."""
    db, _key, meta = _paths(db_path)
    if not meta.exists():
        if db_path is not None and db.is_file():
            return _info_from_db(db)  # e.g. made by `mgattest log init`
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LocalLogError(f"cannot read {meta}: {exc}", what="local log",
                            where=str(meta)) from None
    if not isinstance(info, dict) or not isinstance(info.get("public_key_pem"), str):
        raise LocalLogError(f"{meta} is malformed", what="local log", where=str(meta))
    return info


def _info_from_db(db: Path) -> JSONObject:
    store = LogStore.open(str(db))
    try:
        meta = store.meta()
    finally:
        store.close()
    if not meta.get("public_key") or not meta.get("origin"):
        raise LocalLogError(f"{db} does not describe its log key and origin",
                            what="local log", where=str(db))
    return {"origin": meta["origin"], "public_key_pem": meta["public_key"],
            "log_id": meta.get("log_id"), "created": int(meta.get("created", 0)) - 60}


def local_trusted_logs(db_path: str | Path | None = None) -> list[TrustedLog]:
    """The embedded log as a ``tlog.trust.TrustedLog`` (with its origin), if it exists."""
    info = local_log_info(db_path)
    if info is None:
        return []
    verifier = LogVerifier.from_pem(info["public_key_pem"].encode())
    return [TrustedLog.for_verifier(verifier, origin=info.get("origin"),
                                    base_url=local_base_url(db_path))]


def local_base_url(db_path: str | Path | None = None) -> str:
    """The ``baseUrl`` a trusted root gives this log: ``https://<origin>``.

    Verifiers derive the expected checkpoint origin from ``baseUrl`` (host and path, as
    for Rekor v2), and protobuf-specs has no origin field, so the URL carries it."""
    info = local_log_info(db_path) or {}
    origin = info.get("origin")
    if isinstance(origin, str) and origin:
        return f"https://{origin}"
    return _paths(db_path)[0].resolve().as_uri()


def local_trusted_root(db_path: str | Path | None = None) -> TrustedRoot | None:
    """A TrustedRoot listing the log (default: embedded), or None when it does not exist."""
    info = local_log_info(db_path)
    if info is None:
        return None
    key = load_pem_public_key(info["public_key_pem"].encode())
    instance = log_instance_for_key(key, base_url=local_base_url(db_path),
                                    valid_from=int(info.get("created", 0)))
    return TrustedRoot(tlogs=(instance,), source=f"log {_paths(db_path)[0]}")
