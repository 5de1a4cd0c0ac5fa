"""Training examples that word overlap cannot judge, made from the training items themselves.

A student that learns from a teacher's scores of ordinary answers learns mostly that an answer repeating the
reference's words is right. These examples break that rule; each is labelled by how it was made:

- ``swap``: a right answer to a short reference (a name, a date) with the words it shares with the reference
  (the alternative it names, or the longest stretch of the reference it repeats) replaced by another item's
  short reference of the same kind (with digits or without): it keeps the answer's shape and its other words,
  but now names the wrong thing (score 1);
- ``number``: a right answer with a number that the reference also gives changed, everywhere the answer says it
  (score 1): a year, an amount or a final result that is off;
- ``negate``: a right answer that now says the opposite: "is" becomes "is not", a final "yes" becomes "no"
  (score 1);
- ``alias``: a right answer whose reference lists alternatives ("JFK/John F. Kennedy"), given with only an
  alternative that shares few words with the answer as the reference (the teacher's score: still right, with
  little overlap).

Only examples whose teacher score is at least 4 are used as sources. `constructed` makes at most
``share * len(examples)`` of them, spread over the kinds that apply, seeded.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import replace

from judgeflow.protocol.messages import TrainingExample
from judgeflow.providers.local.matching import split_aliases

__all__ = ["KINDS", "constructed", "make"]

KINDS = ("swap", "number", "negate", "alias")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_AUXILIARY = re.compile(r"\b(is|was|are|were|has|had|have|does|did|do|can|will|could|would)\b", re.IGNORECASE)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_RIGHT = 4.0
_SHORT = 6  # words: a reference this short names something; a longer one explains it


def _find(text: str, phrase: str) -> re.Match[str] | None:
    if not phrase.strip():
        return None
    return re.search(rf"(?<!\w){re.escape(phrase.strip())}(?!\w)", text, re.IGNORECASE)


def _shared_span(answer: str, reference: str) -> tuple[int, int] | None:
    """Where the answer says (a part of) the reference: an alternative it names, else the longest run of the
    reference's words that it repeats (at least one word that is not a number)."""
    for alternative in sorted(split_aliases(reference), key=len, reverse=True):
        found = _find(answer, alternative)
        if found:
            return found.span()
    words = _WORD.findall(reference)
    for size in range(min(len(words), 6), 0, -1):
        for start in range(len(words) - size + 1):
            phrase = words[start : start + size]
            if size == 1 and (len(phrase[0]) < 3 or phrase[0].isdigit()):
                continue
            found = re.search(r"(?<!\w)" + r"\W+".join(map(re.escape, phrase)) + r"(?!\w)", answer, re.IGNORECASE)
            if found:
                return found.span()
    return None


def _short(text: str) -> bool:
    words = _WORD.findall(text)
    return 0 < len(words) <= _SHORT and text.strip().lower().rstrip(".") not in ("yes", "no")


def _kind(text: str) -> bool:
    """Swapped names keep their kind: a date or an amount for one, a name for another."""
    return any(c.isdigit() for c in text)


def _swap(example: TrainingExample, others: Sequence[str], rng: random.Random) -> TrainingExample | None:
    if not any(_short(a) for a in split_aliases(example.reference)):
        return None  # a worked solution or a yes/no label: numbers and negation are changed instead
    span = _shared_span(example.answer, example.reference)
    if span is None:
        return None
    said = example.answer[span[0] : span[1]]
    candidates = [
        o
        for o in others
        if o.lower() != said.lower() and _kind(o) == _kind(said) and _find(example.reference, o) is None
    ]
    if not candidates:
        return None
    other = rng.choice(candidates)
    answer = example.answer[: span[0]] + other + example.answer[span[1] :]
    return replace(example, id=f"{example.id}~swap", answer=answer, score=1.0, probs=None)


