"""A shard worker: a Ray actor that judges one shard at a time with judgeflow's own judging.

Each shard is an ordinary ``judgeflow judge`` run (`judgeflow.flows.judging.open_judging`) of the shard's items
into the shard's output, with its own store, always opened with ``resume``: a shard that was never started
starts afresh, one that a dead worker left half done goes on from its store (verdicts kept, paid calls answered
from its cache), so a re-run shard is neither lost nor judged twice. The provider judges' gates take their rate
and in-flight slots from the cluster's limiter (`judgeflow.flows.ray.limiter`).

What a shard ends with comes back as a `ShardOutcome` value, a stop included (a `RunStopped` pickles whole), so
the driver can end the run with the same line and exit status as a single-process run.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from judgeflow.core.stages import StageCount
from judgeflow.flows.judging import JudgeSummary, open_judging
from judgeflow.flows.ray.limiter import LeasedBudget, leased_permits
from judgeflow.flows.ray.shards import Shard
from judgeflow.flows.wiring import resolve_judge
from judgeflow.inputs.config import ConfigError, JudgingConfig
from judgeflow.protocol.errors import NothingUsable, RunStopped, find_stop
from judgeflow.protocol.models import JudgeModel

__all__ = ["ShardJob", "ShardOutcome", "ShardWorker", "judge_shard", "shard_lock"]


@dataclass(frozen=True, slots=True)
class ShardJob:
    """What a worker is asked: judge ``shard`` as ``config`` says (its items and output are the shard's)."""

    shard: Shard
    config: JudgingConfig
    holder: str  # the name the limiter knows this attempt's slots by
    limiter: Any = None  # the `ClusterLimiter` actor handle (None: limits kept per worker)
    cache_dir: Path | None = None
    lease: int = 4
    budget_slice_usd: float = 0.0  # how much of ``--max-cost`` a worker draws at a time


@dataclass(frozen=True, slots=True)
class ShardOutcome:
    """How a shard's run ended: its counts, or why it stopped (``stop``) or could not start (``error``)."""

    index: int
    items: int = 0
    lines: int = 0
    labelled: int = 0
    judges: Mapping[str, StageCount] = field(default_factory=dict)
    cost_usd: float = 0.0  # the shard's spending, across its resumes
    stop: RunStopped | None = None
    error: str | None = None  # a user error (a config that does not match the shard's earlier run)
    pid: int = 0


class ShardWorker:
    """The actor's body (``ray.remote(ShardWorker)``): one shard at a time, each in a fresh event loop.

    Local judges (a MiniLM student's weights) are loaded once per worker and kept for its later shards.
    """

    def __init__(self) -> None:
        self._local: dict[str, JudgeModel] = {}

    def pid(self) -> int:
        return os.getpid()

    def judge(self, job: ShardJob) -> ShardOutcome:
        with shard_lock(job.shard):
            return anyio.run(partial(judge_shard, job, local=self._resolve))

    def _resolve(self, spec: str) -> JudgeModel:
        model = self._local.get(spec)
        if model is None:
            model = self._local[spec] = resolve_judge(spec)
        return model


@contextmanager
def shard_lock(shard: Shard) -> Iterator[None]:
    """Hold the shard for this process: a worker of a killed driver may live on for a moment, and two processes
    writing one shard's output would duplicate lines. The lock is the kernel's, so it goes with a dead process."""
    shard.folder.mkdir(parents=True, exist_ok=True)
    with (shard.folder / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def judge_shard(job: ShardJob, *, local: Callable[[str], JudgeModel] | None = None) -> ShardOutcome:
    """Judge one shard to its end (see the module docstring); the limiter's slots are freed however it ends."""
    config = dataclasses.replace(job.config, items=job.shard.items_path, out=job.shard.out)
    permits = allowance = None
    if job.limiter is not None:
        permits = leased_permits(job.limiter, holder=job.holder, lease=job.lease)
        if config.max_cost_usd is not None:
            allowance = LeasedBudget(job.limiter, holder=job.holder, slice_usd=job.budget_slice_usd)
    try:
        async with open_judging(
            config, resume=True, cache_dir=job.cache_dir, permits=permits, local=local, allowance=allowance
        ) as run:
            async for _event in run.events:
                pass  # nobody watches a shard's events: drained so the run never waits on them
            summary: JudgeSummary | None
            try:
                summary = await run.wait()
            except NothingUsable:
                summary = run.summary  # the driver decides on the counts of every shard together
            assert summary is not None
            return ShardOutcome(
                job.shard.index,
                items=summary.items,
                lines=summary.lines_written,
                labelled=summary.labelled,
                judges=dict(summary.judges),
                cost_usd=summary.cost_usd,
                pid=os.getpid(),
            )
    except ConfigError as error:
        return ShardOutcome(job.shard.index, error=str(error), pid=os.getpid())
    except BaseException as error:
        stop = find_stop(error)
        if stop is None:
            raise
        return ShardOutcome(job.shard.index, stop=stop, pid=os.getpid())
    finally:
        if job.limiter is not None:
            job.limiter.forget.remote(job.holder)  # sent, not awaited: nothing here depends on its answer
