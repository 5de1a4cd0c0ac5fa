"""Tests for judgeflow.calls.cache: the request hash (pinned, and sensitive to every field) and the response cache."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from judgeflow.calls.cache import ResponseCache, canonical_request, request_hash
from judgeflow.protocol.calls import ChatRequest, ChatResult
from judgeflow.protocol.messages import ChatMessage, Usage
from judgeflow.runs.store import RunStore

REQUEST = ChatRequest(
    (ChatMessage("system", "You are a judge."), ChatMessage("user", "Score: 2+2=4? ✓")), temperature=0, max_tokens=64
)
RESULT = ChatResult("Score: 5\nCorrect.", "gpt-4o-mini-2024-07-18", Usage(30, 6), "stop")


def test_request_hash_is_pinned() -> None:
    # A changed hash silently turns every stored reply into a miss (and a new payment): pin it.
    assert request_hash("openai", "gpt-4o-mini", REQUEST) == (
        "371b5df1a2c43292d7082257b2c96b98b1700670bede23d534e041a6721f985a"
    )
    assert json.loads(canonical_request("openai", "gpt-4o-mini", REQUEST)) == {
        "v": 1,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a judge."},
            {"role": "user", "content": "Score: 2+2=4? ✓"},
        ],
        "temperature": 0.0,
        "max_tokens": 64,
    }


def test_equal_requests_hash_equal() -> None:
    rebuilt = ChatRequest(tuple(ChatMessage(m.role, m.content) for m in REQUEST.messages), 0.0, 64)
    assert request_hash("openai", "gpt-4o-mini", rebuilt) == request_hash("openai", "gpt-4o-mini", REQUEST)
    negative_zero = dataclasses.replace(REQUEST, temperature=-0.0)
    assert request_hash("openai", "gpt-4o-mini", negative_zero) == request_hash("openai", "gpt-4o-mini", REQUEST)


@pytest.mark.parametrize(
    ("provider", "model", "request_"),
    [
        ("hf", "gpt-4o-mini", REQUEST),
        ("openai", "gpt-4o", REQUEST),
        ("openai", "gpt-4o-mini", dataclasses.replace(REQUEST, temperature=0.7)),
        ("openai", "gpt-4o-mini", dataclasses.replace(REQUEST, max_tokens=65)),
        ("openai", "gpt-4o-mini", dataclasses.replace(REQUEST, max_tokens=None)),
        ("openai", "gpt-4o-mini", dataclasses.replace(REQUEST, messages=REQUEST.messages[::-1])),
        ("openai", "gpt-4o-mini", dataclasses.replace(REQUEST, messages=REQUEST.messages[1:])),
        (
            "openai",
            "gpt-4o-mini",
            dataclasses.replace(REQUEST, messages=(REQUEST.messages[0], ChatMessage("assistant", "Score: 2+2=4? ✓"))),
        ),
        (
            "openai",
            "gpt-4o-mini",
            dataclasses.replace(REQUEST, messages=(REQUEST.messages[0], ChatMessage("user", "Score: 2+2=4?"))),
        ),
    ],
    ids=["provider", "model", "temperature", "max_tokens", "no_max_tokens", "order", "dropped", "role", "content"],
)
def test_every_field_changes_the_hash(provider: str, model: str, request_: ChatRequest) -> None:
    assert request_hash(provider, model, request_) != request_hash("openai", "gpt-4o-mini", REQUEST)


def test_message_boundaries_are_part_of_the_hash() -> None:
    split = ChatRequest((ChatMessage("user", "ab"), ChatMessage("user", "c")))
    moved = ChatRequest((ChatMessage("user", "a"), ChatMessage("user", "bc")))
    assert request_hash("p", "m", split) != request_hash("p", "m", moved)


@pytest.mark.anyio
async def test_miss_then_hit_returns_the_stored_reply(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path) as store:
        cache = ResponseCache(store)
        assert await cache.lookup("openai", "gpt-4o-mini", REQUEST) is None
        await cache.remember("openai", "gpt-4o-mini", REQUEST, RESULT, 0.0012)
        assert await cache.lookup("openai", "gpt-4o-mini", REQUEST) == RESULT
        assert await cache.lookup("openai", "gpt-4o", REQUEST) is None  # another model is another request
        assert cache.stats.hits == 1
        assert cache.stats.misses == 2
        assert cache.stats.saved_usd == pytest.approx(0.0012)
        record = await store.get_call(request_hash("openai", "gpt-4o-mini", REQUEST))
        assert record is not None
        assert record.request_json == canonical_request("openai", "gpt-4o-mini", REQUEST)
        assert record.model == "gpt-4o-mini"
        assert record.response_model == "gpt-4o-mini-2024-07-18"
        assert await store.total_cost() == pytest.approx(0.0012)


@pytest.mark.anyio
async def test_remember_is_durable_by_default(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path, batch_delay_s=0.05) as store:
        cache = ResponseCache(store)
        await cache.remember("openai", "gpt-4o-mini", REQUEST, RESULT, None)
        assert store.stats.pending == 0
        assert store.stats.transactions == 1


@pytest.mark.anyio
async def test_reply_without_usage_round_trips(tmp_path: Path) -> None:
    bare = ChatResult("Score: 3", "local-model")
    async with await RunStore.open(tmp_path) as store:
        cache = ResponseCache(store)
        await cache.remember("local", "m", REQUEST, bare, None)
        assert await cache.lookup("local", "m", REQUEST) == bare


@pytest.mark.anyio
async def test_a_reply_is_kept_in_every_store_and_found_in_any(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path / "run") as run, await RunStore.open(tmp_path / "shared") as shared:
        await ResponseCache(run, shared).remember("openai", "gpt-4o-mini", REQUEST, RESULT, 0.002)
        assert await run.get_call(request_hash("openai", "gpt-4o-mini", REQUEST)) is not None
        # A later run with a store of its own finds the reply in the shared one: the first store that has it wins.
        async with await RunStore.open(tmp_path / "run2") as run2:
            later = ResponseCache(run2, shared)
            assert await later.lookup("openai", "gpt-4o-mini", REQUEST) == RESULT
            assert later.stats.hits == 1
            assert later.stats.saved_usd == pytest.approx(0.002)


def test_constrained_output_and_logprobs_change_the_hash_and_a_plain_request_keeps_its_own() -> None:
    from judgeflow.core.scoring import judge_output

    plain = request_hash("openai", "gpt-4o-mini", REQUEST)
    schema = dataclasses.replace(REQUEST, output=judge_output("json_schema"))
    grammar = dataclasses.replace(REQUEST, output=judge_output("json_object"))
    logprobs = dataclasses.replace(schema, top_logprobs=20)
    hashes = {request_hash("openai", "gpt-4o-mini", r) for r in (schema, grammar, logprobs)}
    assert len(hashes) == 3
    assert plain not in hashes
    assert json.loads(canonical_request("openai", "m", logprobs))["top_logprobs"] == 20


@pytest.mark.anyio
async def test_token_logprobs_round_trip_through_the_store(tmp_path: Path) -> None:
    from judgeflow.protocol.calls import TokenLogprob

    tokens = (TokenLogprob("4", -0.25, (("4", -0.25), (" 5", -1.5))), TokenLogprob("\n", -0.01, ()))
    result = dataclasses.replace(RESULT, logprobs=tokens)
    async with await RunStore.open(tmp_path) as store:
        cache = ResponseCache(store)
        await cache.remember("openai", "gpt-4o-mini", REQUEST, result, 0.001)
    async with await RunStore.open(tmp_path) as store:
        assert await ResponseCache(store).lookup("openai", "gpt-4o-mini", REQUEST) == result
