"""The fake OpenAI server's fine-tuning state: jobs as a timed state machine.

A job is read off the server clock (``FakeOpenAI.clock``), with no background task: ``validating_files`` ->
``queued`` -> ``running`` -> ``succeeded`` (or ``failed`` when the suffix contains "fail"), each phase lasting
``fine_tune_step_s``, and its events (including per-step training loss) are laid out in advance on that timeline.
Cancelling a job that has not finished makes it ``cancelled`` from then on. Being plain data over ``now``, the
lifecycle a fine-tuning client polls through is tested without sleeping; the HTTP side is `openai_finetuning`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .openai_config import ORGANIZATION
from .openai_replies import unit_hash

__all__ = ["TERMINAL", "Job", "JobEvent", "check_fine_tune_file", "job_timeline"]

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One line of a job's event list, at server-clock time ``at``."""

    at: float
    level: str
    message: str
    type: str = "message"
    data: dict[str, object] | None = None


@dataclass(slots=True)
class Job:
    """One fine-tuning job: its status, events and JSON are functions of the server clock."""

    id: str
    model: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    n_epochs: int
    seed: int
    created: float
    step_s: float
    total_steps: int
    trained_tokens: int
    fine_tuned_model: str
    fails: bool
    metadata: object
    timeline: list[tuple[str, JobEvent]]
    cancelled_at: float | None = None

    @property
    def finish_at(self) -> float:
        return self.created + 3.0 * self.step_s

    def status(self, now: float) -> str:
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return "cancelled"
        elapsed = now - self.created
        if elapsed < self.step_s:
            return "validating_files"
        if elapsed < 2.0 * self.step_s:
            return "queued"
        if elapsed < 3.0 * self.step_s:
            return "running"
        return "failed" if self.fails else "succeeded"

    def events(self, now: float) -> list[tuple[str, JobEvent]]:
        """Events that have happened by ``now``, oldest first."""
        limit = now if self.cancelled_at is None else min(now, self.cancelled_at)
        seen = [(eid, ev) for eid, ev in self.timeline if ev.at <= limit]
        if self.cancelled_at is not None and now >= self.cancelled_at:
            seen.append((f"ftevent-{self.id[6:18]}cancel", JobEvent(self.cancelled_at, "info", "Job cancelled")))
        return seen

    def as_json(self, now: float) -> dict[str, object]:
        status = self.status(now)
        hyper = {"n_epochs": self.n_epochs, "batch_size": 1, "learning_rate_multiplier": 1.0}
        finished: float | None = None
        if status == "cancelled":
            finished = self.cancelled_at
        elif status in TERMINAL:
            finished = self.finish_at
        error = None
        if status == "failed":
            error = {
                "code": "training_failed",
                "message": "Fine-tuning failed: the job suffix asked the test server for a failure.",
                "param": None,
            }
        return {
            "id": self.id,
            "object": "fine_tuning.job",
            "created_at": int(self.created),
            "error": error,
            "fine_tuned_model": self.fine_tuned_model if status == "succeeded" else None,
            "finished_at": None if finished is None else int(finished),
            "hyperparameters": hyper,
            "model": self.model,
            "organization_id": f"org-{ORGANIZATION}",
            "result_files": [],
            "seed": self.seed,
            "status": status,
            "trained_tokens": self.trained_tokens if status == "succeeded" else None,
            "training_file": self.training_file,
            "validation_file": self.validation_file,
            "estimated_finish": None if status in TERMINAL else int(self.finish_at),
            "integrations": [],
            "metadata": self.metadata,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "user_provided_suffix": self.suffix,
        }


def check_fine_tune_file(data: bytes) -> tuple[str, int]:
    """``(problem, examples)``: an empty problem means every line is a chat example with a messages list."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "The file is not UTF-8 text.", 0
    examples = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except ValueError:
            return f"Line {number} is not valid JSON.", examples
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not messages:
            return f"Line {number} has no 'messages' list.", examples
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                return f"Line {number}: every message needs a 'role'.", examples
        examples += 1
    if examples == 0:
        return "The file has no training examples.", 0
    return "", examples


def job_timeline(
    created: float, step_s: float, steps: int, file_id: str, model: str, fails: bool, *, seed: str
) -> list[JobEvent]:
    events = [
        JobEvent(created, "info", "Created fine-tuning job"),
        JobEvent(created, "info", f"Validating training file: {file_id}"),
        JobEvent(created + step_s, "info", "Files validated, moving job to queued state"),
        JobEvent(created + 2.0 * step_s, "info", "Fine-tuning job started"),
    ]
    base = 1.5 + unit_hash("loss", seed)
    for step in range(1, steps + 1):
        loss = base * 0.75**step
        events.append(
            JobEvent(
                created + 2.0 * step_s + step_s * step / (steps + 1),
                "info",
                f"Step {step}/{steps}: training loss={loss:.4f}",
                type="metrics",
                data={"step": step, "total_steps": steps, "train_loss": round(loss, 6)},
            )
        )
    done = created + 3.0 * step_s
    if fails:
        events.append(JobEvent(done, "error", "Fine-tuning failed: the job suffix asked for a failure."))
    else:
        events.append(JobEvent(done, "info", f"New fine-tuned model created: {model}"))
        events.append(JobEvent(done, "info", "The job has successfully completed"))
    return events
