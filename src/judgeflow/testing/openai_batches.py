"""The fake OpenAI server's Batch API: ``/v1/batches`` create, retrieve, list and cancel, over `openai_batch_state`.

Each request of a batch is answered by the same function as the online endpoint (`openai_chat`), so a batch
and an online run of the same requests get the same replies; a request the online endpoint would refuse lands
in the batch's error file with the same error. Replies are computed when a client looks (a retrieve or a
list), for the requests the clock says are done by then, a chunk at a time so a big batch never blocks the
server; when the batch ends its output and error files appear, their lines in a shuffled order, as on the real
API, where order is not guaranteed. ``batch_fault_rate`` answers a share of the requests that would succeed with
a 500 instead (drawn per batch and ``custom_id``, so a resubmitted request may succeed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import Callable, Collection
from typing import Any

from aiohttp import web

from ._http import json_response
from .openai_batch_input import BatchLine, BatchProblem, read_batch_input
from .openai_batch_state import CANCELLABLE, TERMINAL, BatchJob, Timing
from .openai_chat import Outcome, chat_completion, embeddings
from .openai_config import FakeOpenAI, ServerStats, cursor_page, error_body, openai_error
from .openai_files import FileStore
from .openai_replies import unit_hash

__all__ = ["BATCH_ENDPOINTS", "BatchAPI"]

BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
_CHUNK = 500
"""Replies computed between two yields to the event loop."""
_UNFINISHED = {
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
    "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
}


class BatchAPI:
    """Batches and the route handlers ``(request, body) -> response`` over them.

    ``models()`` names the models a batch may use; ``completion_id()`` numbers chat completions (shared with
    the online endpoint, so ids never repeat across the two).
    """

    def __init__(
        self,
        config: Callable[[], FakeOpenAI],
        files: FileStore,
        stats: Callable[[], ServerStats],
        *,
        models: Callable[[], Collection[str]],
        completion_id: Callable[[], str],
    ) -> None:
        self._config = config
        self._files = files
        self._stats = stats
        self._models = models
        self._completion_id = completion_id
        self._batches: dict[str, BatchJob] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # -- handlers ----------------------------------------------------------------------------------------------

    async def create(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict):
            return openai_error(400, "The request body must be a JSON object.")
        endpoint = body.get("endpoint")
        if endpoint not in BATCH_ENDPOINTS:
            supported = ", ".join(BATCH_ENDPOINTS)
            message = f"Invalid endpoint: {endpoint!r}. This server batches {supported}."
            return openai_error(400, message, param="endpoint", code="invalid_value")
        if body.get("completion_window") != "24h":
            message = f"Invalid completion_window: {body.get('completion_window')!r}. Supported values are: '24h'."
            return openai_error(400, message, param="completion_window", code="invalid_value")
        metadata = body.get("metadata")
        if metadata is not None and not _valid_metadata(metadata):
            message = "'metadata' must be at most 16 string keys (64 characters) with string values (512)."
            return openai_error(400, message, param="metadata")
        file_id = body.get("input_file_id")
        source = self._files.get(file_id) if isinstance(file_id, str) else None
        if source is None:
            return openai_error(400, f"Invalid 'input_file_id': {file_id!r}: no such file.", param="input_file_id")
        if source.purpose != "batch":
            message = f"The input file {source.id} must be uploaded with purpose 'batch', not {source.purpose!r}."
            return openai_error(400, message, param="input_file_id")
        config = self._config()
        now = config.clock()
        # A 50,000-line file takes about a second to check: off the event loop, so other requests go on.
        lines, problems = await asyncio.to_thread(
            functools.partial(
                read_batch_input,
                source.data,
                endpoint=str(endpoint),
                known_models=set(self._models()),
                max_requests=config.batch_max_requests,
                max_bytes=config.batch_max_bytes,
            )
        )
        if not problems and config.batch_token_limit is not None:
            problems = self._check_token_limit(lines, config.batch_token_limit, now)
        job = BatchJob(
            id=f"batch_{self._files.new_id('batch')}",
            endpoint=str(endpoint),
            input_file_id=source.id,
            created=now,
            metadata=metadata,
            lines=lines,
            problems=problems,
            timing=Timing.of(config, len(lines)),
            seed=config.seed,
        )
        self._batches[job.id] = job
        self._locks[job.id] = asyncio.Lock()
        return json_response(job.as_json(now))

    async def retrieve(self, request: web.Request, body: Any) -> web.StreamResponse:
        job = self._batches.get(request.match_info["batch_id"])
        if job is None:
            return self._not_found(request)
        return json_response(await self._observe(job))

    async def list_batches(self, request: web.Request, body: Any) -> web.StreamResponse:
        batches = [await self._observe(job) for job in reversed(self._batches.values())]
        return json_response(cursor_page(batches, request))

    async def cancel(self, request: web.Request, body: Any) -> web.StreamResponse:
        job = self._batches.get(request.match_info["batch_id"])
        if job is None:
            return self._not_found(request)
        now = self._config().clock()
        status = job.status(now)
        if status in CANCELLABLE:
            job.cancel_at = now
        elif status not in ("cancelling", "cancelled"):
            return openai_error(409, f"Cannot cancel a batch with status '{status}'.", param="batch_id")
        return json_response(await self._observe(job))

    @staticmethod
    def _not_found(request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        return openai_error(404, f"No batch found with id '{batch_id}'.", param="batch_id", code="not_found")

    # -- the work ----------------------------------------------------------------------------------------------

    def _check_token_limit(self, lines: list[BatchLine], limit: int, now: float) -> list[BatchProblem]:
        model = str(lines[0].body["model"])
        queued = sum(job.tokens for job in self._batches.values() if job.model == model and not _over(job, now))
        wanted = sum(line.tokens for line in lines)
        if queued + wanted <= limit:
            return []
        message = (
            f"Enqueued token limit reached for {model}: limit {limit:,} enqueued tokens, {queued:,} already "
            f"enqueued, {wanted:,} requested. Please try again once some in_progress batches have been completed."
        )
        return [BatchProblem("token_limit_exceeded", message)]

    async def _observe(self, job: BatchJob) -> dict[str, object]:
        """The batch as of now, after computing the replies of the requests done by now."""
        async with self._locks[job.id]:
            now = self._config().clock()
            target = job.done(now)
            while len(job.results) < target:
                start = len(job.results)
                for position in range(start, min(target, start + _CHUNK)):
                    job.add_result(self._answer(job, job.lines[job.order[position]]))
                self._stats().batch_requests += len(job.results) - start
                if len(job.results) < target:
                    await asyncio.sleep(0)
            status = job.status(now)
            if status in TERMINAL and not job.files_made:
                output, errors = await asyncio.to_thread(_file_lines, job, status)
                self._add_files(job, output, errors)
            return job.as_json(now)

    def _answer(self, job: BatchJob, line: BatchLine) -> Outcome:
        config = self._config()
        if job.endpoint == "/v1/embeddings":
            outcome = embeddings(line.body, config)
        else:
            outcome = chat_completion(line.body, config, self._completion_id)
        rate = config.batch_fault_rate
        if outcome[0] == 200 and rate and unit_hash("batch-fault", job.id, line.custom_id) < rate:
            message = "The server had an error while processing your request. Sorry about that!"
            return 500, error_body(message, type_="server_error")
        return outcome

    def _add_files(self, job: BatchJob, output: list[bytes], errors: list[bytes]) -> None:
        job.files_made = True
        if output:
            made = self._files.add(b"".join(output), filename=f"{job.id}_output.jsonl", purpose="batch_output")
            job.output_file_id = made.id
        if errors:
            made = self._files.add(b"".join(errors), filename=f"{job.id}_error.jsonl", purpose="batch_output")
            job.error_file_id = made.id


def _file_lines(job: BatchJob, status: str) -> tuple[list[bytes], list[bytes]]:
    """The lines of the output and error files of a batch that ended with ``status``, each list shuffled."""
    output: list[bytes] = []
    errors: list[bytes] = []
    for position, (code, body) in enumerate(job.results):
        line = job.lines[job.order[position]]
        (output if code == 200 else errors).append(_result_line(job.id, line.custom_id, code, body))
    if status in _UNFINISHED:
        reason = _UNFINISHED[status]
        for position in range(len(job.results), len(job.lines)):
            errors.append(_unfinished_line(job.id, job.lines[job.order[position]].custom_id, *reason))
    shuffle = random.Random(f"{job.seed}:{job.id}:files").shuffle
    shuffle(output)
    shuffle(errors)
    return output, errors


def _over(job: BatchJob, now: float) -> bool:
    return job.status(now) in TERMINAL


def _valid_metadata(metadata: object) -> bool:
    if not isinstance(metadata, dict) or len(metadata) > 16:
        return False
    return all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in metadata.items()
    )


def _line_id(batch_id: str, custom_id: str) -> str:
    return f"{int(unit_hash('line', batch_id, custom_id) * 2**64):016x}"


def _result_line(batch_id: str, custom_id: str, status: int, body: dict[str, object]) -> bytes:
    line_id = _line_id(batch_id, custom_id)
    record = {
        "id": f"batch_req_{line_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": f"req_{line_id}", "body": body},
        "error": None,
    }
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _unfinished_line(batch_id: str, custom_id: str, code: str, message: str) -> bytes:
    record = {
        "id": f"batch_req_{_line_id(batch_id, custom_id)}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"
