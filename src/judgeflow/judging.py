"""Judging a large JSONL file of items with one or more judges, streaming in and out.

The file is checked in one streaming pass first (a bad line stops the run before anything is spent), then read
lazily again while items flow through bounded channels to every judge, and each verdict is written to the
output as soon as it exists: memory stays flat whatever the size of the file (the only thing kept per item is a
pair of float scores for the agreement statistics, and only when more than one judge is named). With several
judges the first is the reference, and the agreement of each other judge with it is computed at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from judgeflow.actors import Router, Scorer, StudentJudge
from judgeflow.items import iter_items
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Channel, Sender
from judgeflow.protocol.messages import Answer, Judgement, ScoreUpdate
from judgeflow.providers.base import JudgeModel
from judgeflow.records import judgement_record
from judgeflow.runfolder import JsonlSink

__all__ = ["JudgeSummary", "judge_file"]


@dataclass(frozen=True, slots=True)
class JudgeSummary:
    items: int
    lines_written: int
    scorer: Scorer | None


async def _read(path: Path, outbox: Sender[Answer]) -> None:
    async with outbox:
        for answer in iter_items(path):
            await outbox.send(answer)


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
) -> JudgeSummary:
    """Judge every item of ``items`` with every judge; write one line per (item, judge) to ``out``."""
    if not judges:
        raise ValueError("name at least one judge")
    names = [name for name, _ in judges]
    if len(set(names)) != len(names):
        raise ValueError(f"judge names must be distinct, got {names}")
    # A bad line should stop the run before any money is spent, not halfway through: check the file first
    # (a streaming pass, in a worker thread), then judge it.
    await anyio.to_thread.run_sync(_validate, items)
    count = {"items": 0}
    scorer = (
        Scorer(
            reference=names[0], students=names[1:], difference=None, n_resamples=n_resamples, seed=seed, publish=publish
        )
        if len(judges) > 1
        else None
    )
    source: Channel[Answer] = Channel("items", capacity)
    inboxes: list[Channel[Answer]] = [Channel(f"{name}.inbox", capacity) for name in names]
    verdicts: Channel[Judgement] = Channel("judgements", capacity)
    to_scorer: Channel[Judgement] = Channel("scorer.inbox", capacity)
    scores: Channel[ScoreUpdate] = Channel("scores", capacity)

    def count_item(_answer: Answer) -> None:
        count["items"] += 1

    with JsonlSink(out) as sink:
        async with anyio.create_task_group() as tg:
            fan_out = Router[Answer](lambda _a: range(len(inboxes)), record=count_item, name="items", publish=publish)
            await tg.start(fan_out.run, source.receiver, [inbox.sender for inbox in inboxes])
            for (name, model), inbox in zip(judges, inboxes, strict=True):
                judge = StudentJudge(model, workers=workers, batch_size=batch_size, name=name, publish=publish)
                await tg.start(judge.run, inbox.receiver, verdicts.sender.clone())
            verdicts.sender.close()
            writer = Router[Judgement](
                (lambda _j: (0,)) if scorer else (lambda _j: ()),
                record=lambda judgement: sink.write(judgement_record(judgement, with_split=False)),
                name="writer",
                publish=publish,
            )
            await tg.start(writer.run, verdicts.receiver, [to_scorer.sender])
            if scorer is not None:
                await tg.start(scorer.run, to_scorer.receiver, scores.sender)
            else:
                to_scorer.receiver.close()
                scores.sender.close()
            tg.start_soon(_drain, scores)
            await _read(items, source.sender)
        return JudgeSummary(items=count["items"], lines_written=sink.lines, scorer=scorer)


def _validate(path: Path) -> int:
    return sum(1 for _ in iter_items(path))


async def _drain(channel: Channel[ScoreUpdate]) -> None:
    with channel.receiver:
        async for _ in channel.receiver:
            pass
