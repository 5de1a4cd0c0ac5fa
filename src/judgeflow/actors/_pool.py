"""The worker pool every actor runs on: N workers sharing one inbox and one outbox.

Written once so that every actor gets the same guarantees: the outbox is closed when the actor ends (normally,
by error or by cancellation), ``task_status.started()`` is called only when the workers are about to run,
cancellation is never swallowed, and a failure on one item is published as `ItemFailed` and counted without
stopping the others; a `RunStopped` (the run cannot go on) ends the actor instead. Items and counts are
published as events with the bus's non-blocking ``publish``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskStatus

from judgeflow.protocol.bus import Publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.errors import RunStopped
from judgeflow.protocol.events import ActorFinished, ActorStarted, ItemDone, ItemFailed

__all__ = ["PoolCounters", "describe_error", "run_pool"]

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(slots=True)
class PoolCounters(Generic[In]):
    items_in: int = 0
    items_out: int = 0
    failed: int = 0


def describe_error(error: BaseException) -> str:
    """A one-line description of an error for events and records (type and message, nothing else)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def run_pool(
    *,
    name: str,
    workers: int,
    inbox: Receiver[In],
    outbox: Sender[Out],
    handle: Callable[[In], Awaitable[Out | None]],
    item_id: Callable[[In], str],
    publish: Publish,
    task_status: TaskStatus[None],
) -> PoolCounters[In]:
    """Run ``handle`` on every inbox item with ``workers`` concurrent workers; send results to ``outbox``.

    ``handle`` returning ``None`` means "nothing to pass on" (not an error). An exception from ``handle`` is
    published as `ItemFailed` and the worker goes on, except `RunStopped`, which propagates (named after this
    actor) and ends the actor and the run; cancellation always propagates.
    """
    if workers < 1:
        raise ValueError(f"{name}: workers must be >= 1, got {workers}")
    counters: PoolCounters[In] = PoolCounters()

    async def worker() -> None:
        async for item in inbox:
            counters.items_in += 1
            try:
                result = await handle(item)
            except RunStopped as stop:
                # The run cannot go on (an unusable model, a server away too long): not this item's failure.
                if stop.role is None:
                    stop.role = name
                raise
            except Exception as error:
                counters.failed += 1
                publish(ItemFailed(name, item_id(item), describe_error(error)))
                continue
            if result is not None:
                await outbox.send(result)
                counters.items_out += 1
                publish(ItemDone(name, item_id(item)))

    with inbox:
        async with outbox:
            publish(ActorStarted(name, workers))
            task_status.started()
            try:
                async with anyio.create_task_group() as tg:
                    for _ in range(workers):
                        tg.start_soon(worker)
            finally:
                publish(ActorFinished(name, counters.items_in, counters.items_out, counters.failed))
    return counters
