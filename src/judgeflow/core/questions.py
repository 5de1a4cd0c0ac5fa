"""Reading the question writer's reply, in either format it was asked for, and deciding whether it is usable.

A writer asked for JSON (`QUESTIONS_SCHEMA`: ``{"questions": [{"question", "reference"}, ...]}``) or for the
labelled text format ("Question: ... / Answer: ...") says what it says; `read_questions` takes the pairs it can
use and, when there are none, says why in a few words, so that the reply is counted and kept with its reason
rather than dropped. It never raises.

A schema guarantees the shape of a reply, not its sense: a small model under a grammar copies placeholders
("<the answer>"), echoes labels ("Question 1") or writes empty strings. A pair is usable when its question has
at least three words and its reference some text, neither is a placeholder, and they differ. A JSON reply cut off
by ``max_tokens`` keeps the complete pairs before the cut; a reply in the other format is read too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from judgeflow.core.prompts import parse_question_replies
from judgeflow.protocol.calls import JsonOutput
from judgeflow.protocol.messages import QAPair

__all__ = [
    "QUESTIONS_SCHEMA",
    "QuestionsRead",
    "question_follow_up",
    "questions_output",
    "read_questions",
    "usable_pair",
]

_PAIR: dict[str, Any] = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "reference": {"type": "string"}},
    "required": ["question", "reference"],
    "additionalProperties": False,
}
QUESTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"questions": {"type": "array", "items": _PAIR}},
    "required": ["questions"],
    "additionalProperties": False,
}

_PLACEHOLDER = re.compile(
    r"^(?:<[^<>]*>|\.{2,}|…|(?:the |a |your |an )?(?:question|answer|reference|text|string)(?: ?#? ?\d+)?[.:]?)$",
    re.IGNORECASE,
)


def questions_output(n: int, kind: Literal["json_schema", "json_object"] = "json_schema") -> JsonOutput:
    """The constrained output asking for ``n`` pairs (``maxItems`` stops a small model's endless lists where the
    server enforces it; OpenAI's strict mode does not take it, so it is left out of ``json_schema``)."""
    schema = json.loads(json.dumps(QUESTIONS_SCHEMA))
    if kind == "json_object":
        schema["properties"]["questions"] |= {"minItems": 1, "maxItems": n}
    return JsonOutput.of("questions", schema, kind)


@dataclass(frozen=True, slots=True)
class QuestionsRead:
    """The usable pairs of one reply, and why there are none when there are none (``reason`` is "" otherwise)."""

    pairs: tuple[QAPair, ...]
    reason: str = ""


def usable_pair(question: str, reference: str) -> bool:
    q, r = " ".join(question.split()), " ".join(reference.split())
    if len(q.split()) < 3 or not r:
        return False
    if _PLACEHOLDER.match(q) or _PLACEHOLDER.match(r):
        return False
    return q.casefold() != r.casefold()


def read_questions(raw: str, *, json_reply: bool) -> QuestionsRead:
    """The usable question/reference pairs in ``raw``, in order (see the module docstring)."""
    if not raw.strip():
        return QuestionsRead((), "empty reply")
    found = _json_pairs(raw) if json_reply else []
    if not found:
        found = [(p.question, p.reference) for p in parse_question_replies(raw)]
    if not found and not json_reply:
        found = _json_pairs(raw)
    pairs = tuple(QAPair(" ".join(q.split()), r.strip()) for q, r in found if usable_pair(q, r))
    if pairs:
        return QuestionsRead(pairs)
    if found:
        return QuestionsRead((), f"{len(found)} pair(s), none usable (placeholders, empty or too short)")
    return QuestionsRead((), "no question/answer pair found")


def _json_pairs(raw: str) -> list[tuple[str, str]]:
    """Every complete ``{"question", "reference"}`` object in ``raw``, in order (an "answer" key counts too)."""
    decoder = json.JSONDecoder(strict=False)
    pairs: list[tuple[str, str]] = []
    start = raw.find("{")
    while start >= 0:
        try:
            value, end = decoder.raw_decode(raw, start)
        except ValueError:
            start = raw.find("{", start + 1)
            continue
        listed = isinstance(value, dict) and isinstance(value.get("questions"), list)
        for item in value["questions"] if listed else [value]:
            if isinstance(item, dict):
                question, reference = item.get("question"), item.get("reference", item.get("answer"))
                if isinstance(question, str) and isinstance(reference, str):
                    pairs.append((question, reference))
        if listed:
            return pairs
        start = raw.find("{", end)
    return pairs


def question_follow_up(reason: str, n: int, *, json_reply: bool) -> str:
    """What the writer is told when its reply could not be used, before it is asked once more."""
    shape = "as the JSON object asked for" if json_reply else 'in the "Question: ... / Answer: ..." format asked for'
    return (
        f"That reply could not be used ({reason}). Write {n} question(s) about the context again, each a real "
        f"question with its correct answer taken from the context, {shape}, and nothing else."
    )
