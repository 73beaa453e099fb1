"""`log export` / `log import`: the log as C2SP tlog-tiles, and its verified rebuild.

A log is exported to a directory, imported into a new database and compared with the
original (root, checkpoint, proofs, entries by index and UUID, SETs); every part of an
export that import trusts is tampered in turn and must be refused with a named cause;
the export served by ``python -m http.server`` is a mirror our client, import and
entry verification accept.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from mgattest.tlog import (
    CanonicalEntry,
    Checkpoint,
    CheckpointError,
    DirectorySource,
    LogSigner,
    MirrorError,
    RekorClient,
    SearchQuery,
    SETError,
    TransparencyLog,
    TrustedLog,
    URLSource,
    export_log,
    import_log,
    search_log,
    sign_checkpoint,
    verify_checkpoint,
    verify_entry,
)
from mgattest.tlog._attestation_files import decode_attestations, encode_attestations
from mgattest.tlog._client import LogRequestError
from tests.helpers.cli_runner import mg
from tests.helpers.log_server import dsse_entry, hashedrekord, in_toto_statement, new_key
from tests.helpers.servers import free_port, stop_processes, wait_for_server

ORIGIN = "export.test/log"
SMALL = 600  # two full tiles and a partial one at level 0; a partial level-1 tile


def synthetic_body(i: int) -> bytes:
    """A distinct canonical (RFC 8785) hashedrekord 0.0.1 body, without rfc8785's cost."""
    digest = hashlib.sha256(b"%d" % i).hexdigest()
    return (b'{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":'
            b'{"algorithm":"sha256","value":"%s"}},"signature":{"content":"c2ln",'
            b'"publicKey":{"content":"a2V5"}}}}' % digest.encode())


def append_synthetic(log: TransparencyLog, start: int, end: int, batch: int = 25_000) -> None:
    """Bulk-append bodies ``start .. end-1`` through the log's batch append API."""
    for s in range(start, end, batch):
        log.append_many_canonical([CanonicalEntry("hashedrekord", "0.0.1", synthetic_body(i))
                                   for i in range(s, min(end, s + batch))])


def new_log(path: Path, signer: LogSigner | None = None) -> TransparencyLog:
    return TransparencyLog.init(path, origin=ORIGIN, signer=signer or LogSigner.generate("ed25519"))


def exported_after_growth(tmp_path: Path, first: int, size: int) -> tuple[TransparencyLog, str]:
    """A log checkpointed at ``first`` entries, grown to ``size`` and exported to
    ``tmp_path/export``; returns it and its checkpoint at ``first``."""
    log = new_log(tmp_path / "log.db")
    append_synthetic(log, 0, first)
    old_note = log.signed_checkpoint()
    append_synthetic(log, first, size)
    log.signed_checkpoint()
    export_log(log.path, tmp_path / "export")
    return log, old_note


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TransparencyLog, Path]]:
    """(log, export dir): three real signed entries then synthetic ones, exported."""
    base = tmp_path_factory.mktemp("small")
    log = new_log(base / "log.db")
    key = new_key()
    for i in range(3):
        log.append(hashedrekord(key, b"artifact %d" % i))
    append_synthetic(log, 3, SMALL)
    log.signed_checkpoint()
    export_log(log.path, base / "export")
    yield log, base / "export"
    log.close()


