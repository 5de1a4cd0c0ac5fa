"""``judgeflow judge --batch`` as a user runs it: exit statuses, ``--cancel``, and what Ctrl-C leaves running.

Real processes against the fake server in this test's event loop (the command runs its own event loop).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteReceiveStream

from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai
from processes import judgeflow_command

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def _items(path: Path, n: int) -> Path:
    rows = ({"id": f"i{i}", "question": f"Q{i}?", "reference": f"R {i}.", "answer": f"A {i}."} for i in range(n))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _command(tmp_path: Path, *extra: str) -> list[str]:
    items = _items(tmp_path / "items.jsonl", 10)
    out = tmp_path / "out.jsonl"
    base = judgeflow_command("judge", items, "--out", out, "--no-tui")
    return [*base, "--judge", "openai:gpt-4o", "--batch", "--batch-poll", "0.05", *extra]


def _env(server: OpenAIServer) -> dict[str, str]:
    return {**os.environ, "OPENAI_BASE_URL": server.base_url}


async def _started(server: OpenAIServer) -> None:
    with anyio.fail_after(60):
        while server.stats.requests["batches.retrieve"] < 2:  # noqa: ASYNC110 - another process polls
            await anyio.sleep(0.02)


async def _read_to_end(stream: ByteReceiveStream) -> str:
    """All a process wrote, however many reads it takes (one read returns only what was ready)."""
    chunks: list[bytes] = []
    try:
        while True:
            chunks.append(await stream.receive())
    except anyio.EndOfStream:
        return b"".join(chunks).decode()


async def test_an_expired_batch_stops_the_run_saying_what_to_do(tmp_path: Path) -> None:
    async with serve_openai(FakeOpenAI(batch_validate_s=0.02, batch_run_s=2.0, batch_window_s=0.5)) as server:
        done = await anyio.run_process(_command(tmp_path), env=_env(server), check=False)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr  # stopped, resumable
    assert "are not judged yet" in stderr
    assert "the batch expired" in stderr
    assert "--resume sends them again" in stderr
    assert "--judge openai:gpt-4o --batch --resume" in stderr  # the command that continues it, in batches
    assert "Traceback" not in stderr


async def test_cancel_cancels_the_batches_a_killed_run_left_running(tmp_path: Path) -> None:
    async with serve_openai(FakeOpenAI(batch_validate_s=0.02, batch_run_s=30.0)) as server:
        command = _command(tmp_path)
        process = await anyio.open_process(command, env=_env(server))
        async with process:
            await _started(server)
            process.send_signal(signal.SIGKILL)
            await process.wait()
        cancelled = await anyio.run_process([*command, "--cancel"], env=_env(server), check=False)
        again = await anyio.run_process([*command, "--cancel"], env=_env(server), check=False)
        stats = server.stats
    assert cancelled.returncode == 0, cancelled.stderr.decode()
    assert "Cancelled 1 batch(es)" in cancelled.stdout.decode()
    assert ": cancelling" in cancelled.stdout.decode()
    assert "Cancelled 0 batch(es)" in again.stdout.decode()
    assert stats.requests["batches.cancel"] == 1


async def test_ctrl_c_leaves_the_batches_running_and_says_how_to_get_them(tmp_path: Path) -> None:
    async with serve_openai(FakeOpenAI(batch_validate_s=0.02, batch_run_s=30.0)) as server:
        process = await anyio.open_process(_command(tmp_path), env=_env(server), stdin=None)
        async with process:
            await _started(server)
            process.send_signal(signal.SIGINT)
            assert process.stderr is not None
            with anyio.fail_after(30):
                stderr = await _read_to_end(process.stderr)
                await process.wait()
        stats = server.stats
    assert process.returncode == 130
    assert "1 batch(es) of this run are still running" in stderr
    assert "--resume re-attaches them, --cancel cancels them" in stderr
    assert stats.requests["batches.cancel"] == 0


async def test_a_refused_key_stops_the_run_with_one_line_and_no_secret(tmp_path: Path) -> None:
    secret = "sk-wrong-key-0123456789abcdef"
    async with serve_openai(FakeOpenAI(api_key="sk-the-right-one-0123456789")) as server:
        env = {**_env(server), "OPENAI_API_KEY": secret}
        done = await anyio.run_process(_command(tmp_path), env=env, check=False)
        stats = server.stats
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr  # stopped, resumable once the key is fixed
    assert "openai:gpt-4o: batch upload failed: AuthenticationError" in stderr
    assert "Traceback" not in stderr
    assert secret not in stderr + done.stdout.decode()
    assert stats.requests["files.create"] == 1  # fatal: not tried again
