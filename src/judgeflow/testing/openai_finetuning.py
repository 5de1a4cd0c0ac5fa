"""The fake OpenAI server's fine-tuning endpoints, over the jobs in `openai_jobs` and the files in `openai_files`.

Split from the chat and embedding endpoints because they are a different job: they keep state between
requests (jobs), validate a training file the way the real API does before anything is spent (a validator
registered with the file store), and page their lists with OpenAI's cursor pagination. A fine-tuning client
(submit, poll, read events, cancel, re-attach) is tested end to end against them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._http import json_response
from .openai_config import ORGANIZATION, FakeOpenAI, cursor_page, openai_error, requested_model
from .openai_files import FileStore
from .openai_jobs import TERMINAL, Job, check_fine_tune_file, job_timeline

__all__ = ["FineTuningAPI"]


class FineTuningAPI:
    """Fine-tuning jobs, and the route handlers ``(request, body) -> response`` over them.

    ``config`` is called on every request, so the server's current config (clock, step time, seed) applies.
    """

    def __init__(self, config: Callable[[], FakeOpenAI], files: FileStore) -> None:
        self._config = config
        self._files = files
        self._jobs: dict[str, Job] = {}
        files.validators["fine-tune"] = (check_fine_tune_file, "Invalid file format for Fine-Tuning API.")

    def tuned_models(self, now: float) -> list[str]:
        """The fine-tuned models of the jobs that have succeeded by ``now``, oldest job first."""
        return [job.fine_tuned_model for job in self._jobs.values() if job.status(now) == "succeeded"]

    # -- fine-tuning jobs --------------------------------------------------------------------------------------

    async def jobs_create(self, request: web.Request, body: Any) -> web.StreamResponse:
        model = requested_model(body)
        if isinstance(model, web.Response):
            return model
        training_id = body.get("training_file")
        training = self._files.get(training_id) if isinstance(training_id, str) else None
        if training is None or training.purpose != "fine-tune":
            return openai_error(
                400, f"Invalid training_file: {training_id}", param="training_file", code="invalid_training_file"
            )
        validation_id = body.get("validation_file")
        if validation_id is not None and (not isinstance(validation_id, str) or self._files.get(validation_id) is None):
            return openai_error(400, f"Invalid validation_file: {validation_id}", param="validation_file")
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            return openai_error(400, "'suffix' must be a string of at most 64 characters.", param="suffix")
        hyper = body.get("hyperparameters")
        method = body.get("method")
        if not isinstance(hyper, dict) and isinstance(method, dict):
            supervised = method.get("supervised")
            hyper = supervised.get("hyperparameters") if isinstance(supervised, dict) else None
        n_epochs_raw = hyper.get("n_epochs", "auto") if isinstance(hyper, dict) else "auto"
        if n_epochs_raw == "auto" or n_epochs_raw is None:
            n_epochs = 3
        elif isinstance(n_epochs_raw, int) and 1 <= n_epochs_raw <= 50:
            n_epochs = n_epochs_raw
        else:
            return openai_error(400, "'n_epochs' must be 'auto' or an integer from 1 to 50.", param="hyperparameters")
        seed = body.get("seed")
        digest = self._files.new_id("job")
        job_id = f"ftjob-{digest}"
        short = digest[:8]
        created = self._config().clock()
        step_s = self._config().fine_tune_step_s
        total_steps = max(1, min(20, n_epochs * max(1, training.examples)))
        fails = suffix is not None and "fail" in suffix.lower()
        fine_tuned = f"ft:{model}:{ORGANIZATION}:{suffix or ''}:{short}"
        timeline = job_timeline(created, step_s, total_steps, training.id, fine_tuned, fails, seed=digest)
        job = Job(
            id=job_id,
            model=model,
            training_file=training.id,
            validation_file=validation_id if isinstance(validation_id, str) else None,
            suffix=suffix,
            n_epochs=n_epochs,
            seed=seed if isinstance(seed, int) else int(digest[:6], 16),
            created=created,
            step_s=step_s,
            total_steps=total_steps,
            trained_tokens=training.tokens * n_epochs,
            fine_tuned_model=fine_tuned,
            fails=fails,
            metadata=body.get("metadata"),
            timeline=[(f"ftevent-{digest[:12]}{i:04d}", event) for i, event in enumerate(timeline)],
        )
        self._jobs[job_id] = job
        return json_response(job.as_json(created))

    def _job_or_404(self, request: web.Request) -> Job | web.Response:
        job_id = request.match_info["job_id"]
        job = self._jobs.get(job_id)
        if job is None:
            return openai_error(404, f"No fine-tuning job with id {job_id}", param="fine_tuning_job_id")
        return job

    async def jobs_retrieve(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._job_or_404(request)
        return found if isinstance(found, web.Response) else json_response(found.as_json(self._config().clock()))

    async def jobs_list(self, request: web.Request, body: Any) -> web.StreamResponse:
        now = self._config().clock()
        jobs = [job.as_json(now) for job in reversed(self._jobs.values())]
        return json_response(cursor_page(jobs, request))

    async def jobs_events(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._job_or_404(request)
        if isinstance(found, web.Response):
            return found
        events = [
            {
                "id": event_id,
                "object": "fine_tuning.job.event",
                "created_at": int(event.at),
                "level": event.level,
                "message": event.message,
                "data": event.data or {},
                "type": event.type,
            }
            for event_id, event in reversed(found.events(self._config().clock()))
        ]
        return json_response(cursor_page(events, request))

    async def jobs_cancel(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._job_or_404(request)
        if isinstance(found, web.Response):
            return found
        now = self._config().clock()
        status = found.status(now)
        if status in TERMINAL:
            return openai_error(400, f"Job {found.id} has already finished with status {status}.", param="job_id")
        found.cancelled_at = now
        return json_response(found.as_json(now))
