"""Record provenance while a training script runs, then emit (and optionally sign) it.

    from mgattest.attest._recorder import ProvenanceRecorder

    with ProvenanceRecorder("out/model", signer=signer) as rec:
        rec.dataset("train", "data/train.parquet")        # hashed now
        rec.base_model("base", "models/base")             # directory: manifest digest
        rec.params(epochs=3, lr=3e-4)
        train()                                           # writes out/model
    # on a clean exit: SLSA provenance predicate built, model signed, bundle written

Nothing is timestamped implicitly except ``startedOn``/``finishedOn``, which the recorder
takes from its ``clock`` (default: the system clock) at enter and exit.
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Mapping, Sequence

import rfc8785

from mgattest._jsonutil import JSONValue
from mgattest.attest import _slsa as slsa
from mgattest.attest._bundle import BundleJSON
from mgattest.attest._options import BuildInputs
from mgattest.attest._digests import hash_model
from mgattest.attest._sign import KeySigner, LogTarget, PendingBundleFile, SignOptions, sign_model
from mgattest.attest._signers import Signer
from mgattest.attest._statement import ResourceDescriptor
from mgattest.attest._slsa import SLSA_PROVENANCE_V1
from mgattest.attest._walk import default_bundle_path
from mgattest.errors import InputError

MANIFEST_DIGEST_KEY = "sha256-manifest"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_commit(path: str | Path = ".") -> tuple[str, str | None] | None:
    """(commit hash, remote URL or None) of the git checkout holding ``path``, if any."""
    cwd = Path(path)
    cwd = cwd if cwd.is_dir() else cwd.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    remote = None
    try:
        remote = subprocess.run(["git", "config", "--get", "remote.origin.url"], cwd=cwd,
                                capture_output=True, text=True, timeout=10,
                                check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return commit, remote


def describe_path(name: str, path: str | Path, *, uri: str | None = None,
                  workers: int | None = None) -> ResourceDescriptor:
    """A ResourceDescriptor for a local file (sha256 of its bytes) or directory
    (``sha256-manifest``: SHA-256 of the RFC 8785 JSON of its sorted per-file subjects)."""

    path = Path(path)
    if not path.exists():
        raise InputError(f"{name}: {path} does not exist", what="provenance input",
                         where=str(path))
    md = hash_model(path, workers=workers)
    uri = uri or path.resolve().as_uri()
    if path.is_file():
        return {"name": name, "uri": uri, "digest": dict(md.files[0].digest)}
    subjects: Sequence[Mapping[str, Any]] = md.subjects()  # rfc8785's type admits no TypedDict
    manifest = rfc8785.dumps(subjects)

    return {"name": name, "uri": uri,
            "digest": {MANIFEST_DIGEST_KEY: hashlib.sha256(manifest).hexdigest()},
            "annotations": {"files": len(md.files)}}


class ProvenanceRecorder:
    """Collects datasets, base models, code, parameters, frameworks and times."""

    def __init__(self, model: str | Path | None = None, *, builder_id: str | None = None,
                 build_type: str | None = None, from_env: str | None = None,
                 signer: Signer | None = None, bundle_out: str | Path | None = None,
                 log: LogTarget | None = None, record_frameworks: bool = True,
                 clock: Callable[[], datetime] = _now) -> None:
        self.model = Path(model) if model is not None else None
        self.builder_id = builder_id
        self.build_type = build_type
        self.ci = slsa.from_ci_env(from_env) if from_env else None
        self.signer = signer
        self.bundle_out = Path(bundle_out) if bundle_out is not None else None
        self.log = log
        self.record_frameworks = record_frameworks
        self.clock = clock
        self.parameters: dict[str, Any] = {}
        self.dependencies: list[ResourceDescriptor] = []
        self.started: datetime | None = None
        self.finished: datetime | None = None
        self.predicate: slsa.ProvenanceJSON | None = None
        self.bundle: BundleJSON | None = None
        self.bundle_path: Path | None = None

    # -- collection --------------------------------------------------------------
    def start(self) -> "ProvenanceRecorder":
        """Record the start time (called by ``__enter__``)."""
        self.started = self.clock()
        return self

    def param(self, key: str, value: JSONValue) -> None:
        """Record one hyper-parameter (plain JSON value; integers stay integers)."""
        if key in self.parameters:
            raise InputError(f"parameter {key!r} recorded twice", what="parameter")
        self.parameters[key] = value

    def params(self, **values: JSONValue) -> None:
        """Record several hyper-parameters."""
        for key, value in values.items():
            self.param(key, value)

    def _add(self, descriptor: ResourceDescriptor) -> ResourceDescriptor:
        if any(d.get("name") == descriptor["name"] for d in self.dependencies):
            raise InputError(f"dependency {descriptor['name']!r} recorded twice",
                             what="dependency")
        self.dependencies.append(descriptor)
        return descriptor

    def dataset(self, name: str, path_or_uri: str | Path, *,
                digest: dict[str, str] | None = None) -> ResourceDescriptor:
        """Record a dataset read: a local path is hashed now; a URI needs ``digest``."""
        return self._input(name, path_or_uri, digest, "dataset")

    def base_model(self, name: str, path_or_uri: str | Path, *,
                   digest: dict[str, str] | None = None) -> ResourceDescriptor:
        """Record a base model read (hashed like a dataset)."""
        return self._input(name, path_or_uri, digest, "base-model")

    def _input(self, name: str, source: str | Path, digest: dict[str, str] | None,
               role: str) -> ResourceDescriptor:
        text = str(source)
        if digest is not None or "://" in text and not text.startswith("file://"):
            if digest is None:
                raise InputError(f"{role} {name!r} at {text} needs a digest (or a local "
                                 "path to hash)", what="provenance input", where=text)
            desc: ResourceDescriptor = {"name": name, "uri": text, "digest": dict(digest)}
        else:
            desc = describe_path(name, text.removeprefix("file://"))
        desc.setdefault("annotations", {})["role"] = role
        return self._add(desc)

    def code(self, path: str | Path = ".") -> ResourceDescriptor | None:
        """Record the git commit of the code (``git rev-parse HEAD``), if in a repo."""
        found = git_commit(path)
        if found is None:
            return None
        commit, remote = found
        return self._add({"name": "code", "uri": remote or Path(path).resolve().as_uri(),
                          "digest": {"gitCommit": commit},
                          "annotations": {"role": "code"}})

    # -- output ------------------------------------------------------------------
    def finish(self) -> slsa.ProvenanceJSON:
        """Stop the clock and build the SLSA Provenance v1 predicate."""
        if self.started is None:
            self.started = self.clock()
        self.finished = self.clock()
        self.predicate = slsa.build_provenance(BuildInputs(
            builder_id=self.builder_id, build_type=self.build_type,
            parameters=self.parameters, dependencies=self.dependencies, ci=self.ci,
            frameworks=slsa.framework_versions() if self.record_frameworks else None,
            started_on=_rfc3339(self.started), finished_on=_rfc3339(self.finished)))
        return self.predicate

    def sign(self) -> BundleJSON:
        """Sign the model with the recorded predicate and write the bundle."""
        if self.model is None or self.signer is None:
            raise InputError("signing needs a model path and a signer", what="recorder")
        predicate = self.predicate or self.finish()
        out = self.bundle_out or default_bundle_path(self.model)
        # Reserve the bundle file before the (permanent) log entry is made.
        with PendingBundleFile(out, overwrite=True) as pending:
            pending.reserve()
            result = sign_model(self.model, KeySigner(self.signer, self.log or LogTarget()),
                                SignOptions(predicate_type=SLSA_PROVENANCE_V1,
                                            predicate=predicate),
                                exclude=[out, pending.temp_path])
            self.bundle = result.bundle
            self.bundle_path = pending.commit(result.bundle)
        return result.bundle

    def __enter__(self) -> "ProvenanceRecorder":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            return  # a failed run produces no provenance
        self.finish()
        if self.signer is not None and self.model is not None:
            self.sign()
