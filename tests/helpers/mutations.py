"""Structural mutations of a JSON document, and the "no new facts" oracle.

:func:`mutations` yields ``(label, document_or_raw_text)`` for every node of a JSON
document: delete it, duplicate it (list item, or a duplicate object key in raw JSON),
reorder (list items, object keys), re-type (string, number, null, list, object,
boolean), re-encode (base64 alphabets and padding, whitespace, number spellings, case).

:func:`facts` reduces a verified attestation to what it proves, and
:func:`assert_no_new_facts` holds a tampered bundle to the adversarial rule: it is
rejected with a typed error that names its cause, or it proves nothing that the
original did not (same signer and payload; its log positions and signing times a
subset of the original's).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from typing import Any, Callable, Iterator

from mgattest.errors import MgattestError

Path = tuple[Any, ...]
_B64 = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


def _walk(doc: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _walk(value, path + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _walk(value, path + (i,))


def _get(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: Any, path: Path, value: Any) -> Any:
    out = copy.deepcopy(doc)
    _get(out, path[:-1])[path[-1]] = value
    return out


def _delete(doc: Any, path: Path) -> Any:
    out = copy.deepcopy(doc)
    parent = _get(out, path[:-1])
    del parent[path[-1]]
    return out


def _retypes(value: Any, thorough: bool) -> list[Any]:
    options: list[Any] = []
    if isinstance(value, str) and value.isdigit():
        options += [int(value), int(value) + 1, str(int(value) + 1)]
    if isinstance(value, int) and not isinstance(value, bool):
        options += [str(value), float(value), value + 1]
    options += [None, [], {"value": value}, 0, ""]
    if thorough:
        options += [True, -1, 2 ** 63, 1.5, "0", {}, [value]]
    return [o for o in options if type(o) is not type(value) or o != value]


def _reencodings(value: Any, thorough: bool) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, str):
        out += [value + "\n", " " + value, value.upper(), value.lower()]
        if value.isdigit():
            out += ["0" + value, value + ".0", value + "e0", "+" + value]
        if _B64.fullmatch(value):
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raw = None
            if raw is not None:
                out = [base64.urlsafe_b64encode(raw).decode(), value.rstrip("="),
                       raw.hex(), value[:len(value) // 2] + "\n" + value[len(value) // 2:],
                       base64.b64encode(base64.b64encode(raw)).decode()] + out
    out = [o for o in out if o != value]
    return out if thorough else out[:3]


def mutations(doc: dict[str, Any], *, thorough: bool = False) -> Iterator[tuple[str, Any]]:
    """Structural mutations of *doc* (dicts, or raw JSON text for duplicate keys): every
    node deleted, re-typed, re-encoded, duplicated and reordered. ``thorough`` adds
    more re-typings and re-encodings per node (the long CI profile)."""
    for path, value in _walk(doc):
        where = "/".join(map(str, path)) or "(root)"
        if path:
            yield f"delete {where}", _delete(doc, path)
            for n, new in enumerate(_retypes(value, thorough)):
                yield f"retype#{n} {where}", _set(doc, path, new)
            for n, new in enumerate(_reencodings(value, thorough)):
                yield f"reencode#{n} {where}", _set(doc, path, new)
            if isinstance(path[-1], int):
                parent = _get(doc, path[:-1])
                yield f"duplicate {where}", _set(doc, path[:-1],
                                                 parent[:path[-1] + 1] + parent[path[-1]:])
        if isinstance(value, list) and len(value) > 1:
            yield f"reorder {where}", (_set(doc, path, list(reversed(value))) if path
                                       else list(reversed(value)))
        if isinstance(value, dict) and len(value) > 1:
            flipped = dict(reversed(list(value.items())))
            yield f"reorder-keys {where}", _set(doc, path, flipped) if path else flipped
            for key in value:
                yield f"duplicate-key {where}/{key}", _duplicate_key(doc, path, key)


def _duplicate_key(doc: dict[str, Any], path: Path, key: str) -> str:
    """Raw JSON where object *path* has *key* twice: first a decoy, then the original
    (a parser that keeps the first value would read the decoy)."""
    marker = "\u0000DUPLICATE\u0000"
    target = copy.deepcopy(doc)
    obj = _get(target, path)
    obj[marker] = None
    text = json.dumps(target)
    decoy = json.dumps(key) + ": " + json.dumps(_decoy(obj[key]))
    return text.replace(json.dumps(marker) + ": null", decoy, 1)


def _decoy(value: Any) -> Any:
    if isinstance(value, str):
        return value[::-1] or "x"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value + 1
    return None


# --------------------------------------------------------------------------- oracle

def facts(att: Any, bundle: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a verified attestation proves, as comparable values. With the original
    *bundle*, its inclusion proofs' indices count as proven too (a Rekor v1 shard's
    proof index differs from the SET's global logIndex; both are proven)."""
    indices = {p.log_index for p in att.log_entries}
    for entry in (bundle or {}).get("verificationMaterial", {}).get("tlogEntries", []):
        proof_index = (entry.get("inclusionProof") or {}).get("logIndex")
        if proof_index is not None:
            indices.add(int(proof_index))
    return {
        "signer": att.signer.distinct_id,
        "key": att.signer.key_fingerprint,
        "payload": att.payload_sha256,
        "predicate_type": att.predicate_type,
        "subjects": json.dumps(att.subjects, sort_keys=True),
        "message_digest": json.dumps(att.message_digest, sort_keys=True),
        "logs": {(p.log_id, p.leaf_hash) for p in att.log_entries},
        "indices": indices,
        "times": {(t.seconds, t.source) for t in att.signing_times},
    }


def assert_no_new_facts(original: dict[str, Any], verify: Callable[[], Any],
                        label: str) -> str:
    """Run *verify* on a tampered bundle: a typed rejection naming its cause, or an
    acceptance proving a subset of *original*. Returns "rejected" or "unchanged"."""
    try:
        att = verify()
    except MgattestError as exc:
        assert exc.message and (exc.what or exc.where), f"{label}: unnamed cause: {exc!r}"
        return "rejected"
    got = facts(att)
    for name in ("signer", "key", "payload", "predicate_type", "subjects", "message_digest"):
        assert got[name] == original[name], f"{label}: accepted with another {name}"
    assert got["logs"] <= original["logs"], f"{label}: accepted with unproven log facts " \
                                            f"{got['logs'] - original['logs']}"
    assert got["indices"] <= original["indices"], f"{label}: accepted with unproven " \
                                                  f"indices {got['indices'] - original['indices']}"
    assert got["times"] <= original["times"], f"{label}: accepted with unproven times " \
                                              f"{got['times'] - original['times']}"
    return "unchanged"
