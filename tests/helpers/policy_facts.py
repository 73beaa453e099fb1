"""Builders for policy tests: real keys, real policy files, verified-attestation records."""

from __future__ import annotations

import hashlib
import os
import textwrap
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mgattest.attest._results import (FileCheck, LogProof, ModelCheck, SignerInfo,
                                     VerifiedAttestation, VerifiedTime)
from mgattest.policy._loader import policy_from_bytes

SLSA = "https://slsa.dev/provenance/v1"
GH_ISSUER = "https://token.actions.githubusercontent.com"
LOG_ID = "a1" * 32
T0 = 1_790_000_000  # a fixed "now" for deterministic tests


def new_key() -> tuple[str, str]:
    """(public PEM, SHA-256 fingerprint of DER SPKI) of a fresh P-256 key."""
    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, hashlib.sha256(der).hexdigest()


KEY_A = new_key()
KEY_B = new_key()
KEY_C = new_key()


def indent_pem(pem: str, spaces: int) -> str:
    return textwrap.indent(pem, " " * spaces).lstrip()


def policy(text: str, base_dir: str = ".") -> Any:
    """Compile a policy from YAML text (dedented)."""
    return policy_from_bytes(textwrap.dedent(text).encode(), source="test.yaml",
                             base_dir=base_dir)


def keys_block(*names_and_keys: tuple[str, tuple[str, str]], extra: str = "") -> str:
    """A ``trust.keys`` YAML block with inline PEMs (block scalars)."""
    lines = ["trust:", "  keys:"]
    for name, (pem, _) in names_and_keys:
        lines.append(f"    - name: {name}")
        lines.append("      pem: |")
        lines.extend("        " + ln for ln in pem.strip().splitlines())
        if extra:
            lines.extend("      " + ln for ln in extra.strip().splitlines())
    return "\n".join(lines) + "\n"


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def log(index: int = 1, time: int | None = T0 - 3600, log_id: str = LOG_ID,
        proof: bool = True, *, leaf: str | None = None) -> LogProof:
    """A verified entry (inclusion proof and SET when *proof*); its time is a verified
    SET time only when the SET verified, else just the claimed one."""
    verified = VerifiedTime(time, "set", f"log index {index}") if time is not None and proof \
        else None
    return LogProof(log_id, index if proof else None, verified, "dsse", "0.0.1", proof,
                    "test-origin", index + 1, proof, leaf_hash=leaf or f"{index:064x}",
                    claimed_log_index=index, claimed_integrated_time=time)


def key_signer(key: tuple[str, str]) -> SignerInfo:
    return SignerInfo(kind="key", key_fingerprint=key[1])


def cert_signer(identity: str, issuer: str = GH_ISSUER, fingerprint: str = "ee" * 32,
                **extensions: str) -> SignerInfo:
    return SignerInfo(kind="certificate", key_fingerprint=fingerprint, identity=identity,
                      issuer=issuer, extensions=dict(extensions))


def attestation(files: dict[str, str], signer: SignerInfo, *, predicate_type: str = SLSA,
                predicate: dict[str, Any] | None = None, logs: list[LogProof] | None = None,
                source: str = "bundle.json") -> VerifiedAttestation:
    subjects = [{"name": n, "digest": {"sha256": d}} for n, d in sorted(files.items())]
    entries = [log()] if logs is None else logs
    statement = {"_type": "https://in-toto.io/Statement/v1", "subject": subjects,
                 "predicateType": predicate_type, "predicate": predicate or {}}
    return VerifiedAttestation(
        source=source, media_type="application/vnd.dev.sigstore.bundle.v0.3+json",
        statement=statement, predicate_type=predicate_type, predicate=predicate or {},
        subjects=subjects, signer=signer, log_entries=entries, payload_sha256="00" * 32,
        signing_times=tuple(e.integrated_time for e in entries if e.integrated_time))


def model(files: dict[str, str], statuses: dict[str, str] | None = None) -> ModelCheck:
    statuses = statuses or {}
    return ModelCheck("/models/m", [FileCheck(n, statuses.get(n, "ok"), {"sha256": d})
                                    for n, d in sorted(files.items())])


# The label the scanner gives typical content of these files (formats are decided by
# content; these fake reports stand in for a scan of such content).
_TYPICAL_LABEL = {".safetensors": "safetensors", ".json": "json", ".onnx": "onnx",
                  ".txt": "text", ".md": "text", ".gguf": "gguf", ".npy": "npy",
                  ".pkl": "pickle", ".joblib": "joblib", ".pt": "torch-zip"}


class Report:
    """An inspect-style FileReport (name, format, verdict, findings)."""

    def __init__(self, name: str, verdict: str = "safe", fmt: str | None = None,
                 findings: list[str] | None = None) -> None:
        self.name = name
        self.format = fmt or _TYPICAL_LABEL.get(os.path.splitext(name)[1], "unknown")
        self.verdict = verdict
        self.findings = findings or []


def safe_reports(files: dict[str, str]) -> list[Report]:
    return [Report(n) for n in files]


def provenance(builder: str = "https://github.com/acme/models/.github/workflows/train.yml@refs/tags/v1.2.3",
               repo: str = "https://github.com/acme/models", ref: str = "refs/tags/v1.2.3",
               params: dict[str, Any] | None = None, deps: list[dict[str, Any]] | None = None,
               finished: str | None = "2026-09-20T00:00:00Z",
               build_type: str = "https://actions.github.io/buildtypes/workflow/v1") -> dict[str, Any]:
    ext = {"workflow": {"repository": repo, "ref": ref, "path": ".github/workflows/train.yml"}}
    ext.update(params or {})
    pred: dict[str, Any] = {
        "buildDefinition": {"buildType": build_type, "externalParameters": ext,
                            "resolvedDependencies": deps if deps is not None else [
                                {"uri": f"git+{repo}@{ref}", "digest": {"gitCommit": "ab" * 20}}]},
        "runDetails": {"builder": {"id": builder}, "metadata": {}}}
    if finished:
        pred["runDetails"]["metadata"]["finishedOn"] = finished
    return pred
