"""The fake OpenAI server's files and fine-tuning jobs, spoken to by the real ``openai`` SDK over HTTP.

Split from `test_openai_server` (chat, embeddings, faults) because the job lifecycle is its own state machine,
walked here on a hand-moved clock.
"""

from __future__ import annotations

import json
import re

import anyio
import openai
import pytest

from judgeflow.testing import FakeOpenAI
from openai_doubles import ManualClock, running

pytestmark = pytest.mark.anyio

TRAINING_LINE = {"messages": [{"role": "user", "content": "grade this"}, {"role": "assistant", "content": "4"}]}


def training_file(lines: int = 3) -> tuple[str, bytes]:
    return ("train.jsonl", b"".join(json.dumps(TRAINING_LINE).encode() + b"\n" for _ in range(lines)))


async def test_file_upload_retrieve_and_validation() -> None:
    async with running() as (server, client):
        uploaded = await client.files.create(file=training_file(3), purpose="fine-tune")
        again = await client.files.retrieve(uploaded.id)
        content = await client.files.content(uploaded.id)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.files.create(file=("bad.jsonl", b'{"messages": []}\n{"prompt": "x"}\n'), purpose="fine-tune")
        with pytest.raises(openai.BadRequestError):
            await client.files.create(file=("bad.jsonl", b"not json\n"), purpose="fine-tune")
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve("file-missing")
    assert uploaded.id.startswith("file-")
    assert uploaded.object == "file"
    assert uploaded.purpose == "fine-tune"
    assert uploaded.status == "processed"
    assert uploaded.filename == "train.jsonl"
    assert uploaded.bytes == len(training_file(3)[1])
    assert again == uploaded
    assert content.content == training_file(3)[1]
    assert caught.value.code == "invalid_file_format"
    assert "Line 1" in caught.value.message
    assert server.stats.requests["files.create"] == 3


async def test_fine_tuning_job_walks_through_its_states_to_succeeded() -> None:
    clock = ManualClock()
    async with running(FakeOpenAI(clock=clock, fine_tune_step_s=10.0)) as (_, client):
        training = await client.files.create(file=training_file(2), purpose="fine-tune")
        job = await client.fine_tuning.jobs.create(
            training_file=training.id, model="gpt-4o-mini", suffix="judge", hyperparameters={"n_epochs": 2}
        )
        statuses = [job.status]
        for _ in range(3):
            clock.now += 10.0
            statuses.append((await client.fine_tuning.jobs.retrieve(job.id)).status)
        done = await client.fine_tuning.jobs.retrieve(job.id)
        events = [event async for event in client.fine_tuning.jobs.list_events(job.id, limit=3)]
        first_page = await client.fine_tuning.jobs.list_events(job.id, limit=2)
        models = [model.id async for model in client.models.list()]
        with pytest.raises(openai.BadRequestError):
            await client.fine_tuning.jobs.cancel(job.id)
        with pytest.raises(openai.NotFoundError):
            await client.fine_tuning.jobs.retrieve("ftjob-missing")
    assert statuses == ["validating_files", "queued", "running", "succeeded"]
    assert job.id.startswith("ftjob-")
    assert job.object == "fine_tuning.job"
    assert job.fine_tuned_model is None
    assert job.training_file == training.id
    assert done.hyperparameters.n_epochs == 2
    assert done.fine_tuned_model is not None
    assert re.fullmatch(r"ft:gpt-4o-mini:judgeflow-test:judge:[0-9a-f]{8}", done.fine_tuned_model)
    assert done.finished_at is not None
    assert done.trained_tokens is not None
    assert done.error is None
    assert done.fine_tuned_model in models
    messages = [event.message for event in reversed(events)]  # the API lists newest first
    assert messages[0] == "Created fine-tuning job"
    assert "Fine-tuning job started" in messages
    steps = [m for m in messages if m.startswith("Step ")]
    assert steps[0].startswith("Step 1/4: training loss=")
    assert len(steps) == 4
    assert messages[-2] == f"New fine-tuned model created: {done.fine_tuned_model}"
    assert messages[-1] == "The job has successfully completed"
    assert all(event.object == "fine_tuning.job.event" for event in events)
    assert len(first_page.data) == 2
    assert first_page.has_more


async def test_fine_tuning_on_the_real_clock() -> None:
    async with running(FakeOpenAI(fine_tune_step_s=0.05)) as (_, client):
        training = await client.files.create(file=training_file(), purpose="fine-tune")
        job = await client.fine_tuning.jobs.create(training_file=training.id, model="gpt-3.5-turbo")
        with anyio.fail_after(10):
            while job.status not in ("succeeded", "failed", "cancelled"):
                await anyio.sleep(0.02)
                job = await client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded"
    assert job.fine_tuned_model is not None
    assert job.fine_tuned_model.startswith("ft:gpt-3.5-turbo:judgeflow-test::")


async def test_a_suffix_with_fail_ends_in_a_failed_job() -> None:
    clock = ManualClock()
    async with running(FakeOpenAI(clock=clock, fine_tune_step_s=1.0)) as (_, client):
        training = await client.files.create(file=training_file(), purpose="fine-tune")
        job = await client.fine_tuning.jobs.create(training_file=training.id, model="gpt-4o-mini", suffix="will-fail")
        clock.now += 3.0
        failed = await client.fine_tuning.jobs.retrieve(job.id)
        events = await client.fine_tuning.jobs.list_events(job.id)
    assert failed.status == "failed"
    assert failed.fine_tuned_model is None
    assert failed.error is not None
    assert failed.error.code
    assert failed.error.message
    assert events.data[0].level == "error"


async def test_cancel_stops_a_running_job() -> None:
    clock = ManualClock()
    async with running(FakeOpenAI(clock=clock, fine_tune_step_s=10.0)) as (_, client):
        training = await client.files.create(file=training_file(), purpose="fine-tune")
        job = await client.fine_tuning.jobs.create(training_file=training.id, model="gpt-4o-mini")
        clock.now += 25.0
        assert (await client.fine_tuning.jobs.retrieve(job.id)).status == "running"
        cancelled = await client.fine_tuning.jobs.cancel(job.id)
        clock.now += 100.0
        later = await client.fine_tuning.jobs.retrieve(job.id)
        events = await client.fine_tuning.jobs.list_events(job.id, limit=100)
        with pytest.raises(openai.BadRequestError):
            await client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == later.status == "cancelled"
    assert later.fine_tuned_model is None
    assert later.finished_at is not None
    messages = [event.message for event in events.data]
    assert messages[0] == "Job cancelled"
    assert "The job has successfully completed" not in messages


async def test_fine_tuning_rejects_an_unknown_training_file() -> None:
    async with running() as (_, client):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.fine_tuning.jobs.create(training_file="file-nope", model="gpt-4o-mini")
    assert caught.value.param == "training_file"
