"""Sigstore bundle read/write, trusted roots and client trust configs."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgattest.attest import _bundle as bmod
from mgattest.attest import _trustroot as trustroot
from mgattest.attest.errors import BundleFormatError
from mgattest.errors import InputError


@pytest.fixture(scope="module")
def signed_bundle(tmp_path_factory):
    """A real bundle: a model signed into a fresh local log."""
    import os

    from mgattest.attest._keys import generate_signer
    from mgattest.attest._sign import sign_model

    home = tmp_path_factory.mktemp("home")
    model = tmp_path_factory.mktemp("model")
    (model / "w.bin").write_bytes(b"w" * 100)
    old = os.environ.get("MGATTEST_HOME")
    os.environ["MGATTEST_HOME"] = str(home)
    try:
        result = sign_model(model, generate_signer("ecdsa-p256"))
    finally:
        if old is None:
            os.environ.pop("MGATTEST_HOME")
        else:
            os.environ["MGATTEST_HOME"] = old
    return result.bundle


def test_written_bundle_is_strict_sigstore_models(signed_bundle):
    from sigstore_models.bundle.v1 import Bundle

    parsed = Bundle.from_json(json.dumps(signed_bundle))
    assert parsed.media_type == "application/vnd.dev.sigstore.bundle.v0.3+json"
    entry = signed_bundle["verificationMaterial"]["tlogEntries"][0]
    assert isinstance(entry["logIndex"], str) and isinstance(entry["integratedTime"], str)
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert isinstance(entry["inclusionProof"]["treeSize"], str)


def test_tlog_body_validates_with_rekor_types(signed_bundle):
    from rekor_types import Dsse

    entry = signed_bundle["verificationMaterial"]["tlogEntries"][0]
    body = Dsse.model_validate_json(base64.b64decode(entry["canonicalizedBody"]))
    payload = base64.b64decode(signed_bundle["dsseEnvelope"]["payload"])
    import hashlib

    assert body.spec.root.payload_hash.value == hashlib.sha256(payload).hexdigest()


def test_parse_round_trip(signed_bundle):
    parsed = bmod.parse_bundle(signed_bundle)
    assert parsed.version == "0.3" and parsed.envelope is not None
    again = bmod.make_bundle(envelope=parsed.envelope, public_key_hint=parsed.public_key_hint,
                             tlog_entries=list(parsed.tlog_entries))
    assert again == signed_bundle


@pytest.mark.parametrize("media_type", list(bmod.MEDIA_TYPES))
def test_all_known_media_types_read(signed_bundle, media_type):
    data = copy.deepcopy(signed_bundle)
    data["mediaType"] = media_type
    assert bmod.parse_bundle(data).media_type == media_type


@pytest.mark.parametrize("mutate, needle", [
    (lambda b: b.update(mediaType="application/vnd.dev.sigstore.bundle+json;version=9"),
     "media type"),
    (lambda b: b.pop("verificationMaterial"), "verificationMaterial"),
    (lambda b: b["verificationMaterial"].update(certificate={"rawBytes": "AAAA"}),
     "exactly one"),
    (lambda b: b.update(messageSignature={"signature": "AAAA"}), "exactly one"),
    (lambda b: b.pop("dsseEnvelope"), "exactly one"),
    (lambda b: b["verificationMaterial"]["tlogEntries"][0].update(logIndex="-1"), "negative"),
    (lambda b: b["verificationMaterial"]["tlogEntries"][0].update(logIndex="x"), "integer"),
    (lambda b: b["verificationMaterial"]["tlogEntries"][0].pop("canonicalizedBody"),
     "canonicalizedBody"),
    (lambda b: b["verificationMaterial"].update(
        tlogEntries=b["verificationMaterial"]["tlogEntries"] * 9), "more than"),
    (lambda b: b["dsseEnvelope"]["signatures"].append({"sig": "AAAA"}), "exactly one"),
    (lambda b: b["verificationMaterial"]["publicKey"].update(hint=5), "hint"),
])
def test_malformed_bundles_are_rejections(signed_bundle, mutate, needle):
    data = copy.deepcopy(signed_bundle)
    mutate(data)
    with pytest.raises(BundleFormatError, match=needle) as info:
        bmod.parse_bundle(data)
    assert info.value.exit_code == 1  # untrusted evidence: a rejection, not a usage error


def test_size_cap_applies_before_parsing(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as fh:
        fh.truncate(bmod.MAX_BUNDLE_BYTES + 1)
    with pytest.raises(BundleFormatError, match="larger than"):
        bmod.load_bundle(path)
    with pytest.raises(BundleFormatError, match="not valid JSON"):
        bmod.load_bundle(b'{"mediaType": ')
    # an unreadable path is the operator's mistake: exit 2
    with pytest.raises(InputError, match="directory"):
        bmod.load_bundle(tmp_path)
    with pytest.raises(InputError, match="cannot read"):
        bmod.load_bundle(tmp_path / "missing.json")


@given(st.binary(max_size=300))
@settings(max_examples=80)
def test_arbitrary_bytes_never_crash_the_parser(data):
    try:
        bmod.load_bundle(data)
    except BundleFormatError:
        pass


def test_message_signature_bundle_written_and_read():
    ms = bmod.MessageSignature("sha256", b"\x01" * 32, b"sig")
    data = bmod.make_bundle(message_signature=ms, public_key_hint="h")
    assert data["messageSignature"]["messageDigest"]["algorithm"] == "SHA2_256"
    assert bmod.parse_bundle(data).message_signature == ms


def test_conformance_bundles_parse_or_fail_cleanly(conformance_dir):
    cases = json.loads((conformance_dir / "cases.json").read_text())
    parsed = 0
    for case in cases:
        try:
            bmod.load_bundle(conformance_dir / case["bundle"])
            parsed += 1
        except BundleFormatError:
            assert case["expected"] == "fail", case["id"]
    assert parsed >= 60


# --------------------------------------------------------------------------- trust roots

def test_embedded_roots_round_trip_and_sigstore_accepts_ours(tmp_path, conformance_dir):
    from sigstore_models.trustroot.v1 import TrustedRoot as PeerRoot

    for instance in ("production", "staging"):
        root = trustroot.embedded_trusted_root(instance)
        assert root.tlogs and root.ctlogs and root.certificate_authorities
        out = tmp_path / f"{instance}.json"
        trustroot.write_trusted_root(root, out)
        assert trustroot.load_trusted_root(out) == root
        PeerRoot.from_json(out.read_text())
    shipped = (conformance_dir / "trusted_roots/sigstore-python-4.5.1/production/"
               "trusted_root.json")
    assert trustroot.load_trusted_root(shipped) == trustroot.embedded_trusted_root()


def test_trusted_root_errors(tmp_path):
    root = trustroot.embedded_trusted_root().to_dict()
    bad = copy.deepcopy(root)
    bad["mediaType"] = "x"
    with pytest.raises(InputError, match="media type"):
        trustroot.parse_trusted_root(bad)
    bad = copy.deepcopy(root)
    bad["tlogs"][0]["publicKey"]["rawBytes"] = "%%%"
    with pytest.raises(InputError, match="base64"):
        trustroot.parse_trusted_root(bad)
    bad = copy.deepcopy(root)
    bad["tlogs"][0]["publicKey"]["validFor"]["start"] = "yesterday"
    with pytest.raises(InputError, match="timestamp"):
        trustroot.parse_trusted_root(bad)
    bad = copy.deepcopy(root)
    bad["ctlogs"] = [bad["ctlogs"][0]] * 65
    with pytest.raises(InputError, match="at most"):
        trustroot.parse_trusted_root(bad)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (trustroot.MAX_TRUST_FILE_BYTES + 1))
    with pytest.raises(InputError, match="4 MiB"):
        trustroot.load_trusted_root(big)


def test_client_trust_config_round_trip(tmp_path):
    config = trustroot.ClientTrustConfig(trustroot.embedded_trusted_root("staging"),
                                         trustroot.embedded_signing_config("staging"))
    path = tmp_path / "ctc.json"
    path.write_text(json.dumps(config.to_dict()))
    again = trustroot.load_client_trust_config(path)
    assert again == config
    assert trustroot.load_trusted_root(path) == config.trusted_root
    from sigstore_models.trustroot.v1 import ClientTrustConfig as PeerConfig

    PeerConfig.from_json(path.read_text())


def test_validity_times():
    assert trustroot.parse_time("2021-01-12T11:53:27Z", where="x") == 1610452407
    assert trustroot.parse_time("2021-01-12T11:53:27.000Z", where="x") == 1610452407
    assert trustroot.format_time(1610452407) == "2021-01-12T11:53:27Z"


def test_wrapped_base64_is_accepted_like_go_protojson(signed_bundle):
    data = copy.deepcopy(signed_bundle)
    sig = data["dsseEnvelope"]["signatures"][0]["sig"]
    data["dsseEnvelope"]["signatures"][0]["sig"] = sig[:20] + "\r\n" + sig[20:] + "\n"
    assert bmod.parse_bundle(data).signature == base64.b64decode(sig)
