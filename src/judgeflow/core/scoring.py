"""The one reader of a judge's reply, whatever it was asked for: recipe text, JSON, or JSON with token probabilities.

Three scoring modes ask a judge differently (`ScoringMode`), and every reply, in any of them, goes through
`parse_judge_output`, which never raises:

- ``reply``: the recipe's text format ("4.0\\nThe answer ..."), read by `judgeflow.core.parsing.parse_judge_reply`;
- ``json``: a JSON object ``{"score": 1-5, "reasoning": ...}`` (`JUDGE_SCHEMA`), read leniently: control
  characters inside strings are accepted, a reply cut off by ``max_tokens`` still gives its score, and a server
  that ignored the format and answered in the recipe's text is read as text;
- ``logprobs``: the same reply plus the log probabilities of its tokens. The score is read at the token that
  holds it: the probabilities of the tokens "1".."5" there (" 4" counts as "4") are renormalised to sum to 1, and
  the score is their probability-weighted mean (the "G-Eval" expected score). Renormalising over the five scores
  gives the same distribution whether the server reports it before or after a grammar masked other tokens
  (llama.cpp reports it before). When the score's token cannot be found among the probabilities, the reply's own
  score is kept, without a distribution.

A reply with no usable score is `Unparsed`, with the reply unchanged and the reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

from judgeflow.core.parsing import parse_judge_reply
from judgeflow.protocol.calls import JsonOutput, TokenLogprob
from judgeflow.protocol.verdicts import Scored, Unparsed

__all__ = [
    "JUDGE_SCHEMA",
    "SCORES",
    "SCORING_MODES",
    "ScoringMode",
    "judge_output",
    "parse_judge_output",
    "score_distribution",
    "scoring_mode",
]

ScoringMode: TypeAlias = Literal["reply", "json", "logprobs"]
SCORING_MODES: tuple[ScoringMode, ...] = ("reply", "json", "logprobs")
SCORES = (1, 2, 3, 4, 5)

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # An enum, not minimum/maximum: llama.cpp's grammar enforces enums but not numeric bounds.
        "score": {"type": "integer", "enum": list(SCORES)},
        "reasoning": {"type": "string"},
    },
    "required": ["score", "reasoning"],
    "additionalProperties": False,
}

_LOW, _HIGH = float(SCORES[0]), float(SCORES[-1])
_SCORE_FIELD = re.compile(r'"score"\s*:\s*"?(?P<num>-?[0-9]+(?:\.[0-9]+)?)')
# The score at the start of a recipe reply, after markdown decoration or a "Score:" label.
_LEADING_SCORE = re.compile(
    r"\s*(?:[*_#>`\[\]]+\s*)*(?:(?:final |overall )?(?:score|rating|grade)\b[^0-9\n]{0,12})?(?P<num>[0-9])",
    re.IGNORECASE,
)


def scoring_mode(value: str) -> ScoringMode:
    """``value`` as a `ScoringMode`; ValueError naming the modes when it is none of them."""
    for mode in SCORING_MODES:
        if value == mode:
            return mode
    raise ValueError(f"scoring must be one of {', '.join(SCORING_MODES)}; got {value!r}")


def judge_output(kind: Literal["json_schema", "json_object"] = "json_schema") -> JsonOutput:
    """The constrained output a judge asks for in the ``json`` and ``logprobs`` modes."""
    return JsonOutput.of("judgement", JUDGE_SCHEMA, kind)


def parse_judge_output(
    raw: str, *, json_reply: bool = False, logprobs: Sequence[TokenLogprob] | None = None
) -> Scored | Unparsed:
    """The verdict of one judge reply (see the module docstring); never raises.

    ``json_reply``: the judge was asked for JSON. ``logprobs``: the reply's tokens with their top alternatives;
    with them, a found score becomes the mean of its distribution and the verdict carries ``probs``.
    """
    verdict = _read_json(raw) if json_reply else parse_judge_reply(raw)
    if not isinstance(verdict, Scored) or not logprobs:
        return verdict
    probs = score_distribution(logprobs, json_reply=json_reply)
    if probs is None:
        return verdict
    mean = sum(score * p for score, p in zip(SCORES, probs, strict=True))
    return Scored(mean, verdict.reasoning, raw, probs)


def score_distribution(tokens: Sequence[TokenLogprob], *, json_reply: bool) -> tuple[float, ...] | None:
    """The probabilities of the scores 1..5 at the token that holds the reply's score, summing to 1; or None.

    The reply is the tokens' concatenation; the score is the ``"score"`` field's first digit (JSON) or the first
    digit of a reply that opens with its score (text).
    """
    text = "".join(token.token for token in tokens)
    match = _SCORE_FIELD.search(text) if json_reply else _LEADING_SCORE.match(text)
    if match is None:
        return None
    at = match.start("num")
    start = 0
    for token in tokens:
        end = start + len(token.token)
        if start <= at < end:
            return _renormalised(token)
        start = end
    return None


def _renormalised(token: TokenLogprob) -> tuple[float, ...] | None:
    # One entry per distinct token text (llama.cpp appends the chosen token when it is not among the top ones).
    seen: dict[str, float] = {token.token: token.logprob}
    for text, logprob in token.top:
        seen[text] = max(logprob, seen.get(text, -math.inf))
    mass = dict.fromkeys(SCORES, 0.0)
    for text, logprob in seen.items():
        key = text.strip()
        if key.isdigit() and int(key) in mass and math.isfinite(logprob):
            mass[int(key)] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0.0:
        return None
    return tuple(mass[score] / total for score in SCORES)


def _read_json(raw: str) -> Scored | Unparsed:
    """A score and reasoning from a JSON reply, leniently; a reply in the recipe's text format is read as text."""
    if not raw.strip():
        return Unparsed(raw=raw, reason="empty reply")
    data = _first_object(raw)
    if data is not None and "score" in data:
        return _scored(data.get("score"), _reasoning(data), raw)
    match = _SCORE_FIELD.search(raw)
    if match is not None:  # cut off (max_tokens) or malformed, but the score was written
        return _scored(match.group("num"), "", raw)
    as_text = parse_judge_reply(raw)
    if isinstance(as_text, Scored):
        return as_text
    return Unparsed(raw=raw, reason="no score in the JSON reply" if data is not None else as_text.reason)


def _first_object(raw: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder(strict=False)  # strict=False: a raw newline inside a string is fine
    start = raw.find("{")
    while start >= 0:
        try:
            value, _ = decoder.raw_decode(raw, start)
        except ValueError:
            start = raw.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = raw.find("{", start + 1)
    return None


def _reasoning(data: dict[str, Any]) -> str:
    reasoning = data.get("reasoning")
    if isinstance(reasoning, str):
        return reasoning.strip()
    other = next((v for k, v in data.items() if k != "score" and isinstance(v, str)), "")
    return other.strip()


def _scored(value: object, reasoning: str, raw: str) -> Scored | Unparsed:
    score: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        score = float(value)
    elif isinstance(value, str):
        try:
            score = float(value.strip())
        except ValueError:
            score = None
    if score is None or not math.isfinite(score):
        shown = json.dumps(value)[:24]
        return Unparsed(raw=raw, reason=f"the JSON score {shown} is not a number")
    if not _LOW <= score <= _HIGH:
        return Unparsed(raw=raw, reason=f"score {score:g} is outside {_LOW:g}-{_HIGH:g}")
    return Scored(score, reasoning, raw)
