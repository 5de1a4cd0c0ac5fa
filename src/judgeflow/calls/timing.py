"""Timing a model call and telling observers about it: the one place a `CallFinished` event is made.

Every call an actor makes to its model (a local stand-in too), and every provider call a role makes on its own
(the question writer's per-chunk calls, the embedding index's), is timed here and published once: with the
model that answered, its usage and cost when it succeeded, ``ok=False`` when it raised. Nothing else publishes
`CallFinished`, so the dashboard's per-model and per-actor figures count each call exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from judgeflow.protocol.bus import Publish
from judgeflow.protocol.events import CallFinished
from judgeflow.protocol.messages import Usage

__all__ = ["Billed", "CallTimer", "timed_call"]


class Billed(Protocol):
    """What a finished call reports: the model that answered, and what it used and cost (None when unknown)."""

    @property
    def model(self) -> str: ...

    @property
    def usage(self) -> Usage | None: ...

    @property
    def cost_usd(self) -> float | None: ...


B = TypeVar("B", bound=Billed)


@dataclass(slots=True)
class CallTimer:
    """Started when a call starts; `done` or `failed` publishes its `CallFinished` (for calls that are not awaited
    in one place, such as a batch judged in a worker thread)."""

    publish: Publish
    actor: str
    model: str
    started: float = field(default_factory=time.perf_counter)

    def done(self, model: str | None = None, usage: Usage | None = None, cost_usd: float | None = None) -> None:
        elapsed = time.perf_counter() - self.started
        self.publish(CallFinished(self.actor, model or self.model, elapsed, usage=usage, cost_usd=cost_usd))

    def failed(self) -> None:
        self.publish(CallFinished(self.actor, self.model, time.perf_counter() - self.started, ok=False))


async def timed_call(call: Callable[[], Awaitable[B]], *, publish: Publish, actor: str, model: str) -> B:
    """Await ``call()`` and publish its `CallFinished`; an exception is published as a failed call and re-raised."""
    timer = CallTimer(publish, actor, model)
    try:
        reply = await call()
    except Exception:
        timer.failed()
        raise
    timer.done(reply.model, reply.usage, reply.cost_usd)
    return reply
