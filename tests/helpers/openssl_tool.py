"""The real ``openssl`` binary as an independent signer and verifier of raw detached
signatures (``dgst -sha256`` for EC and RSA, ``pkeyutl -rawin`` for Ed25519)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

OPENSSL_MISSING = shutil.which("openssl") is None

# name -> (openssl genpkey arguments, how openssl signs, the scheme mgattest reports)
KEYS = {
    "ec-p256": (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "dgst",
                "ecdsa-sha256"),
    "ec-p384": (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "dgst",
                "ecdsa-sha256"),
    "rsa-2048": (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "dgst",
                 "rsa-pkcs1v15-sha256"),
    "ed25519": (["-algorithm", "ED25519"], "pkeyutl", "ed25519"),
}


def openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``openssl ARGS`` (60 s bound); raise on failure when ``check``."""
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=check)


def make_keypair(base: Path, name: str, genargs: list[str]) -> tuple[Path, Path]:
    """``base/NAME.pem`` (private) and ``base/NAME.pub`` made by ``openssl genpkey``."""
    private, public = base / f"{name}.pem", base / f"{name}.pub"
    openssl("genpkey", *genargs, "-out", private)
    openssl("pkey", "-in", private, "-pubout", "-out", public)
    return private, public


def openssl_sign(kind: str, private: Path, blob: Path, out: Path) -> Path:
    """Sign ``blob`` as openssl users do for key ``kind`` (a :data:`KEYS` name)."""
    if KEYS[kind][1] == "pkeyutl":
        openssl("pkeyutl", "-sign", "-inkey", private, "-rawin", "-in", blob, "-out", out)
    else:
        openssl("dgst", "-sha256", "-sign", private, "-out", out, blob)
    return out


def openssl_verifies(kind: str, public: Path, blob: Path, signature: Path) -> bool:
    """Whether openssl accepts ``signature`` over ``blob`` with ``public``."""
    if KEYS[kind][1] == "pkeyutl":
        r = openssl("pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin", "-in", blob,
                    "-sigfile", signature, check=False)
        return r.returncode == 0 and "Verified Successfully" in r.stdout
    r = openssl("dgst", "-sha256", "-verify", public, "-signature", signature, blob,
                check=False)
    return r.returncode == 0 and "Verified OK" in r.stdout
