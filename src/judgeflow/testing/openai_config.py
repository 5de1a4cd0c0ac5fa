"""How the fake OpenAI server is told to behave, what it counts, and the errors every endpoint answers with.

Kept apart from the server so that a test reads (and changes) the knobs without the HTTP machinery in view:
`FakeOpenAI` is mutable on purpose, and every request reads it afresh; `ServerStats` is what a test asserts on.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from aiohttp import web

from ._http import json_response

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_MAX_REQUESTS",
    "DEFAULT_CRUDE_JUDGES",
    "DEFAULT_MODELS",
    "ORGANIZATION",
    "FakeOpenAI",
    "JudgeFormat",
    "ReplyFn",
    "RequestRecord",
    "ServerStats",
    "cursor_page",
    "error_body",
    "openai_error",
    "requested_model",
]

JudgeFormat: TypeAlias = Literal["score-first", "score-only", "reasoning-first", "garbage"]
ReplyFn: TypeAlias = Callable[[str, Sequence[tuple[str, str]]], str | None]
"""``(model, [(role, content), ...]) -> reply content``; ``None`` is sent as ``"content": null``."""

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-3.5-turbo",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
DEFAULT_CRUDE_JUDGES: tuple[str, ...] = (
    "gpt-3.5-turbo",
    "gpt-4o-mini",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "babbage-002",
    "davinci-002",
)
ORGANIZATION = "judgeflow-test"
BATCH_MAX_REQUESTS = 50_000
BATCH_MAX_BYTES = 200 * 1024 * 1024


@dataclass(slots=True)
class FakeOpenAI:
    """How the fake server behaves. Mutable on purpose: a running server reads it on every request."""

    latency_s: float = 0.0
    """Slept at the start of every request."""
    rpm: int | None = None
    """Requests per ``rpm_window_s`` and model on ``fault_endpoints``; over it -> 429 with Retry-After."""
    rpm_window_s: float = 60.0
    fault_429: float = 0.0
    """Share of requests answered 429 with ``retry-after-ms`` (``retry_after_s``)."""
    fault_500: float = 0.0
    fault_malformed: float = 0.0
    """Share answered 200 with a truncated JSON body."""
    fault_timeout: float = 0.0
    """Share held for ``timeout_s`` (longer than any client timeout) before a 504."""
    fail_first_n: int = 0
    """The first N requests to ``fault_endpoints`` fail with ``fail_first_status``, whatever the rates."""
    fail_first_status: int = 500
    retry_after_s: float = 0.1
    timeout_s: float = 3600.0
    fault_endpoints: frozenset[str] = frozenset({"chat.completions", "embeddings"})
    seed: int = 0
    embedding_dim: int = 64
    fine_tune_step_s: float = 0.2
    judge_format: JudgeFormat = "score-first"
    judge_garbage_rate: float = 0.0
    crude_judge_models: tuple[str, ...] = DEFAULT_CRUDE_JUDGES
    ft_judge_noise: float = 0.0
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None
    """When set, requests must carry ``Authorization: Bearer <api_key>`` or get a 401."""
    known_models_only: bool = False
    """Chat and embeddings answer OpenAI's 404 ``model_not_found`` for a model not in ``models`` (nor tuned here);
    off by default, so a test may name any model."""
    forbidden_models: tuple[str, ...] = ()
    """Models this key may not use: chat and embeddings answer OpenAI's 403 ("Project ... does not have access")."""
    context_tokens: int | None = None
    """A chat request whose messages come to more tokens than this gets OpenAI's 400 ``context_length_exceeded``."""
    reply_fn: ReplyFn | None = None
    batch_validate_s: float = 0.1
    """How long a batch stays ``validating``."""
    batch_run_s: float = 0.5
    """How long a batch stays ``in_progress`` (plus ``batch_request_s`` per request); requests finish evenly."""
    batch_request_s: float = 0.0
    batch_finalize_s: float = 0.1
    """How long a batch stays ``finalizing`` before ``completed`` and its output files appear."""
    batch_cancel_s: float = 0.1
    """How long a cancelled batch stays ``cancelling``."""
    batch_window_s: float = 86_400.0
    """What ``completion_window="24h"`` lasts on the server clock: a batch not done by then is ``expired``."""
    batch_fault_rate: float = 0.0
    """Share of batch requests answered with a 500 in the error file (drawn per batch and ``custom_id``)."""
    batch_max_requests: int = BATCH_MAX_REQUESTS
    batch_max_bytes: int = BATCH_MAX_BYTES
    batch_token_limit: int | None = None
    """Enqueued-token limit per model: a batch that would take the unfinished batches of its model past it
    fails validation with ``token_limit_exceeded``."""
    log_limit: int = 100_000
    """How many ``RequestRecord`` the stats keep (the oldest are dropped)."""
    clock: Callable[[], float] = time.time
    """Epoch seconds: timestamps, the RPM window and the fine-tuning state machine."""
    response_formats: frozenset[str] = frozenset({"json_schema", "json_object"})
    """The ``response_format`` types served (``text`` always is); another is refused as ``format_refusal`` says."""
    format_refusal: Literal["openai", "llamacpp"] = "openai"
    """How an unsupported ``response_format`` is refused: OpenAI's 400, or llama.cpp 0.3.36's 500."""
    logprobs: Literal["full", "dropped", "refused"] = "full"
    """``full``: OpenAI's token log probabilities; ``dropped``: the request is taken and none are sent (Ollama
    before 0.12.11); ``refused``: a 400 naming ``logprobs``."""
    logprob_spread: float = 0.7
    """How wide the judge's score distribution is around its score (a Gaussian's sigma, in points)."""

    def __post_init__(self) -> None:
        rates = (self.fault_429, self.fault_500, self.fault_malformed, self.fault_timeout)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must be in [0, 1] and add up to at most 1")
        if not 0.0 <= self.judge_garbage_rate <= 1.0 or not 0.0 <= self.ft_judge_noise <= 1.0:
            raise ValueError("judge_garbage_rate and ft_judge_noise must be in [0, 1]")
        if self.rpm is not None and self.rpm < 1:
            raise ValueError("rpm must be a positive integer or None")
        if self.logprob_spread <= 0:
            raise ValueError("logprob_spread must be positive")
        if self.embedding_dim < 1 or self.rpm_window_s <= 0 or self.fine_tune_step_s < 0:
            raise ValueError("embedding_dim and rpm_window_s must be positive, fine_tune_step_s >= 0")
        phases = (self.batch_validate_s, self.batch_run_s, self.batch_request_s, self.batch_finalize_s)
        if any(p < 0 for p in (*phases, self.batch_cancel_s)) or self.batch_window_s <= 0:
            raise ValueError("batch phase times must be >= 0 and batch_window_s positive")
        if not 0.0 <= self.batch_fault_rate <= 1.0:
            raise ValueError("batch_fault_rate must be in [0, 1]")
        if self.batch_max_requests < 1 or self.batch_max_bytes < 1:
            raise ValueError("batch_max_requests and batch_max_bytes must be positive")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it arrived: server-clock time (epoch seconds), URL path, and the body's model if any."""

    time: float
    path: str
    model: str | None


