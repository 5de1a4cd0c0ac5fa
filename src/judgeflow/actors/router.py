"""Router: one inbox, several outboxes chosen per item, with an optional record of every item.

The pipeline is a graph, not a line: held-out answers go to the teacher and to both students, teacher
judgements on training items go to the Trainer and the rest to the Scorer. A Router does that fan-out in one
place, and is also where items are written to the run folder, so each kind of item is written exactly once,
by one task, in arrival order. It closes every outbox when its inbox ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskStatus

from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Receiver, Sender, Valve
from judgeflow.protocol.events import ActorFinished, ActorStarted

__all__ = ["Router"]

T = TypeVar("T")


class Router(Generic[T]):
    """Sends each item to the outboxes whose indices ``route(item)`` returns, after ``record(item)``.

    With a ``valve``, each item waits for the valve to be open: that is how intake is paused. ``persist`` is
    awaited for each item after ``record`` (writing it to the run store: it waits only when the store's write
    queue is full, which is backpressure, not a stall).
    """

    def __init__(
        self,
        route: Callable[[T], Sequence[int]],
        *,
        record: Callable[[T], None] | None = None,
        persist: Callable[[T], Awaitable[None]] | None = None,
        valve: Valve | None = None,
        name: str = "router",
        publish: Publish = null_publish,
    ) -> None:
        self.route = route
        self.record = record
        self.persist = persist
        self.valve = valve
        self.name = name
        self.publish = publish

    async def run(
        self,
        inbox: Receiver[T],
        outboxes: Sequence[Sender[T]],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        items = sent = 0
        with ExitStack() as stack:
            stack.enter_context(inbox)
            for outbox in outboxes:
                stack.enter_context(outbox)
            self.publish(ActorStarted(self.name, 1))
            task_status.started()
            try:
                async for item in inbox:
                    if self.valve is not None:
                        await self.valve.wait_open()
                    items += 1
                    if self.record is not None:
                        self.record(item)
                    if self.persist is not None:
                        await self.persist(item)
                    for index in self.route(item):
                        await outboxes[index].send(item)
                        sent += 1
            finally:
                self.publish(ActorFinished(self.name, items, sent, 0))


def everywhere(count: int) -> Callable[[object], Sequence[int]]:
    """A route that sends every item to all ``count`` outboxes."""
    targets = tuple(range(count))
    return lambda _item: targets
