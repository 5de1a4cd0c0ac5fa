"""TeacherJudge: the strong, expensive judge whose verdicts the students learn from and are measured against.

It judges every answer, train and held-out alike: its train verdicts become the fine-tuning set, its held-out
verdicts are the reference the students are scored against.
"""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.messages import Answer, Judgement
from judgeflow.providers.base import JudgeModel

from ._judging import JudgeRunner

__all__ = ["TeacherJudge"]


class TeacherJudge:
    """Judges every answer with ``model``; its judgements are named ``name`` (default ``"teacher"``)."""

    def __init__(
        self,
        model: JudgeModel,
        *,
        workers: int = 8,
        name: str = "teacher",
        publish: Publish = null_publish,
    ) -> None:
        self.model = model
        self.name = name
        self._runner = JudgeRunner(name=name, workers=workers, batch_size=1, publish=publish)

    async def run(
        self,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        await self._runner.run(self.model, inbox, outbox, task_status=task_status)
