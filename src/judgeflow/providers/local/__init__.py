"""Local stand-in models: the whole pipeline runs offline, fast, with numpy and scipy only.

Each class implements one protocol of :mod:`judgeflow.providers.base` the way a small, honest baseline would:
BM25 retrieval, a rule-based question writer, a weak extractive answerer, a rubric teacher that explains its
scores, and a ridge-regression student that learns the teacher's scores from lexical features. They are
deterministic, so an offline run is reproducible to the last score.
"""

from __future__ import annotations

from .answerer import NO_ANSWER, LocalExtractiveAnswerer
from .bm25 import BM25Index
from .questions import LocalQuestionWriter
from .student import FEATURE_NAMES, LocalStudentJudge, LocalTrainerBackend, features, fit_student
from .teacher import Grade, LocalTeacherJudge, grade
from .text import Chunk, chunk_document, split_sentences, strip_markdown, tokenize

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
