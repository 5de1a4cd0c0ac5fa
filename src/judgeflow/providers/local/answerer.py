"""An offline answer model that behaves like a weak extractive reader: the "cheap model" under evaluation.

The pipeline's point is to measure how well a student judge tracks a teacher judge across answers of varying
quality, so the answers must vary for honest reasons. This answerer never makes an answer wrong on purpose; it
is simply not very clever, in the ways lexical QA baselines are not:

* it reads only the retrieved passages, so a retrieval miss means it answers from the wrong text;
* it matches bags of words: every content word of the question counts the same, so "In the history of Paris,
  ..." pulls towards any sentence that names Paris, with a small bonus for a sentence that holds the kind of
  thing asked for (a year for "in what year", a figure for "how many");
* it satisfices: it reads the passages in rank order and settles for the first sentence that shares at least
  ``good_enough`` of the question's content words (else the best one), so a similar sentence about a
  neighbouring event ("the Bay Bridge opened in 1936" for a question about the Golden Gate Bridge) can win;
* it answers briefly: a sentence longer than ``max_words`` is cut to the coordinated clause (", and ...") that
  best matches the question, which keeps the asked-for fact but drops the rest of the sentence.

A sentence that opens with a pronoun ("It opened in 1937.") is answered together with the sentence before it,
so the answer says what "it" is. Everything is deterministic: ties go to the better-ranked passage, then to the
earlier sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from judgeflow.core.text import content_words, numbers, split_clauses, split_sentences, wordset, years
from judgeflow.protocol.messages import Passage, Reply

__all__ = ["NO_ANSWER", "LocalExtractiveAnswerer"]

NO_ANSWER = "The provided passages do not say."

# Words that say what kind of answer is wanted, not what it is about.
_QUESTION_WORDS = frozenset(content_words("what which who whom how many year percentage when where"))
_PRONOUNS = wordset("it its this these they their he she his her that those")
_CONJUNCTION = re.compile(r"^(?:and|but|while|which|who|where|whereas)\s+", re.IGNORECASE)


def _wants(question: str) -> str:
    lowered = question.lower()
    if "what year" in lowered or lowered.startswith("when ") or " when " in lowered:
        return "year"
    if "how many" in lowered or "how much" in lowered or "what percentage" in lowered:
        return "number"
    return "other"


def _has_kind(text: str, kind: str) -> bool:
    if kind == "year":
        return bool(years(text))
    if kind == "number":
        return bool(numbers(text) - years(text))
    return False


def _as_sentence(text: str) -> str:
    text = _CONJUNCTION.sub("", text.strip())
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text.rstrip(",;") + "."


class LocalExtractiveAnswerer:
    """Answers from retrieved passages by word overlap with the question (see the module docstring).

    ``max_words``: sentences longer than this are cut to their best clause. ``type_bonus``: added to a
    sentence's overlap when it contains the asked-for kind of fact. ``good_enough``: the share of the
    question's content words at which the reader stops looking (``None`` reads everything and takes the best).
    """

    def __init__(
        self,
        *,
        name: str = "local-extractive",
        max_words: int = 20,
        type_bonus: float = 0.5,
        good_enough: float | None = 0.4,
    ) -> None:
        if max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {max_words}")
        self.name = name
        self.max_words = max_words
        self.type_bonus = type_bonus
        self.good_enough = good_enough

    async def answer(self, question: str, passages: Sequence[Passage]) -> Reply:
        return Reply(text=self.answer_sync(question, passages), model=self.name)

    def answer_sync(self, question: str, passages: Sequence[Passage]) -> str:
        """The answer text, taken from ``passages`` only, or :data:`NO_ANSWER` when no sentence shares a
        content word with the question."""
        terms = set(content_words(question)) - _QUESTION_WORDS
        if not terms:
            return NO_ANSWER
        kind = _wants(question)
        threshold = None if self.good_enough is None else self.good_enough * len(terms)
        best: tuple[float, list[str], int] | None = None
        for sentences in (split_sentences(p.text) for p in passages):
            for index, sentence in enumerate(sentences):
                score = self._score(sentence, terms, kind)
                if score > 0 and (best is None or score > best[0]):
                    best = (score, sentences, index)
                if threshold is not None and score >= threshold:
                    break  # settles for this sentence: it looks enough like the question
            else:
                continue
            break
        if best is None:
            return NO_ANSWER
        _, sentences, index = best
        answer = self._shorten(sentences[index], terms, kind)
        first = answer.split(" ", 1)[0].lower().strip(",")
        if first in _PRONOUNS and index > 0:
            answer = f"{sentences[index - 1]} {answer}"
        return answer

    def _score(self, text: str, terms: set[str], kind: str) -> float:
        overlap = len(terms & set(content_words(text)))
        if overlap == 0:
            return 0.0
        return overlap + (self.type_bonus if _has_kind(text, kind) else 0.0)

    def _shorten(self, sentence: str, terms: set[str], kind: str) -> str:
        """The sentence if it is short enough, else its best-matching coordinated clause (a long sentence
        often joins two facts with ", and"; a brief answer keeps the one that looks most like the question)."""
        if len(sentence.split()) <= self.max_words:
            return sentence
        clauses = split_clauses(sentence)
        if len(clauses) < 2:
            return sentence
        scores = [self._score(c, terms, kind) for c in clauses]
        return _as_sentence(clauses[scores.index(max(scores))])
