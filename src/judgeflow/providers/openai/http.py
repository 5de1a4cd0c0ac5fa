"""A lean HTTP client for ``POST /chat/completions``: the hot path of `judgeflow.providers.openai.provider.OpenAIChat`.

Why it exists: the ``openai`` SDK spends about 2 ms of CPU per chat request (request transformation over its
TypedDicts, httpx2/httpcore2 plumbing, pydantic models for the reply), which caps one process near 450 requests
per second on a small machine; this client posts the JSON body with aiohttp and reads the reply with ``json``,
at about a tenth of the CPU. Only chat completions go through it: files, fine-tuning and embeddings stay on the
SDK, where speed does not matter.

Errors are the SDK's own, so `judgeflow.providers.openai.provider.classify_openai_error` and every caller see exactly
what the SDK would have raised (the SDK is imported when the first one is raised, not before: a run whose calls
all succeed never pays its half second of import time):

* a 4xx/5xx answer is the ``openai.APIStatusError`` subclass the SDK picks for that status (``RateLimitError``
  for 429, ``InternalServerError`` for 5xx, ...), with the response headers (``Retry-After``...) and the parsed
  error body, so ``error.code`` is the API's code (``insufficient_quota``...);
* a timeout is ``openai.APITimeoutError``; a refused, reset or broken connection ``openai.APIConnectionError``;
* a 2xx body that is not JSON is ``json.JSONDecodeError`` (JSON content type) or `MalformedResponseError`
  (anything else), and a JSON body of the wrong shape is `MalformedResponseError`.

The client makes exactly one HTTP attempt per call: retries, limits and costs belong to the core
(`judgeflow.calls.context`). The API key is sent in the ``Authorization`` header and never appears in a repr or in
an error message this module writes.

Closing: the aiohttp session is opened on the first call, in the running event loop, and closed by `aclose`
(idempotent). A client dropped without `aclose` still has its session closed: a finalizer closes it on its event
loop when the client is garbage-collected, and the loop's shutdown closes it at the latest (the session lives in
an async generator, and ``asyncio.run`` and ``anyio.run`` close every live one). That matters for chat models
built on a shared SDK client, whose owner closes the SDK client but may never close the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from judgeflow.protocol.calls import ChatRequest, ChatResult, TokenLogprob
from judgeflow.protocol.messages import Usage

if TYPE_CHECKING:
    import httpx2
    import openai

__all__ = [
    "CONNECT_TIMEOUT_S",
    "LeanChatClient",
    "MalformedResponseError",
    "chat_body",
    "parse_chat_completion",
    "server_text",
    "status_error",
]

CONNECT_TIMEOUT_S = 10.0
"""The longest a connection may take to open (a slow reply may take the whole ``timeout_s``): an address where
nothing answers, not even a refusal, is noticed in seconds, within the run's grace for unreachable servers."""
_MAX_CONNECTIONS = 1000  # the SDK's own default pool size; the core's gate is what limits calls in flight


class MalformedResponseError(Exception):
    """The server answered 2xx with a body that is not what the endpoint returns (bad JSON, wrong shape)."""


