"""The fake Batch API refuses what the real one refuses: at create time with a 4xx, or as a ``failed`` batch
whose ``errors`` say why (code, message, line, param)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from batch_doubles import batch_file, chat_line, judge_body, upload_batch
from judgeflow.testing import FakeOpenAI
from openai_doubles import ManualClock, running

pytestmark = pytest.mark.anyio

GOOD = chat_line("good", judge_body(1))


@pytest.mark.parametrize(
    ("lines", "code", "line", "param"),
    [
        ([GOOD, "{not json"], "invalid_json_line", 2, None),
        ([GOOD, "[1, 2]"], "invalid_json_line", 2, None),
        ([GOOD, chat_line("good", judge_body(2))], "duplicate_custom_id", 2, "custom_id"),
        ([GOOD, chat_line("b", judge_body(2), url="/v1/embeddings")], "url_mismatch", 2, "url"),
        ([chat_line("a", judge_body(1, "gpt-9-imaginary"))], "model_not_found", 1, "body.model"),
        ([GOOD, chat_line("b", judge_body(2, "gpt-4o-mini"))], "model_mismatch", 2, "body.model"),
        ([GOOD, {"method": "POST", "url": "/v1/chat/completions", "body": {}}], "missing_required_parameter", 2,
         "custom_id"),
        ([GOOD, {**chat_line("b", judge_body(2)), "method": "GET"}], "invalid_request", 2, "method"),
        ([chat_line("a", {"messages": []})], "missing_required_parameter", 1, "body.model"),
        ([chat_line(str(i), judge_body(i)) for i in range(4)], "too_many_tasks", None, None),
        (["", "  "], "empty_file", None, None),
    ],
)  # fmt: skip
async def test_a_bad_input_file_fails_the_batch_with_the_reason(
    lines: list[Any], code: str, line: int | None, param: str | None
) -> None:
    clock = ManualClock()
    async with running(FakeOpenAI(clock=clock, batch_validate_s=1.0, batch_max_requests=3)) as (server, client):
        created = await upload_batch(client, lines)
        clock.now += 1.0
        failed = await client.batches.retrieve(created.id)
        clock.now += 1000.0
        later = await client.batches.retrieve(created.id)
    assert created.status == "validating"
    assert failed.status == later.status == "failed"
    assert failed.failed_at is not None
    assert failed.output_file_id is None
    assert failed.error_file_id is None
    assert failed.errors is not None
    assert failed.errors.data
    first = failed.errors.data[0]
    assert (first.code, first.line, first.param) == (code, line, param)
    assert first.message
    assert server.stats.batch_requests == 0


async def test_every_problem_line_is_reported_up_to_a_limit() -> None:
    clock = ManualClock()
    lines: list[Any] = [GOOD, *["{broken"] * 150]
    async with running(FakeOpenAI(clock=clock, batch_validate_s=1.0)) as (_, client):
        created = await upload_batch(client, lines)
        clock.now += 1.0
        failed = await client.batches.retrieve(created.id)
    assert failed.errors is not None
    assert failed.errors.data is not None
    assert [e.line for e in failed.errors.data] == list(range(2, 102))


async def test_a_file_over_the_size_limit_fails() -> None:
    clock = ManualClock()
    async with running(FakeOpenAI(clock=clock, batch_validate_s=1.0, batch_max_bytes=1000)) as (_, client):
        created = await upload_batch(client, [chat_line(str(i), judge_body(i)) for i in range(5)])
        clock.now += 1.0
        failed = await client.batches.retrieve(created.id)
    assert failed.errors is not None
    assert failed.errors.data is not None
    assert failed.errors.data[0].code == "file_too_large"


async def test_create_refuses_bad_parameters_at_once() -> None:
    async with running() as (server, client):
        batch_input = await client.files.create(file=batch_file([GOOD]), purpose="batch")
        training = await client.files.create(
            file=("t.jsonl", b'{"messages": [{"role": "user", "content": "x"}]}\n'), purpose="fine-tune"
        )
        attempts: list[dict[str, Any]] = [
            {"input_file_id": batch_input.id, "endpoint": "/v1/images/generations", "completion_window": "24h"},
            {"input_file_id": batch_input.id, "endpoint": "/v1/chat/completions", "completion_window": "1h"},
            {"input_file_id": "file-missing", "endpoint": "/v1/chat/completions", "completion_window": "24h"},
            {"input_file_id": training.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
            {
                "input_file_id": batch_input.id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                "metadata": {"k": 1},
            },
        ]
        params = []
        for attempt in attempts:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.batches.create(**attempt)
            params.append(caught.value.param)
    assert params == ["endpoint", "completion_window", "input_file_id", "input_file_id", "metadata"]
    assert server.stats.requests["batches.create"] == 5


async def test_the_enqueued_token_limit_fails_a_batch_until_others_finish() -> None:
    clock = ManualClock()
    lines = [chat_line(str(i), judge_body(i)) for i in range(10)]
    tokens = sum(len(batch_file([line])[1]) // 4 for line in lines)
    limit = tokens + tokens // 2
    fake = FakeOpenAI(clock=clock, batch_validate_s=1.0, batch_run_s=10.0, batch_token_limit=limit)
    async with running(fake) as (_, client):
        first = await upload_batch(client, lines)
        second = await upload_batch(client, lines)
        clock.now += 20.0
        refused = await client.batches.retrieve(second.id)
        third = await upload_batch(client, lines)
        clock.now += 20.0
        accepted = await client.batches.retrieve(third.id)
        done = await client.batches.retrieve(first.id)
    assert done.status == "completed"
    assert refused.status == "failed"
    assert refused.errors is not None
    assert refused.errors.data is not None
    assert refused.errors.data[0].code == "token_limit_exceeded"
    assert accepted.status == "completed"
