"""Migrate a model tree from home-grown claims to mgattest bundles (``mgattest migrate``).

:func:`migrate_tree` finds the old claims (:mod:`mgattest.attest._legacy_claims`), checks
each against the bytes on disk (digests and HMACs compared in constant time, sizes), and
only then signs each file whose claims all hold through the one sign pipeline
(:func:`~mgattest.attest._sign.hash_for_signing` + :func:`~mgattest.attest._sign.sign_digests`).

The unit of a migrated model is **one file**: old claims are per file, so each verified
file gets ``<file>.sigstore.json`` beside it (what ``mgattest sign FILE`` writes and what
``mgattest verify FILE`` and ``mgattest audit`` look for). A file whose claim fails, whose
claim cannot be read, or that has no claim is not signed (the last one only with
``sign_unclaimed``). The SHA-256 that signing computes must equal the one the claims were
checked against, so a file changed in between is not signed. Nothing existing is written
to: the only files created are the new bundles (none with ``dry_run``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Protocol, Sequence, TypedDict

from mgattest._files import open_regular, read_bounded
from mgattest.attest._legacy_claims import Claim, ClaimProblem, collect_claims
from mgattest.attest._sign import (BundleSigner, PendingBundleFile, SignOptions,
                                   hash_for_signing, sign_digests)
from mgattest.attest._walk import default_bundle_path
from mgattest.errors import InputError, MgattestError, VerificationError

FileStatus = Literal["signed", "verified", "failed", "unclaimed", "bundle-exists"]
KEY_ENCODINGS = ("raw", "hex", "base64")
MAX_HMAC_KEY_FILE = 64 * 1024
_CHUNK = 1 << 20


class MigrationError(VerificationError):
    """A file changed between the check of its claims and its signature."""


@dataclass(frozen=True)
class MigrateOptions:
    """How :func:`migrate_tree` runs.

    ``hmac_key``: the key of the old HMAC signatures (required when there are any);
    ``dry_run``: check and plan, write nothing; ``sign_unclaimed``: also sign model files
    no claim covers; ``overwrite``: replace existing ``<file>.sigstore.json`` bundles;
    ``sign``: the statement options (file digests must stay whole-file SHA-256);
    ``authenticated_only``: sign only files an HMAC claim vouches for (checksum files,
    metadata and allowed lists are unauthenticated: whoever could change the model could
    change them).
    """

    hmac_key: bytes | None = None
    dry_run: bool = False
    sign_unclaimed: bool = False
    authenticated_only: bool = False
    overwrite: bool = False
    sign: SignOptions = field(default_factory=SignOptions)


@dataclass(frozen=True)
class ClaimCheck:
    """One claim checked against the file: ``actual`` is what the bytes gave (None when
    the file could not be read, and for a failed HMAC, which is never shown)."""

    claim: Claim
    ok: bool
    actual: str | None

    def describe(self) -> str:
        """``sha256 claimed by SHA256SUMS:2: expected ab.., actual cd..`` (or ``holds``)."""
        head = f"{self.claim.kind} claimed by {self.claim.source}"
        if self.ok:
            return f"{head}: holds"
        if self.claim.kind.startswith("hmac-"):
            return f"{head}: does not match the file (changed bytes or another key)"
        return f"{head}: expected {self.claim.expected}, actual {self.actual or 'unreadable'}"


@dataclass(frozen=True)
class FileMigration:
    """What happened to one file (``name`` relative to the root)."""

    name: str
    status: FileStatus
    checks: tuple[ClaimCheck, ...] = ()
    reasons: tuple[str, ...] = ()  # why it failed or was left unsigned
    bundle: str | None = None  # written (signed), to write (dry run) or already there
    log_index: int | None = None


class ClaimCheckJSON(TypedDict):
    """A :class:`ClaimCheck` in ``migrate --json`` output."""

    scheme: str
    source: str
    kind: str
    ok: bool
    expected: str
    actual: str | None


class FileMigrationJSON(TypedDict):
    """A :class:`FileMigration` in ``migrate --json`` output."""

    file: str
    status: FileStatus
    bundle: str | None
    logIndex: int | None
    reasons: list[str]
    claims: list[ClaimCheckJSON]


class MigrationJSON(TypedDict):
    """``mgattest migrate --json``."""

    ok: bool
    root: str
    dryRun: bool
    claimFiles: list[str]
    files: list[FileMigrationJSON]
    problems: list[dict[str, str]]
    notes: list[dict[str, str]]


@dataclass(frozen=True)
class MigrationReport:
    """The outcome of :func:`migrate_tree`; ``failed`` when any claim failed."""

    root: str
    dry_run: bool
    files: tuple[FileMigration, ...]
    problems: tuple[ClaimProblem, ...]  # claim documents no file can be blamed for
    notes: tuple[ClaimProblem, ...]
    claim_files: tuple[str, ...]

    @property
    def failed(self) -> bool:
        """Whether any claim failed or could not be read (``mgattest migrate`` exits 1)."""
        return bool(self.problems) or any(f.status == "failed" for f in self.files)

    def to_json(self) -> MigrationJSON:
        """The report as ``mgattest migrate --json`` prints it."""
        return {
            "ok": not self.failed, "root": self.root, "dryRun": self.dry_run,
            "claimFiles": list(self.claim_files),
            "files": [{"file": f.name, "status": f.status, "bundle": f.bundle,
                       "logIndex": f.log_index, "reasons": list(f.reasons),
                       "claims": [{"scheme": c.claim.scheme, "source": c.claim.source,
                                   "kind": c.claim.kind, "ok": c.ok,
                                   "expected": c.claim.expected, "actual": c.actual}
                                  for c in f.checks]} for f in self.files],
            "problems": [_problem_json(p) for p in self.problems],
            "notes": [_problem_json(p) for p in self.notes],
        }


def _problem_json(problem: ClaimProblem) -> dict[str, str]:
    return {"source": problem.source, "message": problem.message}


# --------------------------------------------------------------------------- the key

def read_hmac_key(*, env: str | None = None, file: str | os.PathLike[str] | None = None,
                  encoding: str = "raw") -> bytes | None:
    """The old scripts' HMAC key from an environment variable or a file (never an
    argument: arguments show in process listings); None when neither is given.

    ``raw``: the bytes as they are (UTF-8 for a variable; one trailing newline of a file
    dropped); ``hex``/``base64``: decoded (see ``KEY_ENCODINGS``).
    """
    if encoding not in KEY_ENCODINGS:
        raise InputError(f"--hmac-key-encoding must be one of {', '.join(KEY_ENCODINGS)}, "
                         f"not {encoding!r}", what="--hmac-key-encoding")
    if env is not None and file is not None:
        raise InputError("give one of --hmac-key-env and --hmac-key-file", what="HMAC key")
    if env is None and file is None:
        return None
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise InputError(f"environment variable {env} is not set or empty",
                             what="--hmac-key-env", where=env)
        raw, where = value.encode("utf-8"), env
    else:
        assert file is not None
        raw, where = read_bounded(file, MAX_HMAC_KEY_FILE, what="HMAC key file"), str(file)
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
    try:
        key = raw if encoding == "raw" else bytes.fromhex(raw.decode("ascii").strip()) \
            if encoding == "hex" else base64.b64decode(raw.strip(), validate=True)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InputError(f"the HMAC key in {where} is not {encoding}", what="HMAC key",
                         where=where) from None
    if not key:
        raise InputError(f"the HMAC key in {where} is empty", what="HMAC key", where=where)
    return key


# --------------------------------------------------------------------------- checking

class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True)
class _Measured:
    """What the bytes of one file gave: size and hex values by claim kind."""

    size: int
    values: dict[str, str]


def _measure(path: Path, kinds: set[str], key: bytes | None) -> _Measured:
    """Read ``path`` once (regular file, no symlink), computing what the claims need."""
    hashers: dict[str, _Hasher] = {"sha256": hashlib.sha256()}
    if "sha512" in kinds:
        hashers["sha512"] = hashlib.sha512()
    for kind, digest in (("hmac-sha256", hashlib.sha256), ("hmac-sha512", hashlib.sha512)):
        if kind in kinds and key is not None:
            hashers[kind] = hmac.new(key, digestmod=digest)
    fd = open_regular(path, what="model file", error=VerificationError,
                      flags=os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    size = 0
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            size += len(chunk)
            for h in hashers.values():
                h.update(chunk)
    return _Measured(size, {k: h.hexdigest() for k, h in hashers.items()})


def _check(claim: Claim, measured: _Measured) -> ClaimCheck:
    actual = str(measured.size) if claim.kind == "size" else measured.values.get(claim.kind)
    ok = actual is not None and hmac.compare_digest(actual.encode(), claim.expected.encode())
    if claim.kind.startswith("hmac-") and not ok:
        # The HMAC of changed bytes under the old key would be a valid old-style signature
        # of them: never put it in a report (CI logs are often public).
        actual = None
    return ClaimCheck(claim, ok, actual)


def _file_problem(root: Path, name: str) -> str | None:
    """Why ``name`` cannot be checked as a regular file inside ``root`` (None: it can)."""
    path = root / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "file is missing"
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        return "file is a symbolic link (migrate signs regular files only)"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        return "file is outside the migration root (through a symlinked directory)"
    return None


def _check_file(root: Path, name: str, claims: Sequence[Claim],
                key: bytes | None) -> tuple[tuple[ClaimCheck, ...], list[str], str | None]:
    """The checks of ``claims`` against ``name``, reasons it fails, and its SHA-256."""
    problem = _file_problem(root, name)
    if problem is not None:
        return tuple(ClaimCheck(c, False, None) for c in claims), [problem], None
    measured = _measure(root / name, {c.kind for c in claims}, key)
    checks = tuple(_check(c, measured) for c in claims)
    reasons = [c.describe() for c in checks if not c.ok]
    return checks, reasons, measured.values["sha256"]


# --------------------------------------------------------------------------- signing

def _provenance_options(options: SignOptions, checks: Sequence[ClaimCheck]) -> SignOptions:
    """Sign options whose SLSA parameters record which old claims were verified."""
    if options.predicate_type is not None or options.format != "intoto":
        return options
    migrated = [{"scheme": c.claim.scheme, "source": c.claim.source, "claim": c.claim.kind}
                for c in checks]
    parameters = {**(options.provenance.parameters or {}), "migratedFrom": migrated}
    return dataclasses.replace(options, provenance=dataclasses.replace(
        options.provenance, parameters=parameters))


def _sign_file(root: Path, name: str, verified_sha256: str, checks: Sequence[ClaimCheck],
               signer: BundleSigner, options: MigrateOptions) -> int | None:
    """Sign one verified file; its log index (None when not logged)."""
    path = root / name
    pending = PendingBundleFile(default_bundle_path(path), overwrite=options.overwrite).check()
    digests = hash_for_signing(path, options.sign.digests, exclude=[pending.path])
    signed = digests.files[0].digest.get("sha256") if len(digests.files) == 1 else None
    if signed != verified_sha256:
        raise MigrationError(f"{name} changed after its claims were checked (sha256 "
                             f"{verified_sha256} checked, {signed} read for signing); "
                             "not signed", what="migrate", where=name)
    result = sign_digests(digests, signer, _provenance_options(options.sign, checks),
                          output=pending)
    entries = result.bundle["verificationMaterial"].get("tlogEntries") or []
    return int(entries[0]["logIndex"]) if entries else None


def _unclaimed_reason(checks: Sequence[ClaimCheck]) -> str:
    if checks:
        return "only a size claim, which does not establish the bytes"
    return "no old claim covers this file"


def migrate_tree(root: str | os.PathLike[str], signer: BundleSigner | None,
                 options: MigrateOptions = MigrateOptions(), *,
                 progress: Callable[[str], object] | None = None) -> MigrationReport:
    """Check every old claim under ``root`` and sign the files whose claims hold.

    ``signer`` may be None only with ``options.dry_run``. Raises :class:`InputError` for
    a missing root, HMAC claims without a key, or digest options other than whole-file
    SHA-256; failed claims, and files that could not be signed (a name the sign pipeline
    refuses, a log error, bytes changed since the check: :class:`MigrationError`), are in
    the report (``report.failed``), not raised.
    ``progress(name)`` is called before each file is checked.
    """
    base = Path(root)
    digests = options.sign.digests
    if digests.algorithm != "sha256" or digests.shard_size is not None:
        raise InputError("migrate signs whole-file SHA-256 digests (the ones checked "
                         "against the old claims)", what="digest options")
    if signer is None and not options.dry_run:
        raise InputError("migrate needs a signer (or a dry run)", what="signer")
    inventory = collect_claims(base)
    hmac_claims = [c for c in inventory.claims if c.kind.startswith("hmac-")]
    if hmac_claims and options.hmac_key is None:
        raise InputError(f"{len(hmac_claims)} HMAC claim(s) need the old key (first: "
                         f"{hmac_claims[0].source}); give --hmac-key-env VAR or "
                         "--hmac-key-file FILE", what="HMAC key",
                         where=hmac_claims[0].source)
    by_target: dict[str, list[Claim]] = defaultdict(list)
    for claim in inventory.claims:
        by_target[claim.target].append(claim)
    blamed: dict[str, list[str]] = defaultdict(list)
    for problem in inventory.problems:
        if problem.target is not None:
            blamed[problem.target].append(f"{problem.source}: {problem.message}")
    orphans = tuple(p for p in inventory.problems if p.target is None)
    names = sorted(set(by_target) | set(blamed) | set(inventory.candidates))
    results = []
    for name in names:
        if progress is not None:
            progress(name)
        results.append(_migrate_file(base, name, by_target.get(name, []),
                                     blamed.get(name, []), signer, options))
    return MigrationReport(str(base), options.dry_run, tuple(results), orphans,
                           tuple(inventory.notes), tuple(inventory.claim_files))


def _migrate_file(root: Path, name: str, claims: Sequence[Claim], blamed: Sequence[str],
                  signer: BundleSigner | None, options: MigrateOptions) -> FileMigration:
    checks, reasons, sha256 = _check_file(root, name, claims, options.hmac_key)
    reasons = [*blamed, *reasons]
    if reasons or sha256 is None:
        return FileMigration(name, "failed", checks, tuple(reasons))
    proven = any(c.claim.kind != "size" for c in checks)
    if not proven and not options.sign_unclaimed:
        return FileMigration(name, "unclaimed", checks, (_unclaimed_reason(checks),))
    if options.authenticated_only and proven and \
            not any(c.claim.kind.startswith("hmac-") for c in checks):
        return FileMigration(name, "unclaimed", checks, (
            "only unauthenticated digest claims (--authenticated-only asks for an HMAC)",))
    bundle_path = default_bundle_path(root / name)
    bundle = bundle_path.relative_to(root).as_posix()
    if os.path.lexists(bundle_path) and not options.overwrite:
        return FileMigration(name, "bundle-exists", checks,
                             ("a bundle is already there (--force replaces it)",), bundle)
    if options.dry_run or signer is None:
        return FileMigration(name, "verified", checks, (), bundle)
    try:
        log_index = _sign_file(root, name, sha256, checks, signer, options)
    except MgattestError as exc:  # this file cannot be signed (name, log, changed bytes)
        where = f" [at {exc.where}]" if exc.where else ""
        return FileMigration(name, "failed", checks, (f"not signed: {exc.message}{where}",))
    return FileMigration(name, "signed", checks, (), bundle, log_index)
