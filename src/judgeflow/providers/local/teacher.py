"""An offline teacher judge: a reference-based correctness rubric, applied the way a careful grader applies it.

The real teacher is a strong LLM prompted with LlamaIndex's CorrectnessEvaluator guidelines:

* 1 -- the generated answer is not relevant to the user query;
* 2 to 3 -- the answer is relevant but contains mistakes (or misses the key fact);
* 4 to 5 -- the answer is relevant and fully correct; 5 when it states the reference's key facts fully.

This stand-in follows the same rubric with explicit reading steps, so its scores are explainable and its
replies look like an LLM judge's (score line, then a sentence or two naming the facts found or missing):

1. **What is asked.** "In what year ..." asks for a year, "how many ..." for a figure, "who ..." for a name.
2. **Which part of the reference answers it.** A reference often carries two facts ("The Bay Bridge opened in
   1936, and the Golden Gate Bridge opened in 1937"); the clause that shares most words with the question is
   the one that matters, and its facts of the asked-for kind that the question does not already contain are
   the *key facts*.
3. **Relevance.** An answer sharing little with the question and nothing with the reference is off topic.
4. **Recall and contradiction.** All key facts present: 4 to 5 by how much of the rest of the reference (its
   names, figures and other content words that the question does not already contain) the answer carries.
   Some present: 3.5. None present, but a different fact of the same kind given (another year): a mistake,
   1.5 to 2. None present and none contradicted: relevant but incomplete, 2.5 to 3.

The student judge never sees these rules; it has to learn a mapping to the scores from its own lexical
features, which is what makes the distillation experiment meaningful.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from judgeflow.core.parsing import scored_reply
from judgeflow.core.text import capitalised_words, content_words, numbers, split_clauses, stem, tokenize, years
from judgeflow.protocol.messages import JudgeInput, JudgeReply

__all__ = ["Grade", "LocalTeacherJudge", "grade"]

_GENERIC = frozenset(content_words("what which who whom how many much year percentage when where history"))


@dataclass(frozen=True, slots=True)
class Grade:
    """A teacher's decision: the score and the reasoning that goes under it in the reply."""

    score: float
    reasoning: str


def _asks_for(question: str) -> str:
    lowered = question.lower()
    if "what year" in lowered or lowered.startswith("when ") or " when did " in lowered:
        return "year"
    if any(p in lowered for p in ("how many", "how much", "what percentage", "how long", "how tall", "how high")):
        return "number"
    if lowered.startswith("who ") or ", who " in lowered or " whom" in lowered:
        return "name"
    return "fact"


def _focus(reference: str, question_terms: set[str]) -> str:
    """The reference clause(s) that the question is about: those sharing most words with it."""
    clauses = split_clauses(reference) or [reference]
    overlaps = [len(question_terms & set(content_words(c))) for c in clauses]
    top = max(overlaps)
    if top == 0:
        return reference
    return ", ".join(c for c, o in zip(clauses, overlaps, strict=True) if o >= 0.6 * top)


def _key_facts(focus: str, question: str, kind: str) -> set[str]:
    q_tokens = set(tokenize(question)) | set(content_words(question))
    names = capitalised_words(focus) - q_tokens - _GENERIC
    figures = numbers(focus) - years(focus) - q_tokens
    dates = years(focus) - q_tokens
    by_kind = {"year": dates, "number": figures, "name": names}
    return by_kind.get(kind) or (dates | figures | names)


def _surface(text: str) -> dict[str, str]:
    """Stemmed key -> the word as written, so the reasoning quotes "Strauss", not "strauss"."""
    words: dict[str, str] = {}
    for word in re.findall(r"[^\W_]+(?:[.,][0-9]+)*", text):
        for token in tokenize(word):
            words.setdefault(stem(token), word)
    return words


def _listed(facts: set[str], *texts: str, limit: int = 3) -> str:
    surface: dict[str, str] = {}
    for text in texts:
        for key, word in _surface(text).items():
            surface.setdefault(key, word)
    shown = sorted(surface.get(f, f) for f in facts)[:limit]
    return ", ".join(f"'{f}'" for f in shown) + (" and more" if len(facts) > limit else "")