def chat_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a chat completion request, as the SDK would send it (``max_tokens`` only when set)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": message.role, "content": message.content} for message in request.messages],
        "temperature": request.temperature,
    }
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    output = request.output
    if output is not None and output.kind == "json_schema":
        spec = {"name": output.name, "strict": True, "schema": output.schema}
        body["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif output is not None:
        # "schema" is llama.cpp's extension of JSON mode (enforced as a grammar); other servers ignore it.
        body["response_format"] = {"type": "json_object", "schema": output.schema}
    if request.top_logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    return body


def _logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    """The reply's token log probabilities (OpenAI's ``choices[0].logprobs.content``), or None when absent or
    malformed: a server that sends none (or garbles them) is reported by the judge, not a failed call."""
    raw = choice.get("logprobs")
    content = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(content, list) or not content:
        return None
    tokens: list[TokenLogprob] = []
    try:
        for entry in content:
            top = tuple((str(alt["token"]), float(alt["logprob"])) for alt in entry.get("top_logprobs") or ())
            tokens.append(TokenLogprob(str(entry["token"]), float(entry["logprob"]), top))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return tuple(tokens)


def parse_chat_completion(data: object, requested_model: str) -> ChatResult:
    """A `ChatResult` from a decoded chat completion; `MalformedResponseError` when the shape is wrong.

    An empty or null ``content`` is ``""`` (the judge parser decides what that means); a missing ``model`` is
    the requested one; ``usage`` is None when the server reports none.
    """
    try:
        choice = data["choices"][0]  # type: ignore[index]
        message = choice["message"]
        content = message.get("content")
        finish_reason = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise MalformedResponseError(f"the chat completion has no usable choice ({type(err).__name__}: {err})") from err
    model = data.get("model")  # type: ignore[attr-defined]
    raw_usage = data.get("usage")  # type: ignore[attr-defined]
    usage = None
    if isinstance(raw_usage, dict):
        try:
            usage = Usage(
                input_tokens=int(raw_usage.get("prompt_tokens") or 0),
                output_tokens=int(raw_usage.get("completion_tokens") or 0),
            )
        except (TypeError, ValueError) as err:
            raise MalformedResponseError(f"the chat completion's usage is malformed ({err})") from err
    return ChatResult(
        text=content if isinstance(content, str) else "",
        model=model if isinstance(model, str) and model else requested_model,
        usage=usage,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        logprobs=_logprobs(choice) if isinstance(choice, dict) else None,
    )


def _status_errors() -> dict[int, type[openai.APIStatusError]]:
    import openai  # see the module docstring: imported on the first error

    return {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        403: openai.PermissionDeniedError,
        404: openai.NotFoundError,
        409: openai.ConflictError,
        422: openai.UnprocessableEntityError,
        429: openai.RateLimitError,
    }


def server_text(body: object, *, limit: int = 300) -> str:
    """The server's own words in an error body, whichever server sent it.

    OpenAI (and Ollama, newer vLLM) send ``{"error": {"message": ...}}``; vLLM's auth ``{"error": "..."}``;
    older vLLM the message at the top level; FastAPI servers (llama.cpp's, vLLM's unknown routes)
    ``{"detail": ...}``; anything else is shown as text, cut at ``limit`` characters.
    """
    if isinstance(body, dict):
        error = body.get("error")
        for candidate in (
            error.get("message") if isinstance(error, dict) else error,
            body.get("message"),
            body.get("detail"),
        ):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()
        return ""
    text = " ".join(str(body).split()) if body else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def status_error(
    status: int, headers: Mapping[str, str] | list[tuple[str, str]], content: bytes, request: httpx2.Request
) -> openai.APIStatusError:
    """The exception the SDK raises for an HTTP error answer (same class, message, body and headers)."""
    import httpx2
    import openai

    response = httpx2.Response(status, headers=headers, content=content, request=request)
    text = content.decode("utf-8", errors="replace").strip()
    message = f"Error code: {status}"
    body: object = text
    with contextlib.suppress(ValueError):
        body = json.loads(text)
    detail = server_text(body)
    if detail:
        message += f" - {detail}"
    data = body.get("error", body) if isinstance(body, dict) else body
    cls = _status_errors().get(status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return cls(message, response=response, body=data)


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY``...), or None.

    Read once per session: aiohttp's ``trust_env`` looks the environment and ``~/.netrc`` up again on every
    request, in a worker thread, which costs more CPU than the rest of the request.
    """
    parts = urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class LeanChatClient:
    """``POST {base_url}/chat/completions`` over one aiohttp session (see the module docstring).

    ``headers`` are sent with every request besides ``Authorization``, ``Content-Type`` and ``Accept`` (for
    example ``OpenAI-Organization``). ``timeout_s`` bounds each wait for data, like the SDK's ``timeout``, and
    connecting too, up to `CONNECT_TIMEOUT_S`. The proxy is taken from the environment (``HTTPS_PROXY``,
    ``NO_PROXY``...), as the SDK does.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.timeout_s = timeout_s
        self._headers = {
            **(headers or {}),
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._session: aiohttp.ClientSession | None = None
        self._holder: AsyncGenerator[aiohttp.ClientSession, None] | None = None
        self._finalizer: weakref.finalize[..., LeanChatClient] | None = None
        self._closed = False
        self._request: httpx2.Request | None = None

    async def complete(self, model: str, request: ChatRequest) -> ChatResult:
        """One attempt at a chat completion of ``request`` with ``model``; raises what the SDK would raise."""
        session = self._session
        if session is None or session.closed:
            session = await self._open()
        body = json.dumps(chat_body(model, request), ensure_ascii=False).encode()
        try:
            async with session.post(self.url, data=body) as response:
                status = response.status
                content = await response.read()
                content_type = response.content_type
                if status >= 400:
                    raise status_error(status, list(response.headers.items()), content, self._sdk_request())
        except TimeoutError:  # aiohttp's timeouts are asyncio.TimeoutError (TimeoutError on 3.11+)
            import openai

            raise openai.APITimeoutError(request=self._sdk_request()) from None
        except aiohttp.ClientError as err:
            import openai

            raise openai.APIConnectionError(
                message=f"Connection error: {type(err).__name__}: {err}", request=self._sdk_request()
            ) from None
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise MalformedResponseError(f"expected a JSON chat completion, got {content_type or 'no content type'}")
        return parse_chat_completion(json.loads(content), model)

    def _sdk_request(self) -> httpx2.Request:
        # Only errors need it (the SDK's exceptions carry the request); one is enough for every error.
        if self._request is None:
            import httpx2

            self._request = httpx2.Request("POST", self.url)
        return self._request

    async def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this chat client is closed")
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._holder is not None:  # a session of an earlier event loop, closed at that loop's shutdown
            await self._holder.aclose()
        connect = min(self.timeout_s, CONNECT_TIMEOUT_S)
        timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_read=self.timeout_s)
        holder = _hold_session(self._headers, timeout, _env_proxy(self.url))
        self._session = await holder.__anext__()
        self._holder = holder
        self._finalizer = weakref.finalize(self, _close_soon, asyncio.get_running_loop(), holder)
        return self._session

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent); later calls raise RuntimeError."""
        self._closed = True
        holder, self._holder, self._session = self._holder, None, None
        if self._finalizer is not None:
            self._finalizer.detach()
        if holder is not None:
            await holder.aclose()

    def __repr__(self) -> str:
        return f"LeanChatClient(url={self.url!r})"


async def _hold_session(
    headers: Mapping[str, str], timeouts: aiohttp.ClientTimeout, proxy: str | None
) -> AsyncGenerator[aiohttp.ClientSession, None]:
    """An open session until the generator is closed: the event loop closes it at shutdown at the latest.

    A plain function, not a method: a generator that referred to its client would keep the client alive.
    """
    connector = aiohttp.TCPConnector(limit=_MAX_CONNECTIONS, limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeouts, proxy=proxy, raise_for_status=False
    ) as session:
        yield session


def _close_soon(loop: asyncio.AbstractEventLoop, holder: AsyncGenerator[aiohttp.ClientSession, None]) -> None:
    """The finalizer of a client dropped unclosed: close its session on its event loop.

    When the loop is already closed, its shutdown has closed the session (``loop.shutdown_asyncgens()``).
    """
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: same as above
            loop.call_soon_threadsafe(lambda: loop.create_task(holder.aclose()))
