"""How the command line ends: one line for a mistake the user can fix (exit 2), one line for a run that stopped
(exit 1), 130 for a quit or Ctrl-C.

An error the user can fix before anything runs (a bad config, a bad input line, an unknown judge, a folder that
holds another run) is printed as ``judgeflow: error: ...`` naming what is wrong. A run that stopped on purpose
(`judgeflow.protocol.errors.RunStopped`: an unusable model, a server away too long) is printed the same way, with
how to continue it once fixed. Both are found also when a task group wrapped them in an exception group; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from judgeflow.protocol.errors import RunStopped, find_stop

__all__ = ["STOPPED", "USAGE", "RunStoppedExit", "UserError", "fail", "run_async", "stopped", "user_errors"]

T = TypeVar("T")
USAGE = 2
"""The exit status of a mistake the user can fix (as argparse uses for a bad command line)."""
STOPPED = 1
"""The exit status of a run that stopped before its end (`RunStopped`); what it did is kept, ``--resume`` goes on."""


def user_errors() -> tuple[type[Exception], ...]:
    from judgeflow.flows.wiring import JudgeSpecError
    from judgeflow.inputs.config import ConfigError
    from judgeflow.inputs.documents import DocumentError
    from judgeflow.inputs.errors import InputError

    return (ConfigError, DocumentError, InputError, JudgeSpecError)


def fail(error: BaseException | str) -> int:
    print(f"judgeflow: error: {error}", file=sys.stderr)
    return USAGE


def stopped(error: RunStopped, resume: str) -> int:
    """Print why the run stopped, and ``resume`` (the command that continues it); returns `STOPPED`."""
    print(f"judgeflow: error: {error.message}", file=sys.stderr)
    print(f"judgeflow: the run stopped; what was done is kept. Once fixed, continue it with: {resume}", file=sys.stderr)
    return STOPPED


class UserError(Exception):
    """Carries a user error out of `run_async` (the caller turns it into `fail`)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class RunStoppedExit(Exception):
    """Carries a `RunStopped` out of `run_async` (the caller turns it into `stopped`)."""

    def __init__(self, error: RunStopped) -> None:
        super().__init__(error.message)
        self.error = error


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run(main)``; a user error inside (alone, or the one user error of a group) raises `UserError`, a
    stopped run `RunStoppedExit`."""
    import anyio

    errors = user_errors()
    try:
        return anyio.run(main)
    except errors as error:
        raise UserError(error) from None
    except RunStopped as error:
        raise RunStoppedExit(error) from None
    except BaseExceptionGroup as group:
        found = _first_user_error(group, errors)
        if found is not None:
            raise UserError(found) from None
        stop = find_stop(group)
        if stop is None:
            raise
        raise RunStoppedExit(stop) from None


def _first_user_error(
    group: BaseExceptionGroup[BaseException], errors: tuple[type[Exception], ...]
) -> BaseException | None:
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    return next((leaf for leaf in leaves if isinstance(leaf, errors)), None)
