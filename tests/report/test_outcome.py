"""Whether a run measured anything: the first stage that produced nothing, and why each agreement is missing."""

from __future__ import annotations

import dataclasses

from judgeflow.core.stages import StageCount, nothing_usable
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed
from judgeflow.report.outcome import PipelineCounts, pipeline_outcome


def _count(scored: int, unparsed: int = 0, failed: int = 0, raw: str = "Scores in between: 4.0") -> StageCount:
    count = StageCount()
    for i in range(scored):
        count.add_verdict(f"s{i}", Scored(4.0, "", "4"), "4")
    for i in range(unparsed):
        count.add_verdict(f"u{i}", Unparsed(raw, "no score found"), raw)
    for _ in range(failed):
        count.add_verdict("f", Failed("boom"), "")
    return count


GOOD = PipelineCounts(
    documents=2,
    questions=10,
    held_out=4,
    writer=None,
    judges={"teacher": _count(10), "student_base": _count(4), "student_trained": _count(4)},
    reference="teacher",
    reference_held_out_scored=4,
    training_examples=6,
    training_skipped=0,
    training_error=None,
    paired={"student_trained": 4, "student_base": 4},
)


def test_a_run_that_measured_something_has_no_failure() -> None:
    assert pipeline_outcome(GOOD) == (None, {})


def test_no_question_names_the_writer_with_its_counts_and_a_sample() -> None:
    writer = StageCount()
    writer.add_reply("paris#3", usable=False, reason="no question/answer pair found", raw="Paris is  lovely.\n")
    counts = dataclasses.replace(GOOD, questions=0, held_out=0, writer=writer, paired={"student_base": 0})
    failure, missing = pipeline_outcome(counts)
    assert failure is not None
    assert failure.stage == "question_writer"
    assert failure.message == (
        "stage question_writer produced no question (1 replies, 0 usable, 1 unusable, 0 failed calls; "
        "2 document(s)); a sample reply (paris#3: no question/answer pair found): 'Paris is lovely.'"
    )
    assert missing == {"agreement.student_base": "no question fell in the held-out split"}


def test_a_teacher_that_scored_nothing_held_out_is_the_failure() -> None:
    counts = dataclasses.replace(
        GOOD,
        judges={**GOOD.judges, "teacher": _count(0, unparsed=16)},
        reference_held_out_scored=0,
        training_examples=0,
        training_skipped=10,
        paired={"student_trained": 0, "student_base": 0},
    )
    failure, missing = pipeline_outcome(counts)
    assert failure is not None
    assert failure.stage == "teacher"
    assert "16 replies, 0 usable, 16 unusable" in failure.message
    assert "Scores in between: 4.0" in failure.message
    assert set(missing.values()) == {"the teacher scored no held-out answer"}


def test_no_training_example_then_no_trained_model() -> None:
    counts = dataclasses.replace(
        GOOD, training_examples=0, training_skipped=6, paired={**GOOD.paired, "student_trained": 0}
    )
    failure, missing = pipeline_outcome(counts)
    assert failure is not None
    assert failure.stage == "trainer"
    assert "no training example" in failure.message
    assert missing == {"agreement.student_trained": "no trained student (no training example)"}
    failed = dataclasses.replace(
        GOOD, training_error="FineTuneError: boom", paired={**GOOD.paired, "student_trained": 0}
    )
    failure, missing = pipeline_outcome(failed)
    assert failure is not None
    assert failure.message == "stage trainer produced no trained model: FineTuneError: boom"
    assert missing == {"agreement.student_trained": "no trained student (FineTuneError: boom)"}


def test_students_that_scored_nothing_end_the_run() -> None:
    judges = {**GOOD.judges, "student_base": _count(0, unparsed=4), "student_trained": _count(0, failed=4)}
    counts = dataclasses.replace(GOOD, judges=judges, paired={"student_trained": 0, "student_base": 0})
    failure, missing = pipeline_outcome(counts)
    assert failure is not None
    assert failure.stage == "students"
    assert missing["agreement.student_trained"] == nothing_usable(
        "student_trained", "scored verdict", _count(0, failed=4)
    )
    # One student measured is a result: the other's absence is explained, not fatal.
    some = dataclasses.replace(counts, paired={"student_trained": 0, "student_base": 3})
    assert pipeline_outcome(some)[0] is None


def test_parse_rate_is_none_without_replies_never_zero() -> None:
    assert StageCount().parse_rate is None
    assert StageCount().as_dict()["parse_rate"] is None
    count = _count(3, unparsed=1, failed=2)
    assert count.as_dict() == {
        "replies": 4,
        "usable": 3,
        "unusable": 1,
        "failed": 2,
        "parse_rate": 0.75,
        "sample_unusable": {"item": "u0", "reason": "no score found", "raw": "Scores in between: 4.0"},
    }
