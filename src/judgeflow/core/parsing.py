"""Reading a score out of a judge's reply, without ever raising.

Judges are asked for the CorrectnessEvaluator format: a score alone on the first line, then the reasoning
("4.0\\nThe answer is correct but omits the year."). Real replies drift from it: the score alone with no
newline, leading blank lines, "Score: 4", "**Score:** 4/5", the reasoning first and the score last. The
parser LlamaIndex shipped split on the first newline and unpacked two values, so a bare "4" crashed the whole
evaluation loop and "\\n4.0\\n..." silently lost its score (llama_index issue 17960, PR 22968).

`parse_judge_reply` is total: any string gives `Scored` or `Unparsed`, and `raw` always holds the reply
unchanged. It prefers explicit signals, in this order:

1. the first line is only a score ("4", "4.5", "Score: 4", "**Score:** 4", "Rating: 4/5", "4 out of 5");
2. the last line is only a score (the reasoning came first);
3. an explicit "score/rating/grade ... x" phrase anywhere ("Therefore the score is 3."), the last one winning;
4. "x/5" or "x out of 5" anywhere, the last one winning.

A line that is only a number decides, even when the number is out of range ("7" is `Unparsed`, not a hunt
through the reasoning for something better). Scattered signals (3 and 4) are weaker: an out-of-range one is
reported only when no in-range one exists, so "grade 10 students ... 4/5" still reads as 4.

Bare numbers inside reasoning ("in 1906", "5 years") are never taken as the score. A score on another scale
("8/10") is not rescaled: it is reported as off-scale unless the reply also carries an explicit score on ours.
Only ASCII digits count, and the grammar has no exponents, so "nan", "inf" and "1e3" never read as numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from judgeflow.protocol.messages import JudgeReply, Usage
from judgeflow.protocol.verdicts import Scored, Unparsed

__all__ = ["SCORE_ONLY_FOLLOW_UP", "format_judge_reply", "judge_reply", "parse_judge_reply", "scored_reply"]

SCORE_ONLY_FOLLOW_UP = (
    "Your reply could not be read as a score. Reply with the score alone: a single number from 1 to 5 "
    "(for example 4 or 4.5), with no other text."
)

# The characters str.splitlines() breaks on, so "a line" means the same thing here as everywhere else.
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAK = re.compile(f"\r\n|[{_BREAKS}]")

# Every pattern below runs on flattened text (`_flatten`): whitespace runs are one space and blank lines are
# gone. That keeps the patterns simple and, more to the point, linear: with raw "\s*" next to "\s*", a line
# of 20,000 spaces after "Score" took seconds to reject.
_NUM = r"[0-9]+(?:\.[0-9]+)?"
_SIGNED_NUM = r"[-+]?" + _NUM
# A number must not run on into more digits, and "3-4" or "1 to 5" is a range, not a score.
_NUM_END = r"(?![0-9]|\.[0-9])(?! ?(?:-|–|—|to\b|and\b) ?[0-9])"
# Either a clean denominator or no slash at all: "4/5/2020" is a date, not a 4.
_DENOMINATOR = rf"(?: ?(?:/|\bout of\b) ?(?P<den>{_NUM})(?![0-9]|\.[0-9]| ?/)|(?! ?(?:/|\bout of\b)))"
_LABEL = r"(?:(?:final|overall|total|correctness) )?(?:score|rating|grade)"
# "Score (1-5): 4", "score from 1 to 5: 4", "rating on a scale of 1-5: 4"
_SCALE_NOTE = (
    r"(?: ?\([^()\n]{0,20}\)"
    r"| (?:from|on a scale of) [0-9]+(?:\.[0-9]+)? ?(?:-|–|to) ?[0-9]+(?:\.[0-9]+)?)?"
)

# A whole line that is only a score, once markdown decoration is removed.
_SCORE_LINE = re.compile(
    rf"(?:{_LABEL}{_SCALE_NOTE} ?(?:[:=]|-|–|—|\bis\b|\bof\b)? ?)?"
    rf"(?P<num>{_SIGNED_NUM}){_NUM_END}{_DENOMINATOR} ?\.?",
    re.IGNORECASE,
)
_DECORATION = re.compile(r"[*_`#\[\]]")

# "score ... x": a keyword, a short gap that crosses no digit, line break or sentence end, then the number;
# or a "Score:" line with the number alone on the next.
_SCORE_PHRASE = re.compile(
    rf"\b{_LABEL}\b{_SCALE_NOTE}(?:[^0-9.;!?\n]{{0,30}}?|[*_ ]{{0,4}}[:=][*_ ]{{0,4}}\n[*_ ]{{0,4}})"
    rf"(?<![0-9])(?P<num>{_SIGNED_NUM}){_NUM_END}{_DENOMINATOR}",
    re.IGNORECASE,
)

# "x/5" or "x out of 5" anywhere; dates ("4/5/2020") and ordinals ("1/5th") are not scores.
_FRACTION = re.compile(
    rf"(?<![0-9./])(?P<num>{_NUM}) ?(?:/|\bout of\b) ?(?P<den>{_NUM})(?![0-9]|\.[0-9]| ?/ ?[0-9]|[A-Za-z])",
    re.IGNORECASE,
)

_SHOWN_CHARS = 24  # how much of an odd number to quote in a reason


@dataclass(frozen=True, slots=True)
class _Candidate:
    text: str  # the number as written, for reasons
    value: float
    denominator: float | None


def parse_judge_reply(raw: str, *, low: float = 1.0, high: float = 5.0) -> Scored | Unparsed:
    """Read the score and reasoning from a judge reply; never raises.

    Returns `Scored` when a score on ``[low, high]`` is found (reasoning is the rest of the reply, stripped),
    and `Unparsed` with a short reason otherwise: ``"empty reply"``, ``"no score found"``,
    ``"score 7 is outside 1-5"`` or ``"score 8/10 is not on the 1-5 scale"``. ``raw`` is the reply, unchanged.
    """
    text = raw.strip()
    if not text:
        return Unparsed(raw=raw, reason="empty reply")
    scale = f"{low:g}-{high:g}"
    off_scale: list[_Candidate] = []

    first, rest = _split_first_line(text)
    line_signals = [(first, rest)]
    if first != text:
        line_signals.append(_split_last_line(text))
    for line, reasoning in line_signals:
        match = _SCORE_LINE.fullmatch(_flatten(_DECORATION.sub("", line)))
        candidate = None if match is None else _candidate(match)
        if candidate is None:
            continue
        if not _on_scale(candidate, high):
            off_scale.append(candidate)
            continue
        # A line that is nothing but a number is the judge's answer, even when it is off the range.
        if _in_range(candidate, low, high):
            return Scored(score=candidate.value, reasoning=reasoning, raw=raw)
        return _outside(candidate, raw=raw, scale=scale)

    # Scattered signals: a stray "grade 10" in the reasoning must not hide a "4/5" later, so an
    # out-of-range number here is only reported when nothing on the range turns up.
    outside: _Candidate | None = None
    flat = _flatten(text)
    for pattern in (_SCORE_PHRASE, _FRACTION):
        candidates = [c for c in map(_candidate, pattern.finditer(flat)) if c is not None]
        if pattern is _SCORE_PHRASE:
            off_scale.extend(c for c in candidates if not _on_scale(c, high))
        candidates = [c for c in candidates if _on_scale(c, high)]
        for candidate in reversed(candidates):
            if _in_range(candidate, low, high):
                return Scored(score=candidate.value, reasoning=text, raw=raw)
        if outside is None and candidates:
            outside = candidates[-1]

    if outside is not None:
        return _outside(outside, raw=raw, scale=scale)
    if off_scale:
        return Unparsed(raw=raw, reason=f"score {_shown(off_scale[-1])} is not on the {scale} scale")
    return Unparsed(raw=raw, reason="no score found")


def judge_reply(text: str, model: str, usage: Usage | None = None, cost_usd: float | None = None) -> JudgeReply:
    """A judge's text reply with its verdict read once, here: what every judge that replies in text returns."""
    return JudgeReply(parse_judge_reply(text), text, model, usage, cost_usd)


