"""Batch mode end to end: ``open_judging`` with ``batch=True`` against the fake server's Batch API on 127.0.0.1.

The server runs in the test's event loop on the real clock with short phases, so its counters say exactly what
was uploaded, created and answered. Kill -9 of a real process is in `test_durable_batch`.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from judgeflow.actors.batch_judge import BatchIncomplete
from judgeflow.flows.batches import cancel_judging_batches
from judgeflow.flows.judging import JudgeSummary, open_judging
from judgeflow.inputs.config import JudgingConfig
from judgeflow.protocol.events import BatchProgress, Event
from judgeflow.runs.store import RunStore
from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

FAST: dict[str, Any] = {"batch_validate_s": 0.02, "batch_run_s": 0.1, "batch_finalize_s": 0.02, "batch_cancel_s": 0.02}


def fake(**changes: Any) -> FakeOpenAI:
    return FakeOpenAI(**{**FAST, **changes})


def items(path: Path, n: int) -> Path:
    rows = (
        {
            "id": f"item-{i}",
            "question": f"When did event {i} happen?",
            "reference": f"Event {i} happened in {1800 + i}.",
            "answer": f"It happened in {1800 + i + i % 4}." if i % 3 else "No idea.",
        }
        for i in range(n)
    )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def config(
    tmp_path: Path, server: OpenAIServer, *, n: int = 30, out: str = "out.jsonl", **changes: Any
) -> JudgingConfig:
    base = JudgingConfig(
        items=items(tmp_path / "items.jsonl", n),
        out=tmp_path / out,
        judges=("openai:gpt-4o",),
        base_url=server.base_url,
        batch=True,
        batch_poll_s=0.02,
        batch_max_requests=12,
    )
    return dataclasses.replace(base, **changes)


def lines(path: Path) -> list[dict[str, Any]]:
    """The output's records, without the time each verdict was made (the only field two modes may differ in)."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{key: value for key, value in record.items() if key != "at"} for record in records]


async def judge(cfg: JudgingConfig, *, resume: bool = False) -> tuple[JudgeSummary, list[Event]]:
    async with open_judging(cfg, resume=resume) as run:
        events = [event async for event in run.events]
        return await run.wait(), events


async def judge_incomplete(cfg: JudgingConfig, *, resume: bool = False) -> BatchIncomplete:
    """Run ``cfg`` expecting it to end with items unjudged; returns the error that says so."""
    with pytest.RaisesGroup(BatchIncomplete, flatten_subgroups=True) as caught:
        await judge(cfg, resume=resume)
    error = caught.value.exceptions[0]
    assert isinstance(error, BatchIncomplete)
    return error


async def total_cost(path: Path) -> float:
    async with await RunStore.open(path.parent, filename=f"{path.name}.store.sqlite") as store:
        return await store.total_cost()


async def test_batch_writes_what_online_writes_at_half_the_cost(tmp_path: Path) -> None:
    async with serve_openai(fake()) as server:
        batched, events = await judge(config(tmp_path, server))
        assert server.stats.requests["chat.completions"] == 0
        await judge(config(tmp_path, server, out="online.jsonl", batch=False))
        stats = server.stats
    assert (batched.items, batched.lines_written) == (30, 30)
    assert stats.requests["files.create"] == stats.requests["batches.create"] == 3  # 12 + 12 + 6 requests
    assert stats.batch_requests == 30
    assert stats.requests["chat.completions"] == 30  # the online run's
    by_id = {line["id"]: line for line in lines(tmp_path / "out.jsonl")}
    assert by_id == {line["id"]: line for line in lines(tmp_path / "online.jsonl")}
    assert len({line["score"] for line in by_id.values()}) > 1
    batch_cost, online_cost = await total_cost(tmp_path / "out.jsonl"), await total_cost(tmp_path / "online.jsonl")
    assert batch_cost == pytest.approx(online_cost / 2, rel=1e-9)
    assert batched.cost_usd == pytest.approx(batch_cost, abs=1e-6)  # the summary rounds to a micro-dollar
    progress = [event for event in events if isinstance(event, BatchProgress)]
    assert {event.part for event in progress} == {event.part for event in progress if event.status == "collected"}
    assert len({event.part for event in progress}) == 3
    assert {event.status for event in progress} >= {"in_progress", "completed", "collected"}
    assert all(event.total in (12, 6) for event in progress if event.status == "completed")


async def test_a_run_stopped_while_polling_resumes_without_sending_anything_twice(tmp_path: Path) -> None:
    async with serve_openai(fake(batch_run_s=1.0)) as server:
        cfg = config(tmp_path, server)
        async with open_judging(cfg) as run:
            with anyio.fail_after(20):
                while server.stats.requests["batches.create"] < 3:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            assert not run.done  # leaving the block now cancels the run while its batches are in progress
        assert not (tmp_path / "out.jsonl").exists() or not lines(tmp_path / "out.jsonl")
        summary, _ = await judge(cfg, resume=True)
        stats = server.stats
    assert summary.lines_written == 30
    assert stats.requests["files.create"] == stats.requests["batches.create"] == 3
    assert stats.batch_requests == 30
    assert Counter(line["id"] for line in lines(cfg.out)) == Counter(f"item-{i}" for i in range(30))


