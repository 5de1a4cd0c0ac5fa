"""The Ray driver of ``judgeflow judge --ray``: plan the shards, keep every worker busy, restart the dead, merge.

The driver claims the run like a single-process one (``--resume`` to continue, ``--restart`` to start over), cuts
the items into shards once (`judgeflow.flows.ray.shards`), starts the cluster's limiter and ``workers`` shard
workers (`judgeflow.flows.ray.worker`), and hands each idle worker the next shard. A worker that dies (its
process killed, its node lost) is replaced and its shard given again, which resumes from the shard's store; a
shard whose worker dies ``max_restarts`` times stops the run, resumably. A shard that stops (an unusable model, a
server away too long) stops the run with that stop, as a single-process run would. When every shard is done,
their outputs are merged into ``--out``.

Ctrl-C or a killed driver loses no paid work: every shard's verdicts and paid calls are in its store, and
``--resume`` goes on from them. This is the only module that imports Ray (the import-linter contract says so).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import ray
import ray.exceptions

from judgeflow.core.stages import StageCount
from judgeflow.flows.judging import nothing_scored
from judgeflow.flows.ray.limiter import ClusterLimiter, LimiterStats
from judgeflow.flows.ray.shards import Shard, ShardPlan, cut_shards, forget, merge_outputs, ray_folder
from judgeflow.flows.ray.worker import ShardJob, ShardOutcome, ShardWorker
from judgeflow.inputs.config import ConfigError, EngineConfig, JudgingConfig
from judgeflow.inputs.tables import parquet_module, table_format
from judgeflow.protocol.errors import NothingUsable, RunStopped
from judgeflow.report.pages import JudgeReport, write_judge_report
from judgeflow.runs.store import RunStore

__all__ = ["RayOptions", "RaySummary", "judge_on_ray"]


@dataclass(frozen=True, slots=True)
class RayOptions:
    """How a judge run uses Ray: ``address`` of a cluster (None: start a local one with ``num_cpus``), how many
    shard ``workers``, how many items per shard, CPUs per worker (default: one, or the cluster's CPUs shared
    out when there are more workers than CPUs), how often a shard's worker may die before the run stops, and how
    many permits a worker leases per round trip to the limiter. `from_config` takes the first four from a
    config's ``[engine]``."""

    address: str | None = None
    workers: int = 2
    shard_size: int = 10_000
    num_cpus: int | None = None
    cpus_per_worker: float | None = None
    max_restarts: int = 3
    lease: int = 4

    def __post_init__(self) -> None:
        for name in ("workers", "shard_size", "lease"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_restarts < 0:
            raise ConfigError(f"max_restarts must be >= 0, got {self.max_restarts}")

    @classmethod
    def from_config(cls, engine: EngineConfig) -> RayOptions:
        return cls(engine.address, engine.workers, engine.shard_size, engine.num_cpus)


@dataclass(frozen=True, slots=True)
class RaySummary:
    """How a Ray judge run ended: what the single-process `judgeflow.flows.judging.JudgeSummary` says, and
    how many shards, workers and worker restarts it took."""

    items: int
    lines_written: int
    shards: int
    workers: int
    restarts: int
    labelled: int = 0
    judges: Mapping[str, StageCount] = field(default_factory=dict)
    cost_usd: float = 0.0
    report: JudgeReport | None = None
    limiter: LimiterStats | None = None


Notify = Callable[[str], None]
Started = Callable[[Shard, int], None]
"""Told each shard as a worker takes it, with the worker's process id (the tests kill it)."""


def judge_on_ray(
    config: JudgingConfig,
    options: RayOptions | None = None,
    *,
    resume: bool = False,
    restart: bool = False,
    cache_dir: Path | None = None,
    notify: Notify = lambda _line: None,
    on_start: Started | None = None,
) -> RaySummary:
    """Judge ``config.items`` into ``config.out`` on Ray (see the module docstring). Raises what a single-process
    run raises: `ConfigError` / `InputError` before anything is spent, a `RunStopped` when the run stopped.
    ``options`` default to the config's ``[engine]`` (`RayOptions.from_config`)."""
    if options is None:
        options = RayOptions.from_config(config.engine)
    if config.batch:
        raise ConfigError(
            "--batch cannot be used with --ray: judge through the Batch API in one process, without --ray"
        )
    for path, doing in ((config.items, "reading"), (config.out, "writing")):
        if table_format(path) == "parquet":
            parquet_module(path, doing=doing)  # without pyarrow: one line naming its install, before anything runs
    folder = ray_folder(config.out)
    single = config.out.parent / config.store_filename
    if restart:
        forget(folder)
        single.unlink(missing_ok=True)
    elif single.exists():
        raise ConfigError(
            f"{config.out} holds a run judged without --ray: resume it without --ray, or use --restart to start over"
        )
    plan = _claim(config, options, folder, resume=resume)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=options.address,
            num_cpus=None if options.address else options.num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
    try:
        return _run(config, options, plan, cache_dir=cache_dir, notify=notify, on_start=on_start)
    finally:
        if started_here:
            ray.shutdown()


def _claim(config: JudgingConfig, options: RayOptions, folder: Path, *, resume: bool) -> ShardPlan:
    """The run's shard plan: the earlier one when resuming it, a new cut otherwise (refused over earlier work)."""
    plan = ShardPlan.load(folder)
    run = config.summary()
    if plan is not None and anyio.run(_holds_work, plan.shards):
        if not resume:
            raise ConfigError(
                f"{config.out} already holds a run: use --resume to continue it or --restart to start over"
            )
        if dict(plan.run) != run:
            keys = sorted(k for k in {*plan.run, *run} if plan.run.get(k) != run.get(k))
            raise ConfigError(
                f"{config.out} was judged with other settings ({', '.join(keys)} differ): resume it with the same "
                "items and judges, or use --restart to start over"
            )
        return plan
    forget(folder)  # nothing was done there: an unfinished cut, or a run that stopped before its first verdict
    return cut_shards(config.items, folder, shard_size=options.shard_size, run=run)


async def _holds_work(shards: Sequence[Shard]) -> bool:
    for shard in shards:
        name = shard.out.name + ".store.sqlite"
        if (shard.folder / name).exists():
            async with await RunStore.open(shard.folder, filename=name) as store:
                if await store.holds_work():
                    return True
    return False


def _run(
    config: JudgingConfig,
    options: RayOptions,
    plan: ShardPlan,
    *,
    cache_dir: Path | None,
    notify: Notify,
    on_start: Started | None,
) -> RaySummary:
    count = min(options.workers, len(plan.shards))
    cpus = options.cpus_per_worker
    if cpus is None:
        cpus = min(1.0, float(ray.cluster_resources().get("CPU", 1.0)) / count)
    worker_class = ray.remote(ShardWorker).options(num_cpus=cpus, max_restarts=0)
    limiter = ray.remote(ClusterLimiter).options(num_cpus=0).remote(config.max_cost_usd)
    # A worker draws the budget in slices: small enough that the slices other workers hold near the cap are a
    # small share of it, large enough that drawing is rare.
    budget_slice = (config.max_cost_usd or 0.0) / (16 * count)
    workers: list[Any] = []
    pending: collections.deque[tuple[Shard, int]] = collections.deque((shard, 0) for shard in plan.shards)
    running: dict[Any, tuple[Any, Shard, int]] = {}
    outcomes: dict[int, ShardOutcome] = {}
    restarts = 0
    notify(f"ray: {plan.total} items in {len(plan.shards)} shard(s) of up to {plan.shard_size}; {count} worker(s)")
    try:
        idle = [worker_class.remote() for _ in range(count)]
        workers.extend(idle)
        while pending or running:
            while idle and pending:
                worker = idle.pop()
                shard, attempt = pending.popleft()
                job = ShardJob(
                    shard, config, f"{shard.name}#{attempt}", limiter, cache_dir, options.lease, budget_slice
                )
                if on_start is not None:
                    on_start(shard, ray.get(worker.pid.remote()))
                running[worker.judge.remote(job)] = (worker, shard, attempt)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                worker, shard, attempt = running.pop(ref)
                try:
                    outcome: ShardOutcome = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as error:
                    limiter.forget.remote(f"{shard.name}#{attempt}")
                    if attempt >= options.max_restarts:
                        raise RunStopped(
                            f"the worker judging {shard.name} died {attempt + 1} times (last: {_first_line(error)}); "
                            f"its verdicts so far are kept in {shard.folder}"
                        ) from None
                    restarts += 1
                    notify(f"ray: the worker judging {shard.name} died; a new worker resumes the shard")
                    ray.kill(worker, no_restart=True)
                    replacement = worker_class.remote()
                    workers.append(replacement)
                    idle.append(replacement)
                    pending.appendleft((shard, attempt + 1))
                    continue
                idle.append(worker)
                if outcome.error is not None:
                    raise ConfigError(outcome.error)
                if outcome.stop is not None:
                    raise outcome.stop
                outcomes[shard.index] = outcome
                notify(f"ray: {shard.name} done ({outcome.lines} lines); {len(outcomes)}/{len(plan.shards)} shards")
        stats: LimiterStats = ray.get(limiter.stats.remote())
    finally:
        for worker in workers:
            ray.kill(worker, no_restart=True)
        ray.kill(limiter, no_restart=True)
    return _finish(config, plan, outcomes, workers=count, restarts=restarts, stats=stats)


def _finish(
    config: JudgingConfig,
    plan: ShardPlan,
    outcomes: Mapping[int, ShardOutcome],
    *,
    workers: int,
    restarts: int,
    stats: LimiterStats,
) -> RaySummary:
    """Merge the shards' outputs into ``--out``, add up their counts, write the report; `NothingUsable` when a
    judge scored no item in any shard (every verdict is written by then)."""
    lines = merge_outputs(plan.shards, config.out)
    expected = sum(outcome.lines for outcome in outcomes.values())
    if lines != expected:
        raise RuntimeError(f"merged {lines} lines but the shards wrote {expected}: {plan.folder} is inconsistent")
    judges = {name: StageCount() for name in config.judges}
    for outcome in outcomes.values():
        for name, count in outcome.judges.items():
            _add(judges.setdefault(name, StageCount()), count)
    labelled = sum(outcome.labelled for outcome in outcomes.values())
    report = None
    if len(config.judges) > 1 or labelled:
        report = write_judge_report(
            config.out,
            items=config.items,
            judges=config.judges,
            threshold=config.label_threshold,
            n_resamples=config.n_resamples,
            seed=config.seed,
        )
    failure = nothing_scored(judges)
    if failure is not None:
        raise NothingUsable(f"{failure}; every verdict is in {config.out}", stage="judge")
    return RaySummary(
        items=sum(outcome.items for outcome in outcomes.values()),
        lines_written=lines,
        shards=len(plan.shards),
        workers=workers,
        restarts=restarts,
        labelled=labelled,
        judges=judges,
        cost_usd=round(sum(outcome.cost_usd for outcome in outcomes.values()), 6),
        report=report,
        limiter=stats,
    )


def _add(total: StageCount, part: StageCount) -> None:
    total.replies += part.replies
    total.usable += part.usable
    total.failed += part.failed
    if total.sample is None:
        total.sample = part.sample


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
