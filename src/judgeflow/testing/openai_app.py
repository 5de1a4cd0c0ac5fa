"""The fake OpenAI server itself: the route table, the per-request frame, and models.

The per-request frame is where the cross-cutting behaviour lives, in one order for every endpoint: parse the
JSON body, log the request, check the API key, then the model (chat and embeddings: ``forbidden_models``,
``known_models_only``), sleep ``latency_s``, then (on ``fault_endpoints``) let `openai_faults` answer instead,
and finally stamp an ``x-request-id``. `OpenAIServer.go_down` and `come_back` play an outage: the port is
closed (connections refused, those open dropped) and opened again. The endpoints themselves live elsewhere:
chat and embeddings in `openai_chat` (the content from `openai_replies`), files in `openai_files`, fine-tuning
jobs in `openai_finetuning`, batches in `openai_batches`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

from aiohttp import web

from ._http import Listener, json_response, loopback_url, running_app
from .openai_batches import BatchAPI
from .openai_chat import chat_completion, embeddings
from .openai_config import ORGANIZATION, FakeOpenAI, RequestRecord, ServerStats, openai_error
from .openai_faults import FaultInjector
from .openai_files import FileStore
from .openai_finetuning import FineTuningAPI

__all__ = ["OpenAIServer", "serve_openai"]

_Handler: TypeAlias = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]
_MODEL_ENDPOINTS = frozenset({"chat.completions", "embeddings"})


class OpenAIServer:
    """The state behind one fake server: config, stats, files and jobs. Built by `serve_openai`."""

    def __init__(self, config: FakeOpenAI) -> None:
        self.config = config
        self.stats = ServerStats(log=deque(maxlen=config.log_limit))
        self.host = ""
        self.port = 0
        self._listener: Listener | None = None
        self._served = 0
        self._chats = 0
        self._closing = asyncio.Event()
        self._faults = FaultInjector(config.seed, self._closing)
        self._files = FileStore(lambda: self.config)
        self._fine_tuning = FineTuningAPI(lambda: self.config, self._files)
        self._batches = BatchAPI(
            lambda: self.config,
            self._files,
            lambda: self.stats,
            models=self._model_ids,
            completion_id=self._next_completion_id,
        )

    @property
    def up(self) -> bool:
        """Whether the server listens (False between `go_down` and `come_back`)."""
        return self._listener is not None and self._listener.open

    async def go_down(self) -> None:
        """Stop answering, as a server that went away: new connections are refused, open ones are dropped
        (requests in flight get no answer). The stats and the config are kept for `come_back`."""
        if self._listener is not None:
            await self._listener.close()

    async def come_back(self) -> None:
        """Listen again on the same port, after `go_down`."""
        if self._listener is not None:
            await self._listener.reopen()

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, what ``openai.AsyncOpenAI(base_url=...)`` takes."""
        return loopback_url(self.host, self.port) + "/v1"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        tuning, files, batches = self._fine_tuning, self._files, self._batches
        routes: list[tuple[str, str, str, _Handler]] = [
            ("POST", "/v1/chat/completions", "chat.completions", self._chat),
            ("POST", "/v1/embeddings", "embeddings", self._embeddings),
            ("POST", "/v1/files", "files.create", files.create),
            ("GET", "/v1/files", "files.list", files.list_files),
            ("GET", "/v1/files/{file_id}", "files.retrieve", files.retrieve),
            ("GET", "/v1/files/{file_id}/content", "files.content", files.content),
            ("DELETE", "/v1/files/{file_id}", "files.delete", files.delete),
            ("POST", "/v1/batches", "batches.create", batches.create),
            ("GET", "/v1/batches", "batches.list", batches.list_batches),
            ("GET", "/v1/batches/{batch_id}", "batches.retrieve", batches.retrieve),
            ("POST", "/v1/batches/{batch_id}/cancel", "batches.cancel", batches.cancel),
            ("GET", "/v1/models", "models.list", self._models_list),
            ("GET", "/v1/models/{model}", "models.retrieve", self._models_retrieve),
            ("POST", "/v1/fine_tuning/jobs", "fine_tuning.jobs.create", tuning.jobs_create),
            ("GET", "/v1/fine_tuning/jobs", "fine_tuning.jobs.list", tuning.jobs_list),
            ("GET", "/v1/fine_tuning/jobs/{job_id}", "fine_tuning.jobs.retrieve", tuning.jobs_retrieve),
            ("GET", "/v1/fine_tuning/jobs/{job_id}/events", "fine_tuning.jobs.events", tuning.jobs_events),
            ("POST", "/v1/fine_tuning/jobs/{job_id}/cancel", "fine_tuning.jobs.cancel", tuning.jobs_cancel),
        ]
        for method, path, name, handler in routes:
            app.router.add_route(method, path, self._endpoint(name, handler))
        app.router.add_route("*", "/{tail:.*}", self._endpoint("unknown", self._not_found))
        return app

    # -- the per-request frame ---------------------------------------------------------------------------------

    def _endpoint(self, name: str, handler: _Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.requests[name] += 1
            stats.in_flight += 1
            if stats.in_flight > stats.max_in_flight:
                stats.max_in_flight = stats.in_flight
            try:
                response = await self._serve(name, handler, request)
            finally:
                stats.in_flight -= 1
            self._served += 1
            stats.responses[response.status] += 1
            response.headers["x-request-id"] = f"req_{self._served:010d}"
            return response

        return handle

    async def _serve(self, name: str, handler: _Handler, request: web.Request) -> web.StreamResponse:
        config = self.config
        body: Any = None
        if request.method == "POST" and request.content_type == "application/json" and request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self.stats.log.append(RequestRecord(config.clock(), request.path, None))
                return openai_error(400, "We could not parse the JSON body of your request.")
        model = body.get("model") if isinstance(body, dict) else None
        self.stats.log.append(RequestRecord(config.clock(), request.path, model if isinstance(model, str) else None))
        if config.api_key is not None and request.headers.get("Authorization") != f"Bearer {config.api_key}":
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            masked = f"{given[:3]}*****{given[-4:]}" if len(given) > 8 else "*****"
            return openai_error(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")
        if name in _MODEL_ENDPOINTS and isinstance(model, str):
            refusal = self._refuse_model(model)
            if refusal is not None:
                return refusal
        if config.latency_s > 0:
            await asyncio.sleep(config.latency_s)
        limit_headers: dict[str, str] | None = None
        if name in config.fault_endpoints:
            fault, limit_headers = await self._faults.inject(
                model if isinstance(model, str) else "", config, self.stats
            )
            if fault is not None:
                return fault
        response = await handler(request, body)
        if limit_headers:
            response.headers.update(limit_headers)
        return response

    # -- endpoints ---------------------------------------------------------------------------------------------

    async def _not_found(self, request: web.Request, body: Any) -> web.StreamResponse:
        return openai_error(404, f"Invalid URL ({request.method} {request.path})")

    async def _chat(self, request: web.Request, body: Any) -> web.StreamResponse:
        status, payload = chat_completion(body, self.config, self._next_completion_id)
        return json_response(payload, status)

    def _next_completion_id(self) -> str:
        self._chats += 1
        return f"chatcmpl-jf{self._chats:010d}"

    async def _embeddings(self, request: web.Request, body: Any) -> web.StreamResponse:
        status, payload = embeddings(body, self.config)
        return json_response(payload, status)

    def _refuse_model(self, model: str) -> web.Response | None:
        """OpenAI's answers for a model this key may not use (403) and for one that does not exist (404)."""
        config = self.config
        if model in config.forbidden_models:
            message = f"Project `proj_{ORGANIZATION}` does not have access to model `{model}`"
            return openai_error(403, message, code="model_not_found")
        if config.known_models_only and model not in self._model_ids():
            message = f"The model `{model}` does not exist or you do not have access to it."
            return openai_error(404, message, code="model_not_found")
        return None

    def _model_ids(self) -> list[str]:
        return [*self.config.models, *self._fine_tuning.tuned_models(self.config.clock())]

    @staticmethod
    def _model_json(model_id: str) -> dict[str, object]:
        owner = ORGANIZATION if model_id.startswith("ft:") else "system"
        return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": owner}

    async def _models_list(self, request: web.Request, body: Any) -> web.StreamResponse:
        return json_response({"object": "list", "data": [self._model_json(m) for m in self._model_ids()]})

    async def _models_retrieve(self, request: web.Request, body: Any) -> web.StreamResponse:
        model_id = request.match_info["model"]
        if model_id not in self._model_ids():
            return openai_error(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        return json_response(self._model_json(model_id))


@contextlib.asynccontextmanager
async def serve_openai(
    config: FakeOpenAI | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[OpenAIServer]:
    """Serve a fake OpenAI API on ``host:port`` (0 picks a free port) in the running asyncio loop.

    On exit the listening socket closes, requests held by timeout faults are released, and the runner is
    cleaned up in a shielded scope bounded to a few seconds.
    """
    server = OpenAIServer(config if config is not None else FakeOpenAI())
    app = server.make_app()
    async with running_app(app, host=host, port=port, shutdown_timeout=2.0, closing=server._closing) as listener:
        server.host, server.port, server._listener = host, listener.port, listener
        yield server
