"""Constrained output and token log probabilities, the way OpenAI (and, when told to, llama.cpp) answers them.

Pure functions over a request body and the plain reply `openai_replies.reply_for` chose:

* `check_features` answers what the API refuses, with its status and words: ``top_logprobs`` above 20 or without
  ``logprobs: true`` (400); a ``json_schema`` that strict mode rejects (400: the root must be an object, every object
  needs ``additionalProperties: false`` and every property in ``required``); JSON mode with no "json" in the
  messages (400). A ``response_format`` type the config does not support is refused the way
  ``FakeOpenAI.format_refusal`` says: OpenAI's 400, or llama.cpp 0.3.36's 500 with its validation text.
* `structured_content` turns the plain reply into the JSON the schema asks for: a judge's ``{"score",
  "reasoning"}`` (the score rounded to a whole number, as an ``enum`` of integers demands; a reply with no score
  gives an object without one), a question writer's ``{"questions": [{"question", "reference"}, ...]}``.
* `token_logprobs` splits the content into tokens that concatenate to it exactly and gives each its log
  probability and top alternatives (OpenAI's shape, ``bytes`` included). At the judge's score token the
  alternatives are a distribution over "1".."5" peaked at the judge's score (spread ``logprob_spread``), with a
  few non-score tokens and the chosen score also in its other spacing ("4" beside " 4"), as real tokenizers do.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from .openai_config import FakeOpenAI, error_body

__all__ = ["check_features", "structured_content", "token_logprobs"]

_SCORES = (1, 2, 3, 4, 5)
_TOKEN = re.compile(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+")
_SCORE_LINE = re.compile(r"^(?:\**score\**:?\s*)?(?P<num>[0-9]+(?:\.[0-9]+)?)\s*$", re.IGNORECASE | re.MULTILINE)
_QA = re.compile(r"^Question: (?P<q>.*)\nAnswer: (?P<a>.*)$", re.MULTILINE)
_LLAMACPP_REFUSAL = (
    "1 validation error:\n  {{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': "
    "\"Input should be 'text' or 'json_object'\", 'input': '{kind}', 'ctx': {{'expected': \"'text' or "
    "'json_object'\"}}}}"
)


def check_features(
    body: dict[str, Any], messages: Sequence[tuple[str, str]], config: FakeOpenAI
) -> tuple[int, dict[str, object]] | None:
    """The error (status, body) the server answers this request's ``response_format`` / ``logprobs`` with, or None."""
    top = body.get("top_logprobs")
    if top is not None:
        if not isinstance(top, int) or not 0 <= top <= 20:
            return _error(400, "'top_logprobs' must be an integer between 0 and 20.", param="top_logprobs")
        if body.get("logprobs") is not True:
            return _error(400, "'top_logprobs' requires 'logprobs' to be true.", param="top_logprobs")
    if body.get("logprobs") and config.logprobs == "refused":
        return _error(400, "This model does not support 'logprobs'.", param="logprobs")
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind not in ("json_object", "json_schema"):
        return _error(400, f"Invalid value for 'response_format.type': {kind!r}.", param="response_format")
    if kind not in config.response_formats:
        if config.format_refusal == "llamacpp":
            return _error(500, _LLAMACPP_REFUSAL.format(kind=kind), type_="internal_server_error")
        message = f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model."
        return _error(400, message, param="response_format")
    if kind == "json_object":
        if not any("json" in text.lower() for _, text in messages):
            message = (
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
            )
            return _error(400, message, param="messages")
        return None
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(schema, dict):
        return _error(400, "Missing required parameter: 'response_format.json_schema'.", param="response_format")
    problem = _strict_problem(schema, "()") if spec.get("strict") else None
    if problem is not None:
        message = f"Invalid schema for response_format '{spec['name']}': In context={problem}."
        return _error(400, message, param="response_format")
    return None


def _error(status: int, message: str, **fields: str) -> tuple[int, dict[str, object]]:
    return status, error_body(message, **fields)


