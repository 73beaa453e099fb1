"""Model repositories as home-grown signing scripts leave them (``mgattest migrate``).

Each writer below does what a typical in-house script does: ``sign_hmac`` is the usual
``sign_model.py`` (HMAC-SHA256 of the bytes, a ``<file>.sig`` JSON beside the file),
``write_signature_manifest`` its batch variant (``model_signatures.json``),
``write_metadata`` a release script's ``<file>.sig.json`` with checksums, ``allowed`` a
deploy allow-list, and the checksum files come from the real ``sha256sum``/``sha512sum``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import pickle
import struct
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HMAC_KEY = b"team-signing-secret-2023"


def hmac_record(path: Path, key: bytes, *, encoding: str = "hex", name: str | None = None) -> dict:
    """The record a typical script writes for one file."""
    data = path.read_bytes()
    mac = hmac.new(key, data, hashlib.sha256)
    signature = mac.hexdigest() if encoding == "hex" else base64.b64encode(mac.digest()).decode()
    return {"file": name or path.name, "signature": signature, "algorithm": "HMAC-SHA256",
            "signed_at": datetime(2023, 5, 1, tzinfo=timezone.utc).isoformat(),
            "file_size": len(data)}


def sign_hmac(path: Path, key: bytes, *, encoding: str = "hex") -> Path:
    """``sign_model.py``: ``<file>.sig`` beside the file."""
    sig = path.with_name(path.name + ".sig")
    sig.write_text(json.dumps(hmac_record(path, key, encoding=encoding), indent=2))
    return sig


def write_signature_manifest(directory: Path, files: list[Path], key: bytes, *,
                             as_list: bool = False) -> Path:
    """``model_signatures.json``: records keyed by file name (or a list of them)."""
    records = [hmac_record(f, key, name=f.relative_to(directory).as_posix()) for f in files]
    doc: object = records if as_list else {r["file"]: r for r in records}
    path = directory / "model_signatures.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def write_metadata(path: Path, *, sha512: bool = False) -> Path:
    """A release script's ``<file>.sig.json``: checksums and size."""
    data = path.read_bytes()
    meta = {"file": path.name, "file_size": len(data),
            "checksum_sha256": hashlib.sha256(data).hexdigest(),
            "created_by": "release.py 1.4"}
    if sha512:
        meta["checksum_sha512"] = hashlib.sha512(data).hexdigest()
    out = path.with_name(path.name + ".sig.json")
    out.write_text(json.dumps(meta, indent=2))
    return out


def write_allowed(path: Path, files: dict[str, Path]) -> Path:
    """A deploy allow-list ``{filename: sha256}``."""
    path.write_text(json.dumps({name: hashlib.sha256(f.read_bytes()).hexdigest()
                                for name, f in files.items()}, indent=2))
    return path


def write_sums(directory: Path, tool: str, names: list[str], out_name: str,
               *args: str) -> Path:
    """``cd directory && <tool> [args] names > out_name`` with the real coreutils tool."""
    text = subprocess.run([tool, *args, "--", *names], cwd=directory, check=True,
                          capture_output=True, timeout=30).stdout
    path = directory / out_name
    path.write_bytes(text)
    return path


@dataclass
class LegacyRepo:
    """A repository in every old layout; ``signed`` = files whose claims hold (relative
    POSIX names), ``unclaimed`` = model files no claim covers."""

    root: Path
    signed: dict[str, str]  # file -> the scheme that vouches for it
    unclaimed: list[str]


