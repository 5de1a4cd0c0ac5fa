"""The fake OpenAI server's Batch API, spoken to by the real ``openai`` SDK over HTTP.

Lifecycles are walked on a hand-moved clock; validation failures are in `test_fake_openai_batch_validation`.
"""

from __future__ import annotations

from typing import Any

import anyio
import openai
import pytest

from batch_doubles import batch_file, chat_line, judge_body, read_results, upload_batch
from judgeflow.testing import FakeOpenAI
from openai_doubles import ManualClock, running

pytestmark = pytest.mark.anyio

TIMING: dict[str, Any] = {
    "batch_validate_s": 10.0,
    "batch_run_s": 100.0,
    "batch_finalize_s": 10.0,
    "batch_cancel_s": 5.0,
}


def config(clock: ManualClock, **changes: Any) -> FakeOpenAI:
    return FakeOpenAI(clock=clock, **{**TIMING, **changes})


async def test_a_batch_walks_validating_in_progress_finalizing_completed() -> None:
    clock = ManualClock()
    lines = [chat_line(f"item-{i}", judge_body(i)) for i in range(40)]
    async with running(config(clock)) as (server, client):
        created = await upload_batch(client, lines)
        seen = [created]
        for step in (5.0, 10.0, 45.0, 50.0, 5.0, 10.0):
            clock.now += step
            seen.append(await client.batches.retrieve(created.id))
        done = seen[-1]
        output = await read_results(client, done.output_file_id)
        input_file = await client.files.retrieve(created.input_file_id)
        output_file = await client.files.retrieve(done.output_file_id or "")
    assert [b.status for b in seen] == [
        "validating", "validating", "in_progress", "in_progress", "finalizing", "finalizing", "completed"
    ]  # fmt: skip
    assert created.id.startswith("batch_")
    assert created.object == "batch"
    assert created.endpoint == "/v1/chat/completions"
    assert created.completion_window == "24h"
    assert created.model == "gpt-4o"
    assert created.expires_at == created.created_at + 86_400
    assert input_file.purpose == "batch"
    assert output_file.purpose == "batch_output"
    counts = [(b.request_counts.completed, b.request_counts.total) for b in seen if b.request_counts]
    assert counts[:2] == [(0, 0), (0, 0)]  # nothing is counted while validating
    assert counts[2:] == [(2, 40), (20, 40), (40, 40), (40, 40), (40, 40)]
    assert seen[2].in_progress_at is not None
    assert seen[4].finalizing_at is not None
    assert done.completed_at is not None
    assert done.error_file_id is None
    assert done.errors is None
    assert done.usage is not None
    assert done.usage.input_tokens > 0
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    assert sorted(line["custom_id"] for line in output) == sorted(line["custom_id"] for line in lines)
    assert [line["custom_id"] for line in output] != [line["custom_id"] for line in lines]  # no order promised
    assert all(line["response"]["status_code"] == 200 and line["error"] is None for line in output)
    assert len({line["id"] for line in output}) == 40
    assert server.stats.batch_requests == 40  # answered once, however often it was polled


async def test_batch_replies_equal_online_replies_for_the_same_request() -> None:
    clock = ManualClock()
    bodies = [judge_body(i, model) for i in range(6) for model in ("gpt-4o", "gpt-4o-mini")]
    async with running(config(clock)) as (_, client):
        batches = [
            await upload_batch(client, [chat_line(str(i), b) for i, b in enumerate(bodies) if b["model"] == model])
            for model in ("gpt-4o", "gpt-4o-mini")
        ]
        online = [await client.chat.completions.create(**body) for body in bodies]
        clock.now += 200.0
        results: dict[str, Any] = {}
        for created in batches:
            done = await client.batches.retrieve(created.id)
            for line in await read_results(client, done.output_file_id):
                results[line["custom_id"]] = openai.types.chat.ChatCompletion.model_validate(line["response"]["body"])
    assert len(results) == len(bodies)
    for i, completion in enumerate(online):
        batched = results[str(i)]
        assert batched.choices[0].message.content == completion.choices[0].message.content
        assert batched.usage == completion.usage
        assert batched.model == completion.model
    # The teacher and the crude student disagree on some items, in both modes alike.
    assert any(results[str(i)].choices[0].message.content != results[str(i + 1)].choices[0].message.content
               for i in range(0, len(bodies), 2))  # fmt: skip


async def test_an_embeddings_batch_answers_like_the_online_endpoint() -> None:
    clock = ManualClock()
    lines = [
        chat_line(f"e{i}", {"model": "text-embedding-3-small", "input": f"text number {i}"}, url="/v1/embeddings")
        for i in range(3)
    ]
    async with running(config(clock)) as (_, client):
        uploaded = await client.files.create(file=batch_file(lines), purpose="batch")
        created = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
        )
        online = await client.embeddings.create(model="text-embedding-3-small", input="text number 1")
        clock.now += 200.0
        done = await client.batches.retrieve(created.id)
        output = {line["custom_id"]: line for line in await read_results(client, done.output_file_id)}
    assert done.status == "completed"
    # The SDK asks for base64 (float32) online; the batch line asked for floats.
    assert output["e1"]["response"]["body"]["data"][0]["embedding"] == pytest.approx(online.data[0].embedding, abs=1e-6)


