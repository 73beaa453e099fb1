"""Sign a model: digests → in-toto statement → DSSE → transparency log → bundle.

The one signing pipeline (``mgattest sign``/``attest``, :class:`ProvenanceRecorder` and
Python callers): :func:`sign_model` = :func:`hash_for_signing` (digests) +
:func:`sign_digests` (statement, signature, log entry, bundle file). Who signs is a
:class:`BundleSigner`: :class:`KeySigner` (a private key, recorded in a
:class:`LogTarget`) or :class:`KeylessSigner` (OIDC identity → Fulcio-compatible CA →
the log of the trust config, through sigstore-python). What is signed is described by
:class:`SignOptions` (statement format, predicate, :class:`DigestOptions`).

Blobs (one file signed as itself, ``sign-blob``): the same signers sign an artifact
digest (:class:`BlobSigner`), logged as a hashedrekord 0.0.1 entry in a
message-signature bundle (see :mod:`mgattest.attest._blobs`).

Log targets (:class:`LogTarget`): the embedded local log (default), another mgattest
log database (``--log-db``), any Rekor v1-compatible server (``--log URL``) or none.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mgattest._encodings import spki_der
from mgattest._jsonutil import JSONObject
from mgattest._files import read_bounded
from mgattest.attest import _slsa as slsa
from mgattest.attest._bundle import BundleJSON, MessageSignature, dump_bundle, make_bundle
from mgattest.attest._options import BuildInputs
from mgattest.attest._digests import ModelDigests, hash_model
from mgattest.attest._dsse import Envelope, sign_envelope
from mgattest.attest.errors import BundleOutputError
from mgattest.attest._locallog import open_local_log
from mgattest.attest._modelsigning import to_model_signing_statement
from mgattest.attest._references import StoredModel, resolve_model_path, resolve_stored_model
from mgattest.attest._signers import SigningKey, spki_pem
from mgattest.attest._statement import Statement, make_statement, serialize_statement
from mgattest.errors import InputError
from mgattest.tlog import RekorClient, TransparencyLogEntryJSON
from mgattest.tlog.errors import DuplicateEntryError

StatementFormat = Literal["intoto", "model-signing"]
FORMATS: tuple[StatementFormat, ...] = ("intoto", "model-signing")


@dataclass(frozen=True)
class LogTarget:
    """Where a signature is recorded: ``local`` (embedded log, or ``db`` path),
    ``url`` (a Rekor v1-compatible server) or ``none``."""

    kind: str = "local"
    location: str | None = None
    key: str | None = None

    @classmethod
    def from_options(cls, *, url: str | None = None, db: str | None = None,
                     no_log: bool = False, key: str | None = None) -> "LogTarget":
        """The target chosen by ``--log URL`` / ``--log-db PATH`` [``--log-key KEY``] /
        ``--no-log``."""
        given = [x for x in (url, db, True if no_log else None) if x]
        if len(given) > 1:
            raise InputError("give at most one of --log, --log-db and --no-log",
                             what="log option")
        if no_log:
            target = cls("none")
        elif url:
            target = cls("url", url)
        elif db:
            target = cls("local", db)
        else:
            target = cls("local")
        if key is not None:
            if db is None:
                raise InputError("--log-key goes with --log-db", what="--log-key")
            target = cls(target.kind, target.location, key)
        return target


def log_write_token() -> str | None:
    """The bearer token for a log served with ``--token-file``.

    Read from ``MGATTEST_LOG_TOKEN`` or the file named by ``MGATTEST_LOG_TOKEN_FILE``,
    never from a command-line argument (arguments show up in process listings).
    """
    token = os.environ.get("MGATTEST_LOG_TOKEN")
    if token:
        return token.strip()
    token_file = os.environ.get("MGATTEST_LOG_TOKEN_FILE")
    if token_file:
        data = read_bounded(token_file, 64 * 1024, what="MGATTEST_LOG_TOKEN_FILE")
        return data.decode("utf-8", "replace").strip() or None
    return None


def model_signing_hint(public_key: PublicKeyTypes) -> str:
    """model_signing 1.1.1's ``publicKey.hint``: hex SHA-256 of the PEM SPKI (its
    ``verify key`` rejects any other non-empty hint)."""
    return hashlib.sha256(spki_pem(public_key)).hexdigest()


def mgattest_hint(public_key: PublicKeyTypes) -> str:
    """mgattest's ``publicKey.hint``: base64 SHA-256 of the DER SPKI (as cosign)."""
    return base64.b64encode(hashlib.sha256(spki_der(public_key)).digest()).decode()


