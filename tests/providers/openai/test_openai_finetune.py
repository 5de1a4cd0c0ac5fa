"""`OpenAIFineTuner`: the real ``openai`` SDK over real HTTP against the fake OpenAI server on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import openai
import pytest

from doubles import FunctionJudge
from judgeflow.calls.backoff import RetryPolicy
from judgeflow.core.prompts import training_example, training_example_json
from judgeflow.inputs.config import TrainerConfig
from judgeflow.protocol.events import Event, TrainingStatus
from judgeflow.protocol.messages import ChatMessage, JudgeInput, TrainingExample
from judgeflow.protocol.models import JudgeModel, TrainerBackend
from judgeflow.providers.openai.finetune import (
    FineTuneError,
    InvalidTrainingSetError,
    OpenAIFineTuner,
    make_openai_trainer,
)
from judgeflow.providers.openai.provider import make_client
from judgeflow.testing import FakeOpenAI, serve_openai
from judgeflow.testing.openai_server import OpenAIServer
from openai_doubles import ManualClock

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.02)


class Clients:
    """A client factory that remembers the clients it made (to check each one is closed)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.made: list[openai.AsyncOpenAI] = []

    def __call__(self) -> openai.AsyncOpenAI:
        client = make_client(self.base_url, timeout_s=10.0)
        self.made.append(client)
        return client


