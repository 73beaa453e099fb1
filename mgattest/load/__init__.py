"""Verify-then-load: deserialise a model only if the policy allows exactly these bytes.

``load(path, policy=..., bundles=[...])`` reads every file of the model ONCE into
memory, hashes those bytes, verifies the bundles, scans the content, evaluates the
policy, and deserialises the same in-memory bytes. Replacing the file after the read
cannot change what is loaded: there is no time-of-check/time-of-use gap.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from mgattest.errors import InputError, VerificationError
from mgattest.load.cache import VerificationCache, default_cache
from mgattest.policy.errors import PolicyDenied

if TYPE_CHECKING:
    from mgattest.policy.model import Policy
    from mgattest.policy.verdict import Verdict

__all__ = ["ModelBytes", "PolicyDenied", "VerificationCache", "load", "read_model_bytes",
           "verify_model_bytes"]

MAX_MODEL_FILES = 100_000


@dataclass(frozen=True)
class ModelBytes:
    """The bytes of every file of a model, read once, with their SHA-256 digests."""

    root: str
    single_file: bool
    # name → the file's bytes (name as in statement subjects): a private, writable
    # buffer (anonymous mmap) that loaders build zero-copy views into.
    files: dict[str, Any]
    sha256: dict[str, str]  # name → hex
    identity: tuple[tuple[str, int, int, int, int], ...]  # (name, dev, ino, size, mtime_ns)
    # name → the content scan's restricted-unpickler admission walk over these bytes
    # (filled by scan_model; the loader re-checks it covers the bytes it loads).
    admissions: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def read_model_bytes(path: str | os.PathLike[str], *, ignore: Iterable[str] = (),
                     exclude: Iterable[str | os.PathLike[str]] = (),
                     allow_symlinks: bool = False) -> ModelBytes:
    """Read a model (file or directory) into memory without following symlinks.

    Each file is opened with ``O_NOFOLLOW`` and checked to be the regular file the walk
    saw; its size must not change while it is read.
    """
    from mgattest.attest.walk import open_model_file, walk_model_detailed  # noqa: PLC0415

    walk = walk_model_detailed(path, ignore=list(ignore), exclude=list(exclude),
                               allow_symlinks=allow_symlinks)
    if len(walk.files) > MAX_MODEL_FILES:
        raise InputError(f"model has more than {MAX_MODEL_FILES} files", what="model",
                         where=str(path))
    files, digests, ident = {}, {}, []
    for mf in walk.files:
        fd = open_model_file(walk.root, mf, single_file=walk.single_file)
        with os.fdopen(fd, "rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            data, digest = _read_and_hash(fh, st.st_size, mf.name)
            after = os.fstat(fh.fileno())
        if after.st_size != st.st_size or after.st_mtime_ns != st.st_mtime_ns:
            raise InputError(f"model file {mf.name!r} changed while it was read",
                             what="model file", where=mf.name)
        files[mf.name] = data
        digests[mf.name] = digest
        ident.append((mf.name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return ModelBytes(walk.root, walk.single_file, files, digests, tuple(ident))


_CHUNK = 1 << 20


def _read_and_hash(fh: Any, size: int, name: str) -> tuple[Any, str]:
    """Read exactly *size* bytes into a private buffer, hashing each chunk as it lands
    (while it is still in cache); the file must end where fstat said.

    The buffer is anonymous private memory (``mmap(-1, size)``): unlike a bytearray it
    is not zero-filled first, and unlike a file mapping no other process can change it.
    """
    buf: Any = mmap.mmap(-1, size) if size else bytearray()
    view = memoryview(buf)
    h = hashlib.sha256()
    pos = 0
    while pos < size:
        n = fh.readinto(view[pos:pos + _CHUNK])
        if not n:
            raise InputError(f"model file {name!r} shrank while it was read",
                             what="model file", where=name)
        h.update(view[pos:pos + n])
        pos += n
    if fh.read(1):
        raise InputError(f"model file {name!r} grew while it was read", what="model file",
                         where=name)
    return buf, h.hexdigest()


def model_check(model: ModelBytes, attestations: list[Any]) -> Any:
    """A ModelCheck for the in-memory bytes.

    Every file gets its SHA-256 plus whatever other digests the subjects use
    (``sha512``, ``blake2b``, ``blake3``, ``<alg>-shard-merkle``), computed from the
    same bytes. A file named by a subject whose digests all differ is ``mismatch``
    (shard mode names the first differing shard and byte range); a subject naming a
    file absent here is ``missing``.
    """
    from mgattest.attest.digests import shard_tree_root, supported_algorithms  # noqa: PLC0415
    from mgattest.policy.modelcheck import (  # noqa: PLC0415
        SHARD_SUFFIX,
        build_model_check,
        digest_plan,
        expectations,
    )

    by_name, anywhere = expectations(attestations)
    supported = supported_algorithms()
    digests: dict[str, dict[str, str]] = {}
    shard_lists: dict[tuple[str, str], list[str]] = {}
    for name in sorted(model.files):
        data = model.files[name]
        wanted = anywhere if model.single_file else by_name.get(name, [])
        got = digests[name] = {"sha256": model.sha256[name]}
        for alg, size in digest_plan(wanted, supported):
            if size is None:
                if alg not in got:
                    got[alg] = _hash(alg, data).hexdigest()
                continue
            view = memoryview(data)
            shards = [_hash(alg, view[i:i + size]).digest() for i in range(0, len(data), size)]
            got[alg + SHARD_SUFFIX] = shard_tree_root(shards, alg).hex()
            shard_lists[(name, alg + SHARD_SUFFIX)] = [s.hex() for s in shards]
    return build_model_check(model.root, model.single_file, digests,
                             lambda n, k: shard_lists.get((n, k)), by_name)


def _hash(algorithm: str, data: Any) -> Any:
    if algorithm == "blake3":
        import blake3  # noqa: PLC0415

        return blake3.blake3(data)
    return hashlib.new(algorithm, data)


def scan_model(model: ModelBytes) -> dict[str, Any]:
    """Content reports for every file, from the in-memory bytes.

    A pickle's walk is also its admission walk: it is kept in ``model.admissions`` so
    that loading the same bytes does not walk them a second time."""
    from mgattest.inspect import scan_bytes  # noqa: PLC0415

    def directory_of(name: str) -> str:
        # ONNX external data is resolved (and must stay) beside the file that names it.
        if model.single_file:
            return os.path.dirname(os.path.abspath(model.root))
        return os.path.dirname(os.path.join(model.root, name))

    reports = {name: scan_bytes(name, data, base_dir=directory_of(name))
               for name, data in model.files.items()}
    for name, report in reports.items():
        if report.admission is not None:
            model.admissions[name] = report.admission
    return reports


def verify_model_bytes(model: ModelBytes, policy: "Policy", bundles: Iterable[Any], *,
                       trusted_root: Any = None, identity: Any = None,
                       cache: VerificationCache | None = None,
                       now: int | None = None) -> "Verdict":
    """Verify bundles, scan and evaluate the policy over already-read model bytes."""
    from mgattest.policy.evaluate import evaluate  # noqa: PLC0415
    from mgattest.policy.gather import (  # noqa: PLC0415
        trusted_root_digest,
        trusted_root_for,
        verify_attestations,
    )

    bundle_list = [os.fspath(b) for b in bundles]
    root = trusted_root_for(policy, trusted_root)
    key = None
    if cache is not None:
        key = (model.identity, tuple(sorted(model.sha256.items())), policy.digest,
               trusted_root_digest(root), tuple(_file_digest(b) for b in bundle_list),
               repr(identity))
        hit = cache.get(key)
        if hit is not None:
            return hit
    try:
        attestations = verify_attestations(bundle_list, policy, trusted_root=root,
                                           identity=identity, root_ready=True)
    except VerificationError as exc:
        return bundle_failure_verdict(policy, model, exc, now)
    verdict = evaluate(policy, attestations, model_check(model, attestations),
                       scan_model(model), now=now)
    if cache is not None and key is not None:
        cache.put(key, verdict, not_after=policy.expires)
    return verdict


def bundle_failure_verdict(policy: "Policy", model: Any, exc: Any,
                           now: int | None = None) -> "Verdict":
    """A denying verdict for a bundle that failed cryptographic verification.

    *model* is the ModelBytes or ModelCheck whose files are listed as artifacts."""
    import time  # noqa: PLC0415

    from mgattest.policy.verdict import FAIL, Check, Verdict  # noqa: PLC0415

    check = Check("policy", "bundles", FAIL, exc.message,
                  [{"what": exc.what, "where": exc.where, "error": type(exc).__name__}])
    return Verdict(allowed=False, decision="deny", mode=policy.mode,
                   policy_source=policy.source, policy_digest=policy.digest,
                   evaluated_at=int(time.time()) if now is None else now,
                   artifacts=[{"name": n, "digest": {"sha256": d}}
                              for n, d in sorted(_sha256_by_name(model).items())],
                   checks=[check])


def _sha256_by_name(model: Any) -> dict[str, str]:
    if isinstance(model, ModelBytes):
        return dict(model.sha256)
    return {f.name: (f.digest or {}).get("sha256", "") for f in model.files
            if f.status != "missing"}


def _file_digest(path: str) -> str:
    from mgattest._files import sha256_file  # noqa: PLC0415

    return sha256_file(path, what="bundle")


def _refuse_trust_anchors_in_model(path: str | os.PathLike[str], policy: "Policy",
                                   trusted_root: Any) -> None:
    """The policy file, a trusted-root file and the root files the policy names must not
    be part of the model they judge (as ``mgattest verify`` refuses): whoever can
    rewrite the model could rewrite them."""
    from mgattest.attest.walk import refuse_trust_files_in_model  # noqa: PLC0415

    anchors: list[tuple[str, Any]] = [("trusted root", r.path) for r in policy.roots if r.path]
    if os.path.isfile(policy.source):
        anchors.append(("policy", policy.source))
    if isinstance(trusted_root, (str, os.PathLike)):
        anchors.append(("trusted root", trusted_root))
    refuse_trust_files_in_model(path, anchors)


def load(path: str | os.PathLike[str], *, policy: "Policy | str | os.PathLike[str]",
         bundles: Iterable[str | os.PathLike[str]] = (), trusted_root: Any = None,
         identity: Any = None, on_fail: str = "raise", quarantine: str | None = None,
         framework: str = "numpy", cache: VerificationCache | bool | None = None,
         extra_allowed: tuple[tuple[str, str], ...] = (), now: int | None = None) -> Any:
    """Load the model at *path* only if *policy* allows it.

    Returns the deserialised object (for a directory: a dict name → object of every
    file the verdict cleared: judged by a rule, covered by an attestation from a signer
    that rule trusts, content clauses passed; other files are never parsed). When the
    policy denies, raises :class:`PolicyDenied` carrying the verdict, or returns None
    with ``on_fail="none"``; with *quarantine* a denied model is moved there first.
    ``cache=True`` uses the process-wide :class:`VerificationCache`.
    """
    from mgattest.policy.loader import load_policy  # noqa: PLC0415

    if on_fail not in ("raise", "none"):
        raise InputError(f"on_fail must be 'raise' or 'none', not {on_fail!r}", what="on_fail")
    if not isinstance(policy, _policy_type()):
        policy = load_policy(policy)
    _refuse_trust_anchors_in_model(path, policy, trusted_root)
    bundle_list = list(bundles)
    if not bundle_list:
        raise InputError("load needs at least one bundle (bundles=[...])", what="bundles",
                         where=str(path))
    model = read_model_bytes(path, exclude=[b for b in bundle_list
                                            if isinstance(b, (str, os.PathLike))])
    cache_obj = default_cache if cache is True else \
        cache if isinstance(cache, VerificationCache) else None
    verdict = verify_model_bytes(model, policy, bundle_list, trusted_root=trusted_root,
                                 identity=identity, cache=cache_obj, now=now)
    if not verdict.allowed:
        if quarantine is not None:
            from mgattest.load.quarantine import quarantine as move  # noqa: PLC0415

            move(path, quarantine, reason=verdict.reasons or ["denied by policy"],
                 verdict="denied",
                 digests={n: {"sha256": d} for n, d in model.sha256.items()},
                 policy_digest=policy.digest)
        if on_fail == "none":
            return None
        first = verdict.failures[0] if verdict.failures else None
        raise PolicyDenied(f"policy {policy.source} denied {os.fspath(path)}: "
                           + "; ".join(verdict.reasons[:3]), verdict=verdict,
                           where=first.id if first else None)
    return _deserialize_cleared(model, verdict, policy, path, framework=framework,
                                extra_allowed=extra_allowed)


def _deserialize_cleared(model: ModelBytes, verdict: "Verdict", policy: "Policy",
                         path: Any, *, framework: str,
                         extra_allowed: tuple[tuple[str, str], ...]) -> Any:
    """Deserialise the files the verdict cleared, each with its own rules' permissions.

    A file no rule judged (ignored, unmatched), one no trusted attestation covers, or
    one whose content clause failed is never parsed and never returned. A single-file
    model (or a directory) with nothing cleared raises :class:`PolicyDenied`.
    """
    from mgattest.load.loaders import deserialize  # noqa: PLC0415
    from mgattest.inspect.scanner import scan_bytes  # noqa: PLC0415 - heavy, rarely needed

    formats = {a["name"]: a.get("format") for a in verdict.artifacts}
    loaded = {}
    refused = []
    for name, data in model.files.items():
        clearance = verdict.clearance.get(name)
        if clearance is None or not clearance.loadable:
            refused.append(f"{name}: {clearance.reason if clearance else 'not evaluated'}")
            continue
        fmt = formats.get(name) or scan_bytes(name, data[:16]).policy_format
        loaded[name] = deserialize(name, data, fmt, framework=framework,
                                   allow_object_arrays=clearance.pickle == "restricted",
                                   extra_allowed=extra_allowed,
                                   admission=model.admissions.get(name))
    if not loaded:
        raise PolicyDenied(f"policy {policy.source} clears no file of {os.fspath(path)} for "
                           "loading: " + "; ".join(refused[:3]), verdict=verdict,
                           what="load", where=refused[0].split(":", 1)[0] if refused else None)
    if model.single_file:
        return next(iter(loaded.values()))
    return loaded


def _policy_type() -> type:
    from mgattest.policy.model import Policy  # noqa: PLC0415

    return Policy


class _CallableModule(__import__("types").ModuleType):
    """``mgattest.load`` is both this package and the ``load`` function: once the package
    is imported, the attribute ``mgattest.load`` is the module, so the module itself
    forwards calls to :func:`load`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return load(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
