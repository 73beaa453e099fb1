"""``mgattest sign``, ``attest``, ``keygen`` and ``trust export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from mgattest.cli._common import err, guarded, out
from mgattest.cli._progress import hashing_progress

def register(app: typer.Typer) -> None:
    """Add the signing commands to the app.

    ``trust export`` joins the ``trust`` group of ``mgattest.cli.ca_cmds`` (which also
    holds ``trust private``); only without that module does it get a group of its own.
    """
    app.command("sign")(sign_cmd)
    app.command("attest")(attest_cmd)
    app.command("keygen")(keygen_cmd)
    try:
        from mgattest.cli.ca_cmds import trust_app
    except ImportError:
        trust_app = typer.Typer(help="Trusted roots for verifiers.", no_args_is_help=True)
        app.add_typer(trust_app, name="trust")
    trust_app.command("export")(trust_export_cmd)


# --------------------------------------------------------------------------- helpers

def load_signing_key(key: Path, password_env: Optional[str], password_prompt: bool) -> Any:
    """Load a signer, asking for the password the way the user chose."""
    from mgattest.attest.keys import load_signer, resolve_password

    password = resolve_password(password_env, password_prompt)
    return load_signer(key, password)


def _log_target(log: Optional[str], log_db: Optional[Path], no_log: bool,
                log_key: Optional[Path] = None) -> Any:
    from mgattest.attest.sign import LogTarget
    from mgattest.errors import InputError

    target = LogTarget.from_options(url=log, db=str(log_db) if log_db else None,
                                    no_log=no_log)
    if log_key is not None:
        if log_db is None:
            raise InputError("--log-key goes with --log-db", what="--log-key")
        target = LogTarget(target.kind, target.location, str(log_key))
    return target


def _output_path(model: Path, out_path: Optional[Path]) -> Path:
    from mgattest.attest.verify import default_bundle_path

    return out_path if out_path is not None else default_bundle_path(model)


def _report(bundle: dict[str, Any], statement: dict[str, Any], path: Path,
            as_json: bool) -> None:
    entries = bundle["verificationMaterial"].get("tlogEntries") or []
    if as_json:
        out(json.dumps({"ok": True, "bundle": str(path),
                        "predicateType": statement.get("predicateType"),
                        "subjects": len(statement.get("subject", [])),
                        "logIndex": [int(e["logIndex"]) for e in entries]}, indent=2))
        return
    where = (f"logged at index {entries[0]['logIndex']}" if entries else "not logged")
    out(f"signed {len(statement.get('subject', []))} subject(s) "
        f"({statement.get('predicateType')}), {where}: {path}")


def _sign_common(model: Path, statement_builder: Any, *, key: Optional[Path],
                 keyless: bool, identity_token: Optional[str], trust_config: Optional[Path],
                 staging: bool, password_env: Optional[str], password_prompt: bool,
                 refresh_trust: bool = False,
                 out_path: Optional[Path], log: Optional[str], log_db: Optional[Path],
                 log_key: Optional[Path], no_log: bool, fmt: str, shard_size: Optional[int], ignore: List[str],
                 allow_symlinks: bool, as_json: bool, hash_alg: str = "sha256",
                 force: bool = False) -> None:
    from mgattest.attest import sign as signing
    from mgattest.errors import InputError

    if not model.exists():
        raise InputError(f"model {model} does not exist", what="model", where=str(model))
    if keyless == (key is not None):
        raise InputError("give exactly one of --key KEY.pem and --keyless", what="key")
    if keyless and (log or log_db or log_key or no_log):
        raise InputError("--keyless records in the log of its trust config (--trust-config "
                         "or --staging); --log, --log-db, --log-key and --no-log do not apply",
                         what="--keyless")
    target = _log_target(log, log_db, no_log, log_key)
    # Check the destination before hashing, reserve it before logging: a log entry is
    # permanent, so nothing is logged that cannot end up in a bundle.
    pending = signing.PendingBundleFile(_output_path(model, out_path), overwrite=force).check()
    path = pending.path
    signer = load_signing_key(key, password_env, password_prompt) if key else None
    from mgattest.attest import digests as digest_mod

    with hashing_progress(model) as progress:
        md = digest_mod.hash_model(model, algorithm=hash_alg, shard_size=shard_size,
                                   ignore=ignore,
                                   exclude=[path], allow_symlinks=allow_symlinks,
                                   progress=progress)
    if not md.files:
        raise InputError(f"model {model} has no files to sign", what="model",
                         where=str(model))
    statement, hint = statement_builder(md, fmt, signer)
    with pending:
        pending.reserve()
        bundle = _sign_and_log(statement, hint, signer, target, keyless=keyless,
                               identity_token=identity_token, trust_config=trust_config,
                               staging=staging, refresh_trust=refresh_trust)
        pending.commit(bundle)
    _report(bundle, statement, path, as_json)


def _sign_and_log(statement: dict[str, Any], hint: Optional[str], signer: Any, target: Any, *,
                  keyless: bool, identity_token: Optional[str], trust_config: Optional[Path],
                  staging: bool, refresh_trust: bool) -> dict[str, Any]:
    """Sign the statement (key or keyless) and record it in the log: the bundle dict."""
    from mgattest.attest import sign as signing

    if keyless:
        from mgattest.attest.keyless import sign_keyless
        from mgattest.attest.statement import serialize_statement

        return sign_keyless(serialize_statement(statement), identity_token=identity_token,
                            trust_config=str(trust_config) if trust_config else None,
                            staging=staging, refresh_trust=refresh_trust)
    return signing.sign_statement(statement, signer, log=target, hint=hint)


_KEY = typer.Option(None, "--key", help="Private key (PEM, PKCS#8).")
_KEYLESS = typer.Option(False, "--keyless", help="Sign keylessly (OIDC → Fulcio-compatible CA).")
_TOKEN = typer.Option(None, "--identity-token", help="OIDC identity token (keyless).")
_TRUST_CONFIG = typer.Option(None, "--trust-config",
                             help="ClientTrustConfig JSON for a private deployment (keyless).")
_STAGING = typer.Option(False, "--staging", help="Use Sigstore's staging instance (keyless).")
_REFRESH = typer.Option(False, "--refresh-trust",
                        help="Update Sigstore's trust root over TUF before keyless signing "
                             "(default: the copy embedded in sigstore-python).")
_PW_ENV = typer.Option(None, "--password-env", metavar="VAR",
                       help="Read the key password from this environment variable "
                            "(default: MGATTEST_KEY_PASSWORD when set).")
_PW_PROMPT = typer.Option(False, "--password-prompt", help="Prompt for the key password.")
_OUT = typer.Option(None, "--out", help="Bundle path (default: <model>.sigstore.json beside it).")
_LOG = typer.Option(None, "--log", metavar="URL", help="Record in this Rekor v1-compatible log.")
_LOG_DB = typer.Option(None, "--log-db", metavar="PATH", help="Record in the mgattest log at PATH.")
_LOG_KEY = typer.Option(None, "--log-key", metavar="KEY",
                        help="Private key of the --log-db log (default: PATH with .key).")
_NO_LOG = typer.Option(False, "--no-log", help="Do not record in any transparency log.")
_SHARD = typer.Option(None, "--shard-size", min=1, help="Hash files in shards of N bytes.")
_IGNORE = typer.Option([], "--ignore", help="Anchored glob of files to leave out (repeatable); "
                       "recorded in the signed provenance so verify skips the same files.")
_HASH = typer.Option("sha256", "--hash", metavar="ALG",
                     help="File digest algorithm: sha256 (= sha256sum), sha512, blake2b, "
                          "or blake3 when installed.")
_SYMLINKS = typer.Option(False, "--allow-symlinks",
                         help="Follow symlinks that stay inside the model.")
_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_FORCE = typer.Option(False, "--force", help="Replace an existing bundle at the output path.")


# --------------------------------------------------------------------------- sign

@guarded
def sign_cmd(
    model: Path = typer.Argument(..., help="Model file or directory."),
    key: Optional[Path] = _KEY,
    keyless: bool = _KEYLESS,
    identity_token: Optional[str] = _TOKEN,
    trust_config: Optional[Path] = _TRUST_CONFIG,
    staging: bool = _STAGING,
    refresh_trust: bool = _REFRESH,
    password_env: Optional[str] = _PW_ENV,
    password_prompt: bool = _PW_PROMPT,
    out_path: Optional[Path] = _OUT,
    force: bool = _FORCE,
    fmt: str = typer.Option("intoto", "--format",
                            help="intoto (SLSA provenance) or model-signing (OpenSSF v1.0)."),
    log: Optional[str] = _LOG,
    log_db: Optional[Path] = _LOG_DB,
    log_key: Optional[Path] = _LOG_KEY,
    no_log: bool = _NO_LOG,
    shard_size: Optional[int] = _SHARD,
    ignore: List[str] = _IGNORE,
    hash_alg: str = _HASH,
    allow_symlinks: bool = _SYMLINKS,
    builder_id: Optional[str] = typer.Option(None, "--builder-id", help="SLSA builder id."),
    build_type: Optional[str] = typer.Option(None, "--build-type", help="SLSA buildType URI."),
    param: List[str] = typer.Option([], "--param", metavar="K=V",
                                    help="Build parameter; V parsed as JSON when valid."),
    dependency: List[str] = typer.Option([], "--dependency", metavar="NAME=URI@ALG:HEX",
                                         help="Resolved dependency (dataset, base model...)."),
    started_on: Optional[str] = typer.Option(None, "--started-on", metavar="TIME",
                                             help="When the build started (RFC 3339, e.g. "
                                                  "2026-01-31T12:00:00Z)."),
    finished_on: Optional[str] = typer.Option(None, "--finished-on", metavar="TIME",
                                              help="When the build finished (RFC 3339)."),
    from_env: Optional[str] = typer.Option(None, "--from-env",
                                           help="Fill builder/source from CI: github|gitlab."),
    no_frameworks: bool = typer.Option(False, "--no-frameworks",
                                       help="Do not record installed ML framework versions."),
    model_name: Optional[str] = typer.Option(None, "--model-name",
                                             help="Subject name (model-signing format)."),
    as_json: bool = _JSON,
) -> None:
    """Sign a model: SLSA provenance statement, DSSE, log entry, Sigstore bundle."""
    from mgattest.attest import slsa
    from mgattest.errors import InputError

    if fmt not in ("intoto", "model-signing"):
        raise InputError(f"--format must be intoto or model-signing, not {fmt!r}",
                         what="--format")
    params = slsa.parse_params(param)
    deps = [slsa.parse_dependency(d) for d in dependency]
    ci = slsa.from_ci_env(from_env) if from_env else None
    started, finished = slsa.parse_build_times(started_on, finished_on)
    frameworks = None if no_frameworks else slsa.framework_versions()

    def build(md: Any, fmt_: str, signer: Any) -> tuple[dict[str, Any], str | None]:
        from mgattest.attest import sign as signing
        from mgattest.attest.statement import make_statement

        if fmt_ == "model-signing":
            from mgattest.attest.modelsigning import to_model_signing_statement

            statement = to_model_signing_statement(md, model_name=model_name)
            return statement, (signing.model_signing_hint(signer.public_key)
                               if signer else None)
        predicate = slsa.build_provenance(builder_id=builder_id, build_type=build_type,
                                          parameters=params, dependencies=deps, ci=ci,
                                          frameworks=frameworks,
                                          started_on=started, finished_on=finished,
                                          internal_parameters=slsa.digest_options(md.ignore))
        return make_statement(md.subjects(), slsa.SLSA_PROVENANCE_V1, predicate), None

    _sign_common(model, build, key=key, keyless=keyless, identity_token=identity_token,
                 trust_config=trust_config, staging=staging, refresh_trust=refresh_trust,
                 password_env=password_env,
                 password_prompt=password_prompt, out_path=out_path, log=log, log_db=log_db,
                 log_key=log_key, no_log=no_log, fmt=fmt, shard_size=shard_size, ignore=ignore,
                 hash_alg=hash_alg, force=force,
                 allow_symlinks=allow_symlinks, as_json=as_json)


@guarded
def attest_cmd(
    model: Path = typer.Argument(..., help="Model file or directory."),
    predicate_type: str = typer.Option(..., "--predicate-type", help="Predicate type URI."),
    predicate: Path = typer.Option(..., "--predicate", help="Predicate JSON file."),
    key: Optional[Path] = _KEY,
    keyless: bool = _KEYLESS,
    identity_token: Optional[str] = _TOKEN,
    trust_config: Optional[Path] = _TRUST_CONFIG,
    staging: bool = _STAGING,
    refresh_trust: bool = _REFRESH,
    password_env: Optional[str] = _PW_ENV,
    password_prompt: bool = _PW_PROMPT,
    out_path: Optional[Path] = _OUT,
    force: bool = _FORCE,
    log: Optional[str] = _LOG,
    log_db: Optional[Path] = _LOG_DB,
    log_key: Optional[Path] = _LOG_KEY,
    no_log: bool = _NO_LOG,
    shard_size: Optional[int] = _SHARD,
    ignore: List[str] = _IGNORE,
    hash_alg: str = _HASH,
    allow_symlinks: bool = _SYMLINKS,
    as_json: bool = _JSON,
) -> None:
    """Sign a generic in-toto attestation (any predicate type) about a model."""
    from mgattest._files import read_bounded
    from mgattest.errors import InputError

    if "://" not in predicate_type and not predicate_type.startswith("urn:"):
        raise InputError(f"--predicate-type {predicate_type!r} is not a URI",
                         what="--predicate-type")
    try:
        body = json.loads(read_bounded(predicate, 16 * 1024 * 1024, what="predicate"))
    except (ValueError, RecursionError) as exc:
        raise InputError(f"predicate {predicate} is not valid JSON: {exc}",
                         what="--predicate", where=str(predicate)) from None
    if not isinstance(body, dict):
        raise InputError(f"predicate {predicate} must be a JSON object", what="--predicate",
                         where=str(predicate))

    def build(md: Any, _fmt: str, _signer: Any) -> tuple[dict[str, Any], None]:
        from mgattest.attest.statement import make_statement

        return make_statement(md.subjects(), predicate_type, body), None

    _sign_common(model, build, key=key, keyless=keyless, identity_token=identity_token,
                 trust_config=trust_config, staging=staging, refresh_trust=refresh_trust,
                 password_env=password_env,
                 password_prompt=password_prompt, out_path=out_path, log=log, log_db=log_db,
                 log_key=log_key, no_log=no_log, fmt="intoto", shard_size=shard_size, ignore=ignore,
                 hash_alg=hash_alg, force=force,
                 allow_symlinks=allow_symlinks, as_json=as_json)


# --------------------------------------------------------------------------- keygen

@guarded
def keygen_cmd(
    out_prefix: Path = typer.Option(..., "--out", metavar="PREFIX",
                                    help="Writes PREFIX.key (0600) and PREFIX.pub."),
    key_type: str = typer.Option("ecdsa-p256", "--type",
                                 help="ecdsa-p256, ecdsa-p384, ed25519, rsa-pss-3072, "
                                      "rsa-pkcs1-3072 (also -2048/-4096)."),
    password_env: Optional[str] = _PW_ENV,
    password_prompt: bool = _PW_PROMPT,
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Generate a signing key pair (PKCS#8 PEM; encrypted when a password is given)."""
    from mgattest.attest.keys import generate_signer, resolve_password, write_keypair
    from mgattest.attest.signers import key_fingerprint

    password = resolve_password(password_env, password_prompt, confirm=True)
    signer = generate_signer(key_type)
    key_path, pub_path = write_keypair(signer, out_prefix, password, overwrite=force)
    state = "encrypted" if password else "unencrypted"
    out(f"wrote {key_path} ({key_type}, {state}) and {pub_path}")
    out(f"fingerprint sha256:{key_fingerprint(signer.public_key)}")
    if not password:
        err("note: the private key is not encrypted (set MGATTEST_KEY_PASSWORD, "
            "--password-env VAR or --password-prompt to encrypt it)")


# --------------------------------------------------------------------------- trust

@guarded
def trust_export_cmd(
    out_path: Path = typer.Option(..., "--out", help="Trusted root JSON to write."),
    log_db: Optional[Path] = _LOG_DB,
    include_public_good: bool = typer.Option(False, "--include-public-good",
                                             help="Also trust Sigstore's production root."),
) -> None:
    """Write a trusted root listing this machine's log, for verifiers elsewhere."""
    from mgattest.attest import locallog, trustroot
    from mgattest.errors import InputError

    root = locallog.local_trusted_root(log_db)
    if root is None:
        where = log_db or locallog.default_db_path()
        raise InputError(f"no log at {where} yet (sign something first, or give --log-db)",
                         what="local log", where=str(where))
    if include_public_good:
        root = root.merged(trustroot.embedded_trusted_root("production"))
    trustroot.write_trusted_root(root, out_path)
    out(f"wrote trusted root with {len(root.tlogs)} log(s): {out_path}")
