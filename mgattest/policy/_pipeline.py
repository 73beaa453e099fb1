"""The verification pipeline: every verification of a model goes through ModelVerifier.

``mgattest verify`` (with or without a policy), ``mgattest.load``, ``mgattest watch``
and quarantine decisions all build a :class:`ModelVerifier` and call
:meth:`ModelVerifier.verify` on one of three sources:

- a path on disk (streamed: bounded memory, nothing is deserialised),
- a digest target ``sha256:HEX`` / ``sha384:HEX`` / ``sha512:HEX`` (no file at all),
- a :class:`~mgattest.policy._modelbytes.ModelBytes` already read into memory, so that
  ``mgattest.load`` verifies and deserialises the SAME bytes.

Without a policy, the bundles are verified (signature, log inclusion, identity) and
every file is re-hashed against the subjects; the first failure raises. With a policy,
the bundles are verified under the policy's trust, the files are checked and scanned,
and the policy is evaluated into a :class:`~mgattest.policy._verdict.Verdict` (a bundle
that does not verify is a denial on the record); the decision is then appended to the
audit log and, when allowed, summarised in a VSA if asked. Nothing here prints or
returns exit codes: the result is a :class:`VerificationOutcome` to render.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, Protocol, Sequence

from mgattest.attest import CheckOptions, TrustOptions
from mgattest._files import read_bounded, sha256_file
from mgattest.errors import InputError, VerificationError
from mgattest.policy._modelbytes import ModelBytes, model_check, scan_model
from mgattest.policy._verdict import FAIL, Check, Verdict

# attest (sigstore, cryptography) and the policy model load on first use: importing
# mgattest.loading must stay cheap.
if TYPE_CHECKING:
    from mgattest.attest import DigestSpec, StoredModel
    from mgattest.attest import ModelCheck, VerifiedAttestation
    from mgattest.attest import TrustedRoot
    from mgattest.inspect import FileReport
    from mgattest.policy._lineage import LineageGraph
    from mgattest.policy._lineage_model import LineageRequest
    from mgattest.policy._model import Policy
    from mgattest.policy._shortcuts import ShortcutOptions

__all__ = ["ModelSource", "ModelVerifier", "PolicyRequest", "TrustOptions",
           "VerificationOutcome", "VerdictCache", "VerifyOptions", "bundle_failure_verdict",
           "policy_verifier"]

# Also importable from here (not in __all__: they are attest's, loaded on first use like
# the rest of attest), so the CLI's verify command reaches them without naming attest's
# verifier: the default bundle path, whether a target names a digest, the JSON of a
# verified attestation.
_FROM_ATTEST = ("attestation_to_json", "default_bundle_path", "names_a_digest")


def __getattr__(name: str) -> Any:
    if name in _FROM_ATTEST:
        from mgattest import attest  # noqa: PLC0415 - loaded on first use, see above

        return getattr(attest, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

ModelSource = str | os.PathLike[str] | ModelBytes
"""What :meth:`ModelVerifier.verify` takes: a path (``str`` or ``PathLike``), a digest
target (a ``str`` such as ``sha256:HEX``), or read bytes."""

Progress = Callable[[int], None]
"""Called with the number of bytes hashed so far (a progress bar)."""


class VerdictCache(Protocol):
    """Where verdicts over read bytes are remembered (``mgattest.load``'s cache)."""

    def get(self, key: Hashable) -> Verdict | None:
        """The verdict cached for *key*, or None."""

    def put(self, key: Hashable, verdict: Verdict, *, not_after: float | None = None) -> None:
        """Remember *verdict* for *key* (never past *not_after*)."""


@dataclass(frozen=True)
class VerifyOptions:
    """How a verification runs and what it records.

    ``bundles``: bundle files (default ``<model>.sigstore.json``). The file options
    (``allow_unlogged``, ``ignore``, ``allow_unsigned_files``, ``allow_symlinks``,
    ``predicate_type``) apply without a policy; a policy says them in its rules.
    ``audit_log``, ``emit_vsa`` (+ ``vsa_key``, ``vsa_password``): where the policy's
    decision is appended / the VSA of an allowed model is written. ``cache`` and
    ``now`` apply to verdicts over read bytes (``mgattest.load``). ``lineage``: where
    the attestations of the model's inputs are looked up when a rule has a ``lineage``
    clause (without it such clauses fail).
    """

    bundles: tuple[str, ...] = ()
    allow_unlogged: bool = False
    ignore: tuple[str, ...] = ()
    allow_unsigned_files: bool = False
    allow_symlinks: bool = False
    predicate_type: str | None = None
    audit_log: str | None = None
    emit_vsa: str | None = None
    vsa_key: str | None = None
    vsa_password: bytes | None = None
    cache: VerdictCache | None = None
    now: int | None = None
    lineage: LineageRequest | None = None

    def __post_init__(self) -> None:
        if self.emit_vsa and not self.vsa_key:
            raise InputError("--emit-vsa needs a private key (--key PRIVATE.pem) to sign the "
                             "VSA with", what="emit-vsa")


@dataclass(frozen=True)
class VerificationOutcome:
    """What a verification established.

    ``check`` is None for a digest target verified without a policy; ``content`` (the
    content reports) and ``verdict`` exist only under a policy; ``vsa_path`` is where a
    verification summary attestation was written, if one was.
    """

    model: str
    attestations: list[VerifiedAttestation]
    check: ModelCheck | None = None
    content: dict[str, FileReport] = field(default_factory=dict)
    verdict: Verdict | None = None
    vsa_path: str | None = None

    @property
    def allowed(self) -> bool:
        """True when the model verified (and the policy, if any, allows it).

        Without a policy every failure raised, so an outcome exists only for a model
        that verified; under a policy the verdict decides."""
        return self.verdict is None or self.verdict.allowed

    @property
    def notes(self) -> list[str]:
        """Evidence the bundles carry that nothing verified, as ``source: note``."""
        return [f"{a.source}: {note}" for a in self.attestations for note in a.notes]


class ModelVerifier:
    """Verifies models: without a policy (signatures, identity, files) or under one.

    Build it once with the policy (or None), the trust and the options, then call
    :meth:`verify` for each model.
    """

    def __init__(self, policy: Policy | None, trust: TrustOptions | None = None,
                 options: VerifyOptions | None = None) -> None:
        self.policy = policy
        self.trust = trust or TrustOptions()
        self.options = options or VerifyOptions()

    def verify(self, source: ModelSource, *,
               progress: Progress | None = None) -> VerificationOutcome:
        """Verify *source*; raise on a failure (without a policy) or return the outcome.

        Under a policy a denial is an outcome (``outcome.allowed`` is False), not an
        error; bad input still raises :class:`InputError`. *progress* sees the hashing
        of a path verified without a policy.
        """
        if isinstance(source, ModelBytes):
            return self._verify_read_bytes(source)
        from mgattest.attest import (  # noqa: PLC0415 - heavy
            digest_target,
            resolve_model_path,
            resolve_stored_model,
        )

        model = os.fspath(resolve_model_path(source))
        # Only text can name a digest: a Path is always a file or directory.
        target = digest_target(model) if isinstance(source, str) else None
        if target is not None and not self.options.bundles:
            raise InputError("verifying a digest needs --bundle", what="--bundle")
        # A model in a store (Ollama, OCI layout): its chain of digests is verified here,
        # then signatures are matched against the manifest digest, as for a digest target.
        stored = resolve_stored_model(source) if target is None else None
        if stored is not None:
            _refuse_file_options(model, self.options)
            target = stored.target
        if self.policy is None:
            return self._verify_signatures(model, target, progress, stored)
        return self._verify_under_policy(self.policy, model, target, stored)

    # ------------------------------------------------------------------ without a policy

    def _verify_signatures(self, model: str, target: DigestSpec | None,
                           progress: Progress | None,
                           stored: StoredModel | None = None) -> VerificationOutcome:
        """Each bundle verifies (signature, log, identity), and covers the model."""
        from mgattest.attest import default_bundle_path, verify_bundle, verify_model  # noqa: PLC0415 - heavy
        from mgattest.policy._stores import store_model_check  # noqa: PLC0415 - it imports attest

        trust, opts = self.trust, self.options
        if target is not None:
            bundles = opts.bundles or (str(default_bundle_path(model)),)
            atts = [verify_bundle(
                b, trust, allow_unlogged=opts.allow_unlogged,
                artifact_digest=f"{target.algorithm}:{target.hex_digest}",
                expected_predicate_type=opts.predicate_type) for b in bundles]
            _require_certificate_signers(atts, trust.identity)
            check = None if stored is None else store_model_check(stored, atts)
            return VerificationOutcome(model, atts, check)
        if not Path(model).exists():
            raise InputError(f"model {model} does not exist", what="model", where=model)
        atts, check = verify_model(
            Path(model), list(opts.bundles) or None, trust, allow_unlogged=opts.allow_unlogged,
            check=CheckOptions(ignore=list(opts.ignore), allow_symlinks=opts.allow_symlinks,
                               allow_unsigned_files=opts.allow_unsigned_files,
                               progress=progress),
            expected_predicate_type=opts.predicate_type)
        _require_certificate_signers(atts, trust.identity)
        return VerificationOutcome(model, atts, check)

    # ------------------------------------------------------------------ under a policy

    def _verify_under_policy(self, policy: Policy, model: str, target: DigestSpec | None,
                             stored: StoredModel | None = None) -> VerificationOutcome:
        """Bundles under the policy's trust, then files, content and the policy itself."""
        from mgattest.attest import default_bundle_path  # noqa: PLC0415 - attest loads on first use
        from mgattest.policy._evaluate import evaluate  # noqa: PLC0415 - CEL, heavy
        from mgattest.policy._gather import verify_attestations  # noqa: PLC0415 - it imports attest

        bundles = list(self.options.bundles) or [str(default_bundle_path(model))]
        if target is None and not os.path.lexists(model):
            raise InputError(f"model {model} does not exist", what="model", where=str(model))
        try:
            atts = verify_attestations(bundles, policy, trusted_root=self.trust.trusted_root,
                                       identity=self.trust.identity,
                                       certificate_chain=self.trust.certificate_chain)
        except VerificationError as exc:  # a bundle that does not verify denies, on the record
            check = _check_and_content(model, target, [], bundles, scan=False,
                                       stored=stored)[0]
            verdict = bundle_failure_verdict(policy, _sha256_of_check(check), exc,
                                             self.options.now)
            return self._recorded(VerificationOutcome(model, [], check, {}, verdict), bundles)
        check, content = _check_and_content(model, target, atts, bundles, stored=stored)
        verdict = evaluate(policy, atts, check, content, now=self.options.now,
                           lineage=self._lineage(policy, model, atts))
        return self._recorded(VerificationOutcome(model, atts, check, content, verdict), bundles)

    def _verify_read_bytes(self, model: ModelBytes) -> VerificationOutcome:
        """The policy over bytes already read (and hashed) by ``read_model_bytes``."""
        from mgattest.policy._evaluate import evaluate  # noqa: PLC0415 - CEL, heavy
        from mgattest.policy._gather import (  # noqa: PLC0415 - it imports attest
            trusted_root_digest,
            trusted_root_for,
            verify_attestations,
        )

        policy = self.policy
        if policy is None:
            raise InputError("verifying read model bytes needs a policy", what="policy")
        bundles = list(self.options.bundles)
        root = trusted_root_for(policy, self.trust.trusted_root)
        cache, key = self.options.cache, None
        if cache is not None:
            key = (model.identity, tuple(sorted(model.sha256.items())), policy.digest,
                   trusted_root_digest(root), tuple(_file_digest(b) for b in bundles),
                   repr(self.trust.identity))
            hit = cache.get(key)
            if hit is not None:
                return VerificationOutcome(model.root, [], verdict=hit)
        try:
            atts = verify_attestations(bundles, policy, trusted_root=root,
                                       identity=self.trust.identity,
                                       certificate_chain=self.trust.certificate_chain,
                                       root_ready=True)
        except VerificationError as exc:
            verdict = bundle_failure_verdict(policy, dict(model.sha256), exc, self.options.now)
            return self._recorded(VerificationOutcome(model.root, [], verdict=verdict), bundles)
        check = model_check(model, atts)
        content = scan_model(model)
        verdict = evaluate(policy, atts, check, content, now=self.options.now,
                           lineage=self._lineage(policy, model.root, atts))
        if cache is not None and key is not None:
            cache.put(key, verdict, not_after=policy.expires)
        return self._recorded(VerificationOutcome(model.root, atts, check, content, verdict),
                              bundles)

    def _lineage(self, policy: Policy, model: str,
                 atts: list[VerifiedAttestation]) -> LineageGraph | None:
        """The lineage the policy's ``lineage`` clauses judge, traced from the verified
        attestations under the policy's trust (None when no rule asks or no source is
        configured: those clauses then fail)."""
        depths = [r.lineage.depth for r in policy.rules if r.lineage is not None]
        if not depths or self.options.lineage is None:
            return None
        from mgattest.policy._lineage import trace_lineage  # noqa: PLC0415 - only with a lineage clause
        from mgattest.policy._lineage_sources import policy_dependency_verifier  # noqa: PLC0415 - as above

        return trace_lineage(model, atts, self.options.lineage.sources,
                             policy_dependency_verifier(policy, self.trust), depth=max(depths))

    def _recorded(self, outcome: VerificationOutcome,
                  bundles: list[str]) -> VerificationOutcome:
        """Append the decision to the audit log; write the VSA of an allowed model."""
        opts, verdict = self.options, outcome.verdict
        if verdict is None:
            return outcome
        if opts.audit_log:
            from mgattest.policy._audit import append_decision, audit_record  # noqa: PLC0415 - only with an audit log

            append_decision(opts.audit_log, audit_record(verdict, model=outcome.model,
                                                         bundles=list(bundles)))
        if not (verdict.allowed and opts.emit_vsa and opts.vsa_key):
            return outcome
        from mgattest.policy._vsa import write_vsa  # noqa: PLC0415 - signing keys: heavy

        write_vsa(opts.emit_vsa, verdict, outcome.attestations, key_path=opts.vsa_key,
                  resource_uri=os.path.abspath(outcome.model), password=opts.vsa_password)
        return VerificationOutcome(outcome.model, outcome.attestations, outcome.check,
                                   outcome.content, verdict, vsa_path=opts.emit_vsa)


# ---------------------------------------------------------------------- command-line policy

@dataclass(frozen=True)
class PolicyRequest:
    """A policy verification as ``mgattest verify`` states it.

    ``shortcuts``: the slsa-verifier-style expectations and file options (its ``keys``
    and ``identity`` are filled from ``key_files`` and the identity fields);
    ``policy_path``: the policy file, if any. ``key_files``: ``--key`` files, each public
    (trusted to verify bundles) or, at most one, private (to sign the VSA with).
    ``certificate_chain``: a PEM file of CA certificates. ``lineage``: where the
    policy's ``lineage`` clauses look up the attestations of the model's inputs.
    """

    shortcuts: ShortcutOptions
    policy_path: str | None = None
    bundles: tuple[str, ...] = ()
    key_files: tuple[str, ...] = ()
    identity: str | None = None
    identity_regex: str | None = None
    certificate_chain: str | None = None
    trusted_root: "TrustedRoot | str | None" = None
    audit_log: str | None = None
    emit_vsa: str | None = None
    lineage: LineageRequest | None = None


def policy_verifier(model: str, request: PolicyRequest) -> ModelVerifier:
    """The ModelVerifier for a command-line policy request about *model*.

    Checks, in order: a digest target needs a bundle; at most one private ``--key``;
    ``--emit-vsa`` needs that private key; the policy (file + expectations) loads.
    """
    from mgattest.attest import IdentityPolicy  # noqa: PLC0415 - heavy
    from mgattest.attest import digest_target  # noqa: PLC0415 - heavy
    from mgattest.attest import default_bundle_path  # noqa: PLC0415 - attest loads on first use
    from mgattest.attest import resolve_model_path  # noqa: PLC0415 - attest loads on first use
    from mgattest.policy._shortcuts import effective_policy  # noqa: PLC0415 - policy model

    model = str(resolve_model_path(model))
    if digest_target(str(model)) is not None and not request.bundles:
        raise InputError("verifying a digest needs --bundle", what="--bundle")
    public, private = _split_keys(request.key_files)
    identity = None
    if request.identity is not None or request.identity_regex:
        identity = IdentityPolicy(identity=request.identity,
                                  identity_regex=request.identity_regex,
                                  issuer=request.shortcuts.issuer)
    chain = None
    if request.certificate_chain is not None:
        chain = read_bounded(request.certificate_chain, 1 << 20, what="certificate chain")
    options = VerifyOptions(bundles=request.bundles or (str(default_bundle_path(model)),),
                            audit_log=request.audit_log, emit_vsa=request.emit_vsa,
                            vsa_key=private, lineage=request.lineage)
    shortcuts = replace(request.shortcuts, keys=public, identity=identity)
    policy = effective_policy(request.policy_path, shortcuts)
    trust = TrustOptions(trusted_root=request.trusted_root, identity=identity,
                         certificate_chain=chain)
    return ModelVerifier(policy, trust, options)


def _split_keys(key_files: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """``--key`` may list public keys (to verify bundles) and one private key (to sign
    the VSA with ``--emit-vsa``); each file is sorted by what it holds."""
    public: list[str] = []
    private: str | None = None
    for key in key_files:
        if _is_private_key(key):
            if private is not None and private != key:
                raise InputError("give one private --key for the VSA", what="--key")
            private = key
        else:
            public.append(str(key))
    return tuple(public), private


def _is_private_key(path: str) -> bool:
    from mgattest.attest import MAX_KEY_FILE_BYTES  # noqa: PLC0415 - attest loads on first use

    try:
        head = read_bounded(path, MAX_KEY_FILE_BYTES, what="key file")
    except InputError:
        return False
    return b"PRIVATE KEY-----" in head


# ---------------------------------------------------------------------- shared steps

def bundle_failure_verdict(policy: Policy, sha256_by_name: dict[str, str],
                           exc: VerificationError, now: int | None = None) -> Verdict:
    """A denying verdict for a bundle that failed cryptographic verification, listing
    the model's files (name → SHA-256 hex) as its artifacts."""
    check = Check("policy", "bundles", FAIL, exc.message,
                  [{"what": exc.what, "where": exc.where, "error": type(exc).__name__}])
    return Verdict(allowed=False, decision="deny", mode=policy.mode,
                   policy_source=policy.source, policy_digest=policy.digest,
                   evaluated_at=int(time.time()) if now is None else now,
                   artifacts=[{"name": n, "digest": {"sha256": d}}
                              for n, d in sorted(sha256_by_name.items())],
                   checks=[check])


def _sha256_of_check(check: ModelCheck) -> dict[str, str]:
    return {f.name: (f.digest or {}).get("sha256", "") for f in check.files
            if f.status != "missing"}


def _check_and_content(model: str, target: DigestSpec | None,
                       atts: list[VerifiedAttestation], bundles: list[str],
                       *, scan: bool = True, stored: StoredModel | None = None
                       ) -> tuple[ModelCheck, dict[str, FileReport]]:
    """The model check and content reports of a path (streamed), a digest target or a
    stored model (its verified blobs); ``scan=False`` skips the content scan of a path
    or store (its reports are then empty)."""
    from mgattest.policy._modelcheck import (  # noqa: PLC0415 - it imports attest
        digest_model_check, stream_model_check, stream_scan)
    from mgattest.policy._stores import scan_stored_model, store_model_check  # noqa: PLC0415 - it imports attest

    if stored is not None:
        return store_model_check(stored, atts), scan_stored_model(stored) if scan else {}
    if target is not None:
        return digest_model_check(target, atts)
    # Stream the files (bounded memory): nothing is loaded here, so reading twice
    # (hash, then scan) opens no TOCTOU gap that matters to a yes/no answer.
    check, single = stream_model_check(model, atts, exclude=bundles)
    return check, stream_scan(model, check, single) if scan else {}


def _refuse_file_options(model: str, options: VerifyOptions) -> None:
    """A stored model is its verified manifest and blobs: options about a directory's
    files would be silently ignored, so they are refused."""
    given = [name for name, on in (("--ignore", options.ignore),
                                   ("--allow-unsigned-files", options.allow_unsigned_files),
                                   ("--allow-symlinks", options.allow_symlinks)) if on]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise InputError(f"{' and '.join(given)} {verb} to a model's files, not to {model}: "
                         "a stored model is verified by its manifest and blob digests",
                         what="usage", where=given[0])


def _file_digest(path: str) -> str:
    return sha256_file(path, what="bundle")


def _require_certificate_signers(atts: list[VerifiedAttestation],
                                 identity: object | None) -> None:
    """--identity/--issuer asked for a certificate identity: a key signature lacks one."""
    if identity is None:
        return
    from mgattest.attest.errors import IdentityMismatchError  # noqa: PLC0415 - attest loads on first use, as above

    for att in atts:
        if att.signer.kind != "certificate":
            raise IdentityMismatchError(
                "--identity/--issuer require a certificate signer, but this bundle is "
                "signed with a bare key", what="identity", where=att.source)
