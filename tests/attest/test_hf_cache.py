"""Hugging Face layouts: hub-cache snapshots, ``hf:`` references and ``--local-dir``.

The cache is built the way huggingface_hub writes it (tests/helpers/hfcache.py) and
read back by huggingface_hub itself, so the layout under test is the real one. Every
tamper of a blob, a snapshot link or a ref is rejected with its named cause, and the
untouched revision still verifies.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest

from mgattest.attest import (
    KeySigner,
    TrustOptions,
    default_bundle_path,
    hash_model,
    resolve_model_path,
    sign_model,
    verify_model,
)
from mgattest.attest._keys import generate_signer
from mgattest.attest._sign import write_bundle_file
from mgattest.attest.errors import (
    BundleReadError,
    CacheCorruptionError,
    ModelReferenceError,
    SubjectMismatchError,
    UnsafePathError,
)
from mgattest.inspect import MALFORMED, SAFE, scan_path
from mgattest.policy import ModelVerifier, read_model_bytes
from tests.helpers.hfcache import (
    COMMIT_A,
    COMMIT_B,
    add_revision,
    blob_of,
    etag_of,
    git_blob_id,
    repo_dir,
    safetensors_bytes,
)

hf_hub = pytest.importorskip("huggingface_hub")

REPO = "acme/tiny"
FILES_A = {"config.json": b'{"hidden": 2}', "model.safetensors": safetensors_bytes((1.0, 2.0)),
           "tokenizer/vocab.txt": b"[PAD]\nhello\n"}
# Revision B shares config.json and the vocabulary (same blobs), new weights.
FILES_B = {**FILES_A, "model.safetensors": safetensors_bytes((3.0, 4.0))}


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hub cache: acme/tiny at v1 (A) and main (B), plus another repository."""
    cache = tmp_path / "hub"
    add_revision(cache, REPO, COMMIT_A, FILES_A, refs=("v1",))
    add_revision(cache, REPO, COMMIT_B, FILES_B, refs=("main",))
    add_revision(cache, "other/model", COMMIT_A,
                 {"model.safetensors": safetensors_bytes((9.0,))}, refs=("main",))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # default bundles land here, never in the cache
    return cache


@pytest.fixture
def signer():
    return generate_signer("ed25519")


def _snapshot(hub: Path, commit: str) -> Path:
    return repo_dir(hub, REPO) / "snapshots" / commit


def _sign(ref: str, signer) -> Path:
    result = sign_model(ref, KeySigner(signer))
    path = default_bundle_path(ref)
    return write_bundle_file(result.bundle, path)


def _verify(ref: str, signer, bundle: Path | None = None):
    return verify_model(ref, None if bundle is None else [bundle],
                        TrustOptions(keys=[signer.public_key]))


# --------------------------------------------------------------------------- the layout

def test_the_cache_is_what_huggingface_hub_reads(hub):
    info = hf_hub.scan_cache_dir(hub)
    assert not info.warnings
    repo = next(r for r in info.repos if r.repo_id == REPO)
    assert {r.commit_hash for r in repo.revisions} == {COMMIT_A, COMMIT_B}
    assert {name: rev.commit_hash for name, rev in repo.refs.items()} == \
        {"v1": COMMIT_A, "main": COMMIT_B}
    # two revisions, five files, four distinct blobs: config and vocab are shared
    assert len(list((repo_dir(hub, REPO) / "blobs").iterdir())) == 4
    found = hf_hub.try_to_load_from_cache(REPO, "tokenizer/vocab.txt", cache_dir=hub,
                                          revision="v1")
    assert Path(found) == _snapshot(hub, COMMIT_A) / "tokenizer/vocab.txt"
    assert Path(found).read_bytes() == FILES_A["tokenizer/vocab.txt"]
    main = hf_hub.snapshot_download(REPO, cache_dir=hub, local_files_only=True)
    assert Path(main) == _snapshot(hub, COMMIT_B)
    # LFS blobs are named by the SHA-256 of their content, small files by their git id
    weights = blob_of(_snapshot(hub, COMMIT_B), "model.safetensors")
    assert weights.name == hashlib.sha256(FILES_B["model.safetensors"]).hexdigest()
    assert blob_of(_snapshot(hub, COMMIT_B), "config.json").name == \
        git_blob_id(FILES_B["config.json"])