async def test_failed_requests_go_to_the_error_file_with_the_online_error() -> None:
    clock = ManualClock()
    lines = [chat_line(f"ok-{i}", judge_body(i)) for i in range(30)]
    lines.append(chat_line("no-messages", {"model": "gpt-4o", "messages": []}))
    async with running(config(clock, batch_fault_rate=0.3)) as (_, client):
        created = await upload_batch(client, lines)
        with pytest.raises(openai.BadRequestError) as online:
            await client.chat.completions.create(model="gpt-4o", messages=[])
        clock.now += 200.0
        done = await client.batches.retrieve(created.id)
        output = await read_results(client, done.output_file_id)
        errors = await read_results(client, done.error_file_id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert done.request_counts.failed == len(errors)
    assert done.request_counts.completed == len(output)
    assert len(output) + len(errors) == 31
    assert 3 <= len(errors) <= 20
    by_id = {line["custom_id"]: line for line in errors}
    refused = by_id.pop("no-messages")["response"]
    assert refused["status_code"] == 400
    assert refused["body"]["error"] == online.value.body  # the SDK keeps the inner error object
    assert all(line["response"]["status_code"] == 500 for line in by_id.values())
    assert all(line["response"]["body"]["error"]["type"] == "server_error" for line in by_id.values())


async def test_a_batch_past_its_window_expires_with_what_it_finished() -> None:
    clock = ManualClock()
    lines = [chat_line(f"item-{i}", judge_body(i)) for i in range(20)]
    async with running(config(clock, batch_window_s=60.0)) as (_, client):
        created = await upload_batch(client, lines)
        clock.now += 59.0
        running_late = await client.batches.retrieve(created.id)
        clock.now += 1.0
        expired = await client.batches.retrieve(created.id)
        output = await read_results(client, expired.output_file_id)
        errors = await read_results(client, expired.error_file_id)
    assert running_late.status == "in_progress"
    assert expired.status == "expired"
    assert expired.expired_at == expired.expires_at
    assert expired.request_counts is not None
    assert expired.request_counts.completed == len(output) == 10  # half of the run fits in the window
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}
    assert all(line["response"] is None for line in errors)
    assert sorted(line["custom_id"] for line in output + errors) == sorted(line["custom_id"] for line in lines)


async def test_cancel_keeps_the_finished_requests_and_reports_the_rest() -> None:
    clock = ManualClock()
    lines = [chat_line(f"item-{i}", judge_body(i)) for i in range(20)]
    async with running(config(clock)) as (_, client):
        created = await upload_batch(client, lines)
        clock.now += 35.0
        cancelling = await client.batches.cancel(created.id)
        again = await client.batches.cancel(created.id)
        clock.now += 5.0
        cancelled = await client.batches.retrieve(created.id)
        output = await read_results(client, cancelled.output_file_id)
        errors = await read_results(client, cancelled.error_file_id)
        finished = await upload_batch(client, lines)
        clock.now += 200.0
        with pytest.raises(openai.ConflictError):
            await client.batches.cancel(finished.id)
        with pytest.raises(openai.NotFoundError):
            await client.batches.cancel("batch_missing")
    assert cancelling.status == again.status == "cancelling"
    assert cancelling.cancelling_at is not None
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at == cancelling.cancelling_at + 5
    assert len(output) == 5  # a quarter of the run was done when it was cancelled
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    assert len(output) + len(errors) == 20


async def test_a_batch_cancelled_while_validating_runs_nothing() -> None:
    clock = ManualClock()
    async with running(config(clock)) as (server, client):
        created = await upload_batch(client, [chat_line("a", judge_body(1))])
        await client.batches.cancel(created.id)
        clock.now += 500.0
        cancelled = await client.batches.retrieve(created.id)
    assert cancelled.status == "cancelled"
    assert cancelled.in_progress_at is None
    assert cancelled.output_file_id is None
    assert server.stats.batch_requests == 0


async def test_list_batches_and_files_newest_first_with_metadata() -> None:
    clock = ManualClock()
    async with running(config(clock)) as (server, client):
        made = []
        for i in range(3):
            uploaded = await client.files.create(file=batch_file([chat_line("a", judge_body(i))]), purpose="batch")
            made.append(
                await client.batches.create(
                    input_file_id=uploaded.id,
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                    metadata={"run": "r1", "part": str(i)},
                )
            )
        page = await client.batches.list(limit=2)
        everything = [batch async for batch in client.batches.list(limit=2)]
        batch_files = [f async for f in client.files.list(purpose="batch")]
        with pytest.raises(openai.NotFoundError):
            await client.batches.retrieve("batch_missing")
    assert [b.id for b in page.data] == [made[2].id, made[1].id]
    assert page.has_more
    assert [b.id for b in everything] == [b.id for b in reversed(made)]
    assert [b.metadata for b in everything] == [{"run": "r1", "part": str(i)} for i in (2, 1, 0)]
    assert [f.id for f in batch_files] == [b.input_file_id for b in reversed(made)]
    assert server.stats.requests["batches.list"] == 3


async def test_a_batch_on_the_real_clock() -> None:
    fast = FakeOpenAI(batch_validate_s=0.02, batch_run_s=0.05, batch_finalize_s=0.02)
    async with running(fast) as (_, client):
        batch = await upload_batch(client, [chat_line(f"i{i}", judge_body(i)) for i in range(5)])
        with anyio.fail_after(10):
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                await anyio.sleep(0.02)
                batch = await client.batches.retrieve(batch.id)
        output = await read_results(client, batch.output_file_id)
    assert batch.status == "completed"
    assert len(output) == 5
