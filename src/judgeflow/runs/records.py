"""How messages are written to JSONL: one plain dict per line, the same shapes everywhere.

The judgement record is the contract of both ``judgements.jsonl`` in a run folder and the output of
``judgeflow judge``: ``{"id", "judge", "score", "status", "raw", ...}`` where ``score`` is a number only when
``status`` is ``"ok"``; an unparsed reply keeps its raw text and the reason, a failed call its error. A score
read from token probabilities (the ``logprobs`` scoring mode) adds ``"probs"``, the probabilities of the scores
1..5 (renormalised to sum to 1), and ``"likely_score"``, the most likely of them; ``score`` is then the
probability-weighted mean.
Pure functions: no I/O here.
"""

from __future__ import annotations

from typing import Any

from judgeflow.protocol.messages import Answer, Judgement, Question, Usage
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed, Verdict, verdict_status

__all__ = ["answer_record", "judgement_from_record", "judgement_record", "question_record", "usage_record"]


def usage_record(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def question_record(question: Question) -> dict[str, Any]:
    return {
        "id": question.id,
        "split": question.split,
        "doc_id": question.doc_id,
        "question": question.question,
        "reference": question.reference,
        "source_text": question.source_text,
    }


def answer_record(answer: Answer) -> dict[str, Any]:
    return {
        "id": answer.id,
        "split": answer.question.split,
        "question": answer.question.question,
        "reference": answer.question.reference,
        "answer": answer.text,
        "model": answer.model,
        "passages": [{"chunk_id": p.chunk_id, "doc_id": p.doc_id, "score": round(p.score, 6)} for p in answer.passages],
        "usage": usage_record(answer.usage),
    }


def judgement_record(judgement: Judgement, *, with_split: bool = True) -> dict[str, Any]:
    verdict = judgement.verdict
    record: dict[str, Any] = {
        "id": judgement.id,
        "judge": judgement.judge,
        "model": judgement.model,
        "score": verdict.score if isinstance(verdict, Scored) else None,
        "status": verdict_status(verdict),
        "raw": judgement.raw,
    }
    if with_split:
        record["split"] = judgement.answer.question.split
    if isinstance(verdict, Scored) and verdict.probs is not None:
        record["probs"] = list(verdict.probs)
        record["likely_score"] = verdict.likely_score
    if isinstance(verdict, Unparsed):
        record["reason"] = verdict.reason
    elif isinstance(verdict, Failed):
        record["error"] = verdict.error
    if judgement.usage is not None:
        record["usage"] = usage_record(judgement.usage)
    if judgement.at is not None:
        record["at"] = round(judgement.at, 3)
    return record


def judgement_from_record(record: dict[str, Any]) -> Judgement:
    """A judgement read back from its record (a resumed run's earlier verdicts, for the agreement statistics).

    Only what the record holds comes back: the id, the judge, the verdict and the raw reply; the question and
    answer texts are not in a judgement record and stay empty.
    """
    raw = str(record.get("raw", ""))
    verdict: Verdict
    if record.get("status") == "ok" and record.get("score") is not None:
        probs = record.get("probs")
        kept = tuple(float(p) for p in probs) if isinstance(probs, list) else None
        verdict = Scored(float(record["score"]), "", raw, kept)
    elif record.get("status") == "unparsed":
        verdict = Unparsed(raw, str(record.get("reason", "")))
    else:
        verdict = Failed(str(record.get("error", "")))
    answer = Answer(Question(str(record["id"]), "", "", "test"), "", "")
    at = record.get("at")
    when = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None
    return Judgement(answer, str(record["judge"]), str(record.get("model", "")), verdict, raw, at=when)
