"""The LLM roles: judge, answerer and question writer over any `ChatModel`.

The role protocols of `judgeflow.protocol.models` are what actors see; the `ChatModel` seam is what providers
implement. These classes join the two, and every call they make goes through the run's `CallContext`
(`judgeflow.calls.context`): budget reservation, the model's gate (limits, retries), the ledger. That is the only
place the policy is written, so an OpenAI judge and a TGI answerer are limited and costed alike.

A judge's or answerer's reply carries its usage and cost, and the actor that asked times the call
(`judgeflow.calls.timing`). The question writer makes several calls per document, which its actor does not see,
so `LLMQuestionWriter` times each of them itself. An exception (`BudgetExceeded` included) propagates to the
actor, which turns it into a `Failed` verdict or an `ItemFailed` event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import anyio

from judgeflow.calls.context import CallContext, Completion, add_cost, add_usage
from judgeflow.calls.timing import timed_call
from judgeflow.core.parsing import SCORE_ONLY_FOLLOW_UP, format_judge_reply, parse_judge_reply
from judgeflow.core.prompts import (
    DEFAULT_ANSWER_PROMPT,
    DEFAULT_JUDGE_PROMPT,
    DEFAULT_QUESTION_PROMPT,
    AnswerPrompt,
    JudgePrompt,
    QuestionPrompt,
    answer_messages,
    parse_question_replies,
)
from judgeflow.core.text import Chunk, chunk_document
from judgeflow.protocol.calls import ChatRequest
from judgeflow.protocol.errors import RunStopped
from judgeflow.protocol.messages import ChatMessage, Document, JudgeInput, JudgeReply, Passage, QAPair, Reply
from judgeflow.protocol.models import ChatModel
from judgeflow.protocol.verdicts import Scored, Unparsed

__all__ = ["LLMAnswerer", "LLMJudge", "LLMQuestionWriter", "spread"]


class LLMJudge:
    """A `JudgeModel` over a chat model: the judge prompt, and one score-only follow-up for an unreadable reply.

    When the reply has no readable score and ``retry_unparsed`` is on, the judge is asked once more, in the same
    conversation, for the score alone (`SCORE_ONLY_FOLLOW_UP`). If that answer parses, the reply becomes the
    score followed by the original text (`format_judge_reply`), so the reasoning is kept and the parser reads the
    score; otherwise the original reply is returned and shows up as `Unparsed`. Usage and cost cover both calls.
    Each reply is parsed once, here: the verdict travels with it.
    """

    def __init__(
        self,
        chat: ChatModel,
        *,
        context: CallContext,
        prompt: JudgePrompt = DEFAULT_JUDGE_PROMPT,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        retry_unparsed: bool = True,
        name: str | None = None,
    ) -> None:
        self.chat = chat
        self.context = context
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.retry_unparsed = retry_unparsed
        self.name = name or chat.name

    async def judge(self, item: JudgeInput) -> JudgeReply:
        first = await self.context.complete(self.chat, self.request(item))
        return self.reply(first) or await self.follow_up(item, first)

    def request(self, item: JudgeInput) -> ChatRequest:
        """The request that asks for ``item``'s verdict: online, and as a line of a batch (batch mode)."""
        return self._request(self.prompt.messages(item))

    def reply(self, first: Completion) -> JudgeReply | None:
        """The reply to the first request, or None when it has no readable score and the follow-up is on."""
        text = first.result.text
        verdict = parse_judge_reply(text)
        if self.retry_unparsed and isinstance(verdict, Unparsed):
            return None
        return JudgeReply(verdict, text, first.result.model, first.result.usage, first.cost_usd)

    async def follow_up(self, item: JudgeInput, first: Completion) -> JudgeReply:
        """Ask once more, in the same conversation, for the score alone (an online call, in batch mode too)."""
        messages = self.prompt.messages(item)
        text = first.result.text
        verdict = parse_judge_reply(text)
        follow_up = (*messages, ChatMessage("assistant", text), ChatMessage("user", SCORE_ONLY_FOLLOW_UP))
        second = await self._ask(follow_up)
        score = parse_judge_reply(second.result.text)
        if isinstance(score, Scored):
            # The score from the follow-up, the reasoning from the first reply: the text the parser reads back
            # as exactly this verdict (`format_judge_reply`).
            text = format_judge_reply(score.score, text)
            verdict = Scored(score.score, first.result.text.strip(), text)
        return JudgeReply(
            verdict,
            text,
            first.result.model,
            add_usage(first.result.usage, second.result.usage),
            add_cost(first.cost_usd, second.cost_usd),
        )

    def _request(self, messages: tuple[ChatMessage, ...]) -> ChatRequest:
        return ChatRequest(messages, temperature=self.temperature, max_tokens=self.max_tokens)

    async def _ask(self, messages: tuple[ChatMessage, ...]) -> Completion:
        return await self.context.complete(self.chat, self._request(messages))


