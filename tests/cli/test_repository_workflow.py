"""Issue 13's end-to-end workflow: a repository in the layouts home-grown scripts leave
(HMAC ``.sig`` per file and a signature manifest, metadata JSON with SHA-256/SHA-512, an
allowed-models list, ``sha256sum``/``sha512sum`` files) is migrated with ``mgattest
migrate``; then one file is tampered, and ``mgattest audit`` catches exactly that file,
for the right reason, in its table, JSON, SARIF (validated against the SARIF 2.1.0
schema) and JUnit (read by junitparser) reports."""

from __future__ import annotations

import json
import shutil

import pytest
from junitparser import Failure, JUnitXml

from tests.helpers.cli_runner import mg
from tests.helpers.legacy_trees import HMAC_KEY, build_legacy_repo
from tests.helpers.sarif import sarif_validator

pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None,
                                reason="the legacy tree's checksum files come from coreutils")

TAMPERED = "releases/v1/embed.npy"  # vouched for by a metadata JSON (SHA-256 + SHA-512)


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OLD_HMAC_KEY", HMAC_KEY.decode())
    monkeypatch.delenv("MGATTEST_KEY_PASSWORD", raising=False)


def _audit(root, pub, *args):
    return mg("audit", root, "--key", pub, *args)


def test_migrate_then_audit_catches_exactly_the_tampered_file(tmp_path, keypair):
    key, pub = keypair
    repo = build_legacy_repo(tmp_path / "repo", realistic=True)
    migrated = mg("migrate", repo.root, "--hmac-key-env", "OLD_HMAC_KEY", "--key", key,
                  "--sign-unclaimed", "--json")
    assert migrated.exit_code == 0, migrated.output
    statuses = {f["file"]: f["status"] for f in json.loads(migrated.stdout)["files"]}
    every_model = set(repo.signed) | set(repo.unclaimed)
    assert statuses == dict.fromkeys(every_model, "signed")

    clean = _audit(repo.root, pub, "--json")  # no false alarm before the tamper
    assert clean.exit_code == 0, clean.output
    assert {m["name"]: m["status"] for m in json.loads(clean.stdout)["models"]} == \
        dict.fromkeys(every_model, "verified")

    target = repo.root / TAMPERED
    data = bytearray(target.read_bytes())
    data[-5] ^= 0x01  # inside the array data: still a valid .npy, other bytes
    target.write_bytes(bytes(data))

    # table (plain, not a terminal) + SARIF and JUnit files in one run
    sarif_path, junit_path = tmp_path / "audit.sarif", tmp_path / "audit.xml"
    table = _audit(repo.root, pub, "--sarif", sarif_path, "--junit", junit_path)
    assert table.exit_code == 1, table.output
    rows = {line.split()[1]: line.split()[0] for line in table.output.splitlines()
            if line.split() and line.split()[0] in ("verified", "invalid")}
    assert rows == {**dict.fromkeys(every_model, "verified"), TAMPERED: "invalid"}
    assert "1 invalid, 12 verified" in table.output
    assert "sha256 differs" in table.output

    as_json = _audit(repo.root, pub, "--json")
    assert as_json.exit_code == 1
    failing = [m for m in json.loads(as_json.stdout)["models"] if m["status"] != "verified"]
    assert [m["name"] for m in failing] == [TAMPERED]
    [finding] = failing[0]["findings"]
    assert finding["kind"] == "invalid" and finding["file"] == TAMPERED
    assert finding["check"] == "SubjectMismatchError" and "sha256 differs" in finding["message"]

    sarif = json.loads(sarif_path.read_text())
    sarif_validator().validate(sarif)
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "mgattest/invalid" and result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": TAMPERED, "uriBaseId": "%SRCROOT%"}

    suites = list(JUnitXml.fromfile(str(junit_path)))
    cases = {case.name: case for suite in suites for case in suite}
    assert set(cases) == every_model
    failed = {name for name, case in cases.items()
              if any(isinstance(r, Failure) for r in case.result)}
    assert failed == {TAMPERED}
    [failure] = [r for r in cases[TAMPERED].result if isinstance(r, Failure)]
    assert failure.type == "invalid" and "sha256 differs" in (failure.message or "")
