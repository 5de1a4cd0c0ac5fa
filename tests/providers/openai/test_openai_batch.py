"""`OpenAIBatch`, the Batch API client, against the fake server over HTTP with the real SDK.

Each method is one attempt; the lines it reads back are parsed as online replies are, and request-level errors
are classified as online errors are.
"""

from __future__ import annotations

import json

import anyio
import openai
import pytest

from judgeflow.protocol.batches import BatchState
from judgeflow.protocol.calls import ChatRequest
from judgeflow.protocol.messages import ChatMessage
from judgeflow.providers.openai.batch import OpenAIBatch
from judgeflow.providers.openai.http import chat_body
from judgeflow.providers.openai.provider import OpenAIChat
from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

MODEL = "gpt-4o-mini"


def request(i: int) -> ChatRequest:
    user = f"## Question\nQ{i}?\n\n## Reference Answer\nIt is {i}.\n\n## Generated Answer\nIt is {i}."
    return ChatRequest((ChatMessage("system", "Grade."), ChatMessage("user", user)), max_tokens=40)


async def until_ended(batches: OpenAIBatch, state: BatchState) -> BatchState:
    with anyio.fail_after(10):
        while not state.ended:
            await anyio.sleep(0.02)
            state = await batches.retrieve(state.id)
    return state


def fast(**changes: object) -> FakeOpenAI:
    base: dict[str, object] = {"batch_validate_s": 0.02, "batch_run_s": 0.05, "batch_finalize_s": 0.02}
    return FakeOpenAI(**{**base, **changes})  # type: ignore[arg-type]


def client(server: OpenAIServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=3)


async def test_request_lines_carry_the_online_body_and_results_parse_as_online() -> None:
    async with serve_openai(fast()) as server, client(server) as sdk:
        batches = OpenAIBatch(MODEL, sdk)
        data = b"".join(batches.request_line(f"c{i}", request(i)) for i in range(4))
        file_id = await batches.upload("part-1.jsonl", data)
        created = await batches.create(file_id, metadata={"judgeflow_part": "part-1.jsonl"})
        ended = await until_ended(batches, created)
        lines = await batches.results(ended)
        async with OpenAIChat(MODEL, base_url=server.base_url) as chat:
            online = await chat.complete(request(2))
    first = json.loads(data.splitlines()[0])
    assert first == {
        "custom_id": "c0",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": chat_body(MODEL, request(0)),
    }
    assert created.status == "validating"
    assert (ended.status, ended.total, ended.completed, ended.failed) == ("completed", 4, 4, 0)
    assert sorted(line.custom_id for line in lines) == ["c0", "c1", "c2", "c3"]
    assert all(line.error is None and line.result is not None for line in lines)
    by_id = {line.custom_id: line.result for line in lines}
    assert by_id["c2"] == online


async def test_uploads_and_batches_are_found_again_by_name_and_metadata() -> None:
    async with serve_openai(fast()) as server, client(server) as sdk:
        batches = OpenAIBatch(MODEL, sdk)
        file_id = await batches.upload("part-7.jsonl", batches.request_line("c", request(1)))
        created = await batches.create(file_id, metadata={"judgeflow_part": "part-7.jsonl"})
        found_file = await batches.find_upload("part-7.jsonl")
        missing_file = await batches.find_upload("part-8.jsonl")
        found = await batches.find({"judgeflow_part": "part-7.jsonl"})
        missing = await batches.find({"judgeflow_part": "part-8.jsonl"})
    assert found_file == file_id
    assert missing_file is None
    assert found is not None
    assert found.id == created.id
    assert missing is None


async def test_request_errors_are_transient_or_fatal_like_online_errors() -> None:
    async with serve_openai(fast(batch_fault_rate=0.5)) as server, client(server) as sdk:
        batches = OpenAIBatch(MODEL, sdk)
        lines = [batches.request_line(f"c{i}", request(i)) for i in range(12)]
        refused = {"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions", "body": {"model": MODEL}}
        data = b"".join(lines) + json.dumps(refused).encode() + b"\n"
        state = await batches.create(await batches.upload("p.jsonl", data), metadata={})
        results = {line.custom_id: line for line in await batches.results(await until_ended(batches, state))}
    bad = results.pop("bad")
    assert bad.error is not None
    assert (bad.error.kind, bad.error.status) == ("fatal", 400)
    assert "messages" in bad.error.detail
    faulted = [line for line in results.values() if line.error is not None]
    assert faulted
    assert all(
        line.error is not None and (line.error.kind, line.error.status) == ("transient", 500) for line in faulted
    )
    assert all(not line.unfinished for line in results.values())


async def test_an_expired_batch_marks_its_unrun_requests_unfinished() -> None:
    async with serve_openai(fast(batch_run_s=1.0, batch_window_s=0.3)) as server, client(server) as sdk:
        batches = OpenAIBatch(MODEL, sdk)
        data = b"".join(batches.request_line(f"c{i}", request(i)) for i in range(10))
        state = await until_ended(batches, await batches.create(await batches.upload("p.jsonl", data), metadata={}))
        lines = await batches.results(state)
    assert state.status == "expired"
    unfinished = [line for line in lines if line.unfinished]
    assert unfinished
    assert len(lines) == 10
    assert all(line.error is not None and "batch_expired" in line.error.detail for line in unfinished)


async def test_a_failed_batch_reports_its_problems_and_cancel_stops_one() -> None:
    async with serve_openai(fast(batch_run_s=5.0)) as server, client(server) as sdk:
        batches = OpenAIBatch(MODEL, sdk)
        wrong = OpenAIBatch("gpt-9-imaginary", sdk)
        failed = await until_ended(
            wrong, await wrong.create(await wrong.upload("w.jsonl", wrong.request_line("c", request(1))), metadata={})
        )
        running = await batches.create(
            await batches.upload("r.jsonl", batches.request_line("c", request(1))), metadata={}
        )
        cancelling = await batches.cancel(running.id)
        with pytest.raises(openai.NotFoundError) as caught:
            await batches.retrieve("batch_missing")
    assert failed.status == "failed"
    assert failed.problems[0].code == "model_not_found"
    assert failed.problems[0].line == 1
    assert "gpt-9-imaginary" in str(failed.problems[0])
    assert cancelling.status == "cancelling"
    assert batches.classify(caught.value).kind in ("fatal", "fatal_model")  # either stops the run