def _strict_problem(schema: dict[str, Any], where: str) -> str | None:
    if where == "()" and schema.get("type") != "object":
        return f"{where}, schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'"
    if schema.get("type") == "object":
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return f"{where}, 'additionalProperties' is required to be supplied and to be false"
        missing = sorted(set(properties) - set(schema.get("required") or ()))
        if missing:
            return (
                f"{where}, 'required' is required to be supplied and to be an array including every key in "
                f"properties. Missing '{missing[0]}'"
            )
        for key, sub in properties.items():
            if isinstance(sub, dict):
                problem = _strict_problem(sub, f"('properties', '{key}')")
                if problem is not None:
                    return problem
    items = schema.get("items")
    if isinstance(items, dict):
        return _strict_problem(items, f"{where} items")
    return None


def structured_content(text: str | None, body: dict[str, Any]) -> tuple[str, float | None]:
    """The JSON reply for a ``response_format`` request, and the judge's score in it (None: not a judgement)."""
    fmt = body.get("response_format") or {}
    schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema") or {}
    properties = schema.get("properties") or {}
    plain = text or ""
    if "questions" in properties:
        pairs = [{"question": m.group("q"), "reference": m.group("a")} for m in _QA.finditer(plain)]
        most = (properties["questions"] or {}).get("maxItems")
        return json.dumps({"questions": pairs[:most] if isinstance(most, int) else pairs}), None
    if "score" in properties or (fmt.get("type") == "json_object" and not properties):
        match = _SCORE_LINE.search(plain)
        if match is None:  # a reply with no score: the object says so by leaving it out
            return json.dumps({"reasoning": plain}), None
        score = float(match.group("num"))
        reasoning = " ".join(line for line in plain.splitlines() if line.strip() and line != match.group(0)).strip()
        whole = min(5, max(1, math.floor(score + 0.5)))
        return json.dumps({"score": whole, "reasoning": reasoning.removeprefix("Reasoning: ")}), score
    return json.dumps({"text": plain}), None


def text_score(text: str | None) -> float | None:
    """The score of a plain judge reply (its score line), for log probabilities without a JSON format."""
    match = _SCORE_LINE.search(text or "")
    return None if match is None else float(match.group("num"))


def token_logprobs(content: str, top_n: int, score: float | None, *, spread: float) -> list[dict[str, Any]]:
    """``choices[0].logprobs.content`` for ``content`` (see the module docstring)."""
    tokens = _TOKEN.findall(content)
    at = _score_token(tokens, content) if score is not None else None
    entries: list[dict[str, Any]] = []
    for index, token in enumerate(tokens):
        if index == at and score is not None:
            entries.append(_score_entry(token, score, top_n, spread))
            continue
        logprob = -0.01 if token.strip() else -0.2
        top = [(token, logprob), ("\n" if token != "\n" else " ", -5.0)][: max(top_n, 0)]
        entries.append(_entry(token, logprob, top))
    return entries


def _score_token(tokens: Sequence[str], content: str) -> int | None:
    """The index of the token holding the score: the ``"score"`` field's value, or a reply's opening digit."""
    field = re.search(r'"score":\s*(?=[0-9])', content)
    offset = field.end() if field is not None else len(content) - len(content.lstrip())
    start = 0
    for index, token in enumerate(tokens):
        end = start + len(token)
        if start <= offset < end:
            return index if token.strip().isdigit() else None
        start = end
    return None


def _score_entry(token: str, score: float, top_n: int, spread: float) -> dict[str, Any]:
    space = " " if token.startswith(" ") else ""
    weights = {k: math.exp(-((k - score) ** 2) / (2 * spread**2)) for k in _SCORES}
    total = sum(weights.values())
    chosen = int(token.strip())
    # 94% of the mass on the scores, split like the weights; the chosen score's share is split between its two
    # spellings; the rest goes to tokens that are not scores.
    alternatives: list[tuple[str, float]] = []
    for k in _SCORES:
        p = 0.94 * weights[k] / total
        if k == chosen:
            alternatives += [(f"{space}{k}", math.log(p * 0.9)), (f"{'' if space else ' '}{k}", math.log(p * 0.1))]
        else:
            alternatives.append((f"{space}{k}", math.log(p)))
    alternatives += [(f"{space}0", math.log(0.03)), (f"{space}6", math.log(0.02)), (' "', math.log(0.01))]
    alternatives.sort(key=lambda alt: -alt[1])
    logprob = next(lp for text, lp in alternatives if text == token)
    return _entry(token, logprob, alternatives[:top_n])


def _entry(token: str, logprob: float, top: Sequence[tuple[str, float]]) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
    }