def test_references_resolve_with_huggingface_hub_rules(hub, monkeypatch):
    assert resolve_model_path("hf:acme/tiny") == _snapshot(hub, COMMIT_B)
    assert resolve_model_path("hf:acme/tiny@main") == _snapshot(hub, COMMIT_B)
    assert resolve_model_path("hf:acme/tiny@v1") == _snapshot(hub, COMMIT_A)
    assert resolve_model_path(f"hf:acme/tiny@{COMMIT_A}") == \
        _snapshot(hub, COMMIT_A)
    # a repository without a namespace (gpt2, bert-base-uncased)
    add_revision(hub, "gpt2", COMMIT_A, {"config.json": b"{}"}, refs=("main",))
    assert resolve_model_path("hf:gpt2") == \
        hub / "models--gpt2" / "snapshots" / COMMIT_A
    assert hf_hub.try_to_load_from_cache("gpt2", "config.json", cache_dir=hub) == \
        str(hub / "models--gpt2" / "snapshots" / COMMIT_A / "config.json")
    # HF_HOME/hub when HF_HUB_CACHE is unset
    monkeypatch.delenv("HF_HUB_CACHE")
    home = hub.parent / "home"
    home.mkdir()
    shutil.move(hub, home / "hub")
    monkeypatch.setenv("HF_HOME", str(home))
    assert resolve_model_path("hf:acme/tiny") == \
        home / "hub" / "models--acme--tiny" / "snapshots" / COMMIT_B
    # datasets live beside models under their own prefix
    add_revision(home / "hub", "acme/data", COMMIT_A, {"train.txt": b"x"}, refs=("main",),
                 repo_type="dataset")
    assert resolve_model_path("hf:datasets/acme/data").parent.parent.name == \
        "datasets--acme--data"


@pytest.mark.parametrize("ref, why", [
    ("hf:acme/missing", "not in the local cache"),
    ("hf:acme/tiny@nope", "does not know"),
    ("hf:acme/tiny@" + "c" * 40, "has no snapshot"),
    ("hf:acme/../tiny", "does not name a repository"),
    ("hf:acme--x/tiny", "does not name a repository"),
    ("hf:acme/tiny@../../x", "unusable revision"),
    ("hf:acme/tiny@", "empty revision"),
])
def test_unresolvable_references_are_input_errors(hub, ref, why):
    with pytest.raises(ModelReferenceError, match=why) as info:
        resolve_model_path(ref)
    assert info.value.exit_code == 2 and info.value.where == ref


def test_a_ref_that_is_not_a_commit_is_refused(hub):
    (repo_dir(hub, REPO) / "refs" / "main").write_text("../../../etc")
    with pytest.raises(ModelReferenceError, match="does not hold a commit hash"):
        resolve_model_path("hf:acme/tiny")


# --------------------------------------------------------------------------- sign/verify

def test_sign_and_verify_both_revisions(hub, signer):
    bundle_a = _sign("hf:acme/tiny@v1", signer)
    bundle_b = _sign("hf:acme/tiny", signer)
    assert bundle_a == Path(f"acme--tiny@{COMMIT_A[:12]}.sigstore.json")
    assert bundle_b == Path(f"acme--tiny@{COMMIT_B[:12]}.sigstore.json")
    assert not any(p.name.endswith(".sigstore.json") for p in hub.rglob("*"))
    assert not hf_hub.scan_cache_dir(hub).warnings  # the cache is left as huggingface_hub wants
    for ref, files in (("hf:acme/tiny@v1", FILES_A), ("hf:acme/tiny", FILES_B)):
        atts, check = _verify(ref, signer)
        assert check.ok
        # subjects are named by snapshot path, never by blob name, with sha256sum digests
        assert sorted(atts[0].subjects, key=lambda s: s["name"]) == [
            {"name": name, "digest": {"sha256": hashlib.sha256(data).hexdigest()}}
            for name, data in sorted(files.items())]
    # the snapshot directory given as a path is the same model, with the same default
    snap = _snapshot(hub, COMMIT_A)
    assert default_bundle_path(snap) == bundle_a
    assert _verify(str(snap), signer)[1].ok
    outcome = ModelVerifier(None, TrustOptions(keys=[signer.public_key])).verify(
        "hf:acme/tiny@v1")
    assert outcome.check is not None and outcome.check.ok
    # verify-then-load reads the same bytes through the same rule
    model = read_model_bytes("hf:acme/tiny")
    assert bytes(model.files["model.safetensors"]) == FILES_B["model.safetensors"]


