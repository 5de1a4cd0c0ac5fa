"""The typed vocabulary between the core and the providers: requests, results and error decisions.

Providers declare policy, the core enforces it. A provider turns its SDK's exceptions into an `ErrorDecision`
(see `ErrorKind`) and names the `LimitKey` its calls count against; retries, rate limiters, concurrency caps,
pausing for an unreachable server and cost accounting are written once, in the core, against these types.
Nothing here imports a vendor SDK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .messages import ChatMessage, Usage

__all__ = [
    "ChatRequest",
    "ChatResult",
    "ErrorDecision",
    "ErrorKind",
    "Feature",
    "JsonOutput",
    "LimitKey",
    "TokenLogprob",
    "UnsupportedFeature",
]

ErrorKind: TypeAlias = Literal["rate_limited", "transient", "unreachable", "fatal_model", "fatal"]
"""What a failed call means, and so what the core does about it:

- ``rate_limited``: the server said "too many requests" (429); back off (honouring its retry-after) and retry;
- ``transient``: an answer that may differ next time (500, a malformed body); back off and retry, a few times;
- ``unreachable``: no usable answer from the server at all (connection refused or reset, DNS, TLS, timeouts,
  a gateway's 502/503/504): the server is away; calls to it pause until it answers again, and the item never
  fails for it;
- ``fatal_model``: every call to this model on this server will fail alike (401, 403, 404 model-not-found, no
  quota): the run stops, and the items not done stay pending;
- ``fatal``: this request is bad (400 for an over-long prompt, a content filter): that item fails, the rest go on.
"""
Feature: TypeAlias = Literal["json_schema", "json_object", "logprobs"]
"""What a request may ask of a server beyond plain text, and what a server may refuse."""


@dataclass(frozen=True, slots=True)
class LimitKey:
    """What a call counts against: rate and concurrency limits are kept per key.

    ``server`` is where the calls go (a base URL; empty for models that run in-process): two servers serving a
    model of the same name have limits of their own, and whether a server answers is tracked per server.
    """

    provider: str
    endpoint: str
    model: str
    server: str = ""


@dataclass(frozen=True, slots=True)
class JsonOutput:
    """Constrained output: a reply that is JSON following ``schema``, asked for as ``kind``.

    ``json_schema`` is OpenAI's structured output (strict); ``json_object`` is JSON mode, to which llama.cpp adds the
    schema as a grammar. The schema is kept as canonical JSON text, so a request stays hashable and comparable.
    """

    name: str
    schema_json: str
    kind: Literal["json_schema", "json_object"] = "json_schema"

    @classmethod
    def of(
        cls, name: str, schema: dict[str, Any], kind: Literal["json_schema", "json_object"] = "json_schema"
    ) -> JsonOutput:
        # Key order is kept: a grammar (llama.cpp) writes the properties in the schema's order, score first.
        return cls(name, json.dumps(schema, separators=(",", ":")), kind)

    @property
    def schema(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.schema_json)
        return data


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat call. ``output`` asks for constrained JSON; ``top_logprobs`` (1-20) asks for the log probabilities
    of each reply token and of the ``top_logprobs`` most likely tokens at each position."""

    messages: tuple[ChatMessage, ...]
    temperature: float = 0.0
    max_tokens: int | None = None
    output: JsonOutput | None = None
    top_logprobs: int | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One token of a reply, its log probability, and the most likely tokens at its position (``(token, logprob)``)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A chat reply. ``logprobs`` is None when none were asked for or the server sent none."""

    text: str
    model: str
    usage: Usage | None = None
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None


class UnsupportedFeature(Exception):
    """The server refused a feature of the request (``json_schema``, ``json_object`` or ``logprobs``).

    Not a failure of the call: asking without the feature may work, so a role falls back instead of failing, and
    the core never retries it.
    """

    def __init__(self, feature: Feature, detail: str) -> None:
        super().__init__(f"the server does not support {feature}: {detail}")
        self.feature: Feature = feature
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ErrorDecision:
    """How the core should treat a failed call. ``retry_after_s`` comes from the server when it said so.

    ``detail`` is the error in the server's own words (scrubbed of secrets); ``hint`` is what the user can do
    about it, when the provider knows (for a rejected key: which environment variable it came from, never the
    key itself).
    """

    kind: ErrorKind
    detail: str
    retry_after_s: float | None = None
    status: int | None = None
    hint: str | None = None
