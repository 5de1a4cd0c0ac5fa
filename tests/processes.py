"""The ``judgeflow`` command line as a user types it, run by this test interpreter in a child process."""

from __future__ import annotations

import os
import sys


def judgeflow_command(*args: str | os.PathLike[str]) -> list[str]:
    """``judgeflow ARGS`` for ``subprocess``/``anyio.open_process``: the installed CLI, not a function call."""
    return [sys.executable, "-m", "judgeflow.cli", *(os.fspath(arg) for arg in args)]