def _record_log() -> deque[RequestRecord]:
    return deque(maxlen=100_000)


@dataclass(slots=True)
class ServerStats:
    """What the server saw. ``requests`` counts per endpoint name (``"chat.completions"``, ``"embeddings"``,
    ``"files.create"``, ``"fine_tuning.jobs.retrieve"``...), ``responses`` per HTTP status."""

    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    served_malformed: int = 0
    served_timeout: int = 0
    rate_limited: int = 0
    """429s from the RPM window (also counted in ``served_429``)."""
    batch_requests: int = 0
    """Requests of batches answered (each is answered once, whatever the number of polls)."""
    in_flight: int = 0
    max_in_flight: int = 0
    log: deque[RequestRecord] = field(default_factory=_record_log)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def served_429(self) -> int:
        return self.responses[429]

    @property
    def served_500(self) -> int:
        return self.responses[500]


def error_body(
    message: str, *, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, object]:
    """An error body the way the OpenAI API sends one: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """`error_body` as a response with ``status``."""
    return json_response(error_body(message, type_=type_, param=param, code=code), status, headers)


def cursor_page(
    items: list[dict[str, object]], request: web.Request, *, default_limit: int = 20, max_limit: int = 100
) -> dict[str, object]:
    """OpenAI cursor pagination over ``items`` (already in list order): ``after`` is the id of the last item of
    the previous page; ``first_id`` / ``last_id`` name the page's ends."""
    after = request.query.get("after")
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    try:
        limit = max(1, min(max_limit, int(request.query.get("limit", str(default_limit)))))
    except ValueError:
        limit = default_limit
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def requested_model(body: Any) -> str | web.Response:
    """The ``model`` of a JSON request body, or the 400 the API answers when the body or its model is missing."""
    if not isinstance(body, dict):
        return openai_error(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return openai_error(400, "You must provide a model parameter.", param="model")
    return model
