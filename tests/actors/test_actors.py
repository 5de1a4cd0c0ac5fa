"""Each actor on its own, with in-memory channels and test doubles for its models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from doubles import BatchFunctionJudge, EchoIndex, FunctionAnswerer, FunctionJudge, RecordingBackend, answer
from judgeflow.actors import Answerer, Retriever, Router, Scorer, StudentJudge, TeacherJudge, Trainer
from judgeflow.protocol import (
    ActorFinished,
    Answer,
    Channel,
    Context,
    Event,
    EventBus,
    Failed,
    ItemFailed,
    Judgement,
    Question,
    Scored,
    ScoreUpdate,
    StudentReady,
    Unparsed,
)
from judgeflow.protocol.messages import ChatMessage, JudgeInput, TrainingExample

pytestmark = pytest.mark.anyio
T = TypeVar("T")


async def drain(channel: Channel[T]) -> list[T]:
    with channel.receiver:
        return [item async for item in channel.receiver]


async def feed(channel: Channel[T], items: Sequence[T]) -> None:
    async with channel.sender:
        for item in items:
            await channel.sender.send(item)


def events_of(bus: EventBus) -> list[Event]:
    stream = bus.subscribe_nowait(buffer=10_000)
    bus.close()
    events: list[Event] = []
    with stream:
        while True:
            try:
                events.append(stream.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return events


def score_reply(item: JudgeInput) -> str:
    return "5.0\nmatches" if item.answer == item.reference else "2.0\ndiffers"


async def test_retriever_attaches_top_k_passages_and_closes_its_outbox() -> None:
    inbox, outbox = Channel[Question]("in", 4), Channel[Context]("out", 4)
    questions = [Question(f"q{i}", f"question {i}", "ref", "test") for i in range(5)]
    async with anyio.create_task_group() as tg:
        await tg.start(Retriever(EchoIndex(), top_k=2, workers=3).run, inbox.receiver, outbox.sender)
        tg.start_soon(feed, inbox, questions)
        contexts = await drain(outbox)
    assert sorted(context.question.id for context in contexts) == [q.id for q in questions]
    assert all(len(context.passages) == 2 for context in contexts)


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


async def test_trainer_learns_only_from_scored_train_judgements(tmp_path: Path) -> None:
    backend = RecordingBackend(FunctionJudge(score_reply))
    inbox, outbox = Channel[Judgement]("in", 4), Channel[StudentReady]("out", 1)
    good = Judgement(answer("a", split="train"), "teacher", "t", Scored(4.0, "ok", "4.0\nok"), "4.0\nok")
    unparsed = Judgement(answer("b", split="train"), "teacher", "t", Unparsed("?", "no score found"), "?")
    recorded: list[TrainingExample] = []
    async with anyio.create_task_group() as tg:
        trainer = Trainer(backend, out_dir=tmp_path, record=recorded.append)
        await tg.start(trainer.run, inbox.receiver, outbox.sender)
        tg.start_soon(feed, inbox, [good, unparsed])
        ready = await drain(outbox)
    assert [example.id for example in backend.trained_on] == ["a"]
    assert ready == [StudentReady("student_trained", str(tmp_path / "student"), 1)]
    assert recorded == backend.trained_on
    assert recorded[0].messages[-1] == ChatMessage("assistant", "4.0\nok")


async def test_trainer_refuses_a_held_out_item(tmp_path: Path) -> None:
    inbox, outbox = Channel[Judgement]("in", 4), Channel[StudentReady]("out", 1)
    leaked = Judgement(answer("z", split="test"), "teacher", "t", Scored(4.0, "", "4"), "4")
    trainer = Trainer(RecordingBackend(FunctionJudge(score_reply)), out_dir=tmp_path)

    async def run_trainer() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(trainer.run, inbox.receiver, outbox.sender)
            tg.start_soon(feed, inbox, [leaked])
            await drain(outbox)

    with pytest.raises(ExceptionGroup) as caught:
        await run_trainer()
    assert caught.group_contains(ValueError, match="held-out item z")


def _judgement(item_id: str, judge: str, score: float | None) -> Judgement:
    verdict: Scored | Unparsed = (
        Scored(score, "", str(score)) if score is not None else Unparsed("??", "no score found")
    )
    return Judgement(answer(item_id), judge, "m", verdict, verdict.raw)


async def test_scorer_pairs_judgements_by_item_whatever_their_order() -> None:
    teacher = [1.0, 2.0, 3.0, 4.0, 5.0, 3.0]
    student = [1.0, 2.0, 3.5, 4.0, 4.5, None]
    items = [_judgement(f"i{n}", "student_base", s) for n, s in enumerate(student)]
    items += [_judgement(f"i{n}", "teacher", t) for n, t in enumerate(teacher)]
    inbox, outbox = Channel[Judgement]("in", 4), Channel[ScoreUpdate]("out", 64)
    scorer = Scorer(students=("student_base",), difference=None, n_resamples=200)
    async with anyio.create_task_group() as tg:
        await tg.start(scorer.run, inbox.receiver, outbox.sender)
        tg.start_soon(feed, inbox, items)
        updates = await drain(outbox)
    assert scorer.result is not None
    base = scorer.result.agreements["student_base"]
    assert base.n == 5
    assert scorer.result.tallies["student_base"].unparsed == 1
    assert updates[-1].final
    assert updates[-1].n == 5
    pearson = base.metrics["pearson"].value
    assert pearson is not None
    assert 0.9 < pearson < 1.0
    assert not scorer.book._pending  # every item had both verdicts: nothing is kept


async def test_router_records_every_item_and_routes_by_predicate() -> None:
    recorded: list[int] = []
    source, evens, odds = Channel[int]("in", 4), Channel[int]("even", 16), Channel[int]("odd", 16)
    router = Router[int](lambda n: (0,) if n % 2 == 0 else (1,), record=recorded.append)
    async with anyio.create_task_group() as tg:
        await tg.start(router.run, source.receiver, [evens.sender, odds.sender])
        await feed(source, list(range(7)))
    assert recorded == list(range(7))
    assert await drain(evens) == [0, 2, 4, 6]
    assert await drain(odds) == [1, 3, 5]


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
