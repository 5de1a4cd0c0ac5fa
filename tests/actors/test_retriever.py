"""The Retriever: each question with its top-k passages, in order."""

from __future__ import annotations

import anyio
import pytest

from doubles import (
    EchoIndex,
    drain,
    feed,
)
from judgeflow.actors import Retriever
from judgeflow.protocol import (
    Channel,
    Context,
    Question,
)

pytestmark = pytest.mark.anyio


async def test_retriever_attaches_top_k_passages_and_closes_its_outbox() -> None:
    inbox, outbox = Channel[Question]("in", 4), Channel[Context]("out", 4)
    questions = [Question(f"q{i}", f"question {i}", "ref", "test") for i in range(5)]
    async with anyio.create_task_group() as tg:
        await tg.start(Retriever(EchoIndex(), top_k=2, workers=3).run, inbox.receiver, outbox.sender)
        tg.start_soon(feed, inbox, questions)
        contexts = await drain(outbox)
    assert sorted(context.question.id for context in contexts) == [q.id for q in questions]
    assert all(len(context.passages) == 2 for context in contexts)
