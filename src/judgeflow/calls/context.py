"""The call policy of every model call, written once: budget reservation, gate, ledger, settlement.

Providers declare policy (a `LimitKey`, an error classifier); this module enforces it for every role and every
provider alike, in `CallContext.complete` (chat) and `CallContext.embed` (embeddings):

1. estimate the call (`request_tokens`: a cheap, upper-bound-ish chars/4 count of the prompt plus
   ``max_tokens``) and reserve its list-price cost from the run's `Budget`, which raises `BudgetExceeded` when
   the call could take spending past the cap (and publishes `BudgetExhausted` once, at the first refusal);
2. pass through the `CallGate` of the model's `LimitKey` (RPM, TPM, in-flight cap, retries, `CallRetry`, and
   waiting while the server does not answer); a `judgeflow.protocol.errors.RunStopped` from it (an unusable
   model, a server away too long) passes through everything: it stops the run;
3. record what the call really used in the `CostLedger` and settle the reservation at that cost.

With a `ResponseCache`, an identical call (same provider, server, model, messages and parameters) is answered
from the cache before any of that: it costs nothing, takes no budget and no rate, and is flagged as cached.
The cache remembers a paid call durably before its reply is used, so a crash never makes a call paid twice.
What each server refused (constrained output, log probabilities) is kept here too, in ``support``
(`judgeflow.calls.support`), so every role of the run learns it once.

One `CallContext` is shared by all roles of a run, so limits, budget and ledger hold for the run as a whole. A
model the price table does not know reserves nothing and is recorded as unpriced: the budget cannot cap what it
cannot price, so give such models a ``[prices]`` entry when a budget matters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from judgeflow.calls.budget import Allowance, Budget
from judgeflow.calls.cache import RequestKey, ResponseCache, request_key
from judgeflow.calls.gate import GateRegistry, Limits, PermitFactory
from judgeflow.calls.health import HealthPolicy
from judgeflow.calls.support import OutputSupport
from judgeflow.core.pricing import DEFAULT_PRICES, CostLedger, Price, cost_usd, price_for
from judgeflow.core.tokens import text_tokens
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.calls import ChatRequest, ChatResult, LimitKey
from judgeflow.protocol.messages import ChatMessage, Reply, Usage
from judgeflow.protocol.models import ChatModel, Embedder

__all__ = [
    "ASSUMED_OUTPUT_TOKENS",
    "CallContext",
    "Completion",
    "Embedded",
    "add_cost",
    "add_usage",
    "chat_request_key",
    "request_tokens",
    "server_of",
]

ASSUMED_OUTPUT_TOKENS = 1024
"""Output tokens assumed for a request without ``max_tokens``: the budget can only be a hard cap when every
request names its ``max_tokens``."""

_PER_MESSAGE_TOKENS = 4  # role and separators, as chat APIs count them
_PRIMING_TOKENS = 3  # the assistant turn the reply starts


def request_tokens(messages: Sequence[ChatMessage], max_tokens: int | None) -> int:
    """Prompt plus reply tokens of a chat call, for the TPM bucket and the budget reservation.

    One token per four characters, rounded up, plus the per-message overhead chat APIs charge: an upper-bound-ish
    estimate (English prose runs nearer five characters per token) that costs no tokenizer. The reply counts
    as ``max_tokens``, or `ASSUMED_OUTPUT_TOKENS` when the request does not cap it.
    """
    prompt = sum(text_tokens(m.content) + _PER_MESSAGE_TOKENS for m in messages) + _PRIMING_TOKENS
    return prompt + (ASSUMED_OUTPUT_TOKENS if max_tokens is None else max_tokens)


def add_usage(a: Usage | None, b: Usage | None) -> Usage | None:
    """The usage of two calls together (None only when neither reported any)."""
    if a is None or b is None:
        return a if b is None else b
    return Usage(a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens)


def add_cost(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    return a + b


@dataclass(frozen=True, slots=True)
class Completion:
    """One chat call through the core: the provider's result, its cost (None when unpriced) and latency."""

    result: ChatResult
    cost_usd: float | None
    latency_s: float
    cached: bool = False

    @property
    def model(self) -> str:
        return self.result.model

    @property
    def usage(self) -> Usage | None:
        return self.result.usage

    def reply(self) -> Reply:
        return Reply(self.result.text, self.result.model, self.result.usage, self.cost_usd)


@dataclass(frozen=True, slots=True)
class Embedded:
    """One embedding call through the core: the vectors, and their cost at the chars/4 estimate (None: unpriced).

    The `Embedder` seam reports no usage, so ``usage`` is always None."""

    vectors: list[list[float]]
    model: str
    cost_usd: float | None
    usage: Usage | None = None


