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
  neighbouring event ("the Bay Bridge opened in 1936" for a question about the Golden Gate Bridge) can win.

And it words its answers the way a small generative model does, which is what a judge has to weigh:

* **manner**: like a model sampled above temperature zero, it does not answer every question the same way. A
  question gets one of three manners, drawn from a hash of its text (so a run is reproducible): *brief* (only
  the fact asked for, "In 1937.", "Lawrence Ferlinghetti.", "About 80 percent.", when the sentence holds one),
  *sentence* (the sentence; one longer than ``max_words`` is cut to the coordinated clause, ", and ...", that
  best matches the question), or *full* (the whole sentence and the one after it: more than was asked);
* **hedging**: when the sentence it settles for shares less than ``sure`` of the question's content words, it
  is unsure, and says so ("Probably ...", "I think ..."). The hedge is the reader's own doubt: unsure answers
  are wrong more often, but not always.

A sentence that opens with a pronoun ("It opened in 1937.") is answered together with the sentence before it,
so the answer says what "it" is. Everything is deterministic: ties go to the better-ranked passage, then to the
earlier sentence.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from judgeflow.core.text import content_words, numbers, split_clauses, split_sentences, wordset, years
from judgeflow.protocol.messages import Passage, Reply

__all__ = ["HEDGES", "NO_ANSWER", "LocalExtractiveAnswerer", "Manner"]

NO_ANSWER = "The provided passages do not say."
Manner = Literal["brief", "sentence", "full"]

# How the reader says it is unsure; which one a question gets is drawn from its hash, like the manner.
HEDGES = ("Probably", "I think", "Possibly", "I am not sure, but")

# Words that say what kind of answer is wanted, not what it is about.
_QUESTION_WORDS = frozenset(content_words("what which who whom how many year percentage when where"))
_PRONOUNS = wordset("it its this these they their he she his her that those")
_CONJUNCTION = re.compile(r"^(?:and|but|while|which|who|where|whereas)\s+", re.IGNORECASE)
# Words that lose their capital when a hedge goes in front of the sentence ("The bridge" -> "I think the bridge").
_PLAIN_OPENERS = wordset(
    "the a an in on at by during after before when while although though as since until from with under for "
    "also later then this that these those its his her their there some many most much more few"
)
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
_QUANTITY = re.compile(
    r"(?:(?:about|roughly|around|approximately|nearly|almost|over|some|at least|more than|less than|fewer than|"
    r"an estimated|a total of)\s+)?(?P<num>[0-9][0-9,]*(?:\.[0-9]+)?)(?P<mult>\s+(?:million|billion|thousand|hundred))?"
    r"(?:\s+(?!and\b|or\b|of\b|in\b|to\b|the\b|by\b)[a-z][a-z\-]+)?",
    re.IGNORECASE,
)
_NAME = re.compile(r"^(?:[A-Z][\w'’.\-]*(?:\s+(?:de|van|von|da|del|la)\b)?\s+)*[A-Z][\w'’.\-]*")


@dataclass(frozen=True, slots=True)
class _Reading:
    sentences: list[str]
    index: int
    confidence: float  # the share of the question's content words in the chosen sentence


def _wants(question: str) -> str:
    lowered = question.lower()
    if "what year" in lowered or lowered.startswith("when ") or " when " in lowered:
        return "year"
    if "how many" in lowered or "how much" in lowered or "what percentage" in lowered:
        return "number"
    if lowered.startswith("who ") or ", who " in lowered:
        return "name"
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


