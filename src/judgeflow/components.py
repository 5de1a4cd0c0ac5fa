"""The models a pipeline runs with, gathered in one object so that embedding apps can swap any of them.

`local_components` builds the embedded default: the bundled corpus, BM25 retrieval, the local question writer,
extractive answerer and rubric teacher, and the local student (its untrained prior as the base student).
Nothing here touches the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from judgeflow.config import PipelineConfig
from judgeflow.corpus import load_corpus
from judgeflow.protocol.messages import Document
from judgeflow.providers.base import (
    AnswerModel,
    JudgeModel,
    QuestionWriterModel,
    SearchIndex,
    TrainerBackend,
)

__all__ = ["Components", "local_components"]


@dataclass(frozen=True, slots=True)
class Components:
    """Everything a pipeline needs besides its configuration."""

    documents: Sequence[Document]
    writer: QuestionWriterModel
    index: SearchIndex
    answerer: AnswerModel
    teacher: JudgeModel
    trainer: TrainerBackend
    base_student: JudgeModel


def local_components(config: PipelineConfig) -> Components:
    """The embedded default: offline stand-ins for every model, over the bundled corpus."""
    from judgeflow.providers.local import (
        BM25Index,
        LocalExtractiveAnswerer,
        LocalQuestionWriter,
        LocalStudentJudge,
        LocalTeacherJudge,
        LocalTrainerBackend,
    )

    documents = load_corpus(config.cities)
    return Components(
        documents=documents,
        writer=LocalQuestionWriter(),
        index=BM25Index.from_documents(documents, max_words=config.chunk_words),
        answerer=LocalExtractiveAnswerer(),
        teacher=LocalTeacherJudge(),
        trainer=LocalTrainerBackend(),
        base_student=LocalStudentJudge.prior(name="student_base"),
    )
