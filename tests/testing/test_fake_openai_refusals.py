"""The fake OpenAI server's refusals and its outage switch, through the real SDK: what a wrong model, a forbidden
model, an over-long prompt and a server that went away look like on the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest

from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai

pytestmark = pytest.mark.anyio

ASK = "How tall is the Eiffel Tower?"


@asynccontextmanager
async def client_of(config: FakeOpenAI | None = None) -> AsyncIterator[tuple[OpenAIServer, openai.AsyncOpenAI]]:
    async with (
        serve_openai(config) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-x", max_retries=0) as client,
    ):
        yield server, client


async def chat(client: openai.AsyncOpenAI, model: str, content: str = ASK) -> Any:
    return await client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])


async def test_an_unknown_model_is_openais_404_model_not_found() -> None:
    async with client_of(FakeOpenAI(known_models_only=True)) as (_, client):
        with pytest.raises(openai.NotFoundError) as refused:
            await chat(client, "ft:gpt-4o:nope")
        with pytest.raises(openai.NotFoundError) as vectors:
            await client.embeddings.create(model="nope-embeddings", input=["x"])
        known = await chat(client, "gpt-4o-mini")
    assert refused.value.code == "model_not_found"
    assert refused.value.message == (
        "Error code: 404 - The model `ft:gpt-4o:nope` does not exist or you do not have access to it."
    )
    assert vectors.value.code == "model_not_found"
    assert known.choices[0].message.content


async def test_any_model_is_served_by_default() -> None:
    async with client_of() as (_, client):
        reply = await chat(client, "my-own-model")
    assert reply.model == "my-own-model"


async def test_a_model_the_key_may_not_use_is_a_403() -> None:
    async with client_of(FakeOpenAI(forbidden_models=("gpt-4.1",))) as (_, client):
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await chat(client, "gpt-4.1")
    assert caught.value.code == "model_not_found"
    assert "Project `proj_judgeflow-test` does not have access to model `gpt-4.1`" in caught.value.message


async def test_a_prompt_over_the_context_is_a_400_for_that_request_only() -> None:
    async with client_of(FakeOpenAI(context_tokens=50)) as (_, client):
        with pytest.raises(openai.BadRequestError) as caught:
            await chat(client, "gpt-4o", "word " * 400)
        short = await chat(client, "gpt-4o")
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 50 tokens" in caught.value.message
    assert short.choices[0].message.content


async def test_go_down_refuses_connections_and_come_back_serves_again_on_the_same_port() -> None:
    async with client_of() as (server, client):
        port = server.port
        await chat(client, "gpt-4o")
        await server.go_down()
        down = server.up
        with pytest.raises(openai.APIConnectionError):
            await chat(client, "gpt-4o")
        await server.come_back()
        reply = await chat(client, "gpt-4o")
        assert (down, server.up, server.port) == (False, True, port)
        assert server.stats.requests["chat.completions"] == 2  # the refused one never arrived
    assert reply.choices[0].message.content
