"""`OpenAIChat` and `OpenAIEmbedder` against real HTTP servers on 127.0.0.1 (the fake OpenAI server, or a
tiny aiohttp app where a reply must be broken in a way the fake server does not offer)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import openai
import pytest
from aiohttp import web

from judgeflow.protocol.calls import ChatRequest, ErrorDecision, LimitKey
from judgeflow.protocol.messages import ChatMessage
from judgeflow.protocol.models import ChatModel, Embedder
from judgeflow.providers.openai.provider import (
    LOCAL_API_KEY,
    MalformedResponseError,
    MissingAPIKeyError,
    OpenAIChat,
    OpenAIEmbedder,
    classify_openai_error,
    is_local_url,
    make_client,
)
from judgeflow.testing import FakeOpenAI, serve_openai

pytestmark = pytest.mark.anyio

SECRET = "sk-proj-VerySecretKey0123456789abcdef"
CONTEXT = "The Eiffel Tower was completed in 1889. It is 330 metres tall."
ASK = ChatRequest(messages=(ChatMessage("user", f"## Context\n{CONTEXT}\n\n## Question\nHow tall is it?"),))


class ManualClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@asynccontextmanager
async def chat_on(
    config: FakeOpenAI | None = None, *, model: str = "gpt-4o-mini", timeout_s: float = 10.0
) -> AsyncIterator[OpenAIChat]:
    async with serve_openai(config) as server, OpenAIChat(model, base_url=server.base_url, timeout_s=timeout_s) as chat:
        yield chat


async def failure(chat: OpenAIChat, request: ChatRequest = ASK) -> tuple[BaseException, ErrorDecision]:
    try:
        await chat.complete(request)
    except Exception as error:
        return error, chat.classify(error)
    raise AssertionError("the call was expected to fail")


@asynccontextmanager
async def tiny_app(status: int, body: bytes, content_type: str = "application/json") -> AsyncIterator[str]:
    """A one-route server that answers every request with the same response; yields its base URL."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


# -- the happy path ----------------------------------------------------------------------------------------------


async def test_complete_returns_text_usage_and_the_limit_key() -> None:
    async with chat_on() as chat:
        model: ChatModel = chat  # the protocol, checked by mypy
        result = await model.complete(ASK)
    assert result.text == "It is 330 metres tall."
    assert result.model == "gpt-4o-mini"
    assert result.finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    assert chat.name == "gpt-4o-mini"
    assert chat.key == LimitKey("openai", "chat.completions", "gpt-4o-mini", chat.base_url.rstrip("/"))
    assert chat.key.server.startswith("http://127.0.0.1:")


async def test_max_tokens_and_provider_are_passed_through() -> None:
    async with serve_openai() as server:
        async with OpenAIChat("m", base_url=server.base_url, provider="local") as chat:
            result = await chat.complete(ChatRequest(messages=ASK.messages, max_tokens=1))
        assert chat.key == LimitKey("local", "chat.completions", "m", server.base_url)
    assert result.finish_reason == "length"
    assert len(result.text) == 4


@pytest.mark.parametrize("content", [None, ""])
async def test_empty_or_null_content_is_an_empty_string(content: str | None) -> None:
    def reply(model: str, messages: Sequence[tuple[str, str]]) -> str | None:
        return content

    async with chat_on(FakeOpenAI(reply_fn=reply)) as chat:
        result = await chat.complete(ASK)
    assert result.text == ""


async def test_a_shared_client_is_used_without_sdk_retries_and_left_open() -> None:
    async with (
        serve_openai(FakeOpenAI(fail_first_n=1)) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-x", max_retries=5) as client,
    ):
        chat = OpenAIChat("gpt-4o", client=client)
        error, decision = await failure(chat)
        assert isinstance(error, openai.InternalServerError)
        assert server.stats.requests["chat.completions"] == 1  # one attempt: retrying is the core's job
        await chat.aclose()
        assert not client.is_closed()
        assert (await OpenAIChat("gpt-4o", client=client).complete(ASK)).text
    assert decision.kind == "transient"


# -- classify: each kind from a real response --------------------------------------------------------------------


async def test_injected_429_is_rate_limited_with_retry_after_ms() -> None:
    async with chat_on(FakeOpenAI(fault_429=1.0, retry_after_s=0.25)) as chat:
        error, decision = await failure(chat)
    assert isinstance(error, openai.RateLimitError)
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s == pytest.approx(0.25)
    assert decision.status == 429


async def test_rpm_429_is_rate_limited_with_retry_after_seconds() -> None:
    clock = ManualClock()
    async with chat_on(FakeOpenAI(rpm=1, clock=clock)) as chat:
        await chat.complete(ASK)
        clock.now += 15.0
        _, decision = await failure(chat)
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s == pytest.approx(45.0)
    assert "Limit 1" in decision.detail


