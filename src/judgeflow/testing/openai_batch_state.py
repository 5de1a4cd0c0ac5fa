"""One batch of the fake Batch API as a timed state machine read off the server clock, with no background task.

``validating`` for ``validate_s``, then ``failed`` (its input had problems) or ``in_progress`` for ``run_s`` (plus
``request_s`` a request), during which its requests finish evenly over time in a seeded random order, then
``finalizing`` for ``finalize_s`` and ``completed``. A batch that cannot finish its requests within the
completion window is ``expired`` when the window closes, with the requests done by then; a cancelled one is
``cancelling`` for ``cancel_s``, then ``cancelled``, with the requests done before the cancel. How many requests
are done is a pure function of ``now``; computing their replies is `openai_batches`' job.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .openai_batch_input import BatchLine, BatchProblem
from .openai_chat import Outcome
from .openai_config import FakeOpenAI

__all__ = ["CANCELLABLE", "TERMINAL", "BatchJob", "Timing"]

TERMINAL = frozenset({"failed", "completed", "expired", "cancelled"})
CANCELLABLE = frozenset({"validating", "in_progress"})


@dataclass(frozen=True, slots=True)
class Timing:
    """The phase lengths of one batch, fixed when it is created (a later config change does not rewrite it)."""

    validate_s: float
    run_s: float
    finalize_s: float
    cancel_s: float
    window_s: float

    @classmethod
    def of(cls, config: FakeOpenAI, requests: int) -> Timing:
        run = config.batch_run_s + config.batch_request_s * requests
        return cls(config.batch_validate_s, run, config.batch_finalize_s, config.batch_cancel_s, config.batch_window_s)


@dataclass(slots=True)
class BatchJob:
    """A batch: its requests (or the problems that fail it), its timeline, and the replies computed so far."""

    id: str
    endpoint: str
    input_file_id: str
    created: float
    metadata: dict[str, str] | None
    lines: list[BatchLine]
    problems: list[BatchProblem]
    timing: Timing
    seed: int
    cancel_at: float | None = None
    results: list[Outcome] = field(default_factory=list)
    """Replies in processing order: ``results[i]`` answers ``lines[order[i]]``."""
    order: list[int] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    files_made: bool = False
    ok: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def __post_init__(self) -> None:
        self.order = list(range(len(self.lines)))
        random.Random(f"{self.seed}:{self.id}").shuffle(self.order)

    @property
    def model(self) -> str | None:
        return str(self.lines[0].body["model"]) if self.lines else None

    @property
    def tokens(self) -> int:
        return sum(line.tokens for line in self.lines)

    @property
    def validated_at(self) -> float:
        return self.created + self.timing.validate_s

    @property
    def run_end(self) -> float:
        return self.validated_at + self.timing.run_s

    @property
    def deadline(self) -> float:
        return self.created + self.timing.window_s

    @property
    def expires(self) -> bool:
        """Whether its requests cannot all finish inside the completion window."""
        return not self.problems and self.run_end > self.deadline

    def status(self, now: float) -> str:
        if self.cancel_at is not None and now >= self.cancel_at:
            return "cancelled" if now >= self.cancel_at + self.timing.cancel_s else "cancelling"
        if now < min(self.validated_at, self.deadline):
            return "validating"
        if self.problems:
            return "failed"
        if self.expires:
            return "in_progress" if now < self.deadline else "expired"
        if now < self.run_end:
            return "in_progress"
        return "finalizing" if now < self.run_end + self.timing.finalize_s else "completed"

    def done(self, now: float) -> int:
        """How many requests have been answered by ``now`` (they stop at a cancel or when the window closes)."""
        if self.problems:
            return 0
        stop = min(now, self.deadline, math.inf if self.cancel_at is None else self.cancel_at)
        if stop < self.validated_at:
            return 0
        span = self.run_end - self.validated_at
        share = 1.0 if span <= 0 else min(1.0, (stop - self.validated_at) / span)
        return math.floor(len(self.lines) * share + 1e-9)

    def add_result(self, outcome: Outcome) -> None:
        self.results.append(outcome)
        status, body = outcome
        if status == 200:
            self.ok += 1
            usage = body.get("usage")
            if isinstance(usage, dict):
                self.input_tokens += int(usage.get("prompt_tokens", 0))
                self.output_tokens += int(usage.get("completion_tokens", 0))

    def as_json(self, now: float) -> dict[str, object]:
        status = self.status(now)
        stamps = self._stamps(status)
        answered = len(self.results)
        counts = {"total": 0, "completed": 0, "failed": 0}
        if status not in ("validating", "failed") and self.lines:
            counts = {"total": len(self.lines), "completed": self.ok, "failed": answered - self.ok}
        usage = None
        if self.files_made:
            usage = {
                "input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.input_tokens + self.output_tokens,
            }
        errors = None
        if self.problems and status == "failed":
            errors = {"object": "list", "data": [p.as_json() for p in self.problems]}
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": errors,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created),
            "expires_at": int(self.deadline),
            **stamps,
            "request_counts": counts,
            "metadata": self.metadata,
            "usage": usage,
        }

    def _stamps(self, status: str) -> dict[str, int | None]:
        stamps: dict[str, float | None] = dict.fromkeys(
            ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at"), None
        )
        stamps["cancelled_at"] = None
        ran = self.cancel_at is None or self.cancel_at >= self.validated_at
        if status not in ("validating", "failed") and ran and not self.problems:
            stamps["in_progress_at"] = self.validated_at
        if status == "failed":
            stamps["failed_at"] = self.validated_at
        if status in ("finalizing", "completed"):
            stamps["finalizing_at"] = self.run_end
        if status == "completed":
            stamps["completed_at"] = self.run_end + self.timing.finalize_s
        if status == "expired":
            stamps["expired_at"] = self.deadline
        if status in ("cancelling", "cancelled") and self.cancel_at is not None:
            stamps["cancelling_at"] = self.cancel_at
            if status == "cancelled":
                stamps["cancelled_at"] = self.cancel_at + self.timing.cancel_s
        return {key: None if value is None else int(value) for key, value in stamps.items()}
