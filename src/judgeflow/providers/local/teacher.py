"""An offline teacher judge: a reference-based correctness rubric, with standards of its own.

The real teacher is a strong LLM prompted with LlamaIndex's CorrectnessEvaluator guidelines:

* 1 -- the generated answer is not relevant to the user query;
* 2 to 3 -- the answer is relevant but contains mistakes (or misses the key fact);
* 4 to 5 -- the answer is relevant and fully correct.

Any particular grader applies such a rubric with standards of its own, and that is what distilling it has to
teach: a general judge agrees with it on plainly right and plainly wrong answers and misses the rest. This one's:

* **The answer is the fact asked for.** "In what year ..." is answered by the year, "how many ..." by the figure,
  "who ..." by the name; a bare "In 1937." gets full marks, and the month and day a reference adds to the year
  are not required. (A judge that compares the answer with the whole reference marks a short answer down.)
* **A missing date or name is a missing answer.** An answer that does not state the year, figure or name asked
  for gets 2, however much of the reference it repeats. (A judge by overlap gives it credit for the overlap.)
* **A hedged answer is not a committed one.** A right answer wrapped in "probably", "I think", "I am not sure,
  but" ... gets 3, not 5: the reader cannot tell it from a guess. A hedge the reference itself makes
  ("historians probably ...") is a fact repeated, not a hedge.
* **Right, but more than was asked: 4.** A right answer that goes on to what the question did not ask (at least
  four content words beyond the question and the clause of the reference it is about: the reference's other
  clause, the next sentence of the passage) loses a point; the reader has to find the answer in it.
* **Wrong is wrong.** A different fact of the asked-for kind (another year) gets 2, or 1.5 when the answer is
  also about something else; an answer about something else entirely gets 1.

How it reads an item:

1. **What is asked.** "In what year ..." asks for a year, "how many ..." for a figure, "who ..." for a name.
2. **Which part of the reference answers it.** A reference often carries two facts ("The Bay Bridge opened in
   1936, and the Golden Gate Bridge opened in 1937"); the clause that shares most words with the question is
   the one that matters, and its facts of the asked-for kind that the question does not already contain are
   the *key facts*. Some but not all of them given: 3.5 (3 when hedged).
3. When the question asks for no such fact (no name, figure or year in the clause), the answer is graded by
   how much of the reference it carries: 2 to 5, at most 3 when hedged.

Its replies look like an LLM judge's: a score line, then a sentence naming the facts found, missing, hedged or
beyond the question. The student judge never sees these rules: it has to learn them from the scores, through
features of its own (`judgeflow.providers.local.lexical`), which is what makes the distillation meaningful.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from judgeflow.core.parsing import scored_reply
from judgeflow.core.text import capitalised_words, content_words, numbers, split_clauses, stem, tokenize, years
from judgeflow.protocol.messages import JudgeInput, JudgeReply

__all__ = ["Grade", "LocalTeacherJudge", "grade"]

_GENERIC = frozenset(content_words("what which who whom how many much year percentage when where history"))
_HEDGE_RE = re.compile(
    r"\b(?:probably|possibly|perhaps|maybe|i think|i believe|i guess|i am not sure|i'm not sure|not certain|"
    r"it seems|it may be|might have|may have|likely)\b",
    re.IGNORECASE,
)
_HEDGE_WORDS = frozenset(content_words("probably possibly perhaps maybe think believe guess sure certain seems likely"))
_HEDGED = 3.0  # the most a right answer that does not commit to it gets
_MORE = 4.0  # a right answer that says more than was asked
_BEYOND = 4  # content words beyond the question and the clause it asks about that make an answer "say more"


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
    hedges = _hedges(answer, item.reference)
    a_terms = (set(content_words(answer)) | numbers(answer)) - _HEDGE_WORDS
    if not answer or not a_terms:
        return Grade(1.0, "The answer is empty or says nothing about the question.")
    kind = _asks_for(item.question)
    focus = _focus(item.reference, q_terms)
    asked = _key_facts(focus, item.question, kind)
    ref_facts = (numbers(item.reference) | capitalised_words(item.reference)) - q_all - _GENERIC
    ref_words = set(content_words(item.reference)) - q_all - _GENERIC - ref_facts
    ref_terms = set(content_words(item.reference)) | numbers(item.reference)
    relevance = len(q_terms & a_terms) / len(q_terms) if q_terms else 0.0
    ref_overlap = len(ref_terms & a_terms) / len(ref_terms) if ref_terms else 0.0
    found, missing = asked & a_terms, asked - a_terms

    contradicting = set() if found else _contradictions(answer, item, kind)
    if asked and contradicting:
        score = 2.0 if relevance >= 0.5 else 1.5
        return Grade(
            score,
            f"The answer is wrong: it gives {_listed(contradicting, answer)} "
            f"where the reference says {_listed(asked, item.reference)}.",
        )
    if not found and relevance < 0.3 and ref_overlap < 0.3:
        return Grade(
            1.0,
            "The answer is not relevant to the question: it talks about something else and shares almost "
            "nothing with the reference.",
        )
    if asked and not missing:
        facts = _listed(found, item.reference)
        if hedges:
            return Grade(
                _HEDGED,
                f"The answer gives {facts}, which is correct, but it does not commit to it ({hedges[0]!r}): "
                "a hedged answer does not get full marks.",
            )
        beyond = a_terms - q_all - set(content_words(focus)) - numbers(focus)
        if len(beyond) >= _BEYOND:
            return Grade(
                _MORE,
                f"The answer is correct on {facts} but says more than the question asks: it also gives "
                f"{_listed(beyond, answer, item.reference)}, which the question did not ask about.",
            )
        return Grade(5.0, f"The answer is correct: it gives {facts}, which is what the question asks for.")
    if found:
        return Grade(
            _HEDGED if hedges else 3.5,
            f"The answer is partly correct: it gives {_listed(found, item.reference)} but misses "
            f"{_listed(missing, item.reference)} from the reference.",
        )
    if asked:
        return Grade(
            2.0,
            f"The answer does not state {_listed(asked, item.reference)}, which is what the question asks for; "
            "whatever else it says, the answer itself is missing.",
        )
    # Nothing of the asked-for kind to check: judge by how much of the reference the answer carries.
    coverage = _coverage(ref_facts, ref_words, a_terms)
    score, reasoning = 2.0, "The answer is related to the question but says little of what the reference says."
    if coverage >= 0.8:
        score, reasoning = 5.0, "The answer restates the key facts of the reference."
    elif coverage >= 0.5:
        score, reasoning = 4.0, "The answer covers most of the reference but not all of it."
    elif coverage >= 0.25:
        score, reasoning = 3.0, "The answer is relevant but covers only part of the reference."
    if hedges and score > _HEDGED:
        return Grade(_HEDGED, f"{reasoning[:-1]}, but it does not commit to it ({hedges[0]!r}).")
    return Grade(score, reasoning)


def _hedges(answer: str, reference: str) -> list[str]:
    """The phrases with which the answer declines to commit ("probably", "I think", ...), as written; one the
    reference uses too ("historians probably ...") is a fact it repeats, not its own doubt."""
    quoted = {m.group().lower() for m in _HEDGE_RE.finditer(reference)}
    return [m.group() for m in _HEDGE_RE.finditer(answer) if m.group().lower() not in quoted]


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
