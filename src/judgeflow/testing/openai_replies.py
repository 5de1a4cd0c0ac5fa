"""What the fake OpenAI server answers: deterministic replies, pure functions of (model, messages, config).

Kept out of the HTTP layer so that the rules that make teacher/student agreement experiments mean something can
be read, and tested, as plain functions. No randomness except what a hash of the request fixes:

* **Judge** - the last user message has the sections ``## Reference Answer`` and ``## Generated Answer``
  (and usually ``## Question``). The reply is a score from 1 to 5 in steps of 0.5, then one sentence of
  reasoning (``FakeOpenAI.judge_format`` picks the layout). The rule depends on the model:

  - *teacher rule* (fine-tuned ``ft:...`` models and every model not listed in ``crude_judge_models``):
    ``1 + 4 * F1`` of the content words (lower-cased, stop words dropped) of the generated answer against the
    reference answer, rounded to the nearest 0.5. ``ft_judge_noise`` moves that share of the fine-tuned
    model's scores one point towards the middle, so a fine-tuned student agrees well but not perfectly.
  - *crude rule* (base student models, ``crude_judge_models``, e.g. ``gpt-3.5-turbo``, ``gpt-4o-mini``):
    longer answers look better, ``1 + words / 5`` capped at 5, rounded to 0.5, whatever the reference says.

  The reasoning sentence contains no digits, so a score is the only number in a judge reply.
  ``judge_garbage_rate`` replaces that share of judge replies (chosen by a hash of the request, not by
  order) with text that contains no score at all.
* **Question writer** - the prompt mentions a quiz or asks to write/generate questions. The reply is
  ``Question: ...?\\nAnswer: ...`` built from the first sentence(s) of the context (the ``## Context`` /
  ``## Document`` section, else the longest paragraph of the last user message); "3 questions" asks for three
  pairs, separated by blank lines.
* **Answerer** - anything else: the sentence of the context that shares the most words with the question
  (``## Question`` section or a ``Question:`` line), or ``I don't know.`` when none does.

``FakeOpenAI.reply_fn`` replaces all of this with a plain function ``(model, messages) -> content`` (``None``
sends ``"content": null``).
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from collections.abc import Sequence
from functools import lru_cache

from . import _text
from ._text import SUBHEADING, WORD
from .openai_config import FakeOpenAI

__all__ = ["embed", "estimate_tokens", "reply_for", "unit_hash", "word_tokens"]


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOP = _wordset(
    "a an and are as at be been but by did do does for from had has have he her his how i in is it its "
    "of on or she that the their them they this to was were what when where which who whom why will with "
    "you your"
)
_WRITE_QUESTIONS = re.compile(
    r"\b(?:write|generate|create|draft|produce|ask)\s+(?:[\w-]+\s+){0,3}questions?\b", re.IGNORECASE
)
_QUESTION_COUNT = re.compile(
    r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?:[\w-]+\s+){0,2}questions?(?:\(s\))?",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
_SUBJECT_END = _wordset(
    "is was are were has had have became becomes won wrote founded discovered invented built created developed "
    "lies lie runs run contains contain includes include covers cover remains remain began begins led leads "
    "served serves produced produces described describes"
)
_PRONOUNS = _wordset("it its he she they this these those there his her their")
_LOWER_FIRST = frozenset({"the", "a", "an", "this", "these", "its", "their", "his", "her"})
_GARBAGE = (
    "I am not able to grade this answer.",
    "The answer seems fine overall, more or less.",
    "Hard to say; it depends on what the question meant.",
)

_ANSWER_CONTEXTS = ("context", "passages", "documents", "retrieved context", "sources")


def word_tokens(text: str) -> list[str]:
    return WORD.findall(text.lower())


def unit_hash(*parts: str) -> float:
    """A fraction in [0, 1) fixed by the parts: per-item draws that do not depend on request order."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _round_half(x: float) -> float:
    return min(5.0, max(1.0, math.floor(x * 2.0 + 0.5) / 2.0))


def _short_score(score: float) -> str:
    return str(int(score)) if score == int(score) else f"{score:.1f}"


def _teacher_rule(reference: str, generated: str) -> tuple[float, str]:
    ref, gen = _text.content_words(reference, _STOP), _text.content_words(generated, _STOP)
    common = len(ref & gen)
    f1 = 0.0 if common == 0 else 2.0 * common / (len(ref) + len(gen))
    score = _round_half(1.0 + 4.0 * f1)
    if score >= 4.5:
        reason = "The answer agrees with the reference answer in substance."
    elif score >= 3.5:
        reason = "The answer is mostly correct but leaves out some details of the reference answer."
    elif score >= 2.5:
        reason = "The answer is partly correct and misses key facts of the reference answer."
    elif score >= 1.5:
        reason = "The answer has little in common with the reference answer."
    else:
        reason = "The answer does not match the reference answer at all."
    return score, reason


