"""Trainer: the teacher's train judgements in, a trained student out.

It turns each scored teacher judgement into a fine-tuning example in the OpenAI chat format (system rubric,
user query with reference and generated answer, assistant = the teacher's reply, as in the recipe), hands each
to ``record`` as it arrives (the pipeline writes them to ``train.jsonl``), and when the stream ends hands the
whole set to its backend (a local fit, or an OpenAI fine-tuning job). Teacher verdicts that could not be
parsed or failed are not training data: they are counted and reported, never guessed.

The set keeps the recipe's chat format whatever the teacher's scoring mode: a teacher asked for JSON (or scored
from token probabilities) is written as the recipe's reply, the score on the first line and the reasoning after
it, so a student fine-tuned on it learns to answer the recipe's prompt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from anyio.abc import TaskStatus

from judgeflow.core.parsing import format_judge_reply, parse_judge_reply
from judgeflow.core.prompts import DEFAULT_JUDGE_PROMPT, JudgePrompt, training_example
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.events import ActorFinished, ActorStarted, TrainingStatus
from judgeflow.protocol.messages import Judgement, StudentReady, TrainingExample
from judgeflow.protocol.models import TrainerBackend
from judgeflow.protocol.verdicts import Scored

from ._pool import describe_error
from .judge import judge_input

__all__ = ["Trainer", "recipe_reply"]


class Trainer:
    """Collects training examples and trains a student with ``backend`` into ``out_dir``."""

    def __init__(
        self,
        backend: TrainerBackend,
        *,
        out_dir: Path,
        prompt: JudgePrompt = DEFAULT_JUDGE_PROMPT,
        record: Callable[[TrainingExample], None] | None = None,
        export: Callable[[], Awaitable[str]] | None = None,
        name: str = "trainer",
        publish: Publish = null_publish,
    ) -> None:
        self.record = record
        self.export = export
        self.error: str | None = None
        self.backend = backend
        self.out_dir = out_dir
        self.prompt = prompt
        self.name = name
        self.publish = publish
        self.skipped = 0
        self.examples: list[TrainingExample] = []

    async def run(
        self,
        inbox: Receiver[Judgement],
        outbox: Sender[StudentReady],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        student = "student_trained"
        with inbox:
            async with outbox:
                self.publish(ActorStarted(self.name, 1))
                task_status.started()
                try:
                    async for judgement in inbox:
                        example = self._example(judgement)
                        if example is None:
                            continue
                        self.examples.append(example)
                        if self.record is not None:
                            self.record(example)
                    n = len(self.examples)
                    if n == 0:
                        self.publish(TrainingStatus(student, "skipped", "no usable teacher judgements"))
                        return
                    if self.export is not None:
                        url = await self.export()
                        self.publish(TrainingStatus(student, "exported", url))
                    self.publish(TrainingStatus(student, "training", f"{n} examples, backend {self.backend.name}"))
                    try:
                        ready = await self.backend.train(self.examples, out_dir=self.out_dir)
                    except Exception as error:
                        # A failed or cancelled fine-tuning job is a result, not a crash: the report says so and
                        # the trained student's items are accounted for as failed.
                        self.error = describe_error(error)
                        self.publish(TrainingStatus(student, "failed", self.error))
                        return
                    self.publish(TrainingStatus(student, "trained", ready.model_ref, progress=1.0))
                    await outbox.send(ready)
                finally:
                    self.publish(ActorFinished(self.name, len(self.examples) + self.skipped, 1, self.skipped))

    def _example(self, judgement: Judgement) -> TrainingExample | None:
        verdict = judgement.verdict
        if judgement.answer.question.split != "train":
            raise ValueError(f"trainer received held-out item {judgement.id}: the split is broken upstream")
        if not isinstance(verdict, Scored):
            self.skipped += 1
            return None
        item = judge_input(judgement.answer)
        return training_example(judgement.id, item, recipe_reply(judgement.raw, verdict), verdict.score, self.prompt)


def recipe_reply(raw: str, verdict: Scored) -> str:
    """The teacher's reply in the recipe's format: ``raw`` itself when its first line is this very score alone."""
    lines = raw.strip().splitlines()
    if lines and not lines[0].lstrip().startswith("{"):
        head = parse_judge_reply(lines[0])
        if isinstance(head, Scored) and head.score == verdict.score:
            return raw
    return format_judge_reply(round(verdict.score, 2), verdict.reasoning)
