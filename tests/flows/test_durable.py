"""Crash, resume, pay once, lose nothing: real processes killed with SIGKILL mid-run, then resumed.

The server is judgeflow's OpenAI-compatible fake on 127.0.0.1, in this test's event loop, so its counters say
exactly how many requests the killed and the resumed process made.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from judgeflow.testing import FakeOpenAI, serve_openai
from processes import judgeflow_command

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

SECRET = "sk-durable-test-0123456789abcdef"


def _items(path: Path, n: int) -> None:
    rows = (
        {
            "id": f"item-{i}",
            "question": f"When did event {i} happen?",
            "reference": f"Event {i} happened in {1800 + i}.",
            "answer": f"It happened in {1800 + i + i % 4}.",
        }
        for i in range(n)
    )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _env(base_url: str) -> dict[str, str]:
    return {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": SECRET}


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]


async def _wait_for(condition: Callable[[], bool], *, seconds: float = 60) -> None:
    """Poll ``condition``: it watches files another process writes, so there is no event to wait on."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.02)


def _paid_calls(store: Path) -> tuple[int, float]:
    with sqlite3.connect(store) as db:
        count, total = db.execute("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM calls").fetchone()
    db.close()
    return int(count), float(total)


async def test_judge_killed_mid_run_resumes_with_every_id_once(tmp_path: Path) -> None:
    n, concurrency = 120, 8
    items, out = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    _items(items, n)
    command = judgeflow_command(
        "judge",
        items,
        "--out",
        out,
        "--no-tui",
        "--judge",
        "openai:gpt-4",
        "--concurrency",
        str(concurrency),
    )
    async with serve_openai(FakeOpenAI(latency_s=0.1, api_key=SECRET)) as server:
        process = await anyio.open_process(command, env=_env(server.base_url))
        async with process:
            await _wait_for(lambda: len(_lines(out)) >= n // 3)
            process.send_signal(signal.SIGKILL)
            await process.wait()
        seen_before_kill = server.stats.requests["chat.completions"]
        assert len(_lines(out)) < n  # killed mid-run, not after
        resumed = await anyio.run_process([*command, "--resume"], env=_env(server.base_url), check=False)
        assert resumed.returncode == 0, resumed.stderr.decode()
        total_requests = server.stats.requests["chat.completions"]
    lines = _lines(out)
    assert Counter(str(line["id"]) for line in lines) == Counter(f"item-{i}" for i in range(n))
    assert all(line["status"] == "ok" for line in lines)
    # Paid once: the resumed run asked only for what the killed one had not finished (plus its calls in flight).
    assert total_requests <= n + concurrency
    assert seen_before_kill < total_requests
    calls, cost = _paid_calls(tmp_path / "out.jsonl.store.sqlite")
    assert calls == n  # one recorded paid call per item, whatever was redone
    assert cost > 0
    everything = resumed.stdout + resumed.stderr + out.read_bytes()
    assert SECRET.encode() not in everything


async def test_run_killed_during_fine_tuning_reattaches_the_job(tmp_path: Path) -> None:
    folder, config = tmp_path / "run", tmp_path / "config.toml"
    async with serve_openai(FakeOpenAI(fine_tune_step_s=1.0, api_key=SECRET)) as server:
        role = f'provider = "openai"\nbase_url = "{server.base_url}"\nconcurrency = 8\n'
        config.write_text(
            'questions_per_doc = 3\nn_resamples = 200\ncities = ["Paris", "Tokyo", "Toronto"]\n'
            f'[roles.question_writer]\nmodel = "gpt-4"\n{role}'
            f'[roles.answerer]\nmodel = "llama-2-7b-chat"\n{role}'
            f'[roles.teacher]\nmodel = "gpt-4"\n{role}'
            f'[roles.student]\nmodel = "gpt-3.5-turbo"\n{role}'
            '[trainer]\nbackend = "openai"\nepochs = 1\npoll_interval_s = 0.1\n',
            encoding="utf-8",
        )
        command = judgeflow_command("run", "--no-tui")
        process = await anyio.open_process(
            [*command, "--config", str(config), "--out", str(folder)], env=_env(server.base_url)
        )
        async with process:
            await _wait_for(lambda: (folder / "finetune" / "job.json").exists())
            await anyio.sleep(0.3)
            process.send_signal(signal.SIGKILL)
            await process.wait()
        chat_before = server.stats.requests["chat.completions"]
        assert server.stats.requests["fine_tuning.jobs.create"] == 1
        assert not (folder / "report.json").exists()
        resumed = await anyio.run_process([*command, "--resume", str(folder)], env=_env(server.base_url), check=False)
        assert resumed.returncode == 0, resumed.stderr.decode()
        stats = server.stats
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    n_test = report["n_test"]
    assert stats.requests["fine_tuning.jobs.create"] == 1  # re-attached, not submitted again
    assert stats.requests["files.create"] == 1
    # Everything before training came from the store; only the students' held-out judgements were new.
    assert stats.requests["chat.completions"] - chat_before <= 2 * n_test
    assert report["agreement"]["student_trained"]["n"] == n_test
    assert report["agreement"]["student_base"]["n"] == n_test
    _, paid = _paid_calls(folder / "store.sqlite")
    assert report["costs"]["total_usd"] == pytest.approx(paid, abs=1e-5)
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET.encode() not in resumed.stdout + resumed.stderr


async def test_fault_injection_accounts_for_every_item(tmp_path: Path) -> None:
    n = 200
    items, out = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    _items(items, n)
    faults = FakeOpenAI(fault_429=0.1, fault_500=0.05, fault_malformed=0.05, judge_garbage_rate=0.05, seed=7)
    async with serve_openai(faults) as server:
        command = judgeflow_command(
            "judge",
            items,
            "--out",
            out,
            "--no-tui",
            "--judge",
            "openai:gpt-4",
            "--concurrency",
            "16",
        )
        result = await anyio.run_process(command, env=_env(server.base_url), check=False)
        stats = server.stats
    assert result.returncode == 0, result.stderr.decode()
    lines = _lines(out)
    assert Counter(str(line["id"]) for line in lines) == Counter(f"item-{i}" for i in range(n))
    statuses = Counter(str(line["status"]) for line in lines)
    assert sum(statuses.values()) == n
    assert stats.served_429 > 0
    assert stats.served_500 > 0
    assert statuses["ok"] >= n * 0.9
    for line in lines:
        if line["status"] == "unparsed":
            assert line["raw"]
            assert line["reason"]
