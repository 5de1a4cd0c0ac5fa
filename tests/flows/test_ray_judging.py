"""``judgeflow judge --ray`` on a local two-CPU cluster (one per session): shards, exactly once, resume, dead workers,
cluster-wide concurrency, and stops that end the run as a single-process run ends.

The fake OpenAI server runs in the test's event loop over real HTTP; the driver (synchronous) runs in a thread.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from judgeflow.flows.judging import open_judging
from judgeflow.inputs.config import ConfigError, JudgingConfig
from judgeflow.protocol.errors import ModelUnusable, RunStopped, find_stop
from judgeflow.testing import FakeOpenAI, serve_openai

pytest.importorskip("ray", reason="needs Ray: pip install -e '.[ray]'")

from judgeflow.flows.ray.driver import RayOptions, RaySummary, judge_on_ray
from judgeflow.flows.ray.shards import Shard

pytestmark = [pytest.mark.ray, pytest.mark.anyio, pytest.mark.timeout(300), pytest.mark.usefixtures("ray_cluster")]


def write_items(path: Path, n: int) -> Path:
    rows = [
        {
            "id": f"item-{i}",
            "question": f"When did event {i} happen?",
            "reference": f"In {1800 + i}.",
            "answer": f"It happened in {1800 + i}." if i % 3 else f"Perhaps around {1700 + i}.",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def assert_exactly_once(out: Path, n: int, judges: tuple[str, ...]) -> list[dict[str, Any]]:
    lines = records(out)
    seen = Counter((line["id"], line["judge"]) for line in lines)
    assert set(seen) == {(f"item-{i}", judge) for i in range(n) for judge in judges}
    assert max(seen.values()) == 1
    return lines


async def judge_alone(config: JudgingConfig) -> None:
    """The same run in one process, to its end."""
    async with open_judging(config) as run:
        async for _ in run.events:
            pass
        await run.wait()


class Interrupted(Exception):
    pass


async def on_ray(config: JudgingConfig, options: RayOptions, **kwargs: Any) -> RaySummary:
    summary: RaySummary = await anyio.to_thread.run_sync(partial(judge_on_ray, config, options, **kwargs))
    return summary


async def test_shards_judge_every_item_once_and_agree_with_one_process(tmp_path: Path) -> None:
    items = write_items(tmp_path / "items.jsonl", 230)
    judges = ("local:teacher", "local:student-prior")
    config = JudgingConfig(items, tmp_path / "ray.jsonl", judges=judges)
    summary = await on_ray(config, RayOptions(workers=2, shard_size=40))
    assert (summary.items, summary.lines_written, summary.shards, summary.restarts) == (230, 460, 6, 0)
    assert summary.report is not None
    assert summary.report.html.exists()
    ray_lines = assert_exactly_once(config.out, 230, judges)

    single = JudgingConfig(items, tmp_path / "single.jsonl", judges=judges)
    await judge_alone(single)

    def scores(lines: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        return {(line["id"], line["judge"]): (line["score"], line["status"]) for line in lines}

    assert scores(ray_lines) == scores(records(single.out))


async def test_an_interrupted_driver_is_refused_without_resume_and_resumed_once(tmp_path: Path) -> None:
    items = write_items(tmp_path / "items.jsonl", 200)
    config = JudgingConfig(items, tmp_path / "out.jsonl", judges=("local:teacher",))
    started: list[str] = []

    def interrupt(shard: Shard, _pid: int) -> None:
        started.append(shard.name)
        if len(started) == 4:
            raise Interrupted  # the driver stops abruptly, with shards done and shards running

    with pytest.raises(Interrupted):
        await on_ray(config, RayOptions(workers=2, shard_size=30), on_start=interrupt)
    assert not config.out.exists()  # merged only when every shard is done
    with pytest.raises(ConfigError, match="--resume"):
        await on_ray(config, RayOptions(workers=2, shard_size=30))
    summary = await on_ray(config, RayOptions(workers=2, shard_size=30), resume=True)
    assert summary.lines_written == 200
    assert_exactly_once(config.out, 200, ("local:teacher",))


async def test_a_killed_worker_is_replaced_and_its_shard_resumed_with_no_verdict_lost_or_paid_twice(
    tmp_path: Path,
) -> None:
    n = 160
    items = write_items(tmp_path / "items.jsonl", n)
    async with serve_openai(FakeOpenAI(latency_s=0.1)) as server:
        config = JudgingConfig(
            items, tmp_path / "out.jsonl", judges=("openai:gpt-4o-mini",), base_url=server.base_url, concurrency=4
        )
        killed: list[int] = []

        def kill_when_half_done(shard: Shard, pid: int) -> None:
            if killed:
                return
            killed.append(pid)

            def watch() -> None:
                while len(shard.out.read_text().splitlines() if shard.out.exists() else []) < 10:
                    threading.Event().wait(0.01)
                os.kill(pid, signal.SIGKILL)

            threading.Thread(target=watch, daemon=True).start()

        summary = await on_ray(config, RayOptions(workers=2, shard_size=40), on_start=kill_when_half_done)
        assert summary.restarts == 1
        assert_exactly_once(config.out, n, ("openai:gpt-4o-mini",))
        # A reply is cached in the shard's store before its verdict is used: only the calls in flight when the
        # worker died (at most the cluster-wide concurrency) can have been sent twice.
        assert n <= server.stats.requests["chat.completions"] <= n + 4

        # Resuming a finished run writes the same verdicts again and pays for nothing.
        before = server.stats.requests["chat.completions"]
        again = await on_ray(config, RayOptions(workers=2, shard_size=40), resume=True)
        assert again.lines_written == n
        assert server.stats.requests["chat.completions"] == before
        assert_exactly_once(config.out, n, ("openai:gpt-4o-mini",))


async def test_concurrency_holds_for_the_whole_cluster(tmp_path: Path) -> None:
    items = write_items(tmp_path / "items.jsonl", 120)
    async with serve_openai(FakeOpenAI(latency_s=0.05)) as server:
        config = JudgingConfig(
            items, tmp_path / "out.jsonl", judges=("openai:gpt-4o-mini",), base_url=server.base_url, concurrency=3
        )
        summary = await on_ray(config, RayOptions(workers=4, shard_size=30))
        assert summary.lines_written == 120
        assert 1 <= server.stats.max_in_flight <= 3  # four workers, each with a local cap of 3
        assert summary.limiter is not None
        assert summary.limiter.slot_leases < 120


async def test_a_model_the_server_does_not_have_stops_the_run_as_in_one_process_and_resume_finishes(
    tmp_path: Path,
) -> None:
    items = write_items(tmp_path / "items.jsonl", 90)
    async with serve_openai(FakeOpenAI(known_models_only=True, models=())) as server:
        judges = ("openai:gpt-4o-mini",)
        config = JudgingConfig(items, tmp_path / "out.jsonl", judges=judges, base_url=server.base_url)
        with pytest.raises(ModelUnusable) as on_cluster:
            await on_ray(config, RayOptions(workers=2, shard_size=30))
        single = JudgingConfig(items, tmp_path / "single.jsonl", judges=judges, base_url=server.base_url)
        with pytest.raises(BaseException) as alone:  # noqa: PT011 - a task group's exception group holds the stop
            await judge_alone(single)
        stop = find_stop(alone.value)
        assert isinstance(stop, RunStopped)
        assert on_cluster.value.message == stop.message

        server.config.models = ("gpt-4o-mini",)
        summary = await on_ray(config, RayOptions(workers=2, shard_size=30), resume=True)
        assert summary.lines_written == 90
        assert_exactly_once(config.out, 90, judges)


async def test_csv_items_and_a_parquet_output_go_through_the_same_entry_points(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="needs the parquet extra")
    items = tmp_path / "items.csv"
    rows = ["id,question,reference,answer"] + [
        f"item-{i},When was {i}?,In {1800 + i}.,In {1800 + i}." for i in range(70)
    ]
    items.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = JudgingConfig(items, tmp_path / "out.parquet", judges=("local:teacher",))
    summary = await on_ray(config, RayOptions(workers=2, shard_size=25))
    assert (summary.shards, summary.lines_written) == (3, 70)
    table = pq.read_table(config.out)
    assert sorted(table.column("id").to_pylist()) == sorted(f"item-{i}" for i in range(70))

    bad = tmp_path / "bad.csv"
    bad.write_text("id,question,reference,answer\na,q,r,x\na,q,r,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:3: duplicate id"):
        await on_ray(JudgingConfig(bad, tmp_path / "bad.jsonl"), RayOptions())


async def test_max_cost_holds_for_the_whole_cluster(tmp_path: Path) -> None:
    n = 120
    items = write_items(tmp_path / "items.jsonl", n)
    async with serve_openai(FakeOpenAI()) as server:
        judges = ("openai:gpt-4o-mini",)
        every = JudgingConfig(items, tmp_path / "all.jsonl", judges=judges, base_url=server.base_url, max_tokens=40)
        full = await on_ray(every, RayOptions(workers=2, shard_size=30))
        cap = full.cost_usd / 2
        capped = JudgingConfig(
            items, tmp_path / "capped.jsonl", judges=judges, base_url=server.base_url, max_tokens=40, max_cost_usd=cap
        )
        summary = await on_ray(capped, RayOptions(workers=2, shard_size=30))
    assert 0 < summary.cost_usd <= cap
    lines = assert_exactly_once(capped.out, n, judges)
    refused = [line for line in lines if line["status"] == "failed" and "BudgetExceeded" in str(line.get("error"))]
    scored = [line for line in lines if line["status"] == "ok"]
    assert refused
    assert scored
    assert len(scored) + len(refused) == n
