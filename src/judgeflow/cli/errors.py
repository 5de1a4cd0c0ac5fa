"""How the command line ends: one line for a mistake the user can fix (exit 2), 130 for a quit or Ctrl-C.

An error the user can fix (a bad config, a bad input line, an unknown judge, a folder that holds another run) is
printed as ``judgeflow: error: ...`` naming what is wrong, also when it comes out of a task group wrapped in an
exception group; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["USAGE", "fail", "run_async", "user_errors"]

T = TypeVar("T")
USAGE = 2
"""The exit status of a mistake the user can fix (as argparse uses for a bad command line)."""


def user_errors() -> tuple[type[Exception], ...]:
    from judgeflow.flows.wiring import JudgeSpecError
    from judgeflow.inputs.config import ConfigError
    from judgeflow.inputs.documents import DocumentError
    from judgeflow.inputs.items import InputError

    return (ConfigError, DocumentError, InputError, JudgeSpecError)


def fail(error: BaseException | str) -> int:
    print(f"judgeflow: error: {error}", file=sys.stderr)
    return USAGE


class UserError(Exception):
    """Carries a user error out of `run_async` (the caller turns it into `fail`)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run(main)``; a user error inside (alone, or the one user error of a group) raises `UserError`."""
    import anyio

    errors = user_errors()
    try:
        return anyio.run(main)
    except errors as error:
        raise UserError(error) from None
    except BaseExceptionGroup as group:
        found = _first_user_error(group, errors)
        if found is None:
            raise
        raise UserError(found) from None


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
