"""``mgattest migrate``: every old layout migrated, every bad claim caught and left
unsigned, the originals untouched, and what it signs verifies with ``mgattest verify``."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil

import pytest

from tests.helpers.cli_runner import mg
from tests.helpers.legacy_trees import HMAC_KEY, build_legacy_repo, tree_digest

pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None,
                                reason="the legacy tree's checksum files come from coreutils")


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OLD_HMAC_KEY", HMAC_KEY.decode())
    monkeypatch.delenv("MGATTEST_KEY_PASSWORD", raising=False)


@pytest.fixture
def repo(tmp_path):
    return build_legacy_repo(tmp_path / "repo")


def _migrate(repo, keypair, *args):
    key, _ = keypair
    result = mg("migrate", repo.root, "--hmac-key-env", "OLD_HMAC_KEY", "--key", key,
                "--json", *args)
    return result, json.loads(result.stdout) if result.stdout.startswith("{") else None


def _by_file(report):
    return {f["file"]: f for f in report["files"]}


def test_every_good_file_is_signed_and_verifies(repo, keypair):
    before = tree_digest(repo.root)
    result, report = _migrate(repo, keypair)
    assert result.exit_code == 0, result.output
    files = _by_file(report)
    assert {n for n, f in files.items() if f["status"] == "signed"} == set(repo.signed)
    for name, scheme in repo.signed.items():
        assert scheme in {c["scheme"] for c in files[name]["claims"]}
        assert all(c["ok"] for c in files[name]["claims"])
        assert isinstance(files[name]["logIndex"], int)
    assert files["notes/scratch.pth"]["status"] == "unclaimed"
    # originals unchanged; the only new files are one bundle per signed file
    after = tree_digest(repo.root)
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {f"{n}.sigstore.json" for n in repo.signed}
    _, pub = keypair
    for name in repo.signed:
        verified = mg("verify", repo.root / name, "--key", pub)
        assert verified.exit_code == 0, (name, verified.output)
    statement = json.loads(__import__("base64").b64decode(json.loads(
        (repo.root / "models/classifier.pt.sigstore.json").read_text())["dsseEnvelope"]["payload"]))
    migrated = statement["predicate"]["buildDefinition"]["externalParameters"]["migratedFrom"]
    assert {"scheme": "hmac-sig", "source": "models/classifier.pt.sig",
            "claim": "hmac-sha256"} in migrated


def _flip(path, at=10):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_every_bad_claim_is_reported_and_not_signed(repo, keypair):
    root = repo.root
    _flip(root / "models/classifier.pt")                    # HMAC .sig
    _flip(root / "models/heads/sub/tail.bin")               # signature manifest
    _flip(root / "releases/v1/embed.npy")                   # metadata sha256 + sha512
    _flip(root / "deploy/small.joblib")                     # allowed list
    _flip(root / "legacy/vocab.npz")                        # sha512sum --tag
    (root / "legacy/weights.h5").unlink()                   # claimed, missing
    meta = root / "releases/v1/ranker.onnx.sig.json"        # right digest, wrong size
    doc = json.loads(meta.read_text())
    doc["file_size"] += 1
    meta.write_text(json.dumps(doc))
    before = tree_digest(root)
    result, report = _migrate(repo, keypair)
    assert result.exit_code == 1 and report["ok"] is False
    files = _by_file(report)
    expected_failures = {
        "models/classifier.pt": ("models/classifier.pt.sig", "hmac-sha256"),
        "models/heads/sub/tail.bin": ("models/heads/model_signatures.json[sub/tail.bin]",
                                      "hmac-sha256"),
        "releases/v1/embed.npy": ("releases/v1/embed.npy.sig.json", "sha512"),
        "deploy/small.joblib": ("allowed_models.json[deploy/small.joblib]", "sha256"),
        "legacy/vocab.npz": ("legacy/SHA512SUMS:1", "sha512"),
        "legacy/weights.h5": ("legacy/SHA256SUMS:1", "sha256"),
        "releases/v1/ranker.onnx": ("releases/v1/ranker.onnx.sig.json", "size"),
    }
    assert {n for n, f in files.items() if f["status"] == "failed"} == set(expected_failures)
    for name, (source, kind) in expected_failures.items():
        failed = [c for c in files[name]["claims"] if not c["ok"]]
        assert (source, kind) in {(c["source"], c["kind"]) for c in failed}, files[name]
        assert files[name]["bundle"] is None
        assert not (root / f"{name}.sigstore.json").exists()
    assert "file is missing" in files["legacy/weights.h5"]["reasons"]
    size = [c for c in files["releases/v1/ranker.onnx"]["claims"] if c["kind"] == "size"][0]
    assert (size["expected"], size["actual"]) == (str(doc["file_size"]), str(doc["file_size"] - 1))
    digest = [c for c in files["deploy/small.joblib"]["claims"]][0]
    assert digest["actual"] == hashlib.sha256((root / "deploy/small.joblib").read_bytes()).hexdigest()
    # the untouched files are still signed; nothing that existed changed
    good = set(repo.signed) - set(expected_failures)
    assert {n for n, f in files.items() if f["status"] == "signed"} == good
    after = tree_digest(root)
    assert {k: after[k] for k in before} == before


def test_wrong_hmac_key_fails_every_hmac_claim_without_leaking_the_mac(repo, keypair,
                                                                       monkeypatch):
    monkeypatch.setenv("OLD_HMAC_KEY", "not-the-key")
    result, report = _migrate(repo, keypair)
    assert result.exit_code == 1
    files = _by_file(report)
    hmac_files = {n for n, s in repo.signed.items()
                  if s in ("hmac-sig", "signature-manifest")}
    assert {n for n, f in files.items() if f["status"] == "failed"} == hmac_files
    for name in hmac_files:
        data = (repo.root / name).read_bytes()
        wrong_mac = hmac.new(b"not-the-key", data, hashlib.sha256).hexdigest()
        assert wrong_mac not in result.output  # a MAC under the key is a valid old signature
        assert any("does not match" in r for r in files[name]["reasons"])
    text = mg("migrate", repo.root, "--hmac-key-env", "OLD_HMAC_KEY", "--dry-run")
    assert text.exit_code == 1 and "failed: models/classifier.pt" in text.output
    assert "hmac-sha256 claimed by models/classifier.pt.sig: does not match" in text.output


def test_dry_run_writes_nothing(repo, keypair, tmp_path):
    before = tree_digest(repo.root)
    result, report = _migrate(repo, keypair, "--dry-run")
    assert result.exit_code == 0, result.output
    assert report["dryRun"] is True
    files = _by_file(report)
    assert {n for n, f in files.items() if f["status"] == "verified"} == set(repo.signed)
    assert files["models/classifier.pt"]["bundle"] == "models/classifier.pt.sigstore.json"
    assert tree_digest(repo.root) == before
    assert not (tmp_path / "home").exists()  # nothing logged either
    plain = mg("migrate", repo.root, "--hmac-key-env", "OLD_HMAC_KEY", "--dry-run")
    assert plain.exit_code == 0
    assert "would sign: models/classifier.pt -> models/classifier.pt.sigstore.json" in plain.output
    assert "unclaimed: notes/scratch.pth" in plain.output
    assert tree_digest(repo.root) == before


def test_rerun_keeps_existing_bundles_and_sign_unclaimed(repo, keypair):
    assert _migrate(repo, keypair)[0].exit_code == 0
    bundle = repo.root / "models/classifier.pt.sigstore.json"
    first = bundle.read_bytes()
    result, report = _migrate(repo, keypair, "--sign-unclaimed")
    assert result.exit_code == 0
    files = _by_file(report)
    assert files["models/classifier.pt"]["status"] == "bundle-exists"
    assert bundle.read_bytes() == first
    assert files["notes/scratch.pth"]["status"] == "signed"
    _, pub = keypair
    assert mg("verify", repo.root / "notes/scratch.pth", "--key", pub).exit_code == 0


def test_bad_input_exits_2(repo, keypair, tmp_path, monkeypatch):
    key, _ = keypair
    missing = mg("migrate", tmp_path / "nope", "--key", key)
    assert missing.exit_code == 2 and "not a directory" in missing.output
    no_key = mg("migrate", repo.root, "--key", key)
    assert no_key.exit_code == 2 and "HMAC claim(s) need the old key" in no_key.output
    monkeypatch.delenv("OLD_HMAC_KEY")
    unset = mg("migrate", repo.root, "--key", key, "--hmac-key-env", "OLD_HMAC_KEY")
    assert unset.exit_code == 2 and "OLD_HMAC_KEY is not set" in unset.output
    no_signer = mg("migrate", repo.root, "--hmac-key-env", "X", "--hmac-key-file", key)
    assert no_signer.exit_code == 2
    (tmp_path / "k.hex").write_text(HMAC_KEY.hex() + "\n")
    ok = mg("migrate", repo.root, "--hmac-key-file", tmp_path / "k.hex",
            "--hmac-key-encoding", "hex", "--dry-run")
    assert ok.exit_code == 0, ok.output
    rot13 = mg("migrate", repo.root, "--hmac-key-file", tmp_path / "k.hex",
               "--hmac-key-encoding", "rot13", "--dry-run")
    assert rot13.exit_code == 2 and "--hmac-key-encoding must be one of" in rot13.output
    (tmp_path / "k.raw").write_bytes(HMAC_KEY + b"\n")  # `echo secret > key`: newline dropped
    raw = mg("migrate", repo.root, "--hmac-key-file", tmp_path / "k.raw", "--dry-run")
    assert raw.exit_code == 0, raw.output


def test_names_leaving_the_root_and_symlinks_are_not_signed(tmp_path, keypair):
    root = tmp_path / "tree"
    root.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"outside")
    (root / "real.bin").write_bytes(b"real")
    os.symlink(root / "real.bin", root / "link.bin")
    digest = hashlib.sha256(b"outside").hexdigest()
    real = hashlib.sha256(b"real").hexdigest()
    (root / "SHA256SUMS").write_text(f"{digest}  ../outside.bin\n{digest}  "
                                     f"{tmp_path / 'outside.bin'}\n{real}  link.bin\n")
    key, _ = keypair
    result = mg("migrate", root, "--key", key, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    messages = " ".join(p["message"] for p in report["problems"])
    assert "outside the migration root" in messages and "absolute path" in messages
    (link,) = [f for f in report["files"] if f["file"] == "link.bin"]
    assert link["status"] == "failed" and "symbolic link" in link["reasons"][0]
    assert not any(p.name.endswith(".sigstore.json") for p in root.iterdir())
    assert not (tmp_path / "outside.bin.sigstore.json").exists()


def test_keyless_migration_against_a_private_stack(tmp_path):
    """Keyless: each verified file gets a certificate-backed bundle logged in the private
    log, and verifies for that identity (and not for another one)."""
    from tests.helpers.legacy_trees import sign_hmac, write_sums
    from tests.helpers.servers import private_keyless_stack

    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.safetensors").write_bytes(b"tensors" * 100)
    (root / "b.onnx").write_bytes(b"graph" * 100)
    sign_hmac(root / "a.safetensors", HMAC_KEY)
    write_sums(root, "sha256sum", ["b.onnx"], "SHA256SUMS")
    with private_keyless_stack(tmp_path / "stack") as stack:
        email = "release@example.com"
        result = mg("migrate", root, "--hmac-key-env", "OLD_HMAC_KEY", "--keyless",
                    "--identity-token", stack["issuer"].mint(email), "--trust-config",
                    stack["ctc"], "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert {f["file"]: f["status"] for f in report["files"]} == {
            "a.safetensors": "signed", "b.onnx": "signed"}
        for name in ("a.safetensors", "b.onnx"):
            bundle = json.loads((root / f"{name}.sigstore.json").read_text())
            assert "certificate" in bundle["verificationMaterial"]
            args = ["verify", root / name, "--trusted-root", stack["ctc"], "--issuer",
                    stack["issuer"].issuer_url]
            ok = mg(*args, "--identity", email)
            assert ok.exit_code == 0, ok.output
            assert mg(*args, "--identity", "someone@example.com").exit_code == 1


def test_terminal_table_shows_whole_digests(repo, capsys):
    from mgattest.attest import MigrateOptions, migrate_tree
    from mgattest.cli._migrate_cmds import _render_table

    (repo.root / "deploy/prod.gguf").write_bytes(b"changed")
    report = migrate_tree(repo.root, None, MigrateOptions(hmac_key=HMAC_KEY, dry_run=True))
    _render_table(report)
    text = capsys.readouterr().out
    cells = "".join(line.split("│")[4].strip() for line in text.splitlines() if line.count("│") == 5)
    assert hashlib.sha256(b"changed").hexdigest() in cells.replace(" ", "")
    assert "would sign" in text and "deploy/prod.gguf" in text


def test_authenticated_only_signs_only_what_an_hmac_vouches_for(repo, keypair):
    result, report = _migrate(repo, keypair, "--authenticated-only", "--dry-run")
    assert result.exit_code == 0, result.output
    files = _by_file(report)
    hmac_files = {n for n, s in repo.signed.items() if s in ("hmac-sig", "signature-manifest")}
    assert {n for n, f in files.items() if f["status"] == "verified"} == hmac_files
    assert files["legacy/weights.h5"]["status"] == "unclaimed"
    assert "unauthenticated" in files["legacy/weights.h5"]["reasons"][0]