def dsse_proposed_entry(envelope: Envelope, verifier_pem: bytes) -> JSONObject:
    """A Rekor ``dsse`` 0.0.1 proposed entry for this envelope and key/certificate PEM."""
    return {"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {
        "envelope": envelope.to_json(),
        "verifiers": [base64.b64encode(verifier_pem).decode()]}}}


def hashedrekord_proposed_entry(algorithm: str, digest: bytes, signature: bytes,
                                verifier_pem: bytes) -> JSONObject:
    """A Rekor ``hashedrekord`` 0.0.1 proposed entry: a signature over an artifact digest
    and the key or certificate PEM that verifies it."""
    return {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "signature": {"content": base64.b64encode(signature).decode(),
                      "publicKey": {"content": base64.b64encode(verifier_pem).decode()}},
        "data": {"hash": {"algorithm": algorithm, "value": digest.hex()}}}}


def record_in_log(proposed: JSONObject,
                  target: LogTarget) -> TransparencyLogEntryJSON | None:
    """Append ``proposed`` to the target log; return the bundle ``tlogEntries`` item."""
    if target.kind == "none":
        return None
    if target.kind == "url":
        return RekorClient(target.location or "", token=log_write_token()).create_entry(proposed)
    log = open_local_log(target.location, key_path=target.key)
    try:
        try:
            entry = log.append(proposed)
        except DuplicateEntryError as exc:  # deterministic signatures (Ed25519) repeat
            entry = exc.existing
        proof = log.inclusion_proof(entry.log_index)
        return entry.to_bundle_entry(proof)
    finally:
        log.close()


@dataclass(frozen=True)
class SignResult:
    """What signing produced: the bundle dict, the statement and the model digests."""

    bundle: BundleJSON
    statement: Statement
    digests: ModelDigests


def sign_statement(statement: Statement, signer: SigningKey, *,
                   log: LogTarget = LogTarget(), hint: str | None = None,
                   certificate_pem: bytes | None = None) -> BundleJSON:
    """Serialise (RFC 8785), DSSE-sign, log and bundle one statement."""
    payload = serialize_statement(statement)
    envelope = sign_envelope(payload, signer)
    verifier_pem = certificate_pem or spki_pem(signer.public_key)
    entry = record_in_log(dsse_proposed_entry(envelope, verifier_pem), log)
    certificate_der = None
    if certificate_pem is not None:
        certificate_der = x509.load_pem_x509_certificate(certificate_pem).public_bytes(
            serialization.Encoding.DER)
    return make_bundle(envelope=envelope,
                       public_key_hint=hint if hint is not None
                       else mgattest_hint(signer.public_key),
                       certificate_der=certificate_der,
                       tlog_entries=[entry] if entry else [])


@dataclass(frozen=True)
class DigestOptions:
    """How the model's files are hashed (recorded in the statement, so verify agrees).

    ``ignore``: anchored globs of files to leave out; ``workers``: hashing threads
    (default: chosen by the hasher).
    """

    algorithm: str = "sha256"
    shard_size: int | None = None
    ignore: tuple[str, ...] = ()
    allow_symlinks: bool = False
    workers: int | None = None


@dataclass(frozen=True)
class ProvenanceOptions:
    """The fields of the SLSA Provenance v1 predicate signed by default (see
    :func:`mgattest.attest._slsa.build_provenance`)."""

    builder_id: str | None = None
    build_type: str | None = None
    parameters: Mapping[str, Any] | None = None
    dependencies: tuple[Mapping[str, object], ...] = ()  # SLSA ResourceDescriptors
    ci: slsa.CIFacts | None = None
    frameworks: Mapping[str, str] | None = None
    started_on: str | None = None
    finished_on: str | None = None

    def predicate(self, digests: ModelDigests) -> slsa.ProvenanceJSON:
        """The predicate for a model hashed as ``digests`` (its digest options included)."""
        return slsa.build_provenance(BuildInputs(
            builder_id=self.builder_id, build_type=self.build_type,
            parameters=self.parameters, dependencies=self.dependencies, ci=self.ci,
            frameworks=self.frameworks, started_on=self.started_on,
            finished_on=self.finished_on,
            internal_parameters=slsa.digest_options(digests.ignore)))


