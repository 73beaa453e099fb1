"""Read attestations the way the ecosystem ships them.

``load_attestations(path)`` accepts:

* one Sigstore bundle (v0.1–v0.3 JSON);
* a JSON-lines file (``*.intoto.jsonl``, ``*.sigstore.jsonl``, ``gh attestation
  download`` output) whose lines are bundles or bare DSSE envelopes;
* npm's attestations document ``{"attestations": [{"predicateType", "bundle"}]}``;
* a bare DSSE envelope (one JSON object).

Bare DSSE envelopes carry no verification material; they are wrapped in a v0.3 bundle
with ``publicKey.hint`` = the signature's ``keyid`` (or the PEM ``cert`` some generators
put in the signature) and no log entries, so only key-mode verification with unlogged
signatures allowed can accept them. Nothing here verifies anything; it only finds the
bundles and labels each with where it came from (``file``, ``file:line``,
``file#attestations[i]``).
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from mgattest._jsonutil import JSONObject
from mgattest._files import read_bounded
from mgattest.attest.errors import AttestationSourceError

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_ATTESTATIONS = 1024
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def load_attestations(path: str | os.PathLike[str]) -> list[tuple[str, JSONObject]]:
    """Every bundle in the file at *path*, as ``(source_label, bundle_dict)`` pairs."""
    data = read_bounded(path, MAX_FILE_BYTES, what="attestation file",
                        error=AttestationSourceError)
    return attestations_from_bytes(data, str(path))


def attestations_from_bytes(data: bytes, label: str) -> list[tuple[str, JSONObject]]:
    """As :func:`load_attestations`, for bytes already read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AttestationSourceError(f"{label} is not UTF-8 (byte {exc.start})",
                                     what="attestation source", where=label) from None
    stripped = text.strip()
    if not stripped:
        raise AttestationSourceError(f"{label} is empty", what="attestation source",
                                     where=label)
    whole: Any = _NOT_JSON
    if not label.endswith(".jsonl"):  # a .jsonl file is read line by line, even one line
        try:
            whole = json.loads(stripped)
        except RecursionError:
            raise AttestationSourceError(f"{label}: JSON nested too deeply",
                                         what="attestation source", where=label) from None
        except ValueError:
            whole = _NOT_JSON
    if whole is not _NOT_JSON:
        return _from_document(whole, label)
    out: list[tuple[str, dict[str, Any]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{label}:{lineno}"
        try:
            obj = json.loads(line)
        except RecursionError:
            raise AttestationSourceError(f"{where}: JSON nested too deeply",
                                         what="attestation source", where=where) from None
        except json.JSONDecodeError as exc:  # what json.loads raises for a str
            raise AttestationSourceError(f"{where}: not a JSON value ({exc.msg})",
                                         what="attestation source", where=where) from None
        out.append((where, _bundle_or_envelope(obj, where)))
        if len(out) > MAX_ATTESTATIONS:
            raise AttestationSourceError(f"{label} holds more than {MAX_ATTESTATIONS} "
                                         "attestations", what="attestation source", where=label)
    return out


_NOT_JSON = object()


def _from_document(doc: Any, label: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(doc, dict) and isinstance(doc.get("attestations"), list) \
            and "mediaType" not in doc:
        items = doc["attestations"]
        if not items:
            raise AttestationSourceError(f"{label}: the attestations list is empty",
                                         what="attestation source", where=label)
        if len(items) > MAX_ATTESTATIONS:
            raise AttestationSourceError(f"{label} holds more than {MAX_ATTESTATIONS} "
                                         "attestations", what="attestation source", where=label)
        out = []
        for i, item in enumerate(items):
            where = f"{label}#attestations[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("bundle"), dict):
                raise AttestationSourceError(f"{where}: expected an object with a 'bundle'",
                                             what="attestation source", where=where)
            out.append((where, _bundle_or_envelope(item["bundle"], where)))
        return out
    return [(label, _bundle_or_envelope(doc, label))]


def _bundle_or_envelope(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise AttestationSourceError(f"{where}: expected a JSON object, got "
                                     f"{type(obj).__name__}", what="attestation source",
                                     where=where)
    media = obj.get("mediaType")
    if isinstance(media, str) and media.startswith(BUNDLE_MEDIA_PREFIX):
        return obj
    if {"payloadType", "payload", "signatures"} <= obj.keys():
        return wrap_envelope(obj, where)
    if isinstance(obj.get("dsseEnvelope"), dict) and "mediaType" not in obj:
        raise AttestationSourceError(f"{where}: bundle has no mediaType",
                                     what="attestation source", where=where)
    raise AttestationSourceError(f"{where}: neither a Sigstore bundle nor a DSSE envelope "
                                 f"(mediaType {media!r})", what="attestation source",
                                 where=where)


def wrap_envelope(env: JSONObject, where: str) -> JSONObject:
    """Wrap a bare DSSE envelope into a v0.3 bundle dict (no log entries)."""
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise AttestationSourceError(f"{where}: a DSSE envelope must carry exactly one "
                                     "signature to be verified as a bundle",
                                     what="attestation source", where=where)
    sig = sigs[0]
    envelope = {"payload": env["payload"], "payloadType": env["payloadType"],
                "signatures": [{"sig": sig.get("sig")}]}
    cert = sig.get("cert") or sig.get("certificate")
    if isinstance(cert, str) and (m := _PEM_CERT.search(cert)):
        der = base64.b64decode("".join(m.group(1).split()))
        material: dict[str, Any] = {"certificate": {"rawBytes": base64.b64encode(der).decode()}}
    else:
        keyid = sig.get("keyid")
        material = {"publicKey": {"hint": keyid}} if isinstance(keyid, str) and keyid \
            else {"publicKey": {}}
    material["tlogEntries"] = []
    return {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": material, "dsseEnvelope": envelope}