def _changed(number: str, rng: random.Random, avoid: set[str]) -> str:
    value = float(number)
    for _ in range(20):
        delta = rng.choice([1, 2, 3, 5, 10, 100]) * rng.choice([-1, 1])
        new = value + delta if rng.random() < 0.7 else value * rng.choice([2, 3, 10])
        text = f"{new:g}" if "." in number else str(int(new))
        if text != number and text not in avoid and new >= 0:
            return text
    return str(int(value) + 7)


def _number(example: TrainingExample, rng: random.Random) -> TrainingExample | None:
    in_reference = set(_NUMBER.findall(example.reference))
    said = [m.group() for m in _NUMBER.finditer(example.answer) if m.group() in in_reference]
    if not said:
        return None
    target = said[-1]  # the last one the answer gives: a final result, or the year of the event
    new = _changed(target, rng, in_reference)
    answer = re.sub(rf"(?<![\w.]){re.escape(target)}(?![\w])", new, example.answer)
    return replace(example, id=f"{example.id}~number", answer=answer, score=1.0, probs=None)


def _negate(example: TrainingExample) -> TrainingExample | None:
    reference = example.reference.strip().lower().rstrip(".")
    if reference in ("yes", "no"):
        said = list(_YES_NO.finditer(example.answer))
        if not said or said[-1].group().lower() != reference:
            return None
        last = said[-1]
        flipped = {"yes": "no", "no": "yes"}[last.group().lower()]
        if last.group()[0].isupper():
            flipped = flipped.capitalize()
        answer = example.answer[: last.start()] + flipped + example.answer[last.end() :]
    else:
        span = _shared_span(example.answer, example.reference)
        found = _AUXILIARY.search(example.answer)
        if span is None or found is None or re.match(r"\s+not\b", example.answer[found.end() :]):
            return None
        answer = example.answer[: found.end()] + " not" + example.answer[found.end() :]
    return replace(example, id=f"{example.id}~negate", answer=answer, score=1.0, probs=None)


def _alias(example: TrainingExample, rng: random.Random) -> TrainingExample | None:
    alternatives = split_aliases(example.reference)
    if len(alternatives) < 2:
        return None
    answer_words = {w.lower() for w in _WORD.findall(example.answer)}
    named = [a for a in alternatives if _find(example.answer, a)]
    if not named:
        return None
    unlike = [a for a in alternatives if not ({w.lower() for w in _WORD.findall(a)} & answer_words)]
    if not unlike:
        return None
    return replace(example, id=f"{example.id}~alias", reference=rng.choice(unlike))


def make(kind: str, example: TrainingExample, others: Sequence[str], rng: random.Random) -> TrainingExample | None:
    """One constructed example of ``kind`` from ``example`` (None when the kind does not apply to it)."""
    if kind == "swap":
        return _swap(example, others, rng)
    if kind == "number":
        return _number(example, rng)
    if kind == "negate":
        return _negate(example)
    if kind == "alias":
        return _alias(example, rng)
    raise ValueError(f"unknown kind of constructed example {kind!r}; known: {', '.join(KINDS)}")


def constructed(
    examples: Sequence[TrainingExample], *, share: float, seed: int, kinds: Sequence[str] = KINDS
) -> list[TrainingExample]:
    """Up to ``share * len(examples)`` constructed examples from the right answers among ``examples``."""
    budget = int(share * len(examples))
    right = [e for e in examples if e.score >= _RIGHT]
    if budget <= 0 or not right:
        return []
    rng = random.Random(seed)
    others = sorted({a for e in examples for a in split_aliases(e.reference)[:1] if _short(a)})
    order = list(range(len(right)))
    rng.shuffle(order)
    out: list[TrainingExample] = []
    for turn, index in enumerate(order * len(kinds)):
        if len(out) >= budget:
            break
        kind = kinds[(turn + turn // len(order)) % len(kinds)]
        made = make(kind, right[index], others, rng)
        if made is not None and made.answer.strip():
            out.append(made)
    return out
