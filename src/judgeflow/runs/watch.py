"""``judgeflow watch DIR``: the dashboard of a run that another process is running (or has finished).

A run writes every event to ``run.log`` as a JSON line (see `judgeflow.runs.logs`). Watching reads that log from
the last ``RunStarted`` (a resumed run appends to the same log), turns each line back into its event, and
feeds the same displays a live run uses; it keeps following the file until the run finishes. The watched run
is never touched: reading its log cannot slow it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from judgeflow.protocol import events as event_types
from judgeflow.protocol.events import Event, RunFinished
from judgeflow.protocol.messages import Usage

__all__ = ["event_from_line", "follow_log", "last_run_lines"]

_TYPES: dict[str, type[Any]] = {name: getattr(event_types, name) for name in event_types.__all__ if name != "Event"}
_NOT_FIELDS = ("event", "level", "timestamp")


def event_from_line(line: str) -> Event | None:
    """The event a ``run.log`` line records, or None for a line that is not an event (or not readable)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    cls = _TYPES.get(str(data.get("event")))
    if cls is None:
        return None
    names = {field.name for field in dataclasses.fields(cls)}
    values = {key: value for key, value in data.items() if key in names and key not in _NOT_FIELDS}
    if isinstance(values.get("usage"), dict):
        values["usage"] = Usage(**values["usage"])
    try:
        event: Event = cls(**values)
    except TypeError:
        return None
    return event


def last_run_lines(lines: list[str]) -> Iterator[str]:
    """The lines of the latest attempt: from the last ``RunStarted`` on (a resume appends to the log)."""
    start = 0
    for index, line in enumerate(lines):
        if '"event": "RunStarted"' in line:
            start = index
    yield from lines[start:]


async def follow_log(
    path: Path, send: MemoryObjectSendStream[Event], *, poll_s: float = 0.25, follow: bool = True
) -> None:
    """Send the events of ``path`` (latest attempt), then those appended, until the run finishes."""
    async with send:
        while not await anyio.Path(path).exists():
            if not follow:
                return
            await anyio.sleep(poll_s)
        handle = await anyio.open_file(path, encoding="utf-8")
        async with handle:
            text = await handle.read()
            complete, _, partial = text.rpartition("\n")
            for line in last_run_lines(complete.splitlines()):
                event = event_from_line(line)
                if event is not None:
                    await send.send(event)
                    if isinstance(event, RunFinished):
                        return
            buffer = partial
            while follow:
                chunk = await handle.read()
                if not chunk:
                    await anyio.sleep(poll_s)
                    continue
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    event = event_from_line(line)
                    if event is None:
                        continue
                    await send.send(event)
                    if isinstance(event, RunFinished):
                        return
