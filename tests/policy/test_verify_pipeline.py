"""One verification pipeline: the CLI reaches verification only through it.

``mgattest verify`` and ``mgattest watch`` parse options, call
``mgattest.policy._pipeline.ModelVerifier`` and render; they must not reach into the
verification internals (``attest.verify``, ``policy.evaluate``, ``policy.gather``...),
and no library module may import ``mgattest.loading`` from below it.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

import mgattest

PACKAGE = Path(mgattest.__file__).parent

# What the verify command may import: option parsing (trust material, identities),
# the pipeline, rendering helpers and the quarantine entry point.
VERIFY_CMD_ALLOWED = {
    "mgattest._files", "mgattest._text", "mgattest.errors",
    "mgattest.attest._certs", "mgattest.attest._keyless", "mgattest.attest._trustroot",
    "mgattest.attest._walk",
    "mgattest.attest._references",  # hf:ORG/NAME[@REV] → the local path
    "mgattest.cli._common", "mgattest.cli._progress", "mgattest.cli._render",
    "mgattest.cli._audit_cmds",  # verify --all: the tree run of `audit` (policy.audit_tree)
    "mgattest.loading._quarantine",
    "mgattest.policy._pipeline", "mgattest.policy._shortcuts",
    # --lineage-bundles/--lineage-log: the sources of a policy's lineage clauses
    "mgattest.policy._lineage_model", "mgattest.policy._lineage_sources",
}

# Verification internals no CLI command module may import.
INTERNALS = {
    "mgattest.attest._verify", "mgattest.attest._digests", "mgattest.policy._evaluate",
    "mgattest.policy._gather", "mgattest.policy._modelcheck", "mgattest.policy.cli_support",
}


def is_module(name: str) -> bool:
    """Whether *name* is a module or package of mgattest (not a name inside one)."""
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def mgattest_imports(path: Path) -> set[str]:
    """Every ``mgattest...`` module *path* imports (at any depth of the file), and the
    names imported from a module (``from mgattest.loading import verify_model_bytes`` is
    reported as ``mgattest.load`` and ``mgattest.loading.verify_model_bytes``;
    ``from mgattest.attest import _trustroot as trustroot`` as ``mgattest.attest._trustroot``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mgattest"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mgattest"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            found.update(names)
            defining = {_defining_module(node.module, a.name) for a in node.names}
            found.update(m for m in defining if m)
            if not all(is_module(n) or _defining_module(node.module, n.rsplit(".", 1)[1])
                       for n in names):
                found.add(node.module)
    return found


def _defining_module(package: str, name: str) -> str | None:
    """The module a package's lazy public name comes from (``mgattest.policy`` +
    ``ModelVerifier`` -> ``mgattest.policy._pipeline``): importing through a package's
    ``__all__`` is held to the same rules as importing the module itself."""
    if not is_module(package):
        return None
    exports = getattr(importlib.import_module(package), "_EXPORTS", None)
    target = exports.modules.get(name) if exports is not None else None
    return target.partition(":")[0] if target else None


def test_verify_command_imports_only_library_entry_points():
    imported = {n for n in mgattest_imports(PACKAGE / "cli" / "_verify_cmds.py")
                if is_module(n)}
    assert imported - VERIFY_CMD_ALLOWED == set()


@pytest.mark.parametrize("module", ["_verify_cmds.py", "_inspect_cmds.py"])
def test_verify_and_watch_commands_skip_verification_internals(module):
    imported = mgattest_imports(PACKAGE / "cli" / module)
    assert not {n for n in imported
                if n in INTERNALS or any(n.startswith(i + ".") for i in INTERNALS)}
    assert "mgattest.loading.verify_model_bytes" not in imported  # watch: the pipeline itself


def test_no_library_module_imports_load_from_below():
    lower = [p for sub in ("policy", "attest", "inspect", "tlog")
             for p in (PACKAGE / sub).rglob("*.py")]
    offenders = {str(p.relative_to(PACKAGE)) for p in lower
                 if any(n == "mgattest.loading" or n.startswith("mgattest.loading.")
                        for n in mgattest_imports(p))}
    assert offenders == set()


def test_no_library_module_prints():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


# ------------------------------------------------------------------ the pipeline itself

def test_verify_options_need_a_private_key_for_a_vsa():
    from mgattest.errors import InputError
    from mgattest.policy._pipeline import VerifyOptions

    with pytest.raises(InputError, match="--emit-vsa needs a private key"):
        VerifyOptions(emit_vsa="vsa.json")


def test_digest_target_needs_a_bundle():
    from mgattest.errors import InputError
    from mgattest.policy._pipeline import ModelVerifier

    with pytest.raises(InputError, match="verifying a digest needs --bundle"):
        ModelVerifier(None).verify("sha256:" + "ab" * 32)


def test_a_path_object_is_never_a_digest(tmp_path):
    """Only text names a digest: ``Path('sha256:…')`` is a (missing) file."""
    from mgattest.errors import InputError
    from mgattest.policy._pipeline import ModelVerifier

    with pytest.raises(InputError, match="does not exist"):
        ModelVerifier(None).verify(tmp_path / ("sha256:" + "ab" * 32))


def test_read_bytes_need_a_policy(tmp_path):
    from mgattest.errors import InputError
    from mgattest.policy._modelbytes import read_model_bytes
    from mgattest.policy._pipeline import ModelVerifier

    (tmp_path / "m.bin").write_bytes(b"weights")
    with pytest.raises(InputError, match="needs a policy"):
        ModelVerifier(None).verify(read_model_bytes(tmp_path / "m.bin"))


def test_a_bundle_that_does_not_verify_is_a_recorded_denial(tmp_path):
    """Under a policy a bundle that fails verification (signed by an untrusted key) is
    a denial in the outcome and the audit log, not an exception; the verdict lists the
    model's files."""
    from typer.testing import CliRunner

    from mgattest.cli.app import app
    from mgattest.policy._pipeline import ModelVerifier, VerifyOptions
    from mgattest.policy._shortcuts import ShortcutOptions, effective_policy

    def mg(*args):
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output

    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    mg("keygen", "--out", tmp_path / "signer")
    mg("keygen", "--out", tmp_path / "other")
    mg("sign", model, "--key", tmp_path / "signer.key", "--no-log")
    audit = tmp_path / "audit.jsonl"
    policy = effective_policy(None, ShortcutOptions(keys=(str(tmp_path / "other.pub"),),
                                                    allow_unlogged=True))
    verifier = ModelVerifier(policy, options=VerifyOptions(audit_log=str(audit)))
    outcome = verifier.verify(str(model))
    assert not outcome.allowed and outcome.attestations == []
    assert outcome.verdict is not None and outcome.verdict.checks[0].clause == "bundles"
    assert [a["name"] for a in outcome.verdict.artifacts] == ["m.bin"]
    record = json.loads(audit.read_text().splitlines()[-1])
    assert record["decision"] == "deny"
