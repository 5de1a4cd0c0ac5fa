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

import dataclasses
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal, TypeAlias

import anyio

from judgeflow.calls.context import CallContext, Completion, add_cost, add_usage
from judgeflow.calls.structured import complete_structured, support_key
from judgeflow.calls.support import Plan
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
)
from judgeflow.core.questions import QuestionsRead, question_follow_up, questions_output, read_questions
from judgeflow.core.scoring import SCORING_MODES, ScoringMode, judge_output, parse_judge_output
from judgeflow.core.stages import StageCount, UnusableReply
from judgeflow.core.text import Chunk, chunk_document
from judgeflow.protocol.calls import ChatRequest
from judgeflow.protocol.errors import RunStopped
from judgeflow.protocol.events import ReplyRead
from judgeflow.protocol.messages import ChatMessage, Document, JudgeInput, JudgeReply, Passage, QAPair, Reply
from judgeflow.protocol.models import ChatModel
from judgeflow.protocol.verdicts import Scored, Unparsed

__all__ = ["LLMAnswerer", "LLMJudge", "LLMQuestionWriter", "QuestionOutput", "spread"]

QuestionOutput: TypeAlias = Literal["json", "reply"]
_DRY_ROUNDS = 2


class LLMJudge:
    """A `JudgeModel` over a chat model, in one of three scoring modes (`judgeflow.core.scoring`).

    ``reply`` (the default) asks for the recipe's reply. When the reply has no readable score and
    ``retry_unparsed`` is on, the judge is asked once more, in the same conversation, for the score alone
    (`SCORE_ONLY_FOLLOW_UP`). If that answer parses, the reply becomes the score followed by the original text
    (`format_judge_reply`), so the reasoning is kept and the parser reads the score; otherwise the original reply
    is returned and shows up as `Unparsed`. Usage and cost cover both calls.

    ``json`` asks for ``{"score", "reasoning"}`` as constrained output; ``logprobs`` asks the same with the
    ``top_logprobs`` most likely tokens at each position, and scores with the probability-weighted mean. A server
    that refuses either is asked the next best way (`judgeflow.calls.structured`: once per server and model,
    reported), down to the recipe's reply. Each reply is parsed once, here: the verdict travels with it.

    Batch mode builds its lines with `request` and reads them with `reply` and `follow_up`; it asks the way this
    run has learnt the server takes (it does not probe: a refused feature fails that line).
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
        scoring: ScoringMode = "reply",
        top_logprobs: int = 20,
        role: str = "judge",
        name: str | None = None,
    ) -> None:
        if scoring not in SCORING_MODES:
            raise ValueError(f"scoring must be one of {', '.join(SCORING_MODES)}; got {scoring!r}")
        if not 1 <= top_logprobs <= 20:
            raise ValueError(f"top_logprobs must be within 1-20 (OpenAI's limit), got {top_logprobs}")
        self.chat = chat
        self.context = context
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.retry_unparsed = retry_unparsed
        self.scoring: ScoringMode = scoring
        self.top_logprobs = top_logprobs
        self.role = role
        self.name = name or chat.name

    async def judge(self, item: JudgeInput) -> JudgeReply:
        if self.scoring == "reply":
            first = await self.context.complete(self.chat, self.request(item))
            return self.reply(first) or await self.follow_up(item, first)
        done, plan = await complete_structured(
            self.context,
            self.chat,
            lambda plan: self._request(item, plan),
            json_reply=True,
            logprobs=self.scoring == "logprobs",
            role=self.role,
        )
        return self._read(done, plan) or await self.follow_up(item, done)

    def request(self, item: JudgeInput) -> ChatRequest:
        """The request that asks for ``item``'s verdict: online, and as a line of a batch (batch mode)."""
        return self._request(item, self._plan())

    def reply(self, first: Completion) -> JudgeReply | None:
        """The reply to the first request, or None when it has no readable score and the follow-up is on."""
        return self._read(first, self._plan())

    async def follow_up(self, item: JudgeInput, first: Completion) -> JudgeReply:
        """Ask once more, in the same conversation, for the score alone (an online call, in batch mode too)."""
        messages = self.prompt.messages(item)
        text = first.result.text
        verdict = parse_judge_output(text, logprobs=first.result.logprobs)
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

    def _plan(self) -> Plan:
        """How this judge asks now: as its mode wants, less what this run learnt the server refuses."""
        if self.scoring == "reply":
            return Plan(None, logprobs=False)
        key = support_key(self.chat)
        return self.context.support.plan(key, json_reply=True, logprobs=self.scoring == "logprobs")

    def _read(self, first: Completion, plan: Plan) -> JudgeReply | None:
        """The verdict of ``first``; None when a recipe reply had no score and gets the follow-up."""
        text = first.result.text
        verdict = parse_judge_output(text, json_reply=plan.json_reply, logprobs=first.result.logprobs)
        if not plan.json_reply and self.retry_unparsed and isinstance(verdict, Unparsed):
            return None
        return JudgeReply(verdict, text, first.result.model, first.result.usage, first.cost_usd)

    def _request(self, item: JudgeInput, plan: Plan) -> ChatRequest:
        return ChatRequest(
            self.prompt.messages(item, json_reply=plan.json_reply),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            output=None if plan.output is None else judge_output(plan.output),
            top_logprobs=self.top_logprobs if plan.logprobs else None,
        )

    async def _ask(self, messages: tuple[ChatMessage, ...]) -> Completion:
        request = ChatRequest(messages, temperature=self.temperature, max_tokens=self.max_tokens)
        return await self.context.complete(self.chat, request)


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
    rounds, until ``max_questions`` pairs or no chunk is left, or two rounds in a row gave no new pair (a model
    that writes nothing usable is not asked about every chunk of every document). Pairs come in chunk order, each
    with its chunk as ``source_text``; a question asked twice is kept once. The chunks chosen depend only on the
    document, so a rerun asks the same prompts.

    ``output`` ``json`` (the default) asks for the pairs as constrained JSON where the server supports it (falling
    back to the labelled text format where it does not, once per server and model); ``reply`` asks for the
    labelled text. Every reply is read by `judgeflow.core.questions.read_questions`; one with no usable pair is
    counted and kept (``replies``, ``unusable``: its chunk, reason and raw text), and asked once more.
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
        output: QuestionOutput = "json",
        actor: str = "question_writer",
        name: str | None = None,
    ) -> None:
        if questions_per_chunk < 1:
            raise ValueError(f"questions_per_chunk must be at least 1, got {questions_per_chunk}")
        if output not in ("json", "reply"):
            raise ValueError(f"output must be json or reply, got {output!r}")
        self.chat = chat
        self.context = context
        self.prompt = prompt
        self.chunk_words = chunk_words
        self.questions_per_chunk = questions_per_chunk
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.output: QuestionOutput = output
        self.actor = actor
        self.name = name or chat.name
        self.replies = StageCount()
        self.unusable: list[UnusableReply] = []

    async def write(self, document: Document, *, max_questions: int) -> list[QAPair]:
        chunks = chunk_document(document, max_words=self.chunk_words)
        unused = list(range(len(chunks)))
        found: dict[int, list[QAPair]] = {}
        total = dry = 0
        while total < max_questions and unused and dry < _DRY_ROUNDS:
            wanted = math.ceil((max_questions - total) / self.questions_per_chunk)
            picked = spread(unused, wanted)
            unused = [index for index in unused if index not in picked]
            found.update(await self._ask_all([(index, chunks[index]) for index in picked]))
            before, total = total, len(_distinct(found))
            dry = dry + 1 if total == before else 0
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
        n = self.questions_per_chunk
        plans: list[Plan] = []

        async def first() -> Completion:
            done, plan = await complete_structured(
                self.context,
                self.chat,
                lambda plan: self._request(chunk, plan),
                json_reply=self.output == "json",
                logprobs=False,
                role=self.actor,
            )
            plans.append(plan)
            return done

        done = await self._timed(first)
        plan = plans[0]
        read = self._read(chunk, done.result.text, plan)
        if not read.pairs:
            # Asked once more, in the same conversation, saying what was wrong.
            again = (
                *self._request(chunk, plan).messages,
                ChatMessage("assistant", done.result.text),
                ChatMessage("user", question_follow_up(read.reason, n, json_reply=plan.json_reply)),
            )
            request = dataclasses.replace(self._request(chunk, plan), messages=again)
            retry = await self._timed(lambda: self.context.complete(self.chat, request))
            read = self._read(chunk, retry.result.text, plan)
        return [QAPair(pair.question, pair.reference, source_text=chunk.text) for pair in read.pairs[:n]]

    def _request(self, chunk: Chunk, plan: Plan) -> ChatRequest:
        n = self.questions_per_chunk
        return ChatRequest(
            self.prompt.messages(chunk.text, num_questions=n, json_reply=plan.json_reply),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            output=None if plan.output is None else questions_output(n, plan.output),
        )

    def _read(self, chunk: Chunk, raw: str, plan: Plan) -> QuestionsRead:
        read = read_questions(raw, json_reply=plan.json_reply)
        usable = bool(read.pairs)
        self.replies.add_reply(chunk.id, usable=usable, reason=read.reason, raw=raw)
        if not usable:
            self.unusable.append(UnusableReply(chunk.id, read.reason, raw))
        self.context.publish(ReplyRead(self.actor, self.chat.name, usable, read.reason))
        return read

    async def _timed(self, call: Callable[[], Awaitable[Completion]]) -> Completion:
        return await timed_call(call, publish=self.context.publish, actor=self.actor, model=self.chat.name)


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
