"""``mgattest log search`` and ``mgattest log reindex``: find entries by artifact digest,
model, public key or identity; every hit verified offline before it is shown."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from mgattest.cli._common import err, guarded, out
from mgattest.cli._log_cmds import JSON_OPTION, LOG_KEY_OPTION, ORIGIN_OPTION, \
    TRUSTED_ROOT_OPTION, log_app

if TYPE_CHECKING:
    from mgattest.tlog import SearchQuery, SearchResult

DEFAULT_LOG_URL = "http://127.0.0.1:3000"
MAX_KEY_FILE = 64 * 1024


def register(app: typer.Typer) -> None:
    """The commands join the ``log`` group (registered by ``_log_cmds``)."""


def _queries(sha256: Optional[str], model: Optional[Path], key: Optional[Path],
             identity: Optional[str], issuer: Optional[str]) -> tuple[list[SearchQuery],
                                                                     dict[str, str]]:
    """The queries of the options, and for ``--model`` the file name of each digest."""
    from mgattest.errors import InputError
    from mgattest.tlog import SearchQuery

    given = [name for name, value in (("--sha256", sha256), ("--model", model),
                                      ("--key", key), ("--identity", identity))
             if value is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --sha256, --model, --key and --identity",
                         what="usage")
    if (identity is None) != (issuer is None):
        raise InputError("--identity and --issuer go together: an identity means nothing "
                         "without the OIDC issuer that vouched for it", what="usage")
    if sha256 is not None:
        return [SearchQuery.by_sha256(sha256)], {}
    if key is not None:
        from mgattest._files import read_bounded

        pem = read_bounded(key, MAX_KEY_FILE, what="public key")
        return [SearchQuery.by_key(pem)], {}
    if identity is not None:
        return [SearchQuery.by_identity(identity, issuer)], {}
    assert model is not None
    from mgattest.attest import hash_for_signing

    digests = hash_for_signing(model)
    names: dict[str, str] = {}
    for f in digests.files:
        names.setdefault(f"sha256:{f.digest['sha256']}", f.name)
    return [SearchQuery.by_sha256(d) for d in names], names


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "unverified"
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _as_json(result: SearchResult, names: dict[str, str]) -> dict[str, object]:
    return {
        "log": result.log_url,
        "truncated": result.truncated,
        "other_issuer": result.other_issuer,
        "hits": [{
            "log_index": h.entry.log_index,
            "uuid": h.uuid,
            "kind": f"{h.entry.kind} {h.entry.kind_version}",
            "signers": h.terms.signers(),
            "integrated_time": h.entry.integrated_time,
            "integrated_time_verified": h.entry.set_verified,
            "matched": [q.describe() for q in h.matched],
            "files": sorted({names[q.sha256] for q in h.matched
                             if q.sha256 is not None and q.sha256 in names}),
            "subject_digests": sorted(h.terms.subject_digests),
            "hashes": sorted(h.terms.hashes),
        } for h in result.hits],
        "unverifiable": [{"uuid": u.uuid, "reason": u.reason} for u in result.unverifiable],
    }


def _print_table(result: SearchResult, names: dict[str, str]) -> None:
    """One line per verified hit; times are the SET-verified integrated times."""
    if not result.hits:
        out(f"no verified entries in {result.log_url}")
    else:
        out(f"{'INDEX':>10}  {'UUID':<17}  {'KIND':<12}  {'INTEGRATED (SET)':<20}  "
            "SIGNER / DIGESTS")
    for h in result.hits:
        matched = [names.get(q.sha256 or "", q.describe()) for q in h.matched]
        digests = sorted(h.terms.subject_digests) or sorted(h.terms.hashes)
        shown = ", ".join(d[:19] + "…" for d in digests[:3])
        if len(digests) > 3:
            shown += f" (+{len(digests) - 3})"
        out(f"{h.entry.log_index!s:>10}  {h.uuid[:16]}…  {h.entry.kind:<12}  "
            f"{_when(h.entry.integrated_time):<20}  {'; '.join(h.terms.signers())} / "
            f"{shown} (matched {', '.join(matched)})")
    if result.other_issuer:
        err(f"note: {result.other_issuer} verified entries carry that identity from another "
            "OIDC issuer (not shown)")
    if result.truncated:
        err("note: the log answered with its maximum number of entries; there may be more")


@log_app.command("search")
@guarded
def search_cmd(
    sha256: Optional[str] = typer.Option(None, "--sha256",
                                         help="Artifact or subject digest (hex)."),
    model: Optional[Path] = typer.Option(None, "--model",
                                         help="Model file or directory: search every file."),
    key: Optional[Path] = typer.Option(None, "--key", help="Signer public key (PEM)."),
    identity: Optional[str] = typer.Option(None, "--identity",
                                           help="Certificate identity (e-mail or URI)."),
    issuer: Optional[str] = typer.Option(None, "--issuer",
                                         help="OIDC issuer of --identity."),
    log: str = typer.Option(DEFAULT_LOG_URL, "--log", help="Rekor v1 log URL."),
    log_key: Optional[Path] = LOG_KEY_OPTION,
    trusted_root: Optional[Path] = TRUSTED_ROOT_OPTION,
    origin: Optional[str] = ORIGIN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Search a log; show only entries verified offline that hold what was searched.

    Exit 1 when the log named entries that do not verify or do not hold the query.
    """
    from mgattest.cli._log_cmds import _trusted_logs
    from mgattest.errors import VerificationError
    from mgattest.tlog import search_log

    queries, names = _queries(sha256, model, key, identity, issuer)
    trusted = _trusted_logs(log_key, trusted_root, origin)
    result = search_log(log, queries, trusted, origin=origin)
    if as_json:
        out(json.dumps(_as_json(result, names), indent=2))
    else:
        _print_table(result, names)
        for u in result.unverifiable:
            err(f"unverifiable: {u.uuid}: {u.reason}")
    if result.unverifiable:
        raise VerificationError(
            f"{len(result.unverifiable)} entr{'y' if len(result.unverifiable) == 1 else 'ies'}"
            f" named by the log's index could not be verified as matches (shown apart, "
            "never as hits)", what="search", where=result.log_url)


@log_app.command("reindex")
@guarded
def reindex_cmd(db: Path = typer.Option(..., "--db", help="The log's SQLite file.")) -> None:
    """Build the search index of an existing or imported log database."""
    from mgattest.tlog import LogStore, rebuild_search_index

    store = LogStore.open(str(db))
    try:
        count = rebuild_search_index(store)
    finally:
        store.close()
    out(f"indexed {count} entries of {db}")
