"""QuestionWriter: documents in, question/reference pairs out, each with its train/held-out split.

The split is assigned here, at the source, by a seeded hash of the question id (see `judgeflow.core.splits`), so
every later stage can route on ``question.split`` and nothing downstream can move an item between splits.
"""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from judgeflow.core.splits import assign_split
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.events import ItemDone
from judgeflow.protocol.messages import Document, Question
from judgeflow.protocol.models import QuestionWriterModel

from ._pool import run_pool

__all__ = ["QuestionWriter"]


class QuestionWriter:
    """Writes up to ``questions_per_doc`` questions per document with ``model``."""

    def __init__(
        self,
        model: QuestionWriterModel,
        *,
        questions_per_doc: int = 16,
        seed: int = 0,
        train_fraction: float = 0.65,
        workers: int = 2,
        name: str = "question_writer",
        publish: Publish = null_publish,
    ) -> None:
        self.model = model
        self.questions_per_doc = questions_per_doc
        self.seed = seed
        self.train_fraction = train_fraction
        self.workers = workers
        self.name = name
        self.publish = publish

    async def run(
        self,
        inbox: Receiver[Document],
        outbox: Sender[Question],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        async def handle(document: Document) -> None:
            # A writer may make several model calls per document; it reports its own calls and their cost.
            pairs = await self.model.write(document, max_questions=self.questions_per_doc)
            for index, pair in enumerate(pairs):
                question_id = f"{document.id}-q{index:03d}"
                question = Question(
                    id=question_id,
                    question=pair.question,
                    reference=pair.reference,
                    split=assign_split(question_id, seed=self.seed, train_fraction=self.train_fraction),
                    doc_id=document.id,
                    source_text=pair.source_text,
                )
                await outbox.send(question)
                self.publish(ItemDone(self.name, question_id))
            return None

        await run_pool(
            name=self.name,
            workers=self.workers,
            inbox=inbox,
            outbox=outbox,
            handle=handle,
            item_id=lambda document: document.id,
            publish=self.publish,
            task_status=task_status,
        )
