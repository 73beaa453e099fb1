"""The first hour of a new user: every command behaves (issue #11).

Each test pins one behaviour a newcomer meets early: ``--version``/``-h``, signing that
never logs what it cannot write, digests checked at sign time, GitHub provenance in the
published buildType shape, error messages that name the mistake, ``quarantine restore
--to``, ``inspect`` of a git checkout, and ``mgattest.load()`` from the default install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.paths import PROJECT_ROOT
# One CLI runner and the same model/key fixtures as the sign/verify CLI tests.
from tests.helpers.cli_runner import mg
from mgattest.attest._options import BuildInputs

# A pickle whose REDUCE would call os.system (only written, never loaded).
EVIL_PICKLE = (b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system"
               b"\x94\x93\x94\x8c\x05touch\x94\x85\x94R\x94.")


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.delenv("MGATTEST_KEY_PASSWORD", raising=False)
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "RUNNER_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def embedded_log_size() -> int:
    """Entries in the embedded log of this test's MGATTEST_HOME (0 when never created)."""
    from mgattest.attest._locallog import default_db_path, open_local_log

    if not default_db_path().exists():
        return 0
    log = open_local_log(create=False)
    try:
        return log.size
    finally:
        log.close()


# --------------------------------------------------------------------------- --version, -h

@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_answers_without_a_command(flag):
    from mgattest import __version__

    result = mg(flag)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"mgattest {__version__}"


@pytest.mark.parametrize("argv", [["-h"], ["sign", "-h"], ["log", "-h"], ["log", "init", "-h"],
                                  ["quarantine", "restore", "-h"]])
def test_short_help_everywhere(argv):
    result = mg(*argv)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and "--help" in result.stdout


