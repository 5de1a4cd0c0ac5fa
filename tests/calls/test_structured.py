"""Scoring modes and constrained output over real HTTP: what is asked, what servers refuse, what is remembered.

The fake OpenAI server plays OpenAI (every format, logprobs), llama.cpp (``json_schema`` refused with a 500),
a server with no JSON mode at all, and Ollama before 0.12.11 (logprobs silently dropped).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from judgeflow.calls.cache import ResponseCache
from judgeflow.calls.context import CallContext
from judgeflow.calls.roles import LLMJudge, LLMQuestionWriter
from judgeflow.core.scoring import judge_output
from judgeflow.inputs.corpus import load_corpus
from judgeflow.protocol.calls import ChatRequest
from judgeflow.protocol.events import Event, OutputFallback, ReplyRead
from judgeflow.protocol.messages import JudgeInput
from judgeflow.protocol.verdicts import Scored, Unparsed
from judgeflow.providers.hf.provider import HFChat
from judgeflow.providers.openai.http import chat_body
from judgeflow.providers.openai.provider import OpenAIChat
from judgeflow.runs.store import RunStore
from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai
from judgeflow.testing.tgi_server import serve_tgi

pytestmark = pytest.mark.anyio

ITEMS = [
    JudgeInput("When was the Eiffel Tower completed?", "It was completed in 1889.", "It was completed in 1889."),
    JudgeInput("Who founded Quillport?", "Fishermen from the north founded it in 1702.", "Fishermen did, in 1702."),
    JudgeInput("When did the railway arrive?", "The railway reached Quillport in 1861.", "Some time in the 1900s."),
    JudgeInput("What burned in 1903?", "The old fish market burned down in 1903.", "A church."),
    JudgeInput("What was built in 1788?", "A stone lighthouse on the eastern cliff.", "A stone lighthouse."),
]
LLAMA_CPP = FakeOpenAI(response_formats=frozenset({"json_object"}), format_refusal="llamacpp")


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@asynccontextmanager
async def served(config: FakeOpenAI | None = None) -> AsyncIterator[tuple[OpenAIServer, OpenAIChat]]:
    async with serve_openai(config) as server, OpenAIChat("gpt-4o", base_url=server.base_url, timeout_s=10.0) as chat:
        yield server, chat


async def judge_all(judge: LLMJudge, items: Sequence[JudgeInput] = ITEMS) -> list[Any]:
    verdicts: list[Any] = [None] * len(items)

    async def one(index: int) -> None:
        verdicts[index] = (await judge.judge(items[index])).verdict

    async with anyio.create_task_group() as tg:
        for index in range(len(items)):
            tg.start_soon(one, index)
    return verdicts


async def test_json_scoring_asks_for_structured_output_and_reads_it() -> None:
    events: list[Event] = []
    async with served() as (server, chat):
        judge = LLMJudge(chat, context=CallContext.create(publish=events.append), scoring="json")
        verdicts = await judge_all(judge)
    assert all(isinstance(v, Scored) and v.score in (1, 2, 3, 4, 5) and v.probs is None for v in verdicts)
    assert all(v.raw.startswith('{"score": ') for v in verdicts)
    assert server.stats.responses == {200: len(ITEMS)}
    assert not [e for e in events if isinstance(e, OutputFallback)]


async def test_a_server_that_refuses_json_schema_is_asked_with_json_mode_once_learnt() -> None:
    events: list[Event] = []
    ctx = CallContext.create(publish=events.append)
    async with served(LLAMA_CPP) as (server, chat):
        verdicts = await judge_all(LLMJudge(chat, context=ctx, scoring="json", role="teacher"))
        again = await judge_all(LLMJudge(chat, context=ctx, scoring="json", role="student_base"))
    assert all(isinstance(v, Scored) for v in [*verdicts, *again])
    # One refused request for the whole run, not one per item or worker, and not retried as a 500 would be.
    assert server.stats.responses == {500: 1, 200: 2 * len(ITEMS)}
    fallbacks = [e for e in events if isinstance(e, OutputFallback)]
    assert len(fallbacks) == 1
    assert (fallbacks[0].role, fallbacks[0].feature, fallbacks[0].instead) == ("teacher", "json_schema", "json_object")
    assert "Input should be 'text' or 'json_object'" in fallbacks[0].detail
    assert [f.as_dict()["feature"] for f in ctx.support.fallbacks] == ["json_schema"]


async def test_a_server_with_no_json_mode_gets_the_recipe_reply() -> None:
    ctx = CallContext.create()
    async with served(FakeOpenAI(response_formats=frozenset())) as (server, chat):
        verdicts = await judge_all(LLMJudge(chat, context=ctx, scoring="json"))
    assert all(isinstance(v, Scored) for v in verdicts)
    assert all(not v.raw.startswith("{") for v in verdicts)  # the recipe's text: score line, then reasoning
    assert server.stats.responses == {400: 2, 200: len(ITEMS)}
    assert [(f.feature, f.instead) for f in ctx.support.fallbacks] == [
        ("json_schema", "json_object"),
        ("json_object", "text"),
    ]


def _expected_from_raw(response: dict[str, Any]) -> tuple[float, list[float]]:
    """The weighted mean, computed here from the raw response: the score token's top_logprobs over "1".."5"."""
    choice = response["choices"][0]
    content = choice["message"]["content"]
    score = str(__import__("json").loads(content)["score"])
    entry = next(t for t in choice["logprobs"]["content"] if t["token"].strip() == score)
    mass = [0.0] * 5
    for alt in entry["top_logprobs"]:
        if alt["token"].strip() in {"1", "2", "3", "4", "5"}:
            mass[int(alt["token"]) - 1] += math.exp(alt["logprob"])
    probs = [m / sum(mass) for m in mass]
    return sum((k + 1) * p for k, p in enumerate(probs)), probs


