"""The event bus: actors publish without ever waiting; each observer gets its own bounded buffer.

``publish()`` is synchronous and cannot block (trio's naming: it has no ``await``), so an actor's throughput is
independent of how fast the dashboard or a log writer reads. A subscriber whose buffer is full loses events, and
the next event it does receive is preceded by `Missed(count)`: it learns how much it missed instead of silently
seeing a thinner stream. Closing the bus ends every subscriber's ``async for`` loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .events import Event, Missed

__all__ = ["EventBus", "Publish", "batches"]

Publish = Callable[[Event], None]
T = TypeVar("T")

_MAX_BATCH = 10_000


class _Subscriber:
    __slots__ = ("missed", "send")

    def __init__(self, send: MemoryObjectSendStream[Event]) -> None:
        self.send = send
        self.missed = 0


class EventBus:
    """Fan-out of events to any number of subscribers, each with a bounded buffer."""

    def __init__(self) -> None:
        self._subscribers: list[_Subscriber] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber that has room; count it as missed for the others."""
        gone: list[_Subscriber] = []
        for sub in self._subscribers:
            try:
                if sub.missed:
                    sub.send.send_nowait(Missed(sub.missed))
                    sub.missed = 0
                sub.send.send_nowait(event)
            except anyio.WouldBlock:
                sub.missed += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                gone.append(sub)
        for sub in gone:
            # The subscriber went away; forget it rather than fail the publisher.
            sub.send.close()
            self._subscribers.remove(sub)

    def subscribe_nowait(self, *, buffer: int = 4096) -> MemoryObjectReceiveStream[Event]:
        """A receive stream of every event published from now on; iterate it with ``async for``."""
        send, receive = anyio.create_memory_object_stream[Event](buffer)
        if self._closed:
            send.close()
        else:
            self._subscribers.append(_Subscriber(send))
        return receive

    @asynccontextmanager
    async def subscribe(self, *, buffer: int = 4096) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        """Like `subscribe_nowait`, closing the stream (and unsubscribing) on exit."""
        receive = self.subscribe_nowait(buffer=buffer)
        with receive:
            yield receive

    def close(self) -> None:
        """End every subscriber's stream (after the events already buffered for it)."""
        self._closed = True
        for sub in self._subscribers:
            sub.send.close()
        self._subscribers.clear()


def null_publish(event: Event) -> None:
    """A `Publish` that drops everything: for actors used without observers."""


async def batches(stream: MemoryObjectReceiveStream[T]) -> AsyncIterator[list[T]]:
    """A subscription's events a batch per wake: wait for one, then take every one already buffered.

    Why: an observer that wakes for every event costs the event loop a task switch per event, several per judged
    item; the actors of one loop iteration publish many, and taking the backlog costs one switch per wake.
    """
    while True:
        try:
            batch = [await stream.receive()]
        except anyio.EndOfStream:
            return
        with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
            while len(batch) < _MAX_BATCH:
                batch.append(stream.receive_nowait())
        yield batch