@dataclass(frozen=True)
class SignOptions:
    """What to sign about a model.

    ``format="intoto"``: one subject per file; ``predicate_type``/``predicate`` as given,
    by default SLSA Provenance v1 built from ``provenance``. ``format="model-signing"``:
    the OpenSSF model signing v1.0 statement (its own predicate; subject ``model_name``),
    signed with model_signing's key hint so ``model_signing verify key`` accepts it.
    """

    format: StatementFormat = "intoto"
    predicate_type: str | None = None
    predicate: Mapping[str, object] | None = None
    provenance: ProvenanceOptions = field(default_factory=ProvenanceOptions)
    model_name: str | None = None
    digests: DigestOptions = field(default_factory=DigestOptions)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InputError(f"unknown format {self.format!r} (choose {', '.join(FORMATS)})",
                             what="--format")


def build_statement(digests: ModelDigests, options: SignOptions) -> Statement:
    """The in-toto statement ``options`` describe about the hashed model."""
    if options.format == "model-signing":
        return to_model_signing_statement(digests, model_name=options.model_name)
    predicate_type, predicate = options.predicate_type, options.predicate
    if predicate_type is None:
        predicate_type = slsa.SLSA_PROVENANCE_V1
        if predicate is None:
            predicate = options.provenance.predicate(digests)
    return make_statement(digests.subjects(), predicate_type, predicate)


class BlobSigner(Protocol):
    """Signs an artifact digest, records it in a transparency log (hashedrekord) and
    returns the message-signature bundle dict (``sign-blob``)."""

    def sign_digest(self, algorithm: str, digest: bytes) -> BundleJSON:
        """The Sigstore message-signature bundle over ``digest`` (an ``algorithm`` hash)."""
        ...


class BundleSigner(Protocol):
    """Signs a statement, records it in a transparency log and returns the bundle dict."""

    def sign(self, statement: Statement, format: StatementFormat) -> BundleJSON:
        """The Sigstore bundle of ``statement`` (serialised as ``format`` expects)."""
        ...


@dataclass(frozen=True)
class KeySigner:
    """Signs with a key (a key file's :class:`Signer`, or any :class:`SigningKey` such as
    a key command) and records the signature in ``log``."""

    key: SigningKey
    log: LogTarget = LogTarget()

    def sign(self, statement: Statement, format: StatementFormat) -> BundleJSON:
        """DSSE-sign, log and bundle ``statement``; the key hint follows ``format``."""
        hint = model_signing_hint(self.key.public_key) if format == "model-signing" else None
        return sign_statement(statement, self.key, log=self.log, hint=hint)

    def sign_digest(self, algorithm: str, digest: bytes) -> BundleJSON:
        """Sign an artifact digest (ECDSA, or RSA PKCS#1 v1.5), log it as a hashedrekord
        entry and bundle it as a ``messageSignature`` with mgattest's key hint."""
        signature = self.key.sign_digest(digest, algorithm)
        entry = record_in_log(hashedrekord_proposed_entry(
            algorithm, digest, signature, spki_pem(self.key.public_key)), self.log)
        return make_bundle(message_signature=MessageSignature(algorithm, digest, signature),
                           public_key_hint=mgattest_hint(self.key.public_key),
                           tlog_entries=[entry] if entry else [])


