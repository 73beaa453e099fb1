"""Single model files signed with a key into the embedded local log."""

from __future__ import annotations

from mgattest.attest._sign import sign_model, write_bundle_file


def signed(tmp_path, signer, name, data: bytes):
    """Write ``data`` to ``tmp_path/name`` and sign it; return (file, bundle path)."""
    path = tmp_path / name
    path.write_bytes(data)
    bundle = write_bundle_file(sign_model(path, signer).bundle, tmp_path / f"{name}.sigstore.json")
    return path, bundle
