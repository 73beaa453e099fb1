"""The CLI stays thin: its commands parse options, call library entry points and render
results. Signing, verification, monitoring, trust-merging and quarantine logic lives in
the library, so every module of mgattest/cli/ may import only the modules listed here
(an AST check, no imports run).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import mgattest

CLI = Path(mgattest.__file__).parent / "cli"

# Shared by every command module: the CLI helpers, typed errors and file/text utilities.
_COMMON = {"mgattest.cli._common", "mgattest.cli._progress", "mgattest.errors",
           "mgattest._files", "mgattest._text"}

# Every module of mgattest/cli/ and the library entry points it may import (packages'
# public names or the modules docs/architecture.md documents as entry points).
ALLOWED = {
    "__init__.py": set(),
    "app.py": {"mgattest"},                # __version__ for --version
    "_common.py": {"mgattest.errors", "mgattest._text"},
    "_progress.py": {"mgattest._text"},
    "_render.py": {
        "mgattest.policy._verdict",     # the Verdict type
        "mgattest.policy._explain",     # verdict_tree: the verdict as a rich tree
    },
    "_ca_cmds.py": _COMMON | {
        "mgattest.ca._authority",       # `ca init`, the CA served by `ca serve`
        "mgattest.ca._server",          # `ca serve`
        "mgattest.ca._serving",         # bind/serve_forever/url_of of both servers
        "mgattest.ca._tokens",          # the OIDC token verifier of `ca serve`
        "mgattest.ca._oidc_issuer",     # `ca oidc-issuer` / `ca token`
        "mgattest.ca._trustconfig",     # `trust private`
    },
    "_inspect_cmds.py": _COMMON | {
        "mgattest.inspect._scanner",    # scan_path
        "mgattest.inspect._report",     # verdict names
        "mgattest.attest._walk",        # the ignore rules of sign/verify; trust files refused
        "mgattest.attest._references",  # ollama:/oci:/hf: references resolved
        "mgattest.policy._stores",      # scan_stored_model: the blobs of a stored model
        "mgattest.loading._quarantine",    # quarantine_findings and the `quarantine` commands
        "mgattest.loading._watch",         # Sentry, watch_verifier
    },
    "_policy_cmds.py": _COMMON | {
        "mgattest.policy._loader",      # `policy lint`
        "mgattest.policy._explain",     # `policy explain`
        "mgattest.policy._init",        # `policy init`: generate_policy does the work
        "mgattest.policy._keyedit",     # `policy key add|retire`
    },
    "_sign_cmds.py": _COMMON | {
        "mgattest.attest._sign",        # the sign pipeline: options, signers, sign_digests
        "mgattest.attest._keys",        # keygen and key loading
        "mgattest.attest._keycommand",  # --key-command (CommandKey)
        "mgattest.attest._kms",         # KMS key URIs in --key
        "mgattest.attest._signers",     # key fingerprint shown by keygen
        "mgattest.attest._slsa",        # parsing --param/--dependency/--from-env/times
        "mgattest.attest._references",  # references resolved; default_bundle_path
        "mgattest.attest._locallog",    # trust export
        "mgattest.attest._trustroot",   # trust export
        "mgattest.cli._ca_cmds",        # the shared `trust` command group
        "mgattest.attest._signall",     # sign --all: sign_tree
    },
    "_verify_cmds.py": _COMMON | {
        "mgattest.cli._render",        # the verdict tree
        "mgattest.policy._pipeline",    # ModelVerifier, policy_verifier and their options
        "mgattest.policy._shortcuts",   # --builder-id/--source-* as ShortcutOptions
        "mgattest.attest._certs",       # IdentityPolicy from --identity/--issuer/...
        "mgattest.attest._trustroot",   # combined_trusted_root of the trust options
        "mgattest.attest._keyless",     # --refresh-trust: the public-good config over TUF
        "mgattest.attest._walk",        # trust files inside the model refused
        "mgattest.attest._references",  # hf:ORG/NAME[@REV] → the local path
        "mgattest.loading._quarantine",    # quarantine_rejected
        "mgattest.cli._audit_cmds",     # verify --all: the tree run and its table
        "mgattest.policy._lineage_model",  # LineageRequest of --lineage-bundles/--lineage-log
        "mgattest.policy._lineage_sources",  # BundleFiles, LogIndex
    },
    "_audit_cmds.py": _COMMON | {
        "mgattest.policy._treeaudit",   # audit_tree: discovery, verification, classification
        "mgattest.policy._auditformats",  # the JSON, SARIF and JUnit renderings
        "mgattest.cli._verify_cmds",    # tree_verifier: the same trust options as verify
        "mgattest.policy._pipeline",    # the ModelVerifier type every model goes through
    },
    "_provenance_cmds.py": _COMMON | {
        "mgattest.cli._verify_cmds",    # tree_verifier: the same trust options as verify
        "mgattest.policy._lineage",     # the LineageGraph type
        "mgattest.policy._lineage_model",  # trace_provenance, LineageRequest
        "mgattest.policy._lineage_render",  # table rows, JSON, Mermaid
        "mgattest.policy._lineage_sources",  # BundleFiles, LogIndex
    },
    "_blob_cmds.py": _COMMON | {
        "mgattest.cli._sign_cmds",      # the signer options of `sign` (_SignerArgs)
        "mgattest.cli._verify_cmds",    # the trust options and report of `verify`
        "mgattest.attest._sign",        # PendingBundleFile, KeySigner/KeylessSigner
        "mgattest.attest._blobs",       # sign_blob, sign_blob_raw, raw signature checks
        "mgattest.attest._keys",        # load_signer/load_verifier for raw signatures
        "mgattest.attest._references",  # default_bundle_path
        "mgattest.policy._pipeline",    # ModelVerifier: the one verify pipeline
    },
    "_migrate_cmds.py": _COMMON | {
        "mgattest.attest._migrate",     # migrate_tree, its options, the HMAC key reader
        "mgattest.attest._sign",        # the BundleSigner type the shared signer options build
        "mgattest.cli._sign_cmds",      # the signer options shared with `sign`
    },
    "_crypt_cmds.py": _COMMON | {
        "mgattest.crypt._keysource",    # KeySource from --key-env/--key-file/--key-command
        "mgattest.crypt._keysets",      # KekKeyset: keyset new/rotate/retire/list
        "mgattest.crypt._tree",         # encrypt_path, decrypt_path, rewrap_path
    },
    "_log_cmds.py": _COMMON | {
        "mgattest._httpguard",         # connection limits of `log serve`
        "mgattest.tlog._log",           # TransparencyLog: init/serve/append/proofs
        "mgattest.tlog._keys",          # log keys
        "mgattest.tlog._trust",         # trusted logs from --log-key/--trusted-root
        "mgattest.tlog.errors",        # DuplicateEntryError on append
        "mgattest.tlog._client",        # RekorClient / LogUnavailableError
        "mgattest.tlog._server",        # `log serve`
        "mgattest.tlog._monitor",       # LogMonitor, consistency and note checks
        "mgattest.tlog._entry_files",   # entries from files and their verification
        "mgattest.tlog._evidence",      # `log verify-evidence`
        "mgattest.tlog._tilescan",      # PollResult.scan of `log monitor`
        "mgattest.attest._log_watch",   # `log monitor --identity/--key`: the entry watcher
        "mgattest.tlog._export",        # `log export`: tiles to a directory
        "mgattest.tlog._import",        # `log import`: verified rebuild from tiles
        "mgattest.tlog._witnessing",    # `log serve --witness`: WitnessEndpoint
    },
    "_witness_cmds.py": _COMMON | {
        "mgattest.cli._log_cmds",       # the `log` group it joins
        "mgattest.tlog._keys",          # the witnessed logs' keys
        "mgattest.tlog._cosign",        # WitnessSigner: keygen, vkey
        "mgattest.tlog._witness",       # Witness, WitnessState
        "mgattest.tlog._witness_server",  # serve_witness
    },
    "_search_cmds.py": _COMMON | {
        "mgattest.cli._log_cmds",       # the `log` group and its trust options
        "mgattest.tlog._search",        # SearchQuery, rebuild_search_index
        "mgattest.tlog._search_client",  # search_log: every hit verified offline
        "mgattest.tlog._store",         # LogStore for `log reindex`
        "mgattest.attest._sign",        # hash_for_signing for --model
    },
}

# Modules whose logic the CLI must reach only through the entry points above.
FORBIDDEN = {"mgattest.tlog.merkle", "mgattest.tlog._checkpoint", "mgattest.tlog._verify",
             "mgattest.attest._digests", "mgattest.attest._dsse",
             "mgattest.attest._statement", "mgattest.attest._modelsigning",
             "mgattest.attest._bundle", "mgattest.policy._evaluate", "mgattest.policy._gather",
             "mgattest.policy._modelcheck", "mgattest.policy.cli_support"}
# keyless signing goes through attest.sign.KeylessSigner; only `verify --refresh-trust`
# may fetch the public-good trust config from attest.keyless.
FORBIDDEN_IN = {"_sign_cmds.py": {"mgattest.attest._keyless"}}


def _defining_module(package: str, name: str) -> str | None:
    """The module that defines ``name`` when ``package`` re-exports it (its lazy table)."""
    table = getattr(importlib.import_module(package), "_EXPORTS", None)
    target = table.modules.get(name) if table is not None else None
    return target.partition(":")[0] if target else None


def _mgattest_imports(path: Path) -> set[str]:
    """Every mgattest module ``path`` imports: ``from pkg import mod`` counts as pkg.mod,
    and a name a package re-exports counts as the module that defines it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mgattest"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("mgattest"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (Path(mgattest.__file__).parent.parent
                             / (candidate.replace(".", "/") + ".py")).is_file()
                found.add(candidate if is_module else
                          _defining_module(node.module, alias.name) or node.module)
    return found


