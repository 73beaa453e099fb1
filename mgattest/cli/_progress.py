"""The progress bar shown while a large model is hashed (``sign``, ``verify``)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

from mgattest._text import show

#: Called with the number of bytes hashed so far (the pipelines' ``progress`` argument).
ProgressCallback = Callable[[int], None]


def _model_size(model: Path) -> int:
    if model.is_file():
        return model.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(model):
        for name in files:
            with contextlib.suppress(OSError):
                # followed: a Hugging Face snapshot's files are links to its blobs
                total += os.stat(os.path.join(root, name)).st_size
    return total


@contextlib.contextmanager
def hashing_progress(model: Path,
                     label: str = "hashing") -> Iterator[ProgressCallback | None]:
    """A rich progress bar on stderr while hashing large models (TTY only): yields the
    callback that advances it, or None when no bar is shown."""
    if not sys.stderr.isatty() or not model.exists():
        yield None
        return
    total = _model_size(model)
    if total < 64 * 1024 * 1024:
        yield None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                               TransferSpeedColumn)

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        # the description is rich markup: a name like "[red]x" must print as written
        task = bar.add_task(f"{label} {escape(show(model.name))}", total=total)

        def advance(done: int) -> None:
            bar.update(task, completed=done)

        yield advance
