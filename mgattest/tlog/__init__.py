"""mgattest.tlog — a Rekor-compatible transparency log and offline proof verification.

Entry points (re-exported lazily, PEP 562: importing ``mgattest.tlog.errors`` or
``mgattest.tlog.merkle``, as ``attest`` does, loads neither the log, its store nor its
server):

- the log: :class:`TransparencyLog` (append-only SQLite log with a signing key) ->
  :class:`LogEntry`, :class:`InclusionProof`; :class:`LogStore` (its storage);
  :func:`serve` (Rekor v1 REST + tlog-tiles); :class:`RekorClient` (our server, Rekor
  v1 and v2; :class:`LogUnavailableError` on an outage);
- keys: :class:`LogSigner`, :class:`LogVerifier`, :func:`log_id_for`, :func:`c2sp_key_id`,
  :func:`note_key_hint`, :func:`check_rsa_parameters` (the one RSA rule),
  :func:`pem_kind_problem`;
- checkpoints: :class:`Checkpoint`, :func:`sign_checkpoint`, :func:`parse_signed_note`,
  :func:`verify_checkpoint`;
- entries: :func:`canonicalize` -> :class:`CanonicalEntry`, :func:`parse_body`;
  :func:`parse_transparency_entry` -> :class:`TransparencyLogEntry` (a bundle's entry,
  parsed once); entries as files carry them: :func:`entry_from_json`,
  :func:`entries_from_bundle`, :func:`verify_entries`;
- offline verification: :func:`trusted_logs_from_root` -> :class:`TrustedLog`,
  :func:`verify_entry` -> :class:`VerifiedEntry`, :func:`verify_rekor_entry`,
  :func:`verify_consistency_notes`;
- backup and mirroring (C2SP tlog-tiles on disk): :func:`export_log` ->
  :class:`ExportResult`; :func:`import_log` (from a :class:`DirectorySource` or
  :class:`URLSource`, both :class:`TileSource`) -> :class:`ImportResult`; :class:`MirrorError` on data that does
  not verify;
- monitoring from outside: :class:`LogMonitor` (-> :class:`PollResult`), :func:`verify_note`,
  :func:`check_consistent`, :func:`parse_consistency_proof`; :func:`scan_tiles` ->
  :class:`TileScan` (new entries read from tiles, verified against a signed root);
  evidence of an inconsistent log: :class:`LogInconsistencyError` carries an
  :class:`Inconsistency`, checked offline by :func:`read_evidence` and
  :func:`verify_evidence` -> :class:`EvidenceVerdict` (:class:`EvidenceError`).
- search (Rekor v1 ``/api/v1/index/retrieve``): :class:`SearchQuery`
  (:class:`SearchQueryError`), :func:`search_log` -> :class:`SearchResult`
  (:class:`SearchHit` verified offline, :class:`UnverifiedHit`), :class:`EntryTerms`
  (what an entry can be found by), :func:`rebuild_search_index` (existing or
  imported databases); :func:`bundle_from_log_entry` (a dsse entry plus the in-toto
  Statement the log serves as ``attestation.data`` -> a bundle to verify);
- witnesses (C2SP tlog-witness / tlog-cosignature): :class:`Witness` with its
  :class:`WitnessState`, :func:`serve_witness`; keys :class:`WitnessSigner`,
  :class:`WitnessKey`, :func:`parse_vkey`; :func:`verify_cosignatures` ->
  :class:`Cosignatures`; the log's side: :class:`WitnessEndpoint`,
  :func:`request_cosignature`.

Public modules: :mod:`mgattest.tlog.errors` (typed errors, re-exported here) and
:mod:`mgattest.tlog.merkle` (pure RFC 6962/9162 Merkle functions). Every other module
is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgattest._lazy import LazyExports

if TYPE_CHECKING:  # the public names, for type checkers; at run time they load lazily
    from mgattest.tlog._checkpoint import Checkpoint, parse_signed_note, sign_checkpoint, \
        verify_checkpoint
    from mgattest.tlog._entries import CanonicalEntry, canonicalize, parse_body
    from mgattest.tlog.errors import (
        CheckpointError,
        ConsistencyProofError,
        DuplicateEntryError,
        EntryRejectedError,
        InclusionProofError,
        LogEntryError,
        LogError,
        SETError,
        TrustRootError,
        UnknownEntryError,
    )
    from mgattest.tlog._keys import LogSigner, LogVerifier, c2sp_key_id, log_id_for, note_key_hint
    from mgattest.tlog._log import InclusionProof, LogEntry, TransparencyLog
    from mgattest.tlog._trust import TrustedLog, trusted_logs_from_root
    from mgattest.tlog._verify import (
        VerifiedEntry,
        verify_consistency_notes,
        verify_entry,
        verify_rekor_entry,
    )
    from mgattest.tlog._client import LogUnavailableError, RekorClient
    from mgattest.tlog._entry_files import entries_from_bundle, entry_from_json, verify_entries
    from mgattest.tlog._keys import check_rsa_parameters, pem_kind_problem
    from mgattest.tlog._monitor import (
        LogMonitor,
        check_consistent,
        parse_consistency_proof,
        verify_note,
    )
    from mgattest.tlog._server import serve
    from mgattest.tlog._store import LogStore
    from mgattest.tlog._transparency_entry import TransparencyLogEntry, parse_transparency_entry
    from mgattest.tlog._transparency_entry import TransparencyLogEntryJSON
    from mgattest.tlog._entry_files import EntryToVerify
    from mgattest.tlog._search import SearchQuery, SearchQueryError, rebuild_search_index
    from mgattest.tlog._search_client import SearchHit, SearchResult, UnverifiedHit, search_log
    from mgattest.tlog._search_terms import EntryTerms
    from mgattest.tlog._entry_bundle import bundle_from_log_entry
    from mgattest.tlog._export import ExportResult, export_log
    from mgattest.tlog._import import DirectorySource, ImportResult, TileSource, URLSource, \
        import_log
    from mgattest.tlog.errors import MirrorError
    from mgattest.tlog._monitor import PollResult, default_evidence_path, verify_extension
    from mgattest.tlog._evidence import (
        EvidenceError,
        EvidenceVerdict,
        Inconsistency,
        LogInconsistencyError,
        read_evidence,
        verify_evidence,
    )
    from mgattest.tlog._tilescan import TileScan, scan_tiles
    from mgattest.tlog._cosign import (
        Cosignatures,
        WitnessKey,
        WitnessSigner,
        parse_vkey,
        verify_cosignatures,
    )
    from mgattest.tlog._witness import Witness, WitnessRefusal, WitnessState
    from mgattest.tlog._witness_server import serve_witness
    from mgattest.tlog._witnessing import WitnessEndpoint, request_cosignature

__all__ = [
    "c2sp_key_id", "CanonicalEntry", "canonicalize", "check_consistent",
    "check_rsa_parameters", "Checkpoint", "CheckpointError", "ConsistencyProofError",
    "DuplicateEntryError", "entries_from_bundle", "entry_from_json",
    "EntryRejectedError", "EntryToVerify", "InclusionProof", "InclusionProofError",
    "log_id_for", "LogEntry", "LogEntryError", "LogError", "LogMonitor", "LogSigner",
    "LogStore", "LogUnavailableError", "LogVerifier", "note_key_hint", "parse_body",
    "parse_consistency_proof", "parse_signed_note", "parse_transparency_entry",
    "pem_kind_problem", "RekorClient", "serve", "SETError", "sign_checkpoint",
    "TransparencyLog", "TransparencyLogEntry", "TransparencyLogEntryJSON",
    "trusted_logs_from_root", "TrustedLog", "TrustRootError", "UnknownEntryError",
    "VerifiedEntry", "verify_checkpoint", "verify_consistency_notes", "verify_entries",
    "verify_entry", "verify_note", "verify_rekor_entry",
    "EntryTerms", "rebuild_search_index", "SearchHit", "SearchQuery", "SearchQueryError",
    "SearchResult", "search_log", "UnverifiedHit",
    "DirectorySource", "export_log", "ExportResult", "import_log", "ImportResult",
    "MirrorError", "TileSource", "URLSource",
    "verify_extension", "PollResult", "default_evidence_path", "EvidenceError",
    "EvidenceVerdict", "Inconsistency", "LogInconsistencyError", "read_evidence",
    "verify_evidence", "TileScan", "scan_tiles", "bundle_from_log_entry",
    "Cosignatures", "parse_vkey", "request_cosignature", "serve_witness",
    "verify_cosignatures", "Witness", "WitnessEndpoint", "WitnessKey", "WitnessRefusal",
    "WitnessSigner", "WitnessState",
]

# Exports load on first use (PEP 562): importing one submodule, such as
# ``mgattest.tlog.errors`` or ``mgattest.tlog.merkle``, does not load the log, its store
# and its server dependencies.
_EXPORTS = LazyExports("mgattest.tlog", {
    "Checkpoint": "mgattest.tlog._checkpoint",
    "parse_signed_note": "mgattest.tlog._checkpoint",
    "sign_checkpoint": "mgattest.tlog._checkpoint",
    "verify_checkpoint": "mgattest.tlog._checkpoint",
    "CanonicalEntry": "mgattest.tlog._entries",
    "canonicalize": "mgattest.tlog._entries",
    "parse_body": "mgattest.tlog._entries",
    "CheckpointError": "mgattest.tlog.errors",
    "ConsistencyProofError": "mgattest.tlog.errors",
    "DuplicateEntryError": "mgattest.tlog.errors",
    "EntryRejectedError": "mgattest.tlog.errors",
    "InclusionProofError": "mgattest.tlog.errors",
    "LogEntryError": "mgattest.tlog.errors",
    "LogError": "mgattest.tlog.errors",
    "SETError": "mgattest.tlog.errors",
    "TrustRootError": "mgattest.tlog.errors",
    "UnknownEntryError": "mgattest.tlog.errors",
    "LogSigner": "mgattest.tlog._keys",
    "LogVerifier": "mgattest.tlog._keys",
    "c2sp_key_id": "mgattest.tlog._keys",
    "log_id_for": "mgattest.tlog._keys",
    "note_key_hint": "mgattest.tlog._keys",
    "InclusionProof": "mgattest.tlog._log",
    "LogEntry": "mgattest.tlog._log",
    "TransparencyLog": "mgattest.tlog._log",
    "TrustedLog": "mgattest.tlog._trust",
    "trusted_logs_from_root": "mgattest.tlog._trust",
    "VerifiedEntry": "mgattest.tlog._verify",
    "verify_consistency_notes": "mgattest.tlog._verify",
    "verify_entry": "mgattest.tlog._verify",
    "verify_rekor_entry": "mgattest.tlog._verify",
    "LogUnavailableError": "mgattest.tlog._client",
    "RekorClient": "mgattest.tlog._client",
    "bundle_from_log_entry": "mgattest.tlog._entry_bundle",
    "entries_from_bundle": "mgattest.tlog._entry_files",
    "entry_from_json": "mgattest.tlog._entry_files",
    "verify_entries": "mgattest.tlog._entry_files",
    "check_rsa_parameters": "mgattest.tlog._keys",
    "pem_kind_problem": "mgattest.tlog._keys",
    "LogMonitor": "mgattest.tlog._monitor",
    "check_consistent": "mgattest.tlog._monitor",
    "parse_consistency_proof": "mgattest.tlog._monitor",
    "verify_note": "mgattest.tlog._monitor",
    "serve": "mgattest.tlog._server",
    "LogStore": "mgattest.tlog._store",
    "TransparencyLogEntry": "mgattest.tlog._transparency_entry",
    "parse_transparency_entry": "mgattest.tlog._transparency_entry",
    "TransparencyLogEntryJSON": "mgattest.tlog._transparency_entry",
    "EntryToVerify": "mgattest.tlog._entry_files",
    "verify_extension": "mgattest.tlog._monitor",
    "EntryTerms": "mgattest.tlog._search_terms",
    "rebuild_search_index": "mgattest.tlog._search",
    "SearchHit": "mgattest.tlog._search_client",
    "SearchQuery": "mgattest.tlog._search",
    "SearchQueryError": "mgattest.tlog._search",
    "SearchResult": "mgattest.tlog._search_client",
    "search_log": "mgattest.tlog._search_client",
    "UnverifiedHit": "mgattest.tlog._search_client",
    "ExportResult": "mgattest.tlog._export",
    "export_log": "mgattest.tlog._export",
    "DirectorySource": "mgattest.tlog._import",
    "ImportResult": "mgattest.tlog._import",
    "URLSource": "mgattest.tlog._import",
    "TileSource": "mgattest.tlog._import",
    "import_log": "mgattest.tlog._import",
    "MirrorError": "mgattest.tlog.errors",
    "PollResult": "mgattest.tlog._monitor",
    "default_evidence_path": "mgattest.tlog._monitor",
    "EvidenceError": "mgattest.tlog._evidence",
    "EvidenceVerdict": "mgattest.tlog._evidence",
    "Inconsistency": "mgattest.tlog._evidence",
    "LogInconsistencyError": "mgattest.tlog._evidence",
    "read_evidence": "mgattest.tlog._evidence",
    "verify_evidence": "mgattest.tlog._evidence",
    "TileScan": "mgattest.tlog._tilescan",
    "scan_tiles": "mgattest.tlog._tilescan",
    "Cosignatures": "mgattest.tlog._cosign",
    "parse_vkey": "mgattest.tlog._cosign",
    "verify_cosignatures": "mgattest.tlog._cosign",
    "WitnessKey": "mgattest.tlog._cosign",
    "WitnessSigner": "mgattest.tlog._cosign",
    "Witness": "mgattest.tlog._witness",
    "WitnessState": "mgattest.tlog._witness",
    "WitnessRefusal": "mgattest.tlog._witness",
    "serve_witness": "mgattest.tlog._witness_server",
    "WitnessEndpoint": "mgattest.tlog._witnessing",
    "request_cosignature": "mgattest.tlog._witnessing",
})


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)


def __dir__() -> list[str]:
    return _EXPORTS.names()
