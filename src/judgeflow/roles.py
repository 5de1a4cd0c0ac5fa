"""The LLM roles: judge, answerer, question writer and dense retrieval over any `ChatModel` / `Embedder`.

The role protocols of `judgeflow.providers.base` are what actors see; the `ChatModel` and `Embedder` seams are
what providers implement. These classes join the two, and every call they make goes through the run's
`CallContext` (`judgeflow.calling`): budget reservation, the model's gate (limits, retries), the ledger. That is
the only place the policy is written, so an OpenAI judge and a TGI answerer are limited and costed alike.

The returned `Reply` carries usage and cost, and the actors publish `CallFinished` from it; roles therefore do
not publish `CallFinished` for judge and answer calls. The question writer's actor does not publish per call, so
`LLMQuestionWriter` publishes its own; so does `EmbeddingIndex`, whose actor (the retriever) does not either.
An exception (`BudgetExceeded` included) propagates to the actor, which turns it into a `Failed` verdict or an
`ItemFailed` event.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import anyio
import numpy as np
import numpy.typing as npt

from judgeflow.calling import (
    ASSUMED_OUTPUT_TOKENS,
    CallContext,
    Completion,
    add_cost,
    add_usage,
    estimate_tokens,
)
from judgeflow.parsing import SCORE_ONLY_FOLLOW_UP, format_judge_reply, parse_judge_reply
from judgeflow.prompts import (
    DEFAULT_ANSWER_PROMPT,
    DEFAULT_JUDGE_PROMPT,
    DEFAULT_QUESTION_PROMPT,
    AnswerPrompt,
    JudgePrompt,
    QuestionPrompt,
    answer_messages,
    parse_question_replies,
)
from judgeflow.protocol.calls import ChatRequest
from judgeflow.protocol.events import CallFinished
from judgeflow.protocol.messages import ChatMessage, Document, JudgeInput, Passage, QAPair, Reply
from judgeflow.protocol.verdicts import Scored, Unparsed
from judgeflow.providers.base import ChatModel, Embedder
from judgeflow.providers.local.text import Chunk, chunk_document

__all__ = [
    "ASSUMED_OUTPUT_TOKENS",
    "CallContext",
    "Completion",
    "EmbeddingIndex",
    "LLMAnswerer",
    "LLMJudge",
    "LLMQuestionWriter",
    "add_usage",
    "estimate_tokens",
    "spread",
]


class LLMJudge:
    """A `JudgeModel` over a chat model: the judge prompt, and one score-only follow-up for an unreadable reply.

    When the reply has no readable score and ``retry_unparsed`` is on, the judge is asked once more, in the same
    conversation, for the score alone (`SCORE_ONLY_FOLLOW_UP`). If that answer parses, the reply becomes the
    score followed by the original text (`format_judge_reply`), so the reasoning is kept and the parser reads the
    score; otherwise the original reply is returned and shows up as `Unparsed`. Usage and cost cover both calls.
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

    async def judge(self, item: JudgeInput) -> Reply:
        messages = self.prompt.messages(item)
        first = await self._ask(messages)
        if not (self.retry_unparsed and isinstance(parse_judge_reply(first.result.text), Unparsed)):
            return first.reply()
        follow_up = (
            *messages,
            ChatMessage("assistant", first.result.text),
            ChatMessage("user", SCORE_ONLY_FOLLOW_UP),
        )
        second = await self._ask(follow_up)
        verdict = parse_judge_reply(second.result.text)
        text = first.result.text
        if isinstance(verdict, Scored):
            text = format_judge_reply(verdict.score, text)
        return Reply(
            text,
            first.result.model,
            add_usage(first.result.usage, second.result.usage),
            add_cost(first.cost_usd, second.cost_usd),
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
        """Ask every chunk at once; the first failure cancels the rest and is raised as itself (no group)."""
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
            raise errors[0]
        return results

    async def _ask(self, chunk: Chunk) -> list[QAPair]:
        messages = self.prompt.messages(chunk.text, num_questions=self.questions_per_chunk)
        request = ChatRequest(messages, temperature=self.temperature, max_tokens=self.max_tokens)
        started = time.perf_counter()
        try:
            done = await self.context.complete(self.chat, request)
        except Exception:
            self.context.publish(CallFinished(self.actor, self.chat.name, time.perf_counter() - started, ok=False))
            raise
        result = done.result
        self.context.publish(CallFinished(self.actor, result.model, done.latency_s, result.usage, done.cost_usd))
        pairs = parse_question_replies(result.text)[: self.questions_per_chunk]
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


class EmbeddingIndex:
    """A `SearchIndex` over an `Embedder`: chunks embedded once, queries ranked by cosine similarity.

    Build it with `EmbeddingIndex.build`, which embeds every chunk through the gate in batches of ``batch_size``.
    A search embeds the query (one call) and returns the ``k`` most similar chunks, best first; equal scores keep
    chunk order. Unlike BM25 it always returns ``k`` passages when there are that many chunks.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float64],
        embedder: Embedder,
        *,
        context: CallContext,
        actor: str = "retriever",
        name: str | None = None,
    ) -> None:
        if vectors.shape[0] != len(chunks):
            raise ValueError(f"{len(chunks)} chunks but {vectors.shape[0]} vectors")
        self.chunks = tuple(chunks)
        self._unit = _normalise(vectors)
        self.embedder = embedder
        self.context = context
        self.actor = actor
        self.name = name or embedder.name

    @classmethod
    async def build(
        cls,
        documents: Sequence[Document],
        embedder: Embedder,
        *,
        context: CallContext,
        chunk_words: int = 80,
        batch_size: int = 64,
        actor: str = "retriever",
        name: str | None = None,
    ) -> EmbeddingIndex:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        chunks = [chunk for doc in documents for chunk in chunk_document(doc, max_words=chunk_words)]
        rows: list[list[float]] = []
        for start in range(0, len(chunks), batch_size):
            rows.extend(await _embed(context, embedder, [c.text for c in chunks[start : start + batch_size]], actor))
        vectors = np.asarray(rows, dtype=np.float64) if rows else np.zeros((0, 0), dtype=np.float64)
        return cls(chunks, vectors, embedder, context=context, actor=actor, name=name)

    def __len__(self) -> int:
        return len(self.chunks)

    async def search(self, query: str, *, k: int) -> list[Passage]:
        if k <= 0 or not self.chunks:
            return []
        (vector,) = await _embed(self.context, self.embedder, [query], self.actor)
        scores = self._unit @ _normalise(np.asarray([vector], dtype=np.float64))[0]
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [
            Passage(chunk_id=self.chunks[i].id, doc_id=self.chunks[i].doc_id, text=self.chunks[i].text, score=float(s))
            for i, s in ((int(i), scores[i]) for i in order)
        ]


def _normalise(vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Rows scaled to unit length (an all-zero row stays zero and scores 0 against everything)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: npt.NDArray[np.float64] = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


async def _embed(context: CallContext, embedder: Embedder, texts: list[str], actor: str) -> list[list[float]]:
    started = time.perf_counter()
    try:
        vectors, cost = await context.embed(embedder, texts)
    except Exception:
        context.publish(CallFinished(actor, embedder.name, time.perf_counter() - started, ok=False))
        raise
    context.publish(CallFinished(actor, embedder.name, time.perf_counter() - started, cost_usd=cost))
    return vectors
