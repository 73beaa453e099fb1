"""SLSA Verification Summary Attestations (https://slsa.dev/verification_summary/v1).

After a policy allows a model, ``write_vsa`` records that decision as an in-toto
Statement, signed into a DSSE Sigstore bundle with the caller's key. Downstream
consumers can trust the VSA instead of re-running the whole verification, so it states
exactly what was verified: its subjects are only the files the verdict cleared
(covered by an attestation from a signer their rule trusts, content passed), its input
attestations only those that covered a subject, and ``PASSED`` only when no clause
failed (a warn-mode allow with failures is ``FAILED``).
"""

from __future__ import annotations

import os

from mgattest import __version__
from mgattest._jsonutil import JSONObject
from mgattest.attest import (BundleJSON, dump_bundle, load_signer, make_bundle,
                             make_statement, ResourceDescriptor, serialize_statement,
                             sign_envelope, Statement, VerifiedAttestation)
from mgattest.errors import InputError
from mgattest.policy._model import SLSA_PROVENANCE_V1, format_time
from mgattest.policy._verdict import PASS, Verdict

VSA_PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
VERIFIER_ID = "https://github.com/mgattest/mgattest/verifier/v1"


def vsa_statement(verdict: Verdict, attestations: list[VerifiedAttestation], *,
                  resource_uri: str, policy_uri: str | None = None) -> Statement:
    """The VSA in-toto Statement for *verdict* (no signing)."""

    algo, _, hexval = verdict.policy_digest.partition(":")
    cleared = {name: c for name, c in sorted(verdict.clearance.items()) if c.loadable}
    counted = {source for c in cleared.values() for source in c.attestations}
    inputs = [a for a in attestations if a.source in counted]
    provenance_ok = any(c.status == PASS and c.clause.startswith("attestations[")
                        for c in verdict.checks) and any(
        a.predicate_type == SLSA_PROVENANCE_V1 for a in inputs)
    predicate: JSONObject = {
        "verifier": {"id": VERIFIER_ID, "version": {"mgattest": __version__}},
        "timeVerified": format_time(verdict.evaluated_at),
        "resourceUri": resource_uri,
        "policy": {"uri": policy_uri or verdict.policy_source, "digest": {algo: hexval}},
        "inputAttestations": [{"uri": a.source, "digest": {"sha256": a.payload_sha256}}
                              for a in inputs if a.payload_sha256],
        "verificationResult": "PASSED" if verdict.passed else "FAILED",
        "verifiedLevels": ["SLSA_BUILD_LEVEL_1"] if provenance_ok and verdict.passed else [],
    }
    subjects: list[ResourceDescriptor] = [
        {"name": a["name"], "digest": dict(a["digest"])} for a in verdict.artifacts
        if a["name"] in cleared]
    if not subjects:
        raise InputError("no file of the model was covered and verified: there is nothing "
                         "for a VSA to state", what="vsa")
    return make_statement(subjects, VSA_PREDICATE_TYPE, predicate)


def write_vsa(path: str | os.PathLike[str], verdict: Verdict,
              attestations: list[VerifiedAttestation], *, key_path: str | os.PathLike[str],
              resource_uri: str, password: bytes | None = None) -> BundleJSON:
    """Sign the VSA with the private key at *key_path*; write the bundle to *path*."""
    from mgattest.attest import public_key_hint  # noqa: PLC0415 - the verification stack (~0.3 s) loads only when a VSA is signed

    if not verdict.allowed:
        raise InputError("a VSA is only written for an allowed model", what="vsa")
    signer = load_signer(key_path, password)
    statement = vsa_statement(verdict, attestations, resource_uri=resource_uri)
    envelope = sign_envelope(serialize_statement(statement), signer)
    bundle = make_bundle(envelope=envelope, public_key_hint=public_key_hint(signer.public_key))
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(dump_bundle(bundle))
    os.replace(tmp, path)
    return bundle
