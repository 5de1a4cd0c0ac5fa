"""A fake text-generation-inference (TGI) / Hugging Face inference server for tests (needs aiohttp).

The real ``huggingface_hub.AsyncInferenceClient`` talks to it unmodified when it is given the server's URL
(``AsyncInferenceClient(base_url=server.base_url)`` or ``model=server.base_url``). It runs in the caller's asyncio
event loop (anyio's asyncio backend)::

    async with serve_tgi(fail_first_n=1, status=429, retry_after="1") as server:
        async with AsyncInferenceClient(base_url=server.base_url) as client:
            ...
        assert server.requests["chat"] == 2

What the client sends, and what is served (huggingface_hub 2.x, a URL as the model):

* ``chat_completion`` -> ``POST {url}/v1/chat/completions`` (``/v1`` and ``/chat/completions`` are appended
  only when the URL does not end with them) with the OpenAI-compatible Messages API body TGI serves:
  ``{"model", "messages": [{"role", "content"}], "max_tokens", "temperature", "stream": false, ...}``, ``None``
  values left out and ``"model": "dummy"`` when the client was given no model id. The reply has TGI's shape:
  ``{"object": "chat.completion", "id", "created", "model", "system_fingerprint", "choices": [{"index": 0,
  "message": {"role": "assistant", "content"}, "logprobs": null, "finish_reason": "eos_token" | "length"}],
  "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}``; ``model`` is the id of the model the server
  serves (``model_id``), whatever the request said, as TGI does.
* ``feature_extraction`` -> ``POST {url}`` itself (no suffix) with ``{"inputs": str | [str, ...]}`` plus
  ``normalize`` / ``truncate`` / ``prompt_name`` / ``truncation_direction`` when set: the text-embeddings-inference
  (TEI) ``/`` route, also served as ``/embed``. The reply is a list of vectors, one per input (TEI always answers
  2-D, a single string included), or, with ``token_level=True``, one list of per-token vectors per input, of
  different lengths, as a feature-extraction pipeline without pooling does.
* ``GET /info`` and ``GET /health``, as TGI has them; anything else is a 404.

Replies are deterministic. The chat endpoint is a cheap "weak model" (`weak_answer`): it answers with the sentence
of the last user message's context (a ``## Context`` section, else the text around the question) that shares the
most content words with the question (a ``## Question`` section or a ``Question:`` line, else the last line),
or ``I don't know.`` when none does. ``reply_fn`` replaces that with a plain function
``[(role, content), ...] -> content`` (``None`` is sent as ``"content": null``). A "token" is a word or a
punctuation mark: usage counts them, and ``max_tokens`` cuts the reply at that many words
(``"finish_reason": "length"``). Embeddings are hashed bags of words, so texts sharing words point the same way.

Faults: the first ``fail_first_n`` requests to the chat and embedding routes fail with ``status``. A 429 carries
``Retry-After: <retry_after>`` (when not None) and, with ``ratelimit_reset_s``, the IETF ``RateLimit`` /
``RateLimit-Policy`` headers the Hugging Face router sends; a 503 has the "model is currently loading" body of
the serverless Inference API (``{"error", "estimated_time"}``); other statuses have TGI's
``{"error", "error_type"}`` body. ``latency_s`` is slept at the start of every request. With ``api_token`` set,
requests must carry ``Authorization: Bearer <api_token>`` or get a 401; ``echo_credentials`` makes that 401 quote
the header it got, like a badly behaved server, to test that clients scrub credentials from error text.
Settings are attributes of the `TGIServer` and may be changed while it runs; each request reads them afresh.

One module, longer than most: a test server is easiest to read as one file, routes and state together.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio
from aiohttp import web

from ._http import json_response, loopback_url, running_app
from ._text import ANY_HEADING, WORD, extractive_answer

__all__ = [
    "DEFAULT_MODEL_ID",
    "TGIReplyFn",
    "TGIRequest",
    "TGIServer",
    "serve_tgi",
    "weak_answer",
]

DEFAULT_MODEL_ID = "meta-llama/Llama-2-7b-chat-hf"

TGIReplyFn: TypeAlias = Callable[[Sequence[tuple[str, str]]], str | None]
"""``[(role, content), ...] -> reply content``; ``None`` is sent as ``"content": null``."""

_FAULT_ROUTES = frozenset({"chat", "embed"})
_LOG_LIMIT = 1000

# --------------------------------------------------------------------------------------------------------------
# The weak model

_TOKEN = re.compile(r"\w+|[^\w\s]")
_STOP_WORDS = (
    "a an and are as at be been but by can could did do does for from had has have he her his how i in is it "
    "its of on or she that the their them they this to was were what when where which who whom why will with "
    "would you your"
)
_STOP = frozenset(_STOP_WORDS.split())
_CONTEXT_SECTIONS = ("context", "passages", "documents", "sources")


def weak_answer(messages: Sequence[tuple[str, str]]) -> str:
    """What the fake model answers: the context sentence that best overlaps the question, or "I don't know."

    Only the last user message is read. Ties go to the earlier sentence, so the best-ranked passage wins.
    """
    user = next((content for role, content in reversed(messages) if role == "user"), "")
    return extractive_answer(user, heading=ANY_HEADING, context_names=_CONTEXT_SECTIONS, stop=_STOP)


def _count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _truncate(text: str, max_tokens: int | None) -> tuple[str, str]:
    """The reply cut to ``max_tokens`` words, and TGI's finish reason."""
    words = text.split()
    if max_tokens is not None and len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "length"
    return text, "eos_token"


