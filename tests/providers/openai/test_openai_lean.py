"""`LeanChatClient` (the HTTP path of `OpenAIChat`) over real HTTP on 127.0.0.1: the fake OpenAI server, or a
one-route aiohttp app where a reply must be broken in a way the fake server does not offer."""

from __future__ import annotations

import gc
import json
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import openai
import pytest
from aiohttp import web

from judgeflow.protocol.calls import ChatRequest, ErrorDecision
from judgeflow.protocol.messages import ChatMessage, Usage
from judgeflow.providers.openai.http import (
    LeanChatClient,
    MalformedResponseError,
    chat_body,
    parse_chat_completion,
    server_text,
    status_error,
)
from judgeflow.providers.openai.provider import OpenAIChat, classify_openai_error
from judgeflow.testing import FakeOpenAI, serve_openai

pytestmark = pytest.mark.anyio

SECRET = "sk-proj-LeanSecretKey0123456789abcdef"
CONTEXT = "The Eiffel Tower was completed in 1889. It is 330 metres tall."
ASK = ChatRequest(messages=(ChatMessage("user", f"## Context\n{CONTEXT}\n\n## Question\nHow tall is it?"),))


@pytest.fixture(autouse=True)
def _no_proxy_or_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@asynccontextmanager
async def lean_on(
    config: FakeOpenAI | None = None, *, api_key: str = "sk-local", timeout_s: float = 10.0
) -> AsyncIterator[LeanChatClient]:
    async with serve_openai(config) as server:
        client = LeanChatClient(server.base_url, api_key, timeout_s=timeout_s)
        try:
            yield client
        finally:
            await client.aclose()


async def failure(client: LeanChatClient, request: ChatRequest = ASK) -> BaseException:
    try:
        await client.complete("gpt-4o-mini", request)
    except Exception as error:
        return error
    raise AssertionError("the call was expected to fail")


