"""`open_judging`, the entry point of ``judgeflow judge``: claims its output's store, judges, summarises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgeflow.flows.judging import JudgeSummary, open_judging
from judgeflow.inputs.config import ConfigError, JudgingConfig
from judgeflow.protocol.events import Event, RunFinished, RunStarted

pytestmark = pytest.mark.anyio


def _items(path: Path, n: int) -> Path:
    rows = [
        {"id": i, "question": f"When did bridge {i} open?", "reference": f"In {1900 + i}.", "answer": f"In {1900 + i}."}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


async def _judge(
    config: JudgingConfig, *, resume: bool = False, restart: bool = False
) -> tuple[JudgeSummary, list[Event]]:
    async with open_judging(config, resume=resume, restart=restart) as run:
        events = [event async for event in run.events]
        return await run.wait(), events


async def test_judges_every_item_with_every_judge_and_tells_observers(tmp_path: Path) -> None:
    config = JudgingConfig(
        items=_items(tmp_path / "items.jsonl", 5),
        out=tmp_path / "out.jsonl",
        judges=("local:teacher", "local:student-prior"),
        n_resamples=50,
    )
    summary, events = await _judge(config)
    assert (summary.items, summary.lines_written, summary.cost_usd) == (5, 10, 0.0)
    assert summary.scorer is not None
    assert summary.scorer.result is not None
    lines = [json.loads(line) for line in config.out.read_text(encoding="utf-8").splitlines()]
    assert sorted((line["id"], line["judge"]) for line in lines) == sorted(
        (str(i), judge) for i in range(5) for judge in config.judges
    )
    started = [event for event in events if isinstance(event, RunStarted)]
    assert started[0].n_items == 5
    assert isinstance(events[-1], RunFinished)
    assert events[-1].ok


async def test_a_second_run_into_the_same_output_needs_resume_or_restart(tmp_path: Path) -> None:
    config = JudgingConfig(items=_items(tmp_path / "items.jsonl", 3), out=tmp_path / "out.jsonl")
    await _judge(config)
    with pytest.raises(ConfigError, match=r"out\.jsonl already holds a run"):
        await _judge(config)
    summary, _ = await _judge(config, resume=True)
    assert summary.lines_written == 3  # the earlier verdicts written again, none judged twice
    lines = [json.loads(line) for line in config.out.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["id"] for line in lines) == ["0", "1", "2"]
    summary, _ = await _judge(config, restart=True)
    assert summary.lines_written == 3


async def test_resume_refuses_other_items_or_judges(tmp_path: Path) -> None:
    config = JudgingConfig(items=_items(tmp_path / "items.jsonl", 3), out=tmp_path / "out.jsonl")
    await _judge(config)
    other = JudgingConfig(items=config.items, out=config.out, judges=("local:student-prior",))
    with pytest.raises(ConfigError, match="judges"):
        await _judge(other, resume=True)


async def test_a_bad_judge_name_fails_before_anything_is_judged(tmp_path: Path) -> None:
    config = JudgingConfig(items=_items(tmp_path / "items.jsonl", 3), out=tmp_path / "out.jsonl", judges=("x:y",))
    with pytest.raises(ValueError, match="unknown provider 'x'"):
        await _judge(config)
    assert not config.out.exists()
