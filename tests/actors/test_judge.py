"""The judge actor in its roles: verdicts as values, batches for batch judges, a student that waits to be trained."""

from __future__ import annotations

import anyio
import pytest

from doubles import (
    BatchFunctionJudge,
    FunctionJudge,
    answer,
    drain,
    feed,
    score_reply,
)
from judgeflow.actors import StudentJudge, TeacherJudge
from judgeflow.protocol import (
    Answer,
    Channel,
    Failed,
    Judgement,
    Scored,
    StudentReady,
    Unparsed,
)
from judgeflow.protocol.messages import JudgeInput

pytestmark = pytest.mark.anyio


async def test_teacher_turns_replies_into_verdicts_and_failures_into_values() -> None:
    def reply(item: JudgeInput) -> str:
        if item.answer == "explode":
            raise ConnectionError("reset by peer")
        if item.answer == "ramble":
            return "I would rather not say."
        return "4\nmostly right"  # a score with no decimal, then reasoning

    inbox, outbox = Channel[Answer]("in", 4), Channel[Judgement]("out", 4)
    answers = [answer("a", text="good"), answer("b", text="ramble"), answer("c", text="explode")]
    async with anyio.create_task_group() as tg:
        await tg.start(TeacherJudge(FunctionJudge(reply), workers=2).run, inbox.receiver, outbox.sender)
        tg.start_soon(feed, inbox, answers)
        judgements = {j.id: j for j in await drain(outbox)}
    assert judgements["a"].verdict == Scored(4.0, "mostly right", "4\nmostly right")
    assert isinstance(judgements["b"].verdict, Unparsed)
    assert judgements["b"].raw == "I would rather not say."
    assert isinstance(judgements["c"].verdict, Failed)
    assert "reset by peer" in judgements["c"].verdict.error
    assert {j.judge for j in judgements.values()} == {"teacher"}


async def test_batch_judge_is_used_in_batches() -> None:
    model = BatchFunctionJudge(score_reply)
    inbox, outbox = Channel[Answer]("in", 64), Channel[Judgement]("out", 64)
    answers = [answer(f"i{n}", text="the reference") for n in range(50)]
    for item in answers:
        inbox.sender.send_nowait(item)
    inbox.sender.close()
    async with anyio.create_task_group() as tg:
        await tg.start(StudentJudge(model, batch_size=16, name="student_base").run, inbox.receiver, outbox.sender)
        judgements = await drain(outbox)
    assert len(judgements) == 50
    assert sum(model.batches) == 50
    assert max(model.batches) == 16
    assert all(j.verdict == Scored(5.0, "matches", "5.0\nmatches") for j in judgements)


async def test_trained_student_waits_for_its_model_then_judges_everything() -> None:
    judge = FunctionJudge(score_reply, name="trained-model")
    inbox, outbox = Channel[Answer]("in", 2), Channel[Judgement]("out", 4)
    ready = Channel[StudentReady]("ready", 1)
    student = StudentJudge(loader=lambda _ready: judge, name="student_trained")
    answers = [answer(f"i{n}") for n in range(10)]
    async with anyio.create_task_group() as tg:
        await tg.start(lambda **kw: student.run(inbox.receiver, outbox.sender, ready=ready.receiver, **kw))
        # All answers arrive (more than the inbox holds) before the student exists: nothing may block.
        await feed(inbox, answers)
        assert judge.calls == 0
        async with ready.sender:
            await ready.sender.send(StudentReady("student_trained", "somewhere", 3))
        judgements = await drain(outbox)
    assert sorted(j.id for j in judgements) == sorted(a.id for a in answers)
    assert judge.calls == 10


async def test_trained_student_without_a_model_fails_each_item_explicitly() -> None:
    inbox, outbox = Channel[Answer]("in", 4), Channel[Judgement]("out", 4)
    ready = Channel[StudentReady]("ready", 1)
    student = StudentJudge(loader=lambda _ready: FunctionJudge(score_reply), name="student_trained")
    async with anyio.create_task_group() as tg:
        await tg.start(lambda **kw: student.run(inbox.receiver, outbox.sender, ready=ready.receiver, **kw))
        tg.start_soon(feed, inbox, [answer("x"), answer("y")])
        ready.sender.close()
        judgements = await drain(outbox)
    assert sorted(j.id for j in judgements) == ["x", "y"]
    assert all(isinstance(j.verdict, Failed) for j in judgements)
