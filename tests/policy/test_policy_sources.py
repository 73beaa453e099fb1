"""attest.sources: bundles as the ecosystem ships them (single bundle, JSON lines of
bundles or DSSE envelopes, npm attestation documents)."""

from __future__ import annotations

import base64
import json

import pytest

from mgattest.attest.errors import AttestationSourceError
from mgattest.attest._sources import attestations_from_bytes, load_attestations

BUNDLE = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
          "verificationMaterial": {"publicKey": {"hint": "x"}, "tlogEntries": []},
          "dsseEnvelope": {"payload": "e30=", "payloadType": "application/vnd.in-toto+json",
                           "signatures": [{"sig": "AA=="}]}}
ENVELOPE = {"payloadType": "application/vnd.in-toto+json", "payload": "e30=",
            "signatures": [{"keyid": "abc", "sig": "AA=="}]}


def test_single_bundle(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps(BUNDLE, indent=2))
    assert load_attestations(p) == [(str(p), BUNDLE)]


def test_json_lines_labels_each_line(tmp_path):
    p = tmp_path / "att.intoto.jsonl"
    p.write_text(json.dumps(BUNDLE) + "\n\n" + json.dumps(ENVELOPE) + "\n")
    got = load_attestations(p)
    assert [label for label, _ in got] == [f"{p}:1", f"{p}:3"]
    wrapped = got[1][1]
    assert wrapped["dsseEnvelope"]["payload"] == "e30="
    assert wrapped["verificationMaterial"] == {"publicKey": {"hint": "abc"}, "tlogEntries": []}


def test_envelope_with_certificate_is_wrapped_as_certificate():
    der = b"\x30\x03\x02\x01\x01"
    pem = "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(der).decode() + "\n-----END CERTIFICATE-----\n"
    env = dict(ENVELOPE, signatures=[{"sig": "AA==", "cert": pem}])
    [(_, bundle)] = attestations_from_bytes(json.dumps(env).encode(), "e.json")
    assert bundle["verificationMaterial"]["certificate"]["rawBytes"] == base64.b64encode(der).decode()


def test_npm_attestations_document(tmp_path):
    doc = {"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": BUNDLE},
                            {"predicateType": "https://github.com/npm/attestation/tree/main/specs/publish/v0.1",
                             "bundle": BUNDLE}]}
    p = tmp_path / "npm.json"
    p.write_text(json.dumps(doc))
    got = load_attestations(p)
    assert [label for label, _ in got] == [f"{p}#attestations[0]", f"{p}#attestations[1]"]


@pytest.mark.parametrize("data,needle", [
    (b"", "empty"),
    (b"\xff\xfe", "UTF-8"),
    (json.dumps(BUNDLE).encode() + b"\n{not json\n", ":2: not a JSON value"),
    (json.dumps({"mediaType": "application/x-evil"}).encode(), "neither a Sigstore bundle"),
    (b"[1, 2]", "expected a JSON object"),
    (json.dumps(dict(ENVELOPE, signatures=[{"sig": "AA=="}, {"sig": "AQ=="}])).encode(),
     "exactly one signature"),
    (json.dumps({"attestations": []}).encode(), "empty"),
    (json.dumps({"attestations": [{"bundle": 3}]}).encode(), "#attestations[0]"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
], ids=[
    "empty", "not-UTF-8", "bad-second-line", "foreign-media-type", "JSON-array", "two-signatures",
    "no-attestations", "bundle-not-an-object", "deep-nesting"])
def test_bad_inputs_are_input_errors(data, needle):
    with pytest.raises(AttestationSourceError) as exc:
        attestations_from_bytes(data, "f.json")
    assert needle in exc.value.message and exc.value.exit_code == 2


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AttestationSourceError, match="cannot read"):
        load_attestations(tmp_path / "nope.json")
    with pytest.raises(AttestationSourceError, match="directory"):
        load_attestations(tmp_path)


def test_real_bundles_in_jsonl_verify_with_line_labels(tmp_path, monkeypatch):
    """Two real signatures (two keys) in one JSON-lines file satisfy a 2-of-2 policy."""
    from mgattest.attest._keys import generate_signer, public_key_pem
    from mgattest.attest._sign import sign_model
    from mgattest.loading import model_check, read_model_bytes
    from mgattest.policy._evaluate import evaluate
    from mgattest.policy._gather import verify_attestations
    from mgattest.policy._loader import load_policy

    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    s1, s2 = generate_signer(), generate_signer()
    (tmp_path / "a.pub").write_bytes(public_key_pem(s1))
    (tmp_path / "b.pub").write_bytes(public_key_pem(s2))
    jsonl = tmp_path / "m.intoto.jsonl"
    jsonl.write_text("".join(json.dumps(sign_model(model, s).bundle) + "\n" for s in (s1, s2)))
    (tmp_path / "p.yaml").write_text(
        "apiVersion: mgattest/v1\nkind: Policy\ntrust:\n  keys: [{name: a, path: a.pub}, "
        "{name: b, path: b.pub}]\nsigners: {a: {key: a}, b: {key: b}}\nrules:\n"
        "  - id: two\n    signedBy: {allOf: [a, b]}\n    content: {scan: 'off'}\n")
    pol = load_policy(tmp_path / "p.yaml")
    atts = verify_attestations([jsonl], pol)
    assert [a.source for a in atts] == [f"{jsonl}:1", f"{jsonl}:2"]
    mb = read_model_bytes(model)
    assert evaluate(pol, atts, model_check(mb, atts)).allowed
    assert not evaluate(pol, atts[:1], model_check(mb, atts[:1])).allowed


def test_bare_dsse_envelope_verifies_with_key_when_log_optional(tmp_path, monkeypatch):
    from mgattest.attest._keys import generate_signer, public_key_pem
    from mgattest.attest._sign import KeySigner, LogTarget, sign_model
    from mgattest.loading import model_check, read_model_bytes
    from mgattest.policy._evaluate import evaluate
    from mgattest.policy._gather import verify_attestations
    from mgattest.policy._loader import load_policy

    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    signer = generate_signer()
    (tmp_path / "k.pub").write_bytes(public_key_pem(signer))
    env = sign_model(model, KeySigner(signer, LogTarget("none"))).bundle["dsseEnvelope"]
    env["signatures"][0]["keyid"] = ""
    jsonl = tmp_path / "m.intoto.jsonl"
    jsonl.write_text(json.dumps(env) + "\n")
    text = ("apiVersion: mgattest/v1\nkind: Policy\ntrust:\n  keys: [{name: k, path: k.pub}]\n"
            "signers: {k: {key: k}}\nrules:\n  - id: r\n    signedBy: {anyOf: [k]}\n"
            "    transparencyLog: {require: %s}\n    content: {scan: 'off'}\n")
    (tmp_path / "p.yaml").write_text(text % "optional")
    pol = load_policy(tmp_path / "p.yaml")
    atts = verify_attestations([jsonl], pol)
    assert atts[0].source == f"{jsonl}:1" and not atts[0].log_entries
    assert evaluate(pol, atts, model_check(read_model_bytes(model), atts)).allowed
    (tmp_path / "p.yaml").write_text(text % "required")
    with pytest.raises(Exception) as exc:  # unlogged and the policy requires a log
        verify_attestations([jsonl], load_policy(tmp_path / "p.yaml"))
    assert getattr(exc.value, "exit_code", None) == 1
