"""``mgattest sign``, ``attest``, ``keygen`` and ``trust export``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from mgattest.cli._common import err, guarded, out
from mgattest.cli._progress import hashing_progress

if TYPE_CHECKING:
    from mgattest.attest import (BundleSigner, DigestOptions, LogTarget, SignOptions,
                                      SignResult, SigningKey)

def register(app: typer.Typer) -> None:
    """Add the signing commands to the app.

    ``trust export`` joins the ``trust`` group of ``mgattest.cli._ca_cmds`` (which also
    holds ``trust private``); only without that module does it get a group of its own.
    """
    app.command("sign")(sign_cmd)
    app.command("attest")(attest_cmd)
    app.command("keygen")(keygen_cmd)
    try:
        from mgattest.cli._ca_cmds import trust_app
    except ImportError:
        trust_app = typer.Typer(help="Trusted roots for verifiers.", no_args_is_help=True)
        app.add_typer(trust_app, name="trust")
    trust_app.command("export")(trust_export_cmd)


# --------------------------------------------------------------------------- helpers

@dataclass(frozen=True)
class _SignerArgs:
    """The command-line options that choose who signs and where it is logged."""

    key: Optional[Path]
    keyless: bool
    identity_token: Optional[str]
    trust_config: Optional[Path]
    staging: bool
    refresh_trust: bool
    password_env: Optional[str]
    password_prompt: bool
    log: Optional[str]
    log_db: Optional[Path]
    log_key: Optional[Path]
    no_log: bool
    key_command: Optional[str] = None
    key_command_public_key: Optional[Path] = None

    def log_target(self) -> "LogTarget":
        """The log a key signature goes to; refuses option combinations that conflict."""
        from mgattest.attest import LogTarget
        from mgattest.errors import InputError

        if self.key_command_public_key is not None and self.key_command is None:
            raise InputError("--key-command-public-key goes with --key-command",
                             what="--key-command-public-key")
        if [self.keyless, self.key is not None, self.key_command is not None].count(True) != 1:
            raise InputError("give exactly one of --key KEY.pem, --key-command CMD and "
                             "--keyless", what="key")
        if self.keyless and (self.log or self.log_db or self.log_key or self.no_log):
            raise InputError("--keyless records in the log of its trust config "
                             "(--trust-config or --staging); --log, --log-db, --log-key and "
                             "--no-log do not apply", what="--keyless")
        return LogTarget.from_options(url=self.log,
                                      db=str(self.log_db) if self.log_db else None,
                                      no_log=self.no_log,
                                      key=str(self.log_key) if self.log_key else None)

    def signer(self, log: "LogTarget") -> "BundleSigner":
        """The signer (asks for the key's password the way the user chose)."""
        from mgattest.attest import KeylessSigner, KeySigner

        if self.key is None and self.key_command is None:
            return KeylessSigner(self.identity_token, self.trust_config, self.staging,
                                 self.refresh_trust)
        return KeySigner(self.signing_key(), log)

    def signing_key(self) -> "SigningKey":
        """The key of --key (a key file, or a KMS URI) or --key-command."""
        from mgattest.attest import (CommandKey, kms_scheme, load_signer, open_kms_key,
                                     resolve_password)

        if self.key_command is not None:
            return CommandKey.open(self.key_command, self.key_command_public_key)
        assert self.key is not None
        if kms_scheme(str(self.key)):
            return open_kms_key(str(self.key))
        return load_signer(self.key, resolve_password(self.password_env,
                                                      self.password_prompt))


@dataclass(frozen=True)
class _OutputArgs:
    """Where the bundle goes and how the result is shown."""

    out_path: Optional[Path]
    force: bool
    as_json: bool


def _output_path(model: str | Path, out_path: Optional[Path]) -> Path:
    from mgattest.attest import default_bundle_path

    return out_path if out_path is not None else default_bundle_path(model)


def _report(result: "SignResult", path: Path, as_json: bool) -> None:
    """Print what was signed and where it was logged (text or JSON)."""
    statement = result.statement
    entries = result.bundle["verificationMaterial"].get("tlogEntries") or []
    if as_json:
        out(json.dumps({"ok": True, "bundle": str(path),
                        "predicateType": statement.get("predicateType"),
                        "subjects": len(statement.get("subject", [])),
                        "logIndex": [int(e["logIndex"]) for e in entries]}, indent=2))
        return
    where = (f"logged at index {entries[0]['logIndex']}" if entries else "not logged")
    out(f"signed {len(statement.get('subject', []))} subject(s) "
        f"({statement.get('predicateType')}), {where}: {path}")


def _sign_and_report(model: Path, options: "SignOptions", who: _SignerArgs,
                     output: _OutputArgs) -> None:
    """Check the inputs in the order users expect errors, then run the sign pipeline."""
    from mgattest.attest import (PendingBundleFile, hash_for_signing, resolve_model_path,
                                 resolve_stored_model, sign_digests)
    from mgattest.errors import InputError

    reference = str(model)
    stored = resolve_stored_model(reference)  # ollama:NAME, oci:PATH[:REF], an OCI layout
    if stored is None:
        model = Path(resolve_model_path(reference))  # hf:ORG/NAME[@REV]: its cache snapshot
    if stored is None and not model.exists():
        raise InputError(f"model {model} does not exist", what="model", where=str(model))
    target = who.log_target()
    # Check the destination before hashing (and before asking for a password); the
    # pipeline reserves it before logging.
    pending = PendingBundleFile(_output_path(reference if stored else model, output.out_path),
                                overwrite=output.force).check()
    signer = who.signer(target)
    with hashing_progress(model) as progress:
        digests = hash_for_signing(stored or model, options.digests, exclude=[pending.path],
                                   progress=progress)
    result = sign_digests(digests, signer, options, output=pending)
    _report(result, pending.path, output.as_json)


def _digest_options(shard_size: Optional[int], ignore: List[str], hash_alg: str,
                    allow_symlinks: bool) -> "DigestOptions":
    from mgattest.attest import DigestOptions

    return DigestOptions(algorithm=hash_alg, shard_size=shard_size, ignore=tuple(ignore),
                         allow_symlinks=allow_symlinks)


_MODEL_HELP = ("Model file or directory, a Hugging Face cache snapshot, hf:ORG/NAME[@REV] "
               "(resolved in the local hub cache, offline), ollama:NAME[:TAG] or "
               "oci:LAYOUT[:REF].")
_KEY = typer.Option(None, "--key", help="Private key (PEM, PKCS#8), or a KMS key URI "
                    "(awskms://, gcpkms://, azurekms://, hashivault://) when a KMS "
                    "provider is installed.")
_KEY_COMMAND = typer.Option(None, "--key-command", metavar="CMD",
                            help="Sign with a key held elsewhere: CMD (run without a shell) "
                                 "reads the digest on stdin and prints the signature "
                                 "(docs/signing.md, \"Keys held elsewhere\").")
_KEY_COMMAND_PUB = typer.Option(None, "--key-command-public-key", metavar="PUB.pem",
                                help="Public key of --key-command (default: ask the "
                                     "command, action public-key).")
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
_OUT = typer.Option(None, "--out", help="Bundle path (default: <model>.sigstore.json beside it; "
                    "./ORG--NAME@REV12.sigstore.json for a Hugging Face cache snapshot; "
                    "docs/layouts/ for ollama: and oci:).")
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
    model: Path = typer.Argument(..., help=_MODEL_HELP),
    key: Optional[Path] = _KEY,
    key_command: Optional[str] = _KEY_COMMAND,
    key_command_public_key: Optional[Path] = _KEY_COMMAND_PUB,
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
    all_models: bool = typer.Option(False, "--all",
                                    help="MODEL is a tree: sign every model found in it "
                                         "(as `mgattest audit` finds them) that has no "
                                         "bundle yet (--force: every one)."),
) -> None:
    """Sign a model: SLSA provenance statement, DSSE, log entry, Sigstore bundle."""
    from mgattest.attest import (framework_versions, from_ci_env, parse_build_times,
                                 parse_dependency, parse_params)
    from mgattest.attest import ProvenanceOptions, SignOptions
    from mgattest.errors import InputError

    if fmt not in ("intoto", "model-signing"):
        raise InputError(f"--format must be intoto or model-signing, not {fmt!r}",
                         what="--format")
    params = parse_params(param)
    deps = tuple(parse_dependency(d) for d in dependency)
    ci = from_ci_env(from_env) if from_env else None
    started, finished = parse_build_times(started_on, finished_on)
    provenance = ProvenanceOptions(
        builder_id=builder_id, build_type=build_type, parameters=params, dependencies=deps,
        ci=ci, frameworks=None if no_frameworks else framework_versions(),
        started_on=started, finished_on=finished)
    options = SignOptions(format="model-signing" if fmt == "model-signing" else "intoto",
                          provenance=provenance, model_name=model_name,
                          digests=_digest_options(shard_size, ignore, hash_alg,
                                                  allow_symlinks))
    who = _SignerArgs(key=key, keyless=keyless, identity_token=identity_token,
                      trust_config=trust_config, staging=staging, refresh_trust=refresh_trust,
                      password_env=password_env, password_prompt=password_prompt, log=log,
                      log_db=log_db, log_key=log_key, no_log=no_log,
                      key_command=key_command, key_command_public_key=key_command_public_key)
    if all_models:
        _sign_all(model, options, who, _OutputArgs(out_path, force, as_json))
    _sign_and_report(model, options, who, _OutputArgs(out_path, force, as_json))


