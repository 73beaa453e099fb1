"""The mgattest CLI run in-process (typer's CliRunner)."""

from __future__ import annotations

from typer.testing import CliRunner

from mgattest.cli.app import app

runner = CliRunner()


def mg(*args, **kw):
    """Run ``mgattest *args`` in-process; each argument is passed as ``str``."""
    result = runner.invoke(app, [str(a) for a in args], **kw)
    return result
