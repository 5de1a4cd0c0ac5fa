"""Pay once per request: chat responses kept by the hash of what was asked.

A resumed run asks again every question it had asked before the crash; the answers it paid for are in the run
store, so asking again costs nothing. `request_hash` is the key: a sha256 over a canonical JSON of the provider,
the model and every field of the `ChatRequest` that can change the reply (messages, temperature, max_tokens, the
constrained output and log probabilities asked for), so
any change to a prompt, a setting or the model is a different request and is paid for, and nothing else is.

`ResponseCache` looks a request up in one or more stores, first hit wins, and remembers a paid reply in all of
them: the run's own store (what this run used, its cost ledger on disk) and, with ``--cache DIR``, a cache shared
by runs (``DIR/cache.sqlite``), so a second run over the same items pays for nothing the first one bought.

A cached reply is the reply of the first call, also at a temperature above 0: two identical sampled requests
in one run get one answer. A caller that wants independent samples must make the requests differ.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from judgeflow.core.canonical import canonical_json
from judgeflow.protocol.calls import ChatRequest, ChatResult, TokenLogprob
from judgeflow.protocol.messages import Usage

__all__ = [
    "CacheStats",
    "CallRecord",
    "CallStore",
    "RequestKey",
    "ResponseCache",
    "canonical_request",
    "logprobs_from_json",
    "logprobs_to_json",
    "request_hash",
    "request_key",
]

_KEY_VERSION = 1  # bump when the canonical form changes, so old entries stop matching instead of misleading


def canonical_request(provider: str, model: str, request: ChatRequest) -> str:
    """The request as one canonical JSON text: what the hash covers, and what the store keeps for audit."""
    data: dict[str, Any] = {
        "v": _KEY_VERSION,
        "provider": provider,
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        # As a float, so 0 and 0.0 (and -0.0) are one request.
        "temperature": float(request.temperature) + 0.0,
        "max_tokens": request.max_tokens,
    }
    # Only when asked for, so a plain request keeps the key it always had.
    if request.output is not None:
        # The schema as sent: its key order matters (a grammar writes properties in that order).
        output = request.output
        data["output"] = {"kind": output.kind, "name": output.name, "schema": output.schema_json}
    if request.top_logprobs is not None:
        data["top_logprobs"] = request.top_logprobs
    return canonical_json(data)


def logprobs_to_json(tokens: Sequence[TokenLogprob]) -> str:
    """A reply's token log probabilities as compact JSON: ``[[token, logprob, [[alt, logprob], ...]], ...]``."""
    return json.dumps([[t.token, t.logprob, [list(alt) for alt in t.top]] for t in tokens], separators=(",", ":"))


def logprobs_from_json(text: str) -> tuple[TokenLogprob, ...]:
    return tuple(
        TokenLogprob(str(token), float(logprob), tuple((str(alt), float(lp)) for alt, lp in top))
        for token, logprob, top in json.loads(text)
    )


def request_hash(provider: str, model: str, request: ChatRequest) -> str:
    """A stable hex sha256 of `canonical_request`: the same on every machine, Python version and run."""
    return request_key(provider, model, request).hash


@dataclass(frozen=True, slots=True)
class RequestKey:
    """A request as the cache knows it, serialised and hashed once for both the lookup and the `remember`."""

    provider: str
    model: str
    text: str
    hash: str


def request_key(provider: str, model: str, request: ChatRequest) -> RequestKey:
    text = canonical_request(provider, model, request)
    return RequestKey(provider, model, text, hashlib.sha256(text.encode("utf-8")).hexdigest())


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One paid chat call as stored: its request (hashed and as JSON), its reply, usage and cost."""

    request_hash: str
    provider: str
    model: str
    request_json: str
    response_text: str
    response_model: str
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    created: float = field(default_factory=time.time)
    logprobs_json: str | None = None

    def result(self) -> ChatResult:
        usage = None if self.input_tokens is None else Usage(self.input_tokens, self.output_tokens or 0)
        logprobs = None if self.logprobs_json is None else logprobs_from_json(self.logprobs_json)
        return ChatResult(self.response_text, self.response_model, usage, self.finish_reason, logprobs)


class CallStore(Protocol):
    """Where paid calls are kept: the run store (`judgeflow.runs.store.RunStore`) and shared caches implement it."""

    async def get_call(self, request_hash: str) -> CallRecord | None: ...

    async def record_call(self, record: CallRecord, *, durable: bool = False) -> None: ...

    async def flush(self) -> None: ...


@dataclass(slots=True)
class CacheStats:
    """Lookups that hit (and the USD their first calls cost, saved this time), lookups that missed, replies kept."""

    hits: int = 0
    misses: int = 0
    saved_usd: float = 0.0
    remembered: int = 0


class ResponseCache:
    """Chat replies by request hash, over ``stores`` (the run's own first, then shared caches).

    The cache owns no store: whoever opened them (the run context, `judgeflow.runs.context`) closes them.
    """

    def __init__(self, store: CallStore, *shared: CallStore) -> None:
        self.stores = (store, *shared)
        self.stats = CacheStats()

    async def lookup(self, provider: str, model: str, request: ChatRequest) -> ChatResult | None:
        """The stored reply to this exact request, or None (then call the model, and `remember` its reply)."""
        return await self.get(request_key(provider, model, request))

    async def get(self, key: RequestKey) -> ChatResult | None:
        """`lookup` by a key made once with `request_key` (the caller then passes the same key to `put`)."""
        for store in self.stores:
            record = await store.get_call(key.hash)
            if record is not None:
                self.stats.hits += 1
                self.stats.saved_usd += record.cost_usd or 0.0
                return record.result()
        self.stats.misses += 1
        return None

    async def remember(
        self,
        provider: str,
        model: str,
        request: ChatRequest,
        result: ChatResult,
        cost_usd: float | None,
        *,
        durable: bool = True,
    ) -> None:
        """Keep a paid reply in every store.

        ``durable`` (the default) returns once the reply is committed everywhere: a crash right after cannot make
        the run pay for it again. The store commits at once, and concurrent callers share commits.
        """
        await self.put(request_key(provider, model, request), result, cost_usd, durable=durable)

    async def put(self, key: RequestKey, result: ChatResult, cost_usd: float | None, *, durable: bool = True) -> None:
        """`remember` by a key made once with `request_key`."""
        usage = result.usage
        record = CallRecord(
            request_hash=key.hash,
            provider=key.provider,
            model=key.model,
            request_json=key.text,
            response_text=result.text,
            response_model=result.model,
            finish_reason=result.finish_reason,
            input_tokens=None if usage is None else usage.input_tokens,
            output_tokens=None if usage is None else usage.output_tokens,
            cost_usd=cost_usd,
            logprobs_json=None if result.logprobs is None else logprobs_to_json(result.logprobs),
        )
        for store in self.stores:
            await store.record_call(record)
        if durable:
            for store in self.stores:
                await store.flush()
        self.stats.remembered += 1