async def test_logprobs_score_is_the_weighted_mean_of_the_raw_responses_score_tokens() -> None:
    events: list[Event] = []
    async with served() as (server, chat):
        judge = LLMJudge(chat, context=CallContext.create(publish=events.append), scoring="logprobs", top_logprobs=20)
        for item in ITEMS:
            verdict = (await judge.judge(item)).verdict
            # The same request, sent by hand: the response the judge read (the fake server is deterministic).
            request = ChatRequest(
                DEFAULT_MESSAGES(item), output=judge_output("json_schema"), top_logprobs=20, temperature=0.0
            )
            async with aiohttp.ClientSession() as session:
                url = server.base_url + "/chat/completions"
                async with session.post(url, json=chat_body("gpt-4o", request)) as response:
                    raw = await response.json()
            expected, probs = _expected_from_raw(raw)
            assert isinstance(verdict, Scored)
            assert verdict.probs == pytest.approx(probs)
            assert verdict.score == pytest.approx(expected)
            assert verdict.likely_score == 1 + max(range(5), key=lambda i: probs[i])
            assert not verdict.score.is_integer()
    assert not [e for e in events if isinstance(e, OutputFallback)]


def DEFAULT_MESSAGES(item: JudgeInput) -> Any:
    from judgeflow.core.prompts import DEFAULT_JUDGE_PROMPT

    return DEFAULT_JUDGE_PROMPT.messages(item, json_reply=True)


async def test_a_server_that_drops_logprobs_is_reported_once_and_the_json_score_used() -> None:
    events: list[Event] = []
    ctx = CallContext.create(publish=events.append)
    async with served(FakeOpenAI(logprobs="dropped")) as (_, chat):
        verdicts = await judge_all(LLMJudge(chat, context=ctx, scoring="logprobs"))
    assert all(isinstance(v, Scored) and v.probs is None and v.score.is_integer() for v in verdicts)
    fallbacks = [e for e in events if isinstance(e, OutputFallback)]
    assert [(f.feature, f.instead, f.detail) for f in fallbacks] == [
        ("logprobs", "json_schema", "the server answered without logprobs")
    ]
    key = next(iter(ctx.support.refused))
    assert not ctx.support.plan(key, json_reply=True, logprobs=True).logprobs


