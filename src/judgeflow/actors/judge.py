"""The judge actor: answers in, judgements out, for the teacher, the students and every judge of a file.

One actor, three roles. `TeacherJudge` is the strong, expensive judge whose verdicts the students learn from and
are measured against: it judges every answer, train and held-out alike. `StudentJudge` is the cheap judge being
distilled, run on held-out answers; it batches when its model can (a local student judges thousands of items in
one vectorised call). `Judge` itself judges for `judgeflow judge`, one per judge named on the command line.

A model may be given later: with a ``ready`` channel the actor waits for the Trainer's `StudentReady` and loads the
trained student with ``loader``. Until then it keeps the answers it has been sent (it must keep reading its inbox,
or the stages upstream, which the Trainer is waiting on, would stall); those are at most the held-out share of the
questions. When training produced no student, each of them gets a `Failed` verdict, so every item is still
accounted for.

Each reply arrives with its verdict, read once where the reply was received (`judgeflow.protocol.models`); a
provider failure becomes a `Failed` verdict on that item with the error in one line, and the run goes on. A
`judgeflow.protocol.errors.RunStopped` (an unusable model, a server away too long) is not the item's failure: it
propagates, the run stops, and the item stays pending for ``--resume``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

import anyio
from anyio.abc import TaskStatus

from judgeflow.calls.timing import CallTimer, timed_call
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Channel, Receiver, Sender
from judgeflow.protocol.errors import RunStopped
from judgeflow.protocol.events import ActorFinished, ActorStarted, ItemDone, ReplyRead, TrainingStatus
from judgeflow.protocol.messages import Answer, JudgeInput, Judgement, JudgeReply, StudentReady
from judgeflow.protocol.models import BatchJudgeModel, JudgeModel
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed

from ._pool import describe_error, run_pool

__all__ = ["Judge", "StudentJudge", "TeacherJudge", "judge_input"]


def judge_input(answer: Answer) -> JudgeInput:
    return JudgeInput(question=answer.question.question, reference=answer.question.reference, answer=answer.text)


def _judgement(answer: Answer, judge: str, reply: JudgeReply, at: float) -> Judgement:
    return Judgement(answer, judge, reply.model, reply.verdict, reply.text, reply.usage, at=at)


def _read_event(judgement: Judgement) -> ReplyRead | None:
    """What a judged item tells the parse-rate counters (nothing for a failed call: there was no reply)."""
    verdict = judgement.verdict
    if isinstance(verdict, Failed):
        return None
    reason = verdict.reason if isinstance(verdict, Unparsed) else ""
    return ReplyRead(judgement.judge, judgement.model, isinstance(verdict, Scored), reason)


class Judge:
    """Judges every answer of its inbox with ``model`` (given now), or with ``loader``'s model once ready."""

    def __init__(
        self,
        model: JudgeModel | None = None,
        *,
        loader: Callable[[StudentReady], JudgeModel] | None = None,
        workers: int = 8,
        batch_size: int = 1,
        name: str = "judge",
        publish: Publish = null_publish,
    ) -> None:
        if model is None and loader is None:
            raise ValueError(f"{name}: give a model, or a loader for the trained model")
        self.model = model
        self.loader = loader
        self.workers = workers
        self.batch_size = batch_size
        self.name = name
        self.publish = publish

    async def run(
        self,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
        *,
        ready: Receiver[StudentReady] | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Judge every answer of ``inbox``; with ``ready``, first wait for the trained model."""
        if ready is not None:
            await self._run_when_ready(inbox, outbox, ready, task_status)
        elif self.model is None:
            raise ValueError(f"{self.name}: no model and no ready channel")
        else:
            await self._judge_all(self.model, inbox, outbox, task_status)

    async def _judge_all(
        self,
        model: JudgeModel,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        if isinstance(model, BatchJudgeModel) and self.batch_size > 1:
            await self._judge_batches(model, inbox, outbox, task_status)
            return

        async def handle(answer: Answer) -> Judgement:
            try:
                reply = await timed_call(
                    lambda: model.judge(judge_input(answer)), publish=self.publish, actor=self.name, model=model.name
                )
            except RunStopped:
                raise  # not this item's fault: the run stops, and the item stays pending
            except Exception as error:
                return Judgement(answer, self.name, model.name, Failed(describe_error(error)), raw="", at=time.time())
            judgement = _judgement(answer, self.name, reply, time.time())
            event = _read_event(judgement)
            if event is not None:
                self.publish(event)
            return judgement

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

    def _judge_batch(self, model: BatchJudgeModel, answers: Sequence[Answer]) -> list[Judgement]:
        timer = CallTimer(self.publish, self.name, model.name)
        try:
            replies = model.judge_batch([judge_input(answer) for answer in answers])
        except RunStopped:
            timer.failed()
            raise
        except Exception as error:
            timer.failed()
            failed = Failed(describe_error(error))
            now = time.time()
            return [Judgement(answer, self.name, model.name, failed, raw="", at=now) for answer in answers]
        timer.done()
        now = time.time()
        return [_judgement(answer, self.name, reply, now) for answer, reply in zip(answers, replies, strict=True)]

    async def _judge_batches(
        self,
        model: BatchJudgeModel,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
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
                        judged = await anyio.to_thread.run_sync(self._judge_batch, model, batch)
                        for judgement in judged:
                            await outbox.send(judgement)
                            items_out += 1
                            failed += isinstance(judgement.verdict, Failed)
                            event = _read_event(judgement)
                            if event is not None:
                                self.publish(event)
                            self.publish(ItemDone(self.name, judgement.id))
                finally:
                    self.publish(ActorFinished(self.name, items_in, items_out, failed))

    async def _run_when_ready(
        self,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
        ready: Receiver[StudentReady],
        task_status: TaskStatus[None],
    ) -> None:
        waiting: deque[Answer] = deque()
        model_ready = anyio.Event()
        model: JudgeModel | None = None
        internal = Channel[Answer](f"{self.name}.ready", capacity=64)

        async def wait_for_model() -> None:
            nonlocal model
            with ready:
                try:
                    message = await ready.receive()
                except anyio.EndOfStream:
                    message = None
            if message is not None:
                model = self.loader(message) if self.loader is not None else self.model
                self.publish(TrainingStatus(self.name, "loaded", message.model_ref))
            model_ready.set()

        async def feed() -> None:
            async with internal.sender:
                with inbox:
                    async for answer in inbox:
                        if not model_ready.is_set():
                            waiting.append(answer)
                            continue
                        await flush()
                        await internal.sender.send(answer)
                await model_ready.wait()
                await flush()

        async def flush() -> None:
            while waiting:
                await internal.sender.send(waiting.popleft())

        # Every stream is closed on every way out, including cancellation while waiting for the model.
        with inbox, ready, internal.receiver, internal.sender:
            async with outbox, anyio.create_task_group() as tg:
                tg.start_soon(wait_for_model)
                tg.start_soon(feed)
                task_status.started()
                await model_ready.wait()
                if model is None:
                    await self._fail_all(internal.receiver, outbox)
                else:
                    await self._judge_all(model, internal.receiver, outbox)

    async def _fail_all(self, answers: Receiver[Answer], outbox: Sender[Judgement]) -> None:
        async with outbox:
            self.publish(TrainingStatus(self.name, "missing", "no trained student: judging skipped"))
            reason = "no trained student (training produced no model)"
            async for answer in answers:
                failed = Failed(reason, kind="no_model")
                await outbox.send(Judgement(answer, self.name, "none", failed, raw="", at=time.time()))


class TeacherJudge(Judge):
    """The teacher: judges every answer (train and held-out) one call at a time, eight at once by default."""

    def __init__(
        self, model: JudgeModel, *, workers: int = 8, name: str = "teacher", publish: Publish = null_publish
    ) -> None:
        super().__init__(model, workers=workers, batch_size=1, name=name, publish=publish)


class StudentJudge(Judge):
    """A student: judges held-out answers, in batches when its model can, given now or trained later."""

    def __init__(
        self,
        model: JudgeModel | None = None,
        *,
        loader: Callable[[StudentReady], JudgeModel] | None = None,
        workers: int = 4,
        batch_size: int = 256,
        name: str = "student",
        publish: Publish = null_publish,
    ) -> None:
        super().__init__(model, loader=loader, workers=workers, batch_size=batch_size, name=name, publish=publish)
