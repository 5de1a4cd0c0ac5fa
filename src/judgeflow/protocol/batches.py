"""The vocabulary of batch mode: a provider's batch as judgeflow sees it, one result line, and the two seams.

A Batch API takes a file of requests and answers them within a completion window at a lower price. The core
(the batch judge actor) drives it through `BatchClient`, which a provider implements over its SDK, and keeps what
must survive a crash (which requests went into which batch, the batch's id) through `BatchBook`, which the run
store implements. Nothing here imports a vendor SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Protocol

from .calls import ChatRequest, ChatResult, ErrorDecision, LimitKey

__all__ = [
    "ENDED",
    "BatchBook",
    "BatchClient",
    "BatchLine",
    "BatchProblem",
    "BatchState",
]

ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
"""Provider statuses after which a batch changes no more."""


@dataclass(frozen=True, slots=True)
class BatchProblem:
    """Why a batch failed validation: the provider's code, message and (when it names one) input line."""

    code: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.message} ({self.code})"


@dataclass(frozen=True, slots=True)
class BatchState:
    """A batch as the provider last reported it."""

    id: str
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    problems: tuple[BatchProblem, ...] = ()

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One line of a batch's output or error file: the reply to ``custom_id``, or why there is none.

    ``result`` is read by the same parser as an online reply. ``error`` says how the request failed: a transient
    one (a 5xx, a 429) is worth sending again, a fatal one (a 4xx) is not; ``unfinished`` marks a request the
    batch never ran (it expired or was cancelled first).
    """

    custom_id: str
    result: ChatResult | None = None
    error: ErrorDecision | None = None
    unfinished: bool = False


class BatchClient(Protocol):
    """One provider's Batch API for one chat model: build request lines, upload, create, poll, read results.

    Every method makes one attempt; ``classify`` says what a failure means, and the caller retries.
    """

    name: str
    key: LimitKey

    def request_line(self, custom_id: str, request: ChatRequest) -> bytes:
        """One JSONL line (with its newline) asking ``request`` of this model, exactly as online."""
        ...

    async def upload(self, filename: str, data: bytes | IO[bytes]) -> str:
        """Upload a batch input file (its content, or a file open at its start); returns its file id."""
        ...

    async def find_upload(self, filename: str) -> str | None:
        """The id of a batch input file uploaded earlier under ``filename``, if the provider still has it."""
        ...

    async def create(self, file_id: str, *, metadata: Mapping[str, str]) -> BatchState: ...

    async def find(self, metadata: Mapping[str, str]) -> BatchState | None:
        """A batch created earlier with this metadata (a crash can fall between its creation and its record)."""
        ...

    async def retrieve(self, batch_id: str) -> BatchState: ...

    async def cancel(self, batch_id: str) -> BatchState: ...

    async def results(self, state: BatchState) -> list[BatchLine]:
        """The lines of an ended batch's output and error files, in no particular order."""
        ...

    def classify(self, error: BaseException) -> ErrorDecision: ...


class BatchBook(Protocol):
    """Durable notes on the batches of a run: what was planned, uploaded and created, and the request ids in each.

    Each ``put`` is committed before it returns, so a crash right after loses nothing it wrote.
    """

    async def put_batch_record(self, key: str, record: str) -> None: ...

    async def batch_records(self) -> Mapping[str, str]:
        """Every record, by key."""
        ...

    async def delete_batch_record(self, key: str) -> None: ...
