"""The reference verifiers the real-world tests compare mgattest against.

* sigstore-python: the ``sigstore`` CLI installed beside this interpreter.
* sigstore-js: ``@sigstore/verify`` through ``js/harness.js`` (pinned in
  ``js/package-lock.json``; ``scripts/setup.sh`` runs ``npm ci`` there when node exists).

Each runner returns ``"pass"`` or ``"fail: <reason>"``; :func:`js_unavailable` says why
sigstore-js cannot run here (then the differential test skips only that peer).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.helpers.paths import TESTS_DIR

HERE = TESTS_DIR / "realworld"
GENERIC_BUILDER = ("https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
                   "generator_generic_slsa3.yml")
JS_DIR = HERE / "js"
BIN = Path(sys.executable).parent
TIMEOUT = 120


def js_unavailable() -> str | None:
    """Why sigstore-js cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS_DIR / "node_modules" / "@sigstore" / "verify").is_dir():
        return f"run `npm ci` in {JS_DIR} (scripts/setup.sh does when node is present)"
    return None


def _node(command: str, request: dict) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(request, fh)
    try:
        proc = subprocess.run(["node", str(JS_DIR / "harness.js"), command, fh.name],
                              capture_output=True, text=True, timeout=TIMEOUT)
    finally:
        Path(fh.name).unlink()
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"fail: harness crashed: {proc.stderr[-400:]}"
    return "pass" if answer["verdict"] == "pass" else f"fail: {answer.get('error')}"


def sigstore_js_verify(*, bundle: Path, trusted_root: Path, artifact: Path | None = None,
                       identity: str | None = None, issuer: str | None = None,
                       keys: dict[str, Path] | None = None) -> str:
    """Verify with @sigstore/verify (identity matched exactly)."""
    request: dict = {"bundle": str(bundle), "trustedRoot": str(trusted_root)}
    if artifact is not None:
        request["artifact"] = str(artifact)
    if identity:
        request["identity"] = identity
    if issuer:
        request["issuer"] = issuer
    if keys:
        request["keys"] = {hint: str(path) for hint, path in keys.items()}
    return _node("verify", request)


def sigstore_js_sign(*, trust_config: Path, token: str, artifact: Path, out: Path) -> str:
    """Sign ``artifact`` (message signature) through the ClientTrustConfig's services."""
    return _node("sign", {"trustConfig": str(trust_config), "token": token,
                          "artifact": str(artifact), "out": str(out)})


def sigstore_js_parse_config(trust_config: Path) -> str:
    """Parse a ClientTrustConfig as sigstore-js does before signing."""
    proc = subprocess.run(["node", str(JS_DIR / "harness.js"), "parse-config", str(trust_config)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    return "pass" if answer["verdict"] == "pass" else f"fail: {answer.get('error')}"


def sigstore_python_verify(*, bundle: Path, artifact: Path, trust_config: Path | None = None,
                           trusted_root: Path | None = None, identity: str | None = None,
                           issuer: str | None = None, key: Path | None = None) -> str:
    """Verify with the ``sigstore`` CLI (offline)."""
    cmd = [str(BIN / "sigstore")]
    if trust_config is not None:
        cmd += ["--trust-config", str(trust_config)]
    if key is not None:
        return "fail: sigstore-python verifies no key-signed bundles"
    cmd += ["verify", "identity", "--offline", "--bundle", str(bundle)]
    if trusted_root is not None:
        cmd += ["--trusted-root", str(trusted_root)]
    cmd += ["--cert-identity", identity or "", "--cert-oidc-issuer", issuer or "", str(artifact)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode == 0:
        return "pass"
    return "fail: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:300]


def cli(*args) -> tuple[int, str]:
    """Run ``mgattest ARGS`` in-process: (exit code, output). A traceback is a defect."""
    from typer.testing import CliRunner

    from mgattest.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def sigstore_keyring(log: Any) -> Any:
    """sigstore-python's Keyring holding ``log``'s (ECDSA P-256) public key."""
    import base64
    import json

    from cryptography.hazmat.primitives import serialization
    from sigstore._internal.trust import Keyring
    from sigstore_models.common import v1 as common_v1

    der = log.signer.public_key.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    key = common_v1.PublicKey.from_json(json.dumps({
        "rawBytes": base64.b64encode(der).decode(), "keyDetails": "PKIX_ECDSA_P256_SHA_256"}))
    return Keyring([key])
