"""Against the real OpenAI API: opt in with ``--live`` and ``OPENAI_API_KEY``; each test costs a fraction of a cent."""

from __future__ import annotations

import os

import pytest

from judgeflow.calls.context import CallContext
from judgeflow.calls.gate import Limits
from judgeflow.calls.roles import LLMJudge
from judgeflow.core.parsing import parse_judge_reply
from judgeflow.protocol import JudgeInput, Scored
from judgeflow.providers.openai.provider import OpenAIChat

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY"),
]

MODEL = os.environ.get("JUDGEFLOW_OPENAI_LIVE_MODEL", "gpt-4o-mini")


async def test_live_judge_scores_an_answer() -> None:
    context = CallContext.create(limits_for=lambda _key: Limits(max_in_flight=2), max_cost_usd=0.05)
    async with OpenAIChat(MODEL) as chat:
        judge = LLMJudge(chat, context=context, max_tokens=200)
        reply = await judge.judge(
            JudgeInput(
                question="In what year did the Golden Gate Bridge open?",
                reference="The Golden Gate Bridge opened in 1937.",
                answer="It opened in 1937.",
            )
        )
    verdict = parse_judge_reply(reply.text)
    assert isinstance(verdict, Scored), reply.text
    assert verdict.score >= 4
    assert reply.cost_usd is not None
    assert reply.cost_usd < 0.05
