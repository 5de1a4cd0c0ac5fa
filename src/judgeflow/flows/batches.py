"""Batch mode's own entry points beside judging: what a judge run has running on a Batch API, and cancelling it.

``judgeflow judge ... --cancel`` (and Ctrl-C, when the user says so) asks the provider to cancel every batch of
the run still running; the run's records say which they are (`judgeflow.actors.batch_judge`). Cancelling loses
nothing: the requests a batch finished are collected by the next ``--resume``, the others are sent again.
"""

from __future__ import annotations

from dataclasses import dataclass

from judgeflow.actors._batch_parts import Part
from judgeflow.actors.batch_judge import cancel_batches, running_batches
from judgeflow.calls.batching import BatchedJudge
from judgeflow.flows.wiring import resolve_judges
from judgeflow.inputs.config import JudgingConfig
from judgeflow.runs.context import open_run

__all__ = ["BatchSummary", "cancel_judging_batches", "judging_batches"]


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """One batch of a judge run, as its record last saw it."""

    judge: str
    filename: str
    batch_id: str | None
    status: str
    requests: int

    @classmethod
    def of(cls, part: Part) -> BatchSummary:
        return cls(part.judge, part.filename, part.batch_id, part.status, len(part.ids))


async def judging_batches(config: JudgingConfig) -> list[BatchSummary]:
    """The batches of the judge run writing ``config.out`` that may still be running on the provider."""
    async with open_run(
        config.out.parent, config.summary(), filename=config.store_filename, resume=True, holder=str(config.out)
    ) as context:
        return [BatchSummary.of(part) for part in await running_batches(context.store)]


async def cancel_judging_batches(config: JudgingConfig) -> list[BatchSummary]:
    """Cancel every running batch of the judge run writing ``config.out``; returns them as they are now."""
    async with open_run(
        config.out.parent, config.summary(), filename=config.store_filename, resume=True, holder=str(config.out)
    ) as context:
        judges, resources = await resolve_judges(config.judges, base_url=config.base_url, batch=True)
        cancelled: list[BatchSummary] = []
        async with resources:
            for name, model in judges:
                if isinstance(model, BatchedJudge):
                    parts = await cancel_batches(model, context.store, name=name)
                    cancelled.extend(BatchSummary.of(part) for part in parts)
        return cancelled