def tampered_copy(export: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    return copy


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def refused(export: Path, tmp_path: Path, log: TransparencyLog,
            error: type[Exception] = MirrorError) -> Exception:
    """Import must raise ``error`` and leave no database (nor temporary file) behind."""
    db = tmp_path / "imported.db"
    with pytest.raises(error) as info:
        import_log(DirectorySource(export), db, log.signer.verifier)
    assert not db.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    return info.value


def described(exc: Exception) -> str:
    return f"{exc} {getattr(exc, 'where', '')}"


def assert_same_log(original: TransparencyLog, copy: TransparencyLog, indexes: list[int]) -> None:
    """Same tree, checkpoint, proofs and entries (index, UUID, time, SET)."""
    assert copy.size == original.size and copy.origin == original.origin
    assert copy.log_id == original.log_id
    assert copy.root_hash() == original.root_hash()
    assert copy.signed_checkpoint() == original.signed_checkpoint()
    for i in indexes:
        assert copy.entry_by_index(i) == original.entry_by_index(i)
        assert copy.entry_by_uuid(original.entry_by_index(i).uuid) == original.entry_by_index(i)
        assert copy.inclusion_proof(i) == original.inclusion_proof(i)
    for first in (1, indexes[len(indexes) // 2] + 1, original.size - 1):
        assert copy.consistency_proof(first) == original.consistency_proof(first)
    assert copy.check_integrity() == original.size


# --- round trip ------------------------------------------------------------------------

def test_export_writes_the_tiles_the_server_serves(small, tmp_path):
    from tests.helpers.log_server import running_server

    log, export = small
    with running_server(log) as url, RekorClient(url) as client:
        assert (export / "checkpoint").read_text() == client.checkpoint()
        for path in ("tile/0/000", "tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2",
                     "tile/entries/000", "tile/entries/002.p/88"):
            assert (export / path).read_bytes() == client.tile(path), path
        for path in ("mgattest/set/000", "mgattest/set/002.p/88"):
            assert (export / path).read_bytes() == client.static_file(path), path
    files = {p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file()}
    assert files == {"checkpoint", "tile/0/000", "tile/0/001", "tile/0/002.p/88",
                     "tile/1/000.p/2", "tile/entries/000", "tile/entries/001",
                     "tile/entries/002.p/88", "mgattest/set/000", "mgattest/set/001",
                     "mgattest/set/002.p/88"}


def test_import_rebuilds_the_same_log(small, tmp_path):
    log, export = small
    result = import_log(DirectorySource(export), tmp_path / "copy.db", log.signer.verifier,
                        origin=ORIGIN)
    assert (result.tree_size, result.root_hash, result.appended) == (SMALL, log.root_hash(), SMALL)
    with TransparencyLog.open(tmp_path / "copy.db", log.signer) as copy:
        assert_same_log(log, copy, [0, 1, 2, 255, 256, 511, 599])
        # the copy is a working log: it keeps appending where the original stopped
        append_synthetic(copy, SMALL, SMALL + 1)
        assert copy.size == SMALL + 1


@pytest.mark.slow
def test_export_import_of_100000_entries_reproduces_the_root(tmp_path):
    log = new_log(tmp_path / "big.db")
    append_synthetic(log, 0, 100_000)
    log.signed_checkpoint()
    started = time.perf_counter()
    exported = export_log(log.path, tmp_path / "export")
    export_seconds = time.perf_counter() - started
    started = time.perf_counter()
    imported = import_log(DirectorySource(tmp_path / "export"), tmp_path / "copy.db",
                          log.signer.verifier, origin=ORIGIN)
    import_seconds = time.perf_counter() - started
    print(f"100k entries: export {export_seconds:.1f} s, import {import_seconds:.1f} s")
    assert exported.tree_size == imported.tree_size == 100_000
    assert exported.root_hash == imported.root_hash == log.root_hash()
    with TransparencyLog.open(tmp_path / "copy.db", log.signer) as copy:
        assert_same_log(log, copy, [0, 65_535, 65_536, 99_999])
    log.close()


def test_an_empty_log_round_trips_and_its_root_is_checked(tmp_path):
    log = new_log(tmp_path / "log.db")
    log.signed_checkpoint()
    assert export_log(log.path, tmp_path / "export").tree_size == 0
    result = import_log(DirectorySource(tmp_path / "export"), tmp_path / "copy.db",
                        log.signer.verifier)
    assert (result.tree_size, result.root_hash) == (0, log.root_hash())
    wrong = Checkpoint(ORIGIN, 0, hashlib.sha256(b"not empty").digest())
    (tmp_path / "export/checkpoint").write_text(sign_checkpoint(wrong, log.signer, ORIGIN))
    with pytest.raises(MirrorError, match="another root"):
        import_log(DirectorySource(tmp_path / "export"), tmp_path / "bad.db",
                   log.signer.verifier)
    log.close()


def test_a_served_log_is_exported_through_its_url(small, tmp_path):
    from tests.helpers.log_server import running_server

    log, export = small
    pub = tmp_path / "log.pub"
    pub.write_bytes(log.signer.public_pem())
    with running_server(log) as url:
        result = mg("log", "export", tmp_path / "mirror", "--url", url, "--log-key", pub)
    assert result.exit_code == 0, result.output
    copy = import_log(DirectorySource(tmp_path / "mirror"), tmp_path / "copy.db",
                      log.signer.verifier)
    assert (copy.tree_size, copy.root_hash) == (SMALL, log.root_hash())
    for path in ("tile/entries/001", "mgattest/set/001", "tile/1/000.p/2"):
        assert (tmp_path / "mirror" / path).read_bytes() == (export / path).read_bytes()


# --- incremental, atomic, fork-refusing export -------------------------------------------

def test_incremental_export_adds_only_new_files(tmp_path):
    log = new_log(tmp_path / "log.db")
    append_synthetic(log, 0, 300)
    log.signed_checkpoint()
    first = export_log(log.path, tmp_path / "export")
    full_tile = tmp_path / "export/tile/0/000"
    inode = full_tile.stat().st_ino
    append_synthetic(log, 300, 700)
    log.signed_checkpoint()
    second = export_log(log.path, tmp_path / "export")
    # new: tile/0/001, tile/0/002.p/188, tile/1/000.p/2, two bundles and their SET files,
    # and the checkpoint; tile/0/000, tile/entries/000 and mgattest/set/000 were there
    assert (first.tree_size, second.tree_size) == (300, 700)
    assert (second.written, second.unchanged) == (8, 3)
    assert full_tile.stat().st_ino == inode  # never rewritten
    assert export_log(log.path, tmp_path / "export").written == 0  # nothing new: no writes
    assert not list((tmp_path / "export").rglob("*.tmp"))
    imported = import_log(DirectorySource(tmp_path / "export"), tmp_path / "copy.db",
                          log.signer.verifier)
    assert imported.root_hash == log.root_hash()
    log.close()


def test_export_at_an_older_checkpoint_than_the_directory_holds_is_refused(tmp_path):
    log, old_note = exported_after_growth(tmp_path, 10, 20)
    with pytest.raises(MirrorError, match="ahead of the checkpoint"):
        export_log(log.path, tmp_path / "export", note=old_note)
    log.close()


def test_exporting_a_forked_log_over_an_export_is_refused(tmp_path):
    signer = LogSigner.generate("ed25519")
    honest = new_log(tmp_path / "a.db", signer)
    fork = new_log(tmp_path / "b.db", signer)  # same key and origin, other history
    append_synthetic(honest, 0, 20)
    append_synthetic(fork, 0, 10)
    append_synthetic(fork, 100, 110)
    honest.signed_checkpoint()
    fork.signed_checkpoint()
    export_log(honest.path, tmp_path / "export")
    before = (tmp_path / "export/checkpoint").read_bytes()
    with pytest.raises(MirrorError, match="another root than this log") as info:
        export_log(fork.path, tmp_path / "export")
    assert info.value.where.endswith("checkpoint")
    assert (tmp_path / "export/checkpoint").read_bytes() == before
    # with the checkpoint gone, the differing tile itself stops the export
    (tmp_path / "export/checkpoint").unlink()
    with pytest.raises(MirrorError, match="other bytes than this log") as info:
        export_log(fork.path, tmp_path / "export")
    assert "mgattest/set/000.p/20" in info.value.where or "tile/" in info.value.where
    assert not (tmp_path / "export/checkpoint").exists()
    honest.close()
    fork.close()


def test_export_needs_an_issued_checkpoint(tmp_path):
    log = new_log(tmp_path / "log.db")
    append_synthetic(log, 0, 3)
    with pytest.raises(Exception, match="issued no checkpoint"):
        export_log(log.path, tmp_path / "export")
    log.close()


# --- import refuses what does not verify ----------------------------------------------

@pytest.mark.parametrize("path, offset, named", [
    ("tile/0/001", 5 * 32, ["tile/0/001", "log index 261"]),  # hash 5 of the second tile
    ("tile/1/000.p/2", 32 + 7, ["tile/1/000.p/2 hash 1", "leaves 256..511"]),
])
def test_a_tampered_hash_tile_is_refused(small, tmp_path, path, offset, named):
    log, export = small
    copy = tampered_copy(export, tmp_path)
    flip(copy / path, offset)
    exc = refused(copy, tmp_path, log)
    assert all(part in described(exc) for part in named), described(exc)


def test_a_tampered_entry_bundle_byte_is_refused(small, tmp_path):
    log, export = small
    copy = tampered_copy(export, tmp_path)
    bundle = copy / "tile/entries/001"
    body = log.entry_by_index(256 + 9).body
    offset = bundle.read_bytes().index(body) + len(body) // 2  # inside log index 265
    flip(bundle, offset)
    exc = refused(copy, tmp_path, log)
    assert "log index 265" in described(exc) and "tile/entries/001" in described(exc)


def test_a_truncated_entry_bundle_is_refused(small, tmp_path):
    log, export = small
    copy = tampered_copy(export, tmp_path)
    bundle = copy / "tile/entries/002.p/88"
    bundle.write_bytes(bundle.read_bytes()[:-10])
    exc = refused(copy, tmp_path, log)
    assert "tile/entries/002.p/88" in described(exc)
    # cut at an entry boundary: well-formed, but an entry short
    bundle.write_bytes((export / "tile/entries/002.p/88").read_bytes()
                       [:-(2 + len(log.entry_by_index(SMALL - 1).body))])
    exc = refused(copy, tmp_path, log)
    assert "holds 87 entries, not 88" in str(exc)


@pytest.mark.parametrize("path", ["tile/0/001", "tile/1/000.p/2", "tile/entries/000",
                                  "mgattest/set/002.p/88", "checkpoint"])
def test_a_missing_file_is_refused(small, tmp_path, path):
    log, export = small
    copy = tampered_copy(export, tmp_path)
    (copy / path).unlink()
    exc = refused(copy, tmp_path, log)
    assert "missing" in str(exc) and path in str(exc)


def test_a_checkpoint_with_a_bad_signature_is_refused(small, tmp_path):
    log, export = small
    copy = tampered_copy(export, tmp_path)
    note = (copy / "checkpoint").read_text()
    sig_start = note.index("\u2014 ")
    sig_b64 = note[sig_start:].split(" ")[2]
    forged = sig_b64[:10] + ("A" if sig_b64[10] != "A" else "B") + sig_b64[11:]
    (copy / "checkpoint").write_text(note.replace(sig_b64, forged))
    exc = refused(copy, tmp_path, log, CheckpointError)
    assert "does not verify" in str(exc)


def test_a_checkpoint_by_another_key_is_refused(small, tmp_path):
    log, export = small
    stranger = LogSigner.generate("ed25519")
    db = tmp_path / "imported.db"
    with pytest.raises(CheckpointError, match="no signature by a trusted log key"):
        import_log(DirectorySource(export), db, stranger.verifier)
    assert not db.exists()


def test_a_validly_signed_checkpoint_with_another_root_is_refused(small, tmp_path):
    log, export = small
    copy = tampered_copy(export, tmp_path)
    wrong = Checkpoint(ORIGIN, SMALL, hashlib.sha256(b"not the root").digest())
    (copy / "checkpoint").write_text(sign_checkpoint(wrong, log.signer, log.key_name))
    exc = refused(copy, tmp_path, log)
    assert exc.what == "checkpoint root" and f"size {SMALL}" in str(exc)


def test_a_checkpoint_of_a_smaller_tree_imports_only_that_tree(small, tmp_path):
    """The checkpoint, not the files present, says what is imported."""
    log, export = small
    copy = tampered_copy(export, tmp_path)
    (copy / "checkpoint").write_text(log.signed_checkpoint(512))
    result = import_log(DirectorySource(copy), tmp_path / "copy.db", log.signer.verifier)
    assert (result.tree_size, result.root_hash) == (512, log.root_hash(512))


def test_a_missing_partial_tile_is_read_from_the_full_tile(tmp_path):
    """tlog-tiles lets a log delete partial tiles once the full tile exists."""
    log, old_note = exported_after_growth(tmp_path, 100, 300)
    (tmp_path / "export/checkpoint").write_text(old_note)
    assert not (tmp_path / "export/tile/0/000.p/100").exists()
    result = import_log(DirectorySource(tmp_path / "export"), tmp_path / "copy.db",
                        log.signer.verifier)
    assert (result.tree_size, result.root_hash) == (100, log.root_hash(100))
    log.close()


@pytest.mark.parametrize("field, offset", [("integrated time", 7), ("SET", 12)])
def test_a_tampered_entry_timestamp_is_refused(small, tmp_path, field, offset):
    log, export = small
    copy = tampered_copy(export, tmp_path)
    flip(copy / "mgattest/set/000", offset)  # the record of log index 0
    exc = refused(copy, tmp_path, log, SETError)
    assert "log index 0" in str(exc)


def test_an_export_of_another_origin_is_refused_when_the_origin_is_pinned(small, tmp_path):
    log, export = small
    with pytest.raises(CheckpointError, match="origin"):
        import_log(DirectorySource(export), tmp_path / "x.db", log.signer.verifier,
                   origin="other.test/log")


# --- importing into an existing database -------------------------------------------------

def test_import_extends_a_database_that_is_a_prefix(tmp_path):
    log = new_log(tmp_path / "log.db")
    append_synthetic(log, 0, 300)
    log.signed_checkpoint()
    export_log(log.path, tmp_path / "old")
    import_log(DirectorySource(tmp_path / "old"), tmp_path / "copy.db", log.signer.verifier)
    append_synthetic(log, 300, 700)
    log.signed_checkpoint()
    export_log(log.path, tmp_path / "new")
    result = import_log(DirectorySource(tmp_path / "new"), tmp_path / "copy.db",
                        log.signer.verifier)
    assert (result.tree_size, result.appended) == (700, 400)
    with TransparencyLog.open(tmp_path / "copy.db", log.signer) as copy:
        assert_same_log(log, copy, [0, 299, 300, 699])
    # importing the same export again adds nothing
    again = import_log(DirectorySource(tmp_path / "new"), tmp_path / "copy.db",
                       log.signer.verifier)
    assert again.appended == 0
    log.close()


def test_import_into_a_database_that_is_not_a_prefix_is_refused(tmp_path):
    signer = LogSigner.generate("ed25519")
    honest = new_log(tmp_path / "a.db", signer)
    fork = new_log(tmp_path / "b.db", signer)
    append_synthetic(honest, 0, 50)
    append_synthetic(fork, 0, 20)
    append_synthetic(fork, 1000, 1010)
    honest.signed_checkpoint()
    export_log(honest.path, tmp_path / "export")
    with pytest.raises(MirrorError, match="log index 20") as info:
        import_log(DirectorySource(tmp_path / "export"), fork.path, signer.verifier)
    assert "not a prefix" in str(info.value)
    assert fork.size == 30  # untouched
    append_synthetic(fork, 1010, 1040)  # longer than the export
    with pytest.raises(MirrorError, match="more than the export"):
        import_log(DirectorySource(tmp_path / "export"), fork.path, signer.verifier)
    other = new_log(tmp_path / "c.db")  # another log altogether
    with pytest.raises(MirrorError, match="another log"):
        import_log(DirectorySource(tmp_path / "export"), other.path, signer.verifier)
    assert not list(tmp_path.glob("*.tmp*"))
    for log in (honest, fork, other):
        log.close()


# --- a static mirror --------------------------------------------------------------------

@pytest.fixture()
def static_mirror(small) -> Iterator[str]:
    """The small export served by ``python -m http.server`` on 127.0.0.1."""
    _, export = small
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1", "--directory", str(export)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, url + "/checkpoint", deadline=20)
        yield url
    finally:
        stop_processes([proc])


def test_a_static_mirror_verifies_like_the_log(small, static_mirror, tmp_path):
    log, export = small
    # our tile client reads the mirror
    with RekorClient(static_mirror) as client:
        cp = verify_checkpoint(client.checkpoint(), [log.signer.verifier], origin=ORIGIN)
        assert (cp.size, cp.root_hash) == (SMALL, log.root_hash())
        assert client.tile("tile/0/001") == (export / "tile/0/001").read_bytes()
    # a verified rebuild from the mirror serves proofs that verify a real signed entry
    result = import_log(URLSource(static_mirror), tmp_path / "mirror.db", log.signer.verifier)
    assert result.root_hash == log.root_hash()
    trusted = [TrustedLog.for_verifier(log.signer.verifier, origin=ORIGIN)]
    with TransparencyLog.open(tmp_path / "mirror.db", log.signer) as mirror:
        entry = mirror.entry_by_index(1)  # a real hashedrekord with its signature
        bundle_entry = entry.to_bundle_entry(mirror.inclusion_proof(1))
        assert bundle_entry == log.entry_by_index(1).to_bundle_entry(log.inclusion_proof(1))
        verified = verify_entry(bundle_entry, trusted, origin=ORIGIN,
                                require_inclusion_proof=True)
        assert (verified.log_index, verified.inclusion_proof_verified, verified.set_verified) \
            == (1, True, True)


def test_a_mirror_of_the_mirror_is_byte_identical(small, static_mirror, tmp_path):
    log, export = small
    pub = tmp_path / "log.pub"
    pub.write_bytes(log.signer.public_pem())
    result = mg("log", "export", tmp_path / "again", "--url", static_mirror, "--log-key", pub,
                "--origin", ORIGIN)
    assert result.exit_code == 0, result.output
    for path in export.rglob("*"):
        if path.is_file():
            assert (tmp_path / "again" / path.relative_to(export)).read_bytes() \
                == path.read_bytes(), path


def test_a_mirror_missing_a_tile_is_refused(small, static_mirror, tmp_path, monkeypatch):
    log, export = small
    hidden = export / "tile/0/001"
    data = hidden.read_bytes()
    hidden.unlink()
    try:
        with pytest.raises(MirrorError, match="tile/0/001 is missing from the mirror"):
            import_log(URLSource(static_mirror), tmp_path / "m.db", log.signer.verifier)
    finally:
        hidden.write_bytes(data)
    assert not (tmp_path / "m.db").exists()


# --- the CLI --------------------------------------------------------------------------

def test_cli_export_and_import(small, tmp_path):
    log, export = small
    key = tmp_path / "log.pem"
    key.write_bytes(log.signer.private_pem())
    pub = tmp_path / "log.pub"
    pub.write_bytes(log.signer.public_pem())
    result = mg("log", "export", tmp_path / "out", "--db", log.path, "--key", key)
    assert result.exit_code == 0, result.output
    assert f"exported tree of {SMALL} entries" in result.output
    result = mg("log", "import", tmp_path / "out", "--db", tmp_path / "copy.db",
                "--log-key", pub, "--origin", ORIGIN)
    assert result.exit_code == 0, result.output
    assert f"{SMALL} entries added" in result.output
    flip(tmp_path / "out/tile/entries/000", 40)
    result = mg("log", "import", tmp_path / "out", "--db", tmp_path / "bad.db",
                "--log-key", pub)
    assert result.exit_code == 1
    assert "tile/entries/000" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "bad.db").exists()


@pytest.mark.parametrize("args, message", [
    (["--db", "DB", "--url", "http://127.0.0.1:9"], "exactly one of --db and --url"),
    (["--url", "http://127.0.0.1:9"], "--url needs --log-key"),
    (["--db", "missing.db"], "no log database"),
])
def test_cli_export_usage_errors(tmp_path, args, message):
    result = mg("log", "export", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.output


def test_cli_import_of_a_missing_directory(tmp_path):
    pub = tmp_path / "log.pub"
    pub.write_bytes(LogSigner.generate("ed25519").public_pem())
    result = mg("log", "import", tmp_path / "nowhere", "--db", tmp_path / "x.db",
                "--log-key", pub)
    assert result.exit_code == 1 and "is not a directory" in result.output
    assert os.listdir(tmp_path) == ["log.pub"]


# --- the attestations beside dsse entries (mgattest/attestation/...) ---------------------

ATTESTED = 514  # bundle 0 and the partial bundle 2 hold dsse entries, bundle 1 does not


SHARED, ONLY_FIRST, ONLY_LAST = (hashlib.sha256(b"%d" % i).hexdigest() for i in range(3))
FIRST_STATEMENT = in_toto_statement([SHARED, ONLY_FIRST])
LAST_STATEMENT = in_toto_statement([ONLY_LAST, SHARED])


def fill_attested(log: TransparencyLog, end: int) -> None:
    """Entries 0 .. end-1 of the attested log: real signed hashedrekord and dsse entries
    (1: a Statement, 2: a non-in-toto payload the log keeps no attestation for, 512:
    another Statement sharing a subject with 1) between synthetic ones."""
    key = new_key()
    real = {0: hashedrekord(key, b"artifact"), 1: dsse_entry(key, FIRST_STATEMENT),
            2: dsse_entry(key, b"plain text", "text/plain"), 512: dsse_entry(key, LAST_STATEMENT)}
    start = log.size
    while start < end:
        if start in real:
            log.append(real[start])
            start += 1
            continue
        stop = min([end] + [i for i in real if i > start])
        append_synthetic(log, start, stop)
        start = stop


@pytest.fixture(scope="module")
def attested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TransparencyLog, Path]]:
    """(log, export dir) of a log whose dsse entries carry in-toto Statements."""
    base = tmp_path_factory.mktemp("attested")
    log = new_log(base / "log.db")
    fill_attested(log, ATTESTED)
    assert log.entry_by_index(1).attestation == FIRST_STATEMENT
    assert log.entry_by_index(2).attestation is None
    log.signed_checkpoint()
    export_log(log.path, base / "export")
    yield log, base / "export"
    log.close()


def subject_hits(url: str, log: TransparencyLog, digest: str) -> list[int]:
    """Log indexes ``search_log`` verifies as holding a Statement subject ``digest``."""
    trusted = [TrustedLog.for_verifier(log.signer.verifier, origin=ORIGIN)]
    result = search_log(url, SearchQuery.by_sha256(digest), trusted, origin=ORIGIN)
    assert result.unverifiable == []
    assert all(f"sha256:{digest}" in h.terms.subject_digests for h in result.hits)
    return [h.entry.log_index for h in result.hits]


def test_attestations_are_exported_as_the_server_serves_them(attested):
    from tests.helpers.log_server import running_server

    log, export = attested
    files = {p.relative_to(export).as_posix()
             for p in (export / "mgattest/attestation").rglob("*") if p.is_file()}
    assert files == {"mgattest/attestation/000", "mgattest/attestation/002.p/2"}
    with running_server(log) as url, RekorClient(url) as client:
        for path in files:
            assert (export / path).read_bytes() == client.static_file(path), path
        with pytest.raises(LogRequestError) as info:  # bundle 1 holds no dsse entry
            client.static_file("mgattest/attestation/001")
        assert info.value.status == 404
    records = decode_attestations((export / "mgattest/attestation/000").read_bytes(),
                                  where="000")
    assert records[:3] == [None, FIRST_STATEMENT, None] and set(records[3:]) == {None}
    assert decode_attestations((export / "mgattest/attestation/002.p/2").read_bytes(),
                               where="002") == [LAST_STATEMENT, None]


def test_an_imported_log_finds_the_same_entries_by_subject_digest(attested, tmp_path):
    from tests.helpers.log_server import running_server

    log, export = attested
    import_log(DirectorySource(export), tmp_path / "copy.db", log.signer.verifier, origin=ORIGIN)
    with TransparencyLog.open(tmp_path / "copy.db", log.signer) as copy:
        assert_same_log(log, copy, [0, 1, 2, 512, 513])
        with running_server(log) as original_url, running_server(copy) as copy_url:
            for digest, expected in ((SHARED, [1, 512]), (ONLY_FIRST, [1]),
                                     (ONLY_LAST, [512])):
                assert subject_hits(original_url, log, digest) == expected, digest
                assert subject_hits(copy_url, copy, digest) == expected, digest


def test_import_extends_a_prefix_with_its_attestations_and_search_keys(attested, tmp_path):
    """The entries appended to an existing database are searchable like the rest."""
    log, export = attested
    at_three = sign_checkpoint(Checkpoint(ORIGIN, 3, log.root_hash(3)), log.signer, ORIGIN)
    export_log(log.path, tmp_path / "prefix", note=at_three)
    db = tmp_path / "mirror.db"
    import_log(DirectorySource(tmp_path / "prefix"), db, log.signer.verifier)
    assert import_log(DirectorySource(export), db, log.signer.verifier).appended == ATTESTED - 3
    with TransparencyLog.open(db, log.signer) as mirror:
        assert mirror.entry_by_index(512).attestation == LAST_STATEMENT
        position = {e: i for i, e in enumerate(mirror._store.iter_leaf_hashes())}
        found = [position[bytes.fromhex(u)] for u in mirror.search(SearchQuery.by_sha256(SHARED))]
        assert found == [1, 512]


def rewrite_record(path: Path, index: int, data: bytes | None) -> None:
    records = decode_attestations(path.read_bytes(), where=str(path))
    records[index] = data
    path.write_bytes(encode_attestations(records))


@pytest.mark.parametrize("index, data, named", [
    (1, FIRST_STATEMENT.replace(ONLY_FIRST.encode(), b"00" * 32), "log index 1: the attestation"),
    (1, LAST_STATEMENT, "log index 1: the attestation"),
    (2, FIRST_STATEMENT, "log index 2: the attestation"),  # kept none: commits to another
    (0, FIRST_STATEMENT, "log index 0: .* commits to no payload"),  # a hashedrekord
])
def test_an_attestation_the_entry_does_not_commit_to_is_refused(attested, tmp_path, index,
                                                                 data, named):
    log, export = attested
    copy = tampered_copy(export, tmp_path)
    rewrite_record(copy / "mgattest/attestation/000", index, data)
    exc = refused(copy, tmp_path, log)
    assert re.search(named, str(exc)) and "mgattest/attestation/000" in described(exc)


def test_a_flipped_byte_in_an_attestation_file_is_refused(attested, tmp_path):
    log, export = attested
    copy = tampered_copy(export, tmp_path)
    flip(copy / "mgattest/attestation/002.p/2", 40)
    assert "log index 512" in str(refused(copy, tmp_path, log))


@pytest.mark.parametrize("change, named", [
    (lambda data: data[:-1], "holds 1 attestation records, not 2"),
    (lambda data: data + b"\x00", "holds 3 attestation records, not 2"),
    (lambda data: b"\x07" + data[1:], "record 0 of .* is malformed"),
    (lambda data: data[:1] + b"\xff\xff\xff\xff" + data[5:], "claims a 4294967295-byte"),
])
def test_a_malformed_attestation_file_is_refused(attested, tmp_path, change, named):
    log, export = attested
    copy = tampered_copy(export, tmp_path)
    path = copy / "mgattest/attestation/002.p/2"
    path.write_bytes(change(path.read_bytes()))
    assert re.search(named, str(refused(copy, tmp_path, log)))


def test_a_missing_attestation_file_is_refused_only_where_dsse_entries_are(attested, tmp_path):
    log, export = attested
    copy = tampered_copy(export, tmp_path)
    (copy / "mgattest/attestation/000").unlink()
    exc = refused(copy, tmp_path, log)
    assert "log index 1: mgattest/attestation/000 is missing" in str(exc)
    # a log of hashedrekord entries only has no attestation file to miss (see SMALL)
    assert not any((export / "mgattest/attestation").rglob("001"))


def test_a_served_and_a_static_mirror_carry_the_attestations(attested, tmp_path):
    from tests.helpers.log_server import running_server

    log, export = attested
    pub = tmp_path / "log.pub"
    pub.write_bytes(log.signer.public_pem())
    with running_server(log) as url:
        assert mg("log", "export", tmp_path / "mirror", "--url", url, "--log-key",
                  pub).exit_code == 0
    for path in ("mgattest/attestation/000", "mgattest/attestation/002.p/2"):
        assert (tmp_path / "mirror" / path).read_bytes() == (export / path).read_bytes()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1", "--directory", str(export)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_server(proc, f"http://127.0.0.1:{port}/checkpoint", deadline=20)
        import_log(URLSource(f"http://127.0.0.1:{port}"), tmp_path / "static.db",
                   log.signer.verifier, origin=ORIGIN)
    finally:
        stop_processes([proc])
    with TransparencyLog.open(tmp_path / "static.db", log.signer) as copy:
        assert copy.root_hash() == log.root_hash()
        assert copy.entry_by_index(1).attestation == FIRST_STATEMENT
        assert copy.entry_by_index(2).attestation is None
