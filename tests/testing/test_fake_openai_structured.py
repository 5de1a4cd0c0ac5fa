"""The fake OpenAI server's constrained output and token log probabilities, through the real SDK."""

from __future__ import annotations

import json
import math
from typing import Any

import openai
import pytest

from judgeflow.core.prompts import DEFAULT_JUDGE_PROMPT, DEFAULT_QUESTION_PROMPT
from judgeflow.core.questions import questions_output
from judgeflow.core.scoring import JUDGE_SCHEMA
from judgeflow.protocol.messages import JudgeInput
from judgeflow.testing import FakeOpenAI
from openai_doubles import running

pytestmark = pytest.mark.anyio

ITEM = JudgeInput(
    question="When was the Eiffel Tower completed?",
    reference="The Eiffel Tower was completed in 1889.",
    answer="It was completed in 1889.",
)
STRICT: Any = {"type": "json_schema", "json_schema": {"name": "judgement", "strict": True, "schema": JUDGE_SCHEMA}}


def _messages(*, json_reply: bool = True) -> Any:
    return [{"role": m.role, "content": m.content} for m in DEFAULT_JUDGE_PROMPT.messages(ITEM, json_reply=json_reply)]


async def test_json_schema_gives_an_integer_score_and_reasoning() -> None:
    async with running() as (_, client):
        reply = await client.chat.completions.create(model="gpt-4o", messages=_messages(), response_format=STRICT)
    data = json.loads(reply.choices[0].message.content or "")
    assert set(data) == {"score", "reasoning"}
    assert data["score"] in (1, 2, 3, 4, 5)
    assert data["reasoning"]


async def test_strict_mode_refuses_a_schema_it_cannot_enforce() -> None:
    loose = {"type": "object", "properties": {"score": {"type": "integer"}, "reasoning": {"type": "string"}}}
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "j", "strict": True, "schema": loose}}
    async with running() as (_, client):
        with pytest.raises(openai.BadRequestError, match="additionalProperties"):
            await client.chat.completions.create(model="gpt-4o", messages=_messages(), response_format=fmt)
        partial = {**JUDGE_SCHEMA, "required": ["score"]}
        fmt["json_schema"]["schema"] = partial
        with pytest.raises(openai.BadRequestError, match="Missing 'reasoning'"):
            await client.chat.completions.create(model="gpt-4o", messages=_messages(), response_format=fmt)


async def test_json_mode_needs_the_word_json_in_the_messages() -> None:
    async with running() as (_, client):
        with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
            await client.chat.completions.create(
                model="gpt-4o", messages=_messages(json_reply=False), response_format={"type": "json_object"}
            )
        ok = await client.chat.completions.create(
            model="gpt-4o", messages=_messages(), response_format={"type": "json_object"}
        )
    assert "score" in json.loads(ok.choices[0].message.content or "")


async def test_an_unsupported_format_is_refused_like_llama_cpp() -> None:
    config = FakeOpenAI(response_formats=frozenset({"json_object"}), format_refusal="llamacpp")
    async with running(config) as (_, client):
        with pytest.raises(openai.InternalServerError, match="Input should be 'text' or 'json_object'"):
            await client.chat.completions.create(model="gpt-4o", messages=_messages(), response_format=STRICT)
    config = FakeOpenAI(response_formats=frozenset())
    async with running(config) as (_, client):
        with pytest.raises(openai.BadRequestError, match="'response_format' of type 'json_schema' is not supported"):
            await client.chat.completions.create(model="gpt-4o", messages=_messages(), response_format=STRICT)


async def test_logprobs_have_openais_shape_and_a_distribution_at_the_score() -> None:
    async with running() as (_, client):
        reply = await client.chat.completions.create(
            model="gpt-4o", messages=_messages(), response_format=STRICT, logprobs=True, top_logprobs=10
        )
    choice = reply.choices[0]
    assert choice.logprobs is not None
    assert choice.logprobs.content
    tokens = choice.logprobs.content
    content = choice.message.content or ""
    assert "".join(t.token for t in tokens) == content
    assert all(t.bytes == list(t.token.encode()) for t in tokens)
    score = json.loads(content)["score"]
    at = next(t for t in tokens if t.token.strip() == str(score))
    alternatives = {alt.token: alt.logprob for alt in at.top_logprobs}
    assert len(alternatives) == len(at.top_logprobs) <= 10
    assert {str(k) for k in range(1, 6)} <= {token.strip() for token in alternatives}
    assert sum(math.exp(lp) for lp in alternatives.values()) <= 1.0 + 1e-9
    assert " 0" in alternatives or "0" in alternatives  # tokens that are not scores are there too
    assert at.logprob == alternatives[at.token]


async def test_logprobs_are_checked_dropped_or_refused_as_configured() -> None:
    async with running() as (_, client):
        with pytest.raises(openai.BadRequestError, match="between 0 and 20"):
            await client.chat.completions.create(model="gpt-4o", messages=_messages(), logprobs=True, top_logprobs=25)
        with pytest.raises(openai.BadRequestError, match="requires 'logprobs'"):
            await client.chat.completions.create(model="gpt-4o", messages=_messages(), top_logprobs=5)
    async with running(FakeOpenAI(logprobs="dropped")) as (_, client):
        reply = await client.chat.completions.create(
            model="gpt-4o", messages=_messages(), logprobs=True, top_logprobs=5
        )
        assert reply.choices[0].logprobs is None
    async with running(FakeOpenAI(logprobs="refused")) as (_, client):
        with pytest.raises(openai.BadRequestError, match="logprobs"):
            await client.chat.completions.create(model="gpt-4o", messages=_messages(), logprobs=True, top_logprobs=5)


async def test_the_question_writer_gets_a_json_list() -> None:
    context = "The harbour town of Quillport was founded in 1702. In 1788 a stone lighthouse was built."
    messages: Any = [
        {"role": m.role, "content": m.content}
        for m in DEFAULT_QUESTION_PROMPT.messages(context, num_questions=2, json_reply=True)
    ]
    output = questions_output(2)
    fmt: Any = {"type": "json_schema", "json_schema": {"name": output.name, "strict": True, "schema": output.schema}}
    async with running() as (_, client):
        reply = await client.chat.completions.create(model="gpt-4o", messages=messages, response_format=fmt)
    questions = json.loads(reply.choices[0].message.content or "")["questions"]
    assert len(questions) == 2
    assert all(set(q) == {"question", "reference"} for q in questions)
