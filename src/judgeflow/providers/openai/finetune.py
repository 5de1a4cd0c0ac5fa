"""Train the student with the OpenAI fine-tuning API: validate, upload, submit, follow, and never lose a job.

`OpenAIFineTuner` is a `judgeflow.protocol.models.TrainerBackend`. ``train()`` runs the whole life of one job:

1. write ``out_dir/finetune/train.jsonl`` and check it (`judgeflow.core.finetune_data`): a malformed set is refused
   before any request, with every problem listed;
2. publish the counts and the estimated cost *before* submitting, so the dashboard shows what is about to be
   spent;
3. upload the file, create the job, and record its id in ``out_dir/finetune/job.json`` at once, so that a crash
   (or a later run) re-attaches to the job instead of paying for a second one;
4. poll the job every ``poll_interval_s`` and turn its new events into `TrainingStatus` events.

Cancellation (Ctrl-C) asks OpenAI to cancel the job, in a shielded scope bounded by ``cancel_timeout_s``, and
is then re-raised: a cancelled run must not leave a job spending money. Any other error leaves the job running
on purpose: what it trains is paid for either way, and the next run re-attaches through ``job.json``. A job
recorded as ``failed``, ``cancelled`` or ``missing`` (404) is not re-attached; the next run submits a new one.

One module, longer than most: the steps above are one job's life, a state machine whose re-attachment and
cancellation rules depend on every step before them.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import openai
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent, job_create_params

from judgeflow.calls.backoff import RetryPolicy, backoff_delay
from judgeflow.core.finetune_data import DatasetReport, analyze_training_set, estimate_training_cost
from judgeflow.core.pricing import DEFAULT_PRICES, Price
from judgeflow.core.prompts import training_example_json
from judgeflow.inputs.config import TrainerConfig
from judgeflow.protocol.bus import Publish
from judgeflow.protocol.events import TrainingStatus
from judgeflow.protocol.messages import StudentReady, TrainingExample
from judgeflow.protocol.models import JudgeModel
from judgeflow.providers.openai.provider import classify_openai_error

__all__ = ["FineTuneError", "InvalidTrainingSetError", "OpenAIFineTuner", "make_openai_trainer"]

_T = TypeVar("_T")
_ABANDONED = frozenset({"failed", "cancelled", "missing"})
_MAX_SUFFIX = 64
_DEFAULT_RETRY = RetryPolicy()


class FineTuneError(RuntimeError):
    """The fine-tuning job could not produce a model (it failed, was cancelled, or could not be submitted)."""


class InvalidTrainingSetError(FineTuneError):
    """The training set is malformed; nothing was uploaded. ``report`` holds every problem."""

    def __init__(self, report: DatasetReport) -> None:
        lines = "\n  ".join(report.problems())
        super().__init__(f"refusing to fine-tune: {len(report.errors)} malformed training examples:\n  {lines}")
        self.report = report


class OpenAIFineTuner:
    """Fine-tunes ``base_model`` on the teacher's judgements; ``load`` turns the result into a judge."""

    def __init__(
        self,
        client_factory: Callable[[], openai.AsyncOpenAI],
        *,
        base_model: str,
        epochs: int | None,
        suffix: str,
        job_id: str | None = None,
        poll_interval_s: float,
        cancel_timeout_s: float,
        publish: Publish,
        judge_factory: Callable[[str], JudgeModel],
        student: str = "student_trained",
        prices: Mapping[str, Price] = DEFAULT_PRICES,
        retry: RetryPolicy = _DEFAULT_RETRY,
    ) -> None:
        if epochs is not None and not 1 <= epochs <= 50:
            raise ValueError(f"epochs must be from 1 to 50 (or None for the provider's default), got {epochs}")
        if len(suffix) > _MAX_SUFFIX:
            raise ValueError(f"suffix must be at most {_MAX_SUFFIX} characters, got {len(suffix)}")
        if poll_interval_s <= 0 or cancel_timeout_s <= 0:
            raise ValueError("poll_interval_s and cancel_timeout_s must be positive")
        self.name = "openai"
        self.client_factory = client_factory
        self.base_model = base_model
        self.epochs = epochs
        self.suffix = suffix
        self.job_id = job_id
        self.poll_interval_s = poll_interval_s
        self.cancel_timeout_s = cancel_timeout_s
        self.publish = publish
        self.judge_factory = judge_factory
        self.student = student
        self.prices = prices
        self.retry = retry

    def load(self, ready: StudentReady) -> JudgeModel:
        return self.judge_factory(ready.model_ref)

    async def train(self, examples: Sequence[TrainingExample], *, out_dir: Path) -> StudentReady:
        folder = out_dir / "finetune"
        record_path = folder / "job.json"
        record = _read_record(record_path)
        job_id = self.job_id
        data = b""
        if job_id is None and record is not None and record.get("status") not in _ABANDONED:
            job_id = str(record["job_id"])
        if job_id is not None:
            if record is None or record.get("job_id") != job_id:
                record = {"job_id": job_id, "base_model": self.base_model, "n_train": len(examples)}
                _write_record(record_path, record)
            self.publish(TrainingStatus(self.student, "attaching", f"re-attaching to fine-tuning job {job_id}"))
        else:
            lines = [training_example_json(example) for example in examples]
            report = analyze_training_set(lines, base_model=self.base_model, epochs=self.epochs, prices=self.prices)
            if not report.ok:
                raise InvalidTrainingSetError(report)
            for warning in report.warnings:
                self.publish(TrainingStatus(self.student, "warning", warning))
            self.publish(TrainingStatus(self.student, "validated", report.summary(), progress=0.0))
            data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
            await anyio.to_thread.run_sync(_write_bytes, folder / "train.jsonl", data)
            record = {
                "job_id": None,
                "base_model": self.base_model,
                "n_train": report.n_examples,
                "estimated_cost_usd": report.estimated_cost_usd,
            }
        client = self.client_factory()
        try:
            return await self._run(client, job_id, record, record_path, data)
        finally:
            with anyio.move_on_after(self.cancel_timeout_s, shield=True):
                await client.close()

    async def _run(
        self,
        client: openai.AsyncOpenAI,
        job_id: str | None,
        record: dict[str, Any],
        record_path: Path,
        data: bytes,
    ) -> StudentReady:
        try:
            if job_id is None:
                job_id = await self._submit(client, record, record_path, data)
            job = await self._follow(client, job_id, record, record_path)
        except anyio.get_cancelled_exc_class():
            if record.get("job_id") is not None:
                await self._cancel(client, str(record["job_id"]), record, record_path)
            raise
        model = job.fine_tuned_model
        if not model:
            raise FineTuneError(f"fine-tuning job {job.id} succeeded but names no fine-tuned model")
        trained = job.trained_tokens
        return StudentReady(
            student=self.student,
            model_ref=model,
            n_train=int(record.get("n_train") or 0),
            details={
                "backend": "openai",
                "job_id": job.id,
                "base_model": job.model,
                "trained_tokens": trained,
                "estimated_cost_usd": record.get("estimated_cost_usd"),
                "cost_usd": None if trained is None else estimate_training_cost(trained, job.model, prices=self.prices),
            },
        )

    async def _submit(self, client: openai.AsyncOpenAI, record: dict[str, Any], path: Path, data: bytes) -> str:
        self.publish(TrainingStatus(self.student, "uploading", f"{len(data):,} bytes"))
        # Uploading twice only leaves a spare file, so every retryable failure is retried.
        uploaded = await self._retrying(
            client,
            "uploading the training file",
            lambda: client.files.create(file=("train.jsonl", data), purpose="fine-tune"),
            retry_transient=True,
        )
        record["training_file"] = uploaded.id
        method: job_create_params.Method | openai.Omit = openai.omit
        if self.epochs is not None:
            method = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": self.epochs}}}
        # A create that reached OpenAI made a job we must know about to cancel, so each attempt is shielded (the
        # client's timeout bounds it) and the id is recorded before the next checkpoint. A create that timed out
        # may have made a job too: only a 429, certainly refused, is retried, since a second job is paid twice.
        job = await self._retrying(
            client,
            "creating the fine-tuning job",
            lambda: client.fine_tuning.jobs.create(
                model=self.base_model,
                training_file=uploaded.id,
                suffix=self.suffix or openai.omit,
                method=method,
            ),
            retry_transient=False,
            shield=True,
        )
        record.update(job_id=job.id, status=job.status)
        _write_record(path, record)
        self.publish(TrainingStatus(self.student, "submitted", f"fine-tuning job {job.id} ({job.model})"))
        return job.id

    async def _follow(
        self, client: openai.AsyncOpenAI, job_id: str, record: dict[str, Any], path: Path
    ) -> FineTuningJob:
        seen: set[str] = set()
        status = ""
        progress: float | None = None
        failures = 0
        while True:
            try:
                job = await client.fine_tuning.jobs.retrieve(job_id)
                fresh = await self._new_events(client, job_id, seen)
            except openai.OpenAIError as error:
                decision = classify_openai_error(error, secret=client.api_key)
                failures += 1
                if decision.status == 404:
                    record["status"] = "missing"
                    _write_record(path, record)
                    raise FineTuneError(f"fine-tuning job {job_id} not found ({decision.detail})") from error
                if decision.kind in ("fatal", "fatal_model") or failures >= self.retry.max_attempts:
                    raise FineTuneError(
                        f"lost track of fine-tuning job {job_id} ({decision.detail}); it may still be running: "
                        f"run again to re-attach (the id is in {path})"
                    ) from error
                delay = backoff_delay(
                    self.retry, failures, jitter=random.random(), retry_after_s=decision.retry_after_s
                )
                self.publish(TrainingStatus(self.student, "retrying", decision.detail, progress))
                await anyio.sleep(max(delay, self.poll_interval_s))
                continue
            failures = 0
            if job.status != status and not fresh:
                self.publish(TrainingStatus(self.student, job.status, f"fine-tuning job {job_id}: {job.status}"))
            for event in fresh:
                data = event.data if isinstance(event.data, dict) else {}
                step, total = data.get("step"), data.get("total_steps")
                if isinstance(step, int) and isinstance(total, int) and total > 0:
                    progress = min(1.0, step / total)
                self.publish(TrainingStatus(self.student, job.status, event.message, progress))
            if job.status != status:
                status = job.status
                record["status"] = status
                if job.fine_tuned_model:
                    record["fine_tuned_model"] = job.fine_tuned_model
                _write_record(path, record)
            if status == "succeeded":
                return job
            if status == "failed":
                reason = job.error.message if job.error is not None else "no reason given"
                raise FineTuneError(f"fine-tuning job {job_id} failed: {reason}")
            if status == "cancelled":
                raise FineTuneError(f"fine-tuning job {job_id} was cancelled")
            await anyio.sleep(self.poll_interval_s)

    async def _new_events(self, client: openai.AsyncOpenAI, job_id: str, seen: set[str]) -> list[FineTuningJobEvent]:
        """Events not published yet, oldest first (the API lists newest first, so stop at the first seen)."""
        fresh = []
        async for event in client.fine_tuning.jobs.list_events(job_id, limit=100):
            if event.id in seen:
                break
            fresh.append(event)
        seen.update(event.id for event in fresh)
        fresh.reverse()
        return fresh

    async def _cancel(self, client: openai.AsyncOpenAI, job_id: str, record: dict[str, Any], path: Path) -> None:
        """Ask OpenAI to stop the job; bounded and shielded, because we are being cancelled ourselves."""
        with anyio.move_on_after(self.cancel_timeout_s, shield=True) as scope:
            try:
                await client.fine_tuning.jobs.cancel(job_id, timeout=self.cancel_timeout_s)
            except openai.OpenAIError as error:
                detail = classify_openai_error(error, secret=client.api_key).detail
                self.publish(TrainingStatus(self.student, "cancel_failed", f"job {job_id}: {detail}"))
                return
            record["status"] = "cancelled"
            _write_record(path, record)
            self.publish(TrainingStatus(self.student, "cancelled", f"fine-tuning job {job_id} cancelled"))
        if scope.cancelled_caught:
            message = f"no answer to cancelling job {job_id} within {self.cancel_timeout_s:g} s; it may still run"
            self.publish(TrainingStatus(self.student, "cancel_failed", message))

    async def _retrying(
        self,
        client: openai.AsyncOpenAI,
        what: str,
        call: Callable[[], Awaitable[_T]],
        *,
        retry_transient: bool,
        shield: bool = False,
    ) -> _T:
        attempt = 0
        while True:
            attempt += 1
            try:
                with anyio.CancelScope(shield=shield):
                    return await call()
            except openai.OpenAIError as error:
                decision = classify_openai_error(error, secret=client.api_key)
                retryable = decision.kind == "rate_limited" or (
                    retry_transient and decision.kind in ("transient", "unreachable")
                )
                if not retryable or attempt >= self.retry.max_attempts:
                    raise FineTuneError(f"{what} failed: {decision.detail}") from error
                delay = backoff_delay(self.retry, attempt, jitter=random.random(), retry_after_s=decision.retry_after_s)
                self.publish(TrainingStatus(self.student, "retrying", f"{what}: {decision.detail}"))
                await anyio.sleep(delay)


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise FineTuneError(f"cannot read the job record {path}: {error}; delete it to submit a new job") from None
    if not isinstance(record, dict) or not isinstance(record.get("job_id"), str | None):
        raise FineTuneError(f"the job record {path} is malformed; delete it to submit a new job")
    return record if record.get("job_id") else None


def _write_record(path: Path, record: Mapping[str, Any]) -> None:
    # Small and local, so written in the event loop; replaced atomically so a crash never leaves half a record.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_openai_trainer(
    config: TrainerConfig,
    *,
    base_model: str,
    client_factory: Callable[[], openai.AsyncOpenAI],
    judge_factory: Callable[[str], JudgeModel],
    publish: Publish,
) -> OpenAIFineTuner:
    """The fine-tuning backend a ``[trainer]`` config with ``backend = "openai"`` describes."""
    return OpenAIFineTuner(
        client_factory,
        base_model=base_model,
        epochs=config.epochs,
        suffix=config.suffix,
        job_id=config.job_id,
        poll_interval_s=config.poll_interval_s,
        cancel_timeout_s=config.cancel_timeout_s,
        publish=publish,
        judge_factory=judge_factory,
    )