@asynccontextmanager
async def tiny_app(
    status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A one-route server answering every request alike; yields its base URL and what it received."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "headers": dict(request.headers), "body": await request.read()})
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen
    finally:
        await runner.cleanup()


# -- success -----------------------------------------------------------------------------------------------------


async def test_a_completion_has_text_model_finish_reason_and_usage() -> None:
    async with lean_on() as client:
        result = await client.complete("gpt-4o-mini", ASK)
        again = await client.complete("gpt-4o-mini", ASK)  # the same session, a pooled connection
    assert result.text == "It is 330 metres tall."
    assert result.model == "gpt-4o-mini"
    assert result.finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    assert again == result


async def test_max_tokens_is_sent_only_when_set() -> None:
    async with lean_on() as client:
        capped = await client.complete("m", ChatRequest(messages=ASK.messages, max_tokens=1))
    assert capped.finish_reason == "length"
    assert len(capped.text) == 4
    assert "max_tokens" not in chat_body("m", ASK)
    assert chat_body("m", ChatRequest(ASK.messages, temperature=0.5, max_tokens=7)) == {
        "model": "m",
        "messages": [{"role": "user", "content": ASK.messages[0].content}],
        "temperature": 0.5,
        "max_tokens": 7,
    }


async def test_the_request_carries_the_key_headers_and_the_body() -> None:
    reply = json.dumps({"model": "m", "choices": [{"message": {"content": "4"}, "finish_reason": "stop"}]}).encode()
    async with tiny_app(200, reply) as (base_url, seen):
        client = LeanChatClient(base_url + "/", SECRET, headers={"OpenAI-Organization": "org-1"})
        try:
            result = await client.complete("m", ASK)
        finally:
            await client.aclose()
    (request,) = seen
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert request["headers"]["OpenAI-Organization"] == "org-1"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == chat_body("m", ASK)
    assert result.text == "4"
    assert result.usage is None  # the server reported none


@pytest.mark.parametrize("content", [None, ""])
async def test_empty_or_null_content_is_an_empty_string(content: str | None) -> None:
    def reply(model: str, messages: Sequence[tuple[str, str]]) -> str | None:
        return content

    async with lean_on(FakeOpenAI(reply_fn=reply)) as client:
        result = await client.complete("m", ASK)
    assert result.text == ""


async def test_openai_chat_uses_the_lean_client_and_a_shared_clients_settings() -> None:
    reply = b'{"choices": [{"message": {"content": "3"}}]}'
    async with (
        tiny_app(200, reply) as (base_url, seen),
        openai.AsyncOpenAI(base_url=base_url, api_key=SECRET, organization="org-7", project="p-9") as sdk,
    ):
        chat = OpenAIChat("gpt-4o", client=sdk)
        result = await chat.complete(ASK)
        await chat.aclose()
        assert not sdk.is_closed()  # the SDK client belongs to its owner
    headers = seen[0]["headers"]
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert (headers["OpenAI-Organization"], headers["OpenAI-Project"]) == ("org-7", "p-9")
    assert result.model == "gpt-4o"  # the reply named no model: the requested one
    assert chat.base_url == base_url + "/"


# -- errors are the SDK's, classified as the SDK's ---------------------------------------------------------------


async def test_429_is_a_rate_limit_error_with_retry_after() -> None:
    async with lean_on(FakeOpenAI(fault_429=1.0, retry_after_s=0.25)) as client:
        error = await failure(client)
    assert isinstance(error, openai.RateLimitError)
    assert error.code == "rate_limit_exceeded"
    decision = classify_openai_error(error)
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s == pytest.approx(0.25)
    assert decision.status == 429


async def test_rpm_429_reads_retry_after_seconds() -> None:
    now = [1_700_000_000.0]
    async with lean_on(FakeOpenAI(rpm=1, clock=lambda: now[0])) as client:
        await client.complete("gpt-4o-mini", ASK)  # the window is per model: the same one as `failure`
        now[0] += 15.0
        decision = classify_openai_error(await failure(client))
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s == pytest.approx(45.0)
    assert "Limit 1" in decision.detail


async def test_insufficient_quota_is_fatal_for_the_model() -> None:
    body = b'{"error": {"message": "You exceeded your current quota.", "type": "x", "code": "insufficient_quota"}}'
    async with tiny_app(429, body) as (base_url, _):
        client = LeanChatClient(base_url, "sk-local")
        try:
            error = await failure(client)
        finally:
            await client.aclose()
    assert isinstance(error, openai.RateLimitError)
    assert classify_openai_error(error).kind == "fatal_model"


async def test_500_is_transient() -> None:
    async with lean_on(FakeOpenAI(fault_500=1.0)) as client:
        error = await failure(client)
    assert isinstance(error, openai.InternalServerError)
    assert error.status_code == 500
    assert classify_openai_error(error) == ErrorDecision("transient", _detail(error), status=500)


def _detail(error: BaseException) -> str:
    return classify_openai_error(error).detail


async def test_400_is_fatal_and_names_the_problem() -> None:
    async with lean_on() as client:
        error = await failure(client, ChatRequest(messages=()))
    assert isinstance(error, openai.BadRequestError)
    decision = classify_openai_error(error)
    assert (decision.kind, decision.status) == ("fatal", 400)
    assert "messages" in decision.detail


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (409, openai.ConflictError),
        (422, openai.UnprocessableEntityError),
        (418, openai.APIStatusError),
        (503, openai.InternalServerError),
    ],
)
def test_status_errors_are_the_sdks_classes(status: int, cls: type[openai.APIStatusError]) -> None:
    request = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    body = b'{"error": {"message": "nope", "type": "t", "code": "c"}}'
    error = status_error(status, [("retry-after", "2")], body, request)
    assert type(error) is cls
    assert (error.status_code, error.code, error.message) == (status, "c", f"Error code: {status} - nope")
    assert error.response.headers["retry-after"] == "2"
    plain = status_error(status, {}, b"not json", request)
    assert plain.body == "not json"
    assert plain.message == f"Error code: {status} - not json"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        # OpenAI, Ollama and recent vLLM
        (
            b'{"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "code": 404}}',
            "The model `x` does not exist.",
        ),
        (b'{"error": "Unauthorized"}', "Unauthorized"),  # vLLM with --api-key
        (
            b'{"object": "error", "message": "The model `x` does not exist.", "code": 404}',  # older vLLM
            "The model `x` does not exist.",
        ),
        (b'{"detail": "Invalid API key"}', "Invalid API key"),  # llama.cpp's server (FastAPI)
        (b"<html><body>502   Bad\nGateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        (b"{}", ""),
    ],
)
def test_the_servers_own_words_are_in_the_message_whichever_server(body: bytes, text: str) -> None:
    request = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    error = status_error(404, {}, body, request)
    assert error.message == "Error code: 404" + (f" - {text}" if text else "")
    assert server_text("x" * 400).endswith("...")
    assert len(server_text("x" * 400)) == 300


