"""Standing adversarial suite: tamper every field of every bundle version.

Each base bundle verifies as it is. Then every node of its JSON is deleted,
duplicated, reordered, re-typed and re-encoded (tests/helpers/mutations.py), its
media type is relabelled to every version, and log entries, checkpoints and SETs are
swapped between bundles and between logs. Every outcome must be a rejection with a
typed, named cause, or an acceptance that proves nothing the original did not —
never a traceback, never an acceptance of something changed.

Bases: real key-signed bundles of the embedded log (v0.3, relabelled v0.2 and v0.1),
and the sigstore-conformance bundles (keyless v0.1-v0.3 on Rekor v1, Rekor v2 with
RFC 3161 timestamps, DSSE, a managed key).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from mgattest.attest._keys import generate_signer
from mgattest.attest._sign import sign_model
from mgattest.attest._trustroot import load_trusted_root
from mgattest.attest._verify import verify_bundle
from tests.helpers.fuzz_budget import RUN_MODE
from tests.helpers.paths import CONFORMANCE_DIR
from tests.helpers.bundles import V01, V02, V03, entry_of, make_model
from tests.helpers.mutations import assert_no_new_facts, facts, mutations
from mgattest.attest._options import TrustOptions

MEDIA_TYPES = [V01, V02, V03, "application/vnd.dev.sigstore.bundle+json;version=0.3",
               "application/vnd.dev.sigstore.bundle+json;version=0.4",
               "application/vnd.dev.sigstore.bundle.v0.3+json ", ""]
CONFORMANCE_BASES = ["happy-path-v0.1", "happy-path-v0.2", "happy-path-v0.3",
                     "rekor2-happy-path", "rekor2-dsse-happy-path", "managed-key-happy-path"]


def _conformance_case(name: str) -> dict[str, Any]:
    cases = json.loads((CONFORMANCE_DIR / "cases.json").read_text())
    return next(c for c in cases if c["id"].split("/", 1)[1] == name)


def _conformance_base(name: str) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    """(bundle dict, verify(bundle) callable) for a conformance case that passes."""
    case = _conformance_case(name)
    base = CONFORMANCE_DIR
    bundle = json.loads((base / case["bundle"]).read_text())
    root = load_trusted_root(base / case["trusted_root"])
    kw: dict[str, Any] = {"use_local_log": False}
    if case.get("artifact_digest"):
        kw["artifact_digest"] = case["artifact_digest"]
    if case["verification_mode"] == "key":
        trust = TrustOptions(trusted_root=root, keys=[str(base / case["key"])])
    else:
        trust = TrustOptions(trusted_root=root, identity={
            "identity": case["expected_identity"], "issuer": case["expected_issuer"]})
    return bundle, lambda b: verify_bundle(b, trust, **kw)


def _key_base(tmp_path: Path, media_type: str) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    signer = generate_signer("ecdsa-p256")
    bundle = sign_model(make_model(tmp_path / "model"), signer).bundle
    bundle["mediaType"] = media_type
    return bundle, lambda b: verify_bundle(b, trust=TrustOptions(keys=[signer.public_key]))


def _base(name: str, tmp_path: Path) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    if name.startswith("key-"):
        return _key_base(tmp_path, {"key-v0.3": V03, "key-v0.2": V02, "key-v0.1": V01}[name])
    return _conformance_base(name)


# The default run tries a few re-typings and re-encodings per node; CI and
# MGATTEST_FUZZ=long try them all.
THOROUGH = RUN_MODE != "local"
BASES = ["key-v0.3", "key-v0.2", "key-v0.1"] + CONFORMANCE_BASES


def _run_all(bundle: dict[str, Any], verify: Callable[[Any], Any],
             cases: list[tuple[str, Any]]) -> dict[str, int]:
    original = facts(verify(copy.deepcopy(bundle)), bundle)
    tally = {"rejected": 0, "unchanged": 0}
    defects = []
    for label, tampered in cases:
        data = tampered.encode() if isinstance(tampered, str) else tampered
        try:
            tally[assert_no_new_facts(original, lambda: verify(data), label)] += 1
        except Exception as exc:  # an acceptance of a change, or a traceback
            defects.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
    assert not defects, f"{len(defects)} defect(s):\n" + "\n".join(defects[:40])
    return tally


@pytest.mark.parametrize("name", BASES)
def test_every_field_tampered(name, tmp_path):
    bundle, verify = _base(name, tmp_path)
    tally = _run_all(bundle, verify, list(mutations(bundle, thorough=THOROUGH)))
    assert tally["rejected"] > 0


@pytest.mark.parametrize("name", BASES)
def test_relabelled_versions(name, tmp_path):
    bundle, verify = _base(name, tmp_path)
    cases = [(f"mediaType {m!r}", dict(bundle, mediaType=m)) for m in MEDIA_TYPES
             if m != bundle.get("mediaType")]
    _run_all(bundle, verify, cases)


def _second_key_bundle(tmp_path: Path, signer: Any) -> dict[str, Any]:
    model = make_model(tmp_path / "other-model")
    return sign_model(model, signer).bundle


def test_entries_swapped_between_bundles_and_logs(tmp_path, monkeypatch):
    signer = generate_signer("ecdsa-p256")
    bundle = sign_model(make_model(tmp_path / "model"), signer).bundle
    other = _second_key_bundle(tmp_path, signer)  # same key, same log, another payload
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "other-home"))
    foreign = sign_model(make_model(tmp_path / "m3"), signer).bundle  # another log
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))

    def with_entry(entry: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(bundle)
        out["verificationMaterial"]["tlogEntries"] = [entry]
        return out

    def patched(**fields: Any) -> dict[str, Any]:
        out = copy.deepcopy(bundle)
        entry_of(out).update(copy.deepcopy(fields))
        return out

    mine, theirs, far = entry_of(bundle), entry_of(other), entry_of(foreign)
    cases = [
        ("entry of another bundle, same log", with_entry(theirs)),
        ("entry of another log", with_entry(far)),
        ("both entries", dict(bundle, verificationMaterial=dict(
            bundle["verificationMaterial"], tlogEntries=[mine, theirs]))),
        ("envelope of another bundle", dict(bundle, dsseEnvelope=other["dsseEnvelope"])),
        ("SET of another entry", patched(inclusionPromise=theirs["inclusionPromise"])),
        ("proof of another entry", patched(inclusionProof=theirs["inclusionProof"])),
        ("checkpoint of another log", patched(inclusionProof=dict(
            mine["inclusionProof"], checkpoint=far["inclusionProof"]["checkpoint"]))),
        ("logId of another log", patched(logId=far["logId"])),
        ("body of another entry", patched(canonicalizedBody=theirs["canonicalizedBody"])),
        ("time and SET of another entry", patched(
            integratedTime=theirs["integratedTime"],
            inclusionPromise=theirs["inclusionPromise"])),
    ]
    trust = TrustOptions(keys=[signer.public_key])
    tally = _run_all(bundle, lambda b: verify_bundle(b, trust), cases)
    assert tally["rejected"] >= len(cases) - 1  # "both entries": one is unbound, rejected


def test_conformance_entries_swapped_between_instances():
    """A Rekor v2 entry in a Rekor v1 bundle and the reverse: bound to other signatures."""
    v1, verify_v1 = _conformance_base("happy-path-v0.3")
    v2, verify_v2 = _conformance_base("rekor2-happy-path")
    swapped_into_v1 = copy.deepcopy(v1)
    swapped_into_v1["verificationMaterial"]["tlogEntries"] = v2["verificationMaterial"][
        "tlogEntries"]
    swapped_into_v2 = copy.deepcopy(v2)
    swapped_into_v2["verificationMaterial"]["tlogEntries"] = v1["verificationMaterial"][
        "tlogEntries"]
    assert _run_all(v1, verify_v1, [("v2 entry", swapped_into_v1)])["rejected"] == 1
    assert _run_all(v2, verify_v2, [("v1 entry", swapped_into_v2)])["rejected"] == 1


def _inner_documents(bundle: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """(label, path) of the base64 JSON documents inside a bundle: the DSSE payload
    (the statement) and each log entry's canonicalized body."""
    out = []
    if "dsseEnvelope" in bundle:
        out.append(("payload", ("dsseEnvelope", "payload")))
    for i, _ in enumerate(bundle["verificationMaterial"].get("tlogEntries", [])):
        out.append((f"body[{i}]", ("verificationMaterial", "tlogEntries", i,
                                   "canonicalizedBody")))
    return out


@pytest.mark.parametrize("name", ["key-v0.3", "happy-path-v0.3", "rekor2-dsse-happy-path"])
def test_inner_documents_tampered(name, tmp_path):
    """Fields inside the signed statement and the logged body, re-encoded as base64."""
    import base64

    bundle, verify = _base(name, tmp_path)
    cases = []
    for label, path in _inner_documents(bundle):
        holder = bundle
        for part in path[:-1]:
            holder = holder[part]
        inner = json.loads(base64.b64decode(holder[path[-1]]))
        for what, mutated in mutations(inner):
            text = mutated if isinstance(mutated, str) else json.dumps(mutated)
            tampered = copy.deepcopy(bundle)
            target = tampered
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = base64.b64encode(text.encode()).decode()
            cases.append((f"{label}: {what}", tampered))
    assert _run_all(bundle, verify, cases)["unchanged"] == 0
