"""The signing and log commands stay thin: they parse options, call library entry points
and render results. Signing, verification and monitoring logic lives in the library, so
these CLI modules may import only the modules listed here (an AST check, no imports run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mgattest

CLI = Path(mgattest.__file__).parent / "cli"

# Shared by every command module: the CLI helpers, typed errors and file/text utilities.
_COMMON = {"mgattest.cli._common", "mgattest.cli._progress", "mgattest.errors",
           "mgattest._files", "mgattest._text"}

ALLOWED = {
    "sign_cmds.py": _COMMON | {
        "mgattest.attest.sign",        # the sign pipeline: options, signers, sign_digests
        "mgattest.attest.keys",        # keygen and key loading
        "mgattest.attest.signers",     # key fingerprint shown by keygen
        "mgattest.attest.slsa",        # parsing --param/--dependency/--from-env/times
        "mgattest.attest.verify",      # default_bundle_path only
        "mgattest.attest.locallog",    # trust export
        "mgattest.attest.trustroot",   # trust export
        "mgattest.cli.ca_cmds",        # the shared `trust` command group
    },
    "log_cmds.py": _COMMON | {
        "mgattest._httpguard",         # connection limits of `log serve`
        "mgattest.tlog.log",           # TransparencyLog: init/serve/append/proofs
        "mgattest.tlog.keys",          # log keys
        "mgattest.tlog.trust",         # trusted logs from --log-key/--trusted-root
        "mgattest.tlog.errors",        # DuplicateEntryError on append
        "mgattest.tlog.client",        # RekorClient / LogUnavailableError
        "mgattest.tlog.server",        # `log serve`
        "mgattest.tlog.monitor",       # LogMonitor, consistency and note checks
        "mgattest.tlog.entry_files",   # entries from files and their verification
    },
}

# Modules whose logic the CLI must reach only through the entry points above.
FORBIDDEN = {"mgattest.tlog.merkle", "mgattest.tlog.checkpoint", "mgattest.tlog.verify",
             "mgattest.attest.keyless", "mgattest.attest.digests", "mgattest.attest.dsse",
             "mgattest.attest.statement", "mgattest.attest.modelsigning",
             "mgattest.attest.bundle"}


def _mgattest_imports(path: Path) -> set[str]:
    """Every mgattest module ``path`` imports (``from pkg import mod`` counts as pkg.mod)."""
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
                found.add(candidate if is_module else node.module)
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_cli_module_imports_only_library_entry_points(module: str) -> None:
    imports = _mgattest_imports(CLI / module)
    assert imports, "the check found no imports: the AST walk is broken"
    assert not imports & FORBIDDEN, f"{module} reaches into {sorted(imports & FORBIDDEN)}"
    assert imports <= ALLOWED[module], \
        f"{module} imports {sorted(imports - ALLOWED[module])} beyond its allow-list"


def test_cli_modules_hold_no_signing_or_monitoring_code() -> None:
    """The orchestration that moved to the library does not come back."""
    sign_src = (CLI / "sign_cmds.py").read_text(encoding="utf-8")
    log_src = (CLI / "log_cmds.py").read_text(encoding="utf-8")
    for name in ("sign_statement", "sign_keyless", "hash_model", "make_statement",
                 "_sign_common", "_sign_and_log"):
        assert name not in sign_src, f"sign_cmds.py mentions {name}"
    for name in ("verify_consistency", "verify_checkpoint", "verify_entry(",
                 "verify_rekor_entry", "consistency_proof(last", "_check_consistent"):
        assert name not in log_src, f"log_cmds.py mentions {name}"
