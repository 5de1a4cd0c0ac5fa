"""Reading a prompt the way the fake servers' "weak model" does: Markdown sections, sentences, word overlap.

The fake OpenAI and TGI servers both answer a question from the context in the prompt by picking the sentence
that shares the most content words with the question. Their prompts differ a little (which headings start a
section, which section holds the context, which words are too common to count), so those are parameters; the
reading itself is written once, here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "ANY_HEADING",
    "SUBHEADING",
    "UNKNOWN",
    "content_words",
    "extractive_answer",
    "sections",
    "sentences",
]

WORD = re.compile(r"[a-z0-9]+")
ANY_HEADING = re.compile(r"^#{1,6}[ \t]*(.+?)[ \t]*:?[ \t]*$", re.MULTILINE)
"""A Markdown heading of any level (``# Context``)."""
SUBHEADING = re.compile(r"^#{2,6}[ \t]*(.+?)[ \t]*:?[ \t]*$", re.MULTILINE)
"""A Markdown heading of level 2 or deeper (``## Context``): a prompt's title line is not a section."""
UNKNOWN = "I don't know."

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_LIST_MARKER = re.compile(r"^\s*(?:\[\d+\]|\d+[.)]|[-*•])\s*")
_QUESTION_LINE = re.compile(r"^[ \t]*question[ \t]*:[ \t]*(\S.*)$", re.IGNORECASE | re.MULTILINE)


def content_words(text: str, stop: frozenset[str]) -> set[str]:
    """The lower-cased words of ``text`` that are not in ``stop``."""
    return {word for word in WORD.findall(text.lower()) if word not in stop}


def sections(text: str, heading: re.Pattern[str]) -> dict[str, str]:
    """Headings matched by ``heading`` (lower-cased) -> the text under them."""
    heads = list(heading.finditer(text))
    out: dict[str, str] = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out[head.group(1).strip().lower()] = text[head.end() : end].strip()
    return out


def sentences(text: str) -> list[str]:
    """The sentences and list items of ``text``, list markers dropped, headings left out."""
    out = []
    for piece in _SENTENCE_END.split(text):
        sentence = _LIST_MARKER.sub("", piece).strip()
        if sentence and not sentence.startswith("#"):
            out.append(sentence)
    return out


def extractive_answer(
    user: str, *, heading: re.Pattern[str], context_names: Sequence[str], stop: frozenset[str]
) -> str:
    """The sentence of the context that best overlaps the question, or `UNKNOWN` when none shares a word.

    The question is the ``question`` section, else the last ``Question:`` line, else the last line; the context
    is the first section named in ``context_names``, else the rest of the text. Ties go to the earlier sentence,
    so the best-ranked passage wins.
    """
    found = sections(user, heading)
    question = found.get("question", "")
    if not question:
        lines = _QUESTION_LINE.findall(user)
        question = lines[-1] if lines else (user.strip().splitlines() or [""])[-1]
    context = next((found[name] for name in context_names if name in found), "")
    if not context:
        context = user.replace(question, " ")
    wanted = content_words(question, stop)
    best, best_overlap = "", 0
    for sentence in sentences(context):
        if sentence.lower().startswith("question:"):
            continue
        overlap = len(wanted & content_words(sentence, stop))
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    return best or UNKNOWN
