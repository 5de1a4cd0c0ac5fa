"""What every actor guarantees through its worker pool: failures are items, cancellation closes outboxes."""

from __future__ import annotations

import anyio
import pytest

from doubles import (
    FunctionAnswerer,
    FunctionJudge,
    answer,
    drain,
    feed,
    score_reply,
)
from judgeflow.actors import Answerer, TeacherJudge
from judgeflow.protocol import (
    ActorFinished,
    Answer,
    Channel,
    Context,
    EventBus,
    ItemFailed,
    Judgement,
    Question,
)

pytestmark = pytest.mark.anyio


async def test_a_failing_item_is_published_and_the_others_go_on() -> None:
    bus = EventBus()
    events = bus.subscribe_nowait(buffer=100)

    def answer_or_fail(question: str) -> str:
        if "bad" in question:
            raise RuntimeError("model fell over")
        return "fine"

    inbox, outbox = Channel[Context]("in", 4), Channel[Answer]("out", 4)
    questions = [Question(name, name, "ref", "test") for name in ("ok-1", "bad", "ok-2")]
    contexts = [Context(question, ()) for question in questions]
    actor = Answerer(FunctionAnswerer(answer_or_fail), workers=1, publish=bus.publish)
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run, inbox.receiver, outbox.sender)
        tg.start_soon(feed, inbox, contexts)
        answers = await drain(outbox)
    bus.close()
    with events:
        seen = [event async for event in events]
    assert [a.text for a in answers] == ["fine", "fine"]
    assert ItemFailed("answerer", "bad", "RuntimeError: model fell over") in seen
    assert ActorFinished("answerer", 3, 2, 1) in seen


async def test_cancelling_an_actor_closes_its_outbox_and_propagates() -> None:
    inbox, outbox = Channel[Answer]("in", 4), Channel[Judgement]("out", 0)
    slow = FunctionJudge(score_reply, delay=10.0)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            await tg.start(TeacherJudge(slow, workers=2).run, inbox.receiver, outbox.sender)
            await inbox.sender.send(answer("stuck"))
            await anyio.sleep(0.01)
            scope.cancel()
    assert scope.cancelled_caught
    inbox.sender.close()
    with outbox.receiver, pytest.raises(anyio.EndOfStream):
        outbox.receiver.receive_nowait()