def _crude_rule(generated: str) -> tuple[float, str]:
    score = _round_half(1.0 + len(word_tokens(generated)) / 5.0)
    if score >= 4.0:
        return score, "The answer is long and detailed, so it is probably correct."
    if score >= 2.5:
        return score, "The answer is reasonably detailed."
    return score, "The answer is very short and gives little detail."


def _judge_reply(model: str, sections: dict[str, str], config: FakeOpenAI) -> str:
    question = sections.get("question") or sections.get("user query", "")
    reference = sections["reference answer"]
    generated = sections["generated answer"]
    item = (str(config.seed), model, question, reference, generated)
    if model.startswith("ft:"):
        score, reason = _teacher_rule(reference, generated)
        if config.ft_judge_noise and unit_hash("noise", *item) < config.ft_judge_noise:
            score = score - 1.0 if score > 3.0 else score + 1.0
    elif model.startswith(config.crude_judge_models):
        score, reason = _crude_rule(generated)
    else:
        score, reason = _teacher_rule(reference, generated)
    fmt = config.judge_format
    if fmt == "garbage" or (config.judge_garbage_rate and unit_hash("garbage", *item) < config.judge_garbage_rate):
        return _GARBAGE[int(unit_hash("which", *item) * len(_GARBAGE))]
    if fmt == "score-only":
        return _short_score(score)
    if fmt == "reasoning-first":
        return f"Reasoning: {reason}\nScore: {_short_score(score)}"
    return f"{score:.1f}\n{reason}"


def _ends_subject(words: list[str], i: int) -> bool:
    word = words[i].lower()
    if word in _SUBJECT_END:
        return True
    # A past-tense verb ("designed"), unless it is an adjective after an article ("the renowned tower").
    return word.endswith("ed") and len(word) > 4 and words[i - 1].lower() not in _LOWER_FIRST


def _question_for(sentence: str) -> str:
    words = sentence.rstrip(".!?").split()
    cut = next((i for i in range(1, min(len(words), 7)) if _ends_subject(words, i)), 0)
    subject = words[:cut] if cut else words[:4]
    if subject and subject[0].lower() in _LOWER_FIRST | _PRONOUNS:
        subject = [subject[0].lower(), *subject[1:]]
    about = " ".join(subject).strip(",;:") or "this text"
    return f"What does the text say about {about}?"


def _write_questions(user: str, prompt: str) -> str:
    sections = _text.sections(user, SUBHEADING)
    context = next((sections[k] for k in ("context", "document", "text", "passage", "source") if sections.get(k)), "")
    if context:
        # The instructions often follow the context in the same section: stop at them.
        paragraphs = re.split(r"\n\s*\n", context)
        cut = next((i for i, p in enumerate(paragraphs) if _WRITE_QUESTIONS.search(p)), len(paragraphs))
        context = "\n\n".join(paragraphs[:cut]) or context
    else:
        paragraphs = [p for p in re.split(r"\n\s*\n", user) if p.strip()]
        context = max(paragraphs, key=len, default="")
    wanted = 1
    if match := _QUESTION_COUNT.search(prompt):
        token = match.group(1).lower()
        wanted = max(1, min(10, int(token) if token.isdigit() else _NUMBER_WORDS[token]))
    sentences = [s for s in _text.sentences(context) if len(s.split()) >= 4] or _text.sentences(context)
    # Sentences that open with a pronoun make poor questions ("What does the text say about it?"): last.
    sentences.sort(key=lambda s: s.split()[0].lower() in _PRONOUNS)
    if not sentences:
        return "Question: What is this text about?\nAnswer: It is empty."
    pairs = [f"Question: {_question_for(s)}\nAnswer: {s}" for s in sentences[:wanted]]
    return "\n\n".join(pairs)


def reply_for(model: str, messages: Sequence[tuple[str, str]], config: FakeOpenAI) -> str | None:
    """The content the fake server answers ``messages`` with (see the module docstring for the rules)."""
    if config.reply_fn is not None:
        return config.reply_fn(model, messages)
    user = next((content for role, content in reversed(messages) if role == "user"), "")
    sections = _text.sections(user, SUBHEADING)
    if "reference answer" in sections and "generated answer" in sections:
        return _judge_reply(model, sections, config)
    prompt = "\n".join(content for _, content in messages)
    if "quiz" in prompt.lower() or _WRITE_QUESTIONS.search(prompt):
        return _write_questions(user, prompt)
    return _text.extractive_answer(user, heading=SUBHEADING, context_names=_ANSWER_CONTEXTS, stop=_STOP)


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


@lru_cache(maxsize=1 << 16)
def _token_hash(token: str) -> int:
    return zlib.crc32(token.encode())


def embed(text: str, dim: int) -> list[float]:
    """A hashed bag of words: texts sharing words point the same way, so dense retrieval behaves sensibly."""
    vec = [0.0] * dim
    tokens = [w for w in word_tokens(text) if w not in _STOP] or word_tokens(text)
    for token in tokens:
        h = _token_hash(token)
        vec[h % dim] += 1.0 if h & 0x80000000 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]
