"""Retriever: questions in, the top-k passages for each question out.

The index is built before the pipeline starts (it needs the whole corpus), so the actor itself only searches;
searching is cheap locally (BM25) and a network call with a provider's embeddings, so it runs with workers.
"""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.messages import Context, Question
from judgeflow.protocol.models import SearchIndex

from ._pool import run_pool

__all__ = ["Retriever"]


class Retriever:
    """Retrieves the ``top_k`` passages of ``index`` for each question (the recipe uses top-2)."""

    def __init__(
        self,
        index: SearchIndex,
        *,
        top_k: int = 2,
        workers: int = 2,
        name: str = "retriever",
        publish: Publish = null_publish,
    ) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.index = index
        self.top_k = top_k
        self.workers = workers
        self.name = name
        self.publish = publish

    async def run(
        self,
        inbox: Receiver[Question],
        outbox: Sender[Context],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        async def handle(question: Question) -> Context:
            passages = await self.index.search(question.question, k=self.top_k)
            return Context(question=question, passages=tuple(passages))

        await run_pool(
            name=self.name,
            workers=self.workers,
            inbox=inbox,
            outbox=outbox,
            handle=handle,
            item_id=lambda question: question.id,
            publish=self.publish,
            task_status=task_status,
        )