@dataclass(frozen=True)
class KeylessSigner:
    """Signs keylessly through sigstore-python: an OIDC identity token, a certificate
    from the trust config's CA (Sigstore's, or a private one from ``--trust-config``)
    and an entry in the trust config's log (see :func:`mgattest.attest._keyless.sign_keyless`).
    """

    identity_token: str | None = None
    trust_config: str | Path | None = None
    staging: bool = False
    refresh_trust: bool = False

    def sign(self, statement: Statement, format: StatementFormat) -> BundleJSON:
        """Sign ``statement`` keylessly (the certificate identifies the signer: no hint)."""
        # Local: the keyless stack (certificates, OIDC, our own verify) costs ~40 ms
        # of imports that a key signature never needs.
        from mgattest.attest._keyless import sign_keyless  # noqa: PLC0415 - see above

        return sign_keyless(serialize_statement(statement),
                            identity_token=self.identity_token,
                            trust_config=str(self.trust_config) if self.trust_config else None,
                            staging=self.staging, refresh_trust=self.refresh_trust)

    def sign_digest(self, algorithm: str, digest: bytes) -> BundleJSON:
        """Sign an artifact digest keylessly: sigstore-python's message-signature
        bundle with a hashedrekord entry in the trust config's log."""
        from mgattest.attest._keyless import sign_keyless_digest  # noqa: PLC0415 - as in sign()

        return sign_keyless_digest(algorithm, digest, identity_token=self.identity_token,
                                   trust_config=str(self.trust_config) if self.trust_config
                                   else None, staging=self.staging,
                                   refresh_trust=self.refresh_trust)


def hash_for_signing(model: str | Path | StoredModel,
                     options: DigestOptions = DigestOptions(), *,
                     exclude: Sequence[str | Path] = (),
                     progress: Callable[[int], object] | None = None) -> ModelDigests:
    """Hash ``model`` (a path or an ``hf:`` reference) as ``options`` say, leaving out
    ``exclude``; refuse an empty model.

    A store reference (``ollama:NAME``, ``oci:PATH[:REF]``, an OCI layout directory), or
    the :class:`StoredModel` it resolved to, is resolved and verified instead; its
    subjects are the store's digests (SHA-256 of whole blobs), so the other digest
    options do not apply to it.
    """
    stored = model if isinstance(model, StoredModel) else resolve_stored_model(model)
    if stored is not None:
        if options != DigestOptions(workers=options.workers):
            raise InputError(f"{model} is signed by its store digests (sha256 of the "
                             "manifest and blobs): --hash, --shard-size, --ignore and "
                             "--allow-symlinks do not apply", what="digest options",
                             where=str(model))
        return stored.digests()
    assert not isinstance(model, StoredModel)
    model = Path(resolve_model_path(model))
    digests = hash_model(model, algorithm=options.algorithm, shard_size=options.shard_size,
                         ignore=options.ignore, exclude=exclude,
                         allow_symlinks=options.allow_symlinks, workers=options.workers,
                         progress=progress)
    if not digests.files:
        raise InputError(f"model {model} has no files to sign", what="model",
                         where=str(model))
    return digests


def sign_digests(digests: ModelDigests, signer: BundleSigner,
                 options: SignOptions = SignOptions(), *,
                 output: "PendingBundleFile | None" = None) -> SignResult:
    """Build the statement, sign and log it; write the bundle to ``output`` when given.

    ``output`` is reserved before the signature is logged (a log entry is permanent, so
    nothing is logged that cannot end up in a bundle) and committed after.
    """
    statement = build_statement(digests, options)
    if output is None:
        return SignResult(signer.sign(statement, options.format), statement, digests)
    with output:
        output.reserve()
        bundle = signer.sign(statement, options.format)
        output.commit(bundle)
    return SignResult(bundle, statement, digests)


def sign_model(model: str | Path | StoredModel, signer: BundleSigner | SigningKey,
               options: SignOptions = SignOptions(), *,
               output: "PendingBundleFile | None" = None,
               exclude: Sequence[str | Path] = (),
               progress: Callable[[int], object] | None = None) -> SignResult:
    """Hash ``model`` and sign a statement about it (see :class:`SignOptions`).

    ``signer`` is a :class:`BundleSigner`, or a bare key :class:`Signer` (recorded in
    the embedded local log). With ``output`` the bundle is written there, and that file
    is left out of the digests along with ``exclude``.
    """
    bundle_signer = KeySigner(signer) if isinstance(signer, SigningKey) else signer
    if output is not None:
        exclude = [*exclude, output.path]
    digests = hash_for_signing(model, options.digests, exclude=exclude, progress=progress)
    return sign_digests(digests, bundle_signer, options, output=output)


