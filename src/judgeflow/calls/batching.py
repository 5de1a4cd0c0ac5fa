"""Batch mode's call policy: which judge goes through a Batch API, what its requests cost, how big a batch gets.

A `BatchedJudge` is an LLM judge with a provider's Batch API beside it. Online it is just its `LLMJudge` (its
``judge`` method), so it runs anywhere a judge does; the batch judge actor (`judgeflow.actors.batch_judge`)
instead sends its requests (built by the same `LLMJudge.request`, so any request option holds in both modes)
in batches and reads the replies back with `LLMJudge.reply`. Batch calls are charged at the price table's batch
column (`judgeflow.core.pricing.Price.batch`), and the budget is reserved per batch, before its upload, at the
worst case of every request in it (prompt tokens plus ``max_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from judgeflow.calls.context import ASSUMED_OUTPUT_TOKENS, CallContext, request_tokens
from judgeflow.calls.roles import LLMJudge
from judgeflow.core.pricing import Price, cost_usd, price_for
from judgeflow.protocol.batches import BatchClient
from judgeflow.protocol.calls import ChatRequest
from judgeflow.protocol.messages import JudgeInput, JudgeReply, Usage

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_REQUESTS", "BatchOptions", "BatchedJudge"]

MAX_BATCH_REQUESTS = 50_000
"""Requests per batch input file (OpenAI's limit)."""
MAX_BATCH_BYTES = 200 * 1024 * 1024
"""Bytes per batch input file (OpenAI's limit)."""


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How batches are cut and watched: at most ``max_requests`` requests and ``max_bytes`` bytes a batch, the
    provider polled every ``poll_s`` seconds, a request that failed transiently sent at most ``max_attempts``
    times, a failed call to the Batch API itself tried ``api_attempts`` times."""

    max_requests: int = MAX_BATCH_REQUESTS
    max_bytes: int = MAX_BATCH_BYTES
    poll_s: float = 30.0
    max_attempts: int = 3
    api_attempts: int = 8

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1 or self.max_attempts < 1 or self.api_attempts < 1:
            raise ValueError("max_requests, max_bytes, max_attempts and api_attempts must be positive")
        if self.poll_s <= 0:
            raise ValueError(f"poll_s must be positive, got {self.poll_s}")


@dataclass(slots=True)
class BatchedJudge:
    """An LLM judge that may go through a Batch API: ``batch`` says whether new requests do (a run resumed
    without it still waits for the batches it has running, and judges the rest online)."""

    llm: LLMJudge
    client_factory: Callable[[], BatchClient]
    batch: bool = True
    options: BatchOptions = field(default_factory=BatchOptions)
    name: str = ""
    _client: BatchClient | None = None

    def __post_init__(self) -> None:
        self.name = self.name or self.llm.name

    @property
    def context(self) -> CallContext:
        return self.llm.context

    @property
    def client(self) -> BatchClient:
        """The Batch API client, made on first use (the SDK is imported only when a batch is)."""
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    async def judge(self, item: JudgeInput) -> JudgeReply:
        """One item online, at the list price: the `JudgeModel` interface."""
        return await self.llm.judge(item)

    def request(self, item: JudgeInput) -> ChatRequest:
        return self.llm.request(item)

    def price(self) -> Price | None:
        """The batch price of this judge's model."""
        price = price_for(self.llm.chat.name, self.context.prices)
        return None if price is None else price.batch()

    def estimate_usd(self, request: ChatRequest) -> float:
        """The worst-case batch cost of ``request``: its prompt, and ``max_tokens`` of reply."""
        price = self.price()
        if price is None:
            return 0.0
        tokens = request_tokens(request.messages, request.max_tokens)
        reply = ASSUMED_OUTPUT_TOKENS if request.max_tokens is None else request.max_tokens
        return cost_usd(Usage(tokens - reply, reply), price)

    def cost_usd(self, model: str, usage: Usage | None) -> float | None:
        """What a batch reply cost, at the batch price of the model that answered (None: unpriced)."""
        price = price_for(model, self.context.prices) or price_for(self.llm.chat.name, self.context.prices)
        if price is None or usage is None:
            return None
        return cost_usd(usage, price.batch())