# --------------------------------------------------------------------------------------------------------------
# Embeddings


def _token_vector(token: str, dim: int) -> list[float]:
    h = zlib.crc32(token.encode())
    vec = [0.0] * dim
    vec[h % dim] = 1.0 if h & 0x80000000 else -1.0
    return vec


def _tokens_for_embedding(text: str) -> list[str]:
    words = WORD.findall(text.lower())
    return [w for w in words if w not in _STOP] or words or ["<empty>"]


def _sentence_vector(text: str, dim: int, *, normalize: bool) -> list[float]:
    tokens = _tokens_for_embedding(text)
    vec = [0.0] * dim
    for token in tokens:
        for i, value in enumerate(_token_vector(token, dim)):
            vec[i] += value
    vec = [v / len(tokens) for v in vec]
    if normalize:
        norm = math.sqrt(sum(v * v for v in vec))
        if norm > 0.0:
            vec = [v / norm for v in vec]
    return vec


# --------------------------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True, slots=True)
class TGIRequest:
    """One request as the server saw it: the route it matched, its path, JSON body and Authorization header."""

    route: str
    path: str
    body: Any
    authorization: str | None


def _error(status: int, message: str, error_type: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": message, "error_type": error_type}, status, headers)


def _text_of(content: object) -> str | None:
    """A message's text: a string, or the text parts of a list of content parts; None when it is neither."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return None


_Handler: TypeAlias = Callable[[web.Request, Any], Awaitable[web.Response]]


class TGIServer:
    """A running fake TGI server: its address, its (mutable) behaviour and what it has seen. See the module doc."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        fail_first_n: int = 0,
        status: int = 503,
        retry_after: str | None = "1",
        ratelimit_reset_s: int | None = None,
        estimated_time_s: float = 20.0,
        model_id: str = DEFAULT_MODEL_ID,
        embedding_dim: int = 32,
        token_level: bool = False,
        api_token: str | None = None,
        echo_credentials: bool = False,
        reply_fn: TGIReplyFn | None = None,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be at least 1, got {embedding_dim}")
        self.latency_s = latency_s
        self.fail_first_n = fail_first_n
        self.status = status
        self.retry_after = retry_after
        self.ratelimit_reset_s = ratelimit_reset_s
        self.estimated_time_s = estimated_time_s
        self.model_id = model_id
        self.embedding_dim = embedding_dim
        self.token_level = token_level
        self.api_token = api_token
        self.echo_credentials = echo_credentials
        self.reply_fn = reply_fn
        self.requests: Counter[str] = Counter()
        """Requests per route: ``chat``, ``embed``, ``info``, ``health``, ``unknown``."""
        self.responses: Counter[int] = Counter()
        """Responses per HTTP status."""
        self.failures_served = 0
        self.log: deque[TGIRequest] = deque(maxlen=_LOG_LIMIT)
        """The last requests (at most 1000), oldest first."""
        self.host = ""
        self.port = 0
        self._eligible = 0

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, what ``AsyncInferenceClient(base_url=...)`` (or ``model=...``) takes."""
        return loopback_url(self.host, self.port)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def make_app(self) -> web.Application:
        app = web.Application()
        routes: list[tuple[str, str, str, _Handler]] = [
            ("POST", "/v1/chat/completions", "chat", self._chat),
            ("POST", "/", "embed", self._embed),
            ("POST", "/embed", "embed", self._embed),
            ("GET", "/info", "info", self._info),
            ("GET", "/health", "health", self._health),
        ]
        for method, path, name, handler in routes:
            app.router.add_route(method, path, self._endpoint(name, handler))
        app.router.add_route("*", "/{tail:.*}", self._endpoint("unknown", self._not_found))
        return app

    def _endpoint(self, name: str, handler: _Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests[name] += 1
            response = await self._serve(name, handler, request)
            self.responses[response.status] += 1
            response.headers["x-request-id"] = f"tgi-{self.total_requests:08d}"
            return response

        return handle

    async def _serve(self, name: str, handler: _Handler, request: web.Request) -> web.Response:
        body: Any = None
        raw = await request.read() if request.can_read_body else b""
        authorization = request.headers.get("Authorization")
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self.log.append(TGIRequest(name, request.path, None, authorization))
                return _error(400, "Failed to parse the request body as JSON", "validation")
        self.log.append(TGIRequest(name, request.path, body, authorization))
        if self.latency_s > 0:
            await anyio.sleep(self.latency_s)
        if self.api_token is not None and authorization != f"Bearer {self.api_token}":
            message = "Invalid credentials in Authorization header"
            if self.echo_credentials:
                message += f": {authorization!r}"
            return _error(401, message, "authentication")
        if name in _FAULT_ROUTES:
            self._eligible += 1
            if self._eligible <= self.fail_first_n:
                self.failures_served += 1
                return self._fault(self.status)
        return await handler(request, body)

    def _fault(self, status: int) -> web.Response:
        headers: dict[str, str] = {}
        if self.retry_after is not None and status in (429, 503):
            headers["Retry-After"] = self.retry_after
        if status == 429:
            if self.ratelimit_reset_s is not None:
                headers["RateLimit"] = f'"api";r=0;t={self.ratelimit_reset_s}'
                headers["RateLimit-Policy"] = '"fixed window";"api";q=100;w=300'
            return _error(429, "Model is overloaded", "overloaded", headers)
        if status == 503:
            payload = {
                "error": f"Model {self.model_id} is currently loading",
                "estimated_time": self.estimated_time_s,
            }
            return json_response(payload, 503, headers)
        if status >= 500:
            return _error(status, "Request failed during generation: injected server error", "generation", headers)
        return _error(status, f"Injected failure with status {status}", "validation", headers)

    # -- routes ----------------------------------------------------------------------------------------------

    async def _not_found(self, request: web.Request, body: Any) -> web.Response:
        return _error(404, f"No route for {request.method} {request.path}", "not_found")

    async def _health(self, request: web.Request, body: Any) -> web.Response:
        return web.Response(status=200)

    async def _info(self, request: web.Request, body: Any) -> web.Response:
        return json_response(
            {
                "model_id": self.model_id,
                "model_pipeline_tag": "text-generation",
                "max_input_tokens": 4095,
                "max_total_tokens": 4096,
                "version": "judgeflow-fake",
            }
        )

    async def _chat(self, request: web.Request, body: Any) -> web.Response:
        if not isinstance(body, dict):
            return _error(422, "The request body must be a JSON object", "validation")
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            return _error(422, "`messages` must be a non-empty list", "validation")
        messages: list[tuple[str, str]] = []
        for item in raw_messages:
            role = item.get("role") if isinstance(item, dict) else None
            text = _text_of(item.get("content")) if isinstance(item, dict) else None
            if not isinstance(role, str) or text is None:
                return _error(422, "each message needs a string `role` and a `content`", "validation")
            messages.append((role, text))
        if body.get("stream"):
            return _error(422, "streaming is not supported by the judgeflow fake server", "validation")
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            return _error(422, "`max_tokens` must be strictly positive", "validation")
        temperature = body.get("temperature")
        if temperature is not None and (not isinstance(temperature, int | float) or temperature < 0):
            return _error(422, "`temperature` must be non-negative", "validation")
        content = self.reply_fn(messages) if self.reply_fn is not None else weak_answer(messages)
        finish = "eos_token"
        if content is not None:
            content, finish = _truncate(content, max_tokens)
        prompt_tokens = sum(_count_tokens(text) + 3 for _, text in messages)
        completion_tokens = _count_tokens(content or "")
        return json_response(
            {
                "object": "chat.completion",
                "id": "",
                "created": int(time.time()),
                "model": self.model_id,
                "system_fingerprint": "judgeflow-fake-tgi",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def _embed(self, request: web.Request, body: Any) -> web.Response:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        texts: list[str]
        if isinstance(inputs, str):
            texts = [inputs]
        elif isinstance(inputs, list) and inputs and all(isinstance(t, str) for t in inputs):
            texts = list(inputs)
        else:
            return _error(422, "`inputs` must be a string or a non-empty list of strings", "validation")
        normalize = body.get("normalize", True) is not False
        dim = self.embedding_dim
        if self.token_level:
            return json_response([[_token_vector(t, dim) for t in _tokens_for_embedding(text)] for text in texts])
        return json_response([_sentence_vector(text, dim, normalize=normalize) for text in texts])


@contextlib.asynccontextmanager
async def serve_tgi(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_s: float = 0.0,
    fail_first_n: int = 0,
    status: int = 503,
    retry_after: str | None = "1",
    ratelimit_reset_s: int | None = None,
    estimated_time_s: float = 20.0,
    model_id: str = DEFAULT_MODEL_ID,
    embedding_dim: int = 32,
    token_level: bool = False,
    api_token: str | None = None,
    echo_credentials: bool = False,
    reply_fn: TGIReplyFn | None = None,
) -> AsyncIterator[TGIServer]:
    """Serve a fake TGI on ``host:port`` (0 picks a free port) in the running asyncio loop (see the module doc).

    On exit the listening socket closes, requests still sleeping out ``latency_s`` are cancelled, and the runner
    is cleaned up in a shielded scope bounded to a few seconds.
    """
    server = TGIServer(
        latency_s=latency_s,
        fail_first_n=fail_first_n,
        status=status,
        retry_after=retry_after,
        ratelimit_reset_s=ratelimit_reset_s,
        estimated_time_s=estimated_time_s,
        model_id=model_id,
        embedding_dim=embedding_dim,
        token_level=token_level,
        api_token=api_token,
        echo_credentials=echo_credentials,
        reply_fn=reply_fn,
    )
    async with running_app(server.make_app(), host=host, port=port, shutdown_timeout=1.0) as listener:
        server.host, server.port = host, listener.port
        yield server