def grade(item: JudgeInput) -> Grade:
    """Score ``item.answer`` against ``item.reference`` for ``item.question`` (see the module docstring)."""
    answer = item.answer.strip()
    q_all = set(tokenize(item.question)) | set(content_words(item.question))
    q_terms = set(content_words(item.question)) - _GENERIC
    a_terms = set(content_words(answer)) | numbers(answer)
    if not answer or not a_terms:
        return Grade(1.0, "The answer is empty or says nothing about the question.")
    kind = _asks_for(item.question)
    asked = _key_facts(_focus(item.reference, q_terms), item.question, kind)
    ref_facts = (numbers(item.reference) | capitalised_words(item.reference)) - q_all - _GENERIC
    ref_words = set(content_words(item.reference)) - q_all - _GENERIC - ref_facts
    ref_terms = set(content_words(item.reference)) | numbers(item.reference)
    relevance = len(q_terms & a_terms) / len(q_terms) if q_terms else 0.0
    ref_overlap = len(ref_terms & a_terms) / len(ref_terms) if ref_terms else 0.0
    found, missing = asked & a_terms, asked - a_terms
    coverage = _coverage(ref_facts, ref_words, a_terms)
    left_out = ref_facts - a_terms

    if not found and relevance < 0.3 and ref_overlap < 0.3:
        return Grade(
            1.0,
            "The answer is not relevant to the question: it talks about something else and shares almost "
            "nothing with the reference.",
        )
    if asked and not missing:
        facts = _listed(found, item.reference)
        if coverage >= 0.8:
            return Grade(
                5.0,
                f"The answer is relevant and correct: it gives {facts} and states the key facts "
                "of the reference fully.",
            )
        omitted = f" such as {_listed(left_out, item.reference)}" if left_out else ""
        if coverage >= 0.5:
            return Grade(
                4.5, f"The answer is correct on {facts} but leaves out some details of the reference{omitted}."
            )
        return Grade(
            4.0, f"The answer gives {facts}, which is correct, but omits most of what the reference says{omitted}."
        )
    if found:
        return Grade(
            3.5,
            f"The answer is partly correct: it gives {_listed(found, item.reference)} but misses "
            f"{_listed(missing, item.reference)} from the reference.",
        )
    contradicting = _contradictions(answer, item, kind)
    if asked and contradicting:
        score = 2.0 if relevance >= 0.5 else 1.5
        return Grade(
            score,
            f"The answer is relevant but wrong: it gives {_listed(contradicting, answer)} "
            f"where the reference says {_listed(asked, item.reference)}.",
        )
    if asked:
        score = 3.0 if relevance >= 0.6 else 2.5
        return Grade(
            score,
            f"The answer is on topic but does not state {_listed(asked, item.reference)}, "
            "which is what the question asks for.",
        )
    # Nothing of the asked-for kind to check: judge by how much of the reference the answer carries.
    if coverage >= 0.8:
        return Grade(5.0, "The answer restates the key facts of the reference.")
    if coverage >= 0.5:
        return Grade(4.0, "The answer covers most of the reference but not all of it.")
    if coverage >= 0.25:
        return Grade(3.0, "The answer is relevant but covers only part of the reference.")
    return Grade(2.0, "The answer is related to the question but says little of what the reference says.")


def _coverage(facts: set[str], words: set[str], answer_terms: set[str]) -> float:
    """How much of what the reference adds to the question the answer carries: facts (names, figures)
    weigh more than other words."""
    word_recall = len(words & answer_terms) / len(words) if words else 1.0
    if not facts:
        return word_recall
    return 0.6 * len(facts & answer_terms) / len(facts) + 0.4 * word_recall


def _contradictions(answer: str, item: JudgeInput, kind: str) -> set[str]:
    """Facts of the asked-for kind that the answer states and the reference does not."""
    if kind == "year":
        return years(answer) - years(item.reference) - years(item.question)
    if kind == "number":
        return (numbers(answer) - years(answer)) - numbers(item.reference) - numbers(item.question)
    if kind == "name":
        return capitalised_words(answer) - capitalised_words(item.reference) - set(content_words(item.question))
    return set()


class LocalTeacherJudge:
    """The offline teacher: :func:`grade` behind the :class:`~judgeflow.protocol.models.JudgeModel` seam."""

    def __init__(self, *, name: str = "local-teacher") -> None:
        self.name = name

    def judge_sync(self, item: JudgeInput) -> JudgeReply:
        decision = grade(item)
        return scored_reply(decision.score, decision.reasoning, self.name)

    async def judge(self, item: JudgeInput) -> JudgeReply:
        return self.judge_sync(item)
