"""Local stand-in models: the whole pipeline runs offline, fast, with numpy and scipy only.

Each class implements one protocol of :mod:`judgeflow.providers.base` the way a small, honest baseline would:
BM25 retrieval, a rule-based question writer, a weak extractive answerer, a rubric teacher that explains its
scores, and a linear student (ridge for a 1-5 teacher, logistic for right/wrong labels) that learns the
teacher's scores from lexical features. They are
deterministic, so an offline run is reproducible to the last score.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .answerer import NO_ANSWER, LocalExtractiveAnswerer
    from .bm25 import BM25Index
    from .questions import LocalQuestionWriter
    from .student import FEATURE_NAMES, LocalStudentJudge, LocalTrainerBackend, features, fit_student
    from .teacher import Grade, LocalTeacherJudge, grade
    from .text import Chunk, chunk_document, split_sentences, strip_markdown, tokenize

# Loaded on first use (PEP 562), so that a judge run against an API, which only needs `text`, does not import
# scipy for BM25.
_HOMES = {
    "NO_ANSWER": "answerer",
    "LocalExtractiveAnswerer": "answerer",
    "BM25Index": "bm25",
    "LocalQuestionWriter": "questions",
    "FEATURE_NAMES": "student",
    "LocalStudentJudge": "student",
    "LocalTrainerBackend": "student",
    "features": "student",
    "fit_student": "student",
    "Grade": "teacher",
    "LocalTeacherJudge": "teacher",
    "grade": "teacher",
    "Chunk": "text",
    "chunk_document": "text",
    "split_sentences": "text",
    "strip_markdown": "text",
    "tokenize": "text",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = [
    "FEATURE_NAMES",
    "NO_ANSWER",
    "BM25Index",
    "Chunk",
    "Grade",
    "LocalExtractiveAnswerer",
    "LocalQuestionWriter",
    "LocalStudentJudge",
    "LocalTeacherJudge",
    "LocalTrainerBackend",
    "chunk_document",
    "features",
    "fit_student",
    "grade",
    "split_sentences",
    "strip_markdown",
    "tokenize",
]
