"""A bundle's log entries are parsed once, when the bundle is read, into typed entries.

Parse errors are the log's typed errors, located at ``tlogEntries[i].<field>``;
writing a bundle back stays byte-identical; the parsed entry's index and time are
claims, and only ``verify_entry`` proves them.
"""

from __future__ import annotations

import base64
import copy
from typing import Any, Callable

import pytest

from mgattest.attest._bundle import dump_bundle, load_bundle, make_bundle
from mgattest.tlog._entries import CanonicalEntry
from mgattest.tlog.errors import CheckpointError, InclusionProofError, LogEntryError, SETError
from mgattest.tlog._log import TransparencyLog
from mgattest.tlog._transparency_entry import (
    EntryInclusionProof,
    TransparencyLogEntry,
    parse_transparency_entry,
)
from mgattest.tlog._trust import TrustedLog
from mgattest.tlog._verify import verify_entry

BODY = b'{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"n":%d}}'


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("entrylog") / "log.db"
    log = TransparencyLog.init(path, origin="log.example.test/entries")
    log.append_many_canonical([CanonicalEntry("hashedrekord", "0.0.1", BODY % i)
                               for i in range(5)])
    yield log
    log.close()


def _entry_dict(log: TransparencyLog, index: int = 3) -> dict[str, Any]:
    return log.entry_by_index(index).to_bundle_entry(log.inclusion_proof(index))


def _bundle_dict(entry: dict[str, Any]) -> dict[str, Any]:
    """A key-signed v0.3 bundle shape around ``entry`` (its signature is never checked
    here: only reading is exercised)."""
    from mgattest.attest._bundle import MessageSignature

    return make_bundle(message_signature=MessageSignature("sha256", b"d" * 32, b"sig"),
                       public_key_hint="", tlog_entries=[entry])


def test_bundle_entries_are_typed_when_the_bundle_is_read(log: TransparencyLog) -> None:
    raw = _entry_dict(log)
    bundle = load_bundle(_bundle_dict(raw))
    (entry,) = bundle.tlog_entries
    assert isinstance(entry, TransparencyLogEntry)
    assert entry.claimed_log_index == 3 and entry.log_id == log.log_id
    assert (entry.kind, entry.kind_version) == ("hashedrekord", "0.0.1")
    assert entry.canonicalized_body == BODY % 3
    assert isinstance(entry.claimed_integrated_time, int)
    assert entry.inclusion_promise == log.entry_by_index(3).set_signature
    proof = log.inclusion_proof(3)
    assert entry.inclusion_proof == EntryInclusionProof(3, proof.tree_size, proof.root_hash,
                                                        tuple(proof.hashes), proof.checkpoint)


def test_claimed_values_are_named_as_claims() -> None:
    names = set(TransparencyLogEntry.__dataclass_fields__)
    assert {"claimed_log_index", "claimed_integrated_time"} <= names
    assert not {"log_index", "integrated_time"} & names


def test_writing_a_read_bundle_is_byte_identical(log: TransparencyLog) -> None:
    original = _bundle_dict(_entry_dict(log))
    bundle = load_bundle(copy.deepcopy(original))
    again = make_bundle(message_signature=bundle.message_signature, public_key_hint="",
                        tlog_entries=bundle.tlog_entries)
    assert dump_bundle(again) == dump_bundle(original)
    assert bundle.tlog_entries[0].to_dict() == original["verificationMaterial"]["tlogEntries"][0]


def test_verify_entry_takes_the_parsed_entry_or_its_dict_alike(log: TransparencyLog) -> None:
    trusted = [TrustedLog.for_verifier(log.signer.verifier, origin=log.origin)]
    raw = _entry_dict(log)
    from_dict = verify_entry(raw, trusted)
    from_parsed = verify_entry(parse_transparency_entry(raw), trusted)
    assert from_dict == from_parsed
    assert from_parsed.log_index == 3 and from_parsed.claimed_log_index == 3


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(entry: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = entry
        for key in parents:
            node = node[key]
        node[last] = value
    return mutate


SHORT_ID = base64.b64encode(b"x" * 16).decode()

# (mutation, error type, located field, message fragment): unchanged messages, new place.
BAD_FIELDS = [
    (_set("logId.keyId", SHORT_ID), LogEntryError, "logId.keyId",
     "logId.keyId is 16 bytes, expected 32"),
    (_set("kindVersion.version", "9.9.9"), LogEntryError, "kindVersion", "unknown entry kind"),
    (_set("integratedTime", "soon"), LogEntryError, "integratedTime",
     "integratedTime must be a non-negative integer"),
    (_set("canonicalizedBody", base64.b64encode(b"not json").decode()), LogEntryError,
     "canonicalizedBody", "canonicalizedBody is not JSON"),
    (_set("inclusionPromise.signedEntryTimestamp", "%%%"), SETError,
     "inclusionPromise.signedEntryTimestamp", "is not base64"),
    (_set("inclusionProof.rootHash", "%%%"), InclusionProofError, "inclusionProof.rootHash",
     "inclusionProof.rootHash is not base64"),
    (_set("inclusionProof.treeSize", -1), InclusionProofError, "inclusionProof.treeSize",
     "inclusionProof.treeSize must be a non-negative int64"),
    (_set("inclusionProof.checkpoint.envelope", ""), CheckpointError,
     "inclusionProof.checkpoint.envelope", "must be a signed note"),
]


@pytest.mark.parametrize("mutate, error, field, message", BAD_FIELDS,
                         ids=[case[2] for case in BAD_FIELDS])
def test_a_malformed_entry_fails_when_read_typed_and_located(
        log: TransparencyLog, mutate: Callable[[dict[str, Any]], None], error: type,
        field: str, message: str) -> None:
    raw = _entry_dict(log)
    mutate(raw)
    with pytest.raises(error, match=message) as info:
        load_bundle(_bundle_dict(raw), where="b.sigstore.json")
    assert info.value.where == f"b.sigstore.json tlogEntries[0].{field}"
    # The same entry given to verify_entry as a dict names the bare field, as before.
    with pytest.raises(error, match=message):
        verify_entry(raw, [])
