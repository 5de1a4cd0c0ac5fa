"""Answerer: a question and its retrieved passages in, the cheap model's answer out.

This is the model under evaluation (Llama-2 in the recipe). It sees only the retrieved passages, so a poor
retrieval gives a poor answer, which is what the judges are there to notice.
"""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from judgeflow.calls.timing import timed_call
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.messages import Answer, Context
from judgeflow.protocol.models import AnswerModel

from ._pool import run_pool

__all__ = ["Answerer"]


class Answerer:
    """Answers each question from its context with ``model``."""

    def __init__(
        self,
        model: AnswerModel,
        *,
        workers: int = 4,
        name: str = "answerer",
        publish: Publish = null_publish,
    ) -> None:
        self.model = model
        self.workers = workers
        self.name = name
        self.publish = publish

    async def run(
        self,
        inbox: Receiver[Context],
        outbox: Sender[Answer],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        async def handle(context: Context) -> Answer:
            reply = await timed_call(
                lambda: self.model.answer(context.question.question, context.passages),
                publish=self.publish,
                actor=self.name,
                model=self.model.name,
            )
            return Answer(
                question=context.question,
                text=reply.text,
                model=reply.model,
                passages=context.passages,
                usage=reply.usage,
            )

        await run_pool(
            name=self.name,
            workers=self.workers,
            inbox=inbox,
            outbox=outbox,
            handle=handle,
            item_id=lambda context: context.question.id,
            publish=self.publish,
            task_status=task_status,
        )
