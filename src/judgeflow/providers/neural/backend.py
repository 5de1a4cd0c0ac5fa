"""The ``minilm`` trainer backend: fine-tunes the MiniLM student for a pipeline run, off the event loop.

Training takes minutes of CPU, so it runs in a worker thread; progress goes out as `TrainingStatus` events
(at most one a second, and one after every validation), and cancelling the awaiting task stops training at the
next optimiser step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio.from_thread
import anyio.to_thread

from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.events import TrainingStatus
from judgeflow.protocol.messages import StudentReady, TrainingExample

from .student import MiniLMStudentJudge
from .training import MiniLMSettings, TrainingProgress, train_minilm_student

__all__ = ["MiniLMTrainerBackend"]


@dataclass
class _Reporter:
    """Turns training progress into `TrainingStatus` events on the event loop, at most every ``interval``."""

    student: str
    publish: Publish
    interval: float = 1.0
    _last: float = field(default=-math.inf)

    def __call__(self, progress: TrainingProgress) -> None:
        # In the worker thread: a cancelled host task stops training here, between two steps.
        anyio.from_thread.check_cancelled()
        now = time.monotonic()
        if progress.val_loss is None and progress.step < progress.steps and now - self._last < self.interval:
            return
        self._last = now
        event = TrainingStatus(self.student, "training", progress.describe(), progress=progress.fraction)
        anyio.from_thread.run_sync(self.publish, event)


class MiniLMTrainerBackend:
    """Fine-tunes a :class:`MiniLMStudentJudge` in a worker thread and saves it under ``out_dir / "student"``.

    Progress goes out as `TrainingStatus` events through ``publish``; cancelling the awaiting task stops
    training at the next step. The judge it loads runs with ``judge_threads`` torch threads in ``precision``
    (``"auto"``: bfloat16 where the CPU computes it natively).
    """

    def __init__(
        self,
        *,
        settings: MiniLMSettings | None = None,
        student: str = "student_trained",
        name: str = "minilm",
        publish: Publish = null_publish,
        judge_threads: int = 1,
        precision: str = "auto",
        weights: Path | None = None,
    ) -> None:
        self.settings = settings or MiniLMSettings()
        self.student = student
        self.name = name
        self.publish = publish
        self.judge_threads = judge_threads
        self.precision = precision
        self.weights = weights

    async def train(self, examples: Sequence[TrainingExample], *, out_dir: Path) -> StudentReady:
        reporter = _Reporter(self.student, self.publish)
        fit = partial(
            train_minilm_student,
            list(examples),
            settings=self.settings,
            name=self.student,
            on_progress=reporter,
            weights=self.weights,
        )
        model = await anyio.to_thread.run_sync(fit)
        folder = out_dir / "student"
        await anyio.to_thread.run_sync(model.save, folder)
        info = model.info
        return StudentReady(
            student=self.student,
            model_ref=str(folder),
            n_train=len(examples),
            details={
                "backend": self.name,
                "model": "MiniLM cross-encoder (all-MiniLM-L6-v2) fine-tuned on the teacher's scores",
                "layers": self.settings.layers,
                "epochs_run": info.get("epochs_run"),
                "best_epoch": info.get("best_epoch"),
                "best_val_loss": info.get("best_val_loss"),
                "n_validation": info.get("n_validation"),
                "train_seconds": info.get("train_seconds"),
            },
        )

    def load(self, ready: StudentReady) -> MiniLMStudentJudge:
        return MiniLMStudentJudge.load(
            Path(ready.model_ref), name=ready.student, threads=self.judge_threads, precision=self.precision
        )
