"""``judgeflow run`` with every role on an OpenAI-compatible server: a model the server does not have stops the run
naming its role, resume finishes it; the server going away mid-run loses nothing and fails nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from judgeflow import PipelineConfig, open_pipeline
from judgeflow.inputs.config import CallsConfig, RoleConfig, RolesConfig, TrainerConfig
from judgeflow.protocol.errors import ModelUnusable, RunStopped, find_stop
from judgeflow.protocol.events import Event, ItemDone, ItemFailed, RunFinished, ServerDown, ServerUp
from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

MODELS = {
    "question_writer": "gpt-4",
    "retriever": "text-embedding-3-small",
    "answerer": "llama-2-7b-chat",
    "teacher": "gpt-4o",
    "student": "gpt-3.5-turbo",
}


def config(base_url: str, out_dir: Path, **models: str) -> PipelineConfig:
    def role(name: str) -> RoleConfig:
        return RoleConfig(provider="openai", model=models.get(name, MODELS[name]), base_url=base_url, concurrency=8)

    return PipelineConfig(
        questions_per_doc=3,
        n_resamples=200,
        cities=("Paris", "Tokyo", "Toronto"),
        out_dir=out_dir,
        roles=RolesConfig(**{name: role(name) for name in MODELS}),
        trainer=TrainerConfig(backend="openai", epochs=1, poll_interval_s=0.05),
        calls=CallsConfig(grace_s=0.5),
    )


def fake() -> FakeOpenAI:
    return FakeOpenAI(fine_tune_step_s=0.05, known_models_only=True, models=(*MODELS.values(), "nope"))


async def run(
    pipeline: PipelineConfig, *, resume: bool = False, server: OpenAIServer | None = None, outage_after: int = 0
) -> tuple[dict[str, Any] | RunStopped, list[Event]]:
    """Run the pipeline to its end: its report or the `RunStopped` it ended with, and every event. With
    ``outage_after``, the server goes away after that many answers and comes back once the run has probed it."""
    events: list[Event] = []
    done = 0
    try:
        async with open_pipeline(pipeline, resume=resume) as running:
            async for event in running.events:
                events.append(event)
                done += isinstance(event, ItemDone) and event.actor == "answerer"
                if server is not None and done == outage_after and server.up:
                    await server.go_down()
                if server is not None and isinstance(event, ServerDown) and event.probes >= 2 and not server.up:
                    await server.come_back()
            return await running.wait(), events
    except BaseException as error:
        stop = find_stop(error)
        if stop is None:
            raise
        return stop, events


@pytest.mark.parametrize("role", ["question_writer", "retriever", "answerer", "teacher", "student"])
async def test_a_model_the_server_does_not_have_stops_the_run_naming_the_role(tmp_path: Path, role: str) -> None:
    async with serve_openai(fake()) as server:
        wrong = config(server.base_url, tmp_path, **{role: "nope-" + role})
        stopped, events = await run(wrong)
        server.config.models = (*server.config.models, "nope-" + role)  # fixed: the server has the model now
        fixed, _ = await run(wrong, resume=True)
    assert isinstance(stopped, ModelUnusable)
    # The trained student is the fine-tuned student model: it is named after the judge that uses it.
    assert stopped.role in {role, f"{role}_base", f"{role}_trained"}
    assert stopped.status == 404
    assert f"The model `nope-{role}` does not exist" in stopped.message
    assert not [e for e in events if isinstance(e, ItemFailed)]
    assert isinstance(fixed, dict)
    for judge in ("teacher", "student_base", "student_trained"):
        assert fixed["agreement"].get(judge, {}).get("failed", 0) == 0
    assert fixed["agreement"]["student_trained"]["n"] == fixed["n_test"] > 0


async def test_a_server_that_goes_away_mid_run_is_waited_for(tmp_path: Path) -> None:
    async with serve_openai(fake()) as server:
        report, events = await run(config(server.base_url, tmp_path), server=server, outage_after=5)
    assert isinstance(report, dict)
    assert [e for e in events if isinstance(e, ServerDown)]
    assert [e for e in events if isinstance(e, ServerUp)]
    assert not [e for e in events if isinstance(e, ItemFailed)]
    assert report["agreement"]["student_trained"]["failed"] == 0
    assert report["agreement"]["student_base"]["failed"] == 0
    assert report["agreement"]["student_trained"]["n"] == report["n_test"] > 0
    assert events[-1] == RunFinished(str(tmp_path), True)
    await anyio.lowlevel.checkpoint()
