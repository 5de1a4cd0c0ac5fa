"""The plain display: progress lines on stderr, for pipes, logs and ``--no-tui``.

The display is chosen once, at start, and only observes events: it folds them into counters and repaints on its
own timer, so however slow the terminal, the actors never wait for it. The plain display writes a progress line
to stderr every ``interval`` seconds (and at once when a server goes away or comes back: "server unreachable
since 14:02:11, retrying") and the final summary to stdout, which keeps stdout clean for pipes.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from anyio.streams.memory import MemoryObjectReceiveStream

from judgeflow.protocol.bus import batches
from judgeflow.protocol.events import (
    BatchProgress,
    Event,
    ItemDone,
    ItemFailed,
    Missed,
    RunFinished,
    RunStarted,
    ScoreUpdate,
    ServerDown,
    ServerUp,
    TrainingStatus,
)

from .views import OutageView

__all__ = ["PlainDisplay", "ProgressState"]


# Routers and writers move items between actors; counting them again would only repeat the actors' numbers.
_QUIET = frozenset({"question_router", "answer_router", "teacher_router", "student_router", "items", "writer"})


class ProgressState:
    """Counters folded from events (pure bookkeeping: no clock, no I/O)."""

    def __init__(self) -> None:
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.missed = 0
        self.training = ""
        self.scores: dict[str, ScoreUpdate] = {}
        self.last_errors: list[str] = []
        self.totals: dict[str, int] = {}
        """How many items each actor will get, when the run says so (a judge run names its judges' totals)."""
        self.outages: dict[str, OutageView] = {}
        """Servers that do not answer right now."""
        self.batches: dict[tuple[str, str], BatchProgress] = {}

    def fold(self, event: Event) -> None:
        if isinstance(event, ItemDone):
            self.done[event.actor] += 1
        elif isinstance(event, ItemFailed):
            self.failed[event.actor] += 1
            self.last_errors = [*self.last_errors[-4:], f"{event.actor} {event.item_id}: {event.error}"]
        elif isinstance(event, TrainingStatus):
            self.training = f"{event.student} {event.status}"
        elif isinstance(event, ScoreUpdate):
            self.scores[event.judge] = event
        elif isinstance(event, Missed):
            self.missed += event.count
        elif isinstance(event, RunStarted):
            self.totals.update(event.judges)
        elif isinstance(event, ServerDown):
            self.outages[event.server] = OutageView(event.server, event.since, event.detail, event.probes)
        elif isinstance(event, ServerUp):
            self.outages.pop(event.server, None)
        elif isinstance(event, BatchProgress):
            self.batches[(event.judge, event.part)] = event

    def line(self) -> str:
        """Items done per actor (in the order actors first reported), training, live agreement, failures."""
        parts = [
            f"{actor} {count}" + (f"/{self.totals[actor]}" if actor in self.totals else "")
            for actor, count in self.done.items()
            if actor not in _QUIET
        ]
        if self.training:
            parts.append(f"[{self.training}]")
        for judge, update in sorted(self.scores.items()):
            pearson = update.metrics.get("pearson")
            shown = f"{pearson:.3f}" if isinstance(pearson, float) else "n/a"
            parts.append(f"r({judge})={shown} n={update.n}")
        failed = sum(self.failed.values())
        if failed:
            parts.append(f"failed {failed}")
        parts.extend(outage.line() for outage in self.outages.values())
        if self.batches:
            parts.append("batches " + ", ".join(_batch(batch) for batch in self.batches.values()))
        return " | ".join(parts)


def _batch(batch: BatchProgress) -> str:
    """``#0002 in_progress 120/50,000`` (and ``failed N``, and why a batch failed)."""
    number = batch.part.removesuffix(".jsonl").rpartition("-")[2] or batch.part
    text = f"#{number} {batch.status} {batch.completed:,}/{batch.total:,}"
    if batch.failed:
        text += f" failed {batch.failed:,}"
    return text + (f" ({batch.message})" if batch.message else "")


class PlainDisplay:
    """Progress lines on stderr, at most one per ``interval`` seconds, and a last one when the run ends."""

    def __init__(self, *, interval: float = 1.0, stream: TextIO | None = None) -> None:
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.state = ProgressState()
        self.finished: RunFinished | None = None

    async def show(self, events: MemoryObjectReceiveStream[Event]) -> None:
        last = time.monotonic()
        with events:
            async for batch in batches(events):
                server_news = False
                for event in batch:
                    self.state.fold(event)
                    if isinstance(event, RunFinished):
                        self.finished = event
                    server_news = server_news or isinstance(event, ServerDown | ServerUp)
                now = time.monotonic()
                # A server going away or coming back is news at once; while it is away little else happens, so
                # each failed probe's event is what keeps the line coming.
                if server_news or now - last >= self.interval:
                    last = now
                    self._print()
        self._print()

    def _print(self) -> None:
        print(self.state.line(), file=self.stream, flush=True)
