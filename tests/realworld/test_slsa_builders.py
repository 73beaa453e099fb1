"""slsa-verifier's flags and builder rules on SLSA Provenance v0.2 and v1 (#10 items 1-3).

The artifacts are generated here: provenance shaped exactly as slsa-github-generator
emits it (generic and Go builders: v0.2; BYOB delegators: v1; npm CLI: v1), signed
keylessly by sigstore-python through a private Fulcio-compatible CA with GitHub-shaped
OIDC claims, so each certificate carries the Fulcio extensions a GitHub workflow's does.
The verdicts are slsa-verifier's for the same inputs (verifiers/internal/gha).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers.peers import cli

pytestmark = [pytest.mark.network, pytest.mark.interop]
GH = "https://github.com/"
GENERATOR = GH + "slsa-framework/slsa-github-generator/.github/workflows/"
GENERIC = GENERATOR + "generator_generic_slsa3.yml"
GO = GENERATOR + "builder_go_slsa3.yml"
DELEGATOR = GENERATOR + "delegator_generic_slsa3.yml"
MAVEN = GENERATOR + "builder_maven_slsa3.yml"
NPM_RUNNER = GH + "actions/runner/github-hosted"
SHA = "2bcaa7495e1cbd11fbd4f598d857b3a6f18df933"



@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.helpers.servers import private_keyless_stack

    with private_keyless_stack(tmp_path_factory.mktemp("slsa"),
                               issuer_type="github-workflow") as made:
        yield made


def _github_token(stack, workflow: str, repo: str, ref: str) -> str:
    """An Actions-shaped token: the certificate's SAN is ``GH + workflow``."""
    owner = repo.split("/")[0]
    return stack["issuer"].mint(f"repo:{repo}:ref:{ref}", claims={
        "repository": repo, "repository_owner": owner, "repository_id": "1",
        "repository_owner_id": "2", "job_workflow_ref": workflow[len(GH):],
        "job_workflow_sha": SHA, "workflow_ref": f"{repo}/.github/workflows/release.yml@{ref}",
        "workflow_sha": SHA, "workflow": "release", "event_name": "push", "sha": SHA,
        "ref": ref, "run_id": "5947345653", "run_attempt": "1",
        "runner_environment": "github-hosted"})


def _sign(stack, statement: dict, token: str, out: Path) -> Path:
    from mgattest.attest._keyless import sign_keyless

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    out.write_text(json.dumps(sign_keyless(payload, identity_token=token,
                                           trust_config=stack["ctc"], interactive=False)))
    return out


def _statement(artifact: Path, predicate_type: str, predicate: dict) -> dict:
    return {"_type": "https://in-toto.io/Statement/v1", "predicateType": predicate_type,
            "subject": [{"name": artifact.name,
                         "digest": {"sha256": hashlib.sha256(artifact.read_bytes()).hexdigest()}}],
            "predicate": predicate}


def generic_v02(builder: str, repo: str, tag: str, *, material: str | None = None) -> dict:
    """v0.2 as generator_generic_slsa3.yml writes it on a tag push."""
    source = f"git+https://github.com/{repo}@refs/tags/{tag}"
    return {
        "builder": {"id": builder},
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
        "invocation": {
            "configSource": {"uri": source, "digest": {"sha1": SHA},
                             "entryPoint": ".github/workflows/release.yml"},
            "parameters": {},
            "environment": {"github_actor": "octo", "github_base_ref": "",
                            "github_event_name": "push", "github_event_payload": {},
                            "github_head_ref": "", "github_ref": f"refs/tags/{tag}",
                            "github_ref_type": "tag", "github_repository_id": "1",
                            "github_repository_owner": repo.split("/")[0],
                            "github_run_attempt": "1", "github_run_id": "5947345653",
                            "github_run_number": "7", "github_sha1": SHA}},
        "metadata": {"buildInvocationID": "5947345653-1",
                     "completeness": {"parameters": True, "environment": False,
                                      "materials": False}, "reproducible": False},
        "materials": [{"uri": material or source, "digest": {"sha1": SHA}}],
    }