def test_help_imports_nothing_heavy():
    """`mgattest --help` stays fast: no numpy/torch/cryptography/FastAPI at start-up."""
    code = ("import sys\nfrom mgattest.cli.app import app\n"
            "heavy = [m for m in ('numpy', 'torch', 'safetensors', 'fastapi', 'sigstore',"
            " 'cryptography') if m in sys.modules]\nprint(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=PROJECT_ROOT, env={**os.environ,
                                                            "PYTHONPATH": str(PROJECT_ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


# --------------------------------------------------------------------------- sign output

@pytest.mark.parametrize("where", ["missing-dir/model.sigstore.json", "is-a-dir"])
def test_sign_checks_the_output_before_logging(tmp_path, model, keypair, where):
    (tmp_path / "is-a-dir").mkdir()
    key, _ = keypair
    result = mg("sign", model, "--key", key, "--out", tmp_path / where)
    assert result.exit_code == 2, result.output
    assert "bundle" in result.output and "Traceback" not in result.output
    assert embedded_log_size() == 0  # nothing was logged for a bundle that cannot exist


def test_sign_refuses_to_overwrite_a_bundle_without_force(model, keypair):
    key, pub = keypair
    assert mg("sign", model, "--key", key).exit_code == 0
    bundle = model.parent / "model.sigstore.json"
    first = bundle.read_bytes()
    again = mg("sign", model, "--key", key)
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    assert bundle.read_bytes() == first and embedded_log_size() == 1
    forced = mg("sign", model, "--key", key, "--force")
    assert forced.exit_code == 0, forced.output
    assert bundle.read_bytes() != first and embedded_log_size() == 2
    assert mg("verify", model, "--key", pub).exit_code == 0


def test_sign_leaves_no_temporary_files(tmp_path, model, keypair):
    key, _ = keypair
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert mg("sign", model, "--key", key, "--out", out_dir / "b.json").exit_code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["b.json"]
    json.loads((out_dir / "b.json").read_text())


def test_pending_bundle_never_clobbers_a_file_that_appears_meanwhile(tmp_path):
    from mgattest.attest._sign import PendingBundleFile
    from mgattest.attest.errors import BundleOutputError

    target = tmp_path / "b.json"
    with PendingBundleFile(target) as pending:
        pending.reserve()
        target.write_text("someone else's")
        with pytest.raises(BundleOutputError, match="appeared"):
            pending.commit({"mediaType": "x"})
    assert target.read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"]


def test_recorder_reserves_its_bundle_before_logging(tmp_path, model):
    from mgattest.attest._keys import generate_signer
    from mgattest.attest._recorder import ProvenanceRecorder
    from mgattest.attest.errors import BundleOutputError

    recorder = ProvenanceRecorder(model=model, signer=generate_signer(),
                                  bundle_out=tmp_path / "no-such-dir" / "b.json")
    with pytest.raises(BundleOutputError):
        recorder.sign()
    assert embedded_log_size() == 0


# --------------------------------------------------------------------------- --dependency

@pytest.mark.parametrize("dep", [
    "data=s3://bucket/train@sha256:abc",                       # too short
    "data=s3://bucket/train@sha256:" + "z" * 64,               # not hex
    "data=s3://bucket/train@sha256:" + "a" * 63,
    "data=s3://bucket/train@sha265:" + "a" * 64,               # mistyped algorithm
    "data=s3://bucket/train@gitCommit:" + "a" * 39,
])
def test_malformed_dependency_digests_are_refused_before_logging(model, keypair, dep):
    key, _ = keypair
    result = mg("sign", model, "--key", key, "--dependency", dep)
    assert result.exit_code == 2, result.output
    assert "dependency" in result.output and "Traceback" not in result.output
    assert embedded_log_size() == 0


def test_wellformed_dependency_digest_is_signed(model, keypair):
    key, pub = keypair
    digest = "AB" * 32
    assert mg("sign", model, "--key", key, "--dependency",
              f"data=s3://bucket/train@sha256:{digest}").exit_code == 0
    doc = json.loads(mg("verify", model, "--key", pub, "--json").stdout)
    deps = doc["attestations"][0]["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps == [{"name": "data", "uri": "s3://bucket/train",
                     "digest": {"sha256": digest.lower()}}]


def test_dependency_uri_with_host_colon_is_not_a_digest():
    from mgattest.attest._slsa import parse_dependency

    assert parse_dependency("repo=ssh://git@example.com:org/repo") == {
        "name": "repo", "uri": "ssh://git@example.com:org/repo"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_dependency_parser_signs_only_wellformed_digests(text):
    """Whatever the text, parse_dependency refuses it (InputError) or returns a
    descriptor whose digest, if any, the statement validator accepts."""
    from mgattest.attest._slsa import parse_dependency
    from mgattest.attest._statement import DIGEST_LENGTHS, make_statement
    from mgattest.errors import InputError

    try:
        descriptor = parse_dependency(text)
    except InputError:
        return
    for alg, value in descriptor.get("digest", {}).items():
        assert alg in DIGEST_LENGTHS and len(value) == DIGEST_LENGTHS[alg]
        make_statement([{"name": "x", "digest": {alg: value}}], "https://example.com/p", {})


# --------------------------------------------------------------------------- GitHub buildType

GITHUB_ENV = {
    "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "octo/models",
    "GITHUB_REF": "refs/tags/v1.2.0", "GITHUB_SHA": "c27d339ee6075c1f744c5d4b200f7901aad2c369",
    "GITHUB_RUN_ID": "1536140711", "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_WORKFLOW_REF": "octo/models/.github/workflows/train@v2.yml@refs/tags/v1.2.0",
    "GITHUB_EVENT_NAME": "push", "GITHUB_REPOSITORY_ID": "1296269",
    "GITHUB_REPOSITORY_OWNER_ID": "583231", "RUNNER_ENVIRONMENT": "github-hosted",
}


def _github_predicate(**kw):
    from mgattest.attest import _slsa as slsa

    return slsa.build_provenance(BuildInputs(ci=slsa.from_ci_env("github", GITHUB_ENV), **kw))


def test_github_provenance_follows_the_published_buildtype():
    """github.com/actions/buildtypes workflow/v1, as actions/attest-build-provenance
    writes it: externalParameters.workflow {ref, repository, path}; internalParameters.
    github; the source commit pinned in resolvedDependencies; builder and invocation."""
    pred = _github_predicate(parameters={"epochs": 3})
    bd, rd = pred["buildDefinition"], pred["runDetails"]
    assert bd["buildType"] == "https://actions.github.io/buildtypes/workflow/v1"
    assert bd["externalParameters"] == {
        "workflow": {"ref": "refs/tags/v1.2.0", "repository": "https://github.com/octo/models",
                     "path": ".github/workflows/train@v2.yml"},
        "inputs": {"epochs": 3}}
    assert bd["internalParameters"]["github"] == {
        "event_name": "push", "repository_id": "1296269", "repository_owner_id": "583231",
        "runner_environment": "github-hosted"}
    assert bd["resolvedDependencies"][0] == {
        "uri": "git+https://github.com/octo/models@refs/tags/v1.2.0",
        "digest": {"gitCommit": "c27d339ee6075c1f744c5d4b200f7901aad2c369"}}
    assert rd["builder"]["id"] == ("https://github.com/octo/models/.github/workflows/"
                                   "train@v2.yml@refs/tags/v1.2.0")
    assert rd["metadata"]["invocationId"] == ("https://github.com/octo/models/actions/runs/"
                                              "1536140711/attempts/1")
    assert _github_predicate()["buildDefinition"]["externalParameters"].keys() == {"workflow"}


def test_github_provenance_parses_with_the_in_toto_provenance_schema():
    """The in-toto attestation library's SLSA v1 protobuf (strict: unknown fields and
    malformed timestamps are errors) reads the predicate; the policy engine finds the
    repository and ref where GitHub's consumers look for them."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

    from mgattest.policy._provenance import source_of

    pred = _github_predicate(started_on="2026-01-31T12:00:00Z",
                             finished_on="2026-01-31T12:30:00Z")
    message = json_format.ParseDict(pred, provenance_pb2.Provenance())
    assert message.build_definition.external_parameters["workflow"]["path"] == \
        ".github/workflows/train@v2.yml"
    assert message.run_details.metadata.finished_on.seconds > \
        message.run_details.metadata.started_on.seconds
    assert source_of(pred) == ("https://github.com/octo/models", "refs/tags/v1.2.0")


def test_from_env_github_requires_the_internal_parameters():
    from mgattest.attest import _slsa as slsa
    from mgattest.errors import InputError

    env = {k: v for k, v in GITHUB_ENV.items() if k != "GITHUB_REPOSITORY_OWNER_ID"}
    with pytest.raises(InputError, match="GITHUB_REPOSITORY_OWNER_ID"):
        slsa.from_ci_env("github", env)
    bad = dict(GITHUB_ENV, GITHUB_WORKFLOW_REF="other/repo/.github/workflows/x.yml@refs/x")
    with pytest.raises(InputError, match="GITHUB_WORKFLOW_REF"):
        slsa.from_ci_env("github", bad)


def test_github_buildtype_without_github_facts_is_refused(model, keypair):
    key, _ = keypair
    result = mg("sign", model, "--key", key, "--build-type",
                "https://actions.github.io/buildtypes/workflow/v1")
    assert result.exit_code == 2 and "--from-env github" in result.output
    assert embedded_log_size() == 0


def test_sign_from_env_github_with_build_times(model, keypair, monkeypatch):
    key, pub = keypair
    for name, value in GITHUB_ENV.items():
        monkeypatch.setenv(name, value)
    result = mg("sign", model, "--key", key, "--from-env", "github", "--param", "lr=0.001",
                "--started-on", "2026-01-31T13:00:00+01:00",
                "--finished-on", "2026-01-31T12:30:00.250Z")
    assert result.exit_code == 0, result.output
    doc = json.loads(mg("verify", model, "--key", pub, "--json").stdout)
    pred = doc["attestations"][0]["predicate"]
    assert pred["runDetails"]["metadata"]["startedOn"] == "2026-01-31T12:00:00Z"
    assert pred["runDetails"]["metadata"]["finishedOn"] == "2026-01-31T12:30:00.25Z"
    assert pred["buildDefinition"]["externalParameters"]["inputs"] == {"lr": 0.001}
    assert pred["buildDefinition"]["externalParameters"]["workflow"]["path"] == \
        ".github/workflows/train@v2.yml"


@pytest.mark.parametrize("args, message", [
    (["--started-on", "yesterday"], "RFC 3339"),
    (["--finished-on", "2026-01-31T12:00:00"], "RFC 3339"),       # no zone
    (["--started-on", "2026-02-30T00:00:00Z"], "not a valid time"),
    (["--started-on", "2026-01-31T12:00:01Z", "--finished-on", "2026-01-31T12:00:00Z"],
     "after"),
])
def test_bad_build_times_are_refused(model, keypair, args, message):
    key, _ = keypair
    result = mg("sign", model, "--key", key, *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert embedded_log_size() == 0


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40),
                 st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())))
def test_build_time_parser_returns_utc_or_refuses(text):
    """Any text: an InputError, or a UTC time that names the same instant."""
    from datetime import datetime

    from mgattest.attest._slsa import parse_timestamp
    from mgattest.errors import InputError

    try:
        parsed = parse_timestamp(text, what="--started-on")
    except InputError:
        return
    assert parsed.endswith("Z")
    same = datetime.fromisoformat(text.upper().replace("Z", "+00:00").replace(" ", "T"))
    assert datetime.fromisoformat(parsed.replace("Z", "+00:00")) == same


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["sha256:", "sha384:", "SHA512:"]), st.text(max_size=140))
def test_digest_targets_are_wellformed_or_refused(prefix, rest):
    from mgattest.attest._verify import names_a_digest, parse_artifact_digest
    from mgattest.errors import InputError

    try:
        assert names_a_digest(prefix + rest)
    except InputError:
        return
    alg, digest = parse_artifact_digest(prefix + rest)
    assert alg == prefix[:-1].lower() and len(digest) * 2 == len(rest)


# --------------------------------------------------------------------------- error messages

@pytest.mark.parametrize("target, found", [("sha256:zzz", "not hex digits"),
                                           ("sha256:abcd", "has 4 hex digits"),
                                           ("SHA512:" + "0" * 10, "a sha512 digest has 128")])
def test_malformed_digest_target_is_called_malformed(tmp_path, model, keypair, target, found):
    key, pub = keypair
    assert mg("sign", model, "--key", key).exit_code == 0
    result = mg("verify", target, "--bundle", model.parent / "model.sigstore.json",
                "--key", pub)
    assert result.exit_code == 2
    assert "does not exist" not in result.output and found in result.output, result.output


def test_a_file_named_like_a_digest_is_still_a_file(tmp_path, keypair):
    key, pub = keypair
    odd = tmp_path / "sha256:notes"
    odd.write_text("a file with a colon in its name")
    assert mg("sign", odd, "--key", key).exit_code == 0
    assert mg("verify", odd.name, "--key", pub).exit_code == 0


def test_private_key_as_log_key_is_named_as_such(tmp_path, model, keypair):
    key, pub = keypair
    assert mg("sign", model, "--key", key).exit_code == 0
    result = mg("log", "verify", "--bundle", model.parent / "model.sigstore.json",
                "--log-key", key, "--origin", "x")
    assert result.exit_code == 2
    assert "private key" in result.output and "certificate" not in result.output
    wrong_way = mg("verify", model, "--key", key)
    assert wrong_way.exit_code == 2 and "is a private key" in wrong_way.output
    public_as_private = mg("sign", model, "--key", pub, "--force")
    assert public_as_private.exit_code == 2 and "not a private key" in public_as_private.output


def test_missing_torch_names_the_extra(tmp_path, monkeypatch):
    from mgattest._optional import MissingDependencyError
    from mgattest.inspect._restricted import restricted_torch_load
    from mgattest.loading._loaders import deserialize

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'mgattest\[torch\]'"):
        deserialize("model.pt", b"PK\x03\x04", "pytorch")
    with pytest.raises(MissingDependencyError, match=r"mgattest\[torch\]"):
        deserialize("w.safetensors", b"\x02\x00\x00\x00\x00\x00\x00\x00{}", "safetensors",
                    framework="torch")
    with pytest.raises(MissingDependencyError, match=r"mgattest\[torch\]"):
        restricted_torch_load(b"PK\x03\x04")


# --------------------------------------------------------------------------- quarantine --to

def _incident(tmp_path):
    from mgattest.loading._quarantine import quarantine

    victim = tmp_path / "served" / "evil.pkl"
    victim.parent.mkdir()
    victim.write_bytes(EVIL_PICKLE)
    return quarantine(victim, tmp_path / "q", reason=["dangerous"]), victim


def test_restore_to_a_new_directory_creates_it(tmp_path):
    incident, victim = _incident(tmp_path)
    result = mg("quarantine", "restore", incident.id, "--dir", tmp_path / "q",
                "--to", tmp_path / "review")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "review" / "evil.pkl").read_bytes() == EVIL_PICKLE
    assert f"restored {tmp_path / 'review' / 'evil.pkl'}" in result.stdout
    assert not victim.exists()


def test_restore_to_a_file_is_refused_clearly(tmp_path):
    incident, _ = _incident(tmp_path)
    (tmp_path / "notes.txt").write_text("not a directory")
    result = mg("quarantine", "restore", incident.id, "--dir", tmp_path / "q",
                "--to", tmp_path / "notes.txt")
    assert result.exit_code == 2 and "is not a directory" in result.output, result.output
    assert (tmp_path / "notes.txt").read_text() == "not a directory"
    assert mg("quarantine", "restore", incident.id, "--dir", tmp_path / "q").exit_code == 0


# --------------------------------------------------------------------------- inspect a repo

@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "repo"
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "objects" / "ab").write_bytes(EVIL_PICKLE)  # what git might hold
    (root / "vendor").mkdir()
    (root / "vendor" / "old.pkl").write_bytes(EVIL_PICKLE)
    (root / "config.json").write_text("{}")
    return root


def test_inspect_skips_vcs_metadata_and_takes_ignore_globs(checkout):
    assert mg("inspect", checkout, "--ignore", "vendor/**").exit_code == 0
    default = mg("inspect", checkout, "--json")
    names = [f["path"] for f in json.loads(default.stdout)["files"]]
    assert not any("/.git/" in n for n in names) and any(n.endswith("old.pkl") for n in names)
    assert default.exit_code == 1
    assert mg("inspect", checkout / ".git" / "objects" / "ab").exit_code == 1  # asked for
    bad = mg("inspect", checkout, "--ignore", "vendor/[")
    assert bad.exit_code == 2 and "unclosed" in bad.output


# --------------------------------------------------------------------------- default install

def test_default_install_carries_what_load_needs_for_safetensors():
    """The README's `mgattest.load("model.safetensors", ...)` runs after a plain
    `pip install mgattest`: numpy (and safetensors, to write such files) are base
    dependencies; torch stays an extra."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    base = {d.split(">")[0].split("=")[0].split(";")[0].strip().lower()
            for d in project["dependencies"]}
    assert {"numpy", "safetensors"} <= base
    assert "torch" not in base and "torch" in project["optional-dependencies"]
