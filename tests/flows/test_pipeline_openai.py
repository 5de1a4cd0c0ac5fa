"""The whole distillation through the real SDKs over real HTTP, fine-tuning job included, against a local server."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import anyio
import pytest

from judgeflow import PipelineConfig, open_pipeline
from judgeflow.inputs.config import BudgetConfig, RoleConfig, RolesConfig, TrainerConfig
from judgeflow.protocol import BudgetExhausted, TrainingStatus
from judgeflow.protocol.errors import NothingUsable
from judgeflow.testing import FakeOpenAI, serve_openai
from processes import judgeflow_command

pytestmark = pytest.mark.anyio


def _config(base_url: str, out_dir: Path, *, max_cost: float | None = None) -> PipelineConfig:
    def role(model: str) -> RoleConfig:
        return RoleConfig(provider="openai", model=model, base_url=base_url, concurrency=8)

    return PipelineConfig(
        questions_per_doc=3,
        n_resamples=200,
        cities=("Paris", "Tokyo", "Toronto"),
        out_dir=out_dir,
        roles=RolesConfig(
            question_writer=role("gpt-4"),
            answerer=role("llama-2-7b-chat"),
            teacher=role("gpt-4"),
            student=role("gpt-3.5-turbo"),
        ),
        trainer=TrainerConfig(backend="openai", epochs=1, poll_interval_s=0.05),
        budget=BudgetConfig(max_cost_usd=max_cost),
    )


async def test_distillation_through_an_openai_compatible_server(tmp_path: Path) -> None:
    async with serve_openai(FakeOpenAI(fine_tune_step_s=0.05, ft_judge_noise=0.5)) as server:
        config = _config(server.base_url, tmp_path)
        async with open_pipeline(config) as run:
            statuses = [event.status async for event in run.events if isinstance(event, TrainingStatus)]
            report = await run.wait()
        stats = server.stats
    assert stats.requests["files.create"] == 1
    assert stats.requests["fine_tuning.jobs.create"] == 1
    assert "loaded" in statuses
    trained = report["agreement"]["student_trained"]
    base = report["agreement"]["student_base"]
    assert trained["n"] == base["n"] == report["n_test"] > 0
    assert trained["failed"] == 0
    models = report["costs"]["models"]
    assert any(model.startswith("ft:gpt-3.5-turbo") for model in models)
    assert report["costs"]["total_usd"] > 0
    uploaded = (tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(uploaded) == report["training"]["examples"]


async def test_budget_is_never_exceeded(tmp_path: Path) -> None:
    async with serve_openai(FakeOpenAI(fine_tune_step_s=0.05)) as server:
        config = _config(server.base_url, tmp_path, max_cost=0.3)
        async with open_pipeline(config) as run:
            with anyio.fail_after(60):
                exhausted = [event async for event in run.events if isinstance(event, BudgetExhausted)]
            report = await run.wait()
    assert len(exhausted) == 1
    assert 0 < report["costs"]["total_usd"] <= 0.3
    on_disk = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert on_disk["costs"] == report["costs"]


async def test_judge_cli_against_an_openai_compatible_server(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    rows = [
        {
            "id": n,
            "question": f"When did event {n} happen?",
            "reference": f"It happened in {1900 + n}.",
            "answer": f"It happened in {1900 + n + (n % 3)}.",
        }
        for n in range(30)
    ]
    items.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    async with serve_openai(FakeOpenAI()) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test-secret-key"}
        command = judgeflow_command(
            "judge",
            items,
            "--out",
            out,
            "--judge",
            "openai:gpt-4",
            "--judge",
            "openai:gpt-3.5-turbo",
            "--concurrency",
            "4",
        )
        result = await anyio.run_process(command, env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 60
    assert {(line["id"], line["judge"]) for line in lines} == {
        (str(n), judge) for n in range(30) for judge in ("openai:gpt-4", "openai:gpt-3.5-turbo")
    }
    assert all(line["status"] == "ok" for line in lines)
    assert b"Agreement with openai:gpt-4" in result.stdout
    everything = result.stdout + result.stderr + out.read_bytes()
    assert b"sk-test-secret-key" not in everything


def test_config_is_provider_config() -> None:
    config = _config("http://127.0.0.1:1/v1", Path("unused"))
    assert not config.is_local
    assert dataclasses.replace(config, trainer=TrainerConfig()).trainer.backend == "local"


async def test_a_failed_fine_tuning_job_ends_the_run_loudly_with_its_report(tmp_path: Path) -> None:
    # No trained model is a stage that produced nothing: the run ends with NothingUsable, after the report (with the
    # base student's agreement, and why the trained one's is missing) is written.
    async with serve_openai(FakeOpenAI(fine_tune_step_s=0.05)) as server:
        config = _config(server.base_url, tmp_path)
        config = dataclasses.replace(config, trainer=dataclasses.replace(config.trainer, suffix="will-fail"))
        with pytest.RaisesGroup(pytest.RaisesExc(NothingUsable, match="stage trainer"), flatten_subgroups=True):
            async with open_pipeline(config) as run:
                statuses = [event async for event in run.events if isinstance(event, TrainingStatus)]
                await run.wait()
    assert any(status.status == "failed" for status in statuses)
    report = run.report
    assert report is not None
    assert report == json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["training"]["error"]
    assert report["failure"]["stage"] == "trainer"
    assert report["missing"]["agreement.student_trained"].startswith("no trained student (FineTuneError")
    trained = report["agreement"]["student_trained"]
    assert trained["failed"] == report["n_test"]
    assert trained["n"] == 0
    assert report["agreement"]["student_base"]["n"] == report["n_test"]
    assert "Training failed" in (tmp_path / "report.md").read_text(encoding="utf-8")