def _sign_all(tree: Path, options: "SignOptions", who: _SignerArgs,
              output: _OutputArgs) -> None:
    """``sign --all``: every model of the tree signed beside itself; one summary; exit 1
    when any failed."""
    from mgattest.attest import sign_tree
    from mgattest.errors import InputError

    if output.out_path is not None:
        raise InputError("--all writes each bundle beside its model; --out does not apply",
                         what="--out")
    if not tree.is_dir():
        raise InputError(f"{tree} is not a directory", what="directory", where=str(tree))
    signer = who.signer(who.log_target())
    results = sign_tree(tree, signer, options, overwrite=output.force)
    failed = [r for r in results if r.outcome == "failed"]
    if output.as_json:
        out(json.dumps({"ok": not failed, "models": [
            {"name": r.name, "outcome": r.outcome, "bundle": r.bundle, "detail": r.detail,
             "logIndex": r.log_index} for r in results]}, indent=2))
    else:
        for r in results:
            where = f" (log index {r.log_index})" if r.log_index is not None else ""
            detail = f": {r.detail}" if r.detail else f" → {r.bundle}{where}"
            out(f"{r.outcome:<8} {r.name}{detail}")
        counts = {k: sum(1 for r in results if r.outcome == k)
                  for k in ("signed", "skipped", "failed")}
        out(f"{len(results)} model(s): " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    raise typer.Exit(1 if failed else 0)


@guarded
def attest_cmd(
    model: Path = typer.Argument(..., help=_MODEL_HELP),
    predicate_type: str = typer.Option(..., "--predicate-type", help="Predicate type URI."),
    predicate: Path = typer.Option(..., "--predicate", help="Predicate JSON file."),
    key: Optional[Path] = _KEY,
    key_command: Optional[str] = _KEY_COMMAND,
    key_command_public_key: Optional[Path] = _KEY_COMMAND_PUB,
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

    from mgattest.attest import SignOptions

    options = SignOptions(predicate_type=predicate_type, predicate=body,
                          digests=_digest_options(shard_size, ignore, hash_alg,
                                                  allow_symlinks))
    who = _SignerArgs(key=key, keyless=keyless, identity_token=identity_token,
                      trust_config=trust_config, staging=staging, refresh_trust=refresh_trust,
                      password_env=password_env, password_prompt=password_prompt, log=log,
                      log_db=log_db, log_key=log_key, no_log=no_log,
                      key_command=key_command, key_command_public_key=key_command_public_key)
    _sign_and_report(model, options, who, _OutputArgs(out_path, force, as_json))


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
    from mgattest.attest import generate_signer, resolve_password, write_keypair
    from mgattest.attest import key_fingerprint

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
    from mgattest.attest import (default_db_path, embedded_trusted_root, local_trusted_root,
                                 write_trusted_root)
    from mgattest.errors import InputError

    root = local_trusted_root(log_db)
    if root is None:
        where = log_db or default_db_path()
        raise InputError(f"no log at {where} yet (sign something first, or give --log-db)",
                         what="local log", where=str(where))
    if include_public_good:
        root = root.merged(embedded_trusted_root("production"))
    write_trusted_root(root, out_path)
    out(f"wrote trusted root with {len(root.tlogs)} log(s): {out_path}")
