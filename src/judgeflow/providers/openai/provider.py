"""OpenAI (and OpenAI-compatible) chat and embedding models behind judgeflow's provider seams.

This module, `judgeflow.providers.openai.http` and the fine-tuning backend are the only places that import the
``openai`` SDK. They declare policy and nothing else: `OpenAIChat.complete` makes exactly one HTTP attempt (the
SDK's own retries are switched off with ``max_retries=0``) and ``classify`` tells the core what a failure means.
Retries, rate limiters, concurrency caps and cost accounting live in the core.

Chat completions go through `judgeflow.providers.openai.http.LeanChatClient`, a small aiohttp client that raises
the SDK's own exceptions at a tenth of the SDK's CPU per request (the SDK caps a process near 450 chat requests
per second, which is what limits a judge run against a fast server); embeddings, files and fine-tuning use the
SDK.

How errors map (`classify_openai_error`; the kinds are `judgeflow.protocol.calls.ErrorKind`):

============================================================  =================================================
``RateLimitError`` (429)                                      ``rate_limited``; ``retry_after_s`` read from the
                                                              response headers (`calls.backoff.parse_retry_after`)
``APIConnectionError``, ``APITimeoutError`` (refused, reset,  ``unreachable``: the server is away; the detail
DNS, TLS, timeouts), 502, 503, 504                            names the underlying error
401, 403, 404, code ``model_not_found`` or ``invalid_api_key``  ``fatal_model``: every call to this model here
(any status), 429 ``insufficient_quota``, 400                 would fail alike (a wrong key, model or URL, no
``unsupported_parameter`` / ``unsupported_value``             credit, a parameter the model refuses)
408, 409, 500 and other 5xx                                   ``transient``
a malformed body (bad JSON, wrong shape)                      ``transient``, the detail says what was wrong
`UnsupportedFeature` (see below)                              ``fatal`` for this call only: the role asks without it
400, 422, other 4xx, anything else                            ``fatal``: this request fails, the others go on
============================================================  =================================================

A server that refuses a feature of the request raises `judgeflow.protocol.calls.UnsupportedFeature` from
`OpenAIChat.complete` instead of its status error: a 400, 422 or 5xx whose message names ``response_format``
(llama.cpp answers ``json_schema`` with a 500) when the request asked for constrained output, or names
``logprobs`` when it asked for those. It is never retried; the LLM roles fall back (`judgeflow.calls.structured`).

The API key never appears in a repr or in an ``ErrorDecision.detail``: details are scrubbed of the key the
client holds and of anything shaped like an OpenAI key (OpenAI's own 401 messages echo a masked key). For a
rejected key, ``hint`` says where the key came from (``OPENAI_API_KEY``, ``api_key=``...), never what it is.
"""

from __future__ import annotations

import array
import base64
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from anyio.abc import AsyncResource

from judgeflow.calls.backoff import parse_retry_after
from judgeflow.protocol.calls import ChatRequest, ChatResult, ErrorDecision, Feature, LimitKey, UnsupportedFeature
from judgeflow.providers.openai.http import LeanChatClient, MalformedResponseError
from judgeflow.providers.urls import display_url

if TYPE_CHECKING:
    import openai

__all__ = [
    "LOCAL_API_KEY",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "OpenAIChat",
    "OpenAIEmbedder",
    "classify_openai_error",
    "is_local_url",
    "key_source",
    "make_client",
    "unsupported_feature",
]

LOCAL_API_KEY = "sk-local"
"""The placeholder key sent to local OpenAI-compatible servers, which ignore it."""

_MAX_EMBEDDING_INPUTS = 2048  # per request, the API's limit
_DETAIL_LIMIT = 500
_KEY_SHAPED = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_*.\-]{4,}")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
_OPENAI_URL = "https://api.openai.com/v1"  # the SDK's default base URL
_KEY_VARIABLE = "OPENAI_API_KEY"
# Statuses and codes that say every call to this model on this server fails alike (see the module docstring).
_MODEL_STATUSES = frozenset({401, 403, 404})
_MODEL_CODES = frozenset(
    {"model_not_found", "invalid_api_key", "insufficient_quota", "unsupported_country_region_territory"}
)
_SHAPE_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
_AWAY_STATUSES = frozenset({502, 503, 504})  # a gateway answering for a backend that is not there


