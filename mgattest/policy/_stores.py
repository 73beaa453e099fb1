"""A stored model (Ollama store, OCI image layout) as the policy sees it.

Resolution (``attest.resolve_stored_model``) verified the chain from the manifest to
every blob; here the manifest and its layers become the files a policy judges, and the
layer blobs are scanned as the files they hold.
"""

from __future__ import annotations

from dataclasses import replace

from mgattest._files import read_bounded
from mgattest.attest import FileCheck, ModelCheck, StoredModel, VerifiedAttestation
from mgattest.inspect import FileReport
from mgattest.policy._modelcheck import signed_digests

__all__ = ["scan_stored_model", "store_model_check"]


def store_model_check(stored: StoredModel, attestations: list[VerifiedAttestation]
                      ) -> ModelCheck:
    """The check of a stored model (Ollama, OCI layout) whose chain was verified.

    Resolution checked every blob against the manifest's descriptors, so a signed
    manifest digest covers the manifest and each layer: all are "ok" when a verified
    attestation signs the manifest's SHA-256, all "mismatch" otherwise. Each layer
    carries the manifest digest (``named_by``), so a policy counts an attestation of the
    manifest (cosign's single subject) as covering the layers.
    """
    manifest = stored.manifest
    signed = any(digest.get("sha256", "").lower() == manifest.sha256
                 for att in attestations for _name, digest in signed_digests(att))
    detail = None if signed else (f"no verified attestation signs manifest "
                                  f"sha256:{manifest.sha256}")
    status = "ok" if signed else "mismatch"
    named_by = {"sha256": manifest.sha256}
    return ModelCheck(stored.reference, [
        FileCheck(manifest.name, status, {"sha256": manifest.sha256}, detail),
        *(FileCheck(e.name, status, {"sha256": e.sha256}, detail, named_by=named_by)
          for e in stored.layers)])


def scan_stored_model(stored: StoredModel) -> dict[str, FileReport]:
    """Content reports of a stored model's layers (each blob scanned as the file it
    holds, under its subject name) and of its manifest."""
    from mgattest.inspect import scan_bytes, scan_path  # noqa: PLC0415 - every format checker (~0.15 s) loads only when content is inspected

    manifest = stored.manifest
    reports = {manifest.name: scan_bytes(manifest.name, read_bounded(
        manifest.path, manifest.size, what="manifest"))}
    for layer in stored.layers:
        reports[layer.name] = replace(scan_path(layer.path)[0], path=layer.name)
    return reports