async def test_a_server_that_refuses_logprobs_is_asked_without() -> None:
    ctx = CallContext.create()
    async with served(FakeOpenAI(logprobs="refused")) as (server, chat):
        verdicts = await judge_all(LLMJudge(chat, context=ctx, scoring="logprobs"))
    assert all(isinstance(v, Scored) and v.probs is None for v in verdicts)
    assert server.stats.responses == {400: 1, 200: len(ITEMS)}


async def test_hugging_face_judges_fall_back_to_the_recipe_reply() -> None:
    ctx = CallContext.create()
    async with serve_tgi() as server, HFChat(server.base_url) as chat:
        reply = await LLMJudge(chat, context=ctx, scoring="logprobs", retry_unparsed=False).judge(ITEMS[0])
    # The fake TGI server answers rather than grades; what matters is that it was asked, in text, and answered.
    assert reply.text
    assert not reply.text.startswith("{")
    assert {f.feature for f in ctx.support.fallbacks} == {"json_schema", "json_object", "logprobs"}


async def test_unparseable_json_replies_are_unparsed_with_their_text() -> None:
    def reply(model: str, messages: Sequence[tuple[str, str]]) -> str:
        return "I am not able to grade this answer."

    async with served(FakeOpenAI(reply_fn=reply)) as (_, chat):
        verdict = (await LLMJudge(chat, context=CallContext.create(), scoring="json").judge(ITEMS[0])).verdict
    assert verdict == Unparsed('{"reasoning": "I am not able to grade this answer."}', "no score in the JSON reply")


async def test_logprobs_verdicts_come_back_from_the_cache_unchanged(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path) as store:
        cache = ResponseCache(store)
        async with served() as (server, chat):
            first = await LLMJudge(chat, context=CallContext.create(cache=cache), scoring="logprobs").judge(ITEMS[1])
            again = await LLMJudge(chat, context=CallContext.create(cache=cache), scoring="logprobs").judge(ITEMS[1])
            assert server.stats.requests["chat.completions"] == 1
    assert isinstance(first.verdict, Scored)
    assert first.verdict.probs is not None
    assert again.verdict == first.verdict


# -- the question writer -----------------------------------------------------------------------------------------


async def test_the_writer_asks_for_json_and_counts_its_replies() -> None:
    events: list[Event] = []
    document = load_corpus(("Paris",))[0]
    async with served(LLAMA_CPP) as (server, chat):
        writer = LLMQuestionWriter(chat, context=CallContext.create(publish=events.append))
        pairs = await writer.write(document, max_questions=4)
    assert len(pairs) == 4
    assert all(pair.question.endswith("?") and pair.reference for pair in pairs)
    assert writer.replies.replies == writer.replies.usable == 4
    assert server.stats.responses[500] == 1  # json_schema refused once, then JSON mode with the schema
    reads = [e for e in events if isinstance(e, ReplyRead)]
    assert len(reads) == 4
    assert all(e.usable and e.actor == "question_writer" for e in reads)


async def test_an_unusable_writer_reply_is_counted_kept_and_asked_once_more() -> None:
    seen: list[int] = []

    def plain(model: str, messages: Sequence[tuple[str, str]]) -> str:
        seen.append(len(messages))
        return "Paris is a lovely city with a long history."

    document = load_corpus(("Paris",))[0]
    async with served(FakeOpenAI(reply_fn=plain)) as (_, chat):
        writer = LLMQuestionWriter(chat, context=CallContext.create(), output="reply")
        pairs = await writer.write(document, max_questions=2)
    assert pairs == []
    # Two rounds of two chunks, each asked and then asked once more in the same conversation; then it gives up.
    assert writer.replies.replies == 8
    assert sorted(seen) == [2] * 4 + [4] * 4
    assert writer.replies.usable == 0
    assert len(writer.unusable) == writer.replies.replies
    assert writer.unusable[0].reason == "no question/answer pair found"
    assert writer.unusable[0].raw == "Paris is a lovely city with a long history."
