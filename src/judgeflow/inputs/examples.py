"""Training examples for a student, read from any teacher's judgements (``judgeflow distill``'s input).

The input is one of:

- a run folder's ``judgements.jsonl`` (or the run folder itself): the lines of the teacher (``teacher``, default
  ``"teacher"``; a file with one judge needs no name) whose status is ``ok`` are the examples. Those lines hold
  id, judge, score and raw text but not the texts judged, so they are joined by id with ``answers.jsonl`` in the
  same folder, or with another file of ``{"id", "question", "reference", "answer"}`` (the items given to
  ``judgeflow judge``, which writes the same judgement lines);
- a JSONL file of ``{"question", "reference", "answer", "score"}`` lines (``id`` and ``reasoning`` optional),
  ``score`` a number from 1 to 5: any teacher's judgements, or human labels (correct 5, wrong 1).

A line made with logprobs scoring also carries ``probs``, the teacher's probabilities of the scores 1..5 (its
``score`` is their weighted mean): the MiniLM student then learns that distribution (soft targets); without
``probs`` it learns the score (the numpy student always learns the score).

A judge run's Parquet output (``--out OUT.parquet``) is read as its JSONL lines would be, and so are items given
as CSV or Parquet to join it with (`judgeflow.inputs.tables`).

Every line is checked before training starts; a bad one is an `judgeflow.inputs.errors.InputError` naming file and
line (``FILE:LINE: what is wrong``; a Parquet file's row, ``FILE:row N: ...``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeflow.inputs.errors import InputError
from judgeflow.inputs.tables import iter_records
from judgeflow.protocol.messages import TrainingExample

__all__ = ["DistillSource", "read_examples"]

_TEXT_FIELDS = ("question", "reference", "answer")


@dataclass(frozen=True, slots=True)
class DistillSource:
    """What was read: the examples, and where they came from (for the summary line)."""

    examples: list[TrainingExample]
    path: Path
    kind: str
    teacher: str | None = None
    skipped: int = 0


def _first_object(path: Path) -> dict[str, Any]:
    for _, data in iter_records(path):
        return data
    raise InputError(path, None, "no examples: the file is empty")


def _score(data: dict[str, Any], path: Path, line: int) -> float:
    value = data.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(path, line, f"field 'score' must be a number from 1 to 5, got {value!r}")
    if not 1.0 <= value <= 5.0:
        raise InputError(path, line, f"field 'score' must be from 1 to 5, got {value}")
    return float(value)


def _texts(data: dict[str, Any], path: Path, line: int) -> tuple[str, str, str]:
    missing = [key for key in _TEXT_FIELDS if key not in data]
    if missing:
        fields = ", ".join(repr(key) for key in missing)
        raise InputError(path, line, f"missing field{'s' if len(missing) > 1 else ''} {fields}")
    for key in _TEXT_FIELDS:
        if not isinstance(data[key], str):
            raise InputError(path, line, f"field {key!r} must be a string, got {type(data[key]).__name__}")
    return data["question"], data["reference"], data["answer"]


def _probs(data: dict[str, Any], path: Path, line: int) -> tuple[float, ...] | None:
    """A judgement's ``probs`` (the teacher's probabilities of the scores 1..5, from logprobs scoring), renormalised;
    None when the line has none."""
    value = data.get("probs")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 5
        or not all(
            isinstance(p, int | float) and not isinstance(p, bool) and math.isfinite(p) and p >= 0 for p in value
        )
        or sum(value) <= 0
    ):
        raise InputError(path, line, f"field 'probs' must be 5 probabilities (of the scores 1..5), got {value!r}")
    total = float(sum(value))
    return tuple(float(p) / total for p in value)


def _id(data: dict[str, Any], path: Path, line: int, *, default: str) -> str:
    value = data.get("id", default)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(path, line, f"field 'id' must be a string or an integer, got {type(value).__name__}")
    return str(value)


def _example(
    key: str, question: str, reference: str, answer: str, score: float, probs: tuple[float, ...] | None
) -> TrainingExample:
    return TrainingExample(
        id=key, messages=(), question=question, reference=reference, answer=answer, score=score, probs=probs
    )


def _read_scored(path: Path) -> DistillSource:
    examples: list[TrainingExample] = []
    for line, data in iter_records(path):
        question, reference, answer = _texts(data, path, line)
        key = _id(data, path, line, default=f"line-{line}")
        examples.append(_example(key, question, reference, answer, _score(data, path, line), _probs(data, path, line)))
    return DistillSource(examples, path, "scored items")


def _read_answers(path: Path) -> dict[str, tuple[str, str, str]]:
    texts: dict[str, tuple[str, str, str]] = {}
    for line, data in iter_records(path):
        if "id" not in data:
            raise InputError(path, line, "missing field 'id'")
        texts[_id(data, path, line, default="")] = _texts(data, path, line)
    return texts


def _read_judgements(path: Path, *, answers: Path | None, teacher: str | None) -> DistillSource:
    answers = answers if answers is not None else path.parent / "answers.jsonl"
    if not answers.is_file():
        raise InputError(
            path,
            None,
            f"judgement lines hold no question, reference or answer, and {answers} does not exist: "
            "give the answers (or the judged items) with --answers",
        )
    judges: dict[str, int] = {}
    for line, data in iter_records(path):
        judge = data.get("judge")
        if not isinstance(judge, str):
            raise InputError(path, line, "missing field 'judge' (expected a judgements.jsonl line)")
        judges[judge] = judges.get(judge, 0) + 1
    if teacher is None:
        if "teacher" in judges or not judges:
            teacher = "teacher"
        elif len(judges) == 1:
            teacher = next(iter(judges))
        else:
            names = ", ".join(sorted(judges))
            raise InputError(path, None, f"several judges here ({names}): name the teacher with --teacher")
    if teacher not in judges:
        raise InputError(path, None, f"no judgements by {teacher!r} (judges here: {', '.join(sorted(judges))})")
    texts = _read_answers(answers)
    examples: list[TrainingExample] = []
    seen: set[str] = set()
    skipped = 0
    for line, data in iter_records(path):
        if data.get("judge") != teacher:
            continue
        if data.get("status") != "ok":
            skipped += 1
            continue
        if "id" not in data:
            raise InputError(path, line, "missing field 'id'")
        key = _id(data, path, line, default="")
        if key in seen:
            raise InputError(path, line, f"a second judgement of id {key!r} by {teacher!r}")
        seen.add(key)
        if key not in texts:
            raise InputError(path, line, f"id {key!r} is not in {answers}")
        examples.append(_example(key, *texts[key], _score(data, path, line), _probs(data, path, line)))
    return DistillSource(examples, path, "judgements", teacher=teacher, skipped=skipped)


def read_examples(path: Path, *, answers: Path | None = None, teacher: str | None = None) -> DistillSource:
    """The training examples in ``path`` (a run folder, its judgements.jsonl, or a scored-items JSONL file).

    The kind of file is told by its first line: judgement lines have ``judge`` and ``status``, scored items have
    ``question``, ``reference`` and ``answer``. Raises `InputError` (``FILE:LINE: ...``) for anything unusable,
    including a file with no usable example.
    """
    if path.is_dir():
        path = path / "judgements.jsonl"
    first = _first_object(path)
    if "judge" in first and "status" in first:
        source = _read_judgements(path, answers=answers, teacher=teacher)
    else:
        source = _read_scored(path)
    if not source.examples:
        raise InputError(path, None, "no usable examples (no ok judgements by the teacher)")
    return source