def test_absolute_links_into_the_own_blobs_are_followed(hub, signer):
    snap = _snapshot(hub, COMMIT_B)
    link = snap / "model.safetensors"
    blob = blob_of(snap, "model.safetensors").resolve()
    bundle = _sign("hf:acme/tiny", signer)
    link.unlink()
    link.symlink_to(blob)  # what huggingface_hub writes when a relative link fails
    assert _verify("hf:acme/tiny", signer, bundle)[1].ok


def test_a_plain_directory_keeps_refusing_links(hub, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(_snapshot(hub, COMMIT_B), plain, symlinks=True)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        hash_model(plain)


# --------------------------------------------------------------------------- tampering

def _tamper_blob(snap: Path, name: str, data: bytes) -> None:
    blob = blob_of(snap, name)
    blob.chmod(0o644)
    blob.write_bytes(data)


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_a_changed_blob_is_cache_corruption_in_sign_verify_and_inspect(hub, signer, name):
    bundle = _sign("hf:acme/tiny", signer)
    _sign("hf:acme/tiny@v1", signer)
    snap = _snapshot(hub, COMMIT_B)
    blob = blob_of(snap, name).name
    if name == "config.json":  # shared by both revisions: corrupts both
        _tamper_blob(snap, name, b'{"hidden": 3}')
    else:
        _tamper_blob(snap, name, safetensors_bytes((3.0, 5.0)))
    for attempt in (lambda: _verify("hf:acme/tiny", signer, bundle),
                    lambda: sign_model("hf:acme/tiny", signer),
                    lambda: read_model_bytes("hf:acme/tiny")):
        with pytest.raises(CacheCorruptionError) as info:
            attempt()
        assert info.value.where == f"{snap.resolve()}/{name} -> blobs/{blob}"
        assert info.value.exit_code == 1
    reports = {Path(r.path).name: r for r in scan_path(snap)}
    assert reports[Path(name).name].verdict == MALFORMED
    assert any(f.kind == "cache-corruption" for f in reports[Path(name).name].findings)
    if name == "model.safetensors":  # revision A does not share that blob
        assert _verify("hf:acme/tiny@v1", signer)[1].ok
        assert all(r.verdict == SAFE for r in scan_path(_snapshot(hub, COMMIT_A)))


def test_a_link_retargeted_to_another_blob_of_the_repo_is_a_subject_mismatch(hub, signer):
    bundle = _sign("hf:acme/tiny", signer)
    snap = _snapshot(hub, COMMIT_B)
    link = snap / "model.safetensors"
    link.unlink()
    link.symlink_to(f"../../blobs/{etag_of('model.safetensors', FILES_A['model.safetensors'])}")
    with pytest.raises(SubjectMismatchError, match="model.safetensors"):
        _verify("hf:acme/tiny", signer, bundle)


def _retarget(hub: Path, snap: Path, how: str) -> None:
    link = snap / "model.safetensors"
    etag = os.readlink(link).rsplit("/", 1)[1]
    link.unlink()
    repo = repo_dir(hub, REPO)
    if how == "another repo":
        other = next((repo_dir(hub, "other/model") / "blobs").iterdir())
        link.symlink_to(f"../../../models--other--model/blobs/{other.name}")
    elif how == "another repo, absolute":
        link.symlink_to(next((repo_dir(hub, "other/model") / "blobs").iterdir()).resolve())
    elif how == "outside":
        (hub.parent / "evil.safetensors").write_bytes(b"x")
        link.symlink_to(hub.parent / "evil.safetensors")
    elif how == "directory":
        (repo / "blobs" / "d").mkdir()
        link.symlink_to("../../blobs/d")
    elif how == "blobs itself":
        link.symlink_to("../../blobs")
    elif how == "dangling":
        link.symlink_to("../../blobs/" + "0" * 64)
    elif how == "chain":
        (repo / "blobs" / "alias").symlink_to(etag)
        link.symlink_to("../../blobs/alias")
    elif how == "detour":
        (repo / "elsewhere").symlink_to("blobs")
        link.symlink_to(f"../../elsewhere/{etag}")
    elif how == "partial download":
        (repo / "blobs" / f"{etag}.incomplete").write_bytes(b"half")
        link.symlink_to(f"../../blobs/{etag}.incomplete")
    elif how == "snapshot sibling":
        link.symlink_to("config.json")


@pytest.mark.parametrize("how, cause", [
    ("another repo", "another repository's blobs/ \\(models--other--model\\)"),
    ("another repo, absolute", "another repository's blobs/ \\(models--other--model\\)"),
    ("outside", "a place outside this repository"),
    ("directory", "points to a directory"),
    ("blobs itself", "this repository outside its blobs/"),
    ("dangling", "is dangling"),
    ("chain", "itself a link"),
    ("detour", "through a detour"),
    ("snapshot sibling", "this repository outside its blobs/"),
    ("partial download", "partial download"),
])
def test_other_links_stay_refused_with_the_entry_named(hub, signer, how, cause):
    bundle = _sign("hf:acme/tiny", signer)
    snap = _snapshot(hub, COMMIT_B)
    _retarget(hub, snap, how)
    for attempt in (lambda: _verify("hf:acme/tiny", signer, bundle),
                    lambda: sign_model("hf:acme/tiny", signer),
                    lambda: read_model_bytes("hf:acme/tiny")):
        with pytest.raises(UnsafePathError, match=cause) as info:
            attempt()
        assert info.value.where == "model.safetensors"
    report = next(r for r in scan_path(snap) if r.path.endswith("model.safetensors"))
    assert report.verdict == MALFORMED and re.search(cause, report.findings[0].detail)
    _sign("hf:acme/tiny@v1", signer)
    assert _verify("hf:acme/tiny@v1", signer)[1].ok  # the untouched revision


def test_a_moved_ref_never_passes_the_old_bundle_against_other_bytes(hub, signer):
    bundle_b = _sign("hf:acme/tiny", signer)
    (repo_dir(hub, REPO) / "refs" / "main").write_text(COMMIT_A)
    # the old bundle, given explicitly, is checked against revision A's bytes: mismatch
    with pytest.raises(SubjectMismatchError, match="model.safetensors"):
        _verify("hf:acme/tiny", signer, bundle_b)
    # by default main now means A, whose own bundle does not exist yet
    with pytest.raises(BundleReadError, match=f"acme--tiny@{COMMIT_A[:12]}"):
        _verify("hf:acme/tiny", signer)
    _sign("hf:acme/tiny@v1", signer)
    atts, check = _verify("hf:acme/tiny", signer)  # A's bundle, A's bytes
    assert check.ok and {s["digest"]["sha256"] for s in atts[0].subjects} >= {
        hashlib.sha256(FILES_A["model.safetensors"]).hexdigest()}


# --------------------------------------------------------------------------- --local-dir

def _local_dir(tmp_path: Path) -> Path:
    """A `hf download --local-dir` folder written with huggingface_hub's own writer."""
    from huggingface_hub._local_folder import read_download_metadata, write_download_metadata

    local = tmp_path / "local"
    for name, data in FILES_B.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
        write_download_metadata(local, name, COMMIT_B, etag_of(name, data))
    for name, data in FILES_B.items():  # huggingface_hub reads its metadata back
        meta = read_download_metadata(local, name)
        assert meta is not None and meta.commit_hash == COMMIT_B
        assert meta.etag == etag_of(name, data)
    assert (local / ".cache/huggingface/.gitignore").read_text() == "*"
    return local


def test_local_dir_metadata_is_ignored_and_never_covers_anything(tmp_path, signer):
    local = _local_dir(tmp_path)
    digests = hash_model(local)
    assert sorted(f.name for f in digests.files) == sorted(FILES_B)
    assert ".cache/huggingface/" in digests.ignored
    bundle = write_bundle_file(sign_model(local, KeySigner(signer)).bundle,
                               default_bundle_path(local))
    atts, check = _verify(str(local), signer, bundle)
    assert check.ok
    assert any(f.name == ".cache/huggingface/" and f.status == "ignored" for f in check.files)
    assert not any(s["name"].startswith(".cache/") for s in atts[0].subjects)
    assert all(not r.path.count("/.cache/") for r in scan_path(local))
    # a real file changed: rejected, even with its download metadata rewritten to match
    from huggingface_hub._local_folder import write_download_metadata

    changed = safetensors_bytes((7.0, 7.0))
    (local / "model.safetensors").write_bytes(changed)
    write_download_metadata(local, "model.safetensors", COMMIT_B,
                            etag_of("model.safetensors", changed))
    with pytest.raises(SubjectMismatchError, match="model.safetensors"):
        _verify(str(local), signer, bundle)


def test_a_single_file_of_a_snapshot_is_checked_like_the_directory(hub, signer):
    weights = _snapshot(hub, COMMIT_B) / "model.safetensors"
    bundle = write_bundle_file(sign_model(weights, KeySigner(signer)).bundle,
                               default_bundle_path(weights))
    assert bundle == Path(f"acme--tiny@{COMMIT_B[:12]}--model.safetensors.sigstore.json")
    assert _verify(str(weights), signer)[1].ok
    assert [r.verdict for r in scan_path(weights)] == [SAFE]
    _tamper_blob(_snapshot(hub, COMMIT_B), "model.safetensors", safetensors_bytes((0.0, 1.0)))
    with pytest.raises(CacheCorruptionError, match="model.safetensors"):
        _verify(str(weights), signer)
    with pytest.raises(CacheCorruptionError):
        hash_model(weights)
    assert any(f.kind == "cache-corruption" for f in scan_path(weights)[0].findings)


@pytest.mark.interop
def test_model_signing_verifies_a_snapshot_and_a_local_dir_we_signed(hub, tmp_path):
    """OpenSSF model_signing (the reference) accepts the same bytes: the snapshot with
    links followed (recorded as allow_symlinks), the local-dir without its metadata."""
    import subprocess
    import sys

    from mgattest.attest import SignOptions
    from mgattest.attest._keys import write_keypair

    cli = Path(sys.executable).parent / "model_signing"
    signer = generate_signer("ecdsa-p256")
    _key, pub = write_keypair(signer, tmp_path / "k")
    for model, flags in ((_snapshot(hub, COMMIT_B), ["--allow_symlinks"]),
                         (_local_dir(tmp_path), [])):
        result = sign_model(model, signer, SignOptions(format="model-signing"))
        assert result.statement["predicate"]["serialization"]["allow_symlinks"] is \
            bool(flags)
        sig = write_bundle_file(result.bundle, tmp_path / f"{model.name}.sig")
        run = subprocess.run([str(cli), "verify", "key", str(model), "--signature", str(sig),
                              "--public_key", str(pub), *flags], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr


def test_trust_files_in_the_cached_repository_are_refused(hub):
    from mgattest.attest import refuse_trust_files_in_model

    snap = _snapshot(hub, COMMIT_B)
    planted = repo_dir(hub, REPO) / "blobs" / "release.pub"
    planted.write_text("key")
    with pytest.raises(UnsafePathError, match="part of the model"):
        refuse_trust_files_in_model(snap, [("key", planted)])
    refuse_trust_files_in_model(snap, [("key", hub.parent / "elsewhere.pub")])


@pytest.mark.parametrize("env", [
    {"HF_HUB_CACHE": "{tmp}/a"},
    {"HUGGINGFACE_HUB_CACHE": "{tmp}/legacy", "HF_HOME": "{tmp}/home"},
    {"HF_HOME": "{tmp}/home"},
    {"XDG_CACHE_HOME": "{tmp}/xdg"},
    {"HOME": "{tmp}/user"},
])
def test_the_cache_directory_is_the_one_huggingface_hub_uses(tmp_path, monkeypatch, env):
    import subprocess
    import sys

    from mgattest.attest import hub_cache_dir

    names = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    theirs = subprocess.run(
        [sys.executable, "-c", "from huggingface_hub import constants; "
                               "print(constants.HF_HUB_CACHE)"],
        capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    assert hub_cache_dir() == Path(theirs)