async def test_a_truncated_json_body_is_transient() -> None:
    async with lean_on(FakeOpenAI(fault_malformed=1.0)) as client:
        error = await failure(client)
    assert isinstance(error, json.JSONDecodeError)
    decision = classify_openai_error(error)
    assert decision.kind == "transient"
    assert decision.detail.startswith("malformed response: JSONDecodeError")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"object": "chat.completion", "choices": []}', "application/json"),
        (b'{"unexpected": true}', "application/json"),
        (b'{"choices": [{"message": {"content": "4"}}], "usage": {"prompt_tokens": "many"}}', "application/json"),
        (b"[1, 2]", "application/json"),
        (b"hello", "text/plain"),
    ],
)
async def test_a_body_of_the_wrong_shape_is_malformed_and_transient(body: bytes, content_type: str) -> None:
    async with tiny_app(200, body, content_type) as (base_url, _):
        client = LeanChatClient(base_url, "sk-local")
        try:
            error = await failure(client)
        finally:
            await client.aclose()
    assert isinstance(error, MalformedResponseError)
    assert classify_openai_error(error).kind == "transient"


async def test_timeout_and_refused_connection_mean_the_server_is_unreachable() -> None:
    async with lean_on(FakeOpenAI(fault_timeout=1.0), timeout_s=0.2) as client:
        error = await failure(client)
    assert isinstance(error, openai.APITimeoutError)
    assert classify_openai_error(error).kind == "unreachable"

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = LeanChatClient(f"http://127.0.0.1:{port}/v1", "sk-local", timeout_s=5.0)
    try:
        error = await failure(client)
    finally:
        await client.aclose()
    assert isinstance(error, openai.APIConnectionError)
    decision = classify_openai_error(error)
    assert (decision.kind, decision.status) == ("unreachable", None)
    assert f"Cannot connect to host 127.0.0.1:{port}" in decision.detail  # what failed, not just "Connection error."


# -- the key stays secret ----------------------------------------------------------------------------------------


async def test_the_key_never_shows_in_errors_details_or_reprs() -> None:
    async with serve_openai(FakeOpenAI(api_key="sk-the-right-one")) as server:
        client = LeanChatClient(server.base_url, SECRET)
        chat = OpenAIChat("gpt-4o", base_url=server.base_url, api_key=SECRET)
        try:
            unauthorized = await failure(client)
            chat_error = await failure_of(chat)
            server.config.api_key = None
            server.config.fault_500 = 1.0
            broken = await failure(client)
        finally:
            await client.aclose()
            await chat.aclose()
    assert isinstance(unauthorized, openai.AuthenticationError)
    decisions = [classify_openai_error(e, secret=SECRET) for e in (unauthorized, broken)] + [chat.classify(chat_error)]
    assert [d.kind for d in decisions] == ["fatal_model", "transient", "fatal_model"]
    assert decisions[2].hint == "the key passed as api_key"  # where it came from, never what it is
    texts = [repr(client), repr(chat), *(t for e in (unauthorized, broken, chat_error) for t in (str(e), repr(e)))]
    texts += [d.detail for d in decisions]
    for text in texts:
        assert SECRET not in text
        assert SECRET[-8:] not in text
    assert "sk-***" in decisions[0].detail  # the server's masked echo of the key is scrubbed too


async def failure_of(chat: OpenAIChat) -> BaseException:
    try:
        await chat.complete(ASK)
    except Exception as error:
        return error
    raise AssertionError("the call was expected to fail")


# -- parsing and closing -----------------------------------------------------------------------------------------


def test_parse_chat_completion_fills_in_what_is_missing() -> None:
    data = {"choices": [{"message": {"content": None}, "finish_reason": 3}], "model": "", "usage": {}}
    result = parse_chat_completion(data, "asked")
    assert (result.text, result.model, result.finish_reason, result.usage) == ("", "asked", None, Usage(0, 0))
    with pytest.raises(MalformedResponseError):
        parse_chat_completion({"choices": [{}]}, "asked")