async def test_an_expired_batch_leaves_its_unfinished_items_to_the_resumed_run(tmp_path: Path) -> None:
    async with serve_openai(fake(batch_run_s=1.0, batch_window_s=0.5)) as server:
        cfg = config(tmp_path, server, n=12)
        error = await judge_incomplete(cfg)
        judged_first = lines(cfg.out)
        server.config.batch_window_s = 86_400.0
        summary, _ = await judge(cfg, resume=True)
        stats = server.stats
    assert 0 < error.unfinished < 12
    assert "expired" in str(error)
    assert len(judged_first) == 12 - error.unfinished
    assert summary.lines_written == 12
    assert Counter(line["id"] for line in lines(cfg.out)) == Counter(f"item-{i}" for i in range(12))
    assert stats.batch_requests == 12  # what the expired batch finished was not sent again
    assert stats.requests["batches.create"] == 2


async def test_unfinished_items_go_online_when_the_resumed_run_does_not_batch(tmp_path: Path) -> None:
    async with serve_openai(fake(batch_run_s=1.0, batch_window_s=0.5)) as server:
        cfg = config(tmp_path, server, n=12)
        error = await judge_incomplete(cfg)
        summary, _ = await judge(dataclasses.replace(cfg, batch=False), resume=True)
        stats = server.stats
    assert summary.lines_written == 12
    assert stats.requests["chat.completions"] == error.unfinished
    assert stats.requests["batches.create"] == 1
    assert Counter(line["id"] for line in lines(cfg.out)) == Counter(f"item-{i}" for i in range(12))


async def test_a_batch_that_fails_validation_says_why(tmp_path: Path) -> None:
    async with serve_openai(fake()) as server:
        cfg = config(tmp_path, server, n=5, judges=("openai:gpt-9-imaginary",))
        error = await judge_incomplete(cfg)
    assert error.unfinished == 5
    assert "failed validation" in str(error)
    assert "model_not_found" in str(error)
    assert "gpt-9-imaginary" in str(error)
    assert "--resume" in str(error)


async def test_requests_that_failed_transiently_are_sent_again(tmp_path: Path) -> None:
    async with serve_openai(fake(batch_fault_rate=0.3)) as server:
        summary, _ = await judge(config(tmp_path, server))
        stats = server.stats
    written = lines(tmp_path / "out.jsonl")
    failed = [line for line in written if line["status"] != "ok"]
    assert summary.lines_written == 30
    assert len(failed) <= 3  # 0.3 ** 3 of the items fail three times over
    assert all("batch request failed (transient): HTTP 500" in line["error"] for line in failed)
    assert stats.batch_requests > 30  # the failed ones went again, in new batches
    assert stats.requests["batches.create"] > 3


async def test_unreadable_replies_get_their_follow_up_online_as_in_online_mode(tmp_path: Path) -> None:
    async with serve_openai(fake(judge_garbage_rate=0.3)) as server:
        await judge(config(tmp_path, server))
        follow_ups = server.stats.requests["chat.completions"]
        await judge(config(tmp_path, server, out="online.jsonl", batch=False))
    batched = {line["id"]: line for line in lines(tmp_path / "out.jsonl")}
    assert follow_ups > 0
    assert batched == {line["id"]: line for line in lines(tmp_path / "online.jsonl")}
    assert sum(line["status"] == "unparsed" for line in batched.values()) == follow_ups  # garbage twice over


async def test_the_budget_is_reserved_before_each_upload(tmp_path: Path) -> None:
    async with serve_openai(fake()) as server:
        cfg = config(tmp_path, server, max_tokens=50, max_cost_usd=0.01)
        summary, _ = await judge(cfg)
        stats = server.stats
    written = lines(cfg.out)
    failed = [line for line in written if line["status"] == "failed"]
    assert summary.lines_written == 30
    assert failed
    assert all("BudgetExceeded" in line["error"] for line in failed)
    assert stats.batch_requests == 30 - len(failed)
    assert 0 < summary.cost_usd <= 0.01


async def test_cancel_stops_the_running_batches_and_resume_collects_what_they_did(tmp_path: Path) -> None:
    async with serve_openai(fake(batch_run_s=2.0)) as server:
        cfg = config(tmp_path, server, batch_max_requests=50)
        async with open_judging(cfg):
            with anyio.fail_after(20):
                while server.stats.requests["batches.create"] < 1:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            await anyio.sleep(0.5)
        cancelled = await cancel_judging_batches(cfg)
        summary, _ = await judge(cfg, resume=True)
        stats = server.stats
    assert [batch.status for batch in cancelled] == ["cancelling"]
    assert summary.lines_written == 30
    assert stats.requests["batches.cancel"] == 1
    assert stats.requests["batches.create"] == 2  # the cancelled requests went again, the finished ones did not
    assert stats.batch_requests == 30
    assert Counter(line["id"] for line in lines(cfg.out)) == Counter(f"item-{i}" for i in range(30))
