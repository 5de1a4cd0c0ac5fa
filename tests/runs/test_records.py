"""The JSON line of each message: the contract of judgements.jsonl and of `judgeflow judge`'s output."""

from __future__ import annotations

import json

from doubles import answer
from judgeflow.protocol.messages import Answer, Judgement, Passage, Question, Usage
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed, Verdict
from judgeflow.runs.records import (
    answer_record,
    judgement_from_record,
    judgement_record,
    question_record,
    usage_record,
)


def test_a_scored_judgement_has_its_score_and_raw_reply() -> None:
    judgement = Judgement(answer("a", split="train"), "teacher", "gpt-4", Scored(4.5, "ok", "4.5\nok"), "4.5\nok")
    record = judgement_record(judgement)
    assert record == {
        "id": "a",
        "judge": "teacher",
        "model": "gpt-4",
        "score": 4.5,
        "status": "ok",
        "raw": "4.5\nok",
        "split": "train",
    }
    assert "split" not in judgement_record(judgement, with_split=False)


def test_unparsed_and_failed_judgements_have_no_score_and_say_why() -> None:
    unparsed = Judgement(answer("b"), "student", "m", Unparsed("no idea", "no score found"), "no idea")
    failed = Judgement(answer("c"), "student", "m", Failed("TimeoutError: 60 s"), "")
    assert judgement_record(unparsed) == {
        "id": "b",
        "judge": "student",
        "model": "m",
        "score": None,
        "status": "unparsed",
        "raw": "no idea",
        "split": "test",
        "reason": "no score found",
    }
    record = judgement_record(failed)
    assert (record["score"], record["status"], record["error"]) == (None, "failed", "TimeoutError: 60 s")


def test_usage_is_recorded_when_known() -> None:
    judgement = Judgement(answer("d"), "teacher", "gpt-4", Scored(3.0, "", "3"), "3", Usage(120, 7))
    assert judgement_record(judgement)["usage"] == {"input_tokens": 120, "output_tokens": 7}
    assert usage_record(None) is None


def test_a_record_reads_back_as_the_same_verdict() -> None:
    cases: list[tuple[Verdict, str]] = [
        (Scored(2.0, "", "2"), "2"),
        (Unparsed("??", "no score found"), "??"),
        (Failed("ConnectionError"), ""),
    ]
    for verdict, raw in cases:
        record = json.loads(json.dumps(judgement_record(Judgement(answer("e"), "j", "m", verdict, raw))))
        back = judgement_from_record(record)
        assert (back.id, back.judge, back.model, back.raw) == ("e", "j", "m", raw)
        if isinstance(verdict, Scored):
            assert isinstance(back.verdict, Scored)
            assert back.verdict.score == verdict.score
        else:
            assert back.verdict == verdict


def test_questions_and_answers_keep_what_later_stages_need() -> None:
    question = Question("paris-q1", "When did it open?", "In 1793.", "test", doc_id="paris", source_text="It opened.")
    assert question_record(question) == {
        "id": "paris-q1",
        "split": "test",
        "doc_id": "paris",
        "question": "When did it open?",
        "reference": "In 1793.",
        "source_text": "It opened.",
    }
    given = Answer(question, "In 1793.", "llama", (Passage("c1", "paris", "text", 1.23456789),), Usage(50, 5))
    record = answer_record(given)
    assert record["answer"] == "In 1793."
    assert record["passages"] == [{"chunk_id": "c1", "doc_id": "paris", "score": 1.234568}]
    assert record["usage"] == {"input_tokens": 50, "output_tokens": 5}


def test_a_score_from_probabilities_keeps_its_distribution_and_most_likely_score() -> None:
    probs = (0.05, 0.05, 0.1, 0.6, 0.2)
    mean = sum(k * p for k, p in zip(range(1, 6), probs, strict=True))
    verdict = Scored(mean, "ok", '{"score": 4}', probs)
    judgement = Judgement(answer("a"), "teacher", "gpt-4o", verdict, '{"score": 4}')
    record = judgement_record(judgement, with_split=False)
    assert record["probs"] == list(probs)
    assert record["likely_score"] == 4
    assert record["score"] == mean
    back = judgement_from_record(json.loads(json.dumps(record)))
    assert back.verdict == Scored(mean, "", '{"score": 4}', probs)