def key_source(key: str, *, explicit: bool) -> str:
    """Where a key came from, for messages (never the key): the argument, the environment, or the placeholder."""
    if explicit:
        return "the key passed as api_key"
    if key == LOCAL_API_KEY:
        return f"no key was sent ({_KEY_VARIABLE} is not set; a local URL gets a placeholder)"
    if key == os.environ.get(_KEY_VARIABLE):
        return f"the key came from {_KEY_VARIABLE}"
    return "the key of the OpenAI client passed in"


class MissingAPIKeyError(RuntimeError):
    """No API key was given and none is in the environment, for a server that needs one."""


def is_local_url(url: str) -> bool:
    """Whether ``url`` points at this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.startswith("127.") or host.endswith(".localhost")


def make_client(base_url: str | None = None, api_key: str | None = None, timeout_s: float = 60.0) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` client with SDK retries off (the core retries).

    ``base_url`` and ``api_key`` default to ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``. A local server with no
    key gets the placeholder `LOCAL_API_KEY`; any other server with no key raises `MissingAPIKeyError`.
    """
    import openai  # the SDK takes half a second to import; chat alone never needs it

    url, key = _connection(base_url, api_key)
    return openai.AsyncOpenAI(api_key=key, base_url=url, timeout=timeout_s, max_retries=0)


def _connection(base_url: str | None, api_key: str | None) -> tuple[str | None, str]:
    """The base URL (None: the SDK's default) and key `make_client` uses, from the arguments or the environment."""
    url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = api_key or os.environ.get(_KEY_VARIABLE) or None
    if key is None:
        if url is None or not is_local_url(url):
            where = urlsplit(url).hostname if url else "api.openai.com"
            raise MissingAPIKeyError(
                f"no OpenAI API key for {where}: set the OPENAI_API_KEY environment variable "
                "(or pass api_key=...); only a local base URL (localhost, 127.0.0.1) works without a key"
            )
        key = LOCAL_API_KEY
    return url, key


