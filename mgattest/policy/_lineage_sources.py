"""Where lineage looks for attestations, and how a found one is verified.

Two :class:`~mgattest.policy._lineage.AttestationSource` s:

- :class:`BundleFiles`: bundle files and directories (``--bundles``). Every bundle,
  ``.intoto.jsonl`` line or npm attestation document under them is indexed by the
  digests its statement *claims* as subjects; the index only picks candidates, each is
  verified before anything it says is used.
- :class:`LogIndex`: a Rekor v1 log's search index, ``POST /api/v1/index/retrieve``
  with ``{"hash": "sha256:HEX"}`` (Rekor's ``SearchIndex``; the answer is a list of
  entry UUIDs), then ``GET /api/v1/log/entries/{uuid}`` for each. A Rekor ``dsse``
  entry records hashes of the envelope, not the envelope; the statement is read from
  the ``LogEntry``'s ``attestation.data`` (Rekor's attestation storage) when the log
  serves it. Without it the entry is reported as found but unverifiable here.

And the verifiers: :func:`trust_verifier` (the trust options of ``verify``) and
:func:`policy_dependency_verifier` (a policy's keys, roots and signers).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
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
_UUID = re.compile(r"^[0-9a-f]{64}([0-9a-f]{16})?$")
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


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
        """The entries ``index/retrieve`` returns for *digest*, each as a candidate."""
        import requests  # noqa: PLC0415 - costs CLI start-up time; only network calls need it

        from mgattest.tlog import RekorClient  # noqa: PLC0415 - as requests

        base = self.url.rstrip("/")
        with RekorClient(base, timeout=self.timeout, retries=0) as client, \
                requests.Session() as session:
            try:
                uuids = self._search(session, digest)
            except requests.RequestException as exc:
                raise InputError(f"{base}: search failed: {exc}", what="log search",
                                 where=base) from None
            return [self._candidate(client, session, uuid) for uuid in uuids]

    def _search(self, session: Any, digest: ArtifactDigest) -> list[str]:
        base = self.url.rstrip("/")
        url = f"{base}/api/v1/index/retrieve"
        answer = _answer_json(session.post(url, json={"hash": digest.text},
                                           timeout=self.timeout), url)
        if not isinstance(answer, list) or not all(isinstance(u, str) for u in answer):
            raise InputError(f"{base}: index/retrieve did not return a list of entry "
                             "UUIDs", what="log search", where=base)
        uuids = sorted({u.lower() for u in answer})
        bad = [u for u in uuids if not _UUID.match(u)]
        if bad:
            raise InputError(f"{base}: index/retrieve returned {bad[0]!r}, not an entry "
                             "UUID", what="log search", where=base)
        return uuids[:MAX_HITS]

    def _candidate(self, client: Any, session: Any, uuid: str) -> Candidate:
        import requests  # noqa: PLC0415 - as in find

        base = self.url.rstrip("/")
        label = f"{base} entry {uuid}"
        url = f"{base}/api/v1/log/entries/{uuid}"
        try:
            entry = client.get_entry(uuid)
            raw = _answer_json(session.get(url, timeout=self.timeout), url)
        except MgattestError as exc:
            return Candidate(label, None, f"cannot fetch the entry: {exc.message}")
        except requests.RequestException as exc:
            return Candidate(label, None, f"cannot fetch the entry: {exc}")
        envelope = _stored_envelope(raw)
        if envelope is None:
            return Candidate(label, None, "the log serves no DSSE envelope for this entry "
                                          "(pass its bundle with --bundles)")
        material = _verification_material(entry)
        if material is None:
            return Candidate(label, None, "the entry names no signing key or certificate")
        material["tlogEntries"] = [entry]
        return Candidate(label, {"mediaType": BUNDLE_V03, "verificationMaterial": material,
                                 "dsseEnvelope": envelope})


def _answer_json(resp: Any, url: str) -> Any:
    if resp.status_code != 200:
        raise InputError(f"{url} answered HTTP {resp.status_code}", what="log search",
                         where=url)
    if len(resp.content) > 16 << 20:
        raise InputError(f"{url}: answer larger than 16 MiB", what="log search", where=url)
    try:
        return json.loads(resp.content)
    except (ValueError, RecursionError):
        raise InputError(f"{url} did not answer JSON", what="log search", where=url) from None


def _stored_envelope(raw: object) -> JSONObject | None:
    """The DSSE envelope of a Rekor v1 ``LogEntry``'s ``attestation.data``, if served."""
    if not isinstance(raw, dict) or len(raw) != 1:
        return None
    (entry,) = raw.values()
    attestation = entry.get("attestation") if isinstance(entry, dict) else None
    data = attestation.get("data") if isinstance(attestation, dict) else None
    if not isinstance(data, str):
        return None
    try:
        envelope = json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return envelope if isinstance(envelope, dict) and "payload" in envelope else None


def _verification_material(entry: JSONObject) -> dict[str, Any] | None:
    """A certificate (``rawBytes``) or a key hint from the entry's ``verifier``."""
    try:
        body = json.loads(base64.b64decode(str(entry["canonicalizedBody"]), validate=True))
        verifier = body["spec"]["signatures"][0]["verifier"]
        pem = base64.b64decode(verifier, validate=True).decode("ascii")
    except (KeyError, IndexError, TypeError, binascii.Error, ValueError, RecursionError):
        return None
    if "BEGIN CERTIFICATE" not in pem:
        return {"publicKey": {"hint": ""}}
    body_b64 = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return {"certificate": {"rawBytes": body_b64}}


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