def _draw(question: str, salt: str) -> float:
    """A number in [0, 1) fixed by the question's text: the reader's "sampling", reproducible run to run."""
    digest = hashlib.blake2b(f"{salt}\x00{question}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class LocalExtractiveAnswerer:
    """Answers from retrieved passages by word overlap with the question (see the module docstring).

    ``max_words``: sentences longer than this are cut to their best clause. ``type_bonus``: added to a
    sentence's overlap when it contains the asked-for kind of fact. ``good_enough``: the share of the
    question's content words at which the reader stops looking (``None`` reads everything and takes the best).
    ``sure``: below this share the answer is hedged (0 never hedges). ``brief`` and ``full``: the shares of
    questions answered in those manners (the rest get a sentence).
    """

    def __init__(
        self,
        *,
        name: str = "local-extractive",
        max_words: int = 20,
        type_bonus: float = 0.5,
        good_enough: float | None = 0.4,
        sure: float = 0.6,
        brief: float = 0.25,
        full: float = 0.3,
    ) -> None:
        if max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {max_words}")
        if min(brief, full) < 0.0 or brief + full > 1.0:
            raise ValueError(f"brief and full must be shares that add up to at most 1, got {brief} and {full}")
        self.name = name
        self.max_words = max_words
        self.type_bonus = type_bonus
        self.good_enough = good_enough
        self.sure = sure
        self.brief = brief
        self.full = full

    async def answer(self, question: str, passages: Sequence[Passage]) -> Reply:
        return Reply(text=self.answer_sync(question, passages), model=self.name)

    def manner(self, question: str) -> Manner:
        """How ``question`` is answered: drawn from a hash of its text, so always the same for one question."""
        u = _draw(question, "manner")
        return "brief" if u < self.brief else "full" if u < self.brief + self.full else "sentence"

    def answer_sync(self, question: str, passages: Sequence[Passage]) -> str:
        """The answer text, taken from ``passages`` only (hedged when unsure), or :data:`NO_ANSWER` when no
        sentence shares a content word with the question."""
        terms = set(content_words(question)) - _QUESTION_WORDS
        if not terms:
            return NO_ANSWER
        kind = _wants(question)
        reading = self._read(passages, terms, kind)
        if reading is None:
            return NO_ANSWER
        sentences, index = reading.sentences, reading.index
        manner = self.manner(question)
        answer = None
        if manner == "brief":
            answer = self._fact(self._clause(sentences[index], terms, kind), kind)
        if answer is None and manner == "full":
            answer = " ".join(sentences[index : index + 2])
        if answer is None:
            answer = self._shorten(sentences[index], terms, kind)
        first = answer.split(" ", 1)[0].lower().strip(",")
        if first in _PRONOUNS and index > 0:
            answer = f"{sentences[index - 1]} {answer}"
        if reading.confidence < self.sure:
            answer = self._hedged(answer, question)
        return answer

    def _read(self, passages: Sequence[Passage], terms: set[str], kind: str) -> _Reading | None:
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
            return None
        _, sentences, index = best
        shared = len(terms & set(content_words(sentences[index])))
        return _Reading(sentences, index, shared / len(terms))

    def _score(self, text: str, terms: set[str], kind: str) -> float:
        overlap = len(terms & set(content_words(text)))
        if overlap == 0:
            return 0.0
        return overlap + (self.type_bonus if _has_kind(text, kind) else 0.0)

    def _clause(self, sentence: str, terms: set[str], kind: str) -> str:
        clauses = split_clauses(sentence)
        if len(clauses) < 2:
            return sentence
        scores = [self._score(c, terms, kind) for c in clauses]
        return clauses[scores.index(max(scores))]

    def _shorten(self, sentence: str, terms: set[str], kind: str) -> str:
        """The sentence if it is short enough, else its best-matching coordinated clause (a long sentence
        often joins two facts with ", and"; a brief answer keeps the one that looks most like the question)."""
        if len(sentence.split()) <= self.max_words:
            return sentence
        clause = self._clause(sentence, terms, kind)
        return sentence if clause == sentence else _as_sentence(clause)

    @staticmethod
    def _fact(clause: str, kind: str) -> str | None:
        """Only the fact asked for, when the clause holds exactly one of that kind: "In 1937.", "About 80
        percent.", "Harvey Milk." (a name only when the clause opens with one)."""
        if kind == "year":
            found = sorted(set(re.findall(rf"(?<![0-9]){_YEAR}(?![0-9])", clause)))
            return f"In {found[0]}." if len(found) == 1 else None
        if kind == "number":
            quantities = [
                m.group()
                for m in _QUANTITY.finditer(clause)
                if m.group("mult") or not re.fullmatch(_YEAR, m.group("num").rstrip(",."))
            ]
            return _as_sentence(quantities[0]) if len(quantities) == 1 else None
        if kind == "name":
            name = _NAME.match(clause.strip())
            words = name.group().split() if name else []
            if len(words) >= 2 and words[0].lower() not in _PLAIN_OPENERS:
                return " ".join(words).rstrip(",") + "."
        return None

    @staticmethod
    def _hedged(answer: str, question: str) -> str:
        hedge = HEDGES[int(_draw(question, "hedge") * len(HEDGES))]
        first, _, rest = answer.partition(" ")
        if first.lower() in _PLAIN_OPENERS or first.lower().rstrip(",") in _PLAIN_OPENERS:
            first = first.lower()
        return f"{hedge} {first} {rest}".rstrip() if rest else f"{hedge} {first}"