class PendingBundleFile:
    """A bundle destination checked, then reserved, before anything is logged.

    A transparency-log entry is permanent (on a public log, public), so signing must not
    log and then fail to write the bundle. ``check()`` refuses an existing bundle (unless
    ``overwrite``), a directory, or a missing parent directory; ``reserve()`` creates the
    temporary file beside the destination, which proves the directory is writable;
    ``commit(bundle)`` writes it, syncs it and moves it into place in one rename, so
    readers never see half a bundle. ``discard()`` (or leaving the ``with`` block by an
    exception) removes the temporary file.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False, label: str = "bundle",
                 option: str = "--out") -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.label = label  # what the file is, and the option naming it, for messages
        self.option = option
        self._tmp: Path | None = None

    @property
    def temp_path(self) -> Path:
        """The temporary file ``reserve()`` creates (to leave out of a model's digests)."""
        return self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")

    def check(self) -> "PendingBundleFile":
        """Refuse a destination that cannot take the bundle; cheap, touches nothing."""
        path = self.path
        if path.is_dir():
            raise BundleOutputError(f"{self.label} path {path} is a directory",
                                    what=self.option, where=str(path))
        if os.path.lexists(path) and not self.overwrite:
            raise BundleOutputError(f"{self.label} {path} already exists; pass --force to "
                                    f"replace it (or {self.option} to write another file)",
                                    what=self.option, where=str(path))
        parent = path.parent
        if not parent.is_dir():
            raise BundleOutputError(f"cannot write {self.label} {path}: directory {parent} "
                                    "does not exist", what=self.option, where=str(path))
        return self

    def reserve(self) -> "PendingBundleFile":
        """Create the temporary file beside the destination (proves it is writable)."""
        self.check()
        tmp = self.temp_path
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                         0o644)
        except OSError as exc:
            raise BundleOutputError(f"cannot write {self.label} {self.path}: {exc.strerror}",
                                    what=self.option, where=str(self.path)) from None
        os.close(fd)
        self._tmp = tmp
        return self

    def commit(self, bundle: BundleJSON) -> Path:
        """Write ``bundle`` to the reserved file and move it into place atomically."""
        return self.commit_bytes(dump_bundle(bundle).encode("utf-8"))

    def commit_bytes(self, data: bytes) -> Path:
        """Write ``data`` (a bundle's JSON, a raw signature) to the reserved file and
        move it into place atomically."""
        if self._tmp is None:
            self.reserve()
        assert self._tmp is not None
        with open(self._tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if self.overwrite:
            os.replace(self._tmp, self.path)
        else:
            # link() fails if the destination appeared since check(): never clobber it.
            self._link_into_place()
        self._tmp = None
        return self.path

    def _link_into_place(self) -> None:
        """Move the temporary file to the destination without replacing a file that
        appeared since check() (link() refuses an existing name; rename() would not)."""
        assert self._tmp is not None
        try:
            os.link(self._tmp, self.path)
        except FileExistsError:
            self.discard()
            raise BundleOutputError(f"{self.label} {self.path} appeared while signing; the "
                                    "signature was not written there", what=self.option,
                                    where=str(self.path)) from None
        except OSError:  # a filesystem without hard links: re-check, then rename
            if os.path.lexists(self.path):
                self.discard()
                raise BundleOutputError(f"{self.label} {self.path} appeared while signing",
                                        what=self.option, where=str(self.path)) from None
            os.replace(self._tmp, self.path)
            return
        os.unlink(self._tmp)

    def discard(self) -> None:
        """Remove the temporary file, if any."""
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None

    def __enter__(self) -> "PendingBundleFile":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def write_bundle_file(bundle: BundleJSON, path: str | Path, *,
                      overwrite: bool = True) -> Path:
    """Write a bundle atomically (temp file, fsync, rename) so readers never see half of it."""
    with PendingBundleFile(path, overwrite=overwrite) as pending:
        return pending.reserve().commit(bundle)
