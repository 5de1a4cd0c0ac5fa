"""StudentJudge: the cheap judge being distilled, run on held-out answers only.

The pipeline runs two: the base student (untrained) judges from the start, and the trained student, which
receives a `StudentReady` from the Trainer. Until then the trained student keeps the held-out answers it has
been sent (it must keep reading its inbox, or the stages upstream, which the Trainer is waiting on, would
stall); those are at most the held-out share of the questions. When training produced no student, each of
those answers gets a `Failed` verdict, so every item is still accounted for.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Channel, Receiver, Sender
from judgeflow.protocol.events import TrainingStatus
from judgeflow.protocol.messages import Answer, Judgement, StudentReady
from judgeflow.providers.base import JudgeModel

from ._judging import JudgeRunner, failed_judgement

__all__ = ["StudentJudge"]


class StudentJudge:
    """Judges answers with a student model, given now (``model``) or later (``loader`` + a ready message)."""

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
        if model is None and loader is None:
            raise ValueError(f"{name}: give a model, or a loader for the trained model")
        self.model = model
        self.loader = loader
        self.name = name
        self.publish = publish
        self._runner = JudgeRunner(name=name, workers=workers, batch_size=batch_size, publish=publish)

    async def run(
        self,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
        *,
        ready: Receiver[StudentReady] | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Judge every answer of ``inbox``; with ``ready``, first wait for the trained student."""
        if ready is None:
            if self.model is None:
                raise ValueError(f"{self.name}: no model and no ready channel")
            await self._runner.run(self.model, inbox, outbox, task_status=task_status)
            return
        await self._run_when_ready(inbox, outbox, ready, task_status)

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

        async def wait_for_student() -> None:
            nonlocal model
            with ready:
                try:
                    message = await ready.receive()
                except anyio.EndOfStream:
                    message = None
            if message is not None:
                loader = self.loader
                model = loader(message) if loader is not None else self.model
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

        # Every stream is closed on every way out, including cancellation while waiting for the student.
        with inbox, ready, internal.receiver, internal.sender:
            async with outbox, anyio.create_task_group() as tg:
                tg.start_soon(wait_for_student)
                tg.start_soon(feed)
                task_status.started()
                await model_ready.wait()
                if model is None:
                    await self._fail_all(internal.receiver, outbox)
                else:
                    await self._runner.run(model, internal.receiver, outbox)

    async def _fail_all(self, answers: Receiver[Answer], outbox: Sender[Judgement]) -> None:
        async with outbox:
            self.publish(TrainingStatus(self.name, "missing", "no trained student: judging skipped"))
            async for answer in answers:
                reason = "no trained student (training produced no model)"
                await outbox.send(failed_judgement(answer, self.name, "none", reason))
