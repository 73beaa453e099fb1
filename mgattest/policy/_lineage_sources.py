"""Where lineage looks for attestations, and how a found one is verified.

Two :class:`~mgattest.policy._lineage.AttestationSource` s:

- :class:`BundleFiles`: bundle files and directories (``--bundles``). Every bundle,
  ``.intoto.jsonl`` line or npm attestation document under them is indexed by the
  digests its statement *claims* as subjects; the index only picks candidates, each is
  verified before anything it says is used.
- :class:`LogIndex`: a Rekor v1 log's search index, ``POST /api/v1/index/retrieve``
  with ``{"hash": "sha256:HEX"}`` (Rekor's ``SearchIndex``; the answer is a list of
  entry UUIDs), then ``GET /api/v1/log/entries/{uuid}`` for each. A Rekor ``dsse``
  entry records the envelope's signature and verifier and the payload's hash, not the
  envelope; ``mgattest log serve`` serves the in-toto Statement as the ``LogEntry``'s
  ``attestation.data`` (the shape Rekor's attestation storage uses for intoto entries;
  Rekor stores none for dsse entries). :func:`mgattest.tlog.bundle_from_log_entry`
  rebuilds the bundle from the two (the statement only if it hashes to the entry's
  ``payloadHash``), which is then verified like any bundle. An entry it cannot rebuild
  (no statement served, a statement that is not the signed payload, another entry
  kind) is reported as found but unverifiable, with the reason.

And the verifiers: :func:`trust_verifier` (the trust options of ``verify``) and
:func:`policy_dependency_verifier` (a policy's keys, roots and signers).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgattest._jsonutil import JSONObject
from mgattest.attest import TrustOptions, VerifiedAttestation
from mgattest.errors import InputError, MgattestError
from mgattest.policy._lineage import ArtifactDigest, Candidate, DependencyVerifier

if TYPE_CHECKING:
    from mgattest.policy._model import Policy

MAX_BUNDLE_FILES = 10_000
MAX_HITS = 256  # entry UUIDs read from one index answer
_BUNDLE_SUFFIXES = (".sigstore.json", ".sigstore", ".intoto.jsonl", ".bundle.json")


def claimed_subject_digests(bundle: JSONObject) -> set[str]:
    """``alg:hex`` of every subject a bundle's statement claims (unverified: used to
    pick candidates only), or the message digest of a message-signature bundle."""
    out: set[str] = set()
    message = bundle.get("messageSignature")
    if isinstance(message, dict):
        digest = message.get("messageDigest")
        if isinstance(digest, dict) and isinstance(digest.get("digest"), str):
            try:
                raw = base64.b64decode(digest["digest"], validate=True)
            except (binascii.Error, ValueError):
                return out
            algorithm = str(digest.get("algorithm", "")).lower().replace("_", "")
            out.add(f"{algorithm}:{raw.hex()}")
        return out
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
        return out
    try:
        statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return out
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    for subject in subjects if isinstance(subjects, list) else []:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        for algorithm, value in (digests.items() if isinstance(digests, dict) else ()):
            if isinstance(value, str):
                out.add(f"{algorithm}:{value.lower()}")
    return out


@dataclass
class BundleFiles:
    """Attestations in bundle files and directories (searched recursively)."""

    paths: tuple[str, ...]
    name: str = "bundles"
    _index: dict[str, list[Candidate]] | None = field(default=None, repr=False)

    def find(self, digest: ArtifactDigest) -> list[Candidate]:
        """Every attestation under ``paths`` whose statement claims *digest*."""
        if self._index is None:
            self._index = self._build_index()
        return list(self._index.get(digest.text, []))

    def _build_index(self) -> dict[str, list[Candidate]]:
        from mgattest.attest import load_attestations  # noqa: PLC0415 - attest loads on first use

        index: dict[str, list[Candidate]] = {}
        for path in self._files():
            try:
                found = load_attestations(path)
            except MgattestError:
                continue  # not an attestation file (a directory holds other JSON too)
            for label, bundle in found:
                for digest in claimed_subject_digests(bundle):
                    index.setdefault(digest, []).append(Candidate(label, bundle))
        return index

    def _files(self) -> list[str]:
        files: list[str] = []
        for given in self.paths:
            path = Path(given)
            if path.is_file():
                files.append(str(path))
            elif path.is_dir():
                for root, dirs, names in os.walk(path):  # links to directories not followed
                    dirs.sort()
                    files.extend(os.path.join(root, n) for n in sorted(names)
                                 if n.endswith(_BUNDLE_SUFFIXES))
            else:
                raise InputError(f"--bundles {given}: no such file or directory",
                                 what="--bundles", where=given)
            if len(files) > MAX_BUNDLE_FILES:
                raise InputError(f"--bundles holds more than {MAX_BUNDLE_FILES} attestation "
                                 "files", what="--bundles", where=given)
        return files


@dataclass
class LogIndex:
    """Attestations a Rekor v1 log's search index names for a digest."""

    url: str
    timeout: float = 10.0
    name: str = "log"

    def find(self, digest: ArtifactDigest) -> list[Candidate]:
        """The entries ``index/retrieve`` returns for *digest*, each as a candidate
        bundle rebuilt from the entry and its served statement (unverified)."""
        from mgattest.tlog import RekorClient  # noqa: PLC0415 - loads requests: CLI start-up time

        base = self.url.rstrip("/")
        with RekorClient(base, timeout=self.timeout, retries=0) as client:
            try:
                uuids = sorted(set(client.search_index({"hash": digest.text})))
            except MgattestError as exc:
                raise InputError(f"{base}: search failed: {exc.message}", what="log search",
                                 where=base) from None
            return [self._candidate(client, uuid) for uuid in uuids[:MAX_HITS]]

    def _candidate(self, client: Any, uuid: str) -> Candidate:
        from mgattest.tlog import bundle_from_log_entry  # noqa: PLC0415 - as RekorClient

        label = f"{self.url.rstrip('/')} entry {uuid}"
        try:
            raw = client.get_entry_json(uuid)
        except MgattestError as exc:
            return Candidate(label, None, f"cannot fetch the entry: {exc.message}")
        try:
            return Candidate(label, bundle_from_log_entry(raw, where=label))
        except MgattestError as exc:
            return Candidate(label, None, exc.message)