def _write_file(path: Path, size: int, seed: int, *, realistic: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = hashlib.sha256(bytes([seed])).digest() * (size // 32 + 1)
    path.write_bytes(_as_format(path.suffix, payload) if realistic else payload)
    return path


def _as_format(suffix: str, payload: bytes) -> bytes:
    """``payload`` wrapped in a valid file of the format its suffix names (what a real
    training script would have saved), so content scans see real models."""
    if suffix in (".pt", ".pth", ".pkl", ".joblib"):  # a pure-data pickle
        return pickle.dumps({"weights": payload, "step": 1200}, protocol=4)
    if suffix == ".safetensors":
        header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)],
                                   "data_offsets": [0, len(payload)]}}).encode()
        header += b" " * (-len(header) % 8)
        return struct.pack("<Q", len(header)) + header + payload
    if suffix in (".npy", ".npz"):
        import numpy as np  # noqa: PLC0415 - only the realistic layouts need it

        buffer = io.BytesIO()
        array = np.frombuffer(payload, dtype=np.uint8)
        if suffix == ".npy":
            np.save(buffer, array, allow_pickle=False)
        else:
            np.savez(buffer, weights=array)
        return buffer.getvalue()
    if suffix == ".onnx":
        import onnx  # noqa: PLC0415 - only the realistic layouts need it
        from onnx import TensorProto, helper  # noqa: PLC0415 - as above

        weights = helper.make_tensor("w", TensorProto.UINT8, [len(payload)], payload, raw=True)
        graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                                  [helper.make_tensor_value_info("y", TensorProto.UINT8,
                                                                 [len(payload)])],
                                  initializer=[weights])
        return onnx.helper.make_model(graph).SerializeToString()
    return payload


def build_legacy_repo(root: Path, key: bytes = HMAC_KEY, *, realistic: bool = False) -> LegacyRepo:
    """Every old layout in one repository (see the module docstring); ``realistic`` files
    hold valid models of their formats (pickles, safetensors, npy/npz, ONNX) instead of
    filler bytes."""

    def _write(path: Path, size: int, seed: int) -> Path:
        return _write_file(path, size, seed, realistic=realistic)

    m = root / "models"
    sign_hmac(_write(m / "classifier.pt", 4000, 1), key)
    sign_hmac(_write(m / "encoder.safetensors", 3000, 2), key, encoding="base64")
    write_signature_manifest(m / "heads", [_write(m / "heads" / "head.bin", 900, 3),
                                           _write(m / "heads" / "sub" / "tail.bin", 800, 4)],
                             key)
    write_signature_manifest(m / "batch", [_write(m / "batch" / "a.pth", 700, 5)], key,
                             as_list=True)
    rel = root / "releases" / "v1"
    write_metadata(_write(rel / "ranker.onnx", 2500, 6))
    write_metadata(_write(rel / "embed.npy", 1500, 7), sha512=True)
    deploy = root / "deploy"
    write_allowed(root / "allowed_models.json",
                  {"deploy/prod.gguf": _write(deploy / "prod.gguf", 5000, 8),
                   "deploy/small.joblib": _write(deploy / "small.joblib", 600, 9)})
    legacy = root / "legacy"
    _write(legacy / "weights.h5", 1200, 10)
    _write(legacy / "vocab.npz", 300, 11)
    _write(legacy / "config.json", 0, 12).write_text('{"layers": 4, "hidden": 128}')
    write_sums(legacy, "sha256sum", ["weights.h5", "config.json"], "SHA256SUMS", "-b")
    write_sums(legacy, "sha512sum", ["vocab.npz"], "SHA512SUMS", "--tag")
    _write(root / "notes" / "scratch.pth", 100, 13)
    signed = {"models/classifier.pt": "hmac-sig", "models/encoder.safetensors": "hmac-sig",
              "models/heads/head.bin": "signature-manifest",
              "models/heads/sub/tail.bin": "signature-manifest",
              "models/batch/a.pth": "signature-manifest",
              "releases/v1/ranker.onnx": "metadata-json",
              "releases/v1/embed.npy": "metadata-json",
              "deploy/prod.gguf": "allowed-list", "deploy/small.joblib": "allowed-list",
              "legacy/weights.h5": "checksum-file", "legacy/config.json": "checksum-file",
              "legacy/vocab.npz": "checksum-file"}
    return LegacyRepo(root, signed, ["notes/scratch.pth"])


def tree_digest(root: Path) -> dict[str, str]:
    """``{relative name: sha256}`` of every file under ``root`` (the before/after check)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}
