"""OpenAI's Batch API (and a compatible server's) for one chat model: `judgeflow.protocol.batches.BatchClient`.

A request line carries exactly the body an online call posts (`judgeflow.providers.openai.http.chat_body`), so
whatever a request says online it says in a batch; a result line is read by the same parser as an online reply
(`parse_chat_completion`). Each method makes one attempt with the SDK's retries off; ``classify`` (the online
classifier) tells the caller what a failure means. Request-level errors in a batch's error file are classified
by their HTTP status as online: 429 and 5xx are worth sending again, any other 4xx is not.

A batch is created with ``metadata`` naming judgeflow's part, and its input file is uploaded under the part's
name, so a run that crashed between an upload (or a create) and its record finds it again (`find_upload`,
`find`) instead of paying twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Final

from judgeflow.protocol.batches import BatchLine, BatchProblem, BatchState
from judgeflow.protocol.calls import ChatRequest, ErrorDecision, LimitKey
from judgeflow.providers.openai.http import MalformedResponseError, chat_body, parse_chat_completion
from judgeflow.providers.openai.provider import classify_openai_error

if TYPE_CHECKING:
    import openai
    from openai.types import Batch

__all__ = ["CHAT_ENDPOINT", "OpenAIBatch"]

CHAT_ENDPOINT: Final = "/v1/chat/completions"
_UNFINISHED_CODES = frozenset({"batch_expired", "batch_cancelled"})
_PAGE = 100


class OpenAIBatch:
    """The Batch API for ``model`` over an SDK client (which belongs to the caller and is not closed here)."""

    def __init__(self, model: str, client: openai.AsyncOpenAI, *, provider: str = "openai") -> None:
        self.name = model
        self.model = model
        self.key = LimitKey(provider, "batches", model)
        self._client = client.with_options(max_retries=0)

    def request_line(self, custom_id: str, request: ChatRequest) -> bytes:
        line = {"custom_id": custom_id, "method": "POST", "url": CHAT_ENDPOINT, "body": chat_body(self.model, request)}
        return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    async def upload(self, filename: str, data: bytes | IO[bytes]) -> str:
        uploaded = await self._client.files.create(file=(filename, data), purpose="batch")
        return uploaded.id

    async def find_upload(self, filename: str) -> str | None:
        async for found in self._client.files.list(purpose="batch", order="desc", limit=_PAGE):
            if found.filename == filename:
                return found.id
        return None

    async def create(self, file_id: str, *, metadata: Mapping[str, str]) -> BatchState:
        batch = await self._client.batches.create(
            input_file_id=file_id, endpoint=CHAT_ENDPOINT, completion_window="24h", metadata=dict(metadata)
        )
        return _state(batch)

    async def find(self, metadata: Mapping[str, str]) -> BatchState | None:
        wanted = dict(metadata)
        async for batch in self._client.batches.list(limit=_PAGE):
            if batch.metadata is not None and all(batch.metadata.get(k) == v for k, v in wanted.items()):
                return _state(batch)
        return None

    async def retrieve(self, batch_id: str) -> BatchState:
        return _state(await self._client.batches.retrieve(batch_id))

    async def cancel(self, batch_id: str) -> BatchState:
        return _state(await self._client.batches.cancel(batch_id))

    async def results(self, state: BatchState) -> list[BatchLine]:
        lines: list[BatchLine] = []
        for file_id in (state.output_file_id, state.error_file_id):
            if file_id is None:
                continue
            content = await self._client.files.content(file_id)
            for number, raw in enumerate(content.content.splitlines(), start=1):
                if raw.strip():
                    lines.append(self._read_line(raw, file_id, number))
        return lines

    def classify(self, error: BaseException) -> ErrorDecision:
        return classify_openai_error(error, secret=self._client.api_key)

    def _read_line(self, raw: bytes, file_id: str, number: int) -> BatchLine:
        try:
            data = json.loads(raw)
            custom_id = data["custom_id"]
        except (ValueError, KeyError, TypeError) as problem:
            raise MalformedResponseError(
                f"batch file {file_id}, line {number}: not a result line ({problem})"
            ) from None
        if not isinstance(custom_id, str):
            raise MalformedResponseError(f"batch file {file_id}, line {number}: custom_id is not a string")
        response = data.get("response")
        if isinstance(response, dict):
            return _response_line(custom_id, response, self.model)
        failure = data.get("error") if isinstance(data.get("error"), dict) else {}
        code = str(failure.get("code") or "")
        message = str(failure.get("message") or "the batch returned no response for this request")
        detail = f"{code}: {message}" if code else message
        if code in _UNFINISHED_CODES:
            return BatchLine(custom_id, error=ErrorDecision("transient", detail), unfinished=True)
        return BatchLine(custom_id, error=ErrorDecision("transient", detail))


def _response_line(custom_id: str, response: dict[str, Any], model: str) -> BatchLine:
    status = response.get("status_code")
    body = response.get("body")
    if status == 200:
        try:
            return BatchLine(custom_id, result=parse_chat_completion(body, model))
        except MalformedResponseError as error:
            return BatchLine(custom_id, error=ErrorDecision("transient", f"malformed response: {error}"))
    status = status if isinstance(status, int) else 0
    inner = body.get("error") if isinstance(body, dict) else None
    message = str(inner.get("message")) if isinstance(inner, dict) and inner.get("message") else json.dumps(body)
    detail = f"HTTP {status}: {message}"
    if status == 429:
        return BatchLine(custom_id, error=ErrorDecision("rate_limited", detail, status=status))
    if status >= 500 or status in (408, 409) or status == 0:
        return BatchLine(custom_id, error=ErrorDecision("transient", detail, status=status or None))
    return BatchLine(custom_id, error=ErrorDecision("fatal", detail, status=status))


def _state(batch: Batch) -> BatchState:
    counts = batch.request_counts
    problems: tuple[BatchProblem, ...] = ()
    if batch.errors is not None and batch.errors.data:
        problems = tuple(
            BatchProblem(e.code or "error", e.message or "", e.line) for e in batch.errors.data if e is not None
        )
    return BatchState(
        id=batch.id,
        status=batch.status,
        total=counts.total if counts else 0,
        completed=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        problems=problems,
    )
