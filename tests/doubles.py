"""Test doubles for the model seams: plain classes whose behaviour is a plain function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio

from judgeflow.core.parsing import judge_reply
from judgeflow.protocol import (
    Answer,
    Channel,
    Document,
    Event,
    EventBus,
    JudgeInput,
    Question,
    StudentReady,
    TrainingExample,
)
from judgeflow.protocol.messages import JudgeReply, Passage, QAPair, Reply


class FunctionJudge:
    """A judge whose reply text is ``reply(item)``; raising from ``reply`` simulates a provider failure."""

    def __init__(self, reply: Callable[[JudgeInput], str], *, name: str = "fn-judge", delay: float = 0.0) -> None:
        self.reply = reply
        self.name = name
        self.delay = delay
        self.calls = 0

    async def judge(self, item: JudgeInput) -> JudgeReply:
        self.calls += 1
        if self.delay:
            await anyio.sleep(self.delay)
        return judge_reply(self.reply(item), self.name)


class BatchFunctionJudge(FunctionJudge):
    """The same, also offering the vectorised ``judge_batch`` (records the batch sizes it saw)."""

    def __init__(self, reply: Callable[[JudgeInput], str], *, name: str = "batch-judge") -> None:
        super().__init__(reply, name=name)
        self.batches: list[int] = []

    def judge_batch(self, items: Sequence[JudgeInput]) -> list[JudgeReply]:
        self.batches.append(len(items))
        return [judge_reply(self.reply(item), self.name) for item in items]


class EchoIndex:
    name = "echo"

    async def search(self, query: str, *, k: int) -> list[Passage]:
        return [Passage(f"c{i}", "doc", f"{query} passage {i}", float(k - i)) for i in range(k)]


class FunctionAnswerer:
    def __init__(self, answer: Callable[[str], str], *, name: str = "fn-answerer") -> None:
        self.answer_fn = answer
        self.name = name

    async def answer(self, question: str, passages: Sequence[Passage]) -> Reply:
        return Reply(self.answer_fn(question), self.name)


class SentenceWriter:
    """Writes one question per sentence of a document."""

    name = "sentence-writer"

    async def write(self, document: Document, *, max_questions: int) -> list[QAPair]:
        sentences = [s.strip() for s in document.text.split(".") if s.strip()]
        return [QAPair(f"What about {s}?", s, s) for s in sentences[:max_questions]]


class RecordingBackend:
    """A trainer backend that remembers what it was given and returns a fixed judge."""

    name = "recording"

    def __init__(self, judge: FunctionJudge) -> None:
        self.judge = judge
        self.trained_on: list[TrainingExample] = []

    async def train(self, examples: Sequence[TrainingExample], *, out_dir: Path) -> StudentReady:
        self.trained_on = list(examples)
        return StudentReady("student_trained", str(out_dir / "student"), len(examples))

    def load(self, ready: StudentReady) -> FunctionJudge:
        return self.judge


def answer(item_id: str, *, split: str = "test", text: str = "an answer", reference: str = "the reference") -> Answer:
    assert split in ("train", "test")
    question = Question(item_id, f"question {item_id}?", reference, "train" if split == "train" else "test")
    return Answer(question, text, "test-model")


# -- channels and events ----------------------------------------------------------------------------------------

T = TypeVar("T")


async def drain(channel: Channel[T]) -> list[T]:
    """Everything ``channel`` carries, until its senders close it."""
    with channel.receiver:
        return [item async for item in channel.receiver]


async def feed(channel: Channel[T], items: Sequence[T]) -> None:
    """Send ``items`` into ``channel``, then close it."""
    async with channel.sender:
        for item in items:
            await channel.sender.send(item)


def events_of(bus: EventBus) -> list[Event]:
    """The events ``bus`` still buffers for a new subscriber, after closing the bus (for checking what was told)."""
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
    """5 when the answer is the reference, else 2: a judge whose verdicts a test can predict."""
    return "5.0\nmatches" if item.answer == item.reference else "2.0\ndiffers"
