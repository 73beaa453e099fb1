"""Verify-then-load: deserialise a model only if the policy allows exactly these bytes.

``load(path, policy=..., bundles=[...])`` reads every file of the model ONCE into
memory, hashes those bytes, verifies the bundles, scans the content, evaluates the
policy, and deserialises the same in-memory bytes. Replacing the file after the read
cannot change what is loaded: there is no time-of-check/time-of-use gap.

Entry points: :func:`load` (``mgattest.load``), :func:`verify_model_bytes` (the verdict
without deserialising), :class:`VerificationCache`; re-exported from ``policy``:
:func:`read_model_bytes` -> :class:`ModelBytes`, :func:`model_check`, :func:`scan_model`,
:data:`MAX_MODEL_FILES`, :class:`PolicyDenied`. Loaded on first use (PEP 562): the
quarantine (:func:`quarantine_model`, :func:`list_incidents`, :func:`get_incident`,
:func:`restore`, :class:`Incident`) and the watcher (:class:`Sentry`,
:func:`manifest_verifier`), and :func:`materialise` -> :class:`MaterialisedModel`: a
verified, private, read-only copy for loaders that read files by path (what
``mgattest.integrations`` hands to transformers, safetensors, torch). Every submodule is
internal.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Literal

from mgattest._lazy import LazyExports
from mgattest.errors import InputError, VerificationError
from mgattest.loading._cache import VerificationCache, default_cache
from mgattest.policy import (MAX_MODEL_FILES, ModelBytes, ModelVerifier, TrustOptions,
                             VerifyOptions, model_check, read_model_bytes, scan_model)
from mgattest.policy.errors import PolicyDenied

if TYPE_CHECKING:
    from mgattest.loading._quarantine import (Incident, get_incident, list_incidents, restore,
                                          quarantine as quarantine_model)
    from mgattest.loading._watch import Sentry, manifest_verifier
    from mgattest.loading._loaders import Framework
    from mgattest.policy import Policy, Verdict
    from mgattest.crypt import KekKeyset, KeySource
    from mgattest.loading._encrypted import hash_encrypted_model, read_encrypted_model_bytes
    from mgattest.loading._watch import SentryStatus, WatchSources, watch_verifier
    from mgattest.loading._quarantine import quarantine_findings, quarantine_rejected
    from mgattest.loading._materialise import MaterialisedModel, materialise

__all__ = [
    "get_incident", "hash_encrypted_model", "Incident", "list_incidents", "load",
    "manifest_verifier", "read_encrypted_model_bytes",
    "MAX_MODEL_FILES", "model_check", "ModelBytes", "PolicyDenied",
    "quarantine_findings", "quarantine_model", "quarantine_rejected",
    "MaterialisedModel", "materialise", "read_model_bytes", "restore", "scan_model", "Sentry", "SentryStatus",
    "VerificationCache", "verify_model_bytes", "watch_verifier", "WatchSources",
]

# The quarantine and the watcher load on first use: `import mgattest.loading` stays cheap.
_EXPORTS = LazyExports("mgattest.loading", {
    "Incident": "mgattest.loading._quarantine",
    "get_incident": "mgattest.loading._quarantine",
    "list_incidents": "mgattest.loading._quarantine",
    "restore": "mgattest.loading._quarantine",
    "quarantine_model": "mgattest.loading._quarantine:quarantine",
    "Sentry": "mgattest.loading._watch",
    "manifest_verifier": "mgattest.loading._watch",
    "SentryStatus": "mgattest.loading._watch",
    "WatchSources": "mgattest.loading._watch",
    "watch_verifier": "mgattest.loading._watch",
    "quarantine_findings": "mgattest.loading._quarantine",
    "quarantine_rejected": "mgattest.loading._quarantine",
    "MaterialisedModel": "mgattest.loading._materialise",
    "materialise": "mgattest.loading._materialise",
    "hash_encrypted_model": "mgattest.loading._encrypted",
    "read_encrypted_model_bytes": "mgattest.loading._encrypted",
})


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


OnFail = Literal["raise", "none"]
"""What :func:`load` does when the policy denies: raise :class:`PolicyDenied`, or
return None."""


def verify_model_bytes(model: ModelBytes, policy: Policy,
                       bundles: Iterable[str | os.PathLike[str]], *,
                       trust: TrustOptions | None = None,
                       cache: VerificationCache | None = None,
                       now: int | None = None) -> "Verdict":
    """Verify bundles, scan and evaluate the policy over already-read model bytes
    (the verification pipeline, :class:`mgattest.policy._pipeline.ModelVerifier`).

    *trust* adds a trusted root, a certificate identity or a CA chain to the policy's
    own trust; *now* (seconds since the epoch) fixes the evaluation time."""
    verifier = ModelVerifier(policy, trust,
                             VerifyOptions(bundles=tuple(os.fspath(b) for b in bundles),
                                           cache=cache, now=now))
    verdict = verifier.verify(model).verdict
    if verdict is None:  # a policy always decides; fail closed should that ever change
        raise VerificationError("the policy reached no verdict", what="policy")
    return verdict


def _refuse_trust_anchors_in_model(path: str | os.PathLike[str], policy: Policy,
                                   trust: TrustOptions) -> None:
    """The policy file, a trusted-root file and the root files the policy names must not
    be part of the model they judge (as ``mgattest verify`` refuses): whoever can
    rewrite the model could rewrite them."""
    from mgattest.attest import refuse_trust_files_in_model  # noqa: PLC0415 - attest loads on first use

    anchors: list[tuple[str, str | os.PathLike[str]]] = [
        ("trusted root", r.path) for r in policy.roots if r.path]
    if os.path.isfile(policy.source):
        anchors.append(("policy", policy.source))
    if isinstance(trust.trusted_root, (str, os.PathLike)):
        anchors.append(("trusted root", trust.trusted_root))
    refuse_trust_files_in_model(path, anchors)


def load(path: str | os.PathLike[str], *, policy: "Policy | str | os.PathLike[str]",
         bundles: Iterable[str | os.PathLike[str]] = (), trust: TrustOptions | None = None,
         on_fail: OnFail = "raise", quarantine: str | os.PathLike[str] | None = None,
         framework: Framework = "numpy", cache: VerificationCache | bool | None = None,
         extra_allowed: tuple[tuple[str, str], ...] = (),
         decrypt: "KeySource | KekKeyset | None" = None) -> Any:
    """Load the model at *path* (or ``hf:ORG/NAME[@REV]``) only if *policy* allows it.

    *trust* (:class:`~mgattest.policy._pipeline.TrustOptions`) adds a trusted root, a
    certificate identity or a CA chain to the policy's own trust (its ``keys`` are not
    used: a policy names its own keys).

    Returns the deserialised object (for a directory: a dict name → object of every
    file the verdict cleared: judged by a rule, covered by an attestation from a signer
    that rule trusts, content clauses passed; other files are never parsed). When the
    policy denies, raises :class:`PolicyDenied` carrying the verdict, or returns None
    with ``on_fail="none"``; with *quarantine* a denied model is moved there first.
    ``cache=True`` uses the process-wide :class:`VerificationCache`.

    With *decrypt* (a :class:`mgattest.crypt.KeySource` or a loaded key set), *path* is
    a model encrypted by ``mgattest encrypt``: it is decrypted and authenticated into
    memory (no plaintext is written anywhere), and the policy judges the plaintext
    digests, the ones the attestation covers. Its bundles must lie outside *path*.
    """
    from mgattest.policy import load_policy  # noqa: PLC0415 - keeps `import mgattest.loading` cheap
    from mgattest.policy import Policy  # noqa: PLC0415 - keeps `import mgattest.loading` cheap
    from mgattest.attest import refuse_store_reference, resolve_model_path  # noqa: PLC0415 - attest loads on first use

    refuse_store_reference(path, "mgattest.load")
    path = resolve_model_path(path)  # hf:ORG/NAME[@REV] → its cache snapshot
    if on_fail not in ("raise", "none"):
        raise InputError(f"on_fail must be 'raise' or 'none', not {on_fail!r}", what="on_fail")
    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    trust = trust or TrustOptions()
    _refuse_trust_anchors_in_model(path, policy, trust)
    bundle_list = list(bundles)
    if not bundle_list:
        raise InputError("load needs at least one bundle (bundles=[...])", what="bundles",
                         where=str(path))
    if decrypt is not None:
        from mgattest.loading._encrypted import read_encrypted_model_bytes  # noqa: PLC0415 - crypt (and tink) load only for encrypted models

        model = read_encrypted_model_bytes(path, decrypt)
    else:
        model = read_model_bytes(path, exclude=[b for b in bundle_list
                                                if isinstance(b, (str, os.PathLike))])
    cache_obj = default_cache if cache is True else \
        cache if isinstance(cache, VerificationCache) else None
    verdict = verify_model_bytes(model, policy, bundle_list, trust=trust, cache=cache_obj)
    if not verdict.allowed:
        if quarantine is not None:
            from mgattest.loading._quarantine import quarantine as move  # noqa: PLC0415 - only for a denial

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


def _deserialize_cleared(model: ModelBytes, verdict: "Verdict", policy: Policy,
                         path: str | os.PathLike[str], *, framework: Framework,
                         extra_allowed: tuple[tuple[str, str], ...]) -> Any:
    """Deserialise the files the verdict cleared, each with its own rules' permissions.

    A file no rule judged (ignored, unmatched), one no trusted attestation covers, or
    one whose content clause failed is never parsed and never returned. A single-file
    model (or a directory) with nothing cleared raises :class:`PolicyDenied`.
    """
    from mgattest.loading._loaders import deserialize  # noqa: PLC0415 - only once allowed
    from mgattest.inspect import scan_bytes  # noqa: PLC0415 - heavy, rarely needed

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
