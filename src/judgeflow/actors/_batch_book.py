"""What a batch judge keeps and asks outside its own loop: its parts in the run's book, the Batch API's retries,
and the entry points that read the book without running a judge (resume, ``--cancel``, the Ctrl-C prompt).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from judgeflow.calls.batching import BatchedJudge
from judgeflow.protocol.batches import BatchBook, BatchClient
from judgeflow.protocol.bus import Publish
from judgeflow.protocol.errors import RunStopped
from judgeflow.protocol.events import BatchProgress, CallRetry

from ._batch_parts import Part

__all__ = [
    "TAG_KEY",
    "BatchAPIError",
    "cancel_batches",
    "has_batches",
    "judge_parts",
    "progress_event",
    "retrying",
    "running_batches",
]

T = TypeVar("T")
TAG_KEY = "tag"
"""The book's record of the run's tag, which names its uploads (every other key is ``JUDGE#NNNN``)."""
_MAX_DELAY_S = 60.0


class BatchAPIError(RunStopped):
    """A call to the Batch API itself failed for good (a fatal error, or transient ones past every attempt): the
    run stops, resumable, as it does when an online call meets an unusable model or a server away too long."""


async def retrying(
    call: Callable[[], Awaitable[T]],
    client: BatchClient,
    *,
    attempts: int,
    first_delay_s: float,
    publish: Publish,
    what: str,
    role: str | None = None,
    outage_limit_s: float = 600.0,
) -> T:
    """One Batch API call, tried again on transient errors: after the provider's retry-after, or backing off from
    ``first_delay_s`` (doubling, at most a minute), ``attempts`` times; a server that does not answer at all is
    waited for up to ``outage_limit_s`` without counting attempts (a batch runs for hours: a short outage must not
    stop it). A fatal error, or the last attempt's, is `BatchAPIError`, which stops the run, resumable."""
    attempt = 0
    down_since: float | None = None
    while True:
        try:
            return await call()
        except Exception as error:
            decision = client.classify(error)
            now = anyio.current_time()
            if decision.kind == "unreachable":
                down_since = now if down_since is None else down_since
                if now - down_since > outage_limit_s:
                    raise BatchAPIError(
                        f"{what} failed: no answer for {now - down_since:.0f} s ({decision.detail})", role=role
                    ) from error
            else:
                down_since = None
                attempt += 1
                if decision.kind in ("fatal", "fatal_model") or attempt >= attempts:
                    raise BatchAPIError(f"{what} failed: {decision.detail}", role=role) from error
            delay = decision.retry_after_s
            if delay is None:
                delay = min(_MAX_DELAY_S, first_delay_s * 2.0 ** max(0, attempt - 1))
            key = client.key
            publish(CallRetry(key.provider, key.endpoint, key.model, attempt, delay, decision.kind, decision.detail))
            await anyio.sleep(delay)


def progress_event(part: Part) -> BatchProgress:
    return BatchProgress(
        part.judge,
        part.filename,
        part.batch_id or "",
        part.status,
        part.completed,
        part.failed,
        part.total or len(part.ids),
        part.message,
    )


def _parts(records: dict[str, str], name: str | None) -> list[Part]:
    prefix = None if name is None else f"{name}#"
    return [
        Part.from_json(key, text)
        for key, text in records.items()
        if key != TAG_KEY and (prefix is None or key.startswith(prefix))
    ]


async def judge_parts(book: BatchBook, name: str) -> list[Part]:
    """Judge ``name``'s parts, as their records last said."""
    return _parts(dict(await book.batch_records()), name)


async def has_batches(book: BatchBook, name: str) -> bool:
    """Whether judge ``name`` has batch records in ``book`` (a resumed run must re-attach them)."""
    return any(key.startswith(f"{name}#") for key in await book.batch_records())


async def running_batches(book: BatchBook) -> list[Part]:
    """Every part (of any judge) whose batch may still be running on the provider."""
    parts = _parts(dict(await book.batch_records()), None)
    return [part for part in parts if part.batch_id is not None and not part.ended]


async def cancel_batches(model: BatchedJudge, book: BatchBook, *, name: str) -> list[Part]:
    """Ask the provider to cancel every batch of judge ``name`` still running; returns those parts."""
    cancelled: list[Part] = []
    for part in await judge_parts(book, name):
        if part.batch_id is None or part.ended or part.status == "cancelling":
            continue  # nothing to cancel, or asked already
        try:
            state = await model.client.cancel(part.batch_id)
        except Exception as error:
            decision = model.client.classify(error)
            if decision.status != 409:  # a 409: it ended meanwhile, nothing to cancel
                raise BatchAPIError(f"batch cancel failed: {decision.detail}", role=name) from error
            state = await model.client.retrieve(part.batch_id)
        part.update(state)
        await book.put_batch_record(part.key, part.to_json())
        cancelled.append(part)
    return cancelled
