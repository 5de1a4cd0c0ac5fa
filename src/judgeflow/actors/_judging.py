"""Asking a judge and turning its reply into a verdict, shared by the teacher and the students.

Every judge reply goes through the same total parser (`judgeflow.parsing.parse_judge_reply`), so a local
stand-in and GPT-4 are held to the same standard. A provider failure becomes a `Failed` verdict on that item,
with the error described in one line: the item stays accounted for and the run goes on.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from anyio.abc import TaskStatus

from judgeflow.parsing import parse_judge_reply
from judgeflow.protocol.bus import Publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.events import ActorFinished, ActorStarted, CallFinished, ItemDone
from judgeflow.protocol.messages import Answer, JudgeInput, Judgement, Reply
from judgeflow.protocol.verdicts import Failed, Unparsed
from judgeflow.providers.base import BatchJudgeModel, JudgeModel

from ._pool import describe_error, run_pool
from ._timing import elapsed_since, start_timer

__all__ = ["JudgeRunner", "judge_input", "to_judgement"]


def judge_input(answer: Answer) -> JudgeInput:
    return JudgeInput(question=answer.question.question, reference=answer.question.reference, answer=answer.text)


def to_judgement(answer: Answer, judge: str, reply: Reply) -> Judgement:
    verdict = parse_judge_reply(reply.text)
    return Judgement(answer, judge, reply.model, verdict, reply.text, reply.usage)


class JudgeRunner:
    """Runs one judge model over an inbox of answers, one item or one batch at a time."""

    def __init__(self, *, name: str, workers: int, batch_size: int, publish: Publish) -> None:
        self.name = name
        self.workers = workers
        self.batch_size = batch_size
        self.publish = publish

    async def judge_one(self, model: JudgeModel, answer: Answer) -> Judgement:
        started = start_timer()
        try:
            reply = await model.judge(judge_input(answer))
        except Exception as error:
            self.publish(CallFinished(self.name, model.name, elapsed_since(started), ok=False))
            return Judgement(answer, self.name, model.name, Failed(describe_error(error)), raw="")
        self.publish(
            CallFinished(self.name, reply.model, elapsed_since(started), usage=reply.usage, cost_usd=reply.cost_usd)
        )
        return to_judgement(answer, self.name, reply)

    def judge_many(self, model: BatchJudgeModel, answers: Sequence[Answer]) -> list[Judgement]:
        started = start_timer()
        try:
            replies = model.judge_batch([judge_input(answer) for answer in answers])
        except Exception as error:
            failed = Failed(describe_error(error))
            return [Judgement(answer, self.name, model.name, failed, raw="") for answer in answers]
        self.publish(CallFinished(self.name, model.name, elapsed_since(started)))
        return [to_judgement(answer, self.name, reply) for answer, reply in zip(answers, replies, strict=True)]

    async def run(
        self,
        model: JudgeModel,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        if isinstance(model, BatchJudgeModel) and self.batch_size > 1:
            await self._run_batched(model, inbox, outbox, task_status=task_status)
            return

        async def handle(answer: Answer) -> Judgement:
            return await self.judge_one(model, answer)

        await run_pool(
            name=self.name,
            workers=self.workers,
            inbox=inbox,
            outbox=outbox,
            handle=handle,
            item_id=lambda answer: answer.id,
            publish=self.publish,
            task_status=task_status,
        )

    async def _run_batched(
        self,
        model: BatchJudgeModel,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
        *,
        task_status: TaskStatus[None],
    ) -> None:
        """Take whatever is already waiting (up to ``batch_size``) and judge it in one vectorised call."""
        items_in = items_out = failed = 0
        with inbox:
            async with outbox:
                self.publish(ActorStarted(self.name, 1))
                task_status.started()
                try:
                    async for first in inbox:
                        batch = [first]
                        while len(batch) < self.batch_size:
                            try:
                                batch.append(inbox.receive_nowait())
                            except (anyio.WouldBlock, anyio.EndOfStream):
                                break
                        items_in += len(batch)
                        # A batch is CPU work (a neural student takes seconds): keep it off the event loop.
                        judged = await anyio.to_thread.run_sync(self.judge_many, model, batch)
                        for judgement in judged:
                            await outbox.send(judgement)
                            items_out += 1
                            failed += isinstance(judgement.verdict, Failed)
                            self.publish(ItemDone(self.name, judgement.id))
                finally:
                    self.publish(ActorFinished(self.name, items_in, items_out, failed))


def failed_judgement(answer: Answer, judge: str, model: str, reason: str) -> Judgement:
    """A judgement for an item the judge never saw (no model to judge with)."""
    return Judgement(answer, judge, model, Failed(reason, kind="no_model"), raw="")


def is_unparsed(judgement: Judgement) -> bool:
    return isinstance(judgement.verdict, Unparsed)
