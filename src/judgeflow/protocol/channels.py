"""Bounded, typed channels between actors, with the statistics a dashboard needs to find stalls.

A `Channel` is an anyio memory object stream with a small fixed buffer plus a `ChannelStats` record shared by
every clone of its sender. The sender measures how long it had to wait for room: a stage whose outbox senders
wait a lot is faster than its consumer, which is exactly where the pipeline stalls. The receiving end is the
plain anyio stream (``async for item in channel.receiver``), so consumers pay nothing extra.

Closing is the end of the stream: the actor that owns a sender closes it (``async with sender:``) and the
consumer's ``async for`` ends once every clone is closed. A consumer that went away shows up upstream as
``anyio.BrokenResourceError``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["Channel", "ChannelStats", "Receiver", "Sender", "Valve"]

T = TypeVar("T")

Receiver = MemoryObjectReceiveStream


@dataclass(slots=True)
class ChannelStats:
    """Live counters of one channel (mutable; read them, don't write them)."""

    name: str
    capacity: int
    sent: int = 0
    peak: int = 0
    wait_s: float = 0.0
    _stream: MemoryObjectSendStream[object] | None = None

    @property
    def closed(self) -> bool:
        """True once every sender of the channel (all clones) is closed: the stream has ended."""
        return self._stream is None or self._stream.statistics().open_send_streams == 0

    @property
    def current(self) -> int:
        """Items buffered right now (0 once the channel is closed)."""
        if self._stream is None:
            return 0
        try:
            return self._stream.statistics().current_buffer_used
        except anyio.ClosedResourceError:
            return 0


class Sender(Generic[T]):
    """The sending end of a `Channel`: like anyio's send stream, but it keeps `ChannelStats`."""

    __slots__ = ("_stats", "_stream")

    def __init__(self, stream: MemoryObjectSendStream[T], stats: ChannelStats) -> None:
        self._stream = stream
        self._stats = stats

    @property
    def stats(self) -> ChannelStats:
        return self._stats

    async def send(self, item: T) -> None:
        """Send ``item``, waiting for room; the time spent waiting is added to ``stats.wait_s``."""
        stream = self._stream
        # Yield first: it keeps the loop fair for a producer that never has to wait, and in a cancelled scope
        # it raises cancellation here, before a consumer that was cancelled first could be seen as broken.
        await anyio.lowlevel.checkpoint()
        try:
            stream.send_nowait(item)
        except anyio.WouldBlock:
            started = time.perf_counter()
            try:
                await stream.send(item)
            finally:
                self._stats.wait_s += time.perf_counter() - started
        stats = self._stats
        stats.sent += 1
        used = stream.statistics().current_buffer_used
        if used > stats.peak:
            stats.peak = used

    def send_nowait(self, item: T) -> None:
        """Send without waiting; raises ``anyio.WouldBlock`` when the buffer is full."""
        self._stream.send_nowait(item)
        stats = self._stats
        stats.sent += 1
        used = self._stream.statistics().current_buffer_used
        if used > stats.peak:
            stats.peak = used

    def clone(self) -> Sender[T]:
        """Another handle on the same channel; the stream ends when every clone is closed."""
        return Sender(self._stream.clone(), self._stats)

    def close(self) -> None:
        self._stream.close()

    async def aclose(self) -> None:
        self._stream.close()

    async def __aenter__(self) -> Sender[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stream.close()

    def __enter__(self) -> Sender[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.close()


class Channel(Generic[T]):
    """A bounded channel: ``Channel[Question]("questions", 16)`` gives ``.sender`` and ``.receiver``."""

    __slots__ = ("receiver", "sender", "stats")

    def __init__(self, name: str, capacity: int = 16) -> None:
        if capacity < 0:
            raise ValueError(f"channel {name!r}: capacity must be >= 0, got {capacity}")
        send, receive = anyio.create_memory_object_stream[T](capacity)
        self.stats = ChannelStats(name=name, capacity=capacity)
        self.stats._stream = send  # type: ignore[assignment]
        self.sender: Sender[T] = Sender(send, self.stats)
        self.receiver: MemoryObjectReceiveStream[T] = receive


class Valve:
    """Lets items through while open; ``close_valve()`` pauses a stage's intake until ``open_valve()``.

    A paused stage simply stops taking new items; everything upstream then waits on its bounded channels, so
    pausing needs no other cooperation. Work already in flight downstream finishes normally.
    """

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open = anyio.Event()
        self._open.set()

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    def close_valve(self) -> None:
        if self._open.is_set():
            self._open = anyio.Event()

    def open_valve(self) -> None:
        self._open.set()

    async def wait_open(self) -> None:
        await self._open.wait()
