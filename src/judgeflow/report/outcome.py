"""Whether a distillation run measured anything, and why each missing number is missing.

A run can finish every stage and still measure nothing: the question writer's replies may hold no question, the
teacher may score no held-out answer, the trainer may get no example or make no model, and no student verdict may
pair with a teacher's. `pipeline_outcome` looks at the run's counts in the order the data flows and returns the
first stage that produced nothing the next stage could use (its message names the stage, the counts and a sample
reply: `judgeflow.core.stages.nothing_usable`), and, for every agreement that could not be computed, the reason,
which ``report.json`` keeps under ``missing``. Pure: counts in, words out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from judgeflow.core.stages import StageCount, nothing_usable

__all__ = ["PipelineCounts", "StageFailure", "pipeline_outcome"]


@dataclass(frozen=True, slots=True)
class StageFailure:
    stage: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"stage": self.stage, "message": self.message}


@dataclass(frozen=True, slots=True)
class PipelineCounts:
    """What a finished pipeline produced, stage by stage."""

    documents: int
    questions: int
    held_out: int
    writer: StageCount | None
    judges: Mapping[str, StageCount]
    reference: str
    reference_held_out_scored: int
    training_examples: int
    training_skipped: int
    training_error: str | None
    paired: Mapping[str, int] = field(default_factory=dict)
    """Per student: items it and the reference both scored (the n of its agreement)."""


def pipeline_outcome(counts: PipelineCounts) -> tuple[StageFailure | None, dict[str, str]]:
    """The first stage that produced nothing usable (or None), and why each student's agreement is missing."""
    failure = _first_failure(counts)
    missing: dict[str, str] = {}
    for student, n in counts.paired.items():
        if n == 0:
            missing[f"agreement.{student}"] = _why_unpaired(counts, student)
    return failure, missing


def _first_failure(counts: PipelineCounts) -> StageFailure | None:
    reference = counts.reference
    if counts.questions == 0:
        writer = counts.writer or StageCount()
        extra = f"{counts.documents} document(s)"
        return StageFailure("question_writer", nothing_usable("question_writer", "question", writer, extra=extra))
    if counts.held_out == 0:
        message = (
            f"no held-out question: all {counts.questions} question(s) fell in the train split, so no student can "
            "be compared with the teacher (ask for more questions, questions_per_doc, or lower train_fraction)"
        )
        return StageFailure("split", message)
    teacher = counts.judges.get(reference, StageCount())
    if counts.reference_held_out_scored == 0:
        what = "scored verdict on a held-out answer"
        return StageFailure(reference, nothing_usable(reference, what, teacher))
    if counts.training_examples == 0:
        extra = f"{counts.training_skipped} teacher verdict(s) on train answers were unparsed or failed"
        return StageFailure("trainer", nothing_usable(reference, "training example", teacher, extra=extra))
    if counts.training_error is not None:
        return StageFailure("trainer", f"stage trainer produced no trained model: {counts.training_error}")
    if counts.paired and not any(counts.paired.values()):
        reasons = "; ".join(f"{student}: {_why_unpaired(counts, student)}" for student in counts.paired)
        return StageFailure("students", f"no student verdict could be compared with the {reference}'s ({reasons})")
    return None


def _why_unpaired(counts: PipelineCounts, student: str) -> str:
    if counts.held_out == 0:
        return "no question fell in the held-out split"
    if counts.reference_held_out_scored == 0:
        return f"the {counts.reference} scored no held-out answer"
    if student == "student_trained" and (counts.training_examples == 0 or counts.training_error is not None):
        cause = counts.training_error or "no training example"
        return f"no trained student ({cause})"
    count = counts.judges.get(student, StageCount())
    if count.usable == 0:
        return nothing_usable(student, "scored verdict", count)
    return f"none of its {count.usable} scored item(s) was also scored by the {counts.reference}"