async def test_insufficient_quota_429_is_fatal_for_the_model() -> None:
    body = b'{"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}'  # noqa: E501
    async with tiny_app(429, body) as base_url, OpenAIChat("gpt-4o", base_url=base_url) as chat:
        _, decision = await failure(chat)
    assert decision.kind == "fatal_model"
    assert decision.status == 429
    assert decision.hint is None  # not a key problem


async def test_500_is_transient() -> None:
    async with chat_on(FakeOpenAI(fault_500=1.0)) as chat:
        error, decision = await failure(chat)
    assert isinstance(error, openai.InternalServerError)
    assert decision.kind == "transient"
    assert decision.status == 500


async def test_400_is_fatal() -> None:
    async with chat_on() as chat:
        error, decision = await failure(chat, ChatRequest(messages=()))
    assert isinstance(error, openai.BadRequestError)
    assert decision.kind == "fatal"
    assert decision.status == 400
    assert "messages" in decision.detail


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "fatal_model"),
        (403, "fatal_model"),
        (404, "fatal_model"),
        (408, "transient"),
        (409, "transient"),
        (413, "fatal"),
        (422, "fatal"),
        (500, "transient"),
        (501, "transient"),
        (502, "unreachable"),
        (503, "unreachable"),
        (504, "unreachable"),
    ],
)
async def test_other_statuses(status: int, kind: str) -> None:
    body = b'{"error": {"message": "nope", "type": "x"}}'
    async with tiny_app(status, body) as base_url, OpenAIChat("gpt-4o", base_url=base_url) as chat:
        _, decision = await failure(chat)
    assert decision.kind == kind
    assert decision.status == status


async def test_malformed_json_body_is_transient() -> None:
    async with chat_on(FakeOpenAI(fault_malformed=1.0)) as chat:
        _, decision = await failure(chat)
    assert decision.kind == "transient"
    assert decision.detail.startswith("malformed response: JSONDecodeError")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"object": "chat.completion", "choices": []}', "application/json"),
        (b'{"unexpected": true}', "application/json"),
        (b"hello", "text/plain"),
    ],
)
async def test_a_body_of_the_wrong_shape_is_transient(body: bytes, content_type: str) -> None:
    async with tiny_app(200, body, content_type) as base_url, OpenAIChat("gpt-4o", base_url=base_url) as chat:
        error, decision = await failure(chat)
    assert isinstance(error, MalformedResponseError)
    assert decision.kind == "transient"


async def test_timeout_and_refused_connection_mean_the_server_is_unreachable() -> None:
    async with chat_on(FakeOpenAI(fault_timeout=1.0), timeout_s=0.2) as chat:
        error, decision = await failure(chat)
    assert isinstance(error, openai.APITimeoutError)
    assert decision.kind == "unreachable"

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with OpenAIChat("gpt-4o", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=5.0) as chat:
        error, decision = await failure(chat)
    assert isinstance(error, openai.APIConnectionError)
    assert decision.kind == "unreachable"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "unsupported_parameter", "fatal_model"),  # e.g. max_tokens on a reasoning model: every call
        (400, "unsupported_value", "fatal_model"),
        (400, "context_length_exceeded", "fatal"),  # this prompt only
        (400, "model_not_found", "fatal_model"),
        (403, "unsupported_country_region_territory", "fatal_model"),
    ],
)
async def test_codes_that_say_every_call_would_fail(status: int, code: str, kind: str) -> None:
    body = json.dumps({"error": {"message": "no", "type": "invalid_request_error", "code": code}}).encode()
    async with tiny_app(status, body) as base_url, OpenAIChat("gpt-4o", base_url=base_url) as chat:
        _, decision = await failure(chat)
    assert (decision.kind, decision.status) == (kind, status)
    assert decision.detail.endswith(f"(code {code})")


async def test_a_rejected_key_says_where_it_came_from_never_what_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    async with serve_openai(FakeOpenAI(api_key="sk-the-right-one")) as server:
        async with OpenAIChat("gpt-4o", base_url=server.base_url) as chat:
            _, from_env = await failure(chat)
        async with OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url) as embedder:
            try:
                await embedder.embed(["x"])
            except openai.AuthenticationError as error:
                embedding = embedder.classify(error)
        monkeypatch.delenv("OPENAI_API_KEY")
        async with OpenAIChat("gpt-4o", base_url=server.base_url) as chat:
            _, none = await failure(chat)
    assert (from_env.kind, from_env.status, from_env.hint) == ("fatal_model", 401, "the key came from OPENAI_API_KEY")
    assert embedding.hint == "the key came from OPENAI_API_KEY"
    assert none.hint is not None
    assert none.hint.startswith("no key was sent (OPENAI_API_KEY is not set")
    for decision in (from_env, embedding, none):
        assert SECRET not in f"{decision}"
        assert "Incorrect API key provided" in decision.detail


