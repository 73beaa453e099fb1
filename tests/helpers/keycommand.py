"""Key commands for the ``--key-command`` tests: real signers outside mgattest's process.

:func:`python_key_command` writes a script that signs with a PEM private key using
``cryptography`` (any key type), following the protocol of ``attest._keycommand``; its
``--mode`` makes it misbehave. :func:`openssl_key_command` does the same with the
``openssl`` CLI only (an independent signer).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

_PY_SIGNER = r'''
import base64, os, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

key_path, mode = sys.argv[1], sys.argv[2]
key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
env = os.environ
if env.get("MGATTEST_KEY_COMMAND_ACTION") == "public-key":
    if mode == "bad-public-key":
        sys.stdout.write("not a key\n")
    else:
        sys.stdout.buffer.write(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    sys.exit(0)
data = sys.stdin.buffer.read()
record = env.get("KEYCMD_RECORD")
if record:
    with open(record, "ab") as fh:
        fh.write(repr((env.get("MGATTEST_SIGN_INPUT"), env.get("MGATTEST_SIGN_HASH"),
                       env.get("MGATTEST_SIGN_SCHEME"), data.hex())).encode() + b"\n")
if mode == "fail":
    sys.stderr.write("access denied by key service\n")
    sys.exit(3)
if mode == "hang":
    time.sleep(600)
if mode == "flood":
    while True:
        sys.stdout.buffer.write(b"A" * 65536)
if mode == "garbage":
    sys.stdout.buffer.write(os.urandom(72))
    sys.exit(0)
if mode == "empty":
    sys.exit(0)
if mode.startswith("other="):
    key = serialization.load_pem_private_key(open(mode[6:], "rb").read(), None)
if env["MGATTEST_SIGN_INPUT"] == "message":
    sig = key.sign(data)
else:
    h = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[
        env["MGATTEST_SIGN_HASH"]]()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(data, ec.ECDSA(utils.Prehashed(h)))
    else:
        sig = key.sign(data, padding.PKCS1v15(), utils.Prehashed(h))
if mode == "base64":
    sys.stdout.write(base64.b64encode(sig).decode() + "\n")
else:
    sys.stdout.buffer.write(sig)
'''

_OPENSSL_SIGNER = r'''#!/bin/sh
# Sign the digest on stdin with openssl (ECDSA or RSA PKCS#1 v1.5 over a prehashed digest).
if [ "$MGATTEST_KEY_COMMAND_ACTION" = public-key ]; then exec openssl pkey -in "$1" -pubout; fi
exec openssl pkeyutl -sign -inkey "$1" -pkeyopt "digest:$MGATTEST_SIGN_HASH"
'''

_HANG_WITH_CHILD = r'''#!/bin/sh
# A command whose child keeps stdout open: a timeout must kill the whole group.
sleep 600 &
wait
'''


def python_key_command(tmp: Path, key: Path, mode: str = "raw") -> str:
    """``--key-command`` text of the Python signer over ``key`` in ``mode``."""
    script = tmp / "py_signer.py"
    script.write_text(_PY_SIGNER)
    return shlex.join([sys.executable, str(script), str(key), mode])


def openssl_key_command(tmp: Path, key: Path) -> str:
    """``--key-command`` text of a shell script signing with ``openssl pkeyutl``."""
    script = tmp / "openssl_signer.sh"
    script.write_text(_OPENSSL_SIGNER)
    script.chmod(0o755)
    return shlex.join([str(script), str(key)])


def hanging_key_command(tmp: Path) -> str:
    """A command that never answers (and has a child holding its pipes)."""
    script = tmp / "hang.sh"
    script.write_text(_HANG_WITH_CHILD)
    script.chmod(0o755)
    return shlex.join([str(script)])