def byob_v1(builder: str, repo: str, tag: str) -> dict:
    """v1 as the BYOB delegator writes it for a TRW such as the Maven builder."""
    return {
        "buildDefinition": {
            "buildType": "https://github.com/slsa-framework/slsa-github-generator/delegator-generic@v0",
            "externalParameters": {"inputs": {}, "vars": {}},
            "internalParameters": {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": f"refs/tags/{tag}",
                                   "GITHUB_REF_TYPE": "tag", "GITHUB_BASE_REF": "",
                                   "GITHUB_REPOSITORY": repo, "GITHUB_SHA": SHA,
                                   "GITHUB_WORKFLOW_REF":
                                       f"{repo}/.github/workflows/release.yml@refs/tags/{tag}"},
            "resolvedDependencies": [{"uri": f"git+https://github.com/{repo}@refs/tags/{tag}",
                                      "digest": {"gitCommit": SHA}}]},
        "runDetails": {"builder": {"id": builder},
                       "metadata": {"invocationId": "https://github.com/x/y/actions/runs/1/attempts/1"}},
    }


def npm_v1(repo: str, tag: str) -> dict:
    """v1 as npm CLI writes it on `npm publish --provenance` from GitHub Actions."""
    return {
        "buildDefinition": {
            "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": f"refs/tags/{tag}",
                                                "repository": f"https://github.com/{repo}",
                                                "path": ".github/workflows/release.yml"}},
            "internalParameters": {"github": {"event_name": "push", "repository_id": "1",
                                              "repository_owner_id": "2"}},
            "resolvedDependencies": [{"uri": f"git+https://github.com/{repo}@refs/tags/{tag}",
                                      "digest": {"gitCommit": SHA}}]},
        "runDetails": {"builder": {"id": NPM_RUNNER},
                       "metadata": {"invocationId": "https://github.com/x/y/actions/runs/1/attempts/1"}},
    }


V02 = "https://slsa.dev/provenance/v0.2"
V1 = "https://slsa.dev/provenance/v1"


@pytest.fixture(scope="module")
def releases(stack):
    """One signed release per class (valid ones and forgeries)."""
    base = stack["base"]
    artifact = base / "tool-linux-amd64"
    artifact.write_bytes(b"\x7fELF binary" * 100)
    out = {"artifact": artifact}

    def make(name, workflow, cert_repo, ptype, predicate, ref="refs/tags/v1.2.3"):
        token = _github_token(stack, workflow, cert_repo, ref)
        out[name] = _sign(stack, _statement(artifact, ptype, predicate), token,
                          base / f"{name}.sigstore.json")

    tag = "refs/tags/v1.9.0"
    make("generic", f"{GENERIC}@{tag}", "acme/tool", V02,
         generic_v02(f"{GENERIC}@{tag}", "acme/tool", "v1.2.3"))
    make("go", f"{GO}@{tag}", "acme/tool", V02, generic_v02(f"{GO}@{tag}", "acme/tool", "v1.2.3"))
    # The generator's certificate, but the provenance claims the Go builder.
    make("claims-other-builder", f"{GENERIC}@{tag}", "acme/tool", V02,
         generic_v02(f"{GO}@{tag}", "acme/tool", "v1.2.3"))
    # An attacker's own workflow writing a generator-shaped provenance.
    make("self-made", GH + "mallory/tool/.github/workflows/fake.yml@refs/heads/main",
         "mallory/tool", V02, generic_v02(f"{GENERIC}@{tag}", "acme/tool", "v1.2.3"))
    make("material-elsewhere", f"{GENERIC}@{tag}", "acme/tool", V02,
         generic_v02(f"{GENERIC}@{tag}", "acme/tool", "v1.2.3",
                     material=f"git+https://github.com/mallory/tool@refs/tags/v1.2.3"))
    make("unpinned-generator", f"{GENERIC}@refs/heads/main", "acme/tool", V02,
         generic_v02(f"{GENERIC}@refs/heads/main", "acme/tool", "v1.2.3"))
    make("byob", f"{DELEGATOR}@{tag}", "acme/lib", V1, byob_v1(f"{MAVEN}@{tag}", "acme/lib", "v1.2.3"))
    make("byob-unpinned", f"{DELEGATOR}@{tag}", "acme/lib", V1,
         byob_v1(f"{MAVEN}@refs/heads/main", "acme/lib", "v1.2.3"))
    make("npm", GH + "acme/pkg/.github/workflows/release.yml@refs/tags/v1.2.3", "acme/pkg", V1,
         npm_v1("acme/pkg", "v1.2.3"))
    return out


