"""The event bus: actors publish without ever waiting; each observer gets its own bounded buffer.

``publish()`` is synchronous and cannot block (trio's naming: it has no ``await``), so an actor's throughput is
independent of how fast the dashboard or a log writer reads. A subscriber whose buffer is full loses events, and
the next event it does receive is preceded by `Missed(count)`: it learns how much it missed instead of silently
seeing a thinner stream. Closing the bus ends every subscriber's ``async for`` loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .events import Event, Missed

__all__ = ["EventBus", "Publish"]

Publish = Callable[[Event], None]


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
