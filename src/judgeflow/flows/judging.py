"""Judging a large file of items (JSONL, CSV or Parquet) with one or more judges, streaming in and out:
``judgeflow judge``.

`open_judging` is the entry point beside `judgeflow.flows.pipeline.open_pipeline`: it claims the output's store
(`judgeflow.runs.context`), resolves the judges (`judgeflow.flows.wiring`) and runs `judge_file` in the
background, yielding a `JudgingRun` whose events an observer shows. `judge_file` is the engine, usable on its own
with judge models an application made itself.

The file is checked in one streaming pass first (a bad line stops the run before anything is spent), then read
lazily again while items flow through bounded channels to every judge, and each verdict is written to the
output as soon as it exists (a Parquet output a row group at a time, renamed into place when the run ends):
memory stays flat whatever the size of the file (the only thing kept per item is a
pair of float scores for the agreement statistics, and only when more than one judge is named). With several
judges the first is the reference, and the agreement of each other judge with it is computed at the end.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream

from judgeflow.actors import Judge, Router, Scorer
from judgeflow.actors.batch_judge import BatchIncomplete, BatchJudge, has_batches
from judgeflow.calls.batching import BatchedJudge, BatchOptions
from judgeflow.calls.budget import Allowance
from judgeflow.calls.gate import PermitFactory
from judgeflow.calls.health import HealthPolicy
from judgeflow.calls.support import Fallback
from judgeflow.core.stages import StageCount, nothing_usable
from judgeflow.flows.wiring import resolve_judges
from judgeflow.inputs.config import ConfigError, JudgingConfig
from judgeflow.inputs.errors import InputError
from judgeflow.inputs.items import check_items, iter_items
from judgeflow.inputs.tables import parquet_module, table_format
from judgeflow.protocol.bus import EventBus, Publish, null_publish
from judgeflow.protocol.channels import Channel, Sender
from judgeflow.protocol.errors import NothingUsable, find_stop
from judgeflow.protocol.events import ActorFinished, ActorStarted, Event, RunFinished, RunStarted
from judgeflow.protocol.messages import Answer, Judgement, ScoreUpdate
from judgeflow.protocol.models import JudgeModel
from judgeflow.report.build import agreement_entries
from judgeflow.report.pages import JudgeReport, write_judge_report
from judgeflow.runs.context import open_run
from judgeflow.runs.parquet_sink import VerdictSink, open_verdict_sink
from judgeflow.runs.records import judgement_from_record, judgement_record
from judgeflow.runs.store import META_CONFIG, RunStore

__all__ = ["JudgeSummary", "JudgingRun", "judge_file", "nothing_scored", "open_judging"]


@dataclass(frozen=True, slots=True)
class JudgeSummary:
    """How a judge run ended: items read, lines written, the agreement (two or more judges) and the spending.

    ``judges`` counts each judge's replies (scored, unparsed with a sample) and failed calls; ``failure`` says
    which judge scored nothing (None when every judge scored something), ``fallbacks`` which features servers
    refused.
    """

    items: int
    lines_written: int
    scorer: Scorer | None
    cost_usd: float = 0.0
    labelled: int = 0  # items with a human label
    report: JudgeReport | None = None  # OUT.report.{html,json,md}: with two or more judges, or human labels
    judges: Mapping[str, StageCount] = field(default_factory=dict)
    failure: str | None = None
    fallbacks: Sequence[Fallback] = ()


@dataclass(slots=True)
class JudgingRun:
    """A running ``judgeflow judge``: its config, its event stream and, once done, its summary."""

    config: JudgingConfig
    events: MemoryObjectReceiveStream[Event]
    bus: EventBus
    summary: JudgeSummary | None = None
    _done: anyio.Event = field(default_factory=anyio.Event)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> JudgeSummary:
        """Wait for judging to finish and return its summary; `NothingUsable` (a `RunStopped`) when a judge scored no
        item (every verdict is written and stored by then, and ``summary`` holds the counts)."""
        await self._done.wait()
        if self.summary is None:
            raise RuntimeError("judging finished without a summary")
        if self.summary.failure is not None:
            raise NothingUsable(f"{self.summary.failure}; every verdict is in {self.config.out}", stage="judge")
        return self.summary


@asynccontextmanager
async def open_judging(
    config: JudgingConfig,
    *,
    resume: bool = False,
    restart: bool = False,
    cache_dir: Path | None = None,
    event_buffer: int = 4096,
    permits: PermitFactory | None = None,
    local: Callable[[str], JudgeModel] | None = None,
    allowance: Allowance | None = None,
) -> AsyncIterator[JudgingRun]:
    """Start judging in the background and yield the run; leaving the block cancels what is left.

    The store beside ``config.out`` (``OUT.store.sqlite``) records every verdict and paid call: ``resume=True``
    continues an earlier run into the same output (its verdicts are written again, not paid for again; failed
    ones are retried), ``restart=True`` starts over. ``cache_dir`` shares a response cache across runs.
    """
    _check_formats(config.items, config.out)  # before the output's store is claimed
    bus = EventBus()
    run = JudgingRun(config, bus.subscribe_nowait(buffer=event_buffer), bus)
    async with AsyncExitStack() as stack:
        stack.callback(run.events.close)
        stack.callback(bus.close)  # however the run ends, even before it starts, observers see the end
        context = await stack.enter_async_context(
            open_run(
                config.out.parent,
                config.summary(),
                filename=config.store_filename,
                resume=resume,
                restart=restart,
                cache_dir=cache_dir,
                holder=str(config.out),
                ignore=("judges",),
            )
        )
        await _check_judges(context.store, config)
        # A resumed run re-attaches the batches its judges have running, whether or not it batches new requests.
        running = {key.partition("#")[0] for key in await context.store.batch_records() if "#" in key}
        judges, resources = await resolve_judges(
            config.judges,
            base_url=config.base_url,
            concurrency=config.concurrency,
            rpm=config.rpm,
            tpm=config.tpm,
            max_cost=config.max_cost_usd,
            max_tokens=config.max_tokens,
            timeout_s=config.timeout_s,
            scoring=config.scoring,
            publish=bus.publish,
            cache=context.cache,
            health=HealthPolicy(grace_s=config.grace_s, outage_limit_s=config.outage_limit_s),
            batch=config.batch,
            batch_options=BatchOptions(max_requests=config.batch_max_requests, poll_s=config.batch_poll_s),
            batched=running,
            permits=permits,
            local=local,
            allowance=allowance,
        )
        await stack.enter_async_context(resources)
        tg = await stack.enter_async_context(anyio.create_task_group())

        async def judge(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            try:
                summary = await judge_file(
                    config.items,
                    config.out,
                    judges,
                    workers=config.concurrency,
                    batch_size=config.batch_size,
                    n_resamples=config.n_resamples,
                    seed=config.seed,
                    publish=bus.publish,
                    store=context.store,
                    resume=resume,
                )
                costs = await context.costs()
                report = await anyio.to_thread.run_sync(
                    partial(_write_reports, config, summary, costs), abandon_on_cancel=True
                )
                run.summary = dataclasses.replace(
                    summary,
                    cost_usd=costs["total_usd"],
                    report=report,
                    fallbacks=tuple(resources.context.support.fallbacks),
                )
            finally:
                bus.close()
                run._done.set()

        await tg.start(judge)
        try:
            yield run
        finally:
            tg.cancel_scope.cancel()


def _check_formats(items: Path, out: Path) -> None:
    """Before anything runs: an output the report could not read back (CSV), or a Parquet file without pyarrow
    installed (naming the install command), is one `InputError`."""
    if table_format(out) == "csv":
        raise InputError(out, None, "verdicts are written as JSONL or Parquet: name the output .jsonl or .parquet")
    for path, doing in ((items, "reading"), (out, "writing")):
        if table_format(path) == "parquet":
            parquet_module(path, doing=doing)


async def _check_judges(store: RunStore, config: JudgingConfig) -> None:
    """A resumed run may drop or replace a judge that judged nothing (a model name the server did not know, fixed
    since), not one whose verdicts the output holds."""
    stored = await store.get_meta(META_CONFIG)
    earlier = json.loads(stored).get("judges", []) if stored else []
    for judge in earlier:
        if judge not in config.judges and await store.done_items("judgement", judge, include_failed=True):
            raise ConfigError(
                f"{config.out} holds verdicts of the judge {judge!r}, which is not among the judges now "
                f"({', '.join(config.judges)}); resume it with the same judges, or use --restart to start over"
            )


async def _read(
    path: Path, outboxes: Sequence[Sender[Answer]], *, publish: Publish, done: Sequence[set[str]] | None = None
) -> tuple[int, int]:
    """Send every item of ``path`` to every judge's inbox, as the actor ``items``; returns how many were read,
    and how many of them carry a human label.

    The reader fans out itself: a `Router` between it and the inboxes would be one more channel hop per item,
    which costs CPU and buys nothing here. ``done`` (per outbox) holds the ids already judged by a resumed run.
    """
    items = sent = labelled = 0
    with ExitStack() as stack:
        for outbox in outboxes:
            stack.enter_context(outbox)
        publish(ActorStarted("items", 1))
        try:
            for answer in iter_items(path):
                items += 1
                labelled += answer.label is not None
                for index, outbox in enumerate(outboxes):
                    if done is not None and answer.id in done[index]:
                        continue
                    await outbox.send(answer)
                    sent += 1
        finally:
            publish(ActorFinished("items", items, sent, 0))
    return items, labelled


async def judge_file(
    items: Path,
    out: Path,
    judges: Sequence[tuple[str, JudgeModel]],
    *,
    workers: int = 8,
    batch_size: int = 256,
    capacity: int = 64,
    n_resamples: int = 2000,
    seed: int = 0,
    publish: Publish = null_publish,
    store: RunStore | None = None,
    resume: bool = False,
) -> JudgeSummary:
    """Judge every item of ``items`` with every judge; write one line per (item, judge) to ``out``.

    With a ``store``, every verdict is also recorded there. With ``resume``, the verdicts the store already
    holds (failed ones excepted: those are tried again) are written to ``out`` first and not judged again, so
    that after a crash every (item, judge) appears in ``out`` exactly once.

    A `judgeflow.calls.batching.BatchedJudge` in batch mode (or with batches of an earlier run in the store) is
    run by the batch judge actor (`judgeflow.actors.batch_judge`), which needs the ``store`` for its records;
    items its batches left unjudged (failed, expired, cancelled) end the run with `BatchIncomplete`.
    """
    if resume and store is None:
        raise ValueError("resume needs the store of the earlier run")
    if not judges:
        raise ValueError("name at least one judge")
    names = [name for name, _ in judges]
    if len(set(names)) != len(names):
        raise ValueError(f"judge names must be distinct, got {names}")
    # Observers learn how the run ended, however it ends: done, a bad line, an error, or cancelled (the user
    # quit the dashboard).
    try:
        summary = await _judge_all(
            items,
            out,
            judges,
            workers=workers,
            batch_size=batch_size,
            capacity=capacity,
            n_resamples=n_resamples,
            seed=seed,
            publish=publish,
            store=store,
            resume=resume,
        )
        publish(RunFinished(str(out), summary.failure is None, summary.failure or ""))
        return summary
    except anyio.get_cancelled_exc_class():
        publish(RunFinished(str(out), False, "cancelled"))
        raise
    except BaseException as error:
        publish(RunFinished(str(out), False, _reason(error)))
        raise


async def _judge_all(
    items: Path,
    out: Path,
    judges: Sequence[tuple[str, JudgeModel]],
    *,
    workers: int,
    batch_size: int,
    capacity: int,
    n_resamples: int,
    seed: int,
    publish: Publish,
    store: RunStore | None,
    resume: bool,
) -> JudgeSummary:
    """`judge_file` after its argument checks: validate, announce the run, judge, and write."""
    names = [name for name, _ in judges]
    _check_formats(items, out)
    # A bad line should stop the run before any money is spent, not halfway through: check the file first
    # (a streaming pass, in a worker thread), then judge it.
    count = await anyio.to_thread.run_sync(check_items, items)
    scorer = (
        Scorer(
            reference=names[0],
            students=names[1:],
            difference=None,
            n_resamples=n_resamples,
            seed=seed,
            publish=publish,
        )
        if len(judges) > 1
        else None
    )
    inboxes: list[Channel[Answer]] = [Channel(f"{name}.inbox", capacity) for name in names]
    verdicts: Channel[Judgement] = Channel("judgements", capacity)
    to_scorer: Channel[Judgement] = Channel("scorer.inbox", capacity)
    scores: Channel[ScoreUpdate] = Channel("scores", capacity)

    counts = {name: StageCount() for name in names}
    done: list[set[str]] | None = None
    if resume and store is not None:
        done = [await store.done_items("judgement", name) for name in names]
    remaining = {name: max(count - len(done[index]), 0) if done else count for index, name in enumerate(names)}
    publish(RunStarted(str(out), 0, kind="judge", n_items=count, judges=remaining))

    with open_verdict_sink(out) as sink:

        async def keep(judgement: Judgement) -> None:
            counts[judgement.judge].add_verdict(judgement.id, judgement.verdict, judgement.raw)
            # One record, encoded once, for the output file and the store.
            record = judgement_record(judgement, with_split=False)
            text = json.dumps(record, ensure_ascii=False)
            sink.write_record(record, text)
            if store is not None:
                await store.record_item("judgement", judgement.id, judgement.judge, text)

        batched: list[BatchJudge] = []
        async with anyio.create_task_group() as tg:
            for (name, model), inbox in zip(judges, inboxes, strict=True):
                judge: Judge | BatchJudge = Judge(
                    model, workers=workers, batch_size=batch_size, name=name, publish=publish
                )
                # Through a Batch API when asked to, or when resuming a run that has batches of this judge.
                if (
                    isinstance(model, BatchedJudge)
                    and store is not None
                    and (model.batch or await has_batches(store, name))
                ):
                    judge = BatchJudge(model, store, name=name, workers=workers, publish=publish)
                    batched.append(judge)
                await tg.start(judge.run, inbox.receiver, verdicts.sender.clone())
            verdicts.sender.close()
            writer = Router[Judgement](
                (lambda _j: (0,)) if scorer else (lambda _j: ()),
                persist=keep,
                name="writer",
                publish=publish,
            )
            await tg.start(writer.run, verdicts.receiver, [to_scorer.sender])
            earlier = to_scorer.sender.clone()
            if scorer is not None:
                await tg.start(scorer.run, to_scorer.receiver, scores.sender)
            else:
                to_scorer.receiver.close()
                scores.sender.close()
            tg.start_soon(_drain, scores)
            async with earlier:
                if done is not None and store is not None:
                    await _replay(store, names, sink, earlier if scorer is not None else None, counts)
            read, labelled = await _read(items, [inbox.sender for inbox in inboxes], publish=publish, done=done)
        unfinished = sum(judge.unfinished for judge in batched)
        if unfinished:
            raise BatchIncomplete(unfinished, [r for judge in batched for r in judge.reasons], holder=str(out))
        failure = nothing_scored(counts)
        return JudgeSummary(
            items=read, lines_written=sink.lines, scorer=scorer, labelled=labelled, judges=counts, failure=failure
        )


def nothing_scored(counts: Mapping[str, StageCount]) -> str | None:
    """The judges that scored no item, in one line with their counts and a sample reply (None: all scored some)."""
    empty = [
        nothing_usable(f"judge {name}", "scored verdict", count)
        for name, count in counts.items()
        if count.usable == 0 and (count.replies or count.failed)
    ]
    return "; ".join(empty) if empty else None


async def _replay(
    store: RunStore,
    names: Sequence[str],
    sink: VerdictSink,
    scorer: Sender[Judgement] | None,
    counts: Mapping[str, StageCount],
) -> None:
    """Write the verdicts a resumed run already has (not the failed ones, which are judged again)."""
    async for record in store.iter_items("judgement"):
        if record.get("judge") not in names or record.get("status") == "failed":
            continue
        sink.write({key: value for key, value in record.items() if key != "split"})
        judgement = judgement_from_record(record)
        counts[judgement.judge].add_verdict(judgement.id, judgement.verdict, judgement.raw)
        if scorer is not None:
            await scorer.send(judgement)


def _write_reports(config: JudgingConfig, summary: JudgeSummary, costs: dict[str, Any]) -> JudgeReport | None:
    """The run's report files, when there is something to compare: two or more judges, or human labels."""
    if len(config.judges) < 2 and not summary.labelled:
        return None
    result = summary.scorer.result if summary.scorer is not None else None
    return write_judge_report(
        config.out,
        items=config.items,
        judges=config.judges,
        agreement_entries=agreement_entries(result) if result is not None else None,
        costs=costs,
        threshold=config.label_threshold,
        n_resamples=config.n_resamples,
        seed=config.seed,
    )


def _reason(error: BaseException) -> str:
    """One line for the dashboard's failed banner: why the run stopped, or the first error of a task group's tree,
    by type and text."""
    stop = find_stop(error)
    if stop is not None:
        return stop.message
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def _drain(channel: Channel[ScoreUpdate]) -> None:
    with channel.receiver:
        async for _ in channel.receiver:
            pass