async def test_an_unknown_or_forbidden_model_is_fatal_for_the_model() -> None:
    config = FakeOpenAI(known_models_only=True, forbidden_models=("gpt-4.1",))
    async with serve_openai(config) as server:
        async with OpenAIChat("ft:gpt-4o:nope", base_url=server.base_url) as chat:
            _, unknown = await failure(chat)
        async with OpenAIChat("gpt-4.1", base_url=server.base_url) as chat:
            _, forbidden = await failure(chat)
    assert (unknown.kind, unknown.status, unknown.hint) == ("fatal_model", 404, None)
    assert "The model `ft:gpt-4o:nope` does not exist or you do not have access to it." in unknown.detail
    assert (forbidden.kind, forbidden.status) == ("fatal_model", 403)
    assert "does not have access to model `gpt-4.1`" in forbidden.detail


def test_anything_else_is_fatal() -> None:
    decision = classify_openai_error(RuntimeError("boom"))
    assert decision == ErrorDecision("fatal", "RuntimeError: boom")


# -- the API key stays secret ------------------------------------------------------------------------------------


async def test_the_key_never_shows_in_reprs_or_error_details() -> None:
    async with serve_openai(FakeOpenAI(api_key="sk-the-right-one")) as server:
        async with OpenAIChat("gpt-4o", base_url=server.base_url, api_key=SECRET) as chat:
            error, decision = await failure(chat)
            server.config.api_key = None
            server.config.fault_500 = 1.0
            error_500, decision_500 = await failure(chat)
        async with OpenAIEmbedder("e", base_url=server.base_url, api_key=SECRET) as embedder:
            shown = repr(embedder)
    assert isinstance(error, openai.AuthenticationError)
    assert decision.kind == "fatal_model"
    assert decision_500.kind == "transient"
    for text in (repr(chat), shown, str(error), repr(error), decision.detail, str(error_500), decision_500.detail):
        assert SECRET not in text
        assert SECRET[-8:] not in text
    assert "sk-***" in decision.detail  # the server's masked echo of the key is scrubbed too


def test_classify_scrubs_the_clients_key_even_when_it_is_not_key_shaped() -> None:
    decision = classify_openai_error(ValueError("bad token azure-key-123456"), secret="azure-key-123456")
    assert "azure-key-123456" not in decision.detail


# -- the client factory ------------------------------------------------------------------------------------------


async def test_make_client_uses_a_placeholder_key_for_local_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    async with make_client("http://127.0.0.1:9/v1") as client:
        assert client.api_key == LOCAL_API_KEY
        assert client.max_retries == 0
        assert str(client.base_url) == "http://127.0.0.1:9/v1/"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    async with make_client(timeout_s=3.0) as client:
        assert client.api_key == "sk-from-env"
        assert client.timeout == 3.0
        assert str(client.base_url) == "http://localhost:9/v1/"


def test_make_client_without_a_key_for_a_remote_server_names_the_variable() -> None:
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        make_client()
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        OpenAIChat("gpt-4o", base_url="https://api.example.com/v1")


async def test_client_and_connection_arguments_are_exclusive() -> None:
    async with openai.AsyncOpenAI(api_key="sk-x", base_url="http://127.0.0.1:9/v1") as client:
        with pytest.raises(ValueError, match="either client"):
            OpenAIChat("gpt-4o", client=client, base_url="http://127.0.0.1:9/v1")


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://127.1.2.3/v1", True),
        ("https://api.openai.com/v1", False),
        ("http://localhost.example.com/v1", False),
    ],
)
def test_is_local_url(url: str, local: bool) -> None:
    assert is_local_url(url) is local


# -- embeddings --------------------------------------------------------------------------------------------------


async def test_embedder_returns_vectors_in_order() -> None:
    texts = ["the Eiffel Tower", "apple pie", "Eiffel Tower height"]
    async with serve_openai(FakeOpenAI(embedding_dim=16)) as server:
        async with OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url) as embedder:
            model: Embedder = embedder
            vectors = await model.embed(texts)
            short = await embedder.embed([])
        async with (
            openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-x") as client,
            OpenAIEmbedder("text-embedding-3-small", client=client, dimensions=8) as small,
        ):
            reference = await client.embeddings.create(
                model="text-embedding-3-small", input=texts, encoding_format="float"
            )
            eight = await small.embed(["apple pie"])
    assert [len(v) for v in vectors] == [16, 16, 16]
    assert vectors == [pytest.approx(d.embedding, abs=1e-6) for d in reference.data]
    assert short == []
    assert len(eight[0]) == 8
    assert embedder.key == LimitKey("openai", "embeddings", "text-embedding-3-small", server.base_url)


async def test_embedder_classifies_like_the_chat_model() -> None:
    async with (
        serve_openai(FakeOpenAI(fault_429=1.0, retry_after_s=1.5)) as server,
        OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url) as embedder,
    ):
        with pytest.raises(openai.RateLimitError) as caught:
            await embedder.embed(["x"])
        decision = embedder.classify(caught.value)
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s == pytest.approx(1.5)
