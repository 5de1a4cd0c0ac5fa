"""The messages that flow between actors, one type per stage output.

Data flows one way: documents -> questions -> contexts -> answers -> judgements -> training examples ->
student-ready -> score updates. Each message carries forward what later stages need (an `Answer` holds its
`Question`, a `Judgement` holds its `Answer`), so no stage has to look anything up in shared state. Messages are
frozen, slotted dataclasses: cheap to create, safe to share between tasks, impossible to mutate by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from .verdicts import Verdict

__all__ = [
    "Answer",
    "ChatMessage",
    "Context",
    "Document",
    "JudgeInput",
    "JudgeReply",
    "Judgement",
    "Passage",
    "QAPair",
    "Question",
    "Reply",
    "ScoreUpdate",
    "Split",
    "StudentReady",
    "TrainingExample",
    "Usage",
]

Split: TypeAlias = Literal["train", "test"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a provider call consumed; local models report none."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Reply:
    """What a model said, with what it cost to say it."""

    text: str
    model: str
    usage: Usage | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class JudgeReply:
    """A judge's reply: the verdict read from it (once, where the reply was received), its text, and its cost.

    ``text`` is what the judge said, kept whatever the verdict (an `Unparsed` reply is reported with it).
    """

    verdict: Verdict
    text: str
    model: str
    usage: Usage | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Document:
    """A source text questions are written from (a bundled article, a Wikipedia page, a user file)."""

    id: str
    title: str
    text: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class QAPair:
    """A question and its reference answer as a question writer drafts them, before ids and splits."""

    question: str
    reference: str
    source_text: str = ""


@dataclass(frozen=True, slots=True)
class Question:
    """A question with its reference answer and the split it belongs to (decided once, by seeded hash)."""

    id: str
    question: str
    reference: str
    split: Split
    doc_id: str = ""
    source_text: str = ""


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved chunk of a document, with its retrieval score."""

    chunk_id: str
    doc_id: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Context:
    """A question with the passages retrieved for it (top-k, best first)."""

    question: Question
    passages: tuple[Passage, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer a (cheap) model gave to a question from its retrieved context."""

    question: Question
    text: str
    model: str
    passages: tuple[Passage, ...] = ()
    usage: Usage | None = None
    label: bool | float | None = None  # a person's verdict on this answer (true/false or 1-5), if the item has one

    @property
    def id(self) -> str:
        return self.question.id


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """The three texts a reference-based judge looks at."""

    question: str
    reference: str
    answer: str


@dataclass(frozen=True, slots=True)
class Judgement:
    """One judge's verdict on one answer. ``raw`` is the judge's reply text ("" when the call failed)."""

    answer: Answer
    judge: str
    model: str
    verdict: Verdict
    raw: str
    usage: Usage | None = None
    at: float | None = None  # wall-clock time (Unix seconds) the verdict was made, for throughput over time

    @property
    def id(self) -> str:
        return self.answer.question.id


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """A teacher judgement turned into a fine-tuning example (OpenAI chat format plus the structured item).

    ``probs``: the teacher's probabilities of the scores 1..5 when it was asked with logprobs scoring (``score``
    is then their weighted mean); a local student learns the whole distribution from them.
    """

    id: str
    messages: tuple[ChatMessage, ...]
    question: str
    reference: str
    answer: str
    score: float
    probs: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class StudentReady:
    """Training finished: where the trained student is and how to load it."""

    student: str
    model_ref: str
    n_train: int
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoreUpdate:
    """Agreement of one student with the teacher so far (point estimates; CIs when ``final``)."""

    judge: str
    reference_judge: str
    n: int
    unparsed: int
    failed: int
    metrics: Mapping[str, float | None]
    final: bool = False
