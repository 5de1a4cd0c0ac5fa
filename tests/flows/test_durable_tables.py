"""kill -9 while judging Parquet items into a Parquet output, then ``--resume``: no half file named as the output
in between, and afterwards every id once, each paid for once."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from judgeflow.inputs.tables import iter_records
from judgeflow.testing import FakeOpenAI, serve_openai
from processes import judgeflow_command

pa = pytest.importorskip("pyarrow", reason="the parquet extra: pip install -e '.[test,parquet]'")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

SECRET = "sk-durable-tables-0123456789abcdef"


def _stored_verdicts(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM items WHERE kind = 'judgement'").fetchone()
        db.close()
    except sqlite3.OperationalError:  # the table is not there yet
        return 0
    return int(count)


async def _wait_for(condition: Callable[[], bool], *, seconds: float = 60) -> None:
    """Poll ``condition``: it watches a store another process writes, so there is no event to wait on."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.02)


async def test_judge_into_parquet_killed_mid_run_resumes_with_every_id_once(tmp_path: Path) -> None:
    n, concurrency = 120, 8
    items, out = tmp_path / "items.parquet", tmp_path / "out.parquet"
    store = tmp_path / "out.parquet.store.sqlite"
    pq.write_table(
        pa.table(
            {
                "id": pa.array(range(n), pa.int64()),
                "question": [f"When did event {i} happen?" for i in range(n)],
                "reference": [f"Event {i} happened in {1800 + i}." for i in range(n)],
                "answer": [f"It happened in {1800 + i + i % 4}." for i in range(n)],
            }
        ),
        items,
        row_group_size=50,
    )
    command = judgeflow_command("judge", items, "--out", out, "--no-tui")
    command += ["--judge", "openai:gpt-4", "--concurrency", str(concurrency)]
    async with serve_openai(FakeOpenAI(latency_s=0.1, api_key=SECRET)) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": SECRET}
        process = await anyio.open_process(command, env=env)
        async with process:
            await _wait_for(lambda: _stored_verdicts(store) >= n // 3)
            process.send_signal(signal.SIGKILL)
            await process.wait()
        seen_before_kill = server.stats.requests["chat.completions"]
        assert _stored_verdicts(store) < n  # killed mid-run, not after
        assert not out.exists()  # what the killed run wrote is under another name: no half file named as the output
        resumed = await anyio.run_process([*command, "--resume"], env=env, check=False)
        assert resumed.returncode == 0, resumed.stderr.decode()
        total_requests = server.stats.requests["chat.completions"]
    rows = [record for _, record in iter_records(out)]
    assert Counter(str(row["id"]) for row in rows) == Counter(str(i) for i in range(n))
    assert all(row["status"] == "ok" and isinstance(row["score"], float) for row in rows)
    # Paid once: the resumed run asked only for what the killed one had not finished (plus its calls in flight).
    assert total_requests <= n + concurrency
    assert seen_before_kill < total_requests
    assert not out.with_name(out.name + ".partial").exists()
    assert SECRET.encode() not in resumed.stdout + resumed.stderr + out.read_bytes()
