"""The typed vocabulary between the core and the providers: requests, results and error decisions.

Providers declare policy, the core enforces it. A provider turns its SDK's exceptions into an `ErrorDecision`
(rate-limited with an optional retry-after, transient, or fatal) and names the `LimitKey` its calls count
against; retries, rate limiters, concurrency caps and cost accounting are written once, in the core, against
these types. Nothing here imports a vendor SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from .messages import ChatMessage, Usage

__all__ = ["ChatRequest", "ChatResult", "ErrorDecision", "ErrorKind", "LimitKey"]

ErrorKind: TypeAlias = Literal["rate_limited", "transient", "fatal"]


@dataclass(frozen=True, slots=True)
class LimitKey:
    """What a call counts against: rate and concurrency limits are kept per key."""

    provider: str
    endpoint: str
    model: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    temperature: float = 0.0
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    model: str
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorDecision:
    """How the core should treat a failed call. ``retry_after_s`` comes from the server when it said so."""

    kind: ErrorKind
    detail: str
    retry_after_s: float | None = None
    status: int | None = None
