"""The seams between actors and models: one small protocol per role.

Actors see only these protocols. A local stand-in, an OpenAI-compatible server and a Hugging Face endpoint all
implement the same few methods, so an actor never knows (or cares) which it is talking to, and a test double is a
plain class with one method. Each model has a ``name`` that shows up in events, judgements and reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from judgeflow.protocol.calls import ChatRequest, ChatResult, ErrorDecision, LimitKey
from judgeflow.protocol.messages import (
    Document,
    JudgeInput,
    JudgeReply,
    Passage,
    QAPair,
    Reply,
    StudentReady,
    TrainingExample,
)

__all__ = [
    "AnswerModel",
    "BatchJudgeModel",
    "ChatModel",
    "Embedder",
    "JudgeModel",
    "QuestionWriterModel",
    "SearchIndex",
    "TrainerBackend",
]


class QuestionWriterModel(Protocol):
    """Drafts question/reference pairs from a document."""

    name: str

    async def write(self, document: Document, *, max_questions: int) -> Sequence[QAPair]: ...


class SearchIndex(Protocol):
    """Finds the passages most relevant to a query (BM25 locally, embeddings with a provider)."""

    name: str

    async def search(self, query: str, *, k: int) -> Sequence[Passage]: ...


class AnswerModel(Protocol):
    """Answers a question from retrieved passages (the cheap model under evaluation)."""

    name: str

    async def answer(self, question: str, passages: Sequence[Passage]) -> Reply: ...


class JudgeModel(Protocol):
    """Judges one answer against its reference: the verdict, read once from the reply, with the reply itself."""

    name: str

    async def judge(self, item: JudgeInput) -> JudgeReply: ...


@runtime_checkable
class BatchJudgeModel(Protocol):
    """A judge that is cheaper per item in batches (a local student): the actor batches when it can."""

    name: str

    def judge_batch(self, items: Sequence[JudgeInput]) -> list[JudgeReply]: ...


class TrainerBackend(Protocol):
    """Turns a teacher's training examples into a student, and loads a trained student back."""

    name: str

    async def train(self, examples: Sequence[TrainingExample], *, out_dir: Path) -> StudentReady: ...

    def load(self, ready: StudentReady) -> JudgeModel: ...


class ChatModel(Protocol):
    """One chat-completions model behind one provider: the seam the LLM roles are built on."""

    name: str
    key: LimitKey

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    def classify(self, error: BaseException) -> ErrorDecision: ...


class Embedder(Protocol):
    """Turns texts into vectors (for dense retrieval instead of BM25)."""

    name: str
    key: LimitKey

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    def classify(self, error: BaseException) -> ErrorDecision: ...