class Recorder:
    """A `Publish` that keeps every event and can wake a test when a status appears."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._waiting: dict[str, anyio.Event] = {}

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, TrainingStatus) and event.status in self._waiting:
            self._waiting[event.status].set()

    def waiter(self, status: str) -> anyio.Event:
        return self._waiting.setdefault(status, anyio.Event())

    def statuses(self) -> list[TrainingStatus]:
        return [event for event in self.events if isinstance(event, TrainingStatus)]

    def messages(self) -> list[str]:
        return [event.message for event in self.statuses()]


def examples(n: int = 12) -> list[TrainingExample]:
    return [
        training_example(f"q{i}", JudgeInput(f"Question {i}?", f"Reference {i}.", f"Answer {i}."), "4.0\nGood.", 4.0)
        for i in range(n)
    ]


def judge_named(model_ref: str) -> JudgeModel:
    return FunctionJudge(lambda item: "5.0", name=model_ref)


def tuner(
    server: OpenAIServer,
    publish: Recorder,
    *,
    suffix: str = "judge",
    epochs: int | None = 2,
    job_id: str | None = None,
    cancel_timeout_s: float = 2.0,
    clients: Clients | None = None,
) -> OpenAIFineTuner:
    return OpenAIFineTuner(
        clients or Clients(server.base_url),
        base_model="gpt-4o-mini",
        epochs=epochs,
        suffix=suffix,
        job_id=job_id,
        poll_interval_s=0.01,
        cancel_timeout_s=cancel_timeout_s,
        publish=publish,
        judge_factory=judge_named,
        retry=FAST_RETRY,
    )


@asynccontextmanager
async def fake_openai(config: FakeOpenAI | None = None) -> AsyncIterator[tuple[OpenAIServer, openai.AsyncOpenAI]]:
    """The server, and a client of our own to look at what the tuner did."""
    async with serve_openai(config or FakeOpenAI(fine_tune_step_s=0.05)) as server:
        client = make_client(server.base_url)
        try:
            yield server, client
        finally:
            await client.close()


def job_record(out_dir: Path) -> dict[str, object]:
    record: dict[str, object] = json.loads((out_dir / "finetune" / "job.json").read_text(encoding="utf-8"))
    return record


# --------------------------------------------------------------------------------------------------------------
# The whole life of a job


async def test_a_job_runs_to_success_and_streams_its_events(tmp_path: Path) -> None:
    publish = Recorder()
    async with fake_openai() as (server, client):
        clients = Clients(server.base_url)
        backend: TrainerBackend = tuner(server, publish, clients=clients)
        with anyio.fail_after(10):
            ready = await backend.train(examples(12), out_dir=tmp_path)
        job = await client.fine_tuning.jobs.retrieve(str(ready.details["job_id"]))
        uploaded = await client.files.content(job.training_file)
    assert job.status == "succeeded"
    assert ready.model_ref == job.fine_tuned_model
    assert ready.model_ref.startswith("ft:gpt-4o-mini:judgeflow-test:judge:")
    assert ready.student == "student_trained"
    assert ready.n_train == 12
    assert job.hyperparameters.n_epochs == 2
    assert dict(ready.details) == {
        "backend": "openai",
        "job_id": job.id,
        "base_model": "gpt-4o-mini",
        "trained_tokens": job.trained_tokens,
        "estimated_cost_usd": ready.details["estimated_cost_usd"],
        "cost_usd": pytest.approx((job.trained_tokens or 0) * 3.00e-6),
    }
    assert isinstance(ready.details["estimated_cost_usd"], float)

    # The file on disk is what was uploaded, one training_example_json per line.
    train = tmp_path / "finetune" / "train.jsonl"
    assert uploaded.content == train.read_bytes()
    assert [json.loads(line) for line in train.read_text().splitlines()] == [
        training_example_json(e) for e in examples(12)
    ]
    assert job_record(tmp_path) | {"estimated_cost_usd": None} == {
        "job_id": job.id,
        "base_model": "gpt-4o-mini",
        "n_train": 12,
        "estimated_cost_usd": None,
        "training_file": job.training_file,
        "status": "succeeded",
        "fine_tuned_model": ready.model_ref,
    }

    # Counts and cost were announced before anything was sent; then every job event, once, oldest first.
    statuses = publish.statuses()
    assert [s.status for s in statuses[:3]] == ["validated", "uploading", "submitted"]
    assert statuses[0].message.startswith("12 examples, ~")
    assert "estimated $" in statuses[0].message
    # (A poll that sees a new status after its events were already fetched says so in a message of its own.)
    events = [s.message for s in statuses[3:] if not s.message.startswith("fine-tuning job ")]
    assert events[0] == "Created fine-tuning job"
    assert events[-2:] == [f"New fine-tuned model created: {ready.model_ref}", "The job has successfully completed"]
    assert len(events) == len(set(events))
    steps = [s for s in statuses if s.message.startswith("Step ")]
    assert steps
    assert [s.progress for s in steps] == sorted(s.progress or 0.0 for s in steps)
    assert steps[-1].progress == 1.0
    assert statuses[-1].status == "succeeded"
    assert server.stats.requests["files.create"] == 1
    assert server.stats.requests["fine_tuning.jobs.create"] == 1
    assert server.stats.requests["fine_tuning.jobs.retrieve"] >= 2  # it polled...
    assert server.stats.requests["fine_tuning.jobs.cancel"] == 0
    assert all(c.is_closed() for c in clients.made)  # ...and closed its client


async def test_without_epochs_the_provider_default_is_used(tmp_path: Path) -> None:
    publish = Recorder()
    async with fake_openai() as (server, client):
        ready = await tuner(server, publish, epochs=None, suffix="").train(examples(12), out_dir=tmp_path)
        job = await client.fine_tuning.jobs.retrieve(str(ready.details["job_id"]))
    assert job.hyperparameters.n_epochs == 3  # the fake server's "auto"
    assert ready.model_ref.startswith("ft:gpt-4o-mini:judgeflow-test::")
    assert "8 epochs (default)" in publish.statuses()[0].message  # the cookbook's rule for 12 examples


async def test_load_builds_the_judge_from_the_model_ref(tmp_path: Path) -> None:
    async with fake_openai() as (server, _):
        backend = tuner(server, Recorder())
        ready = await backend.train(examples(), out_dir=tmp_path)
    judge = backend.load(ready)
    assert judge.name == ready.model_ref


# --------------------------------------------------------------------------------------------------------------
# Failures


async def test_a_failed_job_raises_with_the_jobs_error(tmp_path: Path) -> None:
    publish = Recorder()
    async with fake_openai() as (server, _):
        with pytest.raises(FineTuneError, match=r"failed: Fine-tuning failed: the job suffix asked"):
            await tuner(server, publish, suffix="judge-fail").train(examples(), out_dir=tmp_path)
        assert job_record(tmp_path)["status"] == "failed"
        # A failed job is not re-attached: the next run submits a new one.
        ready = await tuner(server, publish).train(examples(), out_dir=tmp_path)
        assert server.stats.requests["fine_tuning.jobs.create"] == 2
    assert ready.model_ref.startswith("ft:gpt-4o-mini:")
    assert any(s.message.startswith("Fine-tuning failed") for s in publish.statuses())  # the job's error event
    assert any(s.status == "failed" for s in publish.statuses())


async def test_an_invalid_training_set_is_refused_before_any_request(tmp_path: Path) -> None:
    made: list[int] = []

    def factory() -> openai.AsyncOpenAI:
        made.append(1)
        raise AssertionError("no client may be made for an invalid training set")

    no_reply = TrainingExample("bad", (ChatMessage("system", "Grade."), ChatMessage("user", "Q?")), "Q?", "R", "A", 1.0)
    empty = TrainingExample("empty", (ChatMessage("user", ""), ChatMessage("assistant", "4")), "", "R", "A", 4.0)
    publish = Recorder()
    async with fake_openai() as (server, _):
        backend = tuner(server, publish)
        backend.client_factory = factory
        with pytest.raises(InvalidTrainingSetError) as caught:
            await backend.train([*examples(3), no_reply, empty], out_dir=tmp_path)
        assert server.stats.total == 0
    message = str(caught.value)
    assert "2 malformed training examples" in message
    assert "example 3: example_missing_assistant_message" in message
    assert "example 4: missing_content" in message
    assert caught.value.report.n_examples == 5
    assert made == []
    assert publish.events == []
    assert not (tmp_path / "finetune" / "job.json").exists()


async def test_transient_polling_errors_are_retried(tmp_path: Path) -> None:
    config = FakeOpenAI(fine_tune_step_s=0.05, fail_first_n=2, fault_endpoints=frozenset({"fine_tuning.jobs.retrieve"}))
    publish = Recorder()
    async with fake_openai(config) as (server, _):
        ready = await tuner(server, publish).train(examples(), out_dir=tmp_path)
        assert server.stats.served_500 == 2
    assert ready.model_ref.startswith("ft:")
    assert [s.status for s in publish.statuses()].count("retrying") == 2


async def test_polling_gives_up_on_a_fatal_error_and_leaves_the_job_running(tmp_path: Path) -> None:
    config = FakeOpenAI(
        fine_tune_step_s=0.05,
        fail_first_n=1,
        fail_first_status=403,
        fault_endpoints=frozenset({"fine_tuning.jobs.retrieve"}),
    )
    async with fake_openai(config) as (server, _):
        with pytest.raises(FineTuneError, match=r"lost track of fine-tuning job ftjob-.*run again to re-attach"):
            await tuner(server, Recorder()).train(examples(), out_dir=tmp_path)
        assert server.stats.requests["fine_tuning.jobs.cancel"] == 0
        assert job_record(tmp_path)["status"] == "validating_files"


async def test_a_failed_upload_is_retried_but_a_failed_create_is_not(tmp_path: Path) -> None:
    config = FakeOpenAI(fine_tune_step_s=0.05, fail_first_n=1, fault_endpoints=frozenset({"files.create"}))
    async with fake_openai(config) as (server, _):
        ready = await tuner(server, Recorder()).train(examples(), out_dir=tmp_path / "a")
        assert server.stats.requests["files.create"] == 2
    assert ready.model_ref.startswith("ft:")
    # A 500 from jobs.create may hide a job that was made: retrying could pay for two.
    config = FakeOpenAI(fine_tune_step_s=0.05, fail_first_n=1, fault_endpoints=frozenset({"fine_tuning.jobs.create"}))
    async with fake_openai(config) as (server, _):
        with pytest.raises(FineTuneError, match="creating the fine-tuning job failed: InternalServerError"):
            await tuner(server, Recorder()).train(examples(), out_dir=tmp_path / "b")
        assert server.stats.requests["fine_tuning.jobs.create"] == 1
    assert not (tmp_path / "b" / "finetune" / "job.json").exists()


# --------------------------------------------------------------------------------------------------------------
# Cancellation


async def run_and_cancel(backend: OpenAIFineTuner, out_dir: Path, publish: Recorder) -> tuple[bool, float]:
    """Start training, cancel it once the job is polled, and report (re-raised cancellation?, seconds to stop)."""
    reraised = False
    stopped = 0.0

    async def train() -> None:
        nonlocal reraised
        try:
            await backend.train(examples(), out_dir=out_dir)
        except anyio.get_cancelled_exc_class():
            reraised = True
            raise

    polled = publish.waiter("validating_files")
    async with anyio.create_task_group() as tg:
        tg.start_soon(train)
        with anyio.fail_after(10):
            await polled.wait()
        start = time.monotonic()
        tg.cancel_scope.cancel()
    stopped = time.monotonic() - start
    return reraised, stopped


async def test_cancelling_training_cancels_the_job_and_reraises(tmp_path: Path) -> None:
    publish = Recorder()
    clock = ManualClock()  # the hand-moved clock keeps the job running until it is cancelled
    async with fake_openai(FakeOpenAI(clock=clock, fine_tune_step_s=10.0)) as (server, client):
        clients = Clients(server.base_url)
        reraised, _ = await run_and_cancel(tuner(server, publish, clients=clients), tmp_path, publish)
        job_id = str(job_record(tmp_path)["job_id"])
        job = await client.fine_tuning.jobs.retrieve(job_id)
        assert server.stats.requests["fine_tuning.jobs.cancel"] == 1
        assert f"/v1/fine_tuning/jobs/{job_id}/cancel" in [record.path for record in server.stats.log]
    assert reraised
    assert job.status == "cancelled"
    assert job_record(tmp_path)["status"] == "cancelled"
    assert publish.statuses()[-1] == TrainingStatus(
        "student_trained", "cancelled", f"fine-tuning job {job_id} cancelled"
    )
    assert all(c.is_closed() for c in clients.made)


async def test_cancelling_waits_for_the_cancel_request_only_so_long(tmp_path: Path) -> None:
    recorder = Recorder()
    config = FakeOpenAI(clock=ManualClock(), fine_tune_step_s=10.0)

    def publish(event: Event) -> None:
        recorder(event)
        if isinstance(event, TrainingStatus) and event.status == "validating_files":
            config.latency_s = 1.0  # every request from now on, the cancel included, takes a second

    async with fake_openai(config) as (server, _):
        backend = tuner(server, recorder, cancel_timeout_s=0.2)
        backend.publish = publish
        reraised, _ = await run_and_cancel(backend, tmp_path, recorder)
        assert server.stats.requests["fine_tuning.jobs.cancel"] == 1
        config.latency_s = 0.0
    assert reraised
    last = recorder.statuses()[-1]
    assert last.status == "cancel_failed"
    assert "within 0.2 s" in last.message
    assert job_record(tmp_path)["status"] != "cancelled"  # not known to be cancelled: the next run re-attaches


# --------------------------------------------------------------------------------------------------------------
# Re-attaching


async def test_reattaching_by_job_id_does_not_upload_again(tmp_path: Path) -> None:
    async with fake_openai() as (server, _):
        first = await tuner(server, Recorder()).train(examples(), out_dir=tmp_path / "first")
        job_id = str(first.details["job_id"])
        publish = Recorder()
        again = await tuner(server, publish, job_id=job_id).train(examples(), out_dir=tmp_path / "second")
        assert server.stats.requests["files.create"] == 1
        assert server.stats.requests["fine_tuning.jobs.create"] == 1
    assert again.model_ref == first.model_ref
    assert again.details["job_id"] == job_id
    assert publish.statuses()[0].status == "attaching"
    assert not (tmp_path / "second" / "finetune" / "train.jsonl").exists()
    assert job_record(tmp_path / "second")["job_id"] == job_id


class Crash(Exception):
    pass


async def test_after_a_crash_the_next_run_reattaches_through_job_json(tmp_path: Path) -> None:
    def crash_once_submitted(event: Event) -> None:
        if isinstance(event, TrainingStatus) and event.status == "submitted":
            raise Crash

    publish = Recorder()
    async with fake_openai() as (server, _):
        backend = tuner(server, publish)
        backend.publish = crash_once_submitted
        with pytest.raises(Crash):
            await backend.train(examples(), out_dir=tmp_path)
        assert server.stats.requests["fine_tuning.jobs.cancel"] == 0  # an error leaves the job to finish
        job_id = job_record(tmp_path)["job_id"]
        ready = await tuner(server, publish).train(examples(), out_dir=tmp_path)
        assert server.stats.requests["files.create"] == 1
        assert server.stats.requests["fine_tuning.jobs.create"] == 1
        # A finished job is re-attached too: running again costs nothing and returns the same model.
        again = await tuner(server, Recorder()).train(examples(), out_dir=tmp_path)
        assert server.stats.requests["fine_tuning.jobs.create"] == 1
    assert ready.details["job_id"] == job_id
    assert again.model_ref == ready.model_ref
    assert ready.n_train == 12


async def test_attaching_to_a_missing_job_fails_clearly(tmp_path: Path) -> None:
    async with fake_openai() as (server, _):
        with pytest.raises(FineTuneError, match=r"fine-tuning job ftjob-nope not found \(NotFoundError"):
            await tuner(server, Recorder(), job_id="ftjob-nope").train([], out_dir=tmp_path)
        assert job_record(tmp_path)["status"] == "missing"
        # A missing job is not re-attached from job.json: the next run submits a new one.
        ready = await tuner(server, Recorder()).train(examples(), out_dir=tmp_path)
        assert server.stats.requests["fine_tuning.jobs.create"] == 1
    assert ready.model_ref.startswith("ft:")


async def test_a_broken_job_record_is_reported(tmp_path: Path) -> None:
    (tmp_path / "finetune").mkdir()
    (tmp_path / "finetune" / "job.json").write_text("{oops", encoding="utf-8")
    async with fake_openai() as (server, _):
        with pytest.raises(FineTuneError, match=r"cannot read the job record .*delete it"):
            await tuner(server, Recorder()).train(examples(), out_dir=tmp_path)
        assert server.stats.total == 0


# --------------------------------------------------------------------------------------------------------------
# Construction


def test_make_openai_trainer_maps_the_config() -> None:
    config = TrainerConfig(
        backend="openai", epochs=4, suffix="jf", job_id="ftjob-1", poll_interval_s=5.0, cancel_timeout_s=7.0
    )
    factory: Callable[[], openai.AsyncOpenAI] = lambda: make_client("http://127.0.0.1:1/v1")  # noqa: E731
    backend = make_openai_trainer(
        config, base_model="gpt-4o-mini", client_factory=factory, judge_factory=judge_named, publish=Recorder()
    )
    assert (backend.name, backend.base_model, backend.epochs, backend.suffix) == ("openai", "gpt-4o-mini", 4, "jf")
    assert (backend.job_id, backend.poll_interval_s, backend.cancel_timeout_s) == ("ftjob-1", 5.0, 7.0)
    assert backend.client_factory is factory


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 51}, "epochs"),
        ({"suffix": "x" * 65}, "suffix"),
        ({"poll_interval_s": 0.0}, "positive"),
        ({"cancel_timeout_s": -1.0}, "positive"),
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object], match: str) -> None:
    settings: dict[str, object] = {
        "base_model": "gpt-4o-mini",
        "epochs": None,
        "suffix": "",
        "poll_interval_s": 1.0,
        "cancel_timeout_s": 1.0,
    }
    settings.update(changes)
    with pytest.raises(ValueError, match=match):
        OpenAIFineTuner(
            lambda: make_client("http://127.0.0.1:1/v1"),
            publish=Recorder(),
            judge_factory=judge_named,
            **settings,  # type: ignore[arg-type]
        )
