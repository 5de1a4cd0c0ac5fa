"""A judge run against a server that refuses the model, is not there, or goes away for a while, in-process.

The fake OpenAI server runs in the test's event loop, so the test can stop it and start it again while the run
waits, and count what reached it. Nothing asserts on time: outages last until the run has been seen waiting.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from judgeflow.calls.context import CallContext
from judgeflow.calls.roles import LLMJudge
from judgeflow.flows.judging import JudgeSummary, JudgingRun, judge_file, open_judging
from judgeflow.inputs.config import JudgingConfig
from judgeflow.protocol.errors import ModelUnusable, RunStopped, ServerUnreachable, find_stop
from judgeflow.protocol.events import Event, ItemDone, ItemFailed, RunFinished, ServerDown, ServerUp
from judgeflow.providers.openai.provider import OpenAIChat
from judgeflow.testing import FakeOpenAI, serve_openai

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def write_items(path: Path, n: int, *, long: int | None = None) -> Path:
    rows = [
        {
            "id": f"item-{i}",
            "question": f"When did event {i} happen?",
            "reference": f"In {1800 + i}.",
            "answer": ("and then " * 300 if i == long else "") + f"It happened in {1800 + i}.",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


async def judge(
    config: JudgingConfig, *, resume: bool = False, watch: Callable[[Event], Awaitable[None]] | None = None
) -> tuple[JudgeSummary | RunStopped, list[Event]]:
    """Run judging to its end; returns the summary or the `RunStopped` it ended with, and every event."""
    events: list[Event] = []

    async def follow(run: JudgingRun) -> None:
        async for event in run.events:
            events.append(event)
            if watch is not None:
                await watch(event)

    try:
        async with open_judging(config, resume=resume) as run:
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow, run)
                summary = await run.wait()
            return summary, events
    except BaseException as error:  # a task group's exception group holds the stop
        stop = find_stop(error)
        if stop is None:
            raise
        return stop, events


async def test_a_model_the_server_does_not_have_stops_the_run_and_resume_judges_every_item(tmp_path: Path) -> None:
    items, out = write_items(tmp_path / "items.jsonl", 300), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(known_models_only=True, models=("gpt-4o-mini",))) as server:
        config = JudgingConfig(items, out, judges=("openai:gpt-4o-mini",), base_url=server.base_url, concurrency=8)
        server.config.models = ()  # the model is not there (yet): every call is a 404 model_not_found
        stopped, events = await judge(config)
        refused = server.stats.responses[404]
        server.config.models = ("gpt-4o-mini",)  # fixed
        resumed, _ = await judge(config, resume=True)
    assert isinstance(stopped, ModelUnusable)
    assert stopped.status == 404
    assert stopped.role == "openai:gpt-4o-mini"
    assert "The model `gpt-4o-mini` does not exist or you do not have access to it." in stopped.message
    assert refused <= config.concurrency  # the calls in flight when the first answer came back, no more
    assert not [e for e in events if isinstance(e, ItemFailed)]
    assert isinstance(resumed, JudgeSummary)
    judged = lines(out)
    assert sorted(str(line["id"]) for line in judged) == sorted(f"item-{i}" for i in range(300))
    assert all(line["status"] == "ok" for line in judged)  # nothing was written failed by the stopped run


async def test_a_closed_port_stops_the_run_within_the_grace(tmp_path: Path) -> None:
    items, out = write_items(tmp_path / "items.jsonl", 50), tmp_path / "out.jsonl"
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = JudgingConfig(
        items, out, judges=("openai:gpt-4o-mini",), base_url=f"http://127.0.0.1:{port}/v1", grace_s=0.5
    )
    stopped, events = await judge(config)
    assert isinstance(stopped, ServerUnreachable)
    assert not stopped.ever_answered
    assert stopped.message.startswith(f"openai:gpt-4o-mini: nothing answered at http://127.0.0.1:{port}/v1 for ")
    assert "Cannot connect to host" in stopped.message
    assert lines(out) == []
    assert any(isinstance(e, ServerDown) for e in events)


async def test_a_server_that_goes_away_mid_run_and_comes_back_loses_nothing_and_fails_nothing(tmp_path: Path) -> None:
    n = 400
    items, out = write_items(tmp_path / "items.jsonl", n), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(latency_s=0.002)) as server:
        config = JudgingConfig(items, out, judges=("openai:gpt-4o-mini",), base_url=server.base_url, grace_s=0.5)
        done = probes = 0

        async def outage(event: Event) -> None:
            nonlocal done, probes
            done += isinstance(event, ItemDone) and event.actor == "openai:gpt-4o-mini"
            if done == n // 3 and server.up:
                await server.go_down()
            if isinstance(event, ServerDown):
                probes = event.probes
                # Away for longer than the grace: a server that answered before is waited for.
                if probes >= 3 and event.since and not server.up:
                    await server.come_back()

        summary, events = await judge(config, watch=outage)
    assert isinstance(summary, JudgeSummary)
    assert probes >= 3
    judged = lines(out)
    assert sorted(str(line["id"]) for line in judged) == sorted(f"item-{i}" for i in range(n))
    assert [line for line in judged if line["status"] != "ok"] == []
    assert [e for e in events if isinstance(e, ServerUp)]
    assert events[-1] == RunFinished(str(out), True)


async def test_a_request_the_server_refuses_fails_that_item_only(tmp_path: Path) -> None:
    items, out = write_items(tmp_path / "items.jsonl", 30, long=7), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(context_tokens=500)) as server:
        config = JudgingConfig(items, out, judges=("openai:gpt-4o-mini",), base_url=server.base_url)
        summary, _ = await judge(config)
    assert isinstance(summary, JudgeSummary)
    judged = {str(line["id"]): line for line in lines(out)}
    assert len(judged) == 30
    failed = {key: line for key, line in judged.items() if line["status"] == "failed"}
    assert list(failed) == ["item-7"]
    assert "maximum context length is 500 tokens" in str(failed["item-7"]["error"])


async def test_observers_learn_why_the_run_stopped(tmp_path: Path) -> None:
    items, out = write_items(tmp_path / "items.jsonl", 20), tmp_path / "out.jsonl"
    events: list[Event] = []
    async with (
        serve_openai(FakeOpenAI(api_key="sk-right")) as server,
        OpenAIChat("gpt-4o", base_url=server.base_url, api_key="sk-wrong-0123456789") as chat,
    ):
        model = LLMJudge(chat, context=CallContext.create(publish=events.append))
        with pytest.raises(ExceptionGroup) as caught:  # the task group's, holding the stop
            await judge_file(items, out, [("teacher", model)], publish=events.append)
    stop = find_stop(caught.value)
    assert isinstance(stop, ModelUnusable)
    assert stop.hint == "the key passed as api_key"
    assert stop.message.startswith("teacher (openai:gpt-4o): ")
    assert "sk-wrong-0123456789" not in stop.message
    assert events[-1] == RunFinished(str(out), False, stop.message)