def trust_verifier(trust: TrustOptions, *, allow_unlogged: bool = False) -> DependencyVerifier:
    """Verify dependency attestations with the trust options of ``verify``."""

    def verify(candidate: Candidate, digest: ArtifactDigest) -> VerifiedAttestation:
        from mgattest.attest import load_bundle, verify_bundle  # noqa: PLC0415 - attest loads on first use

        if candidate.bundle is None:
            raise InputError(candidate.problem or "no bundle", where=candidate.label)
        bundle = load_bundle(candidate.bundle, where=candidate.label)
        return verify_bundle(bundle, trust, allow_unlogged=allow_unlogged,
                             artifact_digest=digest.text)

    return verify


def policy_dependency_verifier(policy: Policy, trust: TrustOptions) -> DependencyVerifier:
    """Verify dependency attestations under a policy's trust (its keys, roots, logs and
    keyless signers), as the model's own bundles are. Each must be in a trusted log:
    no ``transparencyLog`` clause judges them afterwards, so ``require: optional`` of a
    rule does not reach them."""
    from mgattest.policy._gather import (  # noqa: PLC0415 - it imports attest
        PolicyIdentity,
        policy_keys,
        trusted_root_for,
    )

    root = trusted_root_for(policy, trust.trusted_root)
    options = TrustOptions(trusted_root=root, keys=policy_keys(policy),
                           identity=PolicyIdentity(policy, trust.identity),
                           certificate_chain=trust.certificate_chain)
    return trust_verifier(options)
