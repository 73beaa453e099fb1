"""The CI examples (docs/examples/) and the pre-commit hook (.pre-commit-hooks.yaml) parse,
call real mgattest commands with real options, and the hook refuses tampered and
unsigned models when run for real (by pre-commit itself when it is installed)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml

try:  # typer 0.2x carries its own copy of click; the app's commands are of that one
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer on the real click
    from click.exceptions import UsageError

import mgattest
from mgattest.cli.app import app
from tests.helpers.cli_runner import mg

REPO = Path(mgattest.__file__).resolve().parent.parent
GITHUB = REPO / "docs" / "examples" / "github-actions-models.yml"
GITLAB = REPO / "docs" / "examples" / "gitlab-ci-models.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
_COMMAND_START = {None, "do", "then", "else", "!"}


# --------------------------------------------------------------------------- command lines

def mgattest_commands(script: str) -> list[list[str]]:
    """Every ``mgattest ...`` command of a shell script, as its argument list.

    GitHub expressions ``${{ ... }}`` become a placeholder word; shell variables stay as
    written (they are values). A command ends at a shell operator.
    """
    script = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", script).replace("\\\n", " ")
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    commands: list[list[str]] = []
    previous: str | None = None
    for i, token in enumerate(tokens):
        if token == "mgattest" and (previous in _COMMAND_START or _is_operator(previous)):
            args = []
            for arg in tokens[i + 1:]:
                if _is_operator(arg):
                    break
                args.append(arg)
            commands.append(args)
        previous = token
    return commands


def _is_operator(token: str | None) -> bool:
    return token is not None and token != "" and set(token) <= set(";&|()\n")


def parse_with_app(args: list[str]) -> list[str]:
    """Parse ``mgattest *args`` with the real click command tree (every subcommand and
    option must exist and take the value given); the command path parsed."""
    command = typer.main.get_command(app)
    ctx = command.make_context("mgattest", list(args))
    path = []
    while hasattr(command, "resolve_command"):  # a group: the next word is a subcommand
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
        name, sub, rest = command.resolve_command(ctx, [*protected, *ctx.args])
        assert sub is not None and name is not None
        path.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return path


def _github_scripts(doc: dict) -> list[str]:
    return [step["run"] for job in doc["jobs"].values() for step in job["steps"]
            if "run" in step]


def _gitlab_scripts(doc: dict) -> list[str]:
    scripts = []
    for job in doc.values():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                scripts.extend(job.get(key, []))
    return scripts


def _hook() -> dict:
    (hook,) = yaml.safe_load(HOOKS.read_text())
    return hook


def _hook_script() -> str:
    argv = shlex.split(_hook()["entry"])
    assert argv[:2] == ["sh", "-c"]
    return argv[2]


def test_the_checker_rejects_what_the_app_does_not_have():
    assert parse_with_app(["verify", "m", "--policy", "p.yaml"]) == ["verify"]
    assert parse_with_app(["trust", "export", "--out", "r.json"]) == ["trust", "export"]
    for bad in (["verfiy", "m"], ["verify", "m", "--polcy", "p"], ["sign", "m", "--shard-size", "x"],
                ["sign", "m", "--key"]):
        with pytest.raises(UsageError):
            parse_with_app(bad)
    assert mgattest_commands("pip install mgattest && mgattest verify a --key k.pub | tee x") \
        == [["verify", "a", "--key", "k.pub"]]


@pytest.mark.parametrize("path, scripts, minimum", [
    (GITHUB, _github_scripts, 4), (GITLAB, _gitlab_scripts, 3)])
def test_ci_examples_call_real_commands(path, scripts, minimum):
    doc = yaml.safe_load(path.read_text())
    commands = [c for s in scripts(doc) for c in mgattest_commands(s)]
    assert len(commands) >= minimum
    parsed = {tuple(parse_with_app(c)) for c in commands}
    assert {("sign",), ("verify",)} <= parsed
    signs = [c for c in commands if c[0] == "sign"]
    assert signs and all("--keyless" in c for c in signs)
    assert any("--policy" in c for c in commands if c[0] == "verify")


def test_github_signs_on_tags_with_the_ambient_token_and_verifies_on_pull_requests():
    doc = yaml.safe_load(GITHUB.read_text())
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"push", "pull_request"} and triggers["push"]["tags"]
    sign, verify = doc["jobs"]["sign"], doc["jobs"]["verify"]
    assert sign["permissions"]["id-token"] == "write"
    assert "refs/tags/" in sign["if"] and "pull_request" in verify["if"]
    assert "id-token" not in doc["permissions"]  # only the signing job gets a token


def test_gitlab_signs_on_tags_with_an_id_token():
    doc = yaml.safe_load(GITLAB.read_text())
    sign = doc["sign-models"]
    assert sign["id_tokens"]["SIGSTORE_ID_TOKEN"]["aud"] == "sigstore"
    assert sign["rules"] == [{"if": "$CI_COMMIT_TAG"}]
    assert "merge_request_event" in doc["verify-models"]["rules"][0]["if"]


def test_pre_commit_manifest_is_valid_and_calls_real_commands():
    hook = _hook()
    commands = mgattest_commands(_hook_script())
    assert [parse_with_app(c) for c in commands] == [["verify"]]
    assert hook["pass_filenames"] is True and re.search(hook["files"], "m/model.safetensors")
    assert not re.search(hook["files"], "m/model.safetensors.sigstore.json")
    clientlib = pytest.importorskip("pre_commit.clientlib")
    (loaded,) = clientlib.load_manifest(str(HOOKS))  # pre-commit's own schema check
    assert loaded["id"] == "mgattest-verify"


# --------------------------------------------------------------------------- the hook, run

@pytest.fixture
def hook_repo(tmp_path, monkeypatch, keypair):
    """A git repository with one signed model and a policy pinned to its signer."""
    monkeypatch.setenv("MGATTEST_HOME", str(tmp_path / "home"))
    key, pub = keypair
    repo = tmp_path / "project"
    (repo / "models").mkdir(parents=True)
    (repo / ".mgattest").mkdir()
    model = repo / "models" / "classifier.bin"
    model.write_text("weights v1\n")
    assert mg("sign", model, "--key", key).exit_code == 0
    shutil.copy(pub, repo / ".mgattest" / "signer.pub")
    assert mg("trust", "export", "--out", repo / ".mgattest" / "root.json").exit_code == 0
    init = mg("policy", "init", model, "--bundle", f"{model}.sigstore.json", "--key",
              repo / ".mgattest" / "signer.pub", "--trusted-root",
              repo / ".mgattest" / "root.json", "-o", repo / ".mgattest" / "policy.yaml")
    assert init.exit_code == 0, init.output
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "mgattest").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mgattest "$@"\n')
    (shim / "mgattest").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO), "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return repo, env


def _run_entry(repo, env, files):
    """The hook as pre-commit runs it: entry + args + the staged file names."""
    hook = _hook()
    argv = [*shlex.split(hook["entry"]), *hook["args"], *files]
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def test_hook_entry_passes_good_and_refuses_tampered_and_unsigned(hook_repo):
    repo, env = hook_repo
    good = _run_entry(repo, env, ["models/classifier.bin"])
    assert good.returncode == 0, good.stdout + good.stderr
    (repo / "models" / "new.bin").write_text("never signed\n")
    unsigned = _run_entry(repo, env, ["models/classifier.bin", "models/new.bin"])
    assert unsigned.returncode != 0 and "new.bin.sigstore.json" in unsigned.stdout + unsigned.stderr
    (repo / "models" / "classifier.bin").write_text("weights v1, tampered\n")
    tampered = _run_entry(repo, env, ["models/classifier.bin"])
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_hook_under_pre_commit(hook_repo):
    """pre-commit runs the hook (a `repo: local` copy with `language: system`: a
    `language: python` hook would make pre-commit pip-install mgattest into a fresh
    virtualenv, which needs a package index; entry, args and files are the manifest's)."""
    pytest.importorskip("pre_commit")
    repo, env = hook_repo
    hook = {k: v for k, v in _hook().items() if k != "language"}
    config = {"repos": [{"repo": "local", "hooks": [{**hook, "language": "system"}]}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                       timeout=60)

    def pre_commit():
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=300)

    git("init", "-q")
    git("add", "-A")
    passed = pre_commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "mgattest verify" in passed.stdout and "Passed" in passed.stdout
    (repo / "models" / "classifier.bin").write_text("weights v1, tampered\n")
    git("add", "-A")
    failed = pre_commit()
    assert failed.returncode == 1 and "Failed" in failed.stdout
    assert "DENIED" in failed.stdout or "mismatch" in failed.stdout.lower(), failed.stdout
