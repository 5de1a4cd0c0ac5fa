"""``judgeflow watch`` rebuilds a run's events from its log, live or after the fact."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from judgeflow import PipelineConfig, open_pipeline
from judgeflow.protocol import Event, ItemDone, RunFinished, ScoreUpdate
from judgeflow.protocol.events import CallFinished
from judgeflow.protocol.messages import Usage
from judgeflow.runs.watch import event_from_line, follow_log
from processes import judgeflow_command

pytestmark = pytest.mark.anyio


def test_log_lines_become_events_again() -> None:
    line = (
        '{"actor": "teacher", "model": "gpt-4", "latency_s": 0.5, "usage": {"input_tokens": 10, "output_tokens": 2},'
        ' "cost_usd": 0.001, "ok": true, "event": "CallFinished", "level": "info", "timestamp": "t"}'
    )
    assert event_from_line(line) == CallFinished("teacher", "gpt-4", 0.5, Usage(10, 2), 0.001, True)
    assert event_from_line("not json") is None
    assert event_from_line('{"event": "NoSuchEvent"}') is None
    assert event_from_line('{"event": "ItemDone", "actor": "a"}') is None  # a field is missing


async def test_follow_log_replays_the_latest_attempt_of_a_finished_run(tmp_path: Path) -> None:
    config = PipelineConfig(questions_per_doc=3, n_resamples=100, out_dir=tmp_path)
    async with open_pipeline(config, log_events=True) as run:
        live = [event async for event in run.events]
        await run.wait()
    send, receive = anyio.create_memory_object_stream[Event](100_000)
    await follow_log(tmp_path / "run.log", send, follow=False)
    with receive:
        replayed = [event async for event in receive]
    assert isinstance(replayed[-1], RunFinished)
    done = [e for e in replayed if isinstance(e, ItemDone)]
    assert len(done) == len([e for e in live if isinstance(e, ItemDone)])
    finals = {e.judge: e.n for e in replayed if isinstance(e, ScoreUpdate) and e.final}
    assert set(finals) == {"student_trained", "student_base"}


async def test_watch_command_follows_a_finished_run(tmp_path: Path) -> None:
    config = PipelineConfig(questions_per_doc=3, n_resamples=100, out_dir=tmp_path / "run")
    async with open_pipeline(config, log_events=True) as run:
        await run.wait()
    command = judgeflow_command("watch", str(tmp_path / "run"), "--no-tui")
    result = await anyio.run_process(command, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Pearson r" in result.stdout
    assert b"student_trained" in result.stderr
