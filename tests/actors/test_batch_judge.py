"""The batch judge actor alone: its records, and the crash windows between a provider call and its record.

A crash is played by a book that refuses one write (the process "dies" before the record is committed); the
run is then resumed with the real store, and the fake server's counters show nothing was uploaded or created
twice.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from judgeflow.actors.batch_judge import BatchAPIError, BatchJudge, running_batches
from judgeflow.calls.batching import BatchedJudge, BatchOptions
from judgeflow.calls.cache import ResponseCache
from judgeflow.flows.wiring import resolve_judges
from judgeflow.protocol.channels import Channel
from judgeflow.protocol.messages import Answer, Judgement, Question
from judgeflow.runs.store import RunStore
from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

JUDGE = "openai:gpt-4o"


def fast() -> FakeOpenAI:
    return FakeOpenAI(batch_validate_s=0.02, batch_run_s=0.1, batch_finalize_s=0.02)


class Crash(Exception):
    """The process died here."""


class CrashingBook:
    """The run store as a `BatchBook`, except that the first record ``dies_at`` picks is never written."""

    def __init__(self, store: RunStore, dies_at: Callable[[dict[str, object]], bool]) -> None:
        self.store = store
        self.dies_at = dies_at

    async def put_batch_record(self, key: str, record: str) -> None:
        if key != "tag" and self.dies_at(json.loads(record)):
            raise Crash(key)
        await self.store.put_batch_record(key, record)

    async def batch_records(self) -> Mapping[str, str]:
        return await self.store.batch_records()

    async def delete_batch_record(self, key: str) -> None:
        await self.store.delete_batch_record(key)


def answers(n: int) -> list[Answer]:
    return [
        Answer(Question(f"q{i}", f"What year was {i}?", f"It was {2000 + i}.", "test"), f"It was {2000 + i}.", "m")
        for i in range(n)
    ]


@asynccontextmanager
async def batched(server: OpenAIServer, store: RunStore) -> AsyncIterator[BatchedJudge]:
    judges, resources = await resolve_judges(
        [JUDGE],
        base_url=server.base_url,
        batch=True,
        batch_options=BatchOptions(poll_s=0.02, max_requests=50),
        cache=ResponseCache(store),
    )
    async with resources:
        model = judges[0][1]
        assert isinstance(model, BatchedJudge)
        yield model


async def run_actor(actor: BatchJudge, items: list[Answer]) -> list[Judgement]:
    inbox: Channel[Answer] = Channel("inbox", 8)
    outbox: Channel[Judgement] = Channel("outbox", 8)
    out: list[Judgement] = []

    async def feed() -> None:
        async with inbox.sender:
            for answer in items:
                await inbox.sender.send(answer)

    async def drain() -> None:
        async with outbox.receiver:
            async for judgement in outbox.receiver:
                out.append(judgement)

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
        tg.start_soon(drain)
        await tg.start(actor.run, inbox.receiver, outbox.sender)
    return out


async def crash_then_resume(
    tmp_path: Path, dies_at: Callable[[dict[str, object]], bool]
) -> tuple[OpenAIServer, list[Judgement]]:
    async with serve_openai(fast()) as server, await RunStore.open(tmp_path) as store, batched(server, store) as model:
        with pytest.RaisesGroup(Crash, flatten_subgroups=True):
            await run_actor(BatchJudge(model, CrashingBook(store, dies_at), name=JUDGE), answers(5))
        judged = await run_actor(BatchJudge(model, store, name=JUDGE), answers(5))
        return server, judged


async def test_a_crash_between_upload_and_its_record_finds_the_upload_again(tmp_path: Path) -> None:
    server, judged = await crash_then_resume(tmp_path, lambda record: record["status"] == "uploaded")
    assert sorted(j.id for j in judged) == [f"q{i}" for i in range(5)]
    assert server.stats.requests["files.create"] == 1
    assert server.stats.requests["files.list"] == 1  # the resumed run looked for its upload by name
    assert server.stats.requests["batches.create"] == 1


async def test_a_crash_between_create_and_its_record_finds_the_batch_again(tmp_path: Path) -> None:
    server, judged = await crash_then_resume(tmp_path, lambda record: record["batch_id"] is not None)
    assert sorted(j.id for j in judged) == [f"q{i}" for i in range(5)]
    assert server.stats.requests["files.create"] == 1
    assert server.stats.requests["batches.list"] == 1  # found by the metadata naming the part
    assert server.stats.requests["batches.create"] == 1
    assert server.stats.batch_requests == 5


async def test_a_crash_before_the_upload_plans_the_items_again(tmp_path: Path) -> None:
    async with serve_openai(fast()) as server, await RunStore.open(tmp_path) as store, batched(server, store) as model:
        book = CrashingBook(store, lambda record: record["status"] == "uploaded")
        # The upload itself never happens: the server refuses it, then the process dies.
        server.config.fail_first_n, server.config.fail_first_status = 1, 400
        server.config.fault_endpoints = frozenset({"files.create"})
        with pytest.RaisesGroup(pytest.RaisesExc(BatchAPIError, match="batch upload"), flatten_subgroups=True):
            await run_actor(BatchJudge(model, book, name=JUDGE), answers(3))
        judged = await run_actor(BatchJudge(model, store, name=JUDGE), answers(3))
        records = await store.batch_records()
    assert sorted(j.id for j in judged) == ["q0", "q1", "q2"]
    assert server.stats.requests["files.create"] == 2  # the refused one, then the new plan's
    assert [key for key in records if key != "tag"] == [f"{JUDGE}#0002"]  # part 1 was forgotten, never sent


async def test_records_say_what_each_batch_holds_until_it_is_collected(tmp_path: Path) -> None:
    async with serve_openai(fast()) as server, await RunStore.open(tmp_path) as store, batched(server, store) as model:
        judged = await run_actor(BatchJudge(model, store, name=JUDGE), answers(7))
        records = {key: json.loads(text) for key, text in (await store.batch_records()).items() if key != "tag"}
        running = await running_batches(store)
        cost = await store.total_cost()
    (record,) = records.values()
    assert record["status"] == "collected"
    assert record["ids"] == [f"{JUDGE}|q{i}" for i in range(7)]
    assert record["batch_id"].startswith("batch_")
    assert record["counts"] == [7, 7, 0]
    assert running == []
    assert len(judged) == 7
    assert all(j.verdict.score is not None for j in judged)  # type: ignore[union-attr]
    assert cost == pytest.approx(sum(model.cost_usd(j.model, j.usage) or 0.0 for j in judged))
    assert server.stats.requests["chat.completions"] == 0
