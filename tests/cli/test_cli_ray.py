"""``judgeflow judge --ray`` as a user runs it: real driver processes on the session's Ray cluster (``--ray ADDRESS``),
the fake OpenAI server in the test's event loop. kill -9 and Ctrl-C of the driver lose nothing paid for, and
``--resume`` finishes the run with each (item, judge) once; ``--batch`` with ``--ray`` is refused in one line.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from judgeflow.cli import main
from judgeflow.testing import FakeOpenAI, serve_openai
from processes import judgeflow_command

pytestmark = [pytest.mark.timeout(300)]

JUDGE = "openai:gpt-4o-mini"


def write_items(path: Path, n: int) -> Path:
    rows = [
        {"id": f"item-{i}", "question": f"When was {i}?", "reference": f"In {1800 + i}.", "answer": f"In {1800 + i}."}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def assert_exactly_once(out: Path, n: int) -> None:
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    seen = Counter((line["id"], line["judge"]) for line in lines)
    assert set(seen) == {(f"item-{i}", JUDGE) for i in range(n)}
    assert max(seen.values()) == 1


def test_batch_with_ray_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = write_items(tmp_path / "items.jsonl", 3)
    status = main(["judge", str(items), "--out", str(tmp_path / "out.jsonl"), "--judge", JUDGE, "--ray", "--batch"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err == ["judgeflow: error: --batch cannot be used with --ray: judge through the Batch API in one process, "
                   "without --ray"]  # fmt: skip
    assert not (tmp_path / "out.jsonl.ray").exists()


def judge_command(items: Path, out: Path, base_url: str, address: str, *extra: str) -> list[str]:
    return judgeflow_command(
        "judge",
        items,
        "--out",
        out,
        "--judge",
        JUDGE,
        "--base-url",
        base_url,
        "--concurrency",
        "4",
        "--ray",
        address,
        "--workers",
        "2",
        "--shard-size",
        "40",
        *extra,
    )


async def stop_when_judging(process: Process, out: Path, how: signal.Signals) -> None:
    """Send ``how`` to the driver once some shard has verdicts on disk (and the run is not done)."""
    folder = out.with_name(out.name + ".ray")
    while not any(len(p.read_bytes().splitlines()) >= 5 for p in folder.glob("shard-*/out.jsonl")):  # noqa: ASYNC110
        await anyio.sleep(0.02)
    process.send_signal(how)


@pytest.mark.ray
@pytest.mark.anyio
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
async def test_a_stopped_driver_loses_no_paid_work_and_resume_finishes_once(
    tmp_path: Path, ray_cluster: str, how: signal.Signals
) -> None:
    n = 200
    items, out = write_items(tmp_path / "items.jsonl", n), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(latency_s=0.1)) as server:
        command = judge_command(items, out, server.base_url, ray_cluster, "--no-tui")
        with (tmp_path / "stderr.txt").open("wb") as stderr:
            process = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=stderr)
            async with process:
                await stop_when_judging(process, out, how)
                status = await process.wait()
        assert status == (-9 if how == signal.SIGKILL else 130)
        if how == signal.SIGINT:
            assert "interrupted; work done so far is on disk" in (tmp_path / "stderr.txt").read_text()
        paid = server.stats.requests["chat.completions"]
        assert paid > 0

        resumed = await anyio.run_process([*command, "--resume"], check=False)
        assert resumed.returncode == 0, resumed.stderr.decode()
        assert "wrote 200 lines" in resumed.stdout.decode()
        assert_exactly_once(out, n)
        # What the stopped driver's workers paid for is answered from the shards' stores: only calls in flight
        # when it stopped (at most the cluster-wide concurrency of 4, for each of its workers' last moments) go
        # out again.
        assert n <= server.stats.requests["chat.completions"] <= n + 8


@pytest.mark.ray
@pytest.mark.anyio
async def test_a_stop_in_a_worker_ends_the_command_as_in_one_process(tmp_path: Path, ray_cluster: str) -> None:
    items, out = write_items(tmp_path / "items.jsonl", 60), tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI(known_models_only=True, models=())) as server:
        on_ray = await anyio.run_process(judge_command(items, out, server.base_url, ray_cluster), check=False)
        alone_command = judgeflow_command(
            "judge",
            items,
            "--out",
            str(tmp_path / "alone.jsonl"),
            "--judge",
            JUDGE,
            "--base-url",
            server.base_url,
            "--no-tui",
        )
        alone = await anyio.run_process(alone_command, check=False)
    assert (on_ray.returncode, alone.returncode) == (1, 1)
    ray_lines = [line for line in on_ray.stderr.decode().splitlines() if line.startswith("judgeflow:")]
    alone_lines = [line for line in alone.stderr.decode().splitlines() if line.startswith("judgeflow:")]
    assert ray_lines[0] == alone_lines[0]
    assert ray_lines[0].startswith("judgeflow: error: ")
    assert ray_lines[-1].endswith(f"--ray {ray_cluster} --resume")