def _scrub(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    text = _KEY_SHAPED.sub("sk-***", text)
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."


def _sdk_loaded() -> bool:
    """Whether the SDK is imported: if it is not, no error can be one of its exceptions (the lean chat client
    imports it when it raises one), so classifying needs no import."""
    return "openai" in sys.modules


def _describe(error: BaseException, secret: str | None) -> str:
    message = str(error)
    if _sdk_loaded():
        import openai

        if isinstance(error, openai.APIError):
            message = error.message
        if isinstance(error, openai.APIConnectionError) and error.__cause__ is not None:
            # The SDK says only "Connection error."; what failed (refused, DNS, TLS...) is in its cause.
            cause = error.__cause__
            message = f"{message} ({type(cause).__name__}: {' '.join(str(cause).split())})"
    return _scrub(f"{type(error).__name__}: {message}" if message else type(error).__name__, secret)


def classify_openai_error(
    error: BaseException, *, secret: str | None = None, now_epoch: float | None = None, key_hint: str | None = None
) -> ErrorDecision:
    """What the core should do about ``error`` raised by an ``openai`` call (see the module docstring).

    ``secret`` is scrubbed from the detail; ``now_epoch`` (default: the wall clock) resolves HTTP-date
    Retry-After headers; ``key_hint`` (where the key came from, see `key_source`) is the hint of a rejected key.
    """
    detail = _describe(error, secret)
    if isinstance(error, UnsupportedFeature):
        return ErrorDecision("fatal", _scrub(str(error), secret))
    if isinstance(error, MalformedResponseError | json.JSONDecodeError):
        return ErrorDecision("transient", f"malformed response: {detail}")
    if not _sdk_loaded():
        return ErrorDecision("fatal", detail)
    import openai
    import pydantic  # imported by the SDK

    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        code = error.code if isinstance(error.code, str) else None
        if code is not None and code not in detail:
            detail = _scrub(f"{detail} (code {code})", secret)
        if code in _MODEL_CODES or status in _MODEL_STATUSES or (status == 400 and code in _SHAPE_CODES):
            hint = key_hint if status in (401, 403) or code == "invalid_api_key" else None
            return ErrorDecision("fatal_model", detail, status=status, hint=hint)
        if status == 429:
            now = time.time() if now_epoch is None else now_epoch
            retry_after = parse_retry_after(error.response.headers, now_epoch=now)
            return ErrorDecision("rate_limited", detail, retry_after_s=retry_after, status=status)
        if status in _AWAY_STATUSES:
            return ErrorDecision("unreachable", detail, status=status)
        if status in (408, 409) or status >= 500:
            return ErrorDecision("transient", detail, status=status)
        return ErrorDecision("fatal", detail, status=status)
    if isinstance(error, openai.APIResponseValidationError):
        return ErrorDecision("transient", f"malformed response: {detail}", status=error.status_code)
    if isinstance(error, openai.APIConnectionError):  # APITimeoutError included
        return ErrorDecision("unreachable", detail)
    if isinstance(error, pydantic.ValidationError):
        return ErrorDecision("transient", f"malformed response: {detail}")
    return ErrorDecision("fatal", detail)


_FEATURE_STATUSES = frozenset({400, 404, 415, 422, 500, 501})
_FORMAT_WORDS = ("response_format", "response format", "json_schema", "json_object", "structured output")


def unsupported_feature(status: int, message: str, request: ChatRequest) -> Feature | None:
    """The feature of ``request`` a server's error answer refuses, or None when the error is about something else."""
    if status not in _FEATURE_STATUSES:
        return None
    text = message.lower()
    if request.output is not None and any(word in text for word in _FORMAT_WORDS):
        if "must contain the word" in text:  # OpenAI's JSON mode wants "json" in the prompt: a prompt mistake
            return None
        return request.output.kind
    if request.top_logprobs is not None and "logprob" in text:
        return "logprobs"
    return None


def _vectors(response: object, expected: int) -> list[list[float]]:
    from openai.types.create_embedding_response import CreateEmbeddingResponse

    if not isinstance(response, CreateEmbeddingResponse):
        raise MalformedResponseError(f"expected an embedding list, got {type(response).__name__}")
    try:
        items = sorted(response.data, key=lambda item: item.index)
        vectors: list[list[float]] = []
        for item in items:
            raw: object = item.embedding
            if isinstance(raw, str):
                vectors.append(array.array("f", base64.b64decode(raw)).tolist())
            elif isinstance(raw, list):
                vectors.append([float(x) for x in raw])
            else:
                raise MalformedResponseError(f"embedding {item.index} is a {type(raw).__name__}")
    except (AttributeError, TypeError, ValueError) as err:
        raise MalformedResponseError(f"the embedding response is malformed ({err})") from err
    if len(vectors) != expected:
        raise MalformedResponseError(f"asked for {expected} embeddings, got {len(vectors)}")
    return vectors


class _OpenAIModel(AsyncResource):
    """Client ownership and error policy shared by the chat model and the embedder."""

    _endpoint = ""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        client: openai.AsyncOpenAI | None,
        provider: str,
    ) -> None:
        if client is not None and (base_url is not None or api_key is not None):
            raise ValueError("pass either client= or base_url=/api_key=, not both")
        self.model = model
        self.name = model
        self.provider = provider
        self._timeout_s = timeout_s
        self._owns_client = client is None
        # The core retries; a shared client is copied (same connection pool) with the SDK's retries off.
        self._client = (
            make_client(base_url, api_key, timeout_s) if client is None else client.with_options(max_retries=0)
        )
        self.key = LimitKey(provider, self._endpoint, model, display_url(str(self._client.base_url)))
        self._key_hint = key_source(self._client.api_key, explicit=api_key is not None)

    def classify(self, error: BaseException) -> ErrorDecision:
        return classify_openai_error(error, secret=self._client.api_key, key_hint=self._key_hint)

    @property
    def base_url(self) -> str:
        """The server this model is called on (it keys the response cache, next to the model name)."""
        return str(self._client.base_url)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (a client passed in belongs to the caller)."""
        if self._owns_client:
            await self._client.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, provider={self.provider!r}, "
            f"base_url={str(self._client.base_url)!r})"
        )


class OpenAIChat(AsyncResource):
    """A chat-completions model (`judgeflow.protocol.models.ChatModel`) on OpenAI or a compatible server.

    Requests go through `judgeflow.providers.openai.http.LeanChatClient` (aiohttp), not the SDK. Give either
    ``base_url`` / ``api_key`` (defaults: ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``; see `make_client`) or a
    ``client``, whose base URL, key, organization and project are used and which is never closed here (it
    belongs to its owner). Either way the chat opens its own HTTP session on the first call; close it with
    ``aclose()`` or ``async with`` (a chat dropped unclosed has it closed by the event loop).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        client: openai.AsyncOpenAI | None = None,
        provider: str = "openai",
    ) -> None:
        if client is not None and (base_url is not None or api_key is not None):
            raise ValueError("pass either client= or base_url=/api_key=, not both")
        self.model = model
        self.name = model
        self.provider = provider
        headers: dict[str, str] = {}
        if client is not None:
            url, key = str(client.base_url), client.api_key
            organization, project = client.organization, client.project
        else:
            resolved, key = _connection(base_url, api_key)
            url = resolved or _OPENAI_URL
            organization, project = os.environ.get("OPENAI_ORG_ID"), os.environ.get("OPENAI_PROJECT_ID")
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        self._secret = key
        self._key_hint = key_source(key, explicit=api_key is not None)
        self._lean = LeanChatClient(url, key, headers=headers, timeout_s=timeout_s)
        self.key = LimitKey(provider, "chat.completions", model, display_url(url))

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One attempt at a completion; an empty or null reply is returned as ``""`` (the parser decides).

        A refused feature of the request raises `UnsupportedFeature` (see the module docstring).
        """
        try:
            return await self._lean.complete(self.model, request)
        except Exception as error:
            if (request.output is None and request.top_logprobs is None) or not _sdk_loaded():
                raise
            import openai

            if not isinstance(error, openai.APIStatusError):
                raise
            message = f"{error.message} {error.body}"
            feature = unsupported_feature(error.status_code, message, request)
            if feature is None:
                raise
            raise UnsupportedFeature(feature, _describe(error, self._secret)) from error

    def classify(self, error: BaseException) -> ErrorDecision:
        return classify_openai_error(error, secret=self._secret, key_hint=self._key_hint)

    @property
    def base_url(self) -> str:
        """The server this model is called on, as the SDK spells it (it keys the response cache, with the model)."""
        return self._lean.base_url + "/"

    async def aclose(self) -> None:
        """Close the chat's HTTP session (a ``client`` passed in is left open: it belongs to the caller)."""
        await self._lean.aclose()

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, provider={self.provider!r}, base_url={self.base_url!r})"


class OpenAIEmbedder(_OpenAIModel):
    """An embeddings model (`judgeflow.protocol.models.Embedder`) on OpenAI or a compatible server.

    Vectors travel as base64 float32 (a quarter of the JSON size) and come back as lists of floats in input
    order. ``dimensions`` shortens the vectors of models that support it (text-embedding-3-*).
    """

    _endpoint = "embeddings"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        client: openai.AsyncOpenAI | None = None,
        provider: str = "openai",
        dimensions: int | None = None,
    ) -> None:
        super().__init__(
            model, base_url=base_url, api_key=api_key, timeout_s=timeout_s, client=client, provider=provider
        )
        self.dimensions = dimensions

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for ``texts``, in order; more than 2048 texts are sent as several requests, one at a time."""
        import openai

        vectors: list[list[float]] = []
        for start in range(0, len(texts), _MAX_EMBEDDING_INPUTS):
            batch = list(texts[start : start + _MAX_EMBEDDING_INPUTS])
            response = await self._client.embeddings.create(
                model=self.model,
                input=batch,
                encoding_format="base64",
                dimensions=self.dimensions if self.dimensions is not None else openai.omit,
                timeout=self._timeout_s,
            )
            vectors.extend(_vectors(response, len(batch)))
        return vectors
