"""Errors that end a run on purpose: the run cannot usefully go on, and going on would only write failures.

`RunStopped` is the one type every layer raises or lets through for that: the call gate when a model is unusable
or a server stays unreachable, a stage that can produce nothing the next stage can use. Actors re-raise it instead
of failing the item, so the items not done stay pending in the run's store and ``--resume`` does them once the
cause is fixed; the command line prints its ``message`` as one line and exits non-zero.

Every field is kept on the instance and the constructor's first argument is the reason, so these errors pickle
(a worker process's stop reaches its driver intact).
"""

from __future__ import annotations

__all__ = ["ModelUnusable", "NothingUsable", "RunStopped", "ServerUnreachable", "find_stop"]


class RunStopped(Exception):
    """The run stopped: ``reason`` says why in one line (no secrets); ``role`` names who hit it, once known.

    The actor that meets the error sets ``role`` (``"teacher"``, ``"openai:gpt-4o"``...) when it is not set yet.
    """

    def __init__(self, reason: str, *, role: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.role = role

    @property
    def message(self) -> str:
        """The line a user reads: who stopped the run, and why."""
        return f"{self.role}: {self.reason}" if self.role else self.reason

    def __str__(self) -> str:
        return self.message


class ModelUnusable(RunStopped):
    """Every call to ``model`` on ``server`` would fail alike: a rejected key, a model the server does not have
    or will not let this key use, an account out of quota. ``detail`` is the server's own words, ``hint`` what
    the user can check (where the key came from)."""

    def __init__(
        self,
        reason: str,
        *,
        model: str = "",
        server: str = "",
        status: int | None = None,
        detail: str = "",
        hint: str | None = None,
        role: str | None = None,
    ) -> None:
        super().__init__(reason, role=role)
        self.model = model
        self.server = server
        self.status = status
        self.detail = detail
        self.hint = hint

    @property
    def message(self) -> str:
        # A judge run names its judges by model ("openai:gpt-4o"): saying it twice helps no one.
        if self.role and self.role != self.model:
            return f"{self.role} ({self.model}): {self.reason}"
        return f"{self.model}: {self.reason}" if self.model else super().message


class ServerUnreachable(RunStopped):
    """``server`` gave no answer for longer than the run allows: the grace when it never answered in this run
    (a wrong URL, a closed port, a TLS or DNS error), the outage limit when it had answered before."""

    def __init__(
        self,
        reason: str,
        *,
        server: str = "",
        down_s: float = 0.0,
        detail: str = "",
        ever_answered: bool = False,
        role: str | None = None,
    ) -> None:
        super().__init__(reason, role=role)
        self.server = server
        self.down_s = down_s
        self.detail = detail
        self.ever_answered = ever_answered


class NothingUsable(RunStopped):
    """``stage`` produced nothing the next stage can use (no usable question, no scored verdict, no training
    example, no trained model): ``reason`` names the stage with its counts and a sample reply. Raised once the run
    has stored everything it paid for and written its report."""

    def __init__(self, reason: str, *, stage: str, role: str | None = None) -> None:
        super().__init__(reason, role=role)
        self.stage = stage


def find_stop(error: BaseException) -> RunStopped | None:
    """The `RunStopped` in ``error``, also when a task group wrapped it in an exception group (the first found)."""
    if isinstance(error, RunStopped):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = find_stop(inner)
            if found is not None:
                return found
    return None