class LLMAnswerer:
    """An `AnswerModel` over a chat model: the answer prompt filled with the retrieved passages, best first."""

    def __init__(
        self,
        chat: ChatModel,
        *,
        context: CallContext,
        prompt: AnswerPrompt = DEFAULT_ANSWER_PROMPT,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        name: str | None = None,
    ) -> None:
        self.chat = chat
        self.context = context
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.name = name or chat.name

    async def answer(self, question: str, passages: Sequence[Passage]) -> Reply:
        messages = answer_messages(question, [p.text for p in passages], self.prompt)
        request = ChatRequest(messages, temperature=self.temperature, max_tokens=self.max_tokens)
        return (await self.context.complete(self.chat, request)).reply()


def spread(candidates: Sequence[int], count: int) -> list[int]:
    """``count`` items of ``candidates`` evenly spaced over it (all of them when there are fewer), in order.

    Each pick is the middle of its share of the list, so three picks of nine are items 1, 4 and 7: questions
    come from the beginning, middle and end of a document, not all from its introduction.
    """
    n = len(candidates)
    if count >= n:
        return list(candidates)
    return [candidates[int((i + 0.5) * n / count)] for i in range(count)]


class LLMQuestionWriter:
    """A `QuestionWriterModel` over a chat model: questions from chunks spread over the document.

    The document is cut into chunks of about ``chunk_words`` words (`chunk_document`), and enough of them, evenly
    spread (`spread`), are asked for ``questions_per_chunk`` pairs each, concurrently (the gate caps how many run
    at once). Chunks whose reply yields fewer pairs than asked are made up for from the unused chunks, in more
    rounds, until ``max_questions`` pairs or no chunk is left. Pairs come in chunk order, each with its chunk as
    ``source_text``; a question asked twice is kept once. The chunks chosen depend only on the document, so a
    rerun asks the same prompts.
    """

    def __init__(
        self,
        chat: ChatModel,
        *,
        context: CallContext,
        prompt: QuestionPrompt = DEFAULT_QUESTION_PROMPT,
        chunk_words: int = 80,
        questions_per_chunk: int = 1,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        actor: str = "question_writer",
        name: str | None = None,
    ) -> None:
        if questions_per_chunk < 1:
            raise ValueError(f"questions_per_chunk must be at least 1, got {questions_per_chunk}")
        self.chat = chat
        self.context = context
        self.prompt = prompt
        self.chunk_words = chunk_words
        self.questions_per_chunk = questions_per_chunk
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.actor = actor
        self.name = name or chat.name

    async def write(self, document: Document, *, max_questions: int) -> list[QAPair]:
        chunks = chunk_document(document, max_words=self.chunk_words)
        unused = list(range(len(chunks)))
        found: dict[int, list[QAPair]] = {}
        total = 0
        while total < max_questions and unused:
            wanted = math.ceil((max_questions - total) / self.questions_per_chunk)
            picked = spread(unused, wanted)
            unused = [index for index in unused if index not in picked]
            found.update(await self._ask_all([(index, chunks[index]) for index in picked]))
            total = len(_distinct(found))
        return _distinct(found)[:max_questions]

    async def _ask_all(self, chunks: Sequence[tuple[int, Chunk]]) -> dict[int, list[QAPair]]:
        """Ask every chunk at once; the first failure cancels the rest and is raised as itself (no group), or a
        `RunStopped` among the failures, which stops the run rather than failing one document."""
        results: dict[int, list[QAPair]] = {}
        errors: list[Exception] = []

        async def ask(index: int, chunk: Chunk) -> None:
            try:
                results[index] = await self._ask(chunk)
            except Exception as error:
                errors.append(error)
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for index, chunk in chunks:
                tg.start_soon(ask, index, chunk)
        if errors:
            raise next((error for error in errors if isinstance(error, RunStopped)), errors[0])
        return results

    async def _ask(self, chunk: Chunk) -> list[QAPair]:
        messages = self.prompt.messages(chunk.text, num_questions=self.questions_per_chunk)
        request = ChatRequest(messages, temperature=self.temperature, max_tokens=self.max_tokens)
        done = await timed_call(
            lambda: self.context.complete(self.chat, request),
            publish=self.context.publish,
            actor=self.actor,
            model=self.chat.name,
        )
        pairs = parse_question_replies(done.result.text)[: self.questions_per_chunk]
        return [QAPair(pair.question, pair.reference, source_text=chunk.text) for pair in pairs]


def _distinct(found: Mapping[int, Sequence[QAPair]]) -> list[QAPair]:
    seen: set[str] = set()
    pairs: list[QAPair] = []
    for index in sorted(found):
        for pair in found[index]:
            key = " ".join(pair.question.casefold().split())
            if key not in seen:
                seen.add(key)
                pairs.append(pair)
    return pairs
