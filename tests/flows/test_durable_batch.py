"""Batch mode survives kill -9: a real ``judgeflow judge --batch`` killed while it polls, then ``--resume``.

The fake server runs in this test's event loop, so its counters say what the killed and the resumed process
uploaded, created and had answered: nothing twice.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

import anyio
import pytest

from judgeflow.testing import FakeOpenAI, serve_openai
from processes import judgeflow_command

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

SECRET = "sk-durable-batch-0123456789abcdef"


def _items(path: Path, n: int) -> None:
    rows = (
        {"id": f"item-{i}", "question": f"When did event {i} happen?", "reference": f"In {1800 + i}.", "answer": "?"}
        for i in range(n)
    )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _command(items: Path, out: Path, *extra: str) -> list[str]:
    return judgeflow_command(
        "judge",
        items,
        "--out",
        out,
        "--no-tui",
        "--judge",
        "openai:gpt-4o-mini",
        "--batch",
        "--batch-poll",
        "0.05",
        "--batch-max-requests",
        "40",
        *extra,
    )


async def test_killed_while_polling_then_resumed_uploads_nothing_twice(tmp_path: Path) -> None:
    n = 100
    items, out = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    _items(items, n)
    slow = FakeOpenAI(api_key=SECRET, batch_validate_s=0.05, batch_run_s=3.0, batch_finalize_s=0.05)
    async with serve_openai(slow) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": SECRET}
        process = await anyio.open_process(_command(items, out), env=env)
        async with process:
            with anyio.fail_after(60):
                while server.stats.requests["batches.retrieve"] < 6:  # noqa: ASYNC110 - another process polls
                    await anyio.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            await process.wait()
        uploads, creates = server.stats.requests["files.create"], server.stats.requests["batches.create"]
        assert (uploads, creates) == (3, 3)  # 40 + 40 + 20, all in progress when killed
        assert not out.exists() or out.read_text(encoding="utf-8") == ""
        resumed = await anyio.run_process([*_command(items, out), "--resume"], env=env, check=False)
        stats = server.stats
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert (stats.requests["files.create"], stats.requests["batches.create"]) == (3, 3)
    assert stats.batch_requests == n
    assert stats.requests["chat.completions"] == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert Counter(line["id"] for line in lines) == Counter(f"item-{i}" for i in range(n))
    assert "batches #0001 collected 40/40" in resumed.stderr.decode()
    everything = resumed.stdout + resumed.stderr + _all_bytes(tmp_path)
    assert SECRET.encode() not in everything


def _all_bytes(folder: Path) -> bytes:
    """Every file the runs left (output, store, its WAL), for the secret check."""
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())