def test_every_cli_module_has_an_allow_list() -> None:
    assert sorted(p.name for p in CLI.glob("*.py")) == sorted(ALLOWED)


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_cli_module_imports_only_library_entry_points(module: str) -> None:
    imports = _mgattest_imports(CLI / module)
    assert imports or not ALLOWED[module], "the check found no imports: the AST walk is broken"
    forbidden = FORBIDDEN | FORBIDDEN_IN.get(module, set())
    assert not imports & forbidden, f"{module} reaches into {sorted(imports & forbidden)}"
    assert imports <= ALLOWED[module], \
        f"{module} imports {sorted(imports - ALLOWED[module])} beyond its allow-list"


def test_cli_modules_hold_no_signing_or_monitoring_code() -> None:
    """The orchestration that moved to the library does not come back."""
    sign_src = (CLI / "_sign_cmds.py").read_text(encoding="utf-8")
    log_src = (CLI / "_log_cmds.py").read_text(encoding="utf-8")
    for name in ("sign_statement", "sign_keyless", "hash_model", "make_statement",
                 "_sign_common", "_sign_and_log"):
        assert name not in sign_src, f"sign_cmds.py mentions {name}"
    for name in ("verify_consistency", "verify_checkpoint", "verify_entry(",
                 "verify_rekor_entry", "consistency_proof(last", "_check_consistent"):
        assert name not in log_src, f"log_cmds.py mentions {name}"


def _is_typer_command(func: ast.FunctionDef) -> bool:
    """A typer command: every defaulted parameter is a typer.Option/Argument (or one of the
    shared option constants like ``_KEY``), which is how typer declares options."""
    defaults = func.args.defaults + [d for d in func.args.kw_defaults if d is not None]
    for default in defaults:
        if isinstance(default, ast.Call) and isinstance(default.func, ast.Attribute) \
                and default.func.attr in ("Option", "Argument"):
            continue
        if isinstance(default, ast.Name) and default.id.isupper():
            continue
        return False
    return bool(defaults)


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_no_cli_helper_takes_ten_parameters(module: str) -> None:
    """Only typer commands (one parameter per option) have 10+ parameters; helpers take
    option objects, and no call passes 10+ positional arguments."""
    for node in ast.walk(ast.parse((CLI / module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            count = len(node.args.posonlyargs + node.args.args + node.args.kwonlyargs)
            assert count < 10 or _is_typer_command(node), \
                f"{module}:{node.lineno} {node.name} takes {count} parameters"
        elif isinstance(node, ast.Call):
            assert len(node.args) < 10, \
                f"{module}:{node.lineno} passes {len(node.args)} positional arguments"
