"""What every display of a run is: something that shows an event stream until it ends.

Two implement it: `judgeflow.tui.plain.PlainDisplay` (progress lines) and `judgeflow.tui.dashboard.TextualDisplay`
(the dashboard). The entry point chooses one, once, before the run starts; either only observes events, so however
slow the terminal, the actors never wait for it.
"""

from __future__ import annotations

from typing import Protocol

from anyio.streams.memory import MemoryObjectReceiveStream

from judgeflow.protocol.events import Event

__all__ = ["Display"]


class Display(Protocol):
    """Shows a run from its event stream until the stream ends."""

    async def show(self, events: MemoryObjectReceiveStream[Event]) -> None: ...