def _verify(stack, releases, name, *flags) -> tuple[int, str]:
    return cli("verify", releases["artifact"], "--bundle", releases[name], "--trusted-root",
                stack["ctc"], "--issuer", stack["issuer"].issuer_url, *flags)


# (bundle, flags, expected exit code) — slsa-verifier's verdicts for the same inputs.
CASES = [
    ("generic", ["--builder-id", GENERIC, "--source-uri", "github.com/acme/tool"], 0),
    ("generic", ["--builder-id", GENERIC + "@refs/tags/v1.9.0", "--source-uri", "github.com/acme/tool"], 0),
    ("generic", ["--source-uri", "github.com/acme/tool", "--builder-id", GENERIC, "--source-tag", "v1.2.3"], 0),
    ("generic", ["--source-uri", "github.com/acme/tool", "--builder-id", GENERIC, "--source-versioned-tag", "v1"], 0),
    ("generic", ["--source-uri", "github.com/acme/tool", "--builder-id", GENERIC, "--source-versioned-tag", "v1.3"], 1),
    ("generic", ["--source-uri", "github.com/acme/tool", "--builder-id", GENERIC, "--source-tag", "v1.2.4"], 1),
    ("generic", ["--source-uri", "github.com/acme/tool", "--builder-id", GENERIC, "--source-branch", "main"], 1),
    ("generic", ["--builder-id", GENERIC, "--source-uri", "github.com/acme/other"], 1),
    ("generic", ["--builder-id", GENERIC + "@refs/tags/v1.8.0", "--source-uri", "github.com/acme/tool"], 1),
    ("generic", ["--builder-id", GO, "--source-uri", "github.com/acme/tool"], 1),
    ("go", ["--builder-id", GO, "--source-uri", "github.com/acme/tool", "--source-tag", "v1.2.3"], 0),
    ("claims-other-builder", ["--builder-id", GO, "--source-uri", "github.com/acme/tool"], 1),
    ("claims-other-builder", ["--builder-id", GENERIC, "--source-uri", "github.com/acme/tool"], 1),
    ("self-made", ["--builder-id", GENERIC, "--source-uri", "github.com/acme/tool"], 1),
    ("material-elsewhere", ["--builder-id", GENERIC, "--source-uri", "github.com/acme/tool"], 1),
    ("unpinned-generator", ["--builder-id", GENERIC, "--source-uri", "github.com/acme/tool"], 1),
    ("byob", ["--builder-id", MAVEN, "--source-uri", "github.com/acme/lib", "--source-tag", "v1.2.3"], 0),
    ("byob", ["--builder-id", MAVEN + "@refs/tags/v1.9.0", "--source-uri", "github.com/acme/lib"], 0),
    ("byob", ["--builder-id", GENERIC, "--source-uri", "github.com/acme/lib"], 1),
    ("byob", ["--builder-id", MAVEN, "--source-uri", "github.com/acme/other"], 1),
    ("byob-unpinned", ["--builder-id", MAVEN, "--source-uri", "github.com/acme/lib"], 1),
    ("npm", ["--builder-id", NPM_RUNNER, "--source-uri", "github.com/acme/pkg", "--source-tag", "v1.2.3"], 0),
    ("npm", ["--builder-id", NPM_RUNNER, "--source-uri", "github.com/mallory/pkg"], 1),
]