def scored_reply(score: float, reasoning: str, model: str) -> JudgeReply:
    """The reply of a judge that computes its score (a local stand-in): `format_judge_reply`'s text, and the
    verdict that parsing it gives back (the round trip is exact), without parsing it."""
    text = format_judge_reply(score, reasoning)
    return JudgeReply(Scored(float(score), reasoning.strip(), text), text, model)


def format_judge_reply(score: float, reasoning: str) -> str:
    """The reply a local judge emits: the score alone on the first line, the reasoning after it.

    ``repr`` keeps every digit, so `parse_judge_reply` gives back exactly ``score`` (and
    ``reasoning.strip()``) for any score on the scale.
    """
    head = repr(float(score))
    body = reasoning.strip()
    return f"{head}\n{body}" if body else head


def _flatten(text: str) -> str:
    """Each non-blank line with its whitespace runs collapsed to one space, joined by newlines."""
    lines = (" ".join(line.split()) for line in _LINE_BREAK.split(text))
    return "\n".join(line for line in lines if line)


def _split_first_line(text: str) -> tuple[str, str]:
    match = _LINE_BREAK.search(text)
    if match is None:
        return text, ""
    return text[: match.start()], text[match.end() :].strip()


def _split_last_line(text: str) -> tuple[str, str]:
    """The last line and everything before it; the line is ``text`` itself when there is only one."""
    cut = max(text.rfind(ch) for ch in _BREAKS)
    if cut < 0:
        return text, ""
    return text[cut + 1 :], text[:cut].strip()


def _candidate(match: re.Match[str]) -> _Candidate | None:
    number = match.group("num")
    den = match.group("den")
    try:
        value = float(number)
        denominator = None if den is None else float(den)
    except (ValueError, OverflowError):  # the grammar admits only plain decimals; this is belt and braces
        return None
    if den is not None:
        number = f"{number}/{den}"
    return _Candidate(text=number, value=value, denominator=denominator)


def _on_scale(candidate: _Candidate, high: float) -> bool:
    return candidate.denominator is None or candidate.denominator == high


def _in_range(candidate: _Candidate, low: float, high: float) -> bool:
    return math.isfinite(candidate.value) and low <= candidate.value <= high


def _outside(candidate: _Candidate, *, raw: str, scale: str) -> Unparsed:
    return Unparsed(raw=raw, reason=f"score {_shown(candidate)} is outside {scale}")


def _shown(candidate: _Candidate) -> str:
    text = candidate.text
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"