@dataclass(slots=True)
class CallContext:
    """The call policy shared by every role of one run: gates, budget, ledger, prices and the event bus."""

    registry: GateRegistry
    budget: Budget
    ledger: CostLedger
    publish: Publish = null_publish
    prices: Mapping[str, Price] = field(default_factory=lambda: DEFAULT_PRICES)
    cache: ResponseCache | None = None
    support: OutputSupport = field(default_factory=OutputSupport)

    @classmethod
    def create(
        cls,
        *,
        publish: Publish = null_publish,
        limits_for: Callable[[LimitKey], Limits] | None = None,
        max_cost_usd: float | None = None,
        prices: Mapping[str, Price] = DEFAULT_PRICES,
        seed: int = 0,
        cache: ResponseCache | None = None,
        health: HealthPolicy | None = None,
        permits: PermitFactory | None = None,
        allowance: Allowance | None = None,
    ) -> CallContext:
        """A fresh context (gates bind to the running event loop: make one per run). ``health`` says how long
        calls wait for a server that does not answer (`judgeflow.calls.health.HealthPolicy`); ``permits``, where
        the gates take their rate and shared slots (default: this process's own buckets); ``allowance``, where the
        budget draws its cap when it is shared with other processes (`judgeflow.calls.budget.Allowance`)."""
        return cls(
            registry=GateRegistry(limits_for or (lambda _key: Limits()), seed=seed, health=health, permits=permits),
            budget=Budget(max_cost_usd, publish=publish, allowance=allowance),
            ledger=CostLedger(prices),
            publish=publish,
            prices=prices,
            cache=cache,
        )

    def _price(self, *models: str) -> Price | None:
        return next((p for p in (price_for(m, self.prices) for m in models) if p is not None), None)

    async def complete(self, chat: ChatModel, request: ChatRequest) -> Completion:
        """One chat call under the run's budget and ``chat.key``'s limits (see the module docstring)."""
        started = time.perf_counter()
        cache, key = self.cache, None
        if cache is not None:
            key = chat_request_key(chat, request)
            hit = await cache.get(key)
            if hit is not None:
                return Completion(hit, 0.0, time.perf_counter() - started, cached=True)
        tokens = request_tokens(request.messages, request.max_tokens)
        price = self._price(chat.name)
        # The prompt part at the input rate, the reply part (max_tokens) at the output rate.
        reply_tokens = ASSUMED_OUTPUT_TOKENS if request.max_tokens is None else request.max_tokens
        estimate = 0.0 if price is None else cost_usd(Usage(tokens - reply_tokens, reply_tokens), price)
        await self.budget.make_room(estimate)
        with self.budget.reserve(estimate) as reservation:
            gate = self.registry.gate(chat.key)
            result = await gate.call(
                lambda: chat.complete(request), classify=chat.classify, estimated_tokens=tokens, publish=self.publish
            )
            actual = self._price(result.model, chat.name)
            cost = None if actual is None or result.usage is None else cost_usd(result.usage, actual)
            self.ledger.record(result.model, result.usage, charged_usd=cost)
            reservation.settle(cost or 0.0)
        if cache is not None and key is not None:
            await cache.put(key, result, cost)
        return Completion(result, cost, time.perf_counter() - started)

    @property
    def cached_calls(self) -> int:
        return 0 if self.cache is None else self.cache.stats.hits

    async def embed(self, embedder: Embedder, texts: Sequence[str]) -> Embedded:
        """Vectors for ``texts`` under the budget and ``embedder.key``'s limits, with their cost.

        The `Embedder` seam reports no usage, so the call is charged at its chars/4 estimate (priced models
        only) and the ledger records no tokens for it.
        """
        tokens = sum(text_tokens(text) for text in texts)
        price = self._price(embedder.name)
        estimate = None if price is None else cost_usd(Usage(input_tokens=tokens), price)
        await self.budget.make_room(estimate or 0.0)
        with self.budget.reserve(estimate or 0.0) as reservation:
            vectors = await self.registry.gate(embedder.key).call(
                lambda: embedder.embed(texts), classify=embedder.classify, estimated_tokens=tokens, publish=self.publish
            )
            self.ledger.record(embedder.name, None, charged_usd=estimate)
            reservation.settle(estimate or 0.0)
        return Embedded(vectors, embedder.name, estimate)


def chat_request_key(chat: ChatModel, request: ChatRequest) -> RequestKey:
    """The cache key of ``request`` to ``chat``: what `CallContext.complete` looks up and remembers (a batch
    judge keeps its replies under the same key, so either mode finds what the other paid for)."""
    return request_key(_namespace(chat), chat.name, request)


def server_of(chat: ChatModel) -> str:
    """Where a chat model is served: its base URL when it has one, else its provider's name."""
    base_url = getattr(chat, "base_url", None)
    return str(base_url) if base_url else chat.key.provider


def _namespace(chat: ChatModel) -> str:
    """The cache's provider key: the provider and, for a server of its own, its URL (two OpenAI-compatible
    servers serving a model of the same name must not share answers)."""
    base_url = getattr(chat, "base_url", None)
    return f"{chat.key.provider}@{base_url}" if base_url else chat.key.provider
