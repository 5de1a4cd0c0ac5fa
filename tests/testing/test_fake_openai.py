"""The fake OpenAI server, spoken to by the real ``openai`` SDK over HTTP on 127.0.0.1.

Files and fine-tuning jobs are tested in `test_openai_server_finetune`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from collections.abc import Sequence

import aiohttp
import anyio
import openai
import pytest

from judgeflow.core.parsing import parse_judge_reply
from judgeflow.core.prompts import (
    DEFAULT_JUDGE_PROMPT,
    DEFAULT_QUESTION_PROMPT,
    answer_messages,
    parse_question_replies,
)
from judgeflow.protocol.messages import ChatMessage, JudgeInput
from judgeflow.protocol.verdicts import Scored, Unparsed
from judgeflow.testing import FakeOpenAI, JudgeFormat, OpenAIServer, serve_openai
from openai_doubles import ManualClock, running

pytestmark = pytest.mark.anyio

CONTEXT = (
    "The Eiffel Tower was completed in 1889 for the World's Fair. It is 330 metres tall. "
    "Gustave Eiffel's company designed and built the tower."
)


def judge_messages(question: str, reference: str, answer: str) -> list[openai.types.chat.ChatCompletionMessageParam]:
    return params(DEFAULT_JUDGE_PROMPT.messages(JudgeInput(question, reference, answer)))


def params(messages: Sequence[ChatMessage]) -> list[openai.types.chat.ChatCompletionMessageParam]:
    out: list[openai.types.chat.ChatCompletionMessageParam] = []
    for m in messages:
        if m.role == "system":
            out.append({"role": "system", "content": m.content})
        elif m.role == "assistant":
            out.append({"role": "assistant", "content": m.content})
        else:
            out.append({"role": "user", "content": m.content})
    return out


async def chat_text(client: openai.AsyncOpenAI, model: str, content: str) -> str:
    completion = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    return completion.choices[0].message.content or ""


# -- chat completions --------------------------------------------------------------------------------------------


async def test_chat_completion_has_the_openai_shape() -> None:
    async with running() as (server, client):
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "## Question\nHow tall?\n\n## Context\n" + CONTEXT}]
        )
        completion = raw.parse()
        assert raw.headers["content-type"].startswith("application/json")
        assert raw.headers["x-request-id"].startswith("req_")
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert completion.created > 0
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "It is 330 metres tall."
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert server.stats.requests["chat.completions"] == 1


async def test_max_tokens_truncates_with_finish_reason_length() -> None:
    async with running() as (_, client):
        completion = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "## Context\n" + CONTEXT}], max_tokens=2
        )
    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].message.content or "") == 8


async def test_judges_differ_by_model_and_fine_tuned_models_judge_like_the_teacher() -> None:
    items = [
        ("Who built the tower?", "Gustave Eiffel's company built it.", "Gustave Eiffel's company built it."),
        ("Who built the tower?", "Gustave Eiffel's company built it.", "Nobody knows."),
        (
            "When was it completed?",
            "In 1889.",
            "It was finished a long time ago, in the nineteenth century, after many years of very hard work.",
        ),
    ]
    scores: dict[str, list[float]] = {}
    async with running() as (_, client):
        for model in ("gpt-4o", "gpt-3.5-turbo", "ft:gpt-3.5-turbo:judgeflow-test:judge:abc12345"):
            for question, reference, answer in items:
                completion = await client.chat.completions.create(
                    model=model, messages=judge_messages(question, reference, answer)
                )
                reply = completion.choices[0].message.content or ""
                first, _, reasoning = reply.partition("\n")
                assert re.fullmatch(r"[1-5]\.[05]", first), reply
                assert reasoning
                assert not re.search(r"\d", reasoning)
                verdict = parse_judge_reply(reply)
                assert isinstance(verdict, Scored)
                scores.setdefault(model, []).append(verdict.score)
    teacher = scores["gpt-4o"]
    assert teacher[0] == 5.0
    assert teacher[1] == 1.0
    assert scores["ft:gpt-3.5-turbo:judgeflow-test:judge:abc12345"] == teacher
    assert scores["gpt-3.5-turbo"] != teacher
    assert scores["gpt-3.5-turbo"][2] >= 4.0  # the crude rule likes long answers, right or wrong


@pytest.mark.parametrize(
    ("judge_format", "pattern"),
    [
        ("score-first", r"[1-5]\.[05]\n[^\d]+"),
        ("score-only", r"[1-5](\.5)?"),
        ("reasoning-first", r"Reasoning: [^\d]+\nScore: [1-5](\.5)?"),
        ("garbage", r"[^\d]+"),
    ],
)
async def test_judge_reply_formats(judge_format: JudgeFormat, pattern: str) -> None:
    async with running(FakeOpenAI(judge_format=judge_format)) as (_, client):
        completion = await client.chat.completions.create(
            model="gpt-4o", messages=judge_messages("Who built it?", "Eiffel's company.", "Eiffel's company did.")
        )
    reply = completion.choices[0].message.content or ""
    assert re.fullmatch(pattern, reply), reply
    verdict = parse_judge_reply(reply)
    assert isinstance(verdict, Unparsed if judge_format == "garbage" else Scored)


async def test_garbage_rate_is_a_deterministic_share_of_items() -> None:
    async def replies() -> list[str]:
        async with running(FakeOpenAI(judge_garbage_rate=0.3, seed=7)) as (_, client):
            out = []
            for i in range(60):
                completion = await client.chat.completions.create(
                    model="gpt-4o", messages=judge_messages(f"Question {i}?", "The reference.", f"Answer {i}.")
                )
                out.append(completion.choices[0].message.content or "")
            return out

    first, second = await replies(), await replies()
    assert first == second
    garbage = sum(isinstance(parse_judge_reply(r), Unparsed) for r in first)
    assert 5 <= garbage <= 35


async def test_question_writer_and_answerer_follow_the_prompts() -> None:
    async with running() as (_, client):
        completion = await client.chat.completions.create(
            model="gpt-4o", messages=params(DEFAULT_QUESTION_PROMPT.messages(CONTEXT, num_questions=2))
        )
        pairs = parse_question_replies(completion.choices[0].message.content or "")
        answer = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=params(answer_messages("Who built the Eiffel Tower?", [CONTEXT, "Paris is in France."])),
        )
        unknown = await client.chat.completions.create(
            model="gpt-4o-mini", messages=params(answer_messages("What is quantum chromodynamics?", [CONTEXT]))
        )
    assert [p.reference for p in pairs] == [
        "The Eiffel Tower was completed in 1889 for the World's Fair.",
        "Gustave Eiffel's company designed and built the tower.",
    ]
    assert pairs[0].question == "What does the text say about the Eiffel Tower?"
    assert answer.choices[0].message.content == "Gustave Eiffel's company designed and built the tower."
    assert unknown.choices[0].message.content == "I don't know."


async def test_reply_fn_replaces_the_rules_and_none_is_null_content() -> None:
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def reply(model: str, messages: Sequence[tuple[str, str]]) -> str | None:
        seen.append((model, list(messages)))
        return None if model == "null" else "custom"

    async with running(FakeOpenAI(reply_fn=reply)) as (_, client):
        assert await chat_text(client, "m", "hi") == "custom"
        completion = await client.chat.completions.create(model="null", messages=[{"role": "user", "content": "x"}])
    assert completion.choices[0].message.content is None
    assert seen[0] == ("m", [("user", "hi")])


async def test_invalid_chat_requests_are_400_with_an_openai_error_body() -> None:
    async with running() as (server, client):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=[])
        assert caught.value.param == "messages"
        assert caught.value.type == "invalid_request_error"
        async with aiohttp.ClientSession() as session:
            url = server.base_url + "/chat/completions"
            async with session.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as bad:
                assert bad.status == 400
                assert "error" in await bad.json()
            async with session.get(server.base_url + "/nowhere") as missing:
                assert missing.status == 404
                assert (await missing.json())["error"]["type"] == "invalid_request_error"
    assert server.stats.responses[400] == 2


# -- embeddings --------------------------------------------------------------------------------------------------


async def test_embeddings_are_deterministic_unit_vectors_in_both_encodings() -> None:
    texts = ["the Eiffel Tower in Paris", "Eiffel Tower height", "a recipe for apple pie"]
    async with running(FakeOpenAI(embedding_dim=32)) as (_, client):
        as_base64 = await client.embeddings.create(model="text-embedding-3-small", input=texts)  # SDK default
        as_float = await client.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float")
        single = await client.embeddings.create(model="text-embedding-3-small", input="apple pie", dimensions=8)
        with pytest.raises(openai.BadRequestError):
            await client.embeddings.create(model="text-embedding-3-small", input=[""])
    assert as_float.object == "list"
    assert as_float.model == "text-embedding-3-small"
    assert [d.index for d in as_float.data] == [0, 1, 2]
    assert as_float.usage.prompt_tokens == as_float.usage.total_tokens > 0
    vectors = [d.embedding for d in as_float.data]
    for vector, packed in zip(vectors, (d.embedding for d in as_base64.data), strict=True):
        assert len(vector) == 32
        assert math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-9)
        assert packed == pytest.approx(vector, abs=1e-6)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    assert len(single.data[0].embedding) == 8


# -- limits and faults -------------------------------------------------------------------------------------------


async def test_injected_429_carries_retry_after_ms_and_an_openai_body() -> None:
    async with running(FakeOpenAI(fault_429=1.0, retry_after_s=0.25)) as (server, client):
        with pytest.raises(openai.RateLimitError) as caught:
            await chat_text(client, "gpt-4o", "hello")
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after-ms"] == "250"
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.response.headers["x-ratelimit-reset-requests"] == "250ms"
    assert error.type == "requests"
    assert error.code == "rate_limit_exceeded"
    assert server.stats.served_429 == 1


async def test_rpm_limit_is_a_sliding_window_per_model() -> None:
    clock = ManualClock()
    async with running(FakeOpenAI(rpm=3, clock=clock)) as (server, client):
        remaining = []
        for _ in range(3):
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )
            remaining.append(raw.headers["x-ratelimit-remaining-requests"])
            assert raw.headers["x-ratelimit-limit-requests"] == "3"
            clock.now += 10.0
        with pytest.raises(openai.RateLimitError) as caught:
            await chat_text(client, "gpt-4o", "hi")
        assert await chat_text(client, "gpt-4o-mini", "hi") is not None  # another model, another window
        clock.now += 30.0  # the first request leaves the 60 s window
        await chat_text(client, "gpt-4o", "hi")
    assert remaining == ["2", "1", "0"]
    headers = caught.value.response.headers
    assert headers["retry-after"] == "30"
    assert headers["x-ratelimit-reset-requests"] == "30s"
    assert caught.value.code == "rate_limit_exceeded"
    assert "Limit 3" in caught.value.message
    assert server.stats.rate_limited == 1
    assert server.stats.served_429 == 1


async def outcomes(config: FakeOpenAI, n: int) -> tuple[list[str], OpenAIServer]:
    results: list[str] = []
    async with running(config) as (server, client):
        for _ in range(n):
            try:
                await chat_text(client, "gpt-4o", "## Context\n" + CONTEXT)
            except openai.RateLimitError:
                results.append("429")
            except openai.InternalServerError:
                results.append("500")
            except json.JSONDecodeError:
                results.append("malformed")
            else:
                results.append("ok")
    return results, server


async def test_fault_injection_is_counted_and_reproducible() -> None:
    def config() -> FakeOpenAI:
        return FakeOpenAI(fault_429=0.2, fault_500=0.2, fault_malformed=0.1, seed=3)

    first, server = await outcomes(config(), 200)
    second, _ = await outcomes(config(), 200)
    counts = Counter(first)
    assert first == second
    assert counts["429"] == server.stats.served_429 > 0
    assert counts["500"] == server.stats.served_500 > 0
    assert counts["malformed"] == server.stats.served_malformed > 0
    assert counts["ok"] == server.stats.responses[200] - server.stats.served_malformed > 0
    assert server.stats.requests["chat.completions"] == 200


async def test_fail_first_n_fails_exactly_the_first_requests() -> None:
    results, _ = await outcomes(FakeOpenAI(fail_first_n=2), 4)
    assert results == ["500", "500", "ok", "ok"]
    results, _ = await outcomes(FakeOpenAI(fail_first_n=1, fail_first_status=429), 2)
    assert results == ["429", "ok"]


async def test_timeout_fault_outlasts_the_client_and_does_not_delay_shutdown() -> None:
    with anyio.fail_after(10):
        async with running(FakeOpenAI(fault_timeout=1.0), timeout_s=0.2) as (server, client):
            with pytest.raises(openai.APITimeoutError):
                await chat_text(client, "gpt-4o", "hello")
            assert server.stats.served_timeout == 1
            server.config.fault_timeout = 0.0  # the config is read per request
            assert await chat_text(client, "gpt-4o", "## Context\n" + CONTEXT)


async def test_faults_leave_other_endpoints_alone() -> None:
    async with running(FakeOpenAI(fault_500=1.0)) as (_, client):
        models = await client.models.list()
        with pytest.raises(openai.InternalServerError):
            await client.embeddings.create(model="text-embedding-3-small", input="x")
    assert "gpt-4o" in [m.id for m in models.data]


async def test_stats_track_concurrency_and_log_requests() -> None:
    async with running(FakeOpenAI(latency_s=0.1)) as (server, client):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(chat_text, client, "gpt-4o-mini", "hi")
        await client.embeddings.create(model="text-embedding-3-small", input="x")
    stats = server.stats
    assert stats.max_in_flight >= 2
    assert stats.in_flight == 0
    assert stats.total == 9
    assert [(r.path, r.model) for r in stats.log][-1] == ("/v1/embeddings", "text-embedding-3-small")
    assert sum(r.path == "/v1/chat/completions" and r.model == "gpt-4o-mini" for r in stats.log) == 8
    assert all(r.time > 0 for r in stats.log)


async def test_api_key_check_echoes_only_a_masked_key() -> None:
    secret = "sk-wrong-secret-0123456789"
    async with (
        serve_openai(FakeOpenAI(api_key="sk-right")) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key=secret, max_retries=0) as client,
    ):
        with pytest.raises(openai.AuthenticationError) as caught:
            await chat_text(client, "gpt-4o", "hi")
    assert secret not in str(caught.value)
    assert caught.value.code == "invalid_api_key"


async def test_cli_serves_until_terminated() -> None:
    command = [sys.executable, "-m", "judgeflow.testing.openai_server", "--port", "0", "--fault-500", "0"]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        line = b""
        with anyio.fail_after(30):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive(1)
        base_url = line.decode().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
        async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-local", max_retries=0) as client:
            assert await chat_text(client, "gpt-4o", "## Context\n" + CONTEXT)
        process.terminate()
        with anyio.fail_after(10):
            code = await process.wait()
        errors = b"".join([chunk async for chunk in process.stderr])
    assert code == 0
    assert errors == b""
