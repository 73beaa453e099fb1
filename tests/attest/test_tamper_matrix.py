"""Tamper matrix: every manipulation of a model or bundle is rejected, naming the cause."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil

import pytest

from mgattest.attest import _dsse as dsse
from mgattest.attest._bundle import MAX_BUNDLE_BYTES, make_bundle
from mgattest.attest._keys import generate_signer
from mgattest.attest._sign import (DigestOptions, KeySigner, LogTarget, SignOptions,
                                  dsse_proposed_entry, record_in_log, sign_model)
from mgattest.attest._signers import spki_pem
from mgattest.attest._statement import serialize_statement
from mgattest.attest._verify import verify_model
from mgattest.errors import MgattestError, VerificationError
from tests.helpers.trees import RandomBytes, make_tree
from mgattest.attest._options import CheckOptions, TrustOptions

SIGNER = generate_signer("ecdsa-p256")
KEYS = [SIGNER.public_key]


MODEL_FILES = {"a.json": b'{"x": 1}', "sub/w.bin": RandomBytes(3 * 4096 + 17)}


def _make_model(root):
    return make_tree(root, MODEL_FILES)


def _signed(model, options=SignOptions(), log=LogTarget()):
    bundle = sign_model(model, KeySigner(SIGNER, log), options).bundle
    return bundle


def _reject(model, bundle, needle, *, kind=VerificationError, **kw):
    with pytest.raises(kind) as info:
        verify_model(model, [bundle], TrustOptions(keys=KEYS), **kw)
    text = str(info.value) + " " + str(getattr(info.value, "where", ""))
    assert needle.lower() in text.lower(), text
    return info.value


# --------------------------------------------------------------------------- the model

def test_byte_flip_in_file(model):
    bundle = _signed(model)
    data = bytearray((model / "sub" / "w.bin").read_bytes())
    data[5000] ^= 1
    (model / "sub" / "w.bin").write_bytes(bytes(data))
    _reject(model, bundle, "sub/w.bin")


def test_byte_flip_in_shard_names_shard_and_range(model):
    bundle = _signed(model, SignOptions(digests=DigestOptions(shard_size=4096)))
    data = bytearray((model / "sub" / "w.bin").read_bytes())
    data[2 * 4096 + 3] ^= 0x80
    (model / "sub" / "w.bin").write_bytes(bytes(data))
    err = _reject(model, bundle, "sub/w.bin")
    assert "shard 2" in str(err) and "8192" in str(err)


def test_renamed_file(model):
    bundle = _signed(model)
    (model / "a.json").rename(model / "b.json")
    err = _reject(model, bundle, "a.json")
    failures = {f["name"]: f["status"] for f in err.details["failures"]}
    assert failures == {"a.json": "missing", "b.json": "extra"}


@pytest.mark.parametrize("content", [b"new", b""], ids=["added", "added-empty"])
def test_added_file(model, content):
    bundle = _signed(model)
    (model / "sub" / "new.bin").write_bytes(content)
    _reject(model, bundle, "sub/new.bin")


def test_deleted_file(model):
    bundle = _signed(model)
    (model / "a.json").unlink()
    _reject(model, bundle, "a.json")


def test_symlink_escaping_root(model, tmp_path):
    bundle = _signed(model)
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    os.symlink(outside, model / "link.txt")
    with pytest.raises(MgattestError, match="link.txt"):
        verify_model(model, [bundle], trust=TrustOptions(keys=KEYS),
                     check=CheckOptions(allow_symlinks=True))
    with pytest.raises(MgattestError, match="link.txt"):
        verify_model(model, [bundle], trust=TrustOptions(keys=KEYS))


def test_bundle_swapped_between_models(model, tmp_path):
    other = _make_model(tmp_path / "other")
    bundle = _signed(other)
    _reject(model, bundle, "sub/w.bin")


# --------------------------------------------------------------------------- forged statements

def _forge(model, subjects, *, payload_type=dsse.IN_TOTO_PAYLOAD_TYPE, log=True):
    """A statement signed with the real key (and logged), so only later checks stop it."""
    statement = {"_type": "https://in-toto.io/Statement/v1", "subject": subjects,
                 "predicateType": "https://slsa.dev/provenance/v1", "predicate": {}}
    env = dsse.sign_envelope(serialize_statement(statement), SIGNER, payload_type=payload_type)
    entry = record_in_log(dsse_proposed_entry(env, spki_pem(SIGNER.public_key)),
                          LogTarget()) if log else None
    return make_bundle(envelope=env, public_key_hint="", tlog_entries=[entry] if entry else [])


@pytest.mark.parametrize("name", ["../escape.bin", "/etc/passwd", "sub/../../x", "C:/x"])
def test_forged_subject_names(model, name):
    bundle = _forge(model, [{"name": name, "digest": {"sha256": "0" * 64}}])
    _reject(model, bundle, "subject name")


def test_other_payload_type(model):
    bundle = _forge(model, [{"name": "a.json", "digest": {"sha256": "0" * 64}}],
                    payload_type="application/vnd.other+json", log=False)
    _reject(model, bundle, "payloadType", allow_unlogged=True)


# --------------------------------------------------------------------------- bundle fields

def test_wrong_key(model):
    bundle = _signed(model)
    with pytest.raises(VerificationError, match="any trusted key"):
        verify_model(model, [bundle],
                     trust=TrustOptions(keys=[generate_signer("ecdsa-p256").public_key]))


def test_signature_over_different_payload(model, tmp_path):
    bundle = _signed(model)
    other = _signed(_make_model(tmp_path / "other"))
    forged = copy.deepcopy(bundle)
    forged["dsseEnvelope"]["payload"] = other["dsseEnvelope"]["payload"]
    _reject(model, forged, "signature does not verify")


def test_log_entry_of_another_signature(model):
    bundle = _signed(model)
    again = _signed(model)  # same key, same model, new ECDSA signature, new entry
    forged = copy.deepcopy(bundle)
    forged["verificationMaterial"]["tlogEntries"] = again["verificationMaterial"]["tlogEntries"]
    _reject(model, forged, "different signature")


def test_log_entry_of_another_payload(model, tmp_path):
    bundle = _signed(model)
    other = _signed(_make_model(tmp_path / "other"))
    forged = copy.deepcopy(bundle)
    forged["verificationMaterial"]["tlogEntries"] = other["verificationMaterial"]["tlogEntries"]
    _reject(model, forged, "different payload")


def test_truncated_bundle(model, tmp_path):
    bundle = _signed(model)
    path = tmp_path / "b.json"
    text = json.dumps(bundle)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(VerificationError, match="not valid JSON"):
        verify_model(model, [path], trust=TrustOptions(keys=KEYS))


def test_oversized_bundle(model, tmp_path):
    path = tmp_path / "b.json"
    with open(path, "wb") as fh:
        fh.truncate(MAX_BUNDLE_BYTES + 1)
    with pytest.raises(VerificationError, match="larger than"):
        verify_model(model, [path], trust=TrustOptions(keys=KEYS))


def test_set_altered(model):
    bundle = _signed(model)
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    sig = bytearray(base64.b64decode(entry["inclusionPromise"]["signedEntryTimestamp"]))
    sig[-1] ^= 1
    entry["inclusionPromise"]["signedEntryTimestamp"] = base64.b64encode(bytes(sig)).decode()
    _reject(model, bundle, "signed entry timestamp")


def test_integrated_time_altered(model):
    bundle = _signed(model)
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) - 3600)
    _reject(model, bundle, "signed entry timestamp")


def _log_b_bundle(model, tmp_path):
    db = tmp_path / "other-log" / "b.db"
    return _signed(model, log=LogTarget("local", str(db)))


def test_inclusion_proof_from_another_log(model, tmp_path):
    bundle = _signed(model)
    other = _log_b_bundle(model, tmp_path)
    forged = copy.deepcopy(bundle)
    entry = forged["verificationMaterial"]["tlogEntries"][0]
    entry["inclusionProof"] = other["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    with pytest.raises(VerificationError):
        verify_model(model, [forged], trust=TrustOptions(keys=KEYS))


def test_checkpoint_from_another_log(model, tmp_path):
    bundle = _signed(model)
    other = _log_b_bundle(model, tmp_path)
    forged = copy.deepcopy(bundle)
    proof = forged["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["checkpoint"] = other["verificationMaterial"]["tlogEntries"][0]["inclusionProof"][
        "checkpoint"]
    _reject(model, forged, "checkpoint")


def test_entry_from_untrusted_log_rejected(model, tmp_path):
    _signed(model)  # the embedded log exists and is trusted; log B is not
    other = _log_b_bundle(model, tmp_path)
    _reject(model, other, "not trusted")


def test_inclusion_proof_hash_altered(model):
    _signed(model)  # grow the log so the proof has a hash
    bundle = _signed(model)
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    assert proof["hashes"]
    h = bytearray(base64.b64decode(proof["hashes"][0]))
    h[0] ^= 1
    proof["hashes"][0] = base64.b64encode(bytes(h)).decode()
    _reject(model, bundle, "inclusion proof")


def test_inclusion_proof_removed(model):
    bundle = _signed(model)
    del bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    _reject(model, bundle, "inclusion proof")


def test_body_swapped_for_other_entry(model, tmp_path):
    bundle = _signed(model)
    other = _signed(_make_model(tmp_path / "other"))
    forged = copy.deepcopy(bundle)
    forged["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] = \
        other["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"]
    with pytest.raises(VerificationError):
        verify_model(model, [forged], trust=TrustOptions(keys=KEYS))


def test_untouched_model_still_verifies(model, tmp_path):
    """Control: the fixtures above fail because of the tampering, not by accident."""
    bundle = _signed(model, SignOptions(digests=DigestOptions(shard_size=4096)))
    copy_dir = tmp_path / "copy"
    shutil.copytree(model, copy_dir)
    atts, check = verify_model(copy_dir, [bundle], trust=TrustOptions(keys=KEYS))
    assert check.ok and atts[0].log_entries[0].inclusion_proof_verified
