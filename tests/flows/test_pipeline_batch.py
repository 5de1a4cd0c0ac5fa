"""``[roles.teacher] batch = true`` (and the student's): the pipeline's judges through the fake Batch API.

The teacher's verdicts are those of online mode (the same replies, read by the same parser), at half the price.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judgeflow import PipelineConfig, open_pipeline
from judgeflow.inputs.config import ConfigError, RoleConfig, RolesConfig, TrainerConfig
from judgeflow.protocol.events import BatchProgress
from judgeflow.testing import FakeOpenAI, serve_openai

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


def config(base_url: str, out_dir: Path, *, batch: bool) -> PipelineConfig:
    def role(model: str, **extra: Any) -> RoleConfig:
        return RoleConfig(provider="openai", model=model, base_url=base_url, concurrency=8, **extra)

    judge = {"batch": batch, "batch_poll_s": 0.02}
    return PipelineConfig(
        questions_per_doc=5,
        n_resamples=100,
        cities=("Paris", "Tokyo"),
        out_dir=out_dir,
        roles=RolesConfig(
            question_writer=role("gpt-4o"),
            answerer=role("gpt-4o-mini"),
            teacher=role("gpt-4o", **judge),
            student=role("gpt-3.5-turbo", **judge),
        ),
        trainer=TrainerConfig(backend="local"),
    )


async def test_the_teacher_and_base_student_in_batches_agree_with_online_mode(tmp_path: Path) -> None:
    fast = FakeOpenAI(batch_validate_s=0.02, batch_run_s=0.1, batch_finalize_s=0.02)
    async with serve_openai(fast) as server:
        async with open_pipeline(config(server.base_url, tmp_path / "batch", batch=True)) as run:
            parts = {event.part: event for event in [e async for e in run.events] if isinstance(event, BatchProgress)}
            batched = await run.wait()
        created = server.stats.requests["batches.create"]
        async with open_pipeline(config(server.base_url, tmp_path / "online", batch=False)) as run:
            online = await run.wait()
    assert created == 2  # the teacher's and the base student's
    assert {event.status for event in parts.values()} == {"collected"}
    assert {event.judge for event in parts.values()} == {"teacher", "student_base"}
    # The trained student learns from the teacher's verdicts in the order they arrive, so its last digits may move.
    assert batched["agreement"]["student_base"] == online["agreement"]["student_base"]
    gpt4o_batch, gpt4o_online = batched["costs"]["models"]["gpt-4o"], online["costs"]["models"]["gpt-4o"]
    assert gpt4o_batch["input_tokens"] == gpt4o_online["input_tokens"]  # the question writer's and the teacher's
    assert gpt4o_batch["cost_usd"] < gpt4o_online["cost_usd"]
    assert verdicts(tmp_path / "online") == verdicts(tmp_path / "batch")


def verdicts(folder: Path) -> list[str]:
    """The teacher's and the base student's judgement records of a run folder, without their times, sorted."""
    records = [json.loads(line) for line in (folder / "judgements.jsonl").read_text(encoding="utf-8").splitlines()]
    batched = [record for record in records if record["judge"] in ("teacher", "student_base")]
    assert len(batched) > 5
    return sorted(json.dumps({k: v for k, v in record.items() if k != "at"}, sort_keys=True) for record in batched)


def test_batch_needs_an_openai_role() -> None:
    with pytest.raises(ConfigError, match="batch = true needs provider 'openai'"):
        RoleConfig(provider="hf", model="m", batch=True)