@pytest.mark.parametrize("name, flags, expected", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_slsa_verifier_verdicts(stack, releases, name, flags, expected):
    code, output = _verify(stack, releases, name, *flags)
    assert code == expected, output
    if expected == 1:
        assert "DENIED" in output, output  # a verdict, not a crash or a usage error


def test_npm_builder_needs_source_uri(stack, releases):
    code, output = _verify(stack, releases, "npm", "--builder-id", NPM_RUNNER)
    assert code == 2 and "--source-uri" in output, output


def test_v02_fields_in_a_policy(stack, releases, tmp_path):
    def policy(prov: dict) -> Path:
        path = tmp_path / "p.json"
        path.write_text(json.dumps({
            "apiVersion": "mgattest/v1", "kind": "Policy", "metadata": {"name": "v02"},
            "trust": {"roots": [{"name": "private", "path": str(stack["ctc"])}]},
            "signers": {"generator": {"keyless": {
                "issuer": stack["issuer"].issuer_url,
                "subject": {"regex": GENERIC.replace(".", r"\.") + "@refs/tags/v.*"}}}},
            "rules": [{"id": "release", "match": ["**"], "content": {"unknown": "allow"},
                       "attestations": [{"predicateType": V02, "signedBy": {"anyOf": ["generator"]},
                                         "provenance": prov}]}]}))
        return path

    good = {"builderId": {"regex": GENERIC.replace(".", r"\.") + "@.*"},
            "configSource": {"uri": {"regex": r"git\+https://github\.com/acme/tool@refs/tags/v.*"},
                             "entryPoint": ".github/workflows/release.yml",
                             "digest": {"sha1": SHA}},
            "materials": ["git+https://github.com/acme/tool@refs/tags/v1.2.3"],
            "sourceRepository": "https://github.com/acme/tool", "sourceTag": "v1.2.3"}
    args = ["verify", releases["artifact"], "--bundle", releases["generic"]]
    code, output = cli(*args, "--policy", policy(good))
    assert code == 0, output
    for key, value in (("configSource", {"entryPoint": ".github/workflows/other.yml"}),
                       ("configSource", {"digest": {"sha1": "0" * 40}}),
                       ("materials", ["git+https://github.com/acme/other@refs/tags/v1.2.3"])):
        code, output = cli(*args, "--policy", policy({**good, key: value}))
        assert code == 1, (key, value, output)


PUBLISH = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"


def test_npm_attestation_document_in_one_call(stack, tmp_path):
    """The registry's publish attestation (key) and the keyless SLSA provenance, as npm
    serves them in one document, verified with --key for the one and the provenance
    flags for the other; each half stays necessary."""
    import io
    import tarfile

    tarball = tmp_path / "acme-pkg-1.2.3.tgz"
    with tarfile.open(tarball, "w:gz") as tf:  # npm pack's layout: package/...
        data = b'{"name": "acme-pkg", "version": "1.2.3"}\n'
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    digest = {"sha512": hashlib.sha512(tarball.read_bytes()).hexdigest()}
    subject = [{"name": "pkg:npm/acme-pkg@1.2.3", "digest": digest}]
    provenance = {"_type": "https://in-toto.io/Statement/v1", "predicateType": V1,
                  "subject": subject, "predicate": npm_v1("acme/pkg", "v1.2.3")}
    token = _github_token(stack, GH + "acme/pkg/.github/workflows/release.yml@refs/tags/v1.2.3",
                          "acme/pkg", "refs/tags/v1.2.3")
    prov_bundle = json.loads(_sign(stack, provenance, token, tmp_path / "prov.json").read_text())
    assert cli("keygen", "--out", tmp_path / "registry")[0] == 0
    predicate = tmp_path / "publish.json"
    predicate.write_text(json.dumps({"name": "acme-pkg", "version": "1.2.3",
                                     "registry": "https://registry.npmjs.org"}))
    publish_out = tmp_path / "publish.sigstore.json"
    code, output = cli("attest", tarball, "--predicate-type", PUBLISH, "--predicate", predicate,
                        "--key", tmp_path / "registry.key", "--log", stack["log_url"],
                        "--hash", "sha512", "--out", publish_out)
    assert code == 0, output
    document = tmp_path / "attestations.json"
    document.write_text(json.dumps({"attestations": [
        {"predicateType": PUBLISH, "bundle": json.loads(publish_out.read_text())},
        {"predicateType": V1, "bundle": prov_bundle}]}))
    base = ["verify", tarball, "--bundle", document, "--trusted-root", stack["ctc"],
            "--issuer", stack["issuer"].issuer_url]
    flags = ["--builder-id", NPM_RUNNER, "--source-uri", "github.com/acme/pkg",
             "--source-tag", "v1.2.3"]
    code, output = cli(*base, "--key", tmp_path / "registry.pub", *flags)
    assert code == 0, output
    # The wrong registry key, or a provenance from another repository: denied.
    assert cli("keygen", "--out", tmp_path / "other")[0] == 0
    code, output = cli(*base, "--key", tmp_path / "other.pub", *flags)
    assert code == 1, output
    code, output = cli(*base, "--key", tmp_path / "registry.pub", "--builder-id", NPM_RUNNER,
                        "--source-uri", "github.com/mallory/pkg")
    assert code == 1, output
