"""Local stand-in models: the whole pipeline runs offline, fast, with numpy and scipy only.

Each class implements one protocol of :mod:`judgeflow.protocol.models` the way a small, honest baseline would:
BM25 retrieval, a rule-based question writer, a weak extractive answerer, a rubric teacher that explains its
scores, and a linear student (ridge for a 1-5 teacher, logistic for right/wrong labels) that learns the
teacher's scores from lexical features. They are
deterministic, so an offline run is reproducible to the last score.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .answerer import HEDGES, NO_ANSWER, LocalExtractiveAnswerer
    from .bm25 import BM25Index
    from .questions import LocalQuestionWriter
    from .student import FEATURE_NAMES, LocalStudentJudge, LocalTrainerBackend, features, fit_student
    from .teacher import Grade, LocalTeacherJudge, grade

# Loaded on first use (PEP 562): naming one stand-in imports only its module (BM25 needs scipy; the others do not).
_HOMES = {
    "HEDGES": "answerer",
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
    "HEDGES",
    "NO_ANSWER",
    "BM25Index",
    "Grade",
    "LocalExtractiveAnswerer",
    "LocalQuestionWriter",
    "LocalStudentJudge",
    "LocalTeacherJudge",
    "LocalTrainerBackend",
    "features",
    "fit_student",
    "grade",
]
