"""Turn a policy's ``trust`` section into verifier inputs, and verify bundles with them.

The policy decides who may sign; ``attest.verify_bundle`` proves who did. For keyless
bundles it needs an identity check: :class:`PolicyIdentity` admits a certificate only
when at least one keyless signer of the policy matches it (the full signer rules are
evaluated afterwards by the evaluator).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from mgattest.attest import (as_identity_check, as_trusted_root, embedded_trusted_root,
                             IdentityCheck, load_attestations, load_bundle,
                             load_trusted_root, log_instance_for_key, merge_roots,
                             public_key_from_pem, SignerInfo, TrustedRoot,
                             TrustedRootSource, TrustOptions, VerifiedAttestation)
from mgattest.errors import VerificationError
from mgattest.policy._evaluate import signer_matches
from mgattest.policy._model import Policy

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


class SignerNotInPolicyError(VerificationError):
    """A certificate signer that matches none of the policy's keyless signers."""


class PolicyIdentity:
    """Identity check for ``verify_bundle``: the certificate must match a policy signer."""

    def __init__(self, policy: Policy,
                 extra: IdentityCheck | Mapping[str, Any] | None = None) -> None:
        self.policy = policy
        # an attest IdentityPolicy from --identity/--issuer (or its keyword arguments)
        self.extra = None if extra is None else as_identity_check(extra)

    def check(self, signer: SignerInfo) -> None:
        """Raise unless *signer* matches some keyless signer (and the extra policy)."""

        if self.extra is not None:
            self.extra.check(signer)
            return
        keyless = [s for s in self.policy.signers.values() if s.key is None]
        reasons = []
        for s in keyless:
            ok, why = signer_matches(s, signer, None)
            if ok:
                return
            reasons.append(f"{s.name}: {why}")
        raise SignerNotInPolicyError(
            f"certificate identity {signer.identity!r} ({signer.issuer}) matches no keyless "
            f"signer of the policy" + (f" ({reasons[0]})" if reasons else " (none declared)"),
            what="identity", where="certificate SAN")


def trusted_root_for(policy: Policy,
                     override: TrustedRootSource | None = None) -> TrustedRoot:
    """The TrustedRoot the policy describes (built-in roots, files, extra logs).

    *override* (a path or TrustedRoot, e.g. ``--trusted-root``) is merged in. With no
    root anywhere, Sigstore public-good is used.
    """

    roots = []
    given = as_trusted_root(override)
    if given is not None:
        roots.append(given)
    for spec in policy.roots:
        if spec.path is None:
            instance = "production" if spec.name == "sigstore-public-good" else "staging"
            roots.append(embedded_trusted_root(instance))
        else:
            roots.append(load_trusted_root(spec.path))
    for log in policy.logs.values():
        key = public_key_from_pem(log.public_key_pem.encode(), where=f"log {log.name}")
        inst = log_instance_for_key(key, base_url=log.url or "", valid_from=0)
        roots.append(TrustedRoot(tlogs=(inst,), source=f"policy log {log.name}"))
    if not roots:
        roots.append(embedded_trusted_root("production"))
    merged = merge_roots(roots)
    if merged is None:  # cannot happen: roots holds at least public-good; fail closed
        raise VerificationError("no trusted root", what="trusted root")
    return merged


def trusted_root_digest(root: TrustedRoot) -> str:
    """``sha256:<hex>`` of the canonical JSON of a TrustedRoot (cache keys, VSAs)."""
    data = json.dumps(root.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def policy_keys(policy: Policy) -> list[PublicKeyTypes]:
    """The policy's trusted public keys as key objects."""

    return [public_key_from_pem(k.pem.encode(), where=f"key {k.name}")
            for k in policy.keys.values()]


def allows_unlogged(policy: Policy) -> bool:
    """True when some rule makes log inclusion optional (the evaluator still enforces)."""
    return any(r.tlog is not None and r.tlog.require == "optional" for r in policy.rules)


def verify_attestations(bundle_files: Iterable[str | os.PathLike[str]], policy: Policy, *,
                        trusted_root: TrustedRootSource | None = None,
                        identity: IdentityCheck | Mapping[str, Any] | None = None,
                        certificate_chain: bytes | None = None,
                        root_ready: bool = False) -> list[VerifiedAttestation]:
    """Read every bundle in *bundle_files* and verify each under the policy's trust.

    *trusted_root* is merged into the policy's roots, unless *root_ready* says it
    already is the result of :func:`trusted_root_for`. Raises the first verification
    error, naming the file (and line / index).
    """
    from mgattest.attest import verify_bundle  # noqa: PLC0415 - the verification stack (~0.3 s) loads only when bundles are verified

    root = trusted_root if root_ready else trusted_root_for(policy, trusted_root)
    keys = policy_keys(policy)
    ident = PolicyIdentity(policy, identity)
    unlogged = allows_unlogged(policy)
    out = []
    for path in bundle_files:
        for label, bundle in load_attestations(path):
            parsed = load_bundle(bundle, where=label)
            att = verify_bundle(parsed, TrustOptions(trusted_root=root, keys=keys, identity=ident,
                                                     certificate_chain=certificate_chain),
                                allow_unlogged=unlogged)
            out.append(att)
    return out
