"""The ``mgattest`` command line: a thin typer app over the library packages.

Each command group lives in its own module under ``mgattest.cli``; those modules
import nothing heavy at import time.
"""

from __future__ import annotations

import importlib
import os

# Typer's rich help renderer costs ~150 ms of imports (rich.markdown, markdown-it) on
# every `--help`; plain click help keeps start-up fast. Rich is still used for tables
# and progress bars inside commands. Set TYPER_USE_RICH=1 to get the rich help back.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # after TYPER_USE_RICH is set (ruff allows os.environ edits before imports)

app = typer.Typer(
    name="mgattest",
    help="Verifiable ML model supply chains: sign, log, verify and load models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # -h as well as --help, on every command (click passes this down to subcommands).
    context_settings={"help_option_names": ["-h", "--help"]},
)

# (module, attribute) pairs: a module exposing `register(app)` adds its commands.
_COMMAND_MODULES = [
    "mgattest.cli._log_cmds",
    "mgattest.cli._witness_cmds",  # `log witness`, under the log group
    "mgattest.cli._sign_cmds",
    "mgattest.cli._verify_cmds",
    "mgattest.cli._ca_cmds",
    "mgattest.cli._policy_cmds",
    "mgattest.cli._inspect_cmds",
    "mgattest.cli._blob_cmds",
    "mgattest.cli._audit_cmds",
    "mgattest.cli._migrate_cmds",
    "mgattest.cli._crypt_cmds",
    "mgattest.cli._search_cmds",
    "mgattest.cli._provenance_cmds",
]


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not written yet
                continue
            raise
        module.register(app)


_register_all()


def _print_version(value: bool) -> None:
    """Eager ``--version``: answer before click looks for a subcommand."""
    if value:
        from mgattest import __version__

        typer.echo(f"mgattest {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", is_eager=True,
                                 callback=_print_version, expose_value=True,
                                 help="Print the version and exit."),
) -> None:
    """mgattest: in-toto SLSA provenance, Sigstore bundles, a Rekor-compatible log."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
