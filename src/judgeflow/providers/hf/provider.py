"""Hugging Face inference (Inference Providers, Inference Endpoints, TGI / TEI servers) behind judgeflow's seams.

This module (and the later Hub-export module) are the only places that import ``huggingface_hub``. As with the
OpenAI provider, it declares policy and nothing else: each call is one HTTP attempt through
``huggingface_hub.AsyncInferenceClient`` (which does not retry), and ``classify`` tells the core what a failure
means; retries, rate limiters and concurrency caps live in the core.

Where a call goes depends on ``model`` and ``base_url``:

=============================================  ================================================================
``HFChat("meta-llama/Llama-2-7b-chat-hf")``    the Hugging Face router (``inference_provider`` picks a provider,
                                               default server-side auto routing; needs an ``hf_`` token)
``HFChat("meta-llama/...", base_url=URL)``     ``POST URL/v1/chat/completions`` with ``"model": "meta-llama/..."``
``HFChat(URL)`` (TGI server, Endpoint URL)     ``POST URL/v1/chat/completions`` with ``"model": "dummy"`` (TGI
                                               serves one model and ignores it)
``HFEmbedder(URL)`` / ``(id, base_url=URL)``   ``POST URL`` with ``{"inputs": [...]}`` (TEI's ``/`` route)
``HFEmbedder("sentence-transformers/...")``    the router's feature-extraction pipeline for that model
=============================================  ================================================================

How errors map (`classify_hf_error`; the kinds are `judgeflow.protocol.calls.ErrorKind`):

=================================================================  ==============================================
``HfHubHTTPError`` 429                                             ``rate_limited``; ``retry_after_s`` from
                                                                   ``Retry-After`` (`judgeflow.calls.backoff`), else
                                                                   the router's IETF ``RateLimit: "api";r=0;t=N``
``InferenceTimeoutError``, ``TimeoutError``, connection errors     ``unreachable``: the server is away
(``httpx2.TransportError``), ``HfHubHTTPError`` 502, 503, 504      (a 503 "model is currently loading" too: its
                                                                   ``estimated_time`` is in the detail)
``HfHubHTTPError`` 401, 403, 404, ``OfflineModeIsEnabled``         ``fatal_model``: every call to this model here
(``HF_HUB_OFFLINE=1``)                                             would fail alike (token, model, URL)
``HfHubHTTPError`` 408, other 5xx; a malformed 2xx body            ``transient``
``HfHubHTTPError`` 400, 422 and any other 4xx, anything else       ``fatal``: this request fails, the others go on
=================================================================  ==============================================

The token comes from ``token=`` or the ``HF_TOKEN`` environment variable; with neither, the client falls back to
the token saved by ``hf auth login``, if any (a rejected token's ``hint`` says which of the three it was). It
never appears in a repr or an ``ErrorDecision.detail``, and it is
scrubbed from the text of the exceptions ``complete`` and ``embed`` raise (a server that echoes the Authorization
header cannot leak it into a log).

One module, longer than most: chat and embeddings share the client set-up, the routing table above and one
error classification, which must stay the same for both.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import httpx2
import numpy as np
import numpy.typing as npt
from anyio.abc import AsyncResource
from huggingface_hub import AsyncInferenceClient, ChatCompletionInputMessage, ChatCompletionOutput
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OfflineModeIsEnabled

from judgeflow.calls.backoff import parse_retry_after
from judgeflow.protocol.calls import ChatRequest, ChatResult, ErrorDecision, LimitKey, UnsupportedFeature
from judgeflow.protocol.messages import Usage
from judgeflow.providers.urls import display_url

__all__ = [
    "HFChat",
    "HFEmbedder",
    "MalformedResponseError",
    "classify_hf_error",
    "is_url",
    "pool_embeddings",
    "token_source",
]

_DETAIL_LIMIT = 500
_HF_TOKEN_SHAPED = re.compile(r"\bhf_[A-Za-z0-9]{8,}")
_DEFAULT_BATCH = 32
_ROUTER = "https://router.huggingface.co"  # where a Hub model id's calls go without a URL
# IETF draft RateLimit header as the Hugging Face router sends it: '"api";r=0;t=55' (remaining r, reset in t s).
_IETF_RATELIMIT = re.compile(r'"\w+"\s*;\s*r\s*=\s*(\d+)\s*;\s*t\s*=\s*(\d+)')


class MalformedResponseError(Exception):
    """The server answered 2xx with a body that is not what the endpoint returns."""


def is_url(model: str) -> bool:
    """Whether ``model`` is a URL (an Inference Endpoint or a TGI/TEI server) rather than a Hub model id."""
    return model.startswith(("http://", "https://"))


def _scrub(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return _HF_TOKEN_SHAPED.sub("hf_***", text)


def _describe(error: BaseException, secret: str | None) -> str:
    # The SDK's messages start with blank lines and carry the server's text on later lines: one line reads better.
    message = " ".join(str(error).split())
    text = _scrub(f"{type(error).__name__}: {message}" if message else type(error).__name__, secret)
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."


def _redact(error: BaseException, secret: str | None) -> None:
    """Scrub ``secret`` from the text of ``error`` and of the exceptions it was raised from, in place."""
    if not secret:
        return
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(isinstance(arg, str) and secret in arg for arg in current.args):
            current.args = tuple(_scrub(arg, secret) if isinstance(arg, str) else arg for arg in current.args)
        if isinstance(current, HfHubHTTPError) and current.server_message and secret in current.server_message:
            current.server_message = _scrub(current.server_message, secret)
        current = current.__cause__ or current.__context__


def _estimated_time(error: HfHubHTTPError) -> float | None:
    """The ``estimated_time`` of the serverless API's 503 "model is currently loading" body, if there is one."""
    try:
        data = json.loads(error.response.content)
    except (httpx2.ResponseNotRead, ValueError, TypeError):
        return None
    value = data.get("estimated_time") if isinstance(data, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _ietf_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until the exhausted window of an IETF ``RateLimit`` header resets, if one says so."""
    value = next((v for k, v in headers.items() if k.lower() == "ratelimit"), None)
    match = _IETF_RATELIMIT.search(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) != 0:
        return None
    return float(match.group(2))


def token_source(token: str | None, *, explicit: bool) -> str:
    """Where a token came from, for messages (never the token)."""
    if explicit:
        return "the token passed as token"
    if token is not None:
        return "the token came from HF_TOKEN"
    return "HF_TOKEN is not set: the token saved by `hf auth login` was sent, if there is one"


def classify_hf_error(
    error: BaseException, *, secret: str | None = None, now_epoch: float | None = None, token_hint: str | None = None
) -> ErrorDecision:
    """What the core should do about ``error`` raised by an ``AsyncInferenceClient`` call (see the module doc).

    ``secret`` is scrubbed from the detail; ``now_epoch`` (default: the wall clock) resolves HTTP-date
    Retry-After headers; ``token_hint`` (see `token_source`) is the hint of a rejected token.
    """
    detail = _describe(error, secret)
    if isinstance(error, HfHubHTTPError):
        response = error.response
        status = response.status_code
        now = time.time() if now_epoch is None else now_epoch
        retry_after = parse_retry_after(response.headers, now_epoch=now)
        if status == 429:
            if retry_after is None:
                retry_after = _ietf_reset(response.headers)
            return ErrorDecision("rate_limited", detail, retry_after_s=retry_after, status=status)
        if status in (401, 403, 404):
            hint = token_hint if status in (401, 403) else None
            return ErrorDecision("fatal_model", detail, status=status, hint=hint)
        if status in (502, 503, 504):
            loading = _estimated_time(error) if status == 503 else None
            if loading is not None:
                detail += f" (estimated time {loading:g} s)"
            return ErrorDecision("unreachable", detail, retry_after_s=retry_after or loading, status=status)
        if status == 408 or status >= 500:
            return ErrorDecision("transient", detail, retry_after_s=retry_after, status=status)
        return ErrorDecision("fatal", detail, status=status)
    if isinstance(error, InferenceTimeoutError | TimeoutError):
        return ErrorDecision("unreachable", detail)
    if isinstance(error, OfflineModeIsEnabled):
        # A ConnectionError subclass, but retrying cannot help: the environment forbids every call.
        return ErrorDecision("fatal_model", detail, hint="HF_HUB_OFFLINE is set")
    if isinstance(error, httpx2.TransportError):
        return ErrorDecision("unreachable", detail)
    if isinstance(error, MalformedResponseError | httpx2.DecodingError | json.JSONDecodeError):
        return ErrorDecision("transient", f"malformed response: {detail}")
    return ErrorDecision("fatal", detail)


def _chat_result(output: object, requested_model: str) -> ChatResult:
    # The SDK parses permissively (missing fields become None, extra ones are kept): check the shape here, so
    # that a broken body is a retryable error rather than a crash in an actor.
    if not isinstance(output, ChatCompletionOutput):
        raise MalformedResponseError(f"expected a chat completion, got {type(output).__name__}")
    choices = output.choices
    if not isinstance(choices, list) or not choices:
        raise MalformedResponseError("the chat completion has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    finish_reason = getattr(choice, "finish_reason", None)
    usage = output.usage
    tokens = None
    if usage is not None:
        tokens = Usage(
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )
    model = output.model
    return ChatResult(
        text=content if isinstance(content, str) else "",
        model=model if isinstance(model, str) and model else requested_model,
        usage=tokens,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
    )


def pool_embeddings(array: npt.NDArray[Any], expected: int) -> list[list[float]]:
    """One vector per input from what a feature-extraction endpoint returned.

    1-D: a single vector (only valid for one input). 2-D: one vector per input (sentence embeddings). 3-D:
    per-token vectors of each input (a model without a pooling layer), mean-pooled over the tokens.
    """
    if array.ndim == 1:
        if expected != 1:
            raise MalformedResponseError(f"asked for {expected} embeddings, got a single vector")
        array = array.reshape(1, -1)
    elif array.ndim == 3:
        if array.shape[1] == 0:
            raise MalformedResponseError("the endpoint returned no token vectors")
        array = array.mean(axis=1)
    elif array.ndim != 2:
        raise MalformedResponseError(f"expected 1-D, 2-D or 3-D embeddings, got shape {array.shape}")
    if array.shape[0] != expected:
        raise MalformedResponseError(f"asked for {expected} embeddings, got {array.shape[0]}")
    if array.shape[1] == 0:
        raise MalformedResponseError("the endpoint returned empty vectors")
    return [[float(x) for x in row] for row in array]


class _HFModel(AsyncResource):
    """Client ownership, routing and error policy shared by the chat model and the embedder."""

    _endpoint = ""

    def __init__(
        self,
        model: str,
        *,
        token: str | None,
        base_url: str | None,
        timeout_s: float,
        provider: str,
        inference_provider: str | None,
    ) -> None:
        if not model:
            raise ValueError("model must be a Hub model id or a URL")
        if base_url is not None and is_url(model):
            raise ValueError("model is already a URL; pass base_url only together with a Hub model id")
        if base_url is not None and not is_url(base_url):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a finite number > 0, got {timeout_s!r}")
        url = base_url if base_url is not None else (model if is_url(model) else None)
        # A URL may carry credentials (user info, a query token): names, keys and reprs show it without them.
        self.model = display_url(model) if is_url(model) else model
        self.name = self.model
        self.provider = provider
        self.url = display_url(url) if url is not None else None
        """Where the calls go (without credentials); None when the Hugging Face router picks."""
        self.key = LimitKey(provider, self._endpoint, self.model, self.url or _ROUTER)
        self._hub_model = None if is_url(model) else model
        self._token = token if token is not None else (os.environ.get("HF_TOKEN") or None)
        self._token_hint = token_source(self._token, explicit=token is not None)
        self.timeout_s = timeout_s
        # With a URL the client ignores `provider` (it always speaks the hf-inference/TGI dialect to the URL).
        self._client = AsyncInferenceClient(
            base_url=url,
            provider=cast(Any, inference_provider) if self.url is None else None,
            token=self._token,
            timeout=timeout_s,
        )

    def classify(self, error: BaseException) -> ErrorDecision:
        return classify_hf_error(error, secret=self._token, token_hint=self._token_hint)

    async def aclose(self) -> None:
        """Close the HTTP connections of the client (idempotent)."""
        await self._client.close()  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        where = f", url={self.url!r}" if self.url is not None else ""
        return f"{type(self).__name__}(model={self.model!r}, provider={self.provider!r}{where})"


class HFChat(_HFModel):
    """A chat model (`judgeflow.protocol.models.ChatModel`) served by Hugging Face inference or a TGI server.

    ``model`` is a Hub model id (e.g. ``"meta-llama/Llama-2-7b-chat-hf"``) or the URL of an Inference Endpoint or
    TGI server; ``base_url`` sends a Hub model id's calls to a server of your own (see the module doc for where
    each call goes). ``inference_provider`` picks an Inference Provider for a Hub model id without a URL
    (``"hf-inference"``, ``"together"``, ...; default: the router's choice). ``provider`` is judgeflow's name for
    the limit key. Close with ``aclose()`` or ``async with``.
    """

    _endpoint = "chat.completions"

    def __init__(
        self,
        model: str,
        *,
        token: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        provider: str = "hf",
        inference_provider: str | None = None,
    ) -> None:
        super().__init__(
            model,
            token=token,
            base_url=base_url,
            timeout_s=timeout_s,
            provider=provider,
            inference_provider=inference_provider,
        )

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One attempt at a (non-streaming) completion; an empty or null reply is returned as ``""``.

        Constrained output and log probabilities are not asked of Hugging Face servers here: a request for them
        raises `UnsupportedFeature` at once, and the judge falls back to the recipe's reply (and says so).
        """
        if request.output is not None:
            raise UnsupportedFeature(request.output.kind, "judgeflow asks Hugging Face servers for text only")
        if request.top_logprobs is not None:
            raise UnsupportedFeature("logprobs", "judgeflow asks Hugging Face servers for text only")
        messages: list[dict[Any, Any] | ChatCompletionInputMessage] = [
            {"role": message.role, "content": message.content} for message in request.messages
        ]
        try:
            output = await self._client.chat_completion(
                messages,
                model=self._hub_model,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
            )
        except Exception as err:
            _redact(err, self._token)
            raise
        return _chat_result(output, self.model)


class HFEmbedder(_HFModel):
    """An embeddings model (`judgeflow.protocol.models.Embedder`) via feature extraction (TEI, Endpoints, router).

    Texts are sent ``batch_size`` at a time, one request after another. Sentence-embedding models answer one
    vector per text; models without pooling answer per-token vectors, which are mean-pooled
    (`pool_embeddings`). Token-level answers for texts of different lengths are ragged and cannot be stacked
    into one array, so after the first such batch this embedder sends one text per request.
    """

    _endpoint = "feature-extraction"

    def __init__(
        self,
        model: str,
        *,
        token: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        provider: str = "hf",
        inference_provider: str | None = None,
        batch_size: int = _DEFAULT_BATCH,
        normalize: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        super().__init__(
            model,
            token=token,
            base_url=base_url,
            timeout_s=timeout_s,
            provider=provider,
            inference_provider=inference_provider,
        )
        self.batch_size = batch_size
        self.normalize = normalize
        self._one_at_a_time = False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for ``texts``, in order."""
        vectors: list[list[float]] = []
        start = 0
        while start < len(texts):
            size = 1 if self._one_at_a_time else self.batch_size
            batch = list(texts[start : start + size])
            try:
                vectors.extend(await self._embed_batch(batch))
            except _RaggedError:
                self._one_at_a_time = True
                continue
            start += len(batch)
        return vectors

    async def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        try:
            # With a URL the client must not get `model=`: a model argument takes precedence over the URL.
            array = await self._client.feature_extraction(
                batch, model=None if self.url is not None else self._hub_model, normalize=self.normalize
            )
        except HfHubHTTPError as err:
            _redact(err, self._token)
            raise
        except ValueError as err:
            # numpy cannot stack per-token vectors of texts with different lengths.
            if len(batch) > 1 and "inhomogeneous" in str(err):
                raise _RaggedError from err
            _redact(err, self._token)
            raise
        except Exception as err:
            _redact(err, self._token)
            raise
        return pool_embeddings(np.asarray(array), len(batch))


class _RaggedError(Exception):
    """A batch came back as token vectors of different lengths (internal: the embedder then goes one by one)."""
