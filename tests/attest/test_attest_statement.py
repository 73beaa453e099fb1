"""in-toto statements, SLSA provenance predicates and the training-time recorder."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement as ITEStatement

from mgattest.attest import _slsa as slsa, _statement as statement
from mgattest.attest._recorder import ProvenanceRecorder
from mgattest.errors import InputError, VerificationError
from mgattest.attest._options import BuildInputs, TrustOptions

SHA = "a" * 64


def _subjects(n=2):
    return [statement.make_subject(f"dir/f{i}.bin", {"sha256": SHA}) for i in range(n)]


def test_statement_is_valid_in_toto_v1():
    stmt = statement.make_statement(_subjects(), slsa.SLSA_PROVENANCE_V1,
                                    slsa.build_provenance(BuildInputs(parameters={"epochs": 3})))
    pb = json_format.Parse(statement.serialize_statement(stmt), statement_pb2.Statement())
    ITEStatement.copy_from_pb(pb).validate()  # the peer package accepts it
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert [s["name"] for s in stmt["subject"]] == ["dir/f0.bin", "dir/f1.bin"]


def test_integers_stay_integers_and_payload_is_rfc8785():
    pred = slsa.build_provenance(BuildInputs(parameters=slsa.parse_params(
        ["epochs=3", "lr=0.001", "name=bert", "layers=[1,2]", "flag=true", "big=12345678901"])))
    stmt = statement.make_statement(_subjects(1), slsa.SLSA_PROVENANCE_V1, pred)
    payload = statement.serialize_statement(stmt)
    params = json.loads(payload)["predicate"]["buildDefinition"]["externalParameters"]
    assert params == {"epochs": 3, "lr": 0.001, "name": "bert", "layers": [1, 2],
                      "flag": True, "big": 12345678901}
    assert b'"epochs":3,' in payload and b"3.0" not in payload
    assert payload == json.dumps(json.loads(payload), sort_keys=True,
                                 separators=(",", ":"), ensure_ascii=False).encode()


def test_same_inputs_same_payload():
    def build():
        pred = slsa.build_provenance(BuildInputs(
            builder_id="b", parameters={"x": 1},
            dependencies=[slsa.parse_dependency(f"data=https://d/x@sha256:{SHA}")],
            frameworks={"numpy": "2.0", "torch": "2.13.0"}))
        return statement.serialize_statement(statement.make_statement(
            list(reversed(_subjects(3))), slsa.SLSA_PROVENANCE_V1, pred))
    assert build() == build()


@pytest.mark.parametrize("name", ["/abs", "../up", "a/../b", "a//b", "./a", "a/.", "",
                                  "C:/win", "a\\b", "nul\x00", "tab\tx", "..", "del\x7f",
                                  "unit\x1fsep", "d:x"])
def test_unsafe_subject_names_refused(name):
    with pytest.raises(VerificationError):
        statement.check_subject_name(name)


@pytest.mark.parametrize("name", ["ünïcødé/модель.bin", "dir with space/na:me.bin", "a/b~c",
                                  "ab:c", "x/C:"])
def test_safe_subject_names_accepted(name):
    assert statement.check_subject_name(name) == name


@given(st.lists(st.text(alphabet="abcXYZ019_-. ", min_size=1, max_size=8), min_size=1,
                max_size=4))
@settings(max_examples=100)
def test_subject_name_check_matches_posix_containment(parts):
    name = "/".join(parts)
    safe = all(p not in ("", ".", "..") for p in parts)
    if safe:
        assert statement.check_subject_name(name) == name
    else:
        with pytest.raises(VerificationError):
            statement.check_subject_name(name)


@pytest.mark.parametrize("mutate, needle", [
    (lambda s: s.update(_type="https://in-toto.io/Statement/v2"), "_type"),
    (lambda s: s.pop("predicateType"), "predicateType"),
    (lambda s: s.update(subject=[]), "no subjects"),
    (lambda s: s.update(predicate=[1]), "predicate"),
    (lambda s: s["subject"].append(dict(s["subject"][0])), "twice"),
    (lambda s: s["subject"][0].update(digest={"sha256": "ABC"}), "hex"),
    (lambda s: s["subject"][0].update(digest={}), "non-empty"),
])
def test_statement_validation(mutate, needle):
    stmt = statement.make_statement(_subjects(), "https://x/p", {})
    mutate(stmt)
    with pytest.raises((InputError, VerificationError), match=needle):
        statement.validate_statement(stmt)


def test_parse_statement_bounds_and_duplicates():
    with pytest.raises(InputError, match="duplicate"):
        statement.parse_statement(b'{"_type":"a","_type":"b"}')
    with pytest.raises(InputError, match="JSON"):
        statement.parse_statement(b"\xff")


def test_dependency_and_param_parsing():
    dep = slsa.parse_dependency(f"base=hf://org/model@sha256:{SHA.upper()}")
    assert dep == {"name": "base", "uri": "hf://org/model", "digest": {"sha256": SHA}}
    assert slsa.parse_dependency("code=git+https://x/y@refs/heads/main") == {
        "name": "code", "uri": "git+https://x/y@refs/heads/main"}
    for bad in ("nouri", "=x", "n="):
        with pytest.raises(InputError):
            slsa.parse_dependency(bad)
    with pytest.raises(InputError, match="twice"):
        slsa.parse_params(["a=1", "a=2"])
    with pytest.raises(InputError):
        slsa.parse_param("noequals")


GITHUB = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "org/repo",
          "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "b" * 40, "GITHUB_RUN_ID": "42",
          "GITHUB_RUN_ATTEMPT": "1",
          "GITHUB_WORKFLOW_REF": "org/repo/.github/workflows/train.yml@refs/heads/main",
          "GITHUB_EVENT_NAME": "push", "GITHUB_REPOSITORY_ID": "101",
          "GITHUB_REPOSITORY_OWNER_ID": "202"}
GITLAB = {"CI_SERVER_URL": "https://gitlab.com", "CI_PROJECT_URL": "https://gitlab.com/g/p",
          "CI_COMMIT_REF_NAME": "main", "CI_COMMIT_SHA": "c" * 40, "CI_JOB_ID": "7"}


def test_from_env_github_and_gitlab():
    gh = slsa.from_ci_env("github", GITHUB)
    assert gh["builder_id"] == ("https://github.com/org/repo/.github/workflows/train.yml"
                                "@refs/heads/main")
    assert gh["source"]["commit"] == "b" * 40
    assert gh["invocation_id"].endswith("/actions/runs/42/attempts/1")
    pred = slsa.build_provenance(BuildInputs(ci=gh))
    assert pred["runDetails"]["builder"]["id"] == gh["builder_id"]
    assert pred["buildDefinition"]["resolvedDependencies"][0]["digest"] == {
        "gitCommit": "b" * 40}
    gl = slsa.from_ci_env("gitlab", GITLAB)
    assert gl["source"]["ref"] == "refs/heads/main"
    assert gl["invocation_id"] == "https://gitlab.com/g/p/-/jobs/7"


def test_from_env_names_missing_variables():
    env = dict(GITHUB)
    del env["GITHUB_SHA"], env["GITHUB_RUN_ID"]
    with pytest.raises(InputError, match="GITHUB_SHA, GITHUB_RUN_ID|GITHUB_RUN_ID, GITHUB_SHA"):
        slsa.from_ci_env("github", env)
    with pytest.raises(InputError, match="github or gitlab"):
        slsa.from_ci_env("jenkins", {})


def test_framework_versions_from_metadata_only():
    import subprocess
    import sys

    from importlib import metadata

    found = slsa.framework_versions(("numpy", "torch", "scikit-learn", "not-a-real-package-xyz"))
    assert set(found) == {"numpy", "torch", "scikit-learn"}
    assert found == {name: metadata.version(name) for name in found}
    code = ("import sys; from mgattest.attest._slsa import framework_versions as f; v = f(); "
            "assert 'torch' in v and 'torch' not in sys.modules and 'numpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_recorder_builds_predicate_and_signs(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    from mgattest.attest._keys import generate_signer
    from mgattest.attest._verify import verify_model

    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n")
    base = tmp_path / "base"
    base.mkdir()
    (base / "w.bin").write_bytes(b"\x00" * 10)
    model = tmp_path / "out"
    times = iter([datetime(2026, 1, 1, tzinfo=timezone.utc),
                  datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=2)])
    signer = generate_signer("ecdsa-p256")
    with ProvenanceRecorder(model, signer=signer, builder_id="https://ci/b",
                            clock=lambda: next(times)) as rec:
        rec.dataset("train", data)
        rec.base_model("base", base)
        rec.dataset("remote", "s3://bucket/x", digest={"sha256": SHA})
        rec.params(epochs=3, lr=0.01)
        rec.code(tmp_path)  # not a git checkout: nothing recorded
        model.mkdir()
        (model / "model.bin").write_bytes(b"weights")
    pred = rec.predicate
    assert pred["runDetails"]["metadata"] == {"startedOn": "2026-01-01T00:00:00Z",
                                              "finishedOn": "2026-01-01T02:00:00Z"}
    deps = {d["name"]: d for d in pred["buildDefinition"]["resolvedDependencies"]}
    import hashlib

    assert deps["train"]["digest"]["sha256"] == hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    assert "sha256-manifest" in deps["base"]["digest"]
    assert pred["buildDefinition"]["externalParameters"] == {"epochs": 3, "lr": 0.01}
    atts, check = verify_model(model, rec.bundle_path,
                               trust=TrustOptions(keys=[signer.public_key]))
    assert atts[0].predicate == pred and check.ok


def test_recorder_does_not_sign_after_failure(tmp_path):
    from mgattest.attest._keys import generate_signer

    rec = ProvenanceRecorder(tmp_path / "m", signer=generate_signer("ed25519"))
    with pytest.raises(RuntimeError):
        with rec:
            raise RuntimeError("training crashed")
    assert rec.bundle is None and not (tmp_path / "m.sigstore.json").exists()


def test_recorder_code_commit(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)
    run("init", "-q")
    (repo / "t.py").write_text("print(1)\n")
    run("add", "t.py")
    run("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()
    rec = ProvenanceRecorder()
    desc = rec.code(repo)
    assert desc["digest"] == {"gitCommit": head}
    with pytest.raises(InputError, match="twice"):
        rec.code(repo)


def test_framework_versions_name_normalisation(tmp_path):
    for name in ("scikit_learn-1.5.0.dist-info", "Torch-2.1.0.dist-info",
                 "jax-0.4.1-py3.11.egg-info", "numpy-1.0.0.data", "readme.txt"):
        (tmp_path / name).mkdir()
    found = slsa.framework_versions(search_path=[str(tmp_path), str(tmp_path / "missing")])
    assert found == {"scikit-learn": "1.5.0", "torch": "2.1.0", "jax": "0.4.1"}


# JCS writes numbers the ECMAScript way, so integral floats come back as integers and
# magnitudes past 2**53 cannot be re-canonicalised: stay inside the exact range.
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 53) + 1, 2 ** 53 - 1)
    | st.floats(min_value=-1e15, max_value=1e15, allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)


@given(st.dictionaries(st.text(max_size=6), _json_values, max_size=5))
@settings(max_examples=80, deadline=None)
def test_payload_canonical_whatever_the_key_order(predicate):
    stmt = statement.make_statement(_subjects(1), "https://x/p", predicate)
    payload = statement.serialize_statement(stmt)
    reordered = dict(reversed(list(stmt.items())))
    reordered["predicate"] = dict(reversed(list(predicate.items())))
    assert statement.serialize_statement(reordered) == payload
    parsed = statement.parse_statement(payload)
    assert parsed["predicate"] == predicate
    assert statement.serialize_statement(parsed) == payload
    for key, value in predicate.items():  # integers come back as integers
        if isinstance(value, int) and not isinstance(value, bool):
            assert type(parsed["predicate"][key]) is int