async def test_aclose_is_idempotent_and_a_closed_client_refuses_calls() -> None:
    async with lean_on() as client:
        await client.complete("m", ASK)
        await client.aclose()
        await client.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await client.complete("m", ASK)


async def test_a_client_dropped_without_aclose_has_its_session_closed_by_the_loop() -> None:
    # pytest turns an unclosed aiohttp session into an error (filterwarnings = error): this test fails if the
    # event loop does not close the session of a client nobody closed.
    async with serve_openai() as server:
        client = LeanChatClient(server.base_url, "sk-local")
        assert (await client.complete("m", ASK)).text
        in_a_cycle = LeanChatClient(server.base_url, "sk-local")
        assert (await in_a_cycle.complete("m", ASK)).text
        box: list[object] = [in_a_cycle]
        box.append(box)  # only the cycle collector can free this one
        del client, in_a_cycle, box
        gc.collect()
        for _ in range(5):
            await anyio.lowlevel.checkpoint()


async def test_the_environment_proxy_is_skipped_for_no_proxy_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a dead proxy: using it would fail the call
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    async with lean_on() as client:
        assert (await client.complete("m", ASK)).text


def test_constrained_output_and_logprobs_go_in_the_body_as_openai_and_llama_cpp_take_them() -> None:
    from judgeflow.core.scoring import JUDGE_SCHEMA, judge_output
    from judgeflow.protocol.messages import ChatMessage
    from judgeflow.providers.openai.http import chat_body

    base = ChatRequest((ChatMessage("user", "json please"),))
    assert "response_format" not in chat_body("m", base)
    assert "logprobs" not in chat_body("m", base)
    strict = chat_body("m", ChatRequest(base.messages, output=judge_output(), top_logprobs=5))
    assert strict["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "judgement", "strict": True, "schema": JUDGE_SCHEMA},
    }
    assert (strict["logprobs"], strict["top_logprobs"]) == (True, 5)
    grammar = chat_body("m", ChatRequest(base.messages, output=judge_output("json_object")))
    assert grammar["response_format"] == {"type": "json_object", "schema": JUDGE_SCHEMA}


def test_token_logprobs_are_read_and_a_garbled_list_is_no_list() -> None:
    from judgeflow.protocol.calls import TokenLogprob

    entry = {"token": "4", "logprob": -0.3, "bytes": [52], "top_logprobs": [{"token": "4", "logprob": -0.3}]}
    data = {"choices": [{"message": {"content": "4"}, "logprobs": {"content": [entry], "refusal": None}}]}
    assert parse_chat_completion(data, "m").logprobs == (TokenLogprob("4", -0.3, (("4", -0.3),)),)
    for garbled in (None, {"content": None}, {"content": [{"token": "4"}]}, "yes"):
        data["choices"][0]["logprobs"] = garbled
        assert parse_chat_completion(data, "m").logprobs is None


@pytest.mark.parametrize(
    ("status", "message", "feature"),
    [
        (
            500,
            "1 validation error: ('body', 'response_format', 'type') Input should be 'text' or 'json_object'",
            "json_schema",
        ),
        (
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
            "json_schema",
        ),
        (422, "json_schema is not supported", "json_schema"),
        (400, "'messages' must contain the word 'json' in some form, to use 'response_format'", None),
        (400, "This model does not support 'logprobs'.", "logprobs"),
        (401, "Incorrect API key provided (response_format)", None),
        (400, "Maximum context length exceeded", None),
    ],
)
def test_a_refused_feature_is_told_from_other_errors(status: int, message: str, feature: str | None) -> None:
    from judgeflow.core.scoring import judge_output
    from judgeflow.protocol.messages import ChatMessage
    from judgeflow.providers.openai.provider import unsupported_feature

    request = ChatRequest((ChatMessage("user", "x"),), output=judge_output(), top_logprobs=5)
    assert unsupported_feature(status, message, request) == feature
    plain = ChatRequest((ChatMessage("user", "x"),))
    assert unsupported_feature(status, message, plain) is None
