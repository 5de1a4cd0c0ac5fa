"""The LLM roles over real HTTP: OpenAI-compatible and TGI fake servers on 127.0.0.1, the real SDK clients.

Every call goes through `CallContext` (budget, gate, ledger), so these tests also pin the call policy: usage and
cost reach the ledger and the reply, a 429 is retried by the gate, and an exhausted budget refuses calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import openai
import pytest

from judgeflow.actors import TeacherJudge
from judgeflow.calls.backoff import RetryPolicy
from judgeflow.calls.budget import BudgetExceeded
from judgeflow.calls.context import ASSUMED_OUTPUT_TOKENS, CallContext, add_usage, request_tokens
from judgeflow.calls.gate import Limits
from judgeflow.calls.index import EmbeddingIndex
from judgeflow.calls.roles import LLMAnswerer, LLMJudge, LLMQuestionWriter, spread
from judgeflow.core.parsing import SCORE_ONLY_FOLLOW_UP, parse_judge_reply
from judgeflow.core.pricing import DEFAULT_PRICES, cost_usd, price_for
from judgeflow.core.prompts import DEFAULT_JUDGE_PROMPT
from judgeflow.inputs.corpus import load_corpus
from judgeflow.protocol.calls import LimitKey
from judgeflow.protocol.channels import Channel
from judgeflow.protocol.events import BudgetExhausted, CallFinished, CallRetry, Event
from judgeflow.protocol.messages import (
    Answer,
    ChatMessage,
    Document,
    JudgeInput,
    Judgement,
    Passage,
    Question,
    Usage,
)
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed
from judgeflow.providers.hf.provider import HFChat
from judgeflow.providers.openai.provider import OpenAIChat, OpenAIEmbedder
from judgeflow.testing import FakeOpenAI, serve_openai
from judgeflow.testing.tgi_server import DEFAULT_MODEL_ID, serve_tgi

pytestmark = pytest.mark.anyio

ITEM = JudgeInput(
    question="When was the Eiffel Tower completed?",
    reference="The Eiffel Tower was completed in 1889.",
    answer="The Eiffel Tower was completed in 1889.",
)
PASSAGES = (
    Passage("p#0", "p", "The Eiffel Tower was completed in 1889. It is 330 metres tall.", 2.0),
    Passage("p#1", "p", "The Louvre opened as a museum in 1793.", 1.0),
)


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def context(events: list[Event], *, max_cost_usd: float | None = None, limits: Limits | None = None) -> CallContext:
    return CallContext.create(
        publish=events.append, max_cost_usd=max_cost_usd, limits_for=lambda _key: limits or Limits()
    )


@asynccontextmanager
async def openai_chat(config: FakeOpenAI | None = None, *, model: str = "gpt-4o") -> AsyncIterator[OpenAIChat]:
    async with serve_openai(config) as server, OpenAIChat(model, base_url=server.base_url, timeout_s=10.0) as chat:
        yield chat


# -- the call policy ---------------------------------------------------------------------------------------------


def test_estimate_is_chars_over_four_plus_overheads() -> None:
    messages = (ChatMessage("system", "x" * 8), ChatMessage("user", "y" * 9))
    assert request_tokens(messages, 10) == (2 + 4) + (3 + 4) + 3 + 10
    assert request_tokens(messages, None) == (2 + 4) + (3 + 4) + 3 + ASSUMED_OUTPUT_TOKENS
    assert add_usage(Usage(1, 2), Usage(3, 4)) == Usage(4, 6)
    assert add_usage(None, Usage(1, 1)) == Usage(1, 1)
    assert add_usage(None, None) is None


def test_spread_picks_evenly_spaced_items() -> None:
    assert spread(range(9), 3) == [1, 4, 7]
    assert spread([0, 1], 5) == [0, 1]
    assert spread([4, 8, 15, 16], 1) == [15]


# -- LLMJudge ----------------------------------------------------------------------------------------------------


async def test_judge_reads_the_score_and_records_usage_and_cost() -> None:
    events: list[Event] = []
    ctx = context(events)
    async with openai_chat() as chat:
        reply = await LLMJudge(chat, context=ctx, max_tokens=64).judge(ITEM)
    verdict = parse_judge_reply(reply.text)
    assert isinstance(verdict, Scored)
    assert verdict.score == 5.0
    assert reply.model == "gpt-4o"
    assert reply.usage is not None
    assert reply.usage.input_tokens > 0
    assert reply.usage.output_tokens > 0
    price = price_for("gpt-4o", DEFAULT_PRICES)
    assert price is not None
    assert reply.cost_usd == pytest.approx(cost_usd(reply.usage, price))
    assert ctx.ledger.get("gpt-4o").calls == 1
    assert ctx.ledger.total_usd == pytest.approx(reply.cost_usd)
    assert ctx.budget.spent_usd == pytest.approx(reply.cost_usd)
    assert ctx.budget.reserved_usd == 0.0
    # The actor publishes CallFinished for a judge call, not the role.
    assert not [e for e in events if isinstance(e, CallFinished)]


async def test_unparsed_reply_is_asked_once_for_the_score_alone() -> None:
    seen: list[list[tuple[str, str]]] = []

    def reply(model: str, messages: Sequence[tuple[str, str]]) -> str:
        seen.append(list(messages))
        return "4.5" if messages[-1][1] == SCORE_ONLY_FOLLOW_UP else "It says the right year, so it is good."

    ctx = context([])
    async with openai_chat(FakeOpenAI(reply_fn=reply)) as chat:
        result = await LLMJudge(chat, context=ctx).judge(ITEM)
    assert len(seen) == 2
    assert seen[1][:2] == seen[0]
    assert seen[1][2] == ("assistant", "It says the right year, so it is good.")
    verdict = parse_judge_reply(result.text)
    assert isinstance(verdict, Scored)
    assert verdict.score == 4.5
    assert verdict.reasoning == "It says the right year, so it is good."
    model = ctx.ledger.get("gpt-4o")
    assert model.calls == 2
    assert result.usage == Usage(model.input_tokens, model.output_tokens)
    assert result.cost_usd == pytest.approx(model.cost_usd)


async def test_a_second_unreadable_reply_keeps_the_first() -> None:
    async with serve_openai(FakeOpenAI(judge_format="garbage")) as server:
        async with OpenAIChat("gpt-4o", base_url=server.base_url) as chat:
            reply = await LLMJudge(chat, context=context([])).judge(ITEM)
        assert server.stats.requests["chat.completions"] == 2
    verdict = parse_judge_reply(reply.text)
    assert isinstance(verdict, Unparsed)
    assert verdict.raw == reply.text


async def test_no_follow_up_when_retry_unparsed_is_off() -> None:
    async with serve_openai(FakeOpenAI(judge_format="garbage")) as server:
        async with OpenAIChat("gpt-4o", base_url=server.base_url) as chat:
            reply = await LLMJudge(chat, context=context([]), retry_unparsed=False).judge(ITEM)
        assert server.stats.requests["chat.completions"] == 1
    assert isinstance(parse_judge_reply(reply.text), Unparsed)


async def test_rate_limited_call_is_retried_after_the_servers_wait() -> None:
    events: list[Event] = []
    ctx = context(events, limits=Limits(retry=RetryPolicy(base_delay_s=0.01)))
    config = FakeOpenAI(fail_first_n=1, fail_first_status=429, retry_after_s=0.2)
    async with serve_openai(config) as server:
        async with OpenAIChat("gpt-4o", base_url=server.base_url) as chat:
            reply = await LLMJudge(chat, context=ctx).judge(ITEM)
        assert server.stats.served_429 == 1
    assert isinstance(parse_judge_reply(reply.text), Scored)
    retries = [e for e in events if isinstance(e, CallRetry)]
    assert len(retries) == 1
    assert retries[0].reason == "rate_limited"
    assert retries[0].delay_s >= 0.2
    assert ctx.registry.gate(LimitKey("openai", "chat.completions", "gpt-4o", server.base_url)).stats().retries == 1
    assert ctx.ledger.get("gpt-4o").calls == 1  # the 429 cost nothing


async def test_budget_refuses_calls_it_cannot_cover_and_never_overspends() -> None:
    events: list[Event] = []
    max_tokens = 40
    tokens = request_tokens(DEFAULT_JUDGE_PROMPT.messages(ITEM), max_tokens)
    price = price_for("gpt-4o", DEFAULT_PRICES)
    assert price is not None
    per_call = cost_usd(Usage(tokens - max_tokens, max_tokens), price)
    budget = 2.5 * per_call
    ctx = context(events, max_cost_usd=budget)
    async with serve_openai() as server, OpenAIChat("gpt-4o", base_url=server.base_url) as chat:
        judge = LLMJudge(chat, context=ctx, max_tokens=max_tokens)
        done = 0
        refused = 0
        for _ in range(6):
            try:
                await judge.judge(ITEM)
                done += 1
            except BudgetExceeded:
                refused += 1
        served = server.stats.requests["chat.completions"]
    assert done >= 2
    assert refused == 6 - done
    assert served == done  # a refused call never reaches the server
    assert ctx.budget.spent_usd <= budget
    assert ctx.ledger.total_usd == pytest.approx(ctx.budget.spent_usd)
    exhausted = [e for e in events if isinstance(e, BudgetExhausted)]
    assert len(exhausted) == 1
    assert exhausted[0].budget_usd == budget


async def test_budget_refusal_becomes_a_failed_verdict_in_the_actor() -> None:
    ctx = context([], max_cost_usd=0.0)
    question = Question("q1", ITEM.question, ITEM.reference, "test")
    answer = Answer(question, ITEM.answer, "m")
    async with openai_chat() as chat:
        judgement = await judge_one(TeacherJudge(LLMJudge(chat, context=ctx), workers=1, publish=ctx.publish), answer)
    assert isinstance(judgement.verdict, Failed)
    assert judgement.verdict.error.startswith("BudgetExceeded")


async def judge_one(actor: TeacherJudge, answer: Answer) -> Judgement:
    """One answer through a judge actor, as the pipeline sends it."""
    inbox, outbox = Channel[Answer]("in", 1), Channel[Judgement]("out", 1)
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run, inbox.receiver, outbox.sender)
        async with inbox.sender:
            await inbox.sender.send(answer)
        with outbox.receiver:
            (judgement,) = [item async for item in outbox.receiver]
    return judgement


# -- LLMAnswerer -------------------------------------------------------------------------------------------------


async def test_answerer_answers_from_the_passages_over_openai() -> None:
    ctx = context([])
    async with openai_chat(model="gpt-4o-mini") as chat:
        reply = await LLMAnswerer(chat, context=ctx, max_tokens=100).answer("How many metres tall is it?", PASSAGES)
    assert "330 metres" in reply.text
    assert reply.model == "gpt-4o-mini"
    assert reply.cost_usd is not None
    assert reply.cost_usd > 0


async def test_answerer_over_a_tgi_server_is_unpriced_but_counted() -> None:
    ctx = context([])
    async with serve_tgi() as server, HFChat(server.base_url) as chat:
        reply = await LLMAnswerer(chat, context=ctx).answer("When did the Louvre open as a museum?", PASSAGES)
    assert "1793" in reply.text
    assert reply.model == DEFAULT_MODEL_ID
    assert reply.usage is not None
    assert reply.cost_usd is None
    assert ctx.ledger.get(DEFAULT_MODEL_ID).unpriced_calls == 1


# -- LLMQuestionWriter -------------------------------------------------------------------------------------------


async def test_question_writer_spreads_chunks_and_fills_source_text() -> None:
    events: list[Event] = []
    ctx = context(events)
    document = load_corpus(("Paris",))[0]
    async with openai_chat(model="gpt-4o-mini") as chat:
        writer = LLMQuestionWriter(chat, context=ctx, chunk_words=60, max_tokens=200)
        pairs = await writer.write(document, max_questions=3)
    assert len(pairs) == 3
    sources = [pair.source_text for pair in pairs]
    assert len(set(sources)) == 3
    for pair in pairs:
        assert pair.question.endswith("?")
        assert pair.source_text in document.text or pair.source_text.split(". ")[0] in document.text
        assert pair.reference in pair.source_text
    # Spread over the document: not the first three chunks.
    positions = [document.text.find(source.split(". ")[0]) for source in sources]
    assert positions == sorted(positions)
    assert positions[-1] > len(document.text) / 2
    calls = [e for e in events if isinstance(e, CallFinished)]
    assert len(calls) == 3
    assert all(c.actor == "question_writer" and c.ok and c.usage and c.cost_usd for c in calls)
    assert ctx.ledger.get("gpt-4o-mini").calls == 3


async def test_question_writer_makes_up_for_unusable_replies_from_other_chunks() -> None:
    calls: list[str] = []

    def reply(model: str, messages: Sequence[tuple[str, str]]) -> str:
        calls.append(messages[-1][1])
        if len(calls) <= 2:
            return "Sorry, I cannot write questions about this."
        words = messages[-1][1].split("## Context")[1].split()[:6]
        return f"Question: What about {' '.join(words)}?\nAnswer: {' '.join(words)}"

    document = load_corpus(("Tokyo",))[0]
    async with openai_chat(FakeOpenAI(reply_fn=reply), model="gpt-4o-mini") as chat:
        pairs = await LLMQuestionWriter(chat, context=context([]), chunk_words=40).write(document, max_questions=4)
    assert len(pairs) == 4
    assert len(calls) == 6


async def test_question_writer_raises_the_providers_error_itself() -> None:
    events: list[Event] = []
    document = Document("d", "D", "One short sentence about cats. " * 40)
    async with openai_chat(FakeOpenAI(fail_first_n=1, fail_first_status=400), model="gpt-4o-mini") as chat:
        writer = LLMQuestionWriter(chat, context=context(events), chunk_words=20)
        with pytest.raises(openai.BadRequestError):
            await writer.write(document, max_questions=3)
    assert any(isinstance(e, CallFinished) and not e.ok for e in events)


# -- EmbeddingIndex ----------------------------------------------------------------------------------------------

DOCS = [
    Document("tower", "Tower", "The Eiffel Tower is a wrought iron lattice tower on the Champ de Mars in Paris."),
    Document("sushi", "Sushi", "Sushi is vinegared rice served with raw fish, seaweed and vegetables."),
    Document("rail", "Rail", "The Shinkansen is a network of high speed railway lines in Japan."),
]


async def test_embedding_index_ranks_the_obviously_relevant_chunk_first() -> None:
    events: list[Event] = []
    ctx = context(events)
    async with serve_openai() as server, OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url) as emb:
        index = await EmbeddingIndex.build(DOCS, emb, context=ctx, batch_size=2)
        assert len(index) == 3
        assert server.stats.requests["embeddings"] == 2  # two batches
        passages = await index.search("raw fish with rice", k=2)
        everything = await index.search("Paris iron tower", k=10)
    assert passages[0].doc_id == "sushi"
    assert len(passages) == 2
    assert passages[0].score >= passages[1].score
    assert everything[0].doc_id == "tower"
    assert len(everything) == 3
    assert ctx.ledger.get("text-embedding-3-small").calls == 4
    calls = [e for e in events if isinstance(e, CallFinished)]
    assert len(calls) == 4
    assert all(c.actor == "retriever" for c in calls)


async def test_embedding_index_over_no_documents_finds_nothing() -> None:
    async with serve_openai() as server, OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url) as emb:
        index = await EmbeddingIndex.build([], emb, context=context([]))
        assert await index.search("anything", k=3) == []
        assert server.stats.total == 0
